//! Operator entry: a contact taken outside the gateways — a call to an office phone, a visit, an email —
//! recorded by staff as a report (source `operator`). It goes through the one reports store and the same
//! processing as any report: triaged, then it opens a case, joins the caller's open case, or joins the
//! case the operator names. A number the operator gives is the caller's own (they took the call), so it is
//! looked up and becomes the case's contact; a safe-contact record given with it is recorded on it.

use serde::Serialize;
use serde_json::json;

use super::timeline::{self, EventKind};
use super::workflow::clean_text;
use super::{CaseError, gate};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::db::AnyConnection;
use crate::domain::PhoneNumber;
use crate::error::ErrorCode;
use crate::intake::process::{self, CaseExtras, ProcessContext};
use crate::notify::sms::{self, SafeContact};
use crate::reports::{self, NewReport, Source};

/// How the contact reached the hotline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    Phone,
    WalkIn,
    Email,
    Other,
}

impl Medium {
    /// From the requested name.
    pub fn parse(raw: &str) -> Option<Medium> {
        [Medium::Phone, Medium::WalkIn, Medium::Email, Medium::Other]
            .into_iter()
            .find(|m| m.as_str() == raw)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Phone => "phone",
            Medium::WalkIn => "walk_in",
            Medium::Email => "email",
            Medium::Other => "other",
        }
    }
}

/// What the operator records.
#[derive(Debug, Clone)]
pub struct Entry {
    pub medium: Medium,
    /// What the person said.
    pub text: String,
    /// The language they spoke (one of the six), as a triage hint.
    pub language: Option<&'static str>,
    /// The number they called from, as typed (read in the organization's country).
    pub phone: Option<String>,
    /// Join this case instead of the caller's open case or a new one.
    pub case: Option<String>,
    /// How and when the caller may be reached by SMS (needs `phone`).
    pub safe_contact: Option<SafeContact>,
}

/// The result of [`record_entry`].
#[derive(Debug, Clone, Serialize)]
pub struct Entered {
    pub report_id: String,
    pub case_id: String,
    pub reference: String,
    /// `opened` a new case, or `linked` to an existing one.
    pub outcome: &'static str,
}

/// Records an operator's entry (`create_report`) and processes it at once.
pub fn record_entry(
    conn: &mut AnyConnection,
    ctx: &ProcessContext,
    staff: &Staff,
    entry: &Entry,
) -> Result<Entered, CaseError> {
    let text = clean_text(Some(&entry.text))?
        .ok_or_else(|| CaseError::refused_with(ErrorCode::InvalidText, "write what the person said"))?;
    if entry.safe_contact.is_some() && entry.phone.is_none() {
        return Err(CaseError::refused_with(
            ErrorCode::InvalidSafeContact,
            "a safe-contact record needs the person's phone number",
        ));
    }
    let join = match &entry.case {
        Some(case) => {
            let case = gate::for_change(conn, staff, case, "report_created")?.case;
            if case.status == "closed" {
                return Err(CaseError::refused(ErrorCode::CaseClosed));
            }
            Some(case.id)
        }
        None => None,
    };
    let contact_id = match &entry.phone {
        Some(typed) => {
            let region = crate::accounts::orgs::country(conn, &staff.organization_id)?;
            let phone =
                PhoneNumber::parse(typed, region).map_err(|_| CaseError::refused(ErrorCode::InvalidPhone))?;
            Some(crate::contacts::find_or_create_by_phone(
                conn,
                &ctx.crypto,
                &staff.organization_id,
                &phone,
            )?)
        }
        None => None,
    };
    let now = chrono::Utc::now().naive_utc();
    let stored = reports::insert(
        conn,
        &ctx.crypto,
        &NewReport {
            organization_id: &staff.organization_id,
            source: Source::Operator,
            channel_id: None,
            provider: None,
            provider_event_id: None,
            contact_id: contact_id.as_deref(),
            body: Some(&text),
            details: Some(json!({
                "medium": entry.medium,
                "language": entry.language,
                "entered_by": staff.user_id,
            })),
            received_at: now,
            part: None,
            ivr_path: None,
        },
    )?;
    let extras = CaseExtras {
        triage_hints: entry.language.map(|l| format!("lang:{l}")),
        join_case: join,
        ..CaseExtras::default()
    };
    let (case_id, outcome) = match process::process_report(conn, ctx, &stored.report_id, &extras)? {
        process::Outcome::Opened { case_id, .. } => (case_id, "opened"),
        process::Outcome::Linked { case_id }
        | process::Outcome::Collapsed {
            case_id: Some(case_id),
        } => (case_id, "linked"),
        _ => return Err(diesel::result::Error::NotFound.into()),
    };
    let case = super::load(conn, &case_id)?.ok_or(CaseError::NotFound("case"))?;
    if let (Some(record), Some(contact)) = (&entry.safe_contact, &contact_id) {
        sms::record_for_contact(conn, &ctx.crypto, contact, record)?;
        timeline::add(
            conn,
            &case
                .event(EventKind::SafeContactRecorded)
                .by(&staff.user_id)
                .data(json!({ "sms": record.sms, "windows": record.windows.len() })),
        )?;
    }
    let facts = json!({ "report_id": stored.report_id, "medium": entry.medium, "outcome": outcome });
    timeline::add(
        conn,
        &case
            .event(EventKind::OperatorEntry)
            .by(&staff.user_id)
            .report(&stored.report_id)
            .data(facts.clone()),
    )?;
    audit::record(
        conn,
        &staff.audit(
            "report_created",
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(facts),
        ),
    )?;
    Ok(Entered {
        report_id: stored.report_id,
        case_id: case.id,
        reference: case.reference,
        outcome,
    })
}
