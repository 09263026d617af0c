//! Operator override of triage: a person changes a case's risk, exploitation types, child flag or shelter
//! need, with a reason. It is a case event that names who did it and keeps the values it replaced; the
//! reason (free text that may hold personal data) is sealed in the event under the case's data key. Overrides that
//! make a case critical or a child case notify like triage would; a child case stays at least high.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::incoming::notify_urgency;
use super::timeline::{self, EventKind};
use super::{CaseError, effective_flags, gate, join_types, risk_rank};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::crypto::Crypto;
use crate::db::AnyConnection;
use crate::db::schema::cases;
use crate::error::ErrorCode;
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

/// Applies an override on behalf of `staff` (who needs `override_triage`); returns the values before and
/// after. Bad input (no reason, nothing changes, a child case below high) is `invalid_override`.
pub fn override_triage(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    staff: &Staff,
    case: &str,
    change: &TriageOverride,
    critical_ack_deadline: Duration,
) -> Result<Overridden, CaseError> {
    let case = gate::for_change(conn, staff, case, "case_triage_override")?.case;
    let invalid = |message: &str| CaseError::refused_with(ErrorCode::InvalidOverride, message);
    let reason = change.reason.trim();
    if reason.is_empty() || reason.chars().count() > 2000 {
        return Err(invalid("give a reason for the change (1 to 2000 characters)"));
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
        return Err(invalid("nothing would change: the case already has these values"));
    }
    if effective_flags(after.risk, after.child_victim) != after.risk {
        return Err(invalid(
            "a child case is at least high priority; raise the risk or clear the child flag",
        ));
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
    let facts = json!({ "previous": before, "new": after });
    timeline::add_with_body(
        conn,
        crypto,
        &case
            .event(EventKind::TriageOverride)
            .by(&staff.user_id)
            .data(facts.clone()),
        reason,
    )?;
    audit::record(
        conn,
        &staff.audit(
            "case_triage_override",
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(facts),
        ),
    )?;
    let newly_child = after.child_victim && !before.child_victim;
    notify_urgency(conn, &case.id, became_critical, newly_child)?;
    Ok(Overridden {
        id: case.id,
        reference: case.reference,
        previous: before,
        new: after,
    })
}

/// The result of [`override_triage`].
#[derive(Debug, Clone, Serialize)]
pub struct Overridden {
    pub id: String,
    pub reference: String,
    pub previous: TriageValues,
    pub new: TriageValues,
}
