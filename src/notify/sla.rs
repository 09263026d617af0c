//! The acknowledgement deadline watch. A critical case gets `sla_due_at` when it opens or becomes critical
//! (`critical_ack_minutes`); staff acknowledge it (`POST /api/v1/cases/{id}/acknowledge`). A periodic pass
//! finds critical cases past their deadline and still unacknowledged and, once per case, records a
//! `sla_breached` case event and tells the supervisors — the mark, the event and the outbox rows in one
//! transaction (`cases::deadline::mark_breached`), claimed with a conditional update so several instances
//! never report a case twice.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::schema::cases;
use crate::db::{AnyConnection, Db, DbError};

/// Cases past their deadline and not yet reported, oldest deadline first.
pub fn overdue(conn: &mut AnyConnection, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
    cases::table
        .filter(cases::sla_due_at.le(now))
        .filter(cases::acknowledged_at.is_null())
        .filter(cases::sla_notified_at.is_null())
        .filter(cases::status.ne("closed"))
        .order(cases::sla_due_at.asc())
        .select(cases::id)
        .limit(limit)
        .load(conn)
}

/// One pass: reports every overdue case (each in its own transaction). Returns how many were reported.
pub async fn run_once(db: &Db) -> Result<usize, DbError> {
    let now = Utc::now().naive_utc();
    let ids = db
        .run(move |conn| overdue(conn, now, 100).map_err(DbError::from))
        .await?;
    let mut reported = 0;
    for id in ids {
        let case_id = id.clone();
        let done = db
            .write(move |conn| {
                crate::cases::deadline::mark_breached(conn, &case_id, now).map_err(DbError::from)
            })
            .await;
        match done {
            Ok(true) => {
                tracing::info!(case.id = %id, "critical case not acknowledged in time; supervisors told");
                reported += 1;
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(case.id = %id, error.code = err.code(), "could not report an overdue case")
            }
        }
    }
    Ok(reported)
}
