//! HTTP answers to providers: acknowledgements and rendered IVR documents.

use crate::provider::{Action, Provider};

/// An HTTP response for the service to send back verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// `Content-Type` header value.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Reply {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
        }
    }
}

/// What the service did with a webhook, to choose the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    /// The events are durably stored (or were already: a duplicate gets the same answer).
    Accepted,
    /// Komek could not store it now (database down): ask the provider to retry later.
    TemporaryFailure,
}

pub(crate) const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response/>";

/// The answer a provider expects after a webhook was handled. Komek never replies to an SMS
/// by SMS here; for `voice`/`ivr` actions the service should answer with [`crate::render_ivr`]
/// instead (this returns the provider's "end the call" document for them).
pub fn ack(provider: Provider, action: Action, outcome: AckOutcome) -> Reply {
    if outcome == AckOutcome::TemporaryFailure {
        return match provider {
            Provider::Smssync => Reply::new(
                503,
                "application/json",
                r#"{"payload":{"success":false,"error":"temporarily unavailable"}}"#,
            ),
            _ => Reply::new(503, "text/plain; charset=utf-8", "temporarily unavailable"),
        };
    }
    match provider {
        Provider::Twilio => Reply::new(200, "text/xml", EMPTY_TWIML),
        Provider::Jasmin => Reply::new(200, "text/plain", "ACK/Jasmin"),
        Provider::Smssync => Reply::new(
            200,
            "application/json",
            r#"{"payload":{"success":true,"error":null}}"#,
        ),
        Provider::Vonage if action.expects_ivr() => Reply::new(200, "application/json", "[]"),
        Provider::AfricasTalking if action.expects_ivr() => Reply::new(
            200,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response/>",
        ),
        Provider::Freeswitch => Reply::new(
            200,
            "text/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<document type=\"xml/freeswitch-httapi\"><work><hangup/></work></document>",
        ),
        Provider::Capcom6 | Provider::Vonage | Provider::AfricasTalking | Provider::Infobip => {
            Reply::new(200, "text/plain", "")
        }
    }
}
