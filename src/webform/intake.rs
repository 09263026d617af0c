//! Storing a web-form submission and answering with its case — in ONE write transaction: the report
//! (source `web`, body = what happened, details = the other answers, both encrypted under the report's own
//! data key) is inserted and processed into a new case at once, so the page can show the case reference,
//! and nothing is acknowledged that is not committed.
//!
//! * The yes/no answers reach triage with the text, in the hint grammar the engine understands for IVR
//!   menu paths (`triage::ivr`: `lang:XX`, `child`, `shelter`), so the case opens with them already
//!   applied (child rules: at least high risk, the child-protection notification). Answers only ever add
//!   to what the text shows; "no" lowers nothing triage found in the text.
//! * A number typed into the form never joins, reveals or changes anything about an existing contact —
//!   anyone can type anyone's number, and a trafficker holding a victim's phone must not be able to pull
//!   the victim's later messages into a case whose status they can follow. So the form's case has no
//!   contact: the report is processed without one (it always opens its own case), later SMS and calls
//!   from that number never thread into it, and nothing is written on the number's contact (no
//!   preferences, no consent). The number is kept only when the person said SMS or a call is safe, as an
//!   unverified [`DeclaredContact`] sealed in the report's details; staff see it on the case and link
//!   cases by hand (move, merge) once they have confirmed it. Consent rows record each purpose on the
//!   form's case. Otherwise a typed number is dropped, never stored.
//! * The follow-up code is random (12 characters of the unambiguous case-reference alphabet, about 56 bits);
//!   only its keyed hash is stored, in `cases.follow_up_code_hash`.

use chrono::Utc;
use diesel::prelude::*;
use rand::Rng as _;
use serde::Serialize;

use crate::cases::CaseError;
use crate::cases::consents::{self, Purpose};
use crate::contacts::DeclaredContact;
use crate::crypto::{Crypto, CryptoError};
use crate::db::AnyConnection;
use crate::db::schema::cases as cases_t;
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
    fn consent_purpose(self) -> Option<Purpose> {
        match self {
            ContactWay::None => None,
            ContactWay::Sms => Some(Purpose::ContactSms),
            ContactWay::Call => Some(Purpose::ContactCall),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ContactWay::None => "none",
            ContactWay::Sms => "sms",
            ContactWay::Call => "call",
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

/// The answers kept with the report (sealed in its details).
#[derive(Serialize)]
struct WebDetails<'a> {
    form: &'static str,
    language: &'static str,
    place: Option<&'a str>,
    under_18: Under18,
    shelter: bool,
    contact: ContactWay,
    /// The way and number they declared safe, unverified (only with `contact` sms or call).
    declared_contact: Option<DeclaredContact>,
    consent_storage: bool,
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
        declared_contact: submission.contact.as_ref().map(|c| DeclaredContact {
            way: c.way.as_str().to_owned(),
            phone: c.phone.expose_e164().to_owned(),
            hours: Some(c.hours.clone()).filter(|h| !h.is_empty()),
            verified: false,
        }),
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

    let mut purposes = vec![Purpose::ReportStorage];
    if let Some(purpose) = submission.contact.as_ref().and_then(|c| c.way.consent_purpose()) {
        purposes.push(purpose);
    }
    consents::record_from_form(conn, &submission.organization_id, &case_id, &purposes)?;
    Ok(Receipt { reference })
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
