//! Vonage (Nexmo): SMS API inbound messages and delivery receipts, Voice API answer/event
//! webhooks with NCCO replies, and sending through the SMS API.
//!
//! Authenticity comes in two shapes, both keyed by the account's *signature secret*:
//! * SMS API webhooks carry a `sig` parameter: the sorted parameters as `&name=value`
//!   (`&`/`=` inside values replaced by `_`), then MD5(query ‖ secret) (`md5hash`, the dashboard
//!   default) or an HMAC (`md5`, `sha1`, `sha256`, `sha512`), hex.
//! * Voice and Messages API webhooks carry `Authorization: Bearer <JWT>` (HS256) whose
//!   `payload_hash` is the SHA-256 of the body and whose `iat` must be recent.
//!
//! Inbound SMS may arrive by GET (query string) or POST (JSON or form); concatenated SMS
//! arrive as separate parts with `concat-ref/total/part` — Komek stores each part and
//! reassembles.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::credentials::KvSecret;
use crate::crypto::{ct_eq, decode_hex, hmac_md5, hmac_sha1, hmac_sha256, hmac_sha512, md5, sha256};
use crate::error::{CredentialsError, ParseError, RenderError, VerifyError};
use crate::event::{
    CallEvent, CallEventKind, DeliveryState, DeliveryStatus, DialOutcome, HangupCause, InboundEvent,
    InboundSms, MessagePart, Recording,
};
use crate::ivr::{IvrStep, PromptRender, resolve_prompt, validate};
use crate::provider::{Action, Provider};
use crate::reply::Reply;
use crate::request::{Form, WebhookRequest};
use crate::send::{OutboundSms, SendCtx, SendError, SentMessage, classify_status, execute, is_gsm7};
use crate::sensitive::{Secret, Sensitive};
use crate::timefmt::{parse_datetime, parse_smpp_short};

const P: Provider = Provider::Vonage;

/// Default maximum age of a signed JWT (25 h, Vonage's retry period plus margin).
pub const DEFAULT_JWT_MAX_AGE_SECS: i64 = 90_000;

/// `--secret` format.
pub const FORMAT: &str = "signature_secret=...[;signature_method=md5hash|md5|sha1|sha256|sha512][;api_key=...;api_secret=...][;jwt_max_age=SECONDS][;sig_max_age=SECONDS]";

/// How the SMS API `sig` parameter is computed (Dashboard → Settings → signature method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    /// MD5(parameters ‖ secret) — the dashboard default.
    Md5Hash,
    /// HMAC-MD5.
    HmacMd5,
    /// HMAC-SHA1.
    HmacSha1,
    /// HMAC-SHA256.
    HmacSha256,
    /// HMAC-SHA512.
    HmacSha512,
}

/// Vonage account credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// API key (not secret), needed to send.
    pub api_key: Option<String>,
    api_secret: Option<Secret>,
    signature_secret: Secret,
    /// Method of the SMS API `sig` parameter.
    pub signature_method: SignatureMethod,
    /// Maximum age of a signed JWT's `iat`, seconds (default 90000 = 25 h). Vonage retries
    /// for 24 h and does not document whether a retry carries a fresh token; a replayed genuine
    /// request only hits the idempotency key, while a rejected retry could lose a report. Set
    /// `jwt_max_age=600` once retries are known to be re-signed.
    pub jwt_max_age_secs: i64,
    /// Maximum age of the SMS `timestamp` parameter; `None` (default): not checked, because
    /// Vonage retries inbound SMS for 24 h and may re-send the original signature.
    pub sig_max_age_secs: Option<i64>,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        if secret.trim().is_empty() {
            return Err(CredentialsError::Empty {
                provider: P,
                format: FORMAT,
            });
        }
        let kv = KvSecret::parse(
            secret,
            &[
                "signature_secret",
                "signature_method",
                "api_key",
                "api_secret",
                "jwt_max_age",
                "sig_max_age",
            ],
            FORMAT,
        )?;
        let signature_method = match kv.get("signature_method").unwrap_or("md5hash") {
            "md5hash" => SignatureMethod::Md5Hash,
            "md5" => SignatureMethod::HmacMd5,
            "sha1" => SignatureMethod::HmacSha1,
            "sha256" => SignatureMethod::HmacSha256,
            "sha512" => SignatureMethod::HmacSha512,
            _ => {
                return Err(CredentialsError::InvalidValue {
                    field: "signature_method",
                    reason: "expected md5hash, md5, sha1, sha256 or sha512",
                });
            }
        };
        let api_key = kv.get("api_key").map(str::to_owned);
        let api_secret = kv.get("api_secret").map(Secret::new);
        if api_key.is_some() != api_secret.is_some() {
            return Err(CredentialsError::MissingField {
                field: if api_key.is_some() {
                    "api_secret"
                } else {
                    "api_key"
                },
                format: FORMAT,
            });
        }
        Ok(Self {
            api_key,
            api_secret,
            signature_secret: Secret::new(kv.require("signature_secret")?),
            signature_method,
            jwt_max_age_secs: kv.seconds("jwt_max_age")?.unwrap_or(DEFAULT_JWT_MAX_AGE_SECS),
            sig_max_age_secs: kv.seconds("sig_max_age")?,
        })
    }
}

/// The request's parameters: query string (GET), JSON object or form body (POST).
fn params(req: &WebhookRequest<'_>) -> Result<Map<String, Value>, ParseError> {
    let from_form = |f: Form| {
        f.pairs()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect()
    };
    if req.is_get() || req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(from_form(Form::parse(req.query().as_bytes())));
    }
    let trimmed = req.body.trim_ascii_start();
    if req.is_json() || trimmed.first() == Some(&b'{') {
        match serde_json::from_slice::<Value>(req.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(ParseError::MalformedBody("expected a JSON object")),
            Err(_) => Err(ParseError::MalformedBody("invalid JSON")),
        }
    } else {
        Ok(from_form(Form::parse(req.body)))
    }
}

fn value_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The SMS API `sig` for `params` (exposed for tests and tools). `sig` itself is skipped.
pub fn compute_sig(method: SignatureMethod, secret: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = params.iter().filter(|(k, _)| *k != "sig").collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut query = String::new();
    for (k, v) in sorted {
        query.push('&');
        query.push_str(k);
        query.push('=');
        query.push_str(&v.replace(['&', '='], "_"));
    }
    let q = query.as_bytes();
    let key = secret.as_bytes();
    hex::encode(match method {
        SignatureMethod::Md5Hash => md5(&[q, key]),
        SignatureMethod::HmacMd5 => hmac_md5(key, &[q]),
        SignatureMethod::HmacSha1 => hmac_sha1(key, &[q]),
        SignatureMethod::HmacSha256 => hmac_sha256(key, &[q]),
        SignatureMethod::HmacSha512 => hmac_sha512(key, &[q]),
    })
}

/// Verified claims of a Vonage signed-webhook JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtClaims(pub Map<String, Value>);

/// Verifies an HS256 JWT's signature with `secret` (algorithm fixed to HS256, `none` and every
/// other algorithm refused) and returns its claims. Time claims are checked by the caller.
pub fn verify_jwt(token: &str, secret: &str) -> Result<JwtClaims, VerifyError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let malformed = VerifyError::MalformedHeader("Authorization");
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(malformed);
    };
    let header: Value = b64
        .decode(h.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(malformed.clone())?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(VerifyError::UnsupportedAlgorithm);
    }
    let sig = b64
        .decode(s.trim_end_matches('='))
        .map_err(|_| malformed.clone())?;
    let expected = hmac_sha256(secret.as_bytes(), &[h.as_bytes(), b".", p.as_bytes()]);
    if !ct_eq(&expected, &sig) {
        return Err(VerifyError::BadSignature);
    }
    match b64
        .decode(p.trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(Value::Object(claims)) => Ok(JwtClaims(claims)),
        _ => Err(malformed),
    }
}

fn check_age(signed_at: i64, now: i64, max_age: i64) -> Result<(), VerifyError> {
    let skew = signed_at.saturating_sub(now);
    // Up to 5 minutes in the future (clock skew), up to max_age in the past.
    if skew > 300 || -skew > max_age {
        return Err(VerifyError::StaleTimestamp {
            skew_secs: skew,
            max_secs: if skew > 0 { 300 } else { max_age },
        });
    }
    Ok(())
}

pub(crate) fn verify(
    creds: &Credentials,
    action: Action,
    req: &WebhookRequest<'_>,
) -> Result<(), VerifyError> {
    if let Some(auth) = req.header("authorization") {
        let token = auth
            .trim()
            .strip_prefix("Bearer ")
            .or_else(|| auth.trim().strip_prefix("bearer "))
            .ok_or(VerifyError::MalformedHeader("Authorization"))?;
        let claims = verify_jwt(token, creds.signature_secret.expose())?;
        let iat = claims
            .0
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(VerifyError::MalformedHeader("Authorization"))?;
        check_age(iat, req.now.timestamp(), creds.jwt_max_age_secs)?;
        if !req.is_get() && !req.body.is_empty() {
            // The hash binds the body to the token; without it a captured token could carry
            // another body.
            let hash = claims
                .0
                .get("payload_hash")
                .and_then(Value::as_str)
                .ok_or(VerifyError::BodyHashMismatch)?;
            let expected = decode_hex(hash).ok_or(VerifyError::BodyHashMismatch)?;
            if !ct_eq(&sha256(req.body), &expected) {
                return Err(VerifyError::BodyHashMismatch);
            }
        }
        return Ok(());
    }
    if matches!(action, Action::Voice | Action::VoiceStatus | Action::Ivr) {
        return Err(VerifyError::MissingHeader("Authorization"));
    }
    let map = params(req).map_err(|_| VerifyError::MalformedParameter("body"))?;
    let given = map
        .get("sig")
        .map(value_str)
        .ok_or(VerifyError::MissingParameter("sig"))?;
    let given = decode_hex(&given).ok_or(VerifyError::MalformedParameter("sig"))?;
    let strings: Vec<(String, String)> = map.iter().map(|(k, v)| (k.clone(), value_str(v))).collect();
    let pairs: Vec<(&str, &str)> = strings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let expected = compute_sig(creds.signature_method, creds.signature_secret.expose(), &pairs);
    let expected = decode_hex(&expected).ok_or(VerifyError::BadSignature)?;
    if !ct_eq(&expected, &given) {
        return Err(VerifyError::BadSignature);
    }
    if let Some(max_age) = creds.sig_max_age_secs {
        let ts = map
            .get("timestamp")
            .map(value_str)
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or(VerifyError::MissingParameter("timestamp"))?;
        check_age(ts, req.now.timestamp(), max_age)?;
    }
    Ok(())
}

fn get<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m str> {
    map.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn get_string(map: &Map<String, Value>, name: &str) -> Option<String> {
    match map.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn get_u32(map: &Map<String, Value>, name: &str) -> Option<u32> {
    get_string(map, name)
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|f| *f >= 0.0)
        .map(|f| f as u32)
}

fn sensitive(map: &Map<String, Value>, name: &str) -> Option<Sensitive<String>> {
    // Messages API sends `from`/`to` as strings for SMS, objects (`{"type","number"}`) in v0.1.
    match map.get(name)? {
        Value::Object(o) => o
            .get("number")
            .and_then(Value::as_str)
            .map(|s| Sensitive::new(s.to_owned())),
        _ => get_string(map, name).map(Sensitive::new),
    }
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    let map = params(req)?;
    match action {
        Action::Sms => parse_sms(&map),
        Action::Status => parse_status(&map),
        Action::Voice => Ok(vec![call_event(&map, CallEventKind::Started)?]),
        Action::VoiceStatus | Action::Ivr => parse_call(action, &map),
    }
}

fn parse_sms(map: &Map<String, Value>) -> Result<Vec<InboundEvent>, ParseError> {
    if let Some(uuid) = get(map, "message_uuid") {
        // Messages API inbound SMS.
        if get(map, "message_type").is_some_and(|t| t != "text") {
            return Ok(Vec::new());
        }
        let from = sensitive(map, "from").ok_or(ParseError::MissingField("from"))?;
        let text = map
            .get("text")
            .and_then(Value::as_str)
            .ok_or(ParseError::MissingField("text"))?;
        return Ok(vec![InboundEvent::Sms(InboundSms {
            event_id: uuid.to_owned(),
            from,
            to: sensitive(map, "to"),
            text: Sensitive::new(text.to_owned()),
            received_at: get(map, "timestamp").and_then(parse_datetime),
            part: None,
        })]);
    }
    let id = get(map, "messageId").ok_or(ParseError::MissingField("messageId"))?;
    let from = get_string(map, "msisdn").ok_or(ParseError::MissingField("msisdn"))?;
    if get(map, "type") == Some("binary") {
        // Binary SMS (ringtones, WAP push) carry no text for a hotline.
        return Ok(Vec::new());
    }
    let text = map
        .get("text")
        .and_then(Value::as_str)
        .ok_or(ParseError::MissingField("text"))?;
    let part = match get_string(map, "concat").as_deref() {
        Some("true") => {
            let reference = get_string(map, "concat-ref").ok_or(ParseError::MissingField("concat-ref"))?;
            let num = |f: &'static str| {
                get_string(map, f)
                    .ok_or(ParseError::MissingField(f))?
                    .parse::<u16>()
                    .map_err(|_| ParseError::InvalidField {
                        field: f,
                        reason: "not a number",
                    })
            };
            let total = num("concat-total")?;
            let index = num("concat-part")?;
            if index == 0 || index > total {
                return Err(ParseError::InvalidField {
                    field: "concat-part",
                    reason: "outside 1..=concat-total",
                });
            }
            Some(MessagePart {
                reference,
                total,
                index,
            })
        }
        _ => None,
    };
    let received_at = match get(map, "message-timestamp") {
        Some(ts) => Some(parse_datetime(ts).ok_or(ParseError::InvalidField {
            field: "message-timestamp",
            reason: "invalid date format",
        })?),
        None => None,
    };
    Ok(vec![InboundEvent::Sms(InboundSms {
        event_id: id.to_owned(),
        from: Sensitive::new(from),
        to: get_string(map, "to").map(Sensitive::new),
        text: Sensitive::new(text.to_owned()),
        received_at,
        part,
    })])
}

fn parse_status(map: &Map<String, Value>) -> Result<Vec<InboundEvent>, ParseError> {
    if let Some(uuid) = get(map, "message_uuid") {
        let status = get(map, "status").ok_or(ParseError::MissingField("status"))?;
        let state = match status {
            "submitted" => DeliveryState::Sent,
            "delivered" | "read" => DeliveryState::Delivered,
            "rejected" | "undeliverable" | "failed" => DeliveryState::Failed,
            _ => DeliveryState::Unknown,
        };
        let error_code = map.get("error").and_then(|e| e.get("code")).map(value_str);
        return Ok(vec![InboundEvent::Status(DeliveryStatus {
            provider_message_id: uuid.to_owned(),
            state,
            provider_status: status.to_owned(),
            error_code,
            at: get(map, "timestamp").and_then(parse_datetime),
        })]);
    }
    let id = get(map, "messageId").ok_or(ParseError::MissingField("messageId"))?;
    let status = get(map, "status").ok_or(ParseError::MissingField("status"))?;
    let state = match status {
        "delivered" => DeliveryState::Delivered,
        "accepted" | "buffered" => DeliveryState::Sent,
        "expired" | "failed" | "rejected" => DeliveryState::Failed,
        "unknown" => DeliveryState::Unknown,
        _ => {
            return Err(ParseError::InvalidField {
                field: "status",
                reason: "unknown status",
            });
        }
    };
    Ok(vec![InboundEvent::Status(DeliveryStatus {
        provider_message_id: id.to_owned(),
        state,
        provider_status: status.to_owned(),
        error_code: get_string(map, "err-code").filter(|c| c != "0"),
        at: get(map, "scts")
            .and_then(parse_smpp_short)
            .or_else(|| get(map, "message-timestamp").and_then(parse_datetime)),
    })])
}

fn parse_call(action: Action, map: &Map<String, Value>) -> Result<Vec<InboundEvent>, ParseError> {
    let kind = if map.contains_key("dtmf") {
        // Two shapes: {"dtmf":{"digits":"42","timed_out":true}} and {"dtmf":"42","timed_out":true}.
        let (digits, timed_out) = match map.get("dtmf") {
            Some(Value::Object(o)) => (
                o.get("digits")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                o.get("timed_out").and_then(Value::as_bool).unwrap_or(false),
            ),
            Some(Value::String(s)) => (
                s.clone(),
                map.get("timed_out").and_then(Value::as_bool).unwrap_or(false),
            ),
            _ => (String::new(), false),
        };
        if digits.is_empty() {
            CallEventKind::NoInput
        } else {
            CallEventKind::DigitsEntered {
                digits: Sensitive::new(digits),
                timed_out,
            }
        }
    } else if let Some(url) = get(map, "recording_url") {
        CallEventKind::RecordingReady(Recording::Url {
            url: Sensitive::new(url.to_owned()),
            duration_secs: None,
            recording_id: get(map, "recording_uuid").map(str::to_owned),
        })
    } else if let Some(status) = get(map, "status") {
        if action == Action::Ivr {
            // Status events at an `ivr` URL come from a `connect` (Dial) leg.
            let outcome = match status {
                "answered" | "completed" => Some(DialOutcome::Answered),
                "busy" => Some(DialOutcome::Busy),
                "timeout" | "unanswered" => Some(DialOutcome::NoAnswer),
                "failed" | "rejected" => Some(DialOutcome::Failed),
                "cancelled" => Some(DialOutcome::Canceled),
                _ => None,
            };
            match outcome {
                Some(outcome) => CallEventKind::DialResult {
                    outcome,
                    dialed_call_id: get(map, "uuid").map(str::to_owned),
                    duration_secs: get_u32(map, "duration"),
                },
                None => CallEventKind::Progress {
                    status: status.to_owned(),
                },
            }
        } else {
            let cause = match status {
                "completed" => Some(HangupCause::Completed),
                "busy" => Some(HangupCause::Busy),
                "timeout" | "unanswered" => Some(HangupCause::NoAnswer),
                "failed" => Some(HangupCause::Failed),
                "rejected" => Some(HangupCause::Rejected),
                "cancelled" => Some(HangupCause::Canceled),
                _ => None,
            };
            match cause {
                Some(cause) => CallEventKind::Hangup {
                    cause,
                    duration_secs: get_u32(map, "duration"),
                },
                None => CallEventKind::Progress {
                    status: status.to_owned(),
                },
            }
        }
    } else {
        CallEventKind::NoInput
    };
    Ok(vec![call_event(map, kind)?])
}

fn call_event(map: &Map<String, Value>, kind: CallEventKind) -> Result<InboundEvent, ParseError> {
    let call_id = get(map, "uuid")
        .or_else(|| get(map, "call_uuid"))
        .or_else(|| get(map, "conversation_uuid"))
        .ok_or(ParseError::MissingField("uuid"))?;
    Ok(InboundEvent::Call(CallEvent {
        call_id: call_id.to_owned(),
        from: sensitive(map, "from"),
        to: sensitive(map, "to"),
        kind,
    }))
}

fn prompt_action(index: usize, p: &crate::ivr::Prompt, barge_in: bool) -> Result<Value, RenderError> {
    Ok(match resolve_prompt(P, index, p)? {
        PromptRender::Say { text, lang } => serde_json::json!({
            "action": "talk", "text": text, "language": lang, "bargeIn": barge_in
        }),
        PromptRender::Play { url } => serde_json::json!({
            "action": "stream", "streamUrl": [url], "bargeIn": barge_in
        }),
    })
}

pub(crate) fn render(steps: &[IvrStep]) -> Result<Reply, RenderError> {
    validate(P, steps)?;
    let mut ncco: Vec<Value> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        match step {
            IvrStep::Prompt(p) => ncco.push(prompt_action(index, p, false)?),
            IvrStep::Gather {
                prompts,
                num_digits,
                timeout_secs,
                finish_on_key,
                action_url,
            } => {
                if matches!(finish_on_key, Some(k) if *k != '#') {
                    return Err(RenderError::Unsupported {
                        index,
                        provider: P,
                        what: "finish input with a key other than #",
                    });
                }
                for p in prompts {
                    ncco.push(prompt_action(index, p, true)?);
                }
                let mut dtmf = Map::new();
                dtmf.insert("timeOut".into(), Value::from((*timeout_secs).min(10)));
                dtmf.insert("maxDigits".into(), Value::from(num_digits.unwrap_or(20)));
                dtmf.insert("submitOnHash".into(), Value::from(finish_on_key.is_some()));
                ncco.push(serde_json::json!({
                    "action": "input", "type": ["dtmf"], "dtmf": dtmf,
                    "eventUrl": [action_url], "eventMethod": "POST"
                }));
            }
            IvrStep::Record {
                max_length_secs,
                finish_on_key,
                play_beep,
                action_url,
            } => {
                let mut rec = serde_json::json!({
                    "action": "record", "format": "mp3", "timeOut": (*max_length_secs).max(3),
                    "beepStart": play_beep, "eventUrl": [action_url], "eventMethod": "POST"
                });
                if let (Some(k), Some(obj)) = (finish_on_key, rec.as_object_mut()) {
                    obj.insert("endOnKey".into(), Value::from(k.to_string()));
                }
                ncco.push(rec);
                // The record event arrives asynchronously; this request lets the service continue the call.
                ncco.push(serde_json::json!({
                    "action": "notify", "payload": {"komek": "record-finished"},
                    "eventUrl": [action_url], "eventMethod": "POST"
                }));
            }
            IvrStep::Dial {
                numbers,
                ring_timeout_secs,
                caller_id,
                action_url,
            } => {
                let endpoints: Vec<Value> = numbers
                    .iter()
                    .map(|n| serde_json::json!({"type": "phone", "number": n}))
                    .collect();
                let mut connect = serde_json::json!({
                    "action": "connect", "endpoint": endpoints, "timeout": ring_timeout_secs,
                    "eventType": "synchronous", "eventUrl": [action_url], "eventMethod": "POST"
                });
                if let (Some(cid), Some(obj)) = (caller_id, connect.as_object_mut()) {
                    obj.insert("from".into(), Value::from(cid.as_str()));
                }
                ncco.push(connect);
            }
            IvrStep::Redirect { url } => ncco.push(serde_json::json!({
                "action": "notify", "payload": {"komek": "redirect"}, "eventUrl": [url], "eventMethod": "POST"
            })),
            IvrStep::Pause { secs } => ncco.push(serde_json::json!({
                "action": "talk", "text": format!("<speak><break time=\"{secs}s\"/></speak>")
            })),
            // An NCCO that runs out hangs up.
            IvrStep::Hangup => {}
        }
    }
    let body = serde_json::to_string(&ncco).map_err(|_| RenderError::InvalidStep {
        index: 0,
        reason: "unserialisable",
    })?;
    Ok(Reply::new(200, "application/json", body))
}

pub(crate) async fn send(
    ctx: &SendCtx<'_>,
    creds: &Credentials,
    sms: &OutboundSms,
) -> Result<SentMessage, SendError> {
    let (Some(key), Some(secret)) = (creds.api_key.as_deref(), creds.api_secret.as_ref()) else {
        return Err(SendError::NotConfigured {
            provider: P,
            what: "api_key and api_secret",
        });
    };
    let from = sms.from.as_deref().ok_or(SendError::NotConfigured {
        provider: P,
        what: "a sender (from)",
    })?;
    let mut form: Vec<(&str, &str)> = vec![
        ("api_key", key),
        ("api_secret", secret.expose()),
        ("from", from),
        ("to", sms.to.expose().trim_start_matches('+')),
        ("text", sms.text.expose()),
    ];
    if !is_gsm7(sms.text.expose()) {
        form.push(("type", "unicode"));
    }
    if let Some(cb) = sms.status_callback_url.as_deref() {
        form.push(("callback", cb));
    }
    let req = ctx
        .client
        .post(format!("{}/sms/json", ctx.endpoints.vonage))
        .form(&form);
    let resp = execute(P, req).await?;
    if let Some(err) = classify_status(P, resp.status, None) {
        return Err(err);
    }
    let bad = SendError::BadResponse {
        provider: P,
        status: resp.status,
    };
    let v: Value = serde_json::from_str(&resp.body).map_err(|_| bad.clone())?;
    let first = v
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.first())
        .ok_or(bad.clone())?;
    let status = first.get("status").map(value_str).ok_or(bad.clone())?;
    match status.as_str() {
        "0" => first
            .get("message-id")
            .and_then(Value::as_str)
            .map(|id| SentMessage {
                provider_message_id: id.to_owned(),
            })
            .ok_or(bad),
        "1" => Err(SendError::RateLimited { provider: P }),
        "5" | "10" => Err(SendError::ProviderUnavailable {
            provider: P,
            status: resp.status,
        }),
        "4" => Err(SendError::Unauthorized { provider: P }),
        code => Err(SendError::Rejected {
            provider: P,
            status: resp.status,
            provider_code: Some(code.to_owned()),
        }),
    }
}
