//! Moving a case through its statuses (the rules: [`super::status`]): a status change, and a supervisor's
//! approval or rejection of a child case's closure request. Closing resolves the case's acknowledgement
//! deadline and withdraws emails about it not yet sent; a closure request emails the supervisors and the
//! child-protection focal points. A note given with a change is sealed in its timeline event.

use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::status::{self, Asker, Change, ClosureReason, Refusal, Status, Step};
use super::timeline::{self, EventKind};
use super::{CaseError, CaseRow, gate};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::crypto::Crypto;
use crate::db::AnyConnection;
use crate::db::schema::cases;
use crate::domain::Role;
use crate::error::ErrorCode;
use crate::notify::{self, CaseNotice};
use crate::outbox;

/// The longest note accepted with a change (and the longest closure-rejection reason).
pub const MAX_NOTE: usize = 4000;

/// The result of a status change or a closure decision.
#[derive(Debug, Clone, Serialize)]
pub struct StatusChanged {
    pub case_id: String,
    pub previous: Status,
    pub status: Status,
    pub closure_reason: Option<ClosureReason>,
    /// True when a child case's close became a request for a supervisor.
    pub closure_requested: bool,
}

fn current(case: &CaseRow) -> Status {
    // The column's CHECK constraint admits only the statuses there are.
    Status::parse(&case.status).unwrap_or(Status::Open)
}

fn asker(staff: &Staff) -> Asker {
    Asker {
        supervisor: staff.role == Role::Supervisor,
    }
}

/// Checks an optional free text (a note, a reason): trimmed, at most [`MAX_NOTE`] characters, no control
/// characters but line breaks and tabs.
pub fn clean_text(text: Option<&str>) -> Result<Option<String>, CaseError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_NOTE {
        return Err(CaseError::refused_with(
            ErrorCode::TextTooLong,
            format!("at most {MAX_NOTE} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(CaseError::refused(ErrorCode::InvalidText));
    }
    Ok(Some(text.to_owned()))
}

fn refusal(from: Status, refusal: Refusal) -> CaseError {
    match refusal {
        Refusal::Impossible { allowed } => {
            let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            let message = if names.is_empty() {
                format!("a case that is {} cannot be changed by you now", from.as_str())
            } else {
                format!("from {} the case can go to: {}", from.as_str(), names.join(", "))
            };
            CaseError::Refused {
                code: ErrorCode::InvalidTransition,
                message,
                details: Some(json!({ "status": from, "allowed": allowed })),
            }
        }
        Refusal::ReasonNeeded => CaseError::refused_with(
            ErrorCode::InvalidClosureReason,
            "closing needs a reason: resolved, referred_out, no_further_contact, duplicate, \
             not_trafficking, out_of_scope or withdrawn_by_person",
        ),
        Refusal::ReasonNotExpected => {
            CaseError::refused_with(ErrorCode::InvalidClosureReason, "only closing takes a reason")
        }
    }
}

/// Writes a new status on the row. Closing stamps `closed_at` and resolves the acknowledgement deadline;
/// any other status clears them.
pub(super) fn write_status(
    conn: &mut AnyConnection,
    case_id: &str,
    to: Status,
    reason: Option<ClosureReason>,
) -> Result<(), CaseError> {
    let now = Utc::now().naive_utc();
    let closed = to == Status::Closed;
    diesel::update(cases::table.find(case_id))
        .set((
            cases::status.eq(to.as_str()),
            cases::closure_reason.eq(reason.map(ClosureReason::as_str)),
            cases::closed_at.eq(closed.then_some(now)),
            cases::updated_at.eq(now),
        ))
        .execute(conn)?;
    if closed {
        diesel::update(cases::table.find(case_id))
            .set(cases::sla_due_at.eq(None::<chrono::NaiveDateTime>))
            .execute(conn)?;
        outbox::withdraw_case_emails(conn, case_id)?;
    }
    Ok(())
}

fn append(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    event: &timeline::Event<'_>,
    note: Option<&str>,
) -> Result<(), CaseError> {
    match note {
        Some(text) => timeline::add_with_body(conn, crypto, event, text)?,
        None => timeline::add(conn, event)?,
    };
    Ok(())
}

/// Changes a case's status (`update_case`). An impossible change is `invalid_transition` naming the
/// allowed ones; a child case closed by a caseworker or operator becomes `closure_requested`.
pub fn change_status(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    staff: &Staff,
    case: &str,
    change: Change,
    note: Option<&str>,
) -> Result<StatusChanged, CaseError> {
    let note = clean_text(note)?;
    let case = gate::for_change(conn, staff, case, "case_status_changed")?.case;
    let from = current(&case);
    let step = status::decide(from, change, case.child_victim, asker(staff)).map_err(|r| refusal(from, r))?;
    let (to, reason, requested) = match step {
        Step::Become(to, reason) => (to, reason, false),
        Step::RequestClosure(reason) => (Status::ClosureRequested, Some(reason), true),
    };
    // A requested closure's reason waits on the row for the supervisor's decision.
    write_status(conn, &case.id, to, reason)?;
    let facts = json!({ "from": from, "to": to, "reason": reason });
    let kind = if requested {
        EventKind::ClosureRequested
    } else {
        EventKind::StatusChanged
    };
    append(
        conn,
        crypto,
        &case.event(kind).by(&staff.user_id).data(facts.clone()),
        note.as_deref(),
    )?;
    let action = if requested {
        "case_closure_requested"
    } else {
        "case_status_changed"
    };
    audit::record(
        conn,
        &staff.audit(
            action,
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(facts),
        ),
    )?;
    if requested {
        notify::notify_case(conn, &case.id, CaseNotice::ClosureRequested, None)?;
    }
    Ok(StatusChanged {
        case_id: case.id,
        previous: from,
        status: to,
        closure_reason: reason,
        closure_requested: requested,
    })
}

/// A supervisor approves (`reason` optional) or rejects (`reason` required) a child case's closure
/// request (`approve_child_case_closure`). Approval closes the case with the requested closure reason;
/// rejection takes it back to `in_progress`. Without a request: `no_closure_request`.
pub fn decide_closure(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    staff: &Staff,
    case: &str,
    approve: bool,
    reason: Option<&str>,
) -> Result<StatusChanged, CaseError> {
    let reason = clean_text(reason)?;
    if !approve && reason.is_none() {
        return Err(CaseError::refused_with(
            ErrorCode::InvalidReason,
            "say why the closure is rejected",
        ));
    }
    let action = if approve {
        "case_closure_approved"
    } else {
        "case_closure_rejected"
    };
    let case = gate::for_change(conn, staff, case, action)?.case;
    let from = current(&case);
    let to = status::decide_closure(from, approve).ok_or(CaseError::refused(ErrorCode::NoClosureRequest))?;
    let requested = case.closure_reason.as_deref().and_then(ClosureReason::parse);
    let closure_reason = if approve { requested } else { None };
    write_status(conn, &case.id, to, closure_reason)?;
    let facts = json!({ "from": from, "to": to, "reason": closure_reason });
    let kind = if approve {
        EventKind::ClosureApproved
    } else {
        EventKind::ClosureRejected
    };
    append(
        conn,
        crypto,
        &case.event(kind).by(&staff.user_id).data(facts.clone()),
        reason.as_deref(),
    )?;
    audit::record(
        conn,
        &staff.audit(
            action,
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(facts),
        ),
    )?;
    Ok(StatusChanged {
        case_id: case.id,
        previous: from,
        status: to,
        closure_reason,
        closure_requested: false,
    })
}
