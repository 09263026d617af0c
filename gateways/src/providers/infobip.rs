//! Infobip: inbound SMS (`MO_JSON_2`, several messages per POST), delivery reports, and
//! sending through `/sms/2/text/advanced`.
//!
//! Infobip does not sign webhooks: authenticity is the unguessable channel id in the URL plus
//! an optional source allowlist. Each account has its own API base URL.

use serde_json::Value;

use crate::credentials::{IpAllowlist, KvSecret, check_allowlist};
use crate::error::{CredentialsError, ParseError, VerifyError};
use crate::event::{DeliveryState, DeliveryStatus, InboundEvent, InboundSms};
use crate::provider::{Action, Provider};
use crate::request::WebhookRequest;
use crate::send::{OutboundSms, SendCtx, SendError, SentMessage, classify_status, execute};
use crate::sensitive::{Secret, Sensitive};
use crate::timefmt::parse_datetime;

const P: Provider = Provider::Infobip;

/// `--secret` format.
pub const FORMAT: &str =
    "api_key=...;base_url=https://XXXXX.api.infobip.com[;allow_ips=CIDR,...] (empty: receive only)";

/// Infobip credentials.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    api_key: Option<Secret>,
    /// The account's API base URL.
    pub base_url: Option<String>,
    /// Source addresses allowed to post webhooks.
    pub allow_ips: Option<IpAllowlist>,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        if secret.trim().is_empty() {
            return Ok(Self::default());
        }
        let kv = KvSecret::parse(secret, &["api_key", "base_url", "allow_ips"], FORMAT)?;
        let api_key = kv.get("api_key").map(Secret::new);
        let base_url = kv.url("base_url")?;
        if api_key.is_some() != base_url.is_some() {
            return Err(CredentialsError::MissingField {
                field: if api_key.is_some() { "base_url" } else { "api_key" },
                format: FORMAT,
            });
        }
        Ok(Self {
            api_key,
            base_url,
            allow_ips: kv.allowlist()?,
        })
    }
}

pub(crate) fn verify(creds: &Credentials, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
    check_allowlist(creds.allow_ips.as_ref(), req)
}

fn str_field<'v>(v: &'v Value, name: &str) -> Option<&'v str> {
    v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn string_field(v: &Value, name: &str) -> Option<String> {
    match v.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    if !matches!(action, Action::Sms | Action::Status) {
        return Err(ParseError::UnsupportedAction { provider: P, action });
    }
    let v: Value = serde_json::from_slice(req.body).map_err(|_| ParseError::MalformedBody("invalid JSON"))?;
    let results = v
        .get("results")
        .and_then(Value::as_array)
        .ok_or(ParseError::MissingField("results"))?;
    let mut events = Vec::with_capacity(results.len());
    for r in results {
        if !r.is_object() {
            return Err(ParseError::MalformedBody("results must be objects"));
        }
        let id = str_field(r, "messageId").ok_or(ParseError::MissingField("messageId"))?;
        let time = |field: &'static str| -> Result<_, ParseError> {
            match str_field(r, field) {
                Some(t) => parse_datetime(t).map(Some).ok_or(ParseError::InvalidField {
                    field,
                    reason: "invalid date format",
                }),
                None => Ok(None),
            }
        };
        if action == Action::Sms {
            let from = string_field(r, "from").ok_or(ParseError::MissingField("from"))?;
            let text = r
                .get("text")
                .and_then(Value::as_str)
                .ok_or(ParseError::MissingField("text"))?;
            events.push(InboundEvent::Sms(InboundSms {
                event_id: id.to_owned(),
                from: Sensitive::new(from),
                to: string_field(r, "to").map(Sensitive::new),
                text: Sensitive::new(text.to_owned()),
                received_at: time("receivedAt")?,
                part: None,
            }));
        } else {
            let status = r.get("status").ok_or(ParseError::MissingField("status"))?;
            let group = str_field(status, "groupName").ok_or(ParseError::MissingField("status.groupName"))?;
            let state = match group {
                "ACCEPTED" => DeliveryState::Queued,
                "PENDING" => DeliveryState::Sent,
                "DELIVERED" => DeliveryState::Delivered,
                "UNDELIVERABLE" | "REJECTED" | "EXPIRED" => DeliveryState::Failed,
                _ => DeliveryState::Unknown,
            };
            let error_code = r
                .get("error")
                .filter(|e| e.get("id").and_then(Value::as_i64).is_some_and(|id| id != 0))
                .and_then(|e| {
                    str_field(e, "name")
                        .map(str::to_owned)
                        .or_else(|| string_field(e, "id"))
                });
            events.push(InboundEvent::Status(DeliveryStatus {
                provider_message_id: id.to_owned(),
                state,
                provider_status: str_field(status, "name").unwrap_or(group).to_owned(),
                error_code,
                at: time("doneAt")?,
            }));
        }
    }
    Ok(events)
}

pub(crate) async fn send(
    ctx: &SendCtx<'_>,
    creds: &Credentials,
    sms: &OutboundSms,
) -> Result<SentMessage, SendError> {
    let (Some(key), Some(base)) = (creds.api_key.as_ref(), creds.base_url.as_deref()) else {
        return Err(SendError::NotConfigured {
            provider: P,
            what: "api_key and base_url",
        });
    };
    let mut message = serde_json::json!({
        "destinations": [{"to": sms.to.expose()}],
        "text": sms.text.expose(),
    });
    if let Some(obj) = message.as_object_mut() {
        if let Some(from) = sms.from.as_deref() {
            obj.insert("from".into(), Value::from(from));
        }
        if let Some(cb) = sms.status_callback_url.as_deref() {
            obj.insert("notifyUrl".into(), Value::from(cb));
            obj.insert("notifyContentType".into(), Value::from("application/json"));
        }
    }
    let body = serde_json::json!({"messages": [message]});
    let req = ctx
        .client
        .post(format!("{base}/sms/2/text/advanced"))
        .header("Authorization", format!("App {}", key.expose()))
        .header("Accept", "application/json")
        .json(&body);
    let resp = execute(P, req).await?;
    let parsed: Option<Value> = serde_json::from_str(&resp.body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v.pointer("/requestError/serviceException/messageId"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(err) = classify_status(P, resp.status, code) {
        return Err(err);
    }
    let bad = SendError::BadResponse {
        provider: P,
        status: resp.status,
    };
    let first = parsed
        .as_ref()
        .and_then(|v| v.get("messages"))
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .ok_or(bad.clone())?;
    if first.pointer("/status/groupName").and_then(Value::as_str) == Some("REJECTED") {
        return Err(SendError::Rejected {
            provider: P,
            status: resp.status,
            provider_code: first
                .pointer("/status/name")
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    str_field(first, "messageId")
        .map(|id| SentMessage {
            provider_message_id: id.to_owned(),
        })
        .ok_or(bad)
}
