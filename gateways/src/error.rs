//! One error enum per concern, each with a stable snake_case [`code`](VerifyError::code).
//!
//! Messages say what was wrong so an operator can fix a console setting, but never echo a
//! secret, a received signature, a phone number or message text: they are safe to log and to
//! return in a 4xx body.

use crate::provider::{Action, Provider};

/// The secret string given to `komek channel add --secret` could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The secret is empty but this provider needs one.
    #[error("the secret is empty; {provider} needs: {format}")]
    Empty {
        /// Provider.
        provider: Provider,
        /// Expected format.
        format: &'static str,
    },
    /// A required field is absent.
    #[error("missing field `{field}` in the secret; expected: {format}")]
    MissingField {
        /// Field name.
        field: &'static str,
        /// Expected format.
        format: &'static str,
    },
    /// A `name=value` pair with an unknown name.
    #[error("unknown field `{field}` in the secret; expected: {format}")]
    UnknownField {
        /// Field name as written (never a value).
        field: String,
        /// Expected format.
        format: &'static str,
    },
    /// A field was given twice.
    #[error("field `{field}` appears twice in the secret")]
    DuplicateField {
        /// Field name.
        field: String,
    },
    /// A field's value is invalid.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidValue {
        /// Field name.
        field: &'static str,
        /// What is wrong (never the value).
        reason: &'static str,
    },
}

impl CredentialsError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            CredentialsError::Empty { .. } => "secret_empty",
            CredentialsError::MissingField { .. } => "secret_missing_field",
            CredentialsError::UnknownField { .. } => "secret_unknown_field",
            CredentialsError::DuplicateField { .. } => "secret_duplicate_field",
            CredentialsError::InvalidValue { .. } => "secret_invalid_value",
        }
    }
}

/// A webhook failed authenticity checks. Answer it with 401/403 and store nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The channel's credentials belong to another provider.
    #[error("credentials are for {actual}, not {expected}")]
    CredentialsMismatch {
        /// Provider of the webhook.
        expected: Provider,
        /// Provider the credentials were parsed for.
        actual: Provider,
    },
    /// A required header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but unreadable.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// A required request parameter (signature, timestamp, shared secret) is absent.
    #[error("missing request parameter {0}")]
    MissingParameter(&'static str),
    /// A parameter is present but unreadable.
    #[error("malformed request parameter {0}")]
    MalformedParameter(&'static str),
    /// The signed timestamp is outside the allowed window.
    #[error("timestamp outside the allowed window ({skew_secs} s from now, at most {max_secs} s allowed)")]
    StaleTimestamp {
        /// Signed time minus now, in seconds.
        skew_secs: i64,
        /// Allowed absolute difference.
        max_secs: i64,
    },
    /// The signature does not match the request.
    #[error("signature does not match the request")]
    BadSignature,
    /// The signature is valid but the body does not match the signed body hash.
    #[error("body does not match the signed body hash")]
    BodyHashMismatch,
    /// The token uses an algorithm Komek does not accept.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// A shared secret or HTTP Basic credential sent by the provider is wrong.
    #[error("wrong shared secret or credentials")]
    BadSecret,
    /// The request did not come from an allowed source address.
    #[error("source address not in the channel's allowlist")]
    SourceNotAllowed,
    /// An allowlist is configured but the request has no remote address.
    #[error("source address unknown but the channel has an allowlist")]
    NoRemoteAddress,
    /// The configured public URL is not a valid absolute URL.
    #[error("the request URL is not an absolute http(s) URL")]
    BadUrl,
}

impl VerifyError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::CredentialsMismatch { .. } => "credentials_mismatch",
            VerifyError::MissingHeader(_) => "missing_header",
            VerifyError::MalformedHeader(_) => "malformed_header",
            VerifyError::MissingParameter(_) => "missing_parameter",
            VerifyError::MalformedParameter(_) => "malformed_parameter",
            VerifyError::StaleTimestamp { .. } => "stale_timestamp",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::BodyHashMismatch => "body_hash_mismatch",
            VerifyError::UnsupportedAlgorithm => "unsupported_algorithm",
            VerifyError::BadSecret => "bad_secret",
            VerifyError::SourceNotAllowed => "source_not_allowed",
            VerifyError::NoRemoteAddress => "no_remote_address",
            VerifyError::BadUrl => "bad_url",
        }
    }
}

/// A webhook body could not be turned into events. Answer 400 (the provider sent something
/// Komek does not understand; most providers will retry, so also alert an operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Komek does not mount this action for this provider.
    #[error("{provider} has no `{action}` webhook")]
    UnsupportedAction {
        /// Provider.
        provider: Provider,
        /// Action.
        action: Action,
    },
    /// The body is not valid JSON / XML / form data of the expected shape.
    #[error("malformed body: {0}")]
    MalformedBody(&'static str),
    /// A required field is absent or empty.
    #[error("field '{0}' required")]
    MissingField(&'static str),
    /// A field has a value Komek cannot interpret.
    #[error("invalid field '{field}': {reason}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// What is wrong (never the value).
        reason: &'static str,
    },
}

impl ParseError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::UnsupportedAction { .. } => "unsupported_action",
            ParseError::MalformedBody(_) => "malformed_body",
            ParseError::MissingField(_) => "missing_field",
            ParseError::InvalidField { .. } => "invalid_field",
        }
    }
}

/// IVR steps that cannot be rendered for a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The provider has no voice API in Komek.
    #[error("{0} has no voice support")]
    NoVoice(Provider),
    /// A prompt has text in a language the provider cannot speak and no recorded audio.
    #[error("{provider} cannot speak `{lang}` and the prompt has no recorded audio URL")]
    LanguageNotSpoken {
        /// Provider.
        provider: Provider,
        /// Requested language tag.
        lang: String,
    },
    /// A prompt has neither text nor audio.
    #[error("step {index}: prompt has neither text nor audio")]
    EmptyPrompt {
        /// Step index.
        index: usize,
    },
    /// The provider cannot do what a step asks.
    #[error("step {index}: {provider} cannot {what}")]
    Unsupported {
        /// Step index.
        index: usize,
        /// Provider.
        provider: Provider,
        /// What is not possible.
        what: &'static str,
    },
    /// A step follows a step that ends the document (Gather, Record, Dial, Redirect, Hangup).
    #[error("step {index} follows a step that hands control back to the provider")]
    StepAfterTerminal {
        /// Index of the unreachable step.
        index: usize,
    },
    /// A step's values are out of range or empty.
    #[error("step {index}: {reason}")]
    InvalidStep {
        /// Step index.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl RenderError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::NoVoice(_) => "no_voice",
            RenderError::LanguageNotSpoken { .. } => "language_not_spoken",
            RenderError::EmptyPrompt { .. } => "empty_prompt",
            RenderError::Unsupported { .. } => "unsupported_step",
            RenderError::StepAfterTerminal { .. } => "step_after_terminal",
            RenderError::InvalidStep { .. } => "invalid_step",
        }
    }
}
