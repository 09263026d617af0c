//! Cases: the victim-assistance case a report opens or joins, its public reference, and its timeline of
//! events. Risk and flags only ever rise automatically (a later message can make a case more urgent, never
//! less); lowering them is an operator's override with a reason.

pub mod overrides;
pub mod view;

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::accounts::is_unique_violation;
use crate::crypto::{Crypto, CryptoError};
use crate::db::AnyConnection;
use crate::db::schema::{case_events, cases};
use crate::domain::CaseRef;
use crate::notify;
use crate::triage::{ExploitationType, RiskLevel, Triage};

/// Errors of the case store.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// Sort rank of a risk level in the queue (most urgent first).
pub fn risk_rank(risk: RiskLevel) -> i32 {
    match risk {
        RiskLevel::Critical => 0,
        RiskLevel::High => 1,
        RiskLevel::Medium => 2,
        RiskLevel::Low => 3,
    }
}

/// A case row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cases)]
pub struct CaseRow {
    pub id: String,
    pub organization_id: String,
    pub reference: String,
    pub status: String,
    pub risk: String,
    pub risk_rank: i32,
    pub exploitation_types: String,
    pub child_victim: bool,
    pub shelter_needed: bool,
    pub silent: bool,
    pub language: Option<String>,
    pub contact_id: Option<String>,
    pub assignee_id: Option<String>,
    pub sla_due_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl CaseRow {
    /// The stored risk level.
    pub fn risk_level(&self) -> RiskLevel {
        self.risk.parse().unwrap_or(RiskLevel::High)
    }

    /// The stored exploitation types.
    pub fn types(&self) -> Vec<ExploitationType> {
        parse_types(&self.exploitation_types)
    }
}

/// Parses the comma-separated stored exploitation types (unknown names are skipped).
pub fn parse_types(stored: &str) -> Vec<ExploitationType> {
    stored.split(',').filter_map(|t| t.trim().parse().ok()).collect()
}

pub(crate) fn join_types(types: &[ExploitationType]) -> String {
    types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
}

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
}

/// Appends an event to a case's timeline.
pub fn add_event(
    conn: &mut AnyConnection,
    case: (&str, &str),
    kind: &str,
    actor_user_id: Option<&str>,
    report_id: Option<&str>,
    data: Option<Value>,
) -> QueryResult<()> {
    let (case_id, organization_id) = case;
    diesel::insert_into(case_events::table)
        .values((
            case_events::id.eq(uuid::Uuid::now_v7().to_string()),
            case_events::case_id.eq(case_id),
            case_events::organization_id.eq(organization_id),
            case_events::kind.eq(kind),
            case_events::actor_user_id.eq(actor_user_id),
            case_events::report_id.eq(report_id),
            case_events::data.eq(data.map(|d| d.to_string())),
            case_events::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Opens a case with a fresh reference; returns its id and reference.
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
                add_event(conn, (&id, opening.organization_id), "opened", None, None, None)?;
                let critical = risk == RiskLevel::Critical;
                notify_urgency(conn, &id, critical, triage.child_victim)?;
                return Ok((id, reference));
            }
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CaseError::Query(diesel::result::Error::RollbackTransaction))
}

/// Risk after the case rules: a child case is at least high (DESIGN §8).
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

/// The open (not closed) case of a contact, if any.
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

/// Raises a case's risk and flags to include a new triage result; records what changed and notifies when
/// the case became critical or a child case. Returns true when anything changed.
pub fn escalate(
    conn: &mut AnyConnection,
    case: &CaseRow,
    triage: &Triage,
    report_id: &str,
    critical_ack_deadline: Duration,
) -> QueryResult<bool> {
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
    add_event(
        conn,
        (&case.id, &case.organization_id),
        "escalated",
        None,
        Some(report_id),
        Some(json!({
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
