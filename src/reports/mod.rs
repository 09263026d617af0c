//! The reports store: the one place a report is written. A report is one inbound event — an SMS, a call, a
//! web-form submission, an operator's entry — stored encrypted (its body and details sealed under the
//! report's own data key, see [`sealed`]) before anyone is told "received".
//!
//! * [`insert`] writes a report, idempotent on the channel and the provider's event id: a provider's retry
//!   gets the report stored the first time and writes nothing.
//! * [`load`] and [`mark`] read a report for processing and record what processing did (triage status,
//!   case). Moving a report to another case is a case action (`cases::move_report`), which calls
//!   [`set_case`].
//!
//! Who the sender is (`contact_id`) is decided by the caller: SMS and calls look the number up
//! (`contacts`); a number typed into the public web form is never looked up (it stays in the report's
//! sealed details).

pub mod sealed;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

pub use sealed::{body_place, details_place, open_body, open_details, reseal_details};

use crate::accounts::is_unique_violation;
use crate::crypto::{Crypto, CryptoError};
use crate::db::AnyConnection;
use crate::db::schema::reports;

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Sms,
    Voice,
    Web,
    /// Recorded by staff from a contact taken outside the gateways (a call to an office phone, a visit).
    Operator,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 4] = [Source::Sms, Source::Voice, Source::Web, Source::Operator];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sms => "sms",
            Source::Voice => "voice",
            Source::Web => "web",
            Source::Operator => "operator",
        }
    }

    /// From the stored name.
    pub fn parse(raw: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Errors of the reports store.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// Where a concatenated SMS part belongs: the group key (a keyed digest of channel, sender and the
/// provider's reference) and its position.
#[derive(Debug, Clone)]
pub struct Part {
    pub group: String,
    pub index: i32,
    pub total: i32,
}

/// A report to store.
#[derive(Debug, Clone)]
pub struct NewReport<'a> {
    pub organization_id: &'a str,
    pub source: Source,
    /// The channel it arrived on (none for web and operator reports).
    pub channel_id: Option<&'a str>,
    pub provider: Option<&'a str>,
    /// The provider's id of the event: with `channel_id`, the idempotency key.
    pub provider_event_id: Option<&'a str>,
    /// The sender, when known and looked up by the caller.
    pub contact_id: Option<&'a str>,
    /// What the person said or wrote (sealed).
    pub body: Option<&'a str>,
    /// Everything else the event carried (sealed as JSON).
    pub details: Option<serde_json::Value>,
    pub received_at: NaiveDateTime,
    pub part: Option<Part>,
    /// The IVR menu path (not personal: the same facts as the case's flags).
    pub ivr_path: Option<&'a str>,
}

/// The result of storing one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The report's id.
    pub report_id: String,
    /// True when this event had been stored before (a provider retry): nothing was written.
    pub duplicate: bool,
}

fn existing(conn: &mut AnyConnection, channel_id: &str, event_id: &str) -> QueryResult<Option<String>> {
    reports::table
        .filter(reports::channel_id.eq(channel_id))
        .filter(reports::provider_event_id.eq(event_id))
        .select(reports::id)
        .first(conn)
        .optional()
}

/// Stores a report as pending (call inside the caller's write transaction; acknowledge only after it
/// commits). Idempotent on (`channel_id`, `provider_event_id`) when both are given.
pub fn insert(conn: &mut AnyConnection, crypto: &Crypto, new: &NewReport<'_>) -> Result<Stored, ReportError> {
    let idempotency = new.channel_id.zip(new.provider_event_id);
    if let Some((channel_id, event_id)) = idempotency
        && let Some(report_id) = existing(conn, channel_id, event_id)?
    {
        return Ok(Stored {
            report_id,
            duplicate: true,
        });
    }
    let report_id = uuid::Uuid::now_v7().to_string();
    let (key, wrapped) = crypto.new_record_key()?;
    let body = new
        .body
        .map(|text| key.seal_str(body_place(&report_id), text))
        .transpose()?;
    let details = new
        .details
        .as_ref()
        .map(|d| sealed::seal_details(&key, &report_id, d))
        .transpose()?;
    let now = chrono::Utc::now().naive_utc();
    // A savepoint: a concurrent delivery of the same event loses on the unique key without aborting the
    // caller's transaction (PostgreSQL).
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(reports::table)
            .values((
                reports::id.eq(&report_id),
                reports::organization_id.eq(new.organization_id),
                reports::channel_id.eq(new.channel_id),
                reports::source.eq(new.source.as_str()),
                reports::provider.eq(new.provider),
                reports::provider_event_id.eq(new.provider_event_id),
                reports::contact_id.eq(new.contact_id),
                reports::body_enc.eq(&body),
                reports::details_enc.eq(&details),
                reports::dek_wrapped.eq(&wrapped.bytes),
                reports::key_version.eq(wrapped.version),
                reports::triage_status.eq("pending"),
                reports::received_at.eq(new.received_at),
                reports::created_at.eq(now),
                reports::part_group.eq(new.part.as_ref().map(|p| p.group.as_str())),
                reports::part_index.eq(new.part.as_ref().map(|p| p.index)),
                reports::part_total.eq(new.part.as_ref().map(|p| p.total)),
                reports::ivr_path.eq(new.ivr_path),
            ))
            .execute(conn)
    });
    match (inserted, idempotency) {
        (Ok(_), _) => Ok(Stored {
            report_id,
            duplicate: false,
        }),
        (Err(e), Some((channel_id, event_id))) if is_unique_violation(&e) => {
            let report_id = existing(conn, channel_id, event_id)?.ok_or(diesel::result::Error::NotFound)?;
            Ok(Stored {
                report_id,
                duplicate: true,
            })
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// A report as processing and case actions read it.
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
    pub details_enc: Option<Vec<u8>>,
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

impl ReportRow {
    /// The source, as stored.
    pub fn source(&self) -> Option<Source> {
        Source::parse(&self.source)
    }
}

/// One report by id.
pub fn load(conn: &mut AnyConnection, report_id: &str) -> QueryResult<Option<ReportRow>> {
    reports::table
        .find(report_id)
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
}

/// The pending parts of a concatenated SMS, in order.
pub fn pending_parts(conn: &mut AnyConnection, group: &str) -> QueryResult<Vec<ReportRow>> {
    reports::table
        .filter(reports::part_group.eq(group))
        .filter(reports::triage_status.eq("pending"))
        .order((reports::part_index.asc(), reports::created_at.asc()))
        .select(ReportRow::as_select())
        .load(conn)
}

/// How many reports a contact sent since `since` (flood detection).
pub fn count_from_contact(
    conn: &mut AnyConnection,
    contact_id: &str,
    since: NaiveDateTime,
) -> QueryResult<i64> {
    reports::table
        .filter(reports::contact_id.eq(contact_id))
        .filter(reports::created_at.gt(since))
        .count()
        .get_result(conn)
}

/// What processing did with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed<'a> {
    /// Triaged; `triage` is the result as JSON.
    Done { triage: Option<&'a str> },
    /// Part of a flood or of a concatenated SMS triaged through its first part.
    Collapsed { into: Option<&'a str> },
}

/// Records what processing did, only if the report is still pending (so a second run changes nothing).
pub fn mark(
    conn: &mut AnyConnection,
    report_id: &str,
    case_id: Option<&str>,
    processed: Processed<'_>,
) -> QueryResult<()> {
    let (status, triage, collapsed_into) = match processed {
        Processed::Done { triage } => ("done", triage, None),
        Processed::Collapsed { into } => ("collapsed", None, into),
    };
    diesel::update(
        reports::table
            .find(report_id)
            .filter(reports::triage_status.eq("pending")),
    )
    .set((
        reports::triage_status.eq(status),
        reports::case_id.eq(case_id),
        reports::triage.eq(triage),
        reports::collapsed_into.eq(collapsed_into),
    ))
    .execute(conn)?;
    Ok(())
}

/// Puts a report (and the parts collapsed into it) in another case.
pub fn set_case(conn: &mut AnyConnection, report_id: &str, case_id: &str) -> QueryResult<usize> {
    diesel::update(
        reports::table.filter(
            reports::id
                .eq(report_id)
                .or(reports::collapsed_into.eq(report_id)),
        ),
    )
    .set(reports::case_id.eq(case_id))
    .execute(conn)
}

/// Moves every report of one case to another (a merge).
pub fn move_all(conn: &mut AnyConnection, from_case: &str, to_case: &str) -> QueryResult<Vec<String>> {
    let ids: Vec<String> = reports::table
        .filter(reports::case_id.eq(from_case))
        .select(reports::id)
        .load(conn)?;
    diesel::update(reports::table.filter(reports::case_id.eq(from_case)))
        .set(reports::case_id.eq(to_case))
        .execute(conn)?;
    Ok(ids)
}
