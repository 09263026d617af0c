//! Intake: turning what arrives (an SMS webhook, a call, a web-form submission) into a stored report —
//! durably, exactly once, and before anyone is told "received". Triage and case linking happen afterwards
//! from the database ([`process`]), so a crash between the two never loses an acknowledged report.

pub mod process;
pub mod sweeper;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use komek_gateways::InboundSms;
use serde::Serialize;

use crate::accounts::is_unique_violation;
use crate::channels::Channel;
use crate::contacts::{self, ContactError};
use crate::crypto::{Crypto, CryptoError, FieldContext, RecordKey};
use crate::db::AnyConnection;
use crate::db::schema::{organizations, reports};
use crate::domain::{CountryCode, PhoneNumber};

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

impl From<ContactError> for IntakeError {
    fn from(err: ContactError) -> Self {
        match err {
            ContactError::Crypto(e) => IntakeError::Crypto(e),
            ContactError::Query(e) => IntakeError::Query(e),
        }
    }
}

/// The result of storing one inbound event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The report's id.
    pub report_id: String,
    /// True when this event had been stored before (a provider retry): nothing was written.
    pub duplicate: bool,
}

/// The place of a report's encrypted body.
pub fn body_place(report_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "reports",
        column: "body_enc",
        row_id: report_id,
    }
}

/// The place of a report's encrypted details (sender as given, recipient, provider metadata).
pub fn details_place(report_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "reports",
        column: "details_enc",
        row_id: report_id,
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

fn organization_country(conn: &mut AnyConnection, organization_id: &str) -> QueryResult<Option<CountryCode>> {
    let country: Option<String> = organizations::table
        .find(organization_id)
        .select(organizations::country)
        .first(conn)?;
    Ok(country.and_then(|c| CountryCode::parse(&c).ok()))
}

fn existing_report(
    conn: &mut AnyConnection,
    channel_id: &str,
    event_id: &str,
) -> QueryResult<Option<String>> {
    reports::table
        .filter(reports::channel_id.eq(channel_id))
        .filter(reports::provider_event_id.eq(event_id))
        .select(reports::id)
        .first(conn)
        .optional()
}

/// Stores an inbound SMS as a pending report (idempotent on the channel and the provider's event id).
/// Call inside a write transaction; the report is acknowledged only after that transaction commits.
pub fn store_sms(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    channel: &Channel,
    sms: &InboundSms,
) -> Result<Stored, IntakeError> {
    if let Some(report_id) = existing_report(conn, &channel.id, &sms.event_id)? {
        return Ok(Stored {
            report_id,
            duplicate: true,
        });
    }
    let region = organization_country(conn, &channel.organization_id)?;
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
    let now = Utc::now().naive_utc();
    let report_id = uuid::Uuid::now_v7().to_string();
    let (key, wrapped) = crypto.new_record_key()?;
    let details = SmsDetails {
        raw_sender: sender.is_none().then(|| sms.from.expose().as_str()),
        to: sms.to.as_ref().map(|t| t.expose().as_str()),
        provider_received_at: sms.received_at,
    };
    let sealed = SealedReport::seal(&key, &report_id, sms.text.expose(), &details)?;
    let part_group = match (&sms.part, &contact_id) {
        (Some(part), Some(contact)) if part.total > 1 => Some(crypto.blind_index(
            "sms-part",
            &format!("{}|{contact}|{}|{}", channel.id, part.reference, part.total),
        )),
        _ => None,
    };
    let part = sms.part.as_ref().filter(|_| part_group.is_some());
    let received_at = sms.received_at.map(|t| t.naive_utc()).unwrap_or(now);
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(reports::table)
            .values((
                reports::id.eq(&report_id),
                reports::organization_id.eq(&channel.organization_id),
                reports::channel_id.eq(&channel.id),
                reports::source.eq("sms"),
                reports::provider.eq(&channel.provider),
                reports::provider_event_id.eq(&sms.event_id),
                reports::contact_id.eq(&contact_id),
                reports::body_enc.eq(Some(&sealed.body)),
                reports::details_enc.eq(Some(&sealed.details)),
                reports::dek_wrapped.eq(&wrapped.bytes),
                reports::key_version.eq(wrapped.version),
                reports::triage_status.eq("pending"),
                reports::received_at.eq(received_at),
                reports::created_at.eq(now),
                reports::part_group.eq(&part_group),
                reports::part_index.eq(part.map(|p| i32::from(p.index))),
                reports::part_total.eq(part.map(|p| i32::from(p.total))),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(Stored {
            report_id,
            duplicate: false,
        }),
        Err(e) if is_unique_violation(&e) => {
            let report_id =
                existing_report(conn, &channel.id, &sms.event_id)?.ok_or(diesel::result::Error::NotFound)?;
            Ok(Stored {
                report_id,
                duplicate: true,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// A report's body and details, sealed under the report's data key.
pub struct SealedReport {
    pub body: Vec<u8>,
    pub details: Vec<u8>,
}

impl SealedReport {
    /// Seals `body` and the JSON of `details` for report `report_id`.
    pub fn seal(
        key: &RecordKey,
        report_id: &str,
        body: &str,
        details: &impl Serialize,
    ) -> Result<SealedReport, CryptoError> {
        let details_json = serde_json::to_vec(details).map_err(|_| CryptoError::Tampered)?;
        Ok(SealedReport {
            body: key.seal_str(body_place(report_id), body)?,
            details: key.seal(details_place(report_id), &details_json)?,
        })
    }
}

/// A pending report as the processor reads it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reports)]
pub struct ReportRow {
    pub id: String,
    pub organization_id: String,
    pub channel_id: Option<String>,
    pub source: String,
    pub contact_id: Option<String>,
    pub case_id: Option<String>,
    pub body_enc: Option<Vec<u8>>,
    pub dek_wrapped: Vec<u8>,
    pub key_version: i32,
    pub triage_status: String,
    pub received_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub part_group: Option<String>,
    pub part_index: Option<i32>,
    pub part_total: Option<i32>,
    pub ivr_path: Option<String>,
}
