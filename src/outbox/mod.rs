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
    fn as_str(self) -> &'static str {
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
    /// Enqueuing the same key twice keeps one row (e.g. `case_critical:<case id>`).
    pub dedupe_key: Option<String>,
}

/// Enqueues a message inside the caller's transaction. Returns false when the dedupe key already existed.
pub fn enqueue(conn: &mut AnyConnection, message: &NewMessage<'_>) -> QueryResult<bool> {
    let now = Utc::now().naive_utc();
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(outbox::table)
            .values((
                outbox::id.eq(uuid::Uuid::now_v7().to_string()),
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
