//! Fixing threading by hand: moving one report to another case of the organization, and merging a case
//! into another (every report and the whole timeline move; the merged case closes as a duplicate and names
//! the case it went into). Both are audited on both cases and undone by another move (and a reopen).
//!
//! The surviving case of a merge takes the other's contact only when it has none and was not opened from
//! the public web form: a form case keeps a follow-up code whose status page must never start following
//! someone else's contact. Its risk and flags rise to include the merged case's (never fall).

use chrono::Utc;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::status::{ClosureReason, Status};
use super::timeline::{self, EventKind};
use super::{CaseError, CaseRow, gate, join_types, risk_rank};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::crypto::Crypto;
use crate::db::AnyConnection;
use crate::db::schema::cases;
use crate::domain::Role;
use crate::error::ErrorCode;
use crate::reports;
use crate::triage::RiskLevel;

/// The result of [`move_report`].
#[derive(Debug, Clone, Serialize)]
pub struct Moved {
    pub report_id: String,
    pub from_case_id: Option<String>,
    pub case_id: String,
}

fn audit_on(
    conn: &mut AnyConnection,
    staff: &Staff,
    action: &str,
    case_id: &str,
    facts: &serde_json::Value,
) -> Result<(), CaseError> {
    audit::record(
        conn,
        &staff.audit(
            action,
            Some("case"),
            Some(case_id),
            Outcome::Success,
            Some(facts.clone()),
        ),
    )?;
    Ok(())
}

/// Moves a report of the organization to another of its cases (`update_case`, on both cases).
pub fn move_report(
    conn: &mut AnyConnection,
    staff: &Staff,
    report_id: &str,
    to_case: &str,
) -> Result<Moved, CaseError> {
    let report = reports::load(conn, report_id)?
        .filter(|r| r.organization_id == staff.organization_id)
        .ok_or(CaseError::NotFound("report"))?;
    let to = gate::for_change(conn, staff, to_case, "report_moved")?.case;
    if report.case_id.as_deref() == Some(to.id.as_str()) {
        return Err(CaseError::refused(ErrorCode::SameCase));
    }
    if to.status == Status::Closed.as_str() {
        return Err(CaseError::refused(ErrorCode::CaseClosed));
    }
    let from = match &report.case_id {
        Some(id) => Some(gate::for_change(conn, staff, id, "report_moved")?.case),
        None => None,
    };
    reports::set_case(conn, &report.id, &to.id)?;
    let facts = json!({ "report_id": report.id, "from": from.as_ref().map(|c| &c.id), "to": to.id });
    if let Some(from) = &from {
        timeline::add(
            conn,
            &from
                .event(EventKind::ReportMovedOut)
                .by(&staff.user_id)
                .report(&report.id)
                .data(facts.clone()),
        )?;
        audit_on(conn, staff, "report_moved_out", &from.id, &facts)?;
    }
    timeline::add(
        conn,
        &to.event(EventKind::ReportMovedIn)
            .by(&staff.user_id)
            .report(&report.id)
            .data(facts.clone()),
    )?;
    audit_on(conn, staff, "report_moved_in", &to.id, &facts)?;
    Ok(Moved {
        report_id: report.id,
        from_case_id: from.map(|c| c.id),
        case_id: to.id,
    })
}

/// The result of [`merge`].
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub case_id: String,
    pub into: String,
    pub reports_moved: usize,
    pub events_moved: usize,
}

/// Merges case `case` into case `into` (`update_case`, on both). Merging a child case closes it, which
/// only a supervisor may do (`closure_needs_supervisor` for anyone else).
pub fn merge(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    staff: &Staff,
    case: &str,
    into: &str,
) -> Result<Merged, CaseError> {
    let from = gate::for_change(conn, staff, case, "case_merged")?.case;
    let to = gate::for_change(conn, staff, into, "case_merged")?.case;
    if from.id == to.id {
        return Err(CaseError::refused(ErrorCode::SameCase));
    }
    if from.status == Status::Closed.as_str() || to.status == Status::Closed.as_str() {
        return Err(CaseError::refused(ErrorCode::CaseClosed));
    }
    if from.child_victim && staff.role != Role::Supervisor {
        return Err(CaseError::refused(ErrorCode::ClosureNeedsSupervisor));
    }
    let reports_moved = reports::move_all(conn, &from.id, &to.id)?.len();
    let events_moved = timeline::move_all(conn, crypto, &from.id, &to.id)?;
    raise_flags(conn, &to, &from)?;
    super::workflow::write_status(conn, &from.id, Status::Closed, Some(ClosureReason::Duplicate))?;
    diesel::update(cases::table.find(&from.id))
        .set(cases::merged_into.eq(Some(&to.id)))
        .execute(conn)?;
    let facts = json!({
        "case_id": from.id, "into": to.id, "reports_moved": reports_moved, "events_moved": events_moved,
    });
    timeline::add(
        conn,
        &to.event(EventKind::Merged).by(&staff.user_id).data(facts.clone()),
    )?;
    timeline::add(
        conn,
        &from
            .event(EventKind::MergedInto)
            .by(&staff.user_id)
            .data(facts.clone()),
    )?;
    audit_on(conn, staff, "case_merged_into", &from.id, &facts)?;
    audit_on(conn, staff, "case_merged", &to.id, &facts)?;
    Ok(Merged {
        case_id: from.id,
        into: to.id,
        reports_moved,
        events_moved,
    })
}

/// The surviving case's risk and flags rise to include the merged case's; it takes the merged case's
/// contact when it has none and no follow-up code.
fn raise_flags(conn: &mut AnyConnection, to: &CaseRow, from: &CaseRow) -> Result<(), CaseError> {
    let risk = to.risk_level().max(from.risk_level());
    let child = to.child_victim || from.child_victim;
    let risk = if child { risk.max(RiskLevel::High) } else { risk };
    let mut types = to.types();
    for t in from.types() {
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types.sort();
    let has_code: Option<String> = cases::table
        .find(&to.id)
        .select(cases::follow_up_code_hash)
        .first(conn)?;
    let contact = match (&to.contact_id, &from.contact_id, has_code) {
        (None, Some(contact), None) => Some(contact.clone()),
        _ => to.contact_id.clone(),
    };
    diesel::update(cases::table.find(&to.id))
        .set((
            cases::risk.eq(risk.as_str()),
            cases::risk_rank.eq(risk_rank(risk)),
            cases::exploitation_types.eq(join_types(&types)),
            cases::child_victim.eq(child),
            cases::shelter_needed.eq(to.shelter_needed || from.shelter_needed),
            cases::silent.eq(to.silent || from.silent),
            cases::contact_id.eq(contact),
            cases::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    let became_critical = risk == RiskLevel::Critical && to.risk_level() != RiskLevel::Critical;
    super::incoming::notify_urgency(conn, &to.id, became_critical, child && !to.child_victim)?;
    Ok(())
}
