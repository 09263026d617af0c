//! Provider-neutral events a webhook turns into.
//!
//! [`crate::parse`] returns a `Vec<InboundEvent>` because some providers post several messages
//! in one request (Infobip) and some final call reports carry a recording and a hangup at once
//! (Africa's Talking). Phone numbers stay exactly as the provider sent them (the service
//! normalises them); numbers, texts, digits and recording addresses are [`Sensitive`].

use chrono::{DateTime, Utc};

use crate::sensitive::Sensitive;

/// One thing a webhook told Komek.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundEvent {
    /// An SMS arrived.
    Sms(InboundSms),
    /// News about an SMS Komek sent.
    Status(DeliveryStatus),
    /// Something happened on a call.
    Call(CallEvent),
}

/// An inbound SMS.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundSms {
    /// The provider's id for this delivery: the idempotency key (with the channel id). Stable
    /// across the provider's retries. For capcom6 it is the webhook envelope id (its `messageId`
    /// is not unique); for SMSSync without `message_id` it is a hash of sender, time and text.
    pub event_id: String,
    /// Sender, raw as sent (`+77011234567`, `77011234567`, `MTN`, ...).
    pub from: Sensitive<String>,
    /// Recipient (the channel's number), when the provider says.
    pub to: Option<Sensitive<String>>,
    /// Message text (decoded to UTF-8).
    pub text: Sensitive<String>,
    /// When the provider (or the phone) received it, when the provider says.
    pub received_at: Option<DateTime<Utc>>,
    /// Set when this is one part of a concatenated SMS the provider did not reassemble.
    pub part: Option<MessagePart>,
}

/// Position of one part of a concatenated SMS (reassemble by `reference`, order by `index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePart {
    /// Concatenation reference shared by all parts (per sender).
    pub reference: String,
    /// Number of parts.
    pub total: u16,
    /// This part, 1-based.
    pub index: u16,
}

/// The state of an outbound SMS as a provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Accepted or queued by the provider, not yet sent to the network.
    Queued,
    /// Handed to the network / sent by the phone.
    Sent,
    /// Delivered to the handset.
    Delivered,
    /// Failed, rejected or expired: it will not be delivered.
    Failed,
    /// The provider does not know (yet).
    Unknown,
}

impl DeliveryState {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Unknown => "unknown",
        }
    }

    /// Whether no further report will change it.
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Delivered | DeliveryState::Failed)
    }
}

/// A delivery report for an SMS Komek sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryStatus {
    /// The id the provider returned when Komek sent the message ([`crate::SentMessage`]).
    pub provider_message_id: String,
    /// Neutral state.
    pub state: DeliveryState,
    /// The provider's own status word, for operators (`undelivered`, `DELIVRD`, `Success`, ...).
    pub provider_status: String,
    /// The provider's error code, when it gave one (Twilio 21610 = recipient opted out).
    pub error_code: Option<String>,
    /// When the state changed, when the provider says.
    pub at: Option<DateTime<Utc>>,
}

/// Something that happened on a call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    /// The provider's call id (Twilio `CallSid`, Vonage `uuid`, Africa's Talking `sessionId`,
    /// FreeSWITCH `session_id`).
    pub call_id: String,
    /// Caller, when the request says.
    pub from: Option<Sensitive<String>>,
    /// Called number, when the request says.
    pub to: Option<Sensitive<String>>,
    /// What happened.
    pub kind: CallEventKind,
}

/// What happened on a call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEventKind {
    /// A new call arrived (the `voice` webhook). Answer with the first IVR steps.
    Started,
    /// The caller pressed keys at a Gather step.
    DigitsEntered {
        /// Keys pressed, without the finishing key.
        digits: Sensitive<String>,
        /// The provider stopped waiting before the caller finished.
        timed_out: bool,
    },
    /// The provider came back without new input: a Gather timed out with no key, a Record
    /// captured nothing, or a Redirect was followed. Answer with the next steps.
    NoInput,
    /// A recording is available.
    RecordingReady(Recording),
    /// A Dial step ended.
    DialResult {
        /// How it ended.
        outcome: DialOutcome,
        /// The dialled leg's call id, when known.
        dialed_call_id: Option<String>,
        /// Talk time of the bridged call, when known.
        duration_secs: Option<u32>,
    },
    /// Progress without a decision to make (ringing, answered, ...), raw provider status.
    Progress {
        /// The provider's status word.
        status: String,
    },
    /// The call ended.
    Hangup {
        /// Why.
        cause: HangupCause,
        /// Call duration, when known.
        duration_secs: Option<u32>,
    },
}

/// A recording, by address or (FreeSWITCH) uploaded with the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Recording {
    /// The provider hosts it; fetch it (Twilio: with the account credentials; Vonage: with an
    /// application JWT).
    Url {
        /// Address of the audio.
        url: Sensitive<String>,
        /// Length, when known.
        duration_secs: Option<u32>,
        /// The provider's recording id, when known.
        recording_id: Option<String>,
    },
    /// The audio came in the request body (FreeSWITCH `mod_httapi` multipart upload).
    Inline {
        /// Audio bytes.
        audio: Sensitive<Vec<u8>>,
        /// Declared content type, when any.
        content_type: Option<String>,
    },
}

/// How a Dial step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// Someone answered (the bridged call may have ended since).
    Answered,
    /// Busy.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// The call could not be placed.
    Failed,
    /// The caller hung up while it was ringing.
    Canceled,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupCause {
    /// Normal end of an answered call.
    Completed,
    /// Busy.
    Busy,
    /// Not answered.
    NoAnswer,
    /// Could not be connected.
    Failed,
    /// Caller gave up before answer.
    Canceled,
    /// Rejected.
    Rejected,
    /// Anything else.
    Other,
}
