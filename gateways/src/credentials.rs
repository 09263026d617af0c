//! Per-channel credentials: parsing the one secret string a channel stores.
//!
//! `komek channel add --secret '<secret>'` stores one string per channel. Its format is
//! provider-specific (see [`ChannelCredentials::format`] and the README); multi-field secrets
//! are `name=value` pairs separated by `;` (values may contain `=` and `:` but not `;`;
//! whitespace around pairs is ignored). Parsed credentials print no secret in `Debug`.

use std::net::IpAddr;

use crate::error::{CredentialsError, VerifyError};
use crate::provider::Provider;
use crate::providers::{africastalking, capcom6, freeswitch, infobip, jasmin, smssync, twilio, vonage};
use crate::request::WebhookRequest;
use crate::sensitive::Secret;

/// Parsed credentials of one channel.
#[derive(Debug, Clone)]
pub enum ChannelCredentials {
    /// capcom6 SMS Gateway for Android.
    Capcom6(capcom6::Credentials),
    /// Twilio.
    Twilio(twilio::Credentials),
    /// Vonage.
    Vonage(vonage::Credentials),
    /// Africa's Talking.
    AfricasTalking(africastalking::Credentials),
    /// Infobip.
    Infobip(infobip::Credentials),
    /// Jasmin.
    Jasmin(jasmin::Credentials),
    /// SMSSync.
    Smssync(smssync::Credentials),
    /// FreeSWITCH.
    Freeswitch(freeswitch::Credentials),
}

impl ChannelCredentials {
    /// Parses the secret string stored for a channel of `provider`.
    pub fn parse(provider: Provider, secret: &str) -> Result<Self, CredentialsError> {
        Ok(match provider {
            Provider::Capcom6 => Self::Capcom6(capcom6::Credentials::parse(secret)?),
            Provider::Twilio => Self::Twilio(twilio::Credentials::parse(secret)?),
            Provider::Vonage => Self::Vonage(vonage::Credentials::parse(secret)?),
            Provider::AfricasTalking => Self::AfricasTalking(africastalking::Credentials::parse(secret)?),
            Provider::Infobip => Self::Infobip(infobip::Credentials::parse(secret)?),
            Provider::Jasmin => Self::Jasmin(jasmin::Credentials::parse(secret)?),
            Provider::Smssync => Self::Smssync(smssync::Credentials::parse(secret)?),
            Provider::Freeswitch => Self::Freeswitch(freeswitch::Credentials::parse(secret)?),
        })
    }

    /// The provider these credentials are for.
    pub fn provider(&self) -> Provider {
        match self {
            Self::Capcom6(_) => Provider::Capcom6,
            Self::Twilio(_) => Provider::Twilio,
            Self::Vonage(_) => Provider::Vonage,
            Self::AfricasTalking(_) => Provider::AfricasTalking,
            Self::Infobip(_) => Provider::Infobip,
            Self::Jasmin(_) => Provider::Jasmin,
            Self::Smssync(_) => Provider::Smssync,
            Self::Freeswitch(_) => Provider::Freeswitch,
        }
    }

    /// The documented `--secret` format for `provider` (for CLI help and errors).
    pub fn format(provider: Provider) -> &'static str {
        match provider {
            Provider::Capcom6 => capcom6::FORMAT,
            Provider::Twilio => twilio::FORMAT,
            Provider::Vonage => vonage::FORMAT,
            Provider::AfricasTalking => africastalking::FORMAT,
            Provider::Infobip => infobip::FORMAT,
            Provider::Jasmin => jasmin::FORMAT,
            Provider::Smssync => smssync::FORMAT,
            Provider::Freeswitch => freeswitch::FORMAT,
        }
    }
}

/// A login — a name and its secret, both or neither — with an optional source allowlist, written either as
/// the short `NAME:SECRET` or as `name_field=...;secret_field=...[;allow_ips=...]`. An empty secret gives an
/// empty login; each provider decides whether that is acceptable.
pub(crate) struct Login {
    pub(crate) name: Option<String>,
    pub(crate) secret: Option<Secret>,
    pub(crate) allow_ips: Option<IpAllowlist>,
}

impl Login {
    pub(crate) fn parse(
        secret: &str,
        name_field: &'static str,
        secret_field: &'static str,
        format: &'static str,
    ) -> Result<Self, CredentialsError> {
        let secret = secret.trim();
        if secret.is_empty() {
            return Ok(Login {
                name: None,
                secret: None,
                allow_ips: None,
            });
        }
        if !secret.contains('=') {
            let (name, value) = secret
                .split_once(':')
                .filter(|(n, v)| !n.is_empty() && !v.is_empty())
                .ok_or(CredentialsError::MissingField {
                    field: secret_field,
                    format,
                })?;
            return Ok(Login {
                name: Some(name.to_owned()),
                secret: Some(Secret::new(value)),
                allow_ips: None,
            });
        }
        let kv = KvSecret::parse(secret, &[name_field, secret_field, "allow_ips"], format)?;
        let name = kv.get(name_field).map(str::to_owned);
        let value = kv.get(secret_field).map(Secret::new);
        if name.is_some() != value.is_some() {
            let field = if name.is_some() { secret_field } else { name_field };
            return Err(CredentialsError::MissingField { field, format });
        }
        Ok(Login {
            name,
            secret: value,
            allow_ips: kv.allowlist()?,
        })
    }
}

/// `name=value;name=value` secret, with the set of names a provider accepts.
pub(crate) struct KvSecret {
    pairs: Vec<(String, String)>,
    format: &'static str,
}

impl KvSecret {
    pub(crate) fn parse(
        secret: &str,
        allowed: &[&str],
        format: &'static str,
    ) -> Result<Self, CredentialsError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in secret.split(';') {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            let Some((name, value)) = piece.split_once('=') else {
                return Err(CredentialsError::UnknownField {
                    field: redact_field(piece),
                    format,
                });
            };
            let name = name.trim();
            if !allowed.contains(&name) {
                return Err(CredentialsError::UnknownField {
                    field: redact_field(name),
                    format,
                });
            }
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(CredentialsError::DuplicateField {
                    field: name.to_owned(),
                });
            }
            pairs.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(Self { pairs, format })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn require(&self, name: &'static str) -> Result<&str, CredentialsError> {
        self.get(name).ok_or(CredentialsError::MissingField {
            field: name,
            format: self.format,
        })
    }

    pub(crate) fn url(&self, name: &'static str) -> Result<Option<String>, CredentialsError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match url::Url::parse(v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    Ok(Some(v.trim_end_matches('/').to_owned()))
                }
                _ => Err(CredentialsError::InvalidValue {
                    field: name,
                    reason: "not an absolute http(s) URL",
                }),
            },
        }
    }

    pub(crate) fn allowlist(&self) -> Result<Option<IpAllowlist>, CredentialsError> {
        self.get("allow_ips").map(IpAllowlist::parse).transpose()
    }

    pub(crate) fn seconds(&self, name: &'static str) -> Result<Option<i64>, CredentialsError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0 && *n <= 30 * 86_400)
                    .ok_or(CredentialsError::InvalidValue {
                        field: name,
                        reason: "expected seconds (1-2592000)",
                    })
            })
            .transpose()
    }
}

/// A mistyped secret might put the secret itself where a field name belongs: echo only a
/// short prefix of anything that does not look like a field name.
fn redact_field(name: &str) -> String {
    if name.len() <= 32 && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        name.to_owned()
    } else {
        "(not a field name)".to_owned()
    }
}

/// Source-address allowlist: comma-separated IPs and CIDR ranges (`196.201.214.0/24,2001:db8::/32`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowlist(Vec<(IpAddr, u8)>);

impl IpAllowlist {
    /// Parses `a.b.c.d[/n],...`.
    pub fn parse(list: &str) -> Result<Self, CredentialsError> {
        let bad = CredentialsError::InvalidValue {
            field: "allow_ips",
            reason: "expected IPs or CIDR ranges separated by ,",
        };
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| bad.clone())?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match len {
                Some(l) => l.parse::<u8>().ok().filter(|p| *p <= max).ok_or(bad.clone())?,
                None => max,
            };
            nets.push((ip, prefix));
        }
        if nets.is_empty() {
            return Err(bad);
        }
        Ok(Self(nets))
    }

    /// Whether `ip` is inside one of the ranges (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        self.0.iter().any(|(net, prefix)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if *prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(*prefix))
                };
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if *prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - u32::from(*prefix))
                };
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        })
    }

    pub(crate) fn check(&self, req: &WebhookRequest<'_>) -> Result<(), VerifyError> {
        let ip = req.remote_ip.ok_or(VerifyError::NoRemoteAddress)?;
        if self.contains(ip) {
            Ok(())
        } else {
            Err(VerifyError::SourceNotAllowed)
        }
    }
}

pub(crate) fn check_allowlist(
    list: Option<&IpAllowlist>,
    req: &WebhookRequest<'_>,
) -> Result<(), VerifyError> {
    match list {
        Some(l) => l.check(req),
        None => Ok(()),
    }
}

/// HTTP Basic credentials in an `Authorization` header, compared in constant time.
pub(crate) fn check_basic_auth(
    req: &WebhookRequest<'_>,
    user: &str,
    password: &[u8],
) -> Result<(), VerifyError> {
    use base64::Engine as _;
    let header = req
        .header("authorization")
        .ok_or(VerifyError::MissingHeader("Authorization"))?;
    let (scheme, value) = header
        .trim()
        .split_once(' ')
        .ok_or(VerifyError::MalformedHeader("Authorization"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(VerifyError::MalformedHeader("Authorization"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|_| VerifyError::MalformedHeader("Authorization"))?;
    let split = decoded
        .iter()
        .position(|b| *b == b':')
        .ok_or(VerifyError::MalformedHeader("Authorization"))?;
    let user_ok = crate::crypto::ct_eq(&decoded[..split], user.as_bytes());
    let pass_ok = crate::crypto::ct_eq(&decoded[split + 1..], password);
    if user_ok & pass_ok {
        Ok(())
    } else {
        Err(VerifyError::BadSecret)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn allowlist() {
        let l = IpAllowlist::parse("196.201.214.0/24, 10.0.0.1,2001:db8::/32").unwrap();
        assert!(l.contains("196.201.214.200".parse().unwrap()));
        assert!(!l.contains("196.201.215.1".parse().unwrap()));
        assert!(l.contains("10.0.0.1".parse().unwrap()));
        assert!(l.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(l.contains("2001:db8:1::5".parse().unwrap()));
        assert!(IpAllowlist::parse("nope").is_err());
        assert!(IpAllowlist::parse("1.2.3.4/33").is_err());
        assert!(
            IpAllowlist::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn kv_errors_never_echo_values() {
        let e = KvSecret::parse("supersecretvalue123", &["a"], "a=...")
            .err()
            .unwrap();
        assert!(!e.to_string().contains("supersecret"));
        let e = KvSecret::parse("a=1;a=2", &["a"], "a=...").err().unwrap();
        assert_eq!(e.code(), "secret_duplicate_field");
    }
}
