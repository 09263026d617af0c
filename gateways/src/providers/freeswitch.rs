//! FreeSWITCH `mod_httapi`: the on-premise IVR over a local SIP trunk or GSM gateway, the voice
//! path that depends on no foreign provider.
//!
//! FreeSWITCH posts the call's parameters (GET query, form, or `multipart/form-data` when a
//! recording is attached) and executes the `xml/freeswitch-httapi` document Komek answers.
//! Authenticity: HTTP Basic credentials (`gateway-credentials` in `httapi.conf.xml`) and/or a
//! source allowlist, plus the unguessable channel id in the URL. Caller numbers are only
//! posted with the profile's `extended-data` permission (or passed as params in the dialplan).

use crate::credentials::{IpAllowlist, Login, check_allowlist, check_basic_auth};
use crate::error::{CredentialsError, ParseError, RenderError, VerifyError};
use crate::event::{CallEvent, CallEventKind, DialOutcome, HangupCause, InboundEvent, Recording};
use crate::ivr::{IvrStep, PromptRender, resolve_prompt, validate};
use crate::provider::{Action, Provider};
use crate::reply::Reply;
use crate::request::{FilePart, Form, WebhookRequest, multipart_boundary, parse_multipart};
use crate::sensitive::{Secret, Sensitive};
use crate::xml::XmlWriter;

const P: Provider = Provider::Freeswitch;

/// Name of the parameter the rendered `<playback>`/`<speak>` stores digits in.
pub const DIGITS_PARAM: &str = "komek_digits";
/// Name of the rendered `<record>` upload.
pub const RECORDING_PARAM: &str = "komek_recording";

/// `--secret` format.
pub const FORMAT: &str =
    "USER:PASSWORD (httapi gateway-credentials), or user=...;password=...[;allow_ips=CIDR,...]";

/// FreeSWITCH httapi credentials.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Basic-auth user, not secret.
    pub user: Option<String>,
    password: Option<Secret>,
    /// Source addresses allowed to post webhooks.
    pub allow_ips: Option<IpAllowlist>,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        if secret.trim().is_empty() {
            return Err(CredentialsError::Empty {
                provider: P,
                format: FORMAT,
            });
        }
        let login = Login::parse(secret, "user", "password", FORMAT)?;
        if login.name.is_none() && login.allow_ips.is_none() {
            return Err(CredentialsError::MissingField {
                field: "user",
                format: FORMAT,
            });
        }
        Ok(Self {
            user: login.name,
            password: login.secret,
            allow_ips: login.allow_ips,
        })
    }
}

pub(crate) fn verify(creds: &Credentials, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
    check_allowlist(creds.allow_ips.as_ref(), req)?;
    if let (Some(user), Some(password)) = (creds.user.as_deref(), creds.password.as_ref()) {
        check_basic_auth(req, user, password.as_bytes())?;
    }
    Ok(())
}

fn read(req: &WebhookRequest<'_>) -> Result<(Form, Vec<FilePart>), ParseError> {
    if req.is_get() {
        return Ok((Form::parse(req.query().as_bytes()), Vec::new()));
    }
    if let Some(boundary) = req.header("content-type").and_then(multipart_boundary) {
        return parse_multipart(req.body, &boundary)
            .ok_or(ParseError::MalformedBody("invalid multipart body"));
    }
    let mut form = Form::parse(req.body);
    if form.is_empty() {
        form = Form::parse(req.query().as_bytes());
    }
    Ok((form, Vec::new()))
}

fn first<'f>(form: &'f Form, names: &[&str]) -> Option<&'f str> {
    names.iter().find_map(|n| form.non_empty(n))
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    if !matches!(action, Action::Voice | Action::Ivr) {
        return Err(ParseError::UnsupportedAction { provider: P, action });
    }
    let (form, files) = read(req)?;
    let call_id = form
        .non_empty("session_id")
        .ok_or(ParseError::MissingField("session_id"))?
        .to_owned();
    let from = first(
        &form,
        &[
            "Caller-Caller-ID-Number",
            "caller_id_number",
            "variable_caller_id_number",
        ],
    )
    .map(|v| Sensitive::new(v.to_owned()));
    let to = first(
        &form,
        &[
            "Caller-Destination-Number",
            "destination_number",
            "variable_destination_number",
        ],
    )
    .map(|v| Sensitive::new(v.to_owned()));
    let event = |kind| {
        InboundEvent::Call(CallEvent {
            call_id: call_id.clone(),
            from: from.clone(),
            to: to.clone(),
            kind,
        })
    };
    let mut events = Vec::new();
    for f in files {
        if !f.data.is_empty() {
            events.push(event(CallEventKind::RecordingReady(Recording::Inline {
                audio: Sensitive::new(f.data),
                content_type: f.content_type,
            })));
        }
    }
    if let Some(digits) = form.non_empty(DIGITS_PARAM) {
        events.push(event(CallEventKind::DigitsEntered {
            digits: Sensitive::new(digits.to_owned()),
            timed_out: false,
        }));
    } else if let Some(disposition) = form
        .non_empty("variable_originate_disposition")
        .filter(|_| action == Action::Ivr && events.is_empty())
    {
        let outcome = match disposition {
            "SUCCESS" | "ANSWER" => DialOutcome::Answered,
            "USER_BUSY" => DialOutcome::Busy,
            "NO_ANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" | "RECOVERY_ON_TIMER_EXPIRE" => {
                DialOutcome::NoAnswer
            }
            "ORIGINATOR_CANCEL" => DialOutcome::Canceled,
            _ => DialOutcome::Failed,
        };
        events.push(event(CallEventKind::DialResult {
            outcome,
            dialed_call_id: form.non_empty("variable_bridge_uuid").map(str::to_owned),
            duration_secs: None,
        }));
    }
    if form.get("exiting") == Some("true") {
        let cause =
            match first(&form, &["variable_hangup_cause", "Hangup-Cause"]).unwrap_or("NORMAL_CLEARING") {
                "NORMAL_CLEARING" => HangupCause::Completed,
                "USER_BUSY" => HangupCause::Busy,
                "NO_ANSWER" | "NO_USER_RESPONSE" => HangupCause::NoAnswer,
                "ORIGINATOR_CANCEL" => HangupCause::Canceled,
                "CALL_REJECTED" => HangupCause::Rejected,
                _ => HangupCause::Other,
            };
        let duration = form.non_empty("variable_billsec").and_then(|d| d.parse().ok());
        events.push(event(CallEventKind::Hangup {
            cause,
            duration_secs: duration,
        }));
    } else if events.is_empty() {
        events.push(event(if action == Action::Voice {
            CallEventKind::Started
        } else {
            CallEventKind::NoInput
        }));
    }
    Ok(events)
}

const DOC_TYPE: &str = "xml/freeswitch-httapi";

fn regex_key(k: char) -> &'static str {
    if k == '*' { "\\*" } else { "#" }
}

pub(crate) fn render(steps: &[IvrStep]) -> Result<Reply, RenderError> {
    validate(P, steps)?;
    let mut w = XmlWriter::new();
    w.open("document", &[("type", DOC_TYPE)]);
    w.open("work", &[]);
    for (index, step) in steps.iter().enumerate() {
        match step {
            IvrStep::Prompt(p) => match resolve_prompt(P, index, p)? {
                PromptRender::Say { text, .. } => {
                    w.empty("speak", &[("engine", "flite"), ("voice", "slt"), ("text", text)])
                }
                PromptRender::Play { url } => w.empty("playback", &[("file", url)]),
            },
            IvrStep::Gather {
                prompts,
                num_digits,
                timeout_secs,
                finish_on_key,
                action_url,
            } => {
                let (last, earlier) = match prompts.split_last() {
                    Some((l, e)) => (Some(l), e),
                    None => (None, &[][..]),
                };
                for p in earlier {
                    match resolve_prompt(P, index, p)? {
                        PromptRender::Say { text, .. } => {
                            w.empty("speak", &[("engine", "flite"), ("voice", "slt"), ("text", text)])
                        }
                        PromptRender::Play { url } => w.empty("playback", &[("file", url)]),
                    }
                }
                let ms = (u64::from(*timeout_secs) * 1000).to_string();
                let terminators = finish_on_key.map(String::from).unwrap_or_default();
                let mut attrs: Vec<(&'static str, &str)> = vec![
                    ("name", DIGITS_PARAM),
                    ("action", action_url.as_str()),
                    ("digit-timeout", ms.as_str()),
                    ("input-timeout", ms.as_str()),
                    ("loops", "1"),
                ];
                if !terminators.is_empty() {
                    attrs.push(("terminators", terminators.as_str()));
                }
                let element = match last.map(|p| resolve_prompt(P, index, p)).transpose()? {
                    Some(PromptRender::Say { text, .. }) => {
                        attrs.extend([("engine", "flite"), ("voice", "slt"), ("text", text)]);
                        "speak"
                    }
                    Some(PromptRender::Play { url }) => {
                        attrs.push(("file", url));
                        "playback"
                    }
                    None => {
                        attrs.push(("milliseconds", ms.as_str()));
                        "pause"
                    }
                };
                w.open(element, &attrs);
                match (num_digits, finish_on_key) {
                    (Some(n), Some(k)) => {
                        w.text_element(
                            "bind",
                            &[("strip", &k.to_string())],
                            &format!("~\\d{{1,{n}}}{}", regex_key(*k)),
                        );
                        w.text_element("bind", &[], &format!("~\\d{{{n}}}"));
                    }
                    (Some(n), None) => w.text_element("bind", &[], &format!("~\\d{{{n}}}")),
                    (None, Some(k)) => w.text_element(
                        "bind",
                        &[("strip", &k.to_string())],
                        &format!("~\\d+{}", regex_key(*k)),
                    ),
                    (None, None) => {}
                }
                w.close();
                // Nothing matched: come back without digits.
                w.empty("continue", &[("action", action_url.as_str())]);
            }
            IvrStep::Record {
                max_length_secs,
                finish_on_key,
                play_beep,
                action_url,
            } => {
                let limit = max_length_secs.to_string();
                let terminators = finish_on_key.map(String::from).unwrap_or_default();
                let mut attrs: Vec<(&'static str, &str)> = vec![
                    ("file", "komek-recording.wav"),
                    ("name", RECORDING_PARAM),
                    ("action", action_url.as_str()),
                    ("limit", limit.as_str()),
                ];
                if !terminators.is_empty() {
                    attrs.push(("terminators", terminators.as_str()));
                }
                if *play_beep {
                    attrs.push(("beep-file", "tone_stream://%(500,0,800)"));
                }
                w.empty("record", &attrs);
            }
            IvrStep::Dial {
                numbers,
                ring_timeout_secs,
                caller_id,
                action_url,
            } => {
                // Sequential failover dial string; numbers without a `/` go through the dialplan.
                let dialstring = numbers
                    .iter()
                    .map(|n| {
                        let target = if n.contains('/') {
                            n.clone()
                        } else {
                            format!("loopback/{n}/default")
                        };
                        format!("[leg_timeout={ring_timeout_secs}]{target}")
                    })
                    .collect::<Vec<_>>()
                    .join("|");
                let mut attrs = vec![("action", action_url.as_str())];
                if let Some(cid) = caller_id.as_deref() {
                    attrs.push(("caller-id-number", cid));
                }
                w.text_element("dial", &attrs, &dialstring);
            }
            IvrStep::Redirect { url } => w.empty("continue", &[("action", url.as_str())]),
            IvrStep::Pause { secs } => w.empty(
                "pause",
                &[("milliseconds", (u64::from(*secs) * 1000).to_string().as_str())],
            ),
            IvrStep::Hangup => w.empty("hangup", &[("cause", "NORMAL_CLEARING")]),
        }
    }
    Ok(Reply::new(200, "text/xml", w.finish()))
}
