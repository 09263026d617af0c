//! Storing a web-form submission and answering with its case — in ONE write transaction: the report
//! (source `web`, body = what happened, details = the other answers, both encrypted under the report's own
//! data key) is inserted and processed into a new case at once, so the page can show the case reference,
//! and nothing is acknowledged that is not committed.
//!
//! * The yes/no answers reach triage with the text, in the hint grammar the engine understands for IVR
//!   menu paths (`triage::ivr`: `lang:XX`, `child`, `shelter`), so the case opens with them already
//!   applied (child rules: at least high risk, the child-protection notification). Answers only ever add
//!   to what the text shows; "no" lowers nothing triage found in the text.
//! * A web report never threads into another case by a typed phone number: the report is processed
//!   without a contact (so it always opens its own case — someone typing a victim's number must not land
//!   in, or learn about, the victim's case) and the contact is attached afterwards.
//! * A contact is created only when the person gave a number AND said SMS or a call is safe. Their
//!   preferences (channel, hours, nothing else allowed, declared on the web and not verified) are sealed
//!   into `contacts.safe_contact_enc` under the contact's own key — set only when the contact has none yet
//!   (a web form can never widen what staff already recorded for a number) — and consent rows record each
//!   purpose. Otherwise no contact is created and a typed number is dropped, never stored.
//! * The follow-up code is random (12 characters of the unambiguous case-reference alphabet, about 56 bits);
//!   only its keyed hash is stored, in `cases.follow_up_code_hash`.

use chrono::Utc;
use diesel::prelude::*;
use rand::Rng as _;
use serde::Serialize;

use crate::cases::CaseError;
use crate::contacts::{self, ContactError};
use crate::crypto::{Crypto, CryptoError, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::{cases as cases_t, consents, contacts as contacts_t};
use crate::domain::PhoneNumber;
use crate::intake::process::{CaseExtras, Outcome, ProcessContext, process_report};
use crate::reports::{self, NewReport, Source};

use super::i18n::Lang;

/// The unambiguous alphabet of case references (no 0/O, 1/I/L, 5/S, 8/B, U/V).
const CODE_ALPHABET: &[u8] = b"234679ACDEFGHJKMNPQRTWXYZ";
const CODE_LEN: usize = 12;

/// Errors while storing a submission.
#[derive(Debug, thiserror::Error)]
pub enum WebIntakeError {
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("processing the web report did not open a case")]
    NotOpened,
}

impl From<diesel::result::Error> for WebIntakeError {
    fn from(err: diesel::result::Error) -> Self {
        WebIntakeError::Case(err.into())
    }
}

impl From<crate::db::DbError> for WebIntakeError {
    fn from(err: crate::db::DbError) -> Self {
        WebIntakeError::Case(err.into())
    }
}

impl From<CryptoError> for WebIntakeError {
    fn from(err: CryptoError) -> Self {
        WebIntakeError::Case(err.into())
    }
}

impl From<crate::reports::ReportError> for WebIntakeError {
    fn from(err: crate::reports::ReportError) -> Self {
        WebIntakeError::Case(err.into())
    }
}

impl From<ContactError> for WebIntakeError {
    fn from(err: ContactError) -> Self {
        WebIntakeError::Case(err.into())
    }
}

impl WebIntakeError {
    /// True when the database could not be reached or was too busy (answer 503, keep the text).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, WebIntakeError::Case(e) if e.is_unavailable())
    }
}

/// "Is anyone under 18?"
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Under18 {
    Yes,
    No,
    Unknown,
}

/// How it is safe to contact the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactWay {
    None,
    Sms,
    Call,
}

impl ContactWay {
    fn consent_purpose(self) -> Option<&'static str> {
        match self {
            ContactWay::None => None,
            ContactWay::Sms => Some("contact_sms"),
            ContactWay::Call => Some("contact_call"),
        }
    }
}

/// A safe way to reach the person, as they declared it.
#[derive(Debug, Clone)]
pub struct SafeContact {
    pub way: ContactWay,
    pub phone: PhoneNumber,
    /// When it is safe, in their words (may be empty).
    pub hours: String,
}

/// A validated submission.
#[derive(Debug, Clone)]
pub struct Submission {
    pub organization_id: String,
    pub what: String,
    pub place: String,
    pub under_18: Under18,
    pub shelter: bool,
    /// Present only when they gave a number and said SMS or a call is safe.
    pub contact: Option<SafeContact>,
    pub lang: Lang,
}

/// The answers kept with the report (encrypted; the phone number lives only in the contact record).
#[derive(Serialize)]
struct WebDetails<'a> {
    form: &'static str,
    language: &'static str,
    place: Option<&'a str>,
    under_18: Under18,
    shelter: bool,
    contact: ContactWay,
    contact_hours: Option<&'a str>,
    consent_storage: bool,
}

/// Safe-contact preferences, sealed into `contacts.safe_contact_enc`.
#[derive(Serialize)]
struct SafeContactPreferences<'a> {
    channel: ContactWay,
    hours: Option<&'a str>,
    /// Nothing may be sent or called in any other way or at any other time.
    only_this_channel: bool,
    declared_via: &'static str,
    /// Declared on a public form: staff have not confirmed the number belongs to the person.
    verified: bool,
    declared_at: chrono::DateTime<Utc>,
    report_id: &'a str,
}

/// What the person is shown.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub reference: String,
}

/// A new follow-up code, formatted for reading (`XXXX-XXXX-XXXX`).
pub fn new_follow_up_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let raw: String = (0..CODE_LEN)
        .map(|_| char::from(CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())]))
        .collect();
    format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
}

/// The stored hash of a follow-up code as a person may type it (any case, spaces, dashes), or `None`
/// when it cannot be a code.
pub fn follow_up_code_hash(crypto: &Crypto, typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b));
    valid.then(|| crypto.blind_index("follow-up-code", &code))
}

fn safe_contact_place(contact_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "contacts",
        column: "safe_contact_enc",
        row_id: contact_id,
    }
}

/// Stores the submission and opens its case (call inside ONE write transaction).
pub fn submit(
    conn: &mut AnyConnection,
    ctx: &ProcessContext,
    submission: &Submission,
    code_hash: String,
) -> Result<Receipt, WebIntakeError> {
    let crypto = &ctx.crypto;
    let now = Utc::now();
    let details = serde_json::to_value(WebDetails {
        form: "web-v1",
        language: submission.lang.code(),
        place: Some(submission.place.as_str()).filter(|p| !p.is_empty()),
        under_18: submission.under_18,
        shelter: submission.shelter,
        contact: submission.contact.as_ref().map_or(ContactWay::None, |c| c.way),
        contact_hours: submission
            .contact
            .as_ref()
            .map(|c| c.hours.as_str())
            .filter(|h| !h.is_empty()),
        consent_storage: true,
    })
    .map_err(|_| CryptoError::Tampered)?;
    let report_id = reports::insert(
        conn,
        crypto,
        &NewReport {
            organization_id: &submission.organization_id,
            source: Source::Web,
            channel_id: None,
            provider: None,
            provider_event_id: None,
            contact_id: None,
            body: Some(&submission.what),
            details: Some(details),
            received_at: now.naive_utc(),
            part: None,
            ivr_path: None,
        },
    )?
    .report_id;

    // The form's answers reach triage as hints, like an IVR menu path: they can only add to what the text
    // shows ("no" lowers nothing).
    let mut hints = vec![format!("lang:{}", submission.lang.code())];
    if submission.under_18 == Under18::Yes {
        hints.push("child".to_owned());
    }
    if submission.shelter {
        hints.push("shelter".to_owned());
    }
    let extras = CaseExtras {
        follow_up_code_hash: Some(code_hash),
        // Nobody may phone unless the person said a call is safe.
        silent: !matches!(&submission.contact, Some(c) if c.way == ContactWay::Call),
        triage_hints: Some(hints.join(">")),
        join_case: None,
    };
    let (case_id, reference) = match process_report(conn, ctx, &report_id, &extras)? {
        Outcome::Opened { case_id, reference } => (case_id, reference),
        _ => return Err(WebIntakeError::NotOpened),
    };

    let contact_id = match &submission.contact {
        Some(safe) => Some(record_safe_contact(
            conn, crypto, submission, safe, &report_id, now,
        )?),
        None => None,
    };
    if let Some(contact_id) = &contact_id {
        crate::cases::incoming::attach_contact(conn, &case_id, contact_id)?;
        reports::set_contact(conn, &report_id, contact_id)?;
    }
    let mut purposes = vec!["report_storage"];
    if let Some(purpose) = submission.contact.as_ref().and_then(|c| c.way.consent_purpose()) {
        purposes.push(purpose);
    }
    for purpose in purposes {
        diesel::insert_into(consents::table)
            .values((
                consents::id.eq(uuid::Uuid::now_v7().to_string()),
                consents::organization_id.eq(&submission.organization_id),
                consents::contact_id.eq(&contact_id),
                consents::case_id.eq(&case_id),
                consents::purpose.eq(purpose),
                consents::granted.eq(true),
                consents::source.eq("web"),
                consents::recorded_at.eq(now.naive_utc()),
            ))
            .execute(conn)?;
    }
    Ok(Receipt { reference })
}

fn record_safe_contact(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    submission: &Submission,
    safe: &SafeContact,
    report_id: &str,
    now: chrono::DateTime<Utc>,
) -> Result<String, WebIntakeError> {
    let contact_id =
        contacts::find_or_create_by_phone(conn, crypto, &submission.organization_id, &safe.phone)?;
    let (dek, version, existing): (Vec<u8>, i32, Option<Vec<u8>>) = contacts_t::table
        .find(&contact_id)
        .select((
            contacts_t::dek_wrapped,
            contacts_t::key_version,
            contacts_t::safe_contact_enc,
        ))
        .first(conn)?;
    if existing.is_none() {
        let key = crypto.unwrap_record_key(&dek, version)?;
        let preferences = SafeContactPreferences {
            channel: safe.way,
            hours: Some(safe.hours.as_str()).filter(|h| !h.is_empty()),
            only_this_channel: true,
            declared_via: "web_form",
            verified: false,
            declared_at: now,
            report_id,
        };
        let json = serde_json::to_vec(&preferences).map_err(|_| CryptoError::Tampered)?;
        let sealed = key.seal(safe_contact_place(&contact_id), &json)?;
        diesel::update(contacts_t::table.find(&contact_id))
            .set(contacts_t::safe_contact_enc.eq(Some(sealed)))
            .execute(conn)?;
    }
    Ok(contact_id)
}

/// A case's status as the person who reported it may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicStatus {
    /// Nobody has taken it up yet.
    Received,
    /// Staff acknowledged, assigned, referred or are closing it.
    Handling,
    Closed,
}

impl PublicStatus {
    /// The translation key of its text.
    pub fn message_key(self) -> &'static str {
        match self {
            PublicStatus::Received => "status_received",
            PublicStatus::Handling => "status_handling",
            PublicStatus::Closed => "status_closed",
        }
    }
}

/// The public status of the case with this follow-up code hash, if any.
pub fn status_by_code(conn: &mut AnyConnection, code_hash: &str) -> QueryResult<Option<PublicStatus>> {
    let row: Option<(String, Option<String>, Option<chrono::NaiveDateTime>)> = cases_t::table
        .filter(cases_t::follow_up_code_hash.eq(code_hash))
        .select((cases_t::status, cases_t::assignee_id, cases_t::acknowledged_at))
        .first(conn)
        .optional()?;
    Ok(row.map(|(status, assignee, acknowledged)| match status.as_str() {
        "closed" => PublicStatus::Closed,
        "open" if assignee.is_none() && acknowledged.is_none() => PublicStatus::Received,
        _ => PublicStatus::Handling,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_up_codes_are_long_unambiguous_and_typed_loosely() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let keys = crate::keys::load_or_generate(&dir.path().join("k.toml"), true)?;
        let crypto = Crypto::new(std::sync::Arc::new(keys));
        for _ in 0..100 {
            let code = new_follow_up_code();
            let chars: String = code.chars().filter(|c| *c != '-').collect();
            assert!(chars.len() >= 10);
            assert!(!chars.contains(['0', 'O', '1', 'I', 'L', '5', 'S', '8', 'B', 'U', 'V']));
            let typed = format!(" {} ", code.to_lowercase().replace('-', " "));
            assert_eq!(
                follow_up_code_hash(&crypto, &typed),
                follow_up_code_hash(&crypto, &code)
            );
            assert!(follow_up_code_hash(&crypto, &code).is_some());
        }
        assert_eq!(follow_up_code_hash(&crypto, "KMK-7Q2F9X"), None);
        assert_eq!(follow_up_code_hash(&crypto, ""), None);
        Ok(())
    }
}
