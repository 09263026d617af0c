//! Twilio: SMS, message status callbacks, voice calls (TwiML) and the Messages API.
//!
//! Authenticity is `X-Twilio-Signature`: base64 HMAC-SHA1 (key = auth token) over the exact URL
//! Twilio was configured with, followed — for form POSTs — by every parameter name and value,
//! names sorted, each name's distinct values sorted. JSON bodies are covered instead by a
//! `bodySHA256` query parameter. Twilio's own libraries accept several spellings of the URL
//! (port stripped, default port added, WHATWG re-serialisation), so this verifier tries the same
//! variants. No timestamp is signed: replays are absorbed by dedupe on `MessageSid`.

use base64::Engine as _;

use crate::credentials::KvSecret;
use crate::crypto::{ct_eq, decode_hex, hmac_sha1, sha256};
use crate::error::{CredentialsError, ParseError, RenderError, VerifyError};
use crate::event::{
    CallEvent, CallEventKind, DeliveryState, DeliveryStatus, DialOutcome, HangupCause, InboundEvent,
    InboundSms, Recording,
};
use crate::ivr::{IvrStep, PromptRender, resolve_prompt, validate};
use crate::provider::{Action, Provider};
use crate::reply::Reply;
use crate::request::{Form, WebhookRequest};
use crate::send::{OutboundSms, SendCtx, SendError, SentMessage, classify_status, execute};
use crate::sensitive::{Secret, Sensitive};
use crate::xml::XmlWriter;

const P: Provider = Provider::Twilio;

/// `--secret` format.
pub const FORMAT: &str = "ACCOUNT_SID:AUTH_TOKEN[:PREVIOUS_AUTH_TOKEN], or account_sid=AC...;auth_token=...[;previous_auth_token=...]";

/// Twilio account credentials. The previous token is accepted for signatures during rotation.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Account SID (`AC…`), not secret.
    pub account_sid: String,
    auth_token: Secret,
    previous_auth_token: Option<Secret>,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(CredentialsError::Empty {
                provider: P,
                format: FORMAT,
            });
        }
        let (sid, token, previous) = if secret.contains('=') {
            let kv = KvSecret::parse(
                secret,
                &["account_sid", "auth_token", "previous_auth_token"],
                FORMAT,
            )?;
            (
                kv.require("account_sid")?.to_owned(),
                kv.require("auth_token")?.to_owned(),
                kv.get("previous_auth_token").map(str::to_owned),
            )
        } else {
            let mut parts = secret.split(':');
            let sid = parts.next().unwrap_or_default().to_owned();
            let token = parts
                .next()
                .filter(|t| !t.is_empty())
                .ok_or(CredentialsError::MissingField {
                    field: "auth_token",
                    format: FORMAT,
                })?
                .to_owned();
            let previous = parts.next().filter(|t| !t.is_empty()).map(str::to_owned);
            if parts.next().is_some() {
                return Err(CredentialsError::InvalidValue {
                    field: "secret",
                    reason: "too many `:`-separated parts",
                });
            }
            (sid, token, previous)
        };
        if !sid.starts_with("AC") || sid.len() < 10 || !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CredentialsError::InvalidValue {
                field: "account_sid",
                reason: "expected AC followed by letters and digits",
            });
        }
        Ok(Self {
            account_sid: sid,
            auth_token: Secret::new(token),
            previous_auth_token: previous.map(Secret::new),
        })
    }

    fn tokens(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.auth_token).chain(self.previous_auth_token.iter())
    }
}

/// The string Twilio signs and its base64 HMAC-SHA1 (exposed for tests and tools).
pub fn compute_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let s = string_to_sign(url, params);
    base64::engine::general_purpose::STANDARD.encode(hmac_sha1(auth_token.as_bytes(), &[s.as_bytes()]))
}

fn string_to_sign(url: &str, params: &[(&str, &str)]) -> String {
    let mut names: Vec<&str> = params.iter().map(|(k, _)| *k).collect();
    names.sort_unstable();
    names.dedup();
    let mut s = String::from(url);
    for name in names {
        let mut values: Vec<&str> = params
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .collect();
        values.sort_unstable();
        values.dedup();
        for v in values {
            s.push_str(name);
            s.push_str(v);
        }
    }
    s
}

/// Splits `scheme://authority` from the rest; returns (scheme, prefix up to the host, host,
/// port, rest).
fn split_url(url: &str) -> Option<(&str, &str, &str, Option<&str>, &str)> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let after = scheme_end + 3;
    let auth_end = url[after..]
        .find(['/', '?', '#'])
        .map(|i| i + after)
        .unwrap_or(url.len());
    let authority = &url[after..auth_end];
    let host_start = authority.rfind('@').map(|i| i + 1).unwrap_or(0);
    let host_port = &authority[host_start..];
    let (host, port) = if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(end) => {
                let rest = &host_port[end + 1..];
                (&host_port[..=end], rest.strip_prefix(':'))
            }
            None => return None,
        }
    } else {
        match host_port.rfind(':') {
            Some(i) => (&host_port[..i], Some(&host_port[i + 1..])),
            None => (host_port, None),
        }
    };
    Some((scheme, &url[..after + host_start], host, port, &url[auth_end..]))
}

fn without_port(url: &str) -> Option<String> {
    let (_, prefix, host, port, rest) = split_url(url)?;
    port.map(|_| format!("{prefix}{host}{rest}"))
}

fn with_default_port(url: &str) -> Option<String> {
    let (scheme, prefix, host, port, rest) = split_url(url)?;
    if port.is_some() {
        return None;
    }
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    Some(format!("{prefix}{host}:{default}{rest}"))
}

/// Every spelling of `url` Twilio's official validators accept.
fn url_variants(url: &str) -> Vec<String> {
    let url = url.split('#').next().unwrap_or(url);
    let mut bases = vec![url.to_owned()];
    if let Ok(parsed) = url::Url::parse(url) {
        let mut whatwg = parsed.to_string();
        if parsed.fragment().is_some() {
            whatwg = whatwg.split('#').next().unwrap_or_default().to_owned();
        }
        bases.push(whatwg);
    }
    let mut out: Vec<String> = Vec::new();
    for b in bases {
        for v in [Some(b.clone()), without_port(&b), with_default_port(&b)]
            .into_iter()
            .flatten()
        {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

pub(crate) fn verify(creds: &Credentials, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
    let header = req
        .header("x-twilio-signature")
        .ok_or(VerifyError::MissingHeader("X-Twilio-Signature"))?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(header.trim())
        .map_err(|_| VerifyError::MalformedHeader("X-Twilio-Signature"))?;
    if !req.url.starts_with("http://") && !req.url.starts_with("https://") {
        return Err(VerifyError::BadUrl);
    }
    let query = Form::parse(req.query().as_bytes());
    let body_form;
    let params: Vec<(&str, &str)> = if let Some(expected_hash) = query.get("bodySHA256") {
        // JSON (or any non-form) body: the URL carries the body hash; no parameters are signed.
        let expected = decode_hex(expected_hash).ok_or(VerifyError::MalformedParameter("bodySHA256"))?;
        if !ct_eq(&sha256(req.body), &expected) {
            // Check the signature first would leak nothing more; but a tampered body must fail
            // even when the signature is fine.
            signature_matches(creds, req.url, &[], &given)?;
            return Err(VerifyError::BodyHashMismatch);
        }
        Vec::new()
    } else if req.is_get() {
        Vec::new()
    } else {
        if req.is_json() {
            return Err(VerifyError::MissingParameter("bodySHA256"));
        }
        body_form = Form::parse(req.body);
        body_form.pairs().collect()
    };
    signature_matches(creds, req.url, &params, &given)
}

fn signature_matches(
    creds: &Credentials,
    url: &str,
    params: &[(&str, &str)],
    given: &[u8],
) -> Result<(), VerifyError> {
    let mut ok = false;
    for variant in url_variants(url) {
        let s = string_to_sign(&variant, params);
        for token in creds.tokens() {
            ok |= ct_eq(&hmac_sha1(token.as_bytes(), &[s.as_bytes()]), given);
        }
    }
    if ok {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

fn form_of(req: &WebhookRequest<'_>) -> Form {
    if req.is_get() {
        Form::parse(req.query().as_bytes())
    } else {
        Form::parse(req.body)
    }
}

fn required<'f>(form: &'f Form, name: &'static str) -> Result<&'f str, ParseError> {
    form.non_empty(name).ok_or(ParseError::MissingField(name))
}

fn sensitive(form: &Form, name: &str) -> Option<Sensitive<String>> {
    form.non_empty(name).map(|v| Sensitive::new(v.to_owned()))
}

fn secs(form: &Form, name: &str) -> Option<u32> {
    form.non_empty(name).and_then(|v| v.parse().ok())
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    let form = form_of(req);
    match action {
        Action::Sms => {
            let id = form
                .non_empty("MessageSid")
                .or_else(|| form.non_empty("SmsSid"))
                .ok_or(ParseError::MissingField("MessageSid"))?;
            let from = required(&form, "From")?;
            let text = form.get("Body").ok_or(ParseError::MissingField("Body"))?;
            Ok(vec![InboundEvent::Sms(InboundSms {
                event_id: id.to_owned(),
                from: Sensitive::new(from.to_owned()),
                to: sensitive(&form, "To"),
                text: Sensitive::new(text.to_owned()),
                received_at: None,
                part: None,
            })])
        }
        Action::Status => {
            let id = form
                .non_empty("MessageSid")
                .or_else(|| form.non_empty("SmsSid"))
                .ok_or(ParseError::MissingField("MessageSid"))?;
            let status = form
                .non_empty("MessageStatus")
                .or_else(|| form.non_empty("SmsStatus"))
                .ok_or(ParseError::MissingField("MessageStatus"))?;
            let state = match status {
                "accepted" | "queued" | "scheduled" | "sending" => DeliveryState::Queued,
                "sent" => DeliveryState::Sent,
                "delivered" | "read" => DeliveryState::Delivered,
                "failed" | "undelivered" | "canceled" => DeliveryState::Failed,
                _ => DeliveryState::Unknown,
            };
            Ok(vec![InboundEvent::Status(DeliveryStatus {
                provider_message_id: id.to_owned(),
                state,
                provider_status: status.to_owned(),
                error_code: form.non_empty("ErrorCode").map(str::to_owned),
                at: None,
            })])
        }
        Action::Voice => Ok(vec![call_event(&form, CallEventKind::Started)?]),
        Action::VoiceStatus => {
            if form.non_empty("RecordingUrl").is_some() && form.non_empty("RecordingStatus").is_some() {
                return recording_status(&form);
            }
            let status = required(&form, "CallStatus")?;
            let kind = match hangup_cause(status) {
                Some(cause) => CallEventKind::Hangup {
                    cause,
                    duration_secs: secs(&form, "CallDuration"),
                },
                None => CallEventKind::Progress {
                    status: status.to_owned(),
                },
            };
            Ok(vec![call_event(&form, kind)?])
        }
        Action::Ivr => {
            let kind = if let Some(url) = form.non_empty("RecordingUrl") {
                CallEventKind::RecordingReady(Recording::Url {
                    url: Sensitive::new(url.to_owned()),
                    duration_secs: secs(&form, "RecordingDuration"),
                    recording_id: form.non_empty("RecordingSid").map(str::to_owned),
                })
            } else if let Some(status) = form.non_empty("DialCallStatus") {
                let outcome = match status {
                    "completed" | "answered" => DialOutcome::Answered,
                    "busy" => DialOutcome::Busy,
                    "no-answer" => DialOutcome::NoAnswer,
                    "canceled" => DialOutcome::Canceled,
                    "failed" => DialOutcome::Failed,
                    _ => {
                        return Err(ParseError::InvalidField {
                            field: "DialCallStatus",
                            reason: "unknown status",
                        });
                    }
                };
                CallEventKind::DialResult {
                    outcome,
                    dialed_call_id: form.non_empty("DialCallSid").map(str::to_owned),
                    duration_secs: secs(&form, "DialCallDuration"),
                }
            } else if let Some(digits) = form.non_empty("Digits") {
                CallEventKind::DigitsEntered {
                    digits: Sensitive::new(digits.to_owned()),
                    timed_out: false,
                }
            } else {
                CallEventKind::NoInput
            };
            Ok(vec![call_event(&form, kind)?])
        }
    }
}

fn recording_status(form: &Form) -> Result<Vec<InboundEvent>, ParseError> {
    if form.get("RecordingStatus") != Some("completed") {
        return Ok(Vec::new());
    }
    let url = required(form, "RecordingUrl")?;
    Ok(vec![call_event(
        form,
        CallEventKind::RecordingReady(Recording::Url {
            url: Sensitive::new(url.to_owned()),
            duration_secs: secs(form, "RecordingDuration"),
            recording_id: form.non_empty("RecordingSid").map(str::to_owned),
        }),
    )?])
}

fn hangup_cause(status: &str) -> Option<HangupCause> {
    Some(match status {
        "completed" => HangupCause::Completed,
        "busy" => HangupCause::Busy,
        "no-answer" => HangupCause::NoAnswer,
        "failed" => HangupCause::Failed,
        "canceled" => HangupCause::Canceled,
        _ => return None,
    })
}

fn call_event(form: &Form, kind: CallEventKind) -> Result<InboundEvent, ParseError> {
    let call_id = required(form, "CallSid")?;
    Ok(InboundEvent::Call(CallEvent {
        call_id: call_id.to_owned(),
        from: sensitive(form, "Caller").or_else(|| sensitive(form, "From")),
        to: sensitive(form, "Called").or_else(|| sensitive(form, "To")),
        kind,
    }))
}

fn key(k: Option<char>) -> String {
    k.map(String::from).unwrap_or_default()
}

fn prompt(w: &mut XmlWriter, index: usize, p: &crate::ivr::Prompt) -> Result<(), RenderError> {
    match resolve_prompt(P, index, p)? {
        PromptRender::Say { text, lang } => w.text_element("Say", &[("language", lang)], text),
        PromptRender::Play { url } => w.text_element("Play", &[], url),
    }
    Ok(())
}

pub(crate) fn render(steps: &[IvrStep]) -> Result<Reply, RenderError> {
    validate(P, steps)?;
    let mut w = XmlWriter::new();
    w.open("Response", &[]);
    for (index, step) in steps.iter().enumerate() {
        match step {
            IvrStep::Prompt(p) => prompt(&mut w, index, p)?,
            IvrStep::Gather {
                prompts,
                num_digits,
                timeout_secs,
                finish_on_key,
                action_url,
            } => {
                let timeout = timeout_secs.to_string();
                let num = num_digits.map(|n| n.to_string());
                let finish = key(*finish_on_key);
                let mut attrs = vec![
                    ("input", "dtmf"),
                    ("action", action_url.as_str()),
                    ("method", "POST"),
                    ("timeout", timeout.as_str()),
                    ("finishOnKey", finish.as_str()),
                ];
                if let Some(n) = num.as_deref() {
                    attrs.push(("numDigits", n));
                }
                w.open("Gather", &attrs);
                for p in prompts {
                    prompt(&mut w, index, p)?;
                }
                w.close();
                // No key pressed: Twilio falls through to the next verb; come back empty-handed.
                w.text_element("Redirect", &[("method", "POST")], action_url);
            }
            IvrStep::Record {
                max_length_secs,
                finish_on_key,
                play_beep,
                action_url,
            } => {
                let max = max_length_secs.to_string();
                let finish = key(*finish_on_key);
                w.empty(
                    "Record",
                    &[
                        ("action", action_url.as_str()),
                        ("method", "POST"),
                        ("maxLength", max.as_str()),
                        ("finishOnKey", finish.as_str()),
                        ("playBeep", if *play_beep { "true" } else { "false" }),
                    ],
                );
                w.text_element("Redirect", &[("method", "POST")], action_url);
            }
            IvrStep::Dial {
                numbers,
                ring_timeout_secs,
                caller_id,
                action_url,
            } => {
                let timeout = ring_timeout_secs.to_string();
                let mut attrs = vec![
                    ("action", action_url.as_str()),
                    ("method", "POST"),
                    ("timeout", timeout.as_str()),
                ];
                if let Some(cid) = caller_id.as_deref() {
                    attrs.push(("callerId", cid));
                }
                w.open("Dial", &attrs);
                for n in numbers {
                    w.text_element("Number", &[], n);
                }
                w.close();
            }
            IvrStep::Redirect { url } => w.text_element("Redirect", &[("method", "POST")], url),
            IvrStep::Pause { secs } => w.empty("Pause", &[("length", secs.to_string().as_str())]),
            IvrStep::Hangup => w.empty("Hangup", &[]),
        }
    }
    Ok(Reply::new(200, "text/xml", w.finish()))
}

#[derive(serde::Deserialize)]
struct ApiResponse {
    sid: Option<String>,
    code: Option<serde_json::Value>,
}

pub(crate) async fn send(
    ctx: &SendCtx<'_>,
    creds: &Credentials,
    sms: &OutboundSms,
) -> Result<SentMessage, SendError> {
    let from = sms.from.as_deref().ok_or(SendError::NotConfigured {
        provider: P,
        what: "a From number or MG… Messaging Service SID",
    })?;
    let url = format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        ctx.endpoints.twilio, creds.account_sid
    );
    let mut form: Vec<(&str, &str)> = vec![("To", sms.to.expose()), ("Body", sms.text.expose())];
    if from.starts_with("MG") && !from.starts_with('+') {
        form.push(("MessagingServiceSid", from));
    } else {
        form.push(("From", from));
    }
    if let Some(cb) = sms.status_callback_url.as_deref() {
        form.push(("StatusCallback", cb));
    }
    let req = ctx
        .client
        .post(url)
        .basic_auth(&creds.account_sid, Some(creds.auth_token.expose()))
        .form(&form);
    let resp = execute(P, req).await?;
    let parsed: Option<ApiResponse> = serde_json::from_str(&resp.body).ok();
    let code = parsed
        .as_ref()
        .and_then(|r| r.code.as_ref())
        .map(|c| c.to_string().trim_matches('"').to_owned());
    if let Some(err) = classify_status(P, resp.status, code) {
        return Err(err);
    }
    parsed
        .and_then(|r| r.sid)
        .filter(|s| !s.is_empty())
        .map(|provider_message_id| SentMessage { provider_message_id })
        .ok_or(SendError::BadResponse {
            provider: P,
            status: resp.status,
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn url_helpers() {
        assert_eq!(
            without_port("https://a.com:1234/x?y=1").as_deref(),
            Some("https://a.com/x?y=1")
        );
        assert_eq!(
            with_default_port("https://u:p@a.com/x").as_deref(),
            Some("https://u:p@a.com:443/x")
        );
        assert_eq!(
            with_default_port("http://[::1]/x").as_deref(),
            Some("http://[::1]:80/x")
        );
        assert!(with_default_port("https://a.com:8443/").is_none());
        assert!(without_port("https://a.com/").is_none());
    }

    #[test]
    fn credentials_formats() {
        let c = Credentials::parse("AC0123456789abcdef:tok").unwrap();
        assert_eq!(c.account_sid, "AC0123456789abcdef");
        assert!(!format!("{c:?}").contains("tok\""));
        let c = Credentials::parse("account_sid=AC0123456789abcdef;auth_token=tok;previous_auth_token=old")
            .unwrap();
        assert_eq!(c.tokens().count(), 2);
        assert!(Credentials::parse("").is_err());
        assert!(Credentials::parse("AC0123456789abcdef").is_err());
        assert!(Credentials::parse("XX0123456789abcdef:tok").is_err());
    }
}
