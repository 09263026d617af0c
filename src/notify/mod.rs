//! Notifications: caseworkers are told by email, reliably, and nothing personal leaves Komek.
//!
//! * [`recipients`]: who is told what, per organization.
//! * [`templates`]: the emails, in six languages, carrying only a case reference, the kind of event, its
//!   urgency and a console link.
//! * [`email`]: SMTP (TLS required unless the URL says otherwise), a mail folder, and memory backends.
//! * [`worker`]: sends outbox rows — claim with a lease, send, mark sent; backoff with jitter; dead letters.
//! * [`sla`]: tells supervisors once when a critical case passes its acknowledgement deadline.
//! * [`sms`]: outbound SMS to a contact, only under a safe-contact record, with caps and a destination
//!   allowlist.
//!
//! Events write their outbox rows in the same transaction as the event itself ([`notify_case`]), one row
//! per recipient, deduplicated per (event, case, recipient). Rows carry ids only; the worker looks up the
//! recipient's address and language when it sends.

pub mod email;
pub mod recipients;
pub mod sla;
pub mod sms;
pub mod templates;
pub mod worker;

use chrono::Utc;
use diesel::prelude::*;
use serde_json::json;

use crate::db::AnyConnection;
use crate::db::schema::{cases, users};
use crate::outbox::{self, NewMessage};
pub use recipients::Topic;
pub use templates::{Event, Urgency};
pub use worker::{Worker, WorkerConfig};

/// A case event that staff are told about by email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseNotice {
    /// The case is new and critical, or just became critical.
    Critical,
    /// The case is (or just became) a child case.
    Child,
    /// The case passed its acknowledgement deadline.
    SlaBreach,
    /// The case was assigned to this user.
    Assigned,
}

impl CaseNotice {
    /// The outbox topic.
    pub fn topic(self) -> &'static str {
        match self {
            CaseNotice::Critical => "case_critical",
            CaseNotice::Child => "case_child",
            CaseNotice::SlaBreach => "sla_breach",
            CaseNotice::Assigned => "case_assigned",
        }
    }

    /// The event told in the email.
    pub fn event(self) -> Event {
        match self {
            CaseNotice::Critical => Event::NewCritical,
            CaseNotice::Child => Event::FocalPoint,
            CaseNotice::SlaBreach => Event::NotAcknowledged,
            CaseNotice::Assigned => Event::Assigned,
        }
    }

    /// From a stored topic.
    pub fn from_topic(topic: &str) -> Option<CaseNotice> {
        [
            CaseNotice::Critical,
            CaseNotice::Child,
            CaseNotice::SlaBreach,
            CaseNotice::Assigned,
        ]
        .into_iter()
        .find(|n| n.topic() == topic)
    }
}

/// Writes one outbox row per recipient of `notice` about a case, inside the caller's transaction (or one
/// row without a recipient, which becomes a dead-letter alert, when nobody can be told). For
/// [`CaseNotice::Assigned`], `assignee` names the one recipient. Returns how many rows were new.
pub fn notify_case(
    conn: &mut AnyConnection,
    case_id: &str,
    notice: CaseNotice,
    assignee: Option<&str>,
) -> QueryResult<usize> {
    let (organization_id, reference, risk): (String, String, String) = cases::table
        .find(case_id)
        .select((cases::organization_id, cases::reference, cases::risk))
        .first(conn)?;
    let recipients = match notice {
        CaseNotice::Critical => recipients::resolve(conn, &organization_id, Topic::CaseCritical)?,
        CaseNotice::Child => recipients::resolve(conn, &organization_id, Topic::CaseChild)?,
        CaseNotice::SlaBreach => recipients::resolve(conn, &organization_id, Topic::SlaBreach)?,
        CaseNotice::Assigned => match assignee {
            Some(user) => users::table
                .filter(users::id.eq(user))
                .filter(users::organization_id.eq(&organization_id))
                .filter(users::disabled_at.is_null())
                .select(users::id)
                .load(conn)?,
            None => Vec::new(),
        },
    };
    let urgency = match notice {
        CaseNotice::Critical | CaseNotice::SlaBreach => Urgency::Critical,
        CaseNotice::Child | CaseNotice::Assigned => Urgency::from_risk(&risk),
    };
    // An assignment can happen more than once (reassigned back): key it by time as well.
    let occurrence = match notice {
        CaseNotice::Assigned => format!(":{}", Utc::now().timestamp_micros()),
        _ => String::new(),
    };
    // Nobody to tell (no staff account yet, all disabled): still write one row without a recipient. The
    // worker dead-letters it at once, so the event shows up as an alert instead of vanishing.
    if recipients.is_empty() && notice == CaseNotice::Assigned {
        return Ok(0);
    }
    let targets: Vec<Option<&str>> = if recipients.is_empty() {
        tracing::error!(case.id = %case_id, topic = notice.topic(), "no staff account can be told about this case");
        vec![None]
    } else {
        recipients.iter().map(|r| Some(r.as_str())).collect()
    };
    let mut written = 0;
    for user_id in targets {
        let message = NewMessage {
            dedupe_key: Some(format!(
                "{}:{case_id}:{}{occurrence}",
                notice.topic(),
                user_id.unwrap_or("nobody")
            )),
            case_id: Some(case_id),
            recipient_user_id: user_id,
            ..NewMessage::new(
                &organization_id,
                outbox::Channel::Email,
                notice.topic(),
                json!({ "case_id": case_id, "reference": reference, "urgency": urgency.as_str() }),
            )
        };
        if outbox::enqueue(conn, &message)? {
            written += 1;
        }
    }
    Ok(written)
}
