//! The missed acknowledgement deadline of a critical case, as the deadline watch (`notify::sla`) records
//! it: once per case, the mark, a `sla_breached` event and the supervisors' emails in one transaction,
//! claimed with a conditional update so several instances never report a case twice.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use super::timeline::{self, EventKind};
use crate::db::AnyConnection;
use crate::db::schema::cases;
use crate::notify::{self, CaseNotice};

/// Records that a case passed its deadline unacknowledged, if no one else has. Returns true when this
/// call recorded it.
pub fn mark_breached(conn: &mut AnyConnection, case_id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let claimed = diesel::update(
        cases::table
            .filter(cases::id.eq(case_id))
            .filter(cases::sla_notified_at.is_null())
            .filter(cases::acknowledged_at.is_null())
            .filter(cases::sla_due_at.le(now)),
    )
    .set(cases::sla_notified_at.eq(now))
    .execute(conn)?;
    if claimed != 1 {
        return Ok(false);
    }
    let (organization_id, due): (String, Option<NaiveDateTime>) = cases::table
        .find(case_id)
        .select((cases::organization_id, cases::sla_due_at))
        .first(conn)?;
    timeline::add(
        conn,
        &timeline::Event::new(case_id, &organization_id, EventKind::SlaBreached)
            .data(json!({ "due_at": due.map(|d| d.and_utc().to_rfc3339()) })),
    )?;
    notify::notify_case(conn, case_id, CaseNotice::SlaBreach, None)?;
    Ok(true)
}
