//! Jasmin SMS gateway: the HTTP side of an SMPP link to a local aggregator or an operator's
//! short number. Receives MO messages and delivery receipts as form posts (answered with the
//! literal body `ACK/Jasmin`, or Jasmin retries) and sends through Jasmin's HTTP `/send` API.
//!
//! Jasmin signs nothing: authenticity is the unguessable channel id in the URL plus an optional
//! source allowlist (Jasmin normally runs next to Komek). Message content arrives as raw bytes
//! in the SMPP data coding: GSM 03.38 (0), IA5/ASCII (1), Latin-1 (3), UCS-2 (8).

use crate::credentials::{IpAllowlist, KvSecret, check_allowlist};
use crate::error::{CredentialsError, ParseError, VerifyError};
use crate::event::{DeliveryState, DeliveryStatus, InboundEvent, InboundSms};
use crate::gsm;
use crate::provider::{Action, Provider};
use crate::request::{Form, WebhookRequest};
use crate::send::{OutboundSms, SendCtx, SendError, SentMessage, classify_status, execute, is_gsm7};
use crate::sensitive::{Secret, Sensitive};
use crate::timefmt::parse_smpp_short;

const P: Provider = Provider::Jasmin;

/// `--secret` format.
pub const FORMAT: &str =
    "user=...;password=...;send_url=http://JASMIN:1401/send[;allow_ips=CIDR,...] (empty: receive only)";

/// Jasmin HTTP API credentials.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// HTTP API user, not secret.
    pub user: Option<String>,
    password: Option<Secret>,
    /// `/send` URL.
    pub send_url: Option<String>,
    /// Source addresses allowed to post webhooks.
    pub allow_ips: Option<IpAllowlist>,
}

impl Credentials {
    pub(crate) fn parse(secret: &str) -> Result<Self, CredentialsError> {
        if secret.trim().is_empty() {
            return Ok(Self::default());
        }
        let kv = KvSecret::parse(secret, &["user", "password", "send_url", "allow_ips"], FORMAT)?;
        let user = kv.get("user").map(str::to_owned);
        let password = kv.get("password").map(Secret::new);
        let send_url = kv.url("send_url")?;
        let given = [user.is_some(), password.is_some(), send_url.is_some()];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            let field = if user.is_none() {
                "user"
            } else if password.is_none() {
                "password"
            } else {
                "send_url"
            };
            return Err(CredentialsError::MissingField {
                field,
                format: FORMAT,
            });
        }
        Ok(Self {
            user,
            password,
            send_url,
            allow_ips: kv.allowlist()?,
        })
    }
}

pub(crate) fn verify(creds: &Credentials, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
    check_allowlist(creds.allow_ips.as_ref(), req)
}

fn field<'f>(form: &'f Form, lower: &'static str, upper: &'static str) -> Option<&'f str> {
    form.non_empty(lower).or_else(|| form.non_empty(upper))
}

fn decode_content(form: &Form) -> Result<String, ParseError> {
    let bytes: Vec<u8> = match form.non_empty("binary").and_then(|h| hex::decode(h).ok()) {
        Some(b) => b,
        None => form
            .get_raw("content")
            .ok_or(ParseError::MissingField("content"))?
            .to_vec(),
    };
    Ok(match form.get("coding").unwrap_or("0") {
        "0" | "" => gsm::decode(&bytes),
        "3" => gsm::decode_latin1(&bytes),
        "8" => gsm::decode_ucs2(&bytes),
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    })
}

pub(crate) fn parse(action: Action, req: &WebhookRequest<'_>) -> Result<Vec<InboundEvent>, ParseError> {
    let form = if req.is_get() {
        Form::parse(req.query().as_bytes())
    } else {
        Form::parse(req.body)
    };
    match action {
        Action::Sms => {
            let id = form.non_empty("id").ok_or(ParseError::MissingField("id"))?;
            let from = field(&form, "from", "From").ok_or(ParseError::MissingField("from"))?;
            let text = decode_content(&form)?;
            Ok(vec![InboundEvent::Sms(InboundSms {
                event_id: id.to_owned(),
                from: Sensitive::new(from.to_owned()),
                to: field(&form, "to", "To").map(|t| Sensitive::new(t.to_owned())),
                text: Sensitive::new(text),
                received_at: None,
                part: None,
            })])
        }
        Action::Status => {
            let id = form.non_empty("id").ok_or(ParseError::MissingField("id"))?;
            let status = form
                .non_empty("message_status")
                .ok_or(ParseError::MissingField("message_status"))?;
            let state = match status {
                "DELIVRD" => DeliveryState::Delivered,
                "ACCEPTD" | "ENROUTE" => DeliveryState::Sent,
                "UNDELIV" | "REJECTD" | "EXPIRED" | "DELETED" => DeliveryState::Failed,
                "UNKNOWN" => DeliveryState::Unknown,
                _ => {
                    return Err(ParseError::InvalidField {
                        field: "message_status",
                        reason: "unknown status",
                    });
                }
            };
            Ok(vec![InboundEvent::Status(DeliveryStatus {
                provider_message_id: id.to_owned(),
                state,
                provider_status: status.to_owned(),
                error_code: form
                    .non_empty("err")
                    .filter(|e| !e.trim_start_matches('0').is_empty())
                    .map(str::to_owned),
                at: form.non_empty("donedate").and_then(parse_smpp_short),
            })])
        }
        _ => Err(ParseError::UnsupportedAction { provider: P, action }),
    }
}

pub(crate) async fn send(
    ctx: &SendCtx<'_>,
    creds: &Credentials,
    sms: &OutboundSms,
) -> Result<SentMessage, SendError> {
    let (Some(user), Some(password), Some(url)) = (
        creds.user.as_deref(),
        creds.password.as_ref(),
        creds.send_url.as_deref(),
    ) else {
        return Err(SendError::NotConfigured {
            provider: P,
            what: "user, password and send_url",
        });
    };
    let text = sms.text.expose();
    let hex_ucs2: String;
    let mut form: Vec<(&str, &str)> = vec![
        ("username", user),
        ("password", password.expose()),
        ("to", sms.to.expose()),
    ];
    if text.is_ascii() && is_gsm7(text) {
        form.push(("coding", "0"));
        form.push(("content", text));
    } else {
        hex_ucs2 = text
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .map(|b| format!("{b:02x}"))
            .collect();
        form.push(("coding", "8"));
        form.push(("hex-content", &hex_ucs2));
    }
    if let Some(from) = sms.from.as_deref() {
        form.push(("from", from));
    }
    if let Some(cb) = sms.status_callback_url.as_deref() {
        form.extend([
            ("dlr", "yes"),
            ("dlr-url", cb),
            ("dlr-level", "2"),
            ("dlr-method", "POST"),
        ]);
    }
    let resp = execute(P, ctx.client.post(url).form(&form)).await?;
    if let Some(err) = classify_status(P, resp.status, None) {
        return Err(err);
    }
    // `Success "07033084-5cfd-4812-90a4-e4d24ffb6e3d"`
    resp.body
        .trim()
        .strip_prefix("Success")
        .map(|rest| rest.trim().trim_matches('"').to_owned())
        .filter(|id| !id.is_empty())
        .map(|provider_message_id| SentMessage { provider_message_id })
        .ok_or(SendError::BadResponse {
            provider: P,
            status: resp.status,
        })
}
