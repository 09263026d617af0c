//! The safety net behind "acknowledge, then process": a loop that picks up reports still pending a few
//! seconds after they were stored (the instance crashed after committing, processing failed, or parts of a
//! concatenated SMS were waiting) and processes them. Processing is idempotent, so the sweeper and the
//! request that stored a report can race harmlessly, on one instance or several.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use diesel::prelude::*;

use super::process::{CaseExtras, Outcome, ProcessContext, ProcessError, process_report};
use crate::db::schema::reports;
use crate::db::{Db, DbError};

/// Pending reports younger than this are left to the request that stored them.
const GRACE: i64 = 2;

#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Process(#[from] ProcessError),
}

impl From<diesel::result::Error> for SweepError {
    fn from(err: diesel::result::Error) -> Self {
        SweepError::Db(err.into())
    }
}

/// Processes one report in its own write transaction, logging (without personal data) on failure.
pub async fn process_one(db: &Db, ctx: &ProcessContext, report_id: String) -> Option<Outcome> {
    let ctx = ctx.clone();
    let id = report_id.clone();
    let result = db
        .write(move |conn| process_report(conn, &ctx, &id, &CaseExtras::default()).map_err(SweepError::from))
        .await;
    match result {
        Ok(outcome) => Some(outcome),
        Err(err) => {
            tracing::warn!(report.id = %report_id, error = %err, "report processing failed; the sweeper will retry");
            None
        }
    }
}

/// Runs forever, every `interval`.
pub async fn run(db: Db, ctx: ProcessContext, interval: StdDuration) {
    loop {
        tokio::time::sleep(interval).await;
        let cutoff = Utc::now().naive_utc() - Duration::seconds(GRACE);
        let pending = db
            .run(move |conn| {
                reports::table
                    .filter(reports::triage_status.eq("pending"))
                    .filter(reports::created_at.lt(cutoff))
                    .order(reports::created_at.asc())
                    .select(reports::id)
                    .limit(200)
                    .load::<String>(conn)
                    .map_err(DbError::from)
            })
            .await;
        match pending {
            Ok(ids) => {
                for id in ids {
                    process_one(&db, &ctx, id).await;
                }
            }
            Err(err) => tracing::warn!(error.code = err.code(), "sweeper could not list pending reports"),
        }
    }
}
