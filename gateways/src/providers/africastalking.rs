//! Africa's Talking: SMS callbacks, delivery reports, voice callbacks and voice XML, and
//! sending through its messaging API.
//!
//! Africa's Talking signs nothing. Authenticity is the unguessable channel id in the webhook
//! URL plus, optionally, an allowlist of the source addresses Africa's Talking posts from.
//! Coverage is African networks: relevant for Komek's generic deployment, not for Central Asia.

use crate::credentials::{IpAllowlist, Login, check_allowlist};
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
use crate::timefmt::parse_datetime;
use crate::xml::XmlWriter;

const P: Provider = Provider::AfricasTalking;

/// `--secret` format.
pub const FORMAT: &str =
    "USERNAME:API_KEY, or username=...;api_key=...[;allow_ips=CIDR,...] (empty: receive only, no allowlist)";

/// Africa's Talking app credentials (to send) and optional source allowlist.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// App username (`sandbox` selects the sandbox API), not secret.
    pub username: Option<String>,
    api_key: Option<Secret>,
    /// Source addresses allowed to post webhooks.
    pub allow_ips: Option<IpAllowlist>,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        let login = Login::parse(secret, "username", "api_key", FORMAT)?;
        Ok(Self {
            username: login.name,
            api_key: login.secret,
            allow_ips: login.allow_ips,
        })
    }
}

pub(crate) fn verify(creds: &Credentials, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
    check_allowlist(creds.allow_ips.as_ref(), req)
}

fn required<'f>(form: &'f Form, name: &'static str) -> Result<&'f str, ParseError> {
    form.non_empty(name).ok_or(ParseError::MissingField(name))
}

fn sensitive(form: &Form, name: &str) -> Option<Sensitive<String>> {
    form.non_empty(name).map(|v| Sensitive::new(v.to_owned()))
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    let form = if req.is_get() {
        Form::parse(req.query().as_bytes())
    } else {
        Form::parse(req.body)
    };
    match action {
        Action::Sms => {
            let id = required(&form, "id")?;
            let from = required(&form, "from")?;
            let text = form.get("text").ok_or(ParseError::MissingField("text"))?;
            let received_at = match form.non_empty("date") {
                Some(d) => Some(parse_datetime(d).ok_or(ParseError::InvalidField {
                    field: "date",
                    reason: "invalid date format",
                })?),
                None => None,
            };
            Ok(vec![InboundEvent::Sms(InboundSms {
                event_id: id.to_owned(),
                from: Sensitive::new(from.to_owned()),
                to: sensitive(&form, "to"),
                text: Sensitive::new(text.to_owned()),
                received_at,
                part: None,
            })])
        }
        Action::Status => {
            let id = required(&form, "id")?;
            let status = required(&form, "status")?;
            let state = match status {
                "Success" => DeliveryState::Delivered,
                "Sent" | "Submitted" | "Buffered" => DeliveryState::Sent,
                "Queued" => DeliveryState::Queued,
                "Rejected" | "Failed" | "Expired" => DeliveryState::Failed,
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
                error_code: form.non_empty("failureReason").map(str::to_owned),
                at: None,
            })])
        }
        Action::Voice | Action::Ivr => parse_voice(action, &form),
        Action::VoiceStatus => Err(ParseError::UnsupportedAction { provider: P, action }),
    }
}

fn parse_voice(action: Action, form: &Form) -> Result<Vec<InboundEvent>, ParseError> {
    let call_id = required(form, "sessionId")?.to_owned();
    let from = sensitive(form, "callerNumber");
    let to = sensitive(form, "destinationNumber");
    let event = |kind| {
        InboundEvent::Call(CallEvent {
            call_id: call_id.clone(),
            from: from.clone(),
            to: to.clone(),
            kind,
        })
    };
    let duration = form
        .non_empty("durationInSeconds")
        .and_then(|d| d.parse::<f64>().ok())
        .map(|d| d.max(0.0) as u32);
    let recording = form.non_empty("recordingUrl").map(|url| {
        event(CallEventKind::RecordingReady(Recording::Url {
            url: Sensitive::new(url.to_owned()),
            duration_secs: None,
            recording_id: None,
        }))
    });
    if form.get("isActive") == Some("0") {
        // Final request of the call: carries duration, cost, and any recording / dial result.
        let mut events: Vec<InboundEvent> = recording.into_iter().collect();
        if form.non_empty("dialDestinationNumber").is_some() {
            let dial_secs = form
                .non_empty("dialDurationInSeconds")
                .and_then(|d| d.parse::<f64>().ok());
            events.push(event(CallEventKind::DialResult {
                outcome: if dial_secs.is_some_and(|d| d > 0.0) {
                    DialOutcome::Answered
                } else {
                    DialOutcome::NoAnswer
                },
                dialed_call_id: None,
                duration_secs: dial_secs.map(|d| d.max(0.0) as u32),
            }));
        }
        let cause = match form.get("hangupCause").unwrap_or("") {
            "NORMAL_CLEARING" => HangupCause::Completed,
            "USER_BUSY" => HangupCause::Busy,
            "NO_ANSWER" | "NO_USER_RESPONSE" => HangupCause::NoAnswer,
            "ORIGINATOR_CANCEL" => HangupCause::Canceled,
            "CALL_REJECTED" => HangupCause::Rejected,
            "" => HangupCause::Completed,
            _ => HangupCause::Other,
        };
        events.push(event(CallEventKind::Hangup {
            cause,
            duration_secs: duration,
        }));
        return Ok(events);
    }
    if let Some(digits) = form.non_empty("dtmfDigits") {
        return Ok(vec![event(CallEventKind::DigitsEntered {
            digits: Sensitive::new(digits.to_owned()),
            timed_out: false,
        })]);
    }
    if let Some(r) = recording {
        return Ok(vec![r]);
    }
    Ok(vec![event(if action == Action::Voice {
        CallEventKind::Started
    } else {
        CallEventKind::NoInput
    })])
}

fn prompt(w: &mut XmlWriter, index: usize, p: &crate::ivr::Prompt) -> Result<(), RenderError> {
    match resolve_prompt(P, index, p)? {
        PromptRender::Say { text, .. } => w.text_element("Say", &[], text),
        PromptRender::Play { url } => w.empty("Play", &[("url", url)]),
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
                let finish = finish_on_key.map(String::from);
                let mut attrs = vec![
                    ("timeout", timeout.as_str()),
                    ("callbackUrl", action_url.as_str()),
                ];
                if let Some(f) = finish.as_deref() {
                    attrs.push(("finishOnKey", f));
                }
                if let Some(n) = num.as_deref() {
                    attrs.push(("numDigits", n));
                }
                w.open("GetDigits", &attrs);
                for p in prompts {
                    prompt(&mut w, index, p)?;
                }
                w.close();
                w.text_element("Redirect", &[], action_url);
            }
            IvrStep::Record {
                max_length_secs,
                finish_on_key,
                play_beep,
                action_url,
            } => {
                let max = max_length_secs.to_string();
                let finish = finish_on_key.map(String::from);
                let mut attrs = vec![
                    ("maxLength", max.as_str()),
                    ("playBeep", if *play_beep { "true" } else { "false" }),
                    ("trimSilence", "true"),
                    ("callbackUrl", action_url.as_str()),
                ];
                if let Some(f) = finish.as_deref() {
                    attrs.push(("finishOnKey", f));
                }
                w.empty("Record", &attrs);
                w.text_element("Redirect", &[], action_url);
            }
            IvrStep::Dial {
                numbers, caller_id, ..
            } => {
                let list = numbers.join(",");
                let mut attrs = vec![("phoneNumbers", list.as_str()), ("sequential", "true")];
                if let Some(cid) = caller_id.as_deref() {
                    attrs.push(("callerId", cid));
                }
                w.empty("Dial", &attrs);
            }
            IvrStep::Redirect { url } => w.text_element("Redirect", &[], url),
            IvrStep::Pause { .. } => {
                return Err(RenderError::Unsupported {
                    index,
                    provider: P,
                    what: "pause (no such action)",
                });
            }
            // The call ends when the document runs out.
            IvrStep::Hangup => {}
        }
    }
    Ok(Reply::new(200, "application/xml", w.finish()))
}

pub(crate) async fn send(
    ctx: &SendCtx<'_>,
    creds: &Credentials,
    sms: &OutboundSms,
) -> Result<SentMessage, SendError> {
    let (Some(user), Some(key)) = (creds.username.as_deref(), creds.api_key.as_ref()) else {
        return Err(SendError::NotConfigured {
            provider: P,
            what: "username and api_key",
        });
    };
    let base = if user == "sandbox" {
        &ctx.endpoints.africastalking_sandbox
    } else {
        &ctx.endpoints.africastalking
    };
    let mut form: Vec<(&str, &str)> = vec![
        ("username", user),
        ("to", sms.to.expose()),
        ("message", sms.text.expose()),
    ];
    if let Some(from) = sms.from.as_deref() {
        form.push(("from", from));
    }
    let req = ctx
        .client
        .post(format!("{base}/version1/messaging"))
        .header("apiKey", key.expose())
        .header("Accept", "application/json")
        .form(&form);
    let resp = execute(P, req).await?;
    if let Some(err) = classify_status(P, resp.status, None) {
        return Err(err);
    }
    let bad = SendError::BadResponse {
        provider: P,
        status: resp.status,
    };
    let v: serde_json::Value = serde_json::from_str(&resp.body).map_err(|_| bad.clone())?;
    let recipient = v
        .pointer("/SMSMessageData/Recipients")
        .and_then(serde_json::Value::as_array)
        .and_then(|r| r.first())
        .ok_or(bad.clone())?;
    let code = recipient
        .get("statusCode")
        .and_then(serde_json::Value::as_i64)
        .ok_or(bad.clone())?;
    match code {
        100..=102 => recipient
            .get("messageId")
            .and_then(serde_json::Value::as_str)
            .filter(|id| !id.is_empty() && *id != "None")
            .map(|id| SentMessage {
                provider_message_id: id.to_owned(),
            })
            .ok_or(bad),
        500 | 501 => Err(SendError::ProviderUnavailable {
            provider: P,
            status: resp.status,
        }),
        _ => Err(SendError::Rejected {
            provider: P,
            status: resp.status,
            provider_code: Some(code.to_string()),
        }),
    }
}
