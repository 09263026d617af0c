//! Taking a case up: acknowledging it (its acknowledgement deadline stops) and assigning it to a staff
//! member of the organization (a child case only to a supervisor or child-protection trained staff), who is
//! told by email unless they assigned it to themselves.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::timeline::{self, EventKind};
use super::{CaseError, gate};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::db::AnyConnection;
use crate::db::schema::{cases, users};
use crate::domain::Role;
use crate::error::ErrorCode;
use crate::notify::{self, CaseNotice};

/// The result of [`acknowledge`].
#[derive(Debug, Clone, Serialize)]
pub struct Acknowledged {
    pub case_id: String,
    /// False when someone had acknowledged it before (nothing changed then).
    pub changed: bool,
    pub acknowledged_at: Option<NaiveDateTime>,
}

/// Acknowledges a case (stops its deadline clock). Acknowledging twice changes nothing the second time.
pub fn acknowledge(conn: &mut AnyConnection, staff: &Staff, case: &str) -> Result<Acknowledged, CaseError> {
    let opened = gate::for_change(conn, staff, case, "case_acknowledged")?;
    let case = opened.case;
    if case.acknowledged_at.is_some() {
        return Ok(Acknowledged {
            case_id: case.id,
            changed: false,
            acknowledged_at: case.acknowledged_at,
        });
    }
    let now = Utc::now().naive_utc();
    diesel::update(cases::table.find(&case.id))
        .set((
            cases::acknowledged_at.eq(now),
            cases::acknowledged_by.eq(&staff.user_id),
            cases::updated_at.eq(now),
        ))
        .execute(conn)?;
    timeline::add(conn, &case.event(EventKind::Acknowledged).by(&staff.user_id))?;
    audit::record(
        conn,
        &staff.audit(
            "case_acknowledged",
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            None,
        ),
    )?;
    Ok(Acknowledged {
        case_id: case.id,
        changed: true,
        acknowledged_at: Some(now),
    })
}

/// The result of [`assign`].
#[derive(Debug, Clone, Serialize)]
pub struct Assigned {
    pub case_id: String,
    pub assignee_id: String,
    /// Whether the assignee is emailed (not when they assigned it to themselves).
    pub notified: bool,
}

/// Assigns a case to `assignee_id`, a caseworker, operator or supervisor of the organization who is not
/// disabled (another: not found); a child case only to a supervisor or child-protection trained staff.
pub fn assign(
    conn: &mut AnyConnection,
    staff: &Staff,
    case: &str,
    assignee_id: &str,
) -> Result<Assigned, CaseError> {
    let case = gate::for_change(conn, staff, case, "case_assigned")?.case;
    let candidate: Option<(String, bool)> = users::table
        .filter(users::id.eq(assignee_id))
        .filter(users::organization_id.eq(&staff.organization_id))
        .filter(users::disabled_at.is_null())
        .filter(users::role.eq_any([
            Role::Caseworker.as_str(),
            Role::Supervisor.as_str(),
            Role::Operator.as_str(),
        ]))
        .select((users::role, users::child_protection_trained))
        .first(conn)
        .optional()?;
    let Some((role, trained)) = candidate else {
        return Err(CaseError::NotFound("staff account"));
    };
    if case.child_victim && !(role == Role::Supervisor.as_str() || trained) {
        return Err(CaseError::refused(ErrorCode::AssigneeNotTrained));
    }
    diesel::update(cases::table.find(&case.id))
        .set((
            cases::assignee_id.eq(Some(assignee_id)),
            cases::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    let facts = json!({ "assignee_id": assignee_id, "previous_assignee_id": case.assignee_id });
    timeline::add(
        conn,
        &case
            .event(EventKind::Assigned)
            .by(&staff.user_id)
            .data(facts.clone()),
    )?;
    audit::record(
        conn,
        &staff.audit(
            "case_assigned",
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(facts),
        ),
    )?;
    // Someone assigning a case to themselves needs no email.
    let notified = assignee_id != staff.user_id
        && notify::notify_case(conn, &case.id, CaseNotice::Assigned, Some(assignee_id))? > 0;
    Ok(Assigned {
        case_id: case.id,
        assignee_id: assignee_id.to_owned(),
        notified,
    })
}
