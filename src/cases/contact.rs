//! Reaching the case's contact: recording the safe-contact record (how and when the person may be reached
//! by SMS, and the agreed wording) and asking for an SMS to them under it. The rules themselves — what a
//! record must hold, when a send is allowed — live in `notify::sms`; these actions add the case gate, the
//! timeline and the audit entry. A refused send is not an error of the transaction: its audit entry
//! commits, and the caller answers the refusal's code.

use chrono::NaiveDateTime;
use serde_json::json;

use super::timeline::{self, EventKind};
use super::{CaseError, gate};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::crypto::Crypto;
use crate::db::AnyConnection;
use crate::error::ErrorCode;
use crate::notify::sms::{self, Blocked, SafeContact, SmsError, SmsPolicy};

impl From<SmsError> for CaseError {
    fn from(err: SmsError) -> Self {
        match err {
            SmsError::Crypto(e) => CaseError::Crypto(e),
            SmsError::Query(e) => e.into(),
            SmsError::Corrupt(_) => CaseError::Crypto(crate::crypto::CryptoError::Tampered),
        }
    }
}

/// Records (replaces) the safe-contact record of the case's contact (`no_contact` when it has none).
pub fn record_safe_contact(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    staff: &Staff,
    case: &str,
    record: &SafeContact,
) -> Result<String, CaseError> {
    let case = gate::for_change(conn, staff, case, "safe_contact_recorded")?.case;
    if sms::record_safe_contact(conn, crypto, &case.id, record)?.is_none() {
        return Err(CaseError::refused(ErrorCode::NoContact));
    }
    timeline::add(
        conn,
        &case
            .event(EventKind::SafeContactRecorded)
            .by(&staff.user_id)
            .data(json!({ "sms": record.sms, "windows": record.windows.len() })),
    )?;
    audit::record(
        conn,
        &staff.audit(
            "safe_contact_recorded",
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(json!({ "sms": record.sms })),
        ),
    )?;
    Ok(case.id)
}

/// The result of [`request_sms`].
#[derive(Debug, Clone)]
pub struct SmsRequested {
    pub case_id: String,
    /// The outbox row's id when queued; the reason when the rules or the limits refuse it.
    pub outcome: Result<String, Blocked>,
}

/// Asks for the agreed SMS to the case's contact. A refusal by the safe-contact rules or the limits is
/// `Ok` with `outcome: Err(blocked)`: it is audited as denied, so commit, then answer the reason's code.
pub fn request_sms(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    policy: &SmsPolicy,
    staff: &Staff,
    case: &str,
    text: Option<&str>,
    now: NaiveDateTime,
) -> Result<SmsRequested, CaseError> {
    let case = gate::for_change(conn, staff, case, "contact_sms_requested")?.case;
    let result = sms::request_send(conn, crypto, policy, &case.id, text, now)?;
    let (outcome, details) = match &result {
        Ok(queued) => {
            timeline::add(
                conn,
                &case
                    .event(EventKind::ContactSmsQueued)
                    .by(&staff.user_id)
                    .data(json!({ "outbox_id": queued.outbox_id, "channel_id": queued.channel_id })),
            )?;
            (Outcome::Success, json!({ "outbox_id": queued.outbox_id }))
        }
        Err(blocked) => (Outcome::Denied, json!({ "reason": blocked.code() })),
    };
    audit::record(
        conn,
        &staff.audit(
            "contact_sms_requested",
            Some("case"),
            Some(&case.id),
            outcome,
            Some(details),
        ),
    )?;
    Ok(SmsRequested {
        case_id: case.id,
        outcome: result.map(|queued| queued.outbox_id),
    })
}
