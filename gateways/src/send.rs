//! Outbound SMS over each provider's HTTP API.
//!
//! One [`SmsSender`] (one `reqwest` client: rustls with the `ring` provider, connect and total
//! timeouts, redirects disabled) serves every channel. Errors are classified so the outbox can
//! decide: [`SendError::is_retryable`] for timeouts, connection failures, 429 and 5xx;
//! permanent for bad credentials, 4xx and provider rejections. A timeout may hide a message
//! that was in fact accepted; retrying then can send it twice (the provider APIs used here have
//! no idempotency key).

use std::sync::Arc;
use std::time::Duration;

use crate::credentials::ChannelCredentials;
use crate::provider::Provider;
use crate::providers::{africastalking, capcom6, infobip, jasmin, twilio, vonage};
use crate::sensitive::Sensitive;

/// Base URLs of the providers' public APIs (replace them in tests with a mock server's URL).
/// Per-channel endpoints (capcom6 local mode, Infobip's account URL, Jasmin) come from the
/// channel's secret instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Twilio REST API, `https://api.twilio.com`.
    pub twilio: String,
    /// Vonage SMS API, `https://rest.nexmo.com`.
    pub vonage: String,
    /// Africa's Talking live API, `https://api.africastalking.com`.
    pub africastalking: String,
    /// Africa's Talking sandbox API (username `sandbox`), `https://api.sandbox.africastalking.com`.
    pub africastalking_sandbox: String,
    /// capcom6 cloud API, `https://api.sms-gate.app/3rdparty/v1`.
    pub capcom6_cloud: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            twilio: "https://api.twilio.com".into(),
            vonage: "https://rest.nexmo.com".into(),
            africastalking: "https://api.africastalking.com".into(),
            africastalking_sandbox: "https://api.sandbox.africastalking.com".into(),
            capcom6_cloud: "https://api.sms-gate.app/3rdparty/v1".into(),
        }
    }
}

impl Endpoints {
    /// Every endpoint pointing at one base URL (a mock server in tests).
    pub fn all_at(base: &str) -> Self {
        let b = base.trim_end_matches('/').to_owned();
        Self {
            twilio: b.clone(),
            vonage: b.clone(),
            africastalking: b.clone(),
            africastalking_sandbox: b.clone(),
            capcom6_cloud: b,
        }
    }
}

/// Sender settings.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Time allowed to establish a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Time allowed for the whole request (default 20 s).
    pub total_timeout: Duration,
    /// API base URLs.
    pub endpoints: Endpoints,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
            endpoints: Endpoints::default(),
            user_agent: concat!("komek-gateways/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// An SMS to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSms {
    /// Sender: the channel's number or alphanumeric sender id (Twilio: a number or a Messaging
    /// Service SID `MG…`). Required by Twilio and Vonage; optional elsewhere.
    pub from: Option<String>,
    /// Recipient, as the provider expects it (E.164 recommended).
    pub to: Sensitive<String>,
    /// Text.
    pub text: Sensitive<String>,
    /// Where the provider should post delivery reports (the channel's `status` webhook URL),
    /// for providers that take it per message (Twilio, Jasmin, Vonage's account setting aside).
    pub status_callback_url: Option<String>,
}

/// What the provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The provider's id, as later used in [`crate::DeliveryStatus::provider_message_id`].
    pub provider_message_id: String,
}

/// Retry or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorClass {
    /// Try again later (with backoff).
    Retryable,
    /// Trying again will not help; alert an operator.
    Permanent,
}

/// Sending failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No response in time (connect or total timeout). Retryable; the message may have been
    /// accepted.
    #[error("{provider}: request timed out")]
    Timeout {
        /// Provider.
        provider: Provider,
    },
    /// The connection could not be made. Retryable.
    #[error("{provider}: connection failed")]
    Connect {
        /// Provider.
        provider: Provider,
    },
    /// Rate-limited (HTTP 429 or a provider throttling code). Retryable.
    #[error("{provider}: rate limited")]
    RateLimited {
        /// Provider.
        provider: Provider,
    },
    /// The provider failed (5xx or an internal-error code). Retryable.
    #[error("{provider}: provider error (HTTP {status})")]
    ProviderUnavailable {
        /// Provider.
        provider: Provider,
        /// HTTP status.
        status: u16,
    },
    /// The credentials were refused (HTTP 401/403 or an auth error code). Permanent.
    #[error("{provider}: credentials refused")]
    Unauthorized {
        /// Provider.
        provider: Provider,
    },
    /// The provider refused the message (4xx or an error code in a 2xx body). Permanent.
    #[error("{provider}: message rejected (HTTP {status}, provider code {})", provider_code.as_deref().unwrap_or("none"))]
    Rejected {
        /// Provider.
        provider: Provider,
        /// HTTP status.
        status: u16,
        /// The provider's error code (never its free-text message, which may quote the number).
        provider_code: Option<String>,
    },
    /// The response could not be understood. Permanent; the message may have been sent.
    #[error("{provider}: unreadable response (HTTP {status})")]
    BadResponse {
        /// Provider.
        provider: Provider,
        /// HTTP status.
        status: u16,
    },
    /// The channel's secret has no sending credentials, or lacks something sending needs.
    #[error("{provider}: channel not configured for sending: {what}")]
    NotConfigured {
        /// Provider.
        provider: Provider,
        /// What is missing.
        what: &'static str,
    },
    /// This provider cannot send SMS through Komek (SMSSync, FreeSWITCH).
    #[error("{0} cannot send SMS")]
    Unsupported(Provider),
    /// The credentials are for another provider.
    #[error("credentials are for {actual}, not {expected}")]
    CredentialsMismatch {
        /// Requested provider.
        expected: Provider,
        /// Provider of the credentials.
        actual: Provider,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("HTTP client setup failed")]
    Client,
}

impl SendError {
    /// Retry or give up.
    pub fn class(&self) -> SendErrorClass {
        match self {
            SendError::Timeout { .. }
            | SendError::Connect { .. }
            | SendError::RateLimited { .. }
            | SendError::ProviderUnavailable { .. } => SendErrorClass::Retryable,
            _ => SendErrorClass::Permanent,
        }
    }

    /// Whether the outbox should try again later.
    pub fn is_retryable(&self) -> bool {
        self.class() == SendErrorClass::Retryable
    }

    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Timeout { .. } => "send_timeout",
            SendError::Connect { .. } => "send_connect_failed",
            SendError::RateLimited { .. } => "send_rate_limited",
            SendError::ProviderUnavailable { .. } => "send_provider_unavailable",
            SendError::Unauthorized { .. } => "send_unauthorized",
            SendError::Rejected { .. } => "send_rejected",
            SendError::BadResponse { .. } => "send_bad_response",
            SendError::NotConfigured { .. } => "send_not_configured",
            SendError::Unsupported(_) => "send_unsupported",
            SendError::CredentialsMismatch { .. } => "credentials_mismatch",
            SendError::Client => "send_client_setup",
        }
    }
}

/// Sends SMS through any provider. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct SmsSender {
    client: reqwest::Client,
    endpoints: Arc<Endpoints>,
}

impl std::fmt::Debug for SmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSender")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl SmsSender {
    /// Builds the HTTP client (rustls + ring, platform certificate verifier, no redirects).
    pub fn new(config: SenderConfig) -> Result<Self, SendError> {
        use rustls_platform_verifier::BuilderVerifierExt as _;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| SendError::Client)?
            .with_platform_verifier()
            .map_err(|_| SendError::Client)?
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(config.user_agent)
            .build()
            .map_err(|_| SendError::Client)?;
        Ok(Self {
            client,
            endpoints: Arc::new(config.endpoints),
        })
    }

    /// Sends one SMS through the channel described by `credentials`.
    pub async fn send(
        &self,
        provider: Provider,
        credentials: &ChannelCredentials,
        sms: &OutboundSms,
    ) -> Result<SentMessage, SendError> {
        if credentials.provider() != provider {
            return Err(SendError::CredentialsMismatch {
                expected: provider,
                actual: credentials.provider(),
            });
        }
        let ctx = SendCtx {
            client: &self.client,
            endpoints: &self.endpoints,
        };
        match credentials {
            ChannelCredentials::Capcom6(c) => capcom6::send(&ctx, c, sms).await,
            ChannelCredentials::Twilio(c) => twilio::send(&ctx, c, sms).await,
            ChannelCredentials::Vonage(c) => vonage::send(&ctx, c, sms).await,
            ChannelCredentials::AfricasTalking(c) => africastalking::send(&ctx, c, sms).await,
            ChannelCredentials::Infobip(c) => infobip::send(&ctx, c, sms).await,
            ChannelCredentials::Jasmin(c) => jasmin::send(&ctx, c, sms).await,
            ChannelCredentials::Smssync(_) => Err(SendError::Unsupported(Provider::Smssync)),
            ChannelCredentials::Freeswitch(_) => Err(SendError::Unsupported(Provider::Freeswitch)),
        }
    }
}

pub(crate) struct SendCtx<'a> {
    pub(crate) client: &'a reqwest::Client,
    pub(crate) endpoints: &'a Endpoints,
}

/// A finished HTTP exchange: status and body text (bodies are small JSON or text).
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Sends the request and reads the body, mapping transport failures.
pub(crate) async fn execute(
    provider: Provider,
    req: reqwest::RequestBuilder,
) -> Result<RawResponse, SendError> {
    let resp = req.send().await.map_err(|e| transport_error(provider, &e))?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| {
        if e.is_timeout() {
            SendError::Timeout { provider }
        } else {
            SendError::BadResponse { provider, status }
        }
    })?;
    Ok(RawResponse { status, body })
}

fn transport_error(provider: Provider, e: &reqwest::Error) -> SendError {
    if e.is_timeout() {
        SendError::Timeout { provider }
    } else if e.is_builder() {
        SendError::NotConfigured {
            provider,
            what: "invalid API URL",
        }
    } else {
        SendError::Connect { provider }
    }
}

/// Classifies a non-2xx HTTP status; `None` for 2xx.
pub(crate) fn classify_status(
    provider: Provider,
    status: u16,
    provider_code: Option<String>,
) -> Option<SendError> {
    match status {
        200..=299 => None,
        401 | 403 => Some(SendError::Unauthorized { provider }),
        408 | 429 => Some(if status == 429 {
            SendError::RateLimited { provider }
        } else {
            SendError::Timeout { provider }
        }),
        500..=599 => Some(SendError::ProviderUnavailable { provider, status }),
        _ => Some(SendError::Rejected {
            provider,
            status,
            provider_code,
        }),
    }
}

/// Whether every character of `text` is in the GSM 03.38 default alphabet (with extension).
pub(crate) fn is_gsm7(text: &str) -> bool {
    text.chars().all(crate::gsm::encodes)
}
