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
