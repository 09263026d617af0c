//! What a new report does to cases, done by Komek itself after the report is stored: open a case with a
//! fresh reference, join the contact's open case (raising its risk and flags, never lowering them), or
//! attach a flood without triage. Each writes the case row, its timeline events and the notifications of
//! a case that is (or became) critical or a child case, inside report processing's transaction.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::timeline::{self, EventKind};
use super::{CaseError, CaseRow, join_types, risk_rank};
use crate::accounts::is_unique_violation;
use crate::crypto::Crypto;
use crate::db::AnyConnection;
use crate::db::schema::{case_events, cases};
use crate::domain::CaseRef;
use crate::notify;
use crate::triage::{RiskLevel, Triage};

/// How a new case is opened.
#[derive(Debug, Clone)]
pub struct Opening<'a> {
    pub organization_id: &'a str,
    pub contact_id: Option<&'a str>,
    pub triage: &'a Triage,
    /// The IVR's silent path: nobody may call back by voice.
    pub silent: bool,
    /// Hash of the web form's private follow-up code, when the report came from the form.
    pub follow_up_code_hash: Option<String>,
    /// How long a critical case may wait for an acknowledgement.
    pub critical_ack_deadline: Duration,
    /// The report that opens it, and where it came from (`sms`, `voice`, `web`, `operator`).
    pub report_id: &'a str,
    pub source: &'a str,
}

/// Opens a case with a fresh reference for the report; returns its id and reference. The timeline starts
/// with `opened` and the report's `triage`.
pub fn open(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    opening: &Opening<'_>,
) -> Result<(String, CaseRef), CaseError> {
    let id = uuid::Uuid::now_v7().to_string();
    let (_, wrapped) = crypto.new_record_key()?;
    let now = Utc::now().naive_utc();
    let triage = opening.triage;
    let risk = effective_risk(triage);
    let sla_due_at = (risk == RiskLevel::Critical).then(|| now + opening.critical_ack_deadline);
    // References are random: on the rare collision, draw again.
    for _ in 0..8 {
        let reference = CaseRef::generate();
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(cases::table)
                .values((
                    cases::id.eq(&id),
                    cases::organization_id.eq(opening.organization_id),
                    cases::reference.eq(reference.as_str()),
                    cases::status.eq("open"),
                    cases::risk.eq(risk.as_str()),
                    cases::risk_rank.eq(risk_rank(risk)),
                    cases::exploitation_types.eq(join_types(&triage.exploitation_types)),
                    cases::child_victim.eq(triage.child_victim),
                    cases::shelter_needed.eq(triage.shelter_needed),
                    cases::silent.eq(opening.silent),
                    cases::language.eq(triage.language.primary.as_str()),
                    cases::contact_id.eq(opening.contact_id),
                    cases::follow_up_code_hash.eq(&opening.follow_up_code_hash),
                    cases::dek_wrapped.eq(&wrapped.bytes),
                    cases::key_version.eq(wrapped.version),
                    cases::sla_due_at.eq(sla_due_at),
                    cases::created_at.eq(now),
                    cases::updated_at.eq(now),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => {
                let org = opening.organization_id;
                timeline::add(conn, &timeline::Event::new(&id, org, EventKind::Opened))?;
                timeline::add(
                    conn,
                    &timeline::Event::new(&id, org, EventKind::Triage)
                        .report(opening.report_id)
                        .data(json!({ "source": opening.source, "triage": triage })),
                )?;
                notify_urgency(conn, &id, risk == RiskLevel::Critical, triage.child_victim)?;
                return Ok((id, reference));
            }
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(diesel::result::Error::RollbackTransaction.into())
}

/// Risk after the case rules: a child case is at least high.
pub fn effective_risk(triage: &Triage) -> RiskLevel {
    effective_flags(triage.risk, triage.child_victim)
}

/// `risk`, raised to high for a child case.
pub fn effective_flags(risk: RiskLevel, child_victim: bool) -> RiskLevel {
    if child_victim {
        risk.max(RiskLevel::High)
    } else {
        risk
    }
}

/// The open (not closed) case of a contact, if any: the newest.
pub fn open_case_of_contact(
    conn: &mut AnyConnection,
    organization_id: &str,
    contact_id: &str,
) -> QueryResult<Option<CaseRow>> {
    cases::table
        .filter(cases::organization_id.eq(organization_id))
        .filter(cases::contact_id.eq(contact_id))
        .filter(cases::status.ne("closed"))
        .order(cases::created_at.desc())
        .select(CaseRow::as_select())
        .first(conn)
        .optional()
}

/// A later report of the case's contact joins the case: `report_linked` on the timeline, the case's risk
/// and flags raised to include the report's triage, and the silent flag set when the report asks for it.
pub fn join(
    conn: &mut AnyConnection,
    case: &CaseRow,
    report_id: &str,
    source: &str,
    triage: &Triage,
    silent: bool,
    critical_ack_deadline: Duration,
) -> Result<(), CaseError> {
    timeline::add(
        conn,
        &case
            .event(EventKind::ReportLinked)
            .report(report_id)
            .data(json!({ "source": source, "triage": triage })),
    )?;
    escalate(conn, case, triage, report_id, critical_ack_deadline)?;
    if silent && !case.silent {
        diesel::update(cases::table.find(&case.id))
            .set(cases::silent.eq(true))
            .execute(conn)?;
    }
    Ok(())
}

/// Notes on the timeline (once per window) that a flood of reports from the contact was attached to the
/// case without triage.
pub fn note_flood(
    conn: &mut AnyConnection,
    case: &CaseRow,
    report_id: &str,
    window: Duration,
    threshold: i64,
) -> Result<(), CaseError> {
    let now = Utc::now().naive_utc();
    let noted: i64 = case_events::table
        .filter(case_events::case_id.eq(&case.id))
        .filter(case_events::kind.eq(EventKind::FloodCollapsed.as_str()))
        .filter(case_events::created_at.gt(now - window))
        .count()
        .get_result(conn)?;
    if noted == 0 {
        let note = json!({ "window_minutes": window.num_minutes(), "threshold": threshold });
        timeline::add(
            conn,
            &case.event(EventKind::FloodCollapsed).report(report_id).data(note),
        )?;
    }
    Ok(())
}

/// Raises a case's risk and flags to include a new triage result; records what changed and notifies when
/// the case became critical or a child case. Returns true when anything changed.
fn escalate(
    conn: &mut AnyConnection,
    case: &CaseRow,
    triage: &Triage,
    report_id: &str,
    critical_ack_deadline: Duration,
) -> Result<bool, CaseError> {
    let old_risk = case.risk_level();
    let new_risk = old_risk.max(effective_risk(triage));
    let mut types = case.types();
    for t in &triage.exploitation_types {
        if !types.contains(t) {
            types.push(*t);
        }
    }
    types.sort();
    let child = case.child_victim || triage.child_victim;
    let shelter = case.shelter_needed || triage.shelter_needed;
    let changed = new_risk != old_risk
        || child != case.child_victim
        || shelter != case.shelter_needed
        || types != case.types();
    if !changed {
        return Ok(false);
    }
    let now = Utc::now().naive_utc();
    let became_critical = new_risk == RiskLevel::Critical && old_risk != RiskLevel::Critical;
    let sla_due_at = if became_critical {
        Some(now + critical_ack_deadline)
    } else {
        case.sla_due_at
    };
    diesel::update(cases::table.find(&case.id))
        .set((
            cases::risk.eq(new_risk.as_str()),
            cases::risk_rank.eq(risk_rank(new_risk)),
            cases::exploitation_types.eq(join_types(&types)),
            cases::child_victim.eq(child),
            cases::shelter_needed.eq(shelter),
            cases::sla_due_at.eq(sla_due_at),
            cases::updated_at.eq(now),
        ))
        .execute(conn)?;
    timeline::add(
        conn,
        &case.event(EventKind::Escalated).report(report_id).data(json!({
            "risk": { "from": old_risk.as_str(), "to": new_risk.as_str() },
            "child_victim": { "from": case.child_victim, "to": child },
            "shelter_needed": { "from": case.shelter_needed, "to": shelter },
        })),
    )?;
    let newly_child = child && !case.child_victim;
    notify_urgency(conn, &case.id, became_critical, newly_child)?;
    Ok(true)
}

/// Writes the outbox rows (one per recipient, see `notify::recipients`) for a case that is (or just
/// became) critical or a child case.
pub(crate) fn notify_urgency(
    conn: &mut AnyConnection,
    case_id: &str,
    critical: bool,
    child: bool,
) -> QueryResult<()> {
    if critical {
        notify::notify_case(conn, case_id, notify::CaseNotice::Critical, None)?;
    }
    if child {
        notify::notify_case(conn, case_id, notify::CaseNotice::Child, None)?;
    }
    Ok(())
}
