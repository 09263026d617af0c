//! Intake: turning an inbound SMS into a stored report — durably, exactly once, and before anyone is told
//! "received" ([`store_sms`], through the one reports store, `crate::reports`). Triage and case linking
//! happen afterwards from the database ([`process`]), so a crash between the two never loses an
//! acknowledged report. Calls become reports in `ivr::store`, web submissions in `webform::intake`,
//! operator entries in `cases::entry`; all go through the same store and the same processing.

pub mod process;
pub mod sweeper;

use chrono::{DateTime, Utc};
use komek_gateways::InboundSms;
use serde::Serialize;

use crate::channels::Channel;
use crate::contacts::{self, ContactError};
use crate::crypto::{Crypto, CryptoError};
use crate::db::AnyConnection;
use crate::domain::PhoneNumber;
use crate::reports::{self, NewReport, Part, ReportError, Source, Stored};

/// Errors while storing a report.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl From<ReportError> for IntakeError {
    fn from(err: ReportError) -> Self {
        match err {
            ReportError::Crypto(e) => IntakeError::Crypto(e),
            ReportError::Query(e) => IntakeError::Query(e),
        }
    }
}

impl From<ContactError> for IntakeError {
    fn from(err: ContactError) -> Self {
        match err {
            ContactError::Crypto(e) => IntakeError::Crypto(e),
            ContactError::Query(e) => IntakeError::Query(e),
        }
    }
}

/// Provider metadata kept with an SMS report, encrypted.
#[derive(Serialize)]
struct SmsDetails<'a> {
    /// The sender exactly as the provider gave it, kept only when it is not a phone number we could read.
    raw_sender: Option<&'a str>,
    to: Option<&'a str>,
    provider_received_at: Option<DateTime<Utc>>,
}

/// Stores an inbound SMS as a pending report (idempotent on the channel and the provider's event id).
/// Call inside a write transaction; the report is acknowledged only after that transaction commits.
pub fn store_sms(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    channel: &Channel,
    sms: &InboundSms,
) -> Result<Stored, IntakeError> {
    let region = crate::accounts::orgs::country(conn, &channel.organization_id)?;
    let sender = PhoneNumber::parse(sms.from.expose(), region).ok();
    let contact_id = match &sender {
        Some(phone) => Some(contacts::find_or_create_by_phone(
            conn,
            crypto,
            &channel.organization_id,
            phone,
        )?),
        None => None,
    };
    let details = SmsDetails {
        raw_sender: sender.is_none().then(|| sms.from.expose().as_str()),
        to: sms.to.as_ref().map(|t| t.expose().as_str()),
        provider_received_at: sms.received_at,
    };
    let part = match (&sms.part, &contact_id) {
        (Some(part), Some(contact)) if part.total > 1 => Some(Part {
            group: crypto.blind_index(
                "sms-part",
                &format!("{}|{contact}|{}|{}", channel.id, part.reference, part.total),
            ),
            index: i32::from(part.index),
            total: i32::from(part.total),
        }),
        _ => None,
    };
    let now = Utc::now().naive_utc();
    let new = NewReport {
        organization_id: &channel.organization_id,
        source: Source::Sms,
        channel_id: Some(&channel.id),
        provider: Some(&channel.provider),
        provider_event_id: Some(&sms.event_id),
        contact_id: contact_id.as_deref(),
        body: Some(sms.text.expose()),
        details: Some(serde_json::to_value(&details).map_err(|_| CryptoError::Tampered)?),
        received_at: sms.received_at.map(|t| t.naive_utc()).unwrap_or(now),
        part,
        ivr_path: None,
    };
    Ok(reports::insert(conn, crypto, &new)?)
}
