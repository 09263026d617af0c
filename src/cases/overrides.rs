//! Operator override of triage: a person changes a case's risk, exploitation types, child flag or shelter
//! need, with a reason. It is a case event that names who did it and keeps the values it replaced; the
//! reason (free text that may hold personal data) is encrypted under the case's data key. Overrides that
//! make a case critical or a child case notify like triage would; a child case stays at least high.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::{CaseError, CaseRow, effective_flags, join_types, notify_urgency, risk_rank};
use crate::crypto::{Crypto, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::{case_events, cases};
use crate::triage::{ExploitationType, RiskLevel};

/// What an operator asks to change. `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct TriageOverride {
    pub risk: Option<RiskLevel>,
    pub exploitation_types: Option<Vec<ExploitationType>>,
    pub child_victim: Option<bool>,
    pub shelter_needed: Option<bool>,
    pub reason: String,
}

/// The triage-relevant values of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TriageValues {
    pub risk: RiskLevel,
    pub exploitation_types: Vec<ExploitationType>,
    pub child_victim: bool,
    pub shelter_needed: bool,
}

/// Why an override was refused.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    #[error("give a reason for the change (1 to 2000 characters)")]
    NoReason,
    #[error("nothing would change: the case already has these values")]
    NothingChanged,
    #[error("a child case is at least high priority; raise the risk or clear the child flag")]
    ChildBelowHigh,
    #[error(transparent)]
    Case(#[from] CaseError),
}

impl From<diesel::result::Error> for OverrideError {
    fn from(err: diesel::result::Error) -> Self {
        OverrideError::Case(CaseError::Query(err))
    }
}

/// The place of an event's encrypted body.
pub fn event_body_place(event_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "case_events",
        column: "body_enc",
        row_id: event_id,
    }
}

/// Applies an override to `case` on behalf of `actor_user_id`; returns the values before and after.
pub fn apply(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    case: &CaseRow,
    actor_user_id: &str,
    change: &TriageOverride,
    critical_ack_deadline: Duration,
) -> Result<(TriageValues, TriageValues), OverrideError> {
    let reason = change.reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(OverrideError::NoReason);
    }
    let before = TriageValues {
        risk: case.risk_level(),
        exploitation_types: case.types(),
        child_victim: case.child_victim,
        shelter_needed: case.shelter_needed,
    };
    let mut types = change
        .exploitation_types
        .clone()
        .unwrap_or_else(|| before.exploitation_types.clone());
    types.sort();
    types.dedup();
    let after = TriageValues {
        risk: change.risk.unwrap_or(before.risk),
        exploitation_types: types,
        child_victim: change.child_victim.unwrap_or(before.child_victim),
        shelter_needed: change.shelter_needed.unwrap_or(before.shelter_needed),
    };
    if after == before {
        return Err(OverrideError::NothingChanged);
    }
    if effective_flags(after.risk, after.child_victim) != after.risk {
        return Err(OverrideError::ChildBelowHigh);
    }
    let now = Utc::now().naive_utc();
    let became_critical = after.risk == RiskLevel::Critical && before.risk != RiskLevel::Critical;
    let sla_due_at = if became_critical && case.acknowledged_at.is_none() {
        Some(now + critical_ack_deadline)
    } else {
        case.sla_due_at
    };
    diesel::update(cases::table.find(&case.id))
        .set((
            cases::risk.eq(after.risk.as_str()),
            cases::risk_rank.eq(risk_rank(after.risk)),
            cases::exploitation_types.eq(join_types(&after.exploitation_types)),
            cases::child_victim.eq(after.child_victim),
            cases::shelter_needed.eq(after.shelter_needed),
            cases::sla_due_at.eq(sla_due_at),
            cases::updated_at.eq(now),
        ))
        .execute(conn)?;
    let (dek, version): (Vec<u8>, i32) = cases::table
        .find(&case.id)
        .select((cases::dek_wrapped, cases::key_version))
        .first(conn)?;
    let key = crypto.unwrap_record_key(&dek, version).map_err(CaseError::from)?;
    let event_id = uuid::Uuid::now_v7().to_string();
    let sealed_reason = key
        .seal_str(event_body_place(&event_id), reason)
        .map_err(CaseError::from)?;
    diesel::insert_into(case_events::table)
        .values((
            case_events::id.eq(&event_id),
            case_events::case_id.eq(&case.id),
            case_events::organization_id.eq(&case.organization_id),
            case_events::kind.eq("triage_override"),
            case_events::actor_user_id.eq(actor_user_id),
            case_events::data.eq(json!({ "previous": before, "new": after }).to_string()),
            case_events::body_enc.eq(sealed_reason),
            case_events::created_at.eq(now),
        ))
        .execute(conn)?;
    let newly_child = after.child_victim && !before.child_victim;
    notify_urgency(conn, &case.id, became_critical, newly_child)?;
    Ok((before, after))
}
