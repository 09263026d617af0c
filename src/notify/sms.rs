//! Outbound SMS to a contact (an operator replying), under R20 and R41: Komek never initiates contact
//! unless the contact's safe-contact record allows SMS, at this hour of the contact's day, with the wording
//! agreed with them. The text sent is exactly that agreed wording (an operator cannot improvise a message
//! that might expose the person to whoever holds the phone).
//!
//! A number declared on the public web form is never a contact (it stays, unverified, with the form's
//! case): nothing is sent to it unless staff confirm it, link it to the case and record a safe-contact
//! record.
//!
//! A send goes through the outbox (the text sealed to the row in `payload_enc`) and the channel the contact
//! wrote to, after these checks: a safe-contact record exists and allows SMS; the current local time is in
//! one of its windows; the text is the agreed wording; the destination matches an allowed number range and
//! no blocked one (ranges, not countries: `+77` is Kazakhstan's mobiles, while `+7` is also Russia); and the
//! per-case-per-day, per-case and global-per-day caps are not reached. The worker checks the record, window
//! and destination again just before sending, and drops the message (dead letter, visible to supervisors)
//! when they no longer hold.

use chrono::{Duration, NaiveDateTime, NaiveTime, Timelike as _};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crypto::{Crypto, CryptoError, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::{cases, channels, contacts, outbox, reports};
use crate::domain::PhoneNumber;
use crate::outbox::{Channel, NewMessage, enqueue};
use crate::sensitive::Sensitive;

/// Longest agreed wording (one or two SMS segments).
pub const MAX_WORDING: usize = 300;

/// A local time window (`"09:00"`–`"18:00"`; a window may wrap past midnight; `from == to` is the whole
/// day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

impl Window {
    fn contains(&self, t: NaiveTime) -> bool {
        if self.from == self.to {
            // The whole day.
            true
        } else if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }
}

/// What a contact agreed to: how and when Komek may reach them. Stored encrypted on the contact.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafeContact {
    /// May Komek send an SMS at all.
    pub sms: bool,
    /// When, in the contact's local time. Empty: never.
    pub windows: Vec<Window>,
    /// The contact's offset from UTC in minutes (Kazakhstan +300, Kyrgyzstan +360, Tajikistan and
    /// Uzbekistan +300).
    pub utc_offset_minutes: i32,
    /// The exact text that may be sent (agreed with the contact, e.g. "Your parcel is ready. Code 4471").
    pub wording: String,
    /// Who recorded it and when.
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

impl std::fmt::Debug for SafeContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeContact")
            .field("sms", &self.sms)
            .field("windows", &self.windows.len())
            .finish_non_exhaustive()
    }
}

impl SafeContact {
    /// Checks the parts a caller supplies.
    pub fn validate(&self) -> Result<(), String> {
        let wording = self.wording.trim();
        if self.sms && wording.is_empty() {
            return Err("an agreed wording is required when SMS is allowed".to_owned());
        }
        if wording.chars().count() > MAX_WORDING {
            return Err(format!(
                "the agreed wording is longer than {MAX_WORDING} characters"
            ));
        }
        if wording.chars().any(|c| c.is_control() && c != '\n') {
            return Err("the agreed wording holds control characters".to_owned());
        }
        if !(-720..=840).contains(&self.utc_offset_minutes) {
            return Err("utc_offset_minutes must be between -720 and 840".to_owned());
        }
        if self.sms && self.windows.is_empty() {
            return Err("give at least one time window when SMS is allowed".to_owned());
        }
        if self.windows.len() > 8 {
            return Err("at most 8 time windows".to_owned());
        }
        Ok(())
    }

    /// Whether `now` (UTC) falls inside one of the windows in the contact's local time.
    pub fn allows_at(&self, now: NaiveDateTime) -> bool {
        let local = now + Duration::minutes(i64::from(self.utc_offset_minutes));
        let t = local.time().with_nanosecond(0).unwrap_or(local.time());
        self.windows.iter().any(|w| w.contains(t))
    }
}

fn safe_contact_place(contact_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "contacts",
        column: "safe_contact_enc",
        row_id: contact_id,
    }
}

fn payload_place(outbox_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "outbox",
        column: "payload_enc",
        row_id: outbox_id,
    }
}

/// Errors of the SMS store (not refusals: see [`Blocked`]).
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(&'static str),
}

/// Why a send is refused. Each has a stable code and says what would allow it; none carries personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    #[error("the case has no contact with a phone number")]
    NoPhone,
    #[error("no safe-contact record: record how and when the person may be contacted first")]
    NoSafeContact,
    #[error("the safe-contact record does not allow SMS")]
    SmsNotAgreed,
    #[error("it is outside the time windows the person agreed to")]
    OutsideWindow,
    #[error("the text is not the wording agreed with the person")]
    WordingNotAgreed,
    #[error("the destination number is not in an allowed range")]
    DestinationNotAllowed,
    #[error("no enabled channel that can send SMS reached this case")]
    NoChannel,
    #[error("the per-case daily SMS limit is reached")]
    CaseDailyCap,
    #[error("the per-case SMS limit is reached")]
    CaseCap,
    #[error("the service-wide daily SMS limit is reached")]
    GlobalDailyCap,
}

impl Blocked {
    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            Blocked::NoPhone => "no_contact_number",
            Blocked::NoSafeContact => "no_safe_contact",
            Blocked::SmsNotAgreed => "sms_not_agreed",
            Blocked::OutsideWindow => "outside_contact_window",
            Blocked::WordingNotAgreed => "wording_not_agreed",
            Blocked::DestinationNotAllowed => "destination_not_allowed",
            Blocked::NoChannel => "no_sms_channel",
            Blocked::CaseDailyCap => "case_daily_sms_cap",
            Blocked::CaseCap => "case_sms_cap",
            Blocked::GlobalDailyCap => "global_daily_sms_cap",
        }
    }
}

/// The operator's limits (from the settings).
#[derive(Debug, Clone)]
pub struct SmsPolicy {
    /// E.164 prefixes a destination must start with (e.g. `+77`, `+996`).
    pub allowed_prefixes: Vec<String>,
    /// E.164 prefixes that are refused even inside an allowed range (premium or unknown ranges).
    pub blocked_prefixes: Vec<String>,
    pub per_case_per_day: i64,
    pub per_case_total: i64,
    pub global_per_day: i64,
}

impl SmsPolicy {
    /// Whether a destination (E.164) is allowed.
    pub fn destination_allowed(&self, e164: &str) -> bool {
        self.allowed_prefixes.iter().any(|p| e164.starts_with(p.as_str()))
            && !self.blocked_prefixes.iter().any(|p| e164.starts_with(p.as_str()))
    }
}

/// Records (replaces) the safe-contact preferences of a case's contact. Returns the contact id.
pub fn record_safe_contact(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    case_id: &str,
    record: &SafeContact,
) -> Result<Option<String>, SmsError> {
    let Some(contact_id) = case_contact(conn, case_id)? else {
        return Ok(None);
    };
    let (dek, version): (Vec<u8>, i32) = contacts::table
        .find(&contact_id)
        .select((contacts::dek_wrapped, contacts::key_version))
        .first(conn)?;
    let key = crypto.unwrap_record_key(&dek, version)?;
    let plain = serde_json::to_vec(record).map_err(|_| SmsError::Corrupt("safe contact"))?;
    let sealed = key.seal(safe_contact_place(&contact_id), &plain)?;
    diesel::update(contacts::table.find(&contact_id))
        .set(contacts::safe_contact_enc.eq(Some(sealed)))
        .execute(conn)?;
    Ok(Some(contact_id))
}

fn case_contact(conn: &mut AnyConnection, case_id: &str) -> QueryResult<Option<String>> {
    cases::table
        .find(case_id)
        .select(cases::contact_id)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// A contact's decrypted phone number and safe-contact record.
struct ContactView {
    phone: Option<PhoneNumber>,
    safe: Option<SafeContact>,
}

fn load_contact(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    contact_id: &str,
) -> Result<ContactView, SmsError> {
    type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>, Vec<u8>, i32);
    let (kind, address, safe, dek, version): Row = contacts::table
        .find(contact_id)
        .select((
            contacts::address_kind,
            contacts::address_enc,
            contacts::safe_contact_enc,
            contacts::dek_wrapped,
            contacts::key_version,
        ))
        .first(conn)?;
    let key = crypto.unwrap_record_key(&dek, version)?;
    let phone = match (kind.as_str(), address) {
        ("phone", Some(sealed)) => {
            let raw = key.open_string(crate::contacts::address_place(contact_id), &sealed)?;
            PhoneNumber::parse(raw.expose(), None).ok()
        }
        _ => None,
    };
    let safe = match safe {
        Some(sealed) => {
            let plain = key.open(safe_contact_place(contact_id), &sealed)?;
            // Only a record staff made (windows, agreed wording, who recorded it) allows contact; anything
            // else stored here counts as no record.
            serde_json::from_slice::<SafeContact>(plain.expose()).ok()
        }
        None => None,
    };
    Ok(ContactView { phone, safe })
}

/// The latest enabled channel that brought a report of this case and can send SMS.
fn reply_channel(conn: &mut AnyConnection, case_id: &str) -> QueryResult<Option<String>> {
    let candidates: Vec<(String, String)> = reports::table
        .inner_join(channels::table)
        .filter(reports::case_id.eq(case_id))
        .filter(channels::enabled.eq(true))
        .order(reports::created_at.desc())
        .select((channels::id, channels::provider))
        .limit(20)
        .load(conn)?;
    Ok(candidates
        .into_iter()
        .find(|(_, provider)| !matches!(provider.as_str(), "smssync" | "freeswitch"))
        .map(|(id, _)| id))
}

fn count_sms(
    conn: &mut AnyConnection,
    case_id: Option<&str>,
    since: Option<NaiveDateTime>,
) -> QueryResult<i64> {
    let mut query = outbox::table
        .filter(outbox::kind.eq("sms"))
        .filter(outbox::status.ne("dead"))
        .into_boxed();
    if let Some(case_id) = case_id {
        query = query.filter(outbox::case_id.eq(case_id.to_owned()));
    }
    if let Some(since) = since {
        query = query.filter(outbox::created_at.ge(since));
    }
    query.count().get_result(conn)
}

/// An SMS put in the outbox.
#[derive(Debug, Clone)]
pub struct Queued {
    pub outbox_id: String,
    /// The channel it will go out on.
    pub channel_id: String,
}

/// Checks everything and, when allowed, enqueues the SMS. `Ok(Err(blocked))` is a refusal the caller
/// answers 409 (and audits, committing the audit entry). Must run in a write transaction; the case action
/// (`cases::contact::request_sms`) locks the case's row first, so two concurrent requests cannot both pass
/// the per-case caps.
pub fn request_send(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    policy: &SmsPolicy,
    case_id: &str,
    text: Option<&str>,
    now: NaiveDateTime,
) -> Result<Result<Queued, Blocked>, SmsError> {
    let (organization_id, contact_id): (String, Option<String>) = cases::table
        .find(case_id)
        .select((cases::organization_id, cases::contact_id))
        .first(conn)?;
    let Some(contact_id) = contact_id else {
        return Ok(Err(Blocked::NoPhone));
    };
    let contact = load_contact(conn, crypto, &contact_id)?;
    let Some(safe) = contact.safe else {
        return Ok(Err(Blocked::NoSafeContact));
    };
    let Some(phone) = contact.phone else {
        return Ok(Err(Blocked::NoPhone));
    };
    if !safe.sms {
        return Ok(Err(Blocked::SmsNotAgreed));
    }
    let wording = safe.wording.trim();
    if let Some(text) = text
        && text.trim() != wording
    {
        return Ok(Err(Blocked::WordingNotAgreed));
    }
    if !safe.allows_at(now) {
        return Ok(Err(Blocked::OutsideWindow));
    }
    if !policy.destination_allowed(phone.expose_e164()) {
        return Ok(Err(Blocked::DestinationNotAllowed));
    }
    let Some(channel_id) = reply_channel(conn, case_id)? else {
        return Ok(Err(Blocked::NoChannel));
    };
    let day_ago = now - Duration::hours(24);
    if count_sms(conn, Some(case_id), Some(day_ago))? >= policy.per_case_per_day {
        return Ok(Err(Blocked::CaseDailyCap));
    }
    if count_sms(conn, Some(case_id), None)? >= policy.per_case_total {
        return Ok(Err(Blocked::CaseCap));
    }
    if count_sms(conn, None, Some(day_ago))? >= policy.global_per_day {
        return Ok(Err(Blocked::GlobalDailyCap));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let (key, wrapped) = crypto.new_record_key()?;
    let sealed = key.seal_str(payload_place(&id), wording)?;
    let message = NewMessage {
        id: Some(id.clone()),
        case_id: Some(case_id),
        sealed: Some((sealed, wrapped.bytes, wrapped.version)),
        ..NewMessage::new(
            &organization_id,
            Channel::Sms,
            "contact_sms",
            json!({ "case_id": case_id, "contact_id": contact_id, "channel_id": channel_id }),
        )
    };
    enqueue(conn, &message)?;
    Ok(Ok(Queued {
        outbox_id: id,
        channel_id,
    }))
}

/// What the worker needs to send one SMS row.
pub struct Prepared {
    pub channel: crate::channels::Channel,
    pub to: Sensitive<String>,
    pub text: Sensitive<String>,
}

/// Loads and re-checks an SMS row before sending: `Ok(Err(blocked))` when it may no longer be sent.
pub fn prepare(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    policy: &SmsPolicy,
    outbox_id: &str,
    now: NaiveDateTime,
) -> Result<Result<Prepared, Blocked>, SmsError> {
    type Row = (String, Option<Vec<u8>>, Option<Vec<u8>>, Option<i32>);
    let (payload, sealed, dek, version): Row = outbox::table
        .find(outbox_id)
        .select((
            outbox::payload,
            outbox::payload_enc,
            outbox::dek_wrapped,
            outbox::key_version,
        ))
        .first(conn)?;
    let payload: serde_json::Value =
        serde_json::from_str(&payload).map_err(|_| SmsError::Corrupt("outbox payload"))?;
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let (Some(contact_id), Some(channel_id)) = (field("contact_id"), field("channel_id")) else {
        return Err(SmsError::Corrupt("outbox payload"));
    };
    let (Some(sealed), Some(dek), Some(version)) = (sealed, dek, version) else {
        return Err(SmsError::Corrupt("outbox text"));
    };
    let contact = load_contact(conn, crypto, &contact_id)?;
    let Some(safe) = contact.safe else {
        return Ok(Err(Blocked::NoSafeContact));
    };
    let Some(phone) = contact.phone else {
        return Ok(Err(Blocked::NoPhone));
    };
    if !safe.sms {
        return Ok(Err(Blocked::SmsNotAgreed));
    }
    if !safe.allows_at(now) {
        return Ok(Err(Blocked::OutsideWindow));
    }
    if !policy.destination_allowed(phone.expose_e164()) {
        return Ok(Err(Blocked::DestinationNotAllowed));
    }
    let channel: Option<crate::channels::Channel> = channels::table
        .find(&channel_id)
        .filter(channels::enabled.eq(true))
        .select(crate::channels::Channel::as_select())
        .first(conn)
        .optional()?;
    let Some(channel) = channel else {
        return Ok(Err(Blocked::NoChannel));
    };
    let key = crypto.unwrap_record_key(&dek, version)?;
    let text = key.open_string(payload_place(outbox_id), &sealed)?;
    Ok(Ok(Prepared {
        channel,
        to: Sensitive::new(phone.expose_e164().to_owned()),
        text,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn windows_are_in_the_contacts_local_time_and_may_wrap() {
        let safe = SafeContact {
            sms: true,
            windows: vec![
                Window {
                    from: t("09:00"),
                    to: t("12:00"),
                },
                Window {
                    from: t("22:00"),
                    to: t("01:00"),
                },
            ],
            utc_offset_minutes: 300,
            wording: "Your parcel is ready".into(),
            recorded_by: "u".into(),
            recorded_at: NaiveDateTime::default(),
        };
        let at = |h: u32, m: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
                .and_then(|d| d.and_hms_opt(h, m, 0))
                .unwrap_or_default()
        };
        assert!(safe.allows_at(at(4, 0)), "09:00 local");
        assert!(!safe.allows_at(at(7, 0)), "12:00 local is the end");
        assert!(safe.allows_at(at(17, 30)), "22:30 local");
        assert!(safe.allows_at(at(19, 59)), "00:59 local");
        assert!(!safe.allows_at(at(20, 0)), "01:00 local");
    }

    #[test]
    fn destinations_are_ranges_not_country_codes() {
        let policy = SmsPolicy {
            allowed_prefixes: vec!["+77".into(), "+996".into()],
            blocked_prefixes: vec!["+7760".into()],
            per_case_per_day: 1,
            per_case_total: 1,
            global_per_day: 1,
        };
        assert!(policy.destination_allowed("+77015550001"));
        assert!(policy.destination_allowed("+996555123456"));
        assert!(!policy.destination_allowed("+79161234567"), "Russia shares +7");
        assert!(!policy.destination_allowed("+77601234567"), "blocked range");
        assert!(!policy.destination_allowed("+88212345678"));
    }
}
