//! Ushahidi SMSSync: an Android app that forwards every SMS the phone receives as a form POST
//! carrying a shared secret, and expects `{"payload":{"success":true,"error":null}}`.
//!
//! The shared secret travels in clear in the body (use HTTPS); it is compared in constant time.
//! Komek does not send SMS through SMSSync (that needs the app's task polling); turn "task
//! checking" off in the app.

use crate::crypto::{ct_eq, sha256_hex};
use crate::error::{CredentialsError, ParseError, VerifyError};
use crate::event::{InboundEvent, InboundSms};
use crate::provider::{Action, Provider};
use crate::request::{Form, WebhookRequest};
use crate::sensitive::{Secret, Sensitive};
use crate::timefmt::parse_unix;

const P: Provider = Provider::Smssync;

/// `--secret` format.
pub const FORMAT: &str = "the shared secret typed into the app's Sync URL settings, verbatim";

/// The shared secret.
#[derive(Debug, Clone)]
pub struct Credentials {
    secret: Secret,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        if secret.is_empty() {
            return Err(CredentialsError::Empty {
                provider: P,
                format: FORMAT,
            });
        }
        Ok(Self {
            secret: Secret::new(secret),
        })
    }
}

fn form_of(req: &WebhookRequest<'_>) -> Form {
    if req.is_get() {
        Form::parse(req.query().as_bytes())
    } else {
        Form::parse(req.body)
    }
}

pub(crate) fn verify(creds: &Credentials, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
    let form = form_of(req);
    let query = Form::parse(req.query().as_bytes());
    let given = form
        .get("secret")
        .or_else(|| query.get("secret"))
        .ok_or(VerifyError::MissingParameter("secret"))?;
    if ct_eq(given.as_bytes(), creds.secret.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::BadSecret)
    }
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    if action != Action::Sms {
        return Err(ParseError::UnsupportedAction { provider: P, action });
    }
    let form = form_of(req);
    if form.get("task").is_some() && form.get("message").is_none() {
        // Task polling (`?task=send`): nothing received.
        return Ok(Vec::new());
    }
    let from = form.non_empty("from").ok_or(ParseError::MissingField("from"))?;
    let text = form.get("message").ok_or(ParseError::MissingField("message"))?;
    let sent = form.non_empty("sent_timestamp");
    let received_at = match sent {
        Some(t) => Some(parse_unix(t).ok_or(ParseError::InvalidField {
            field: "sent_timestamp",
            reason: "not a unix time",
        })?),
        None => None,
    };
    let event_id = match form.non_empty("message_id") {
        Some(id) => id.to_owned(),
        // Old app versions send no id: derive one that is stable across the app's retries.
        None => format!(
            "sha256:{}",
            sha256_hex(format!("{from}\u{0}{}\u{0}{text}", sent.unwrap_or("")).as_bytes())
        ),
    };
    Ok(vec![InboundEvent::Sms(InboundSms {
        event_id,
        from: Sensitive::new(from.to_owned()),
        to: form.non_empty("sent_to").map(|t| Sensitive::new(t.to_owned())),
        text: Sensitive::new(text.to_owned()),
        received_at,
        part: None,
    })])
}
