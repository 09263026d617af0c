//! The transactional outbox: a notification (email, outbound SMS) is a row written in the same transaction
//! as the event that causes it, so it is sent if and only if that event committed. A worker sends rows with
//! retries (notifications). Payloads carry references (case id, reference, topic), never personal data.

use chrono::Utc;
use diesel::prelude::*;
use serde_json::Value;

use crate::accounts::is_unique_violation;
use crate::db::AnyConnection;
use crate::db::schema::outbox;

/// What kind of message a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// An email to staff.
    Email,
    /// An SMS to a contact (only with a safe-contact record).
    Sms,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

/// A message to enqueue.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub organization_id: &'a str,
    pub channel: Channel,
    /// What happened, e.g. `case_critical`, `case_child`, `case_assigned`.
    pub topic: &'a str,
    /// References only (ids, case reference, urgency).
    pub payload: Value,
    /// Enqueuing the same key twice keeps one row (e.g. `case_critical:<case id>:<user id>`).
    pub dedupe_key: Option<String>,
    /// The row id, when the caller needs it before the insert (to seal `payload_enc` to it).
    pub id: Option<String>,
    /// The case the message is about (per-case caps, the case's history).
    pub case_id: Option<&'a str>,
    /// The staff recipient of an email (one row per recipient: a retry reaches only that one).
    pub recipient_user_id: Option<&'a str>,
    /// Personal content (an SMS text), sealed to this row: (ciphertext, wrapped data key, key version).
    pub sealed: Option<(Vec<u8>, Vec<u8>, i32)>,
}

impl<'a> NewMessage<'a> {
    /// A message with references only.
    pub fn new(organization_id: &'a str, channel: Channel, topic: &'a str, payload: Value) -> Self {
        NewMessage {
            organization_id,
            channel,
            topic,
            payload,
            dedupe_key: None,
            id: None,
            case_id: None,
            recipient_user_id: None,
            sealed: None,
        }
    }
}

/// Enqueues a message inside the caller's transaction. Returns false when the dedupe key already existed.
pub fn enqueue(conn: &mut AnyConnection, message: &NewMessage<'_>) -> QueryResult<bool> {
    let now = Utc::now().naive_utc();
    let id = message
        .id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let (payload_enc, dek_wrapped, key_version) = match &message.sealed {
        Some((enc, dek, version)) => (Some(enc.clone()), Some(dek.clone()), Some(*version)),
        None => (None, None, None),
    };
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(outbox::table)
            .values((
                outbox::id.eq(&id),
                outbox::case_id.eq(message.case_id),
                outbox::recipient_user_id.eq(message.recipient_user_id),
                outbox::payload_enc.eq(&payload_enc),
                outbox::dek_wrapped.eq(&dek_wrapped),
                outbox::key_version.eq(key_version),
                outbox::organization_id.eq(message.organization_id),
                outbox::kind.eq(message.channel.as_str()),
                outbox::topic.eq(message.topic),
                outbox::payload.eq(message.payload.to_string()),
                outbox::dedupe_key.eq(&message.dedupe_key),
                outbox::status.eq("pending"),
                outbox::attempts.eq(0),
                outbox::next_attempt_at.eq(now),
                outbox::created_at.eq(now),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Withdraws the emails about a case still waiting to go out (the case was closed: nobody needs telling any
/// more). SMS to the contact are left alone. Returns how many were withdrawn.
pub fn withdraw_case_emails(conn: &mut AnyConnection, case_id: &str) -> QueryResult<usize> {
    diesel::delete(
        outbox::table
            .filter(outbox::case_id.eq(case_id))
            .filter(outbox::kind.eq(Channel::Email.as_str()))
            .filter(outbox::status.eq("pending")),
    )
    .execute(conn)
}
