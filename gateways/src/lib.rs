//! Provider adapters for Komek: each SMS and voice provider's wire format, and nothing about the
//! database.
//!
//! The service mounts `/webhooks/{provider}/{channel_id}/{action}` and, for each request:
//!
//! 1. `let provider: Provider = segment.parse()?; let action: Action = segment.parse()?;`
//!    and checks [`Provider::supports`]`(action)` (404 otherwise);
//! 2. loads the channel and its secret, [`ChannelCredentials::parse`]`(provider, &secret)`;
//! 3. builds a [`WebhookRequest`] from the configured public URL + path + raw query, the
//!    headers, the raw body, the peer address and the current time;
//! 4. [`verify`]`(provider, action, &creds, &req)` — on error answer 401/403 with
//!    [`VerifyError::code`] and store nothing;
//! 5. [`parse`]`(provider, action, &req)` → `Vec<`[`InboundEvent`]`>` — on error answer 400;
//! 6. stores the events idempotently ([`InboundSms::event_id`] is the dedupe key), commits;
//! 7. answers with [`ack`]`(provider, action, AckOutcome::Accepted)` for `sms`, `status`,
//!    `voice-status`, or with [`render_ivr`]`(provider, &steps)` for `voice` and `ivr`; if the
//!    database is down, `ack(.., AckOutcome::TemporaryFailure)` (503: providers retry) or, for
//!    calls, a safe fallback IVR.
//!
//! Outbound SMS: one [`SmsSender`] per process, [`SmsSender::send`]`(provider, &creds, &sms)`;
//! [`SendError::is_retryable`] tells the outbox whether to back off and retry.
//!
//! Everything that can carry personal data ([`Sensitive`]) or secrets ([`Secret`]) prints as
//! `[redacted]` / `[secret]` in `Debug`; errors never echo secrets, signatures or personal
//! data. Verification never reads the clock (`WebhookRequest::now`) and compares in constant
//! time. See `README.md` for what to configure in each provider's console.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod credentials;
mod crypto;
mod error;
mod event;
mod gsm;
mod ivr;
mod provider;
pub mod providers;
mod reply;
mod request;
mod send;
mod sensitive;
mod timefmt;
mod xml;

pub use credentials::{ChannelCredentials, IpAllowlist};
pub use error::{CredentialsError, ParseError, RenderError, VerifyError};
pub use event::{
    CallEvent, CallEventKind, DeliveryState, DeliveryStatus, DialOutcome, HangupCause, InboundEvent,
    InboundSms, MessagePart, Recording,
};
pub use ivr::{IvrStep, Prompt};
pub use provider::{Action, Provider, UnknownName};
pub use reply::{AckOutcome, Reply, ack};
pub use request::{Headers, WebhookRequest};
pub use send::{Endpoints, OutboundSms, SendError, SendErrorClass, SenderConfig, SentMessage, SmsSender};
pub use sensitive::{Secret, Sensitive};
pub use xml::xml_representable;

/// Checks that a webhook really comes from the channel's provider account.
///
/// * capcom6: `X-Signature`/`X-Timestamp` HMAC-SHA256, ±5 min.
/// * Twilio: `X-Twilio-Signature` over the URL variants Twilio's libraries accept (and
///   `bodySHA256` for JSON bodies).
/// * Vonage: `Authorization: Bearer` JWT (voice, messages; required for `voice*`/`ivr`) or the
///   SMS API `sig` parameter.
/// * SMSSync: the shared `secret` form field.
/// * FreeSWITCH: HTTP Basic (httapi `gateway-credentials`) and/or source allowlist.
/// * Africa's Talking, Infobip, Jasmin: nothing is signed; the optional source allowlist is
///   checked, and the unguessable channel id in the URL is the rest of the defence.
pub fn verify(
    provider: Provider,
    action: Action,
    credentials: &ChannelCredentials,
    req: &WebhookRequest<'_>,
) -> Result<(), VerifyError> {
    use providers::*;
    match credentials {
        ChannelCredentials::Capcom6(c) if provider == Provider::Capcom6 => capcom6::verify(c, req),
        ChannelCredentials::Twilio(c) if provider == Provider::Twilio => twilio::verify(c, req),
        ChannelCredentials::Vonage(c) if provider == Provider::Vonage => vonage::verify(c, action, req),
        ChannelCredentials::AfricasTalking(c) if provider == Provider::AfricasTalking => {
            africastalking::verify(c, req)
        }
        ChannelCredentials::Infobip(c) if provider == Provider::Infobip => infobip::verify(c, req),
        ChannelCredentials::Jasmin(c) if provider == Provider::Jasmin => jasmin::verify(c, req),
        ChannelCredentials::Smssync(c) if provider == Provider::Smssync => smssync::verify(c, req),
        ChannelCredentials::Freeswitch(c) if provider == Provider::Freeswitch => freeswitch::verify(c, req),
        other => Err(VerifyError::CredentialsMismatch {
            expected: provider,
            actual: other.provider(),
        }),
    }
}

/// Turns a (verified) webhook into provider-neutral events. An empty list means "nothing for
/// Komek" (a ping, a binary SMS, a task poll): acknowledge it anyway.
pub fn parse(
    provider: Provider,
    action: Action,
    req: &WebhookRequest<'_>,
) -> Result<Vec<InboundEvent>, ParseError> {
    use providers::*;
    if !provider.supports(action) {
        return Err(ParseError::UnsupportedAction { provider, action });
    }
    match provider {
        Provider::Capcom6 => capcom6::parse(action, req),
        Provider::Twilio => twilio::parse(action, req),
        Provider::Vonage => vonage::parse(action, req),
        Provider::AfricasTalking => africastalking::parse(action, req),
        Provider::Infobip => infobip::parse(action, req),
        Provider::Jasmin => jasmin::parse(action, req),
        Provider::Smssync => smssync::parse(action, req),
        Provider::Freeswitch => freeswitch::parse(action, req),
    }
}

/// Renders IVR steps as the provider's call-control document: TwiML (Twilio), NCCO (Vonage),
/// Africa's Talking voice XML, FreeSWITCH httapi XML. See [`IvrStep`] for the shared semantics.
pub fn render_ivr(provider: Provider, steps: &[IvrStep]) -> Result<Reply, RenderError> {
    use providers::*;
    match provider {
        Provider::Twilio => twilio::render(steps),
        Provider::Vonage => vonage::render(steps),
        Provider::AfricasTalking => africastalking::render(steps),
        Provider::Freeswitch => freeswitch::render(steps),
        other => Err(RenderError::NoVoice(other)),
    }
}
