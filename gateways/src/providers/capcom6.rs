//! capcom6 "SMS Gateway for Android": an Android phone with a local SIM posts every received
//! SMS and every sent/delivered/failed report as a signed JSON envelope, and sends SMS through
//! its local (`http://<phone>:8080`) or cloud (`https://api.sms-gate.app/3rdparty/v1`) API.
//!
//! This is the realistic inbound SMS path in Kazakhstan and Kyrgyzstan, where international
//! providers offer no two-way SMS. Authenticity: `X-Signature` = hex HMAC-SHA256(signing key,
//! raw body ‖ `X-Timestamp`), with the timestamp within ±5 minutes. The dedupe key is the
//! envelope `id`: the payload's `messageId` is derived from content and is not unique.

use serde_json::Value;

use crate::credentials::KvSecret;
use crate::crypto::{ct_eq, decode_hex, hmac_sha256};
use crate::error::{CredentialsError, ParseError, VerifyError};
use crate::event::{DeliveryState, DeliveryStatus, InboundEvent, InboundSms};
use crate::provider::{Action, Provider};
use crate::request::WebhookRequest;
use crate::send::{OutboundSms, SendCtx, SendError, SentMessage, classify_status, execute};
use crate::sensitive::{Secret, Sensitive};
use crate::timefmt::parse_datetime;

const P: Provider = Provider::Capcom6;

/// Allowed difference between `X-Timestamp` and now, seconds (the app's docs recommend ±5 min).
pub const MAX_SKEW_SECS: i64 = 300;

/// `--secret` format.
pub const FORMAT: &str = "signing_key=...[;user=...;password=...][;api_url=http://PHONE_IP:8080 (local mode; default: the cloud API)]";

/// capcom6 channel credentials: the webhook signing key and, to send, the API login.
#[derive(Debug, Clone)]
pub struct Credentials {
    signing_key: Secret,
    /// API user (Settings → Local/Cloud server), not secret.
    pub user: Option<String>,
    password: Option<Secret>,
    /// API base URL; `None` means the cloud API.
    pub api_url: Option<String>,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        if secret.trim().is_empty() {
            return Err(CredentialsError::Empty {
                provider: P,
                format: FORMAT,
            });
        }
        let kv = KvSecret::parse(secret, &["signing_key", "user", "password", "api_url"], FORMAT)?;
        let user = kv.get("user").map(str::to_owned);
        let password = kv.get("password").map(Secret::new);
        if user.is_some() != password.is_some() {
            return Err(CredentialsError::MissingField {
                field: if user.is_some() { "password" } else { "user" },
                format: FORMAT,
            });
        }
        Ok(Self {
            signing_key: Secret::new(kv.require("signing_key")?),
            user,
            password,
            api_url: kv.url("api_url")?,
        })
    }
}

/// The `X-Signature` value for `body` and `timestamp` (exposed for tests and tools).
pub fn compute_signature(signing_key: &str, body: &[u8], timestamp: &str) -> String {
    hex::encode(hmac_sha256(signing_key.as_bytes(), &[body, timestamp.as_bytes()]))
}

pub(crate) fn verify(creds: &Credentials, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
    let sig = req
        .header("x-signature")
        .ok_or(VerifyError::MissingHeader("X-Signature"))?;
    let ts_raw = req
        .header("x-timestamp")
        .ok_or(VerifyError::MissingHeader("X-Timestamp"))?;
    let ts: i64 = ts_raw
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader("X-Timestamp"))?;
    let given = decode_hex(sig).ok_or(VerifyError::MalformedHeader("X-Signature"))?;
    let expected = hmac_sha256(creds.signing_key.as_bytes(), &[req.body, ts_raw.as_bytes()]);
    if !ct_eq(&expected, &given) {
        return Err(VerifyError::BadSignature);
    }
    let skew = ts.saturating_sub(req.now.timestamp());
    if skew.saturating_abs() > MAX_SKEW_SECS {
        return Err(VerifyError::StaleTimestamp {
            skew_secs: skew,
            max_secs: MAX_SKEW_SECS,
        });
    }
    Ok(())
}

fn str_field<'v>(v: &'v Value, name: &'static str) -> Option<&'v str> {
    v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    if !matches!(action, Action::Sms | Action::Status) {
        return Err(ParseError::UnsupportedAction { provider: P, action });
    }
    let env: Value =
        serde_json::from_slice(req.body).map_err(|_| ParseError::MalformedBody("invalid JSON"))?;
    if !env.is_object() {
        return Err(ParseError::MalformedBody("expected a JSON object"));
    }
    let event = str_field(&env, "event").ok_or(ParseError::MissingField("event"))?;
    let id = str_field(&env, "id").ok_or(ParseError::MissingField("id"))?;
    let payload = env
        .get("payload")
        .filter(|p| p.is_object())
        .ok_or(ParseError::MissingField("payload"))?;
    let time = |field: &'static str| -> Result<Option<chrono::DateTime<chrono::Utc>>, ParseError> {
        match str_field(payload, field) {
            Some(t) => parse_datetime(t).map(Some).ok_or(ParseError::InvalidField {
                field,
                reason: "invalid date format",
            }),
            None => Ok(None),
        }
    };
    let status = |state: DeliveryState, at_field: &'static str| -> Result<Vec<InboundEvent>, ParseError> {
        let message_id = str_field(payload, "messageId").ok_or(ParseError::MissingField("messageId"))?;
        Ok(vec![InboundEvent::Status(DeliveryStatus {
            provider_message_id: message_id.to_owned(),
            state,
            provider_status: event.to_owned(),
            error_code: None,
            at: time(at_field)?,
        })])
    };
    match event {
        "sms:received" => {
            let from = str_field(payload, "sender")
                .or_else(|| str_field(payload, "phoneNumber"))
                .ok_or(ParseError::MissingField("sender"))?;
            let text = payload
                .get("message")
                .and_then(Value::as_str)
                .ok_or(ParseError::MissingField("message"))?;
            Ok(vec![InboundEvent::Sms(InboundSms {
                event_id: id.to_owned(),
                from: Sensitive::new(from.to_owned()),
                to: str_field(payload, "recipient").map(|r| Sensitive::new(r.to_owned())),
                text: Sensitive::new(text.to_owned()),
                received_at: time("receivedAt")?,
                part: None,
            })])
        }
        "sms:sent" => status(DeliveryState::Sent, "sentAt"),
        "sms:delivered" => status(DeliveryState::Delivered, "deliveredAt"),
        "sms:failed" => status(DeliveryState::Failed, "failedAt"),
        // Pings, app start, binary data SMS, MMS: nothing for the hotline.
        _ => Ok(Vec::new()),
    }
}

pub(crate) async fn send(
    ctx: &SendCtx<'_>,
    creds: &Credentials,
    sms: &OutboundSms,
) -> Result<SentMessage, SendError> {
    let (Some(user), Some(password)) = (creds.user.as_deref(), creds.password.as_ref()) else {
        return Err(SendError::NotConfigured {
            provider: P,
            what: "user and password",
        });
    };
    let base = creds.api_url.as_deref().unwrap_or(&ctx.endpoints.capcom6_cloud);
    let body = serde_json::json!({
        "message": sms.text.expose(),
        "phoneNumbers": [sms.to.expose()],
        "withDeliveryReport": true,
    });
    let req = ctx
        .client
        .post(format!("{base}/message"))
        .basic_auth(user, Some(password.expose()))
        .json(&body);
    let resp = execute(P, req).await?;
    if let Some(err) = classify_status(P, resp.status, None) {
        return Err(err);
    }
    serde_json::from_str::<Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
        .filter(|id| !id.is_empty())
        .map(|provider_message_id| SentMessage { provider_message_id })
        .ok_or(SendError::BadResponse {
            provider: P,
            status: resp.status,
        })
}
