//! Consent per purpose, recorded on the case: what the person agreed to (or withdrew), how they said it,
//! and who recorded it. Consent is never a condition of help — a case without any consent is worked like
//! any other; only the things a purpose covers (a referral, contact by SMS, a report to the police, the
//! statistics) look for it.
//!
//! The current state of a purpose is its newest row (`consents`, append-only apart from `withdrawn_at`):
//! granting again after a withdrawal adds a row, withdrawing marks the granted row withdrawn and adds a
//! refusal, so the history stays.

use chrono::Utc;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::db::AnyConnection;
use crate::db::schema::consents;

/// What a consent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Keeping the report at all (the web form asks for it).
    ReportStorage,
    /// Being offered services (shelter, legal, medical, psychological help).
    Services,
    /// Sharing the minimum a referral needs with another organization.
    Referral,
    /// Reporting to law enforcement.
    LawEnforcement,
    /// Counting the case, anonymised, in statistics.
    Statistics,
    /// Being contacted by SMS.
    ContactSms,
    /// Being called back.
    ContactCall,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 7] = [
        Purpose::ReportStorage,
        Purpose::Services,
        Purpose::Referral,
        Purpose::LawEnforcement,
        Purpose::Statistics,
        Purpose::ContactSms,
        Purpose::ContactCall,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ReportStorage => "report_storage",
            Purpose::Services => "services",
            Purpose::Referral => "referral",
            Purpose::LawEnforcement => "law_enforcement",
            Purpose::Statistics => "statistics",
            Purpose::ContactSms => "contact_sms",
            Purpose::ContactCall => "contact_call",
        }
    }

    /// From the stored or requested name.
    pub fn parse(raw: &str) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// How the person gave (or withdrew) consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Verbal,
    Ivr,
    Web,
    Written,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 4] = [Method::Verbal, Method::Ivr, Method::Web, Method::Written];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Verbal => "verbal",
            Method::Ivr => "ivr",
            Method::Web => "web",
            Method::Written => "written",
        }
    }

    /// From the stored or requested name.
    pub fn parse(raw: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == raw)
    }
}

/// Appends a consent row for a case (no contact: consent belongs to the case it was given in).
pub(crate) fn insert(
    conn: &mut AnyConnection,
    organization_id: &str,
    case_id: &str,
    purpose: Purpose,
    granted: bool,
    method: Method,
    recorded_by: Option<&str>,
) -> QueryResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    diesel::insert_into(consents::table)
        .values((
            consents::id.eq(&id),
            consents::organization_id.eq(organization_id),
            consents::case_id.eq(case_id),
            consents::purpose.eq(purpose.as_str()),
            consents::granted.eq(granted),
            consents::source.eq(method.as_str()),
            consents::recorded_by.eq(recorded_by),
            consents::recorded_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Records the consents a person gave on the public web form with their report, on the form's case only.
pub fn record_from_form(
    conn: &mut AnyConnection,
    organization_id: &str,
    case_id: &str,
    purposes: &[Purpose],
) -> QueryResult<()> {
    for purpose in purposes {
        insert(conn, organization_id, case_id, *purpose, true, Method::Web, None)?;
    }
    Ok(())
}

/// The current consent for one purpose: the newest row.
#[derive(Debug, Clone, Serialize)]
pub struct Current {
    pub purpose: String,
    pub granted: bool,
    pub method: String,
    pub recorded_at: chrono::NaiveDateTime,
}

/// The current consent of every purpose recorded for the case.
pub fn current(conn: &mut AnyConnection, case_id: &str) -> QueryResult<Vec<Current>> {
    let rows: Vec<(String, bool, String, chrono::NaiveDateTime)> = consents::table
        .filter(consents::case_id.eq(case_id))
        .order(consents::id.desc())
        .select((
            consents::purpose,
            consents::granted,
            consents::source,
            consents::recorded_at,
        ))
        .load(conn)?;
    let mut out: Vec<Current> = Vec::new();
    for (purpose, granted, method, recorded_at) in rows {
        if !out.iter().any(|c| c.purpose == purpose) {
            out.push(Current {
                purpose,
                granted,
                method,
                recorded_at,
            });
        }
    }
    out.sort_by(|a, b| a.purpose.cmp(&b.purpose));
    Ok(out)
}

/// Whether the person's consent for `purpose` is granted now (a referral asks this first).
pub fn granted(conn: &mut AnyConnection, case_id: &str, purpose: Purpose) -> QueryResult<bool> {
    Ok(current(conn, case_id)?
        .iter()
        .any(|c| c.purpose == purpose.as_str() && c.granted))
}

#[allow(clippy::too_many_arguments)]
/// Records consent for a purpose, or its withdrawal (`update_case`): a new row; a withdrawal also marks the
/// granted rows of that purpose withdrawn. On the timeline (a note sealed with it) and audited.
pub fn set_consent(
    conn: &mut AnyConnection,
    crypto: &crate::crypto::Crypto,
    staff: &crate::auth::Staff,
    case: &str,
    purpose: Purpose,
    granted: bool,
    method: Method,
    note: Option<&str>,
) -> Result<Vec<Current>, super::CaseError> {
    use super::timeline::{self, EventKind};
    let note = super::workflow::clean_text(note)?;
    let case = super::gate::for_change(conn, staff, case, "case_consent_recorded")?.case;
    if !granted {
        diesel::update(
            consents::table
                .filter(consents::case_id.eq(&case.id))
                .filter(consents::purpose.eq(purpose.as_str()))
                .filter(consents::granted.eq(true))
                .filter(consents::withdrawn_at.is_null()),
        )
        .set(consents::withdrawn_at.eq(Some(Utc::now().naive_utc())))
        .execute(conn)?;
    }
    insert(
        conn,
        &case.organization_id,
        &case.id,
        purpose,
        granted,
        method,
        Some(&staff.user_id),
    )?;
    let facts = serde_json::json!({ "purpose": purpose, "granted": granted, "method": method });
    let event = case
        .event(EventKind::ConsentRecorded)
        .by(&staff.user_id)
        .data(facts.clone());
    match &note {
        Some(text) => timeline::add_with_body(conn, crypto, &event, text).map(|_| ())?,
        None => timeline::add(conn, &event).map(|_| ())?,
    }
    crate::audit::record(
        conn,
        &staff.audit(
            "case_consent_recorded",
            Some("case"),
            Some(&case.id),
            crate::audit::Outcome::Success,
            Some(facts),
        ),
    )?;
    Ok(current(conn, &case.id)?)
}
