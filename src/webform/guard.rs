//! Anti-automation for the public form, without third parties (security.md R42):
//!
//! * **CSRF**: a random value in a cookie (`__Host-` prefixed when the public URL is https, `SameSite=Strict`,
//!   `HttpOnly`, a session cookie) and, in the page, a token `ISSUED.MAC` where MAC is a keyed HMAC of the
//!   form's purpose, the cookie value and the time the page was made. A post without the cookie, or whose
//!   token was not made for that cookie and purpose, is refused (403).
//! * **Minimum fill time**: the signed time in the same token; a form sent sooner is refused (400).
//! * **Honeypot**: a field people never see and never fill (checked by the handler).
//! * **Per-address budget**: in memory, per server, keyed by an HMAC of the client address (IPv6 by its /64),
//!   so the address is never stored; the client address is the connecting peer, or the last untrusted
//!   `X-Forwarded-For` hop when the peer is a configured trusted proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use crate::crypto::Crypto;

/// How long a rendered form stays valid. Long: a person may need hours, and may have to hide the phone.
pub const TOKEN_MAX_AGE_SECS: i64 = 24 * 3600;

/// A token is not accepted if it claims to be from further in the future than this (clock steps).
const CLOCK_SKEW_SECS: i64 = 60;

/// Most distinct addresses a budget remembers before it forgets the expired ones.
const BUDGET_MAX_KEYS: usize = 100_000;

/// What a form token is for; a token made for one cannot be used for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The report form.
    Report,
    /// The follow-up code form.
    Status,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Report => "report",
            Purpose::Status => "status",
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// No cookie, no token, or a token not made by this server for this cookie and purpose (403).
    Forged,
    /// A genuine token older than [`TOKEN_MAX_AGE_SECS`] (403, the page is shown again with a fresh one).
    Expired,
    /// Sent sooner after rendering than the minimum fill time (400).
    TooFast,
}

impl TokenError {
    /// A stable code for log lines.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Forged => "csrf_token_invalid",
            TokenError::Expired => "form_expired",
            TokenError::TooFast => "filled_too_fast",
        }
    }
}

/// The cookie's name: `__Host-` prefixed (Secure, Path=/, no Domain) when the service is reached over https.
pub fn cookie_name(https: bool) -> &'static str {
    if https { "__Host-komek-form" } else { "komek-form" }
}

/// A new random cookie value.
pub fn new_cookie_value() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn well_formed(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The request's form cookie, if it has a well-formed one.
pub fn cookie_value(req: &HttpRequest, https: bool) -> Option<String> {
    let cookie = req.cookie(cookie_name(https))?;
    let value = cookie.value();
    well_formed(value).then(|| value.to_owned())
}

/// The `Set-Cookie` for a form cookie value.
pub fn make_cookie(value: String, https: bool) -> Cookie<'static> {
    Cookie::build(cookie_name(https), value)
        .path("/")
        .secure(https)
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish()
}

fn mac(crypto: &Crypto, purpose: Purpose, cookie: &str, issued: i64) -> String {
    crypto.blind_index(
        "webform-token",
        &format!("{}|{cookie}|{issued}", purpose.as_str()),
    )
}

/// A token for a page rendered at `now` (unix seconds) for the holder of `cookie`.
pub fn issue(crypto: &Crypto, purpose: Purpose, cookie: &str, now: i64) -> String {
    format!("{now}.{}", mac(crypto, purpose, cookie, now))
}

/// Checks a posted token against the cookie, the purpose, the clock and the minimum fill time.
pub fn verify(
    crypto: &Crypto,
    purpose: Purpose,
    cookie: Option<&str>,
    token: Option<&str>,
    now: i64,
    min_fill: Duration,
) -> Result<(), TokenError> {
    let (Some(cookie), Some(token)) = (cookie, token) else {
        return Err(TokenError::Forged);
    };
    let (issued, given) = token.split_once('.').ok_or(TokenError::Forged)?;
    let issued: i64 = issued.parse().map_err(|_| TokenError::Forged)?;
    let expected = mac(crypto, purpose, cookie, issued);
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(TokenError::Forged);
    }
    if issued > now + CLOCK_SKEW_SECS {
        return Err(TokenError::Forged);
    }
    if now - issued > TOKEN_MAX_AGE_SECS {
        return Err(TokenError::Expired);
    }
    let min = i64::try_from(min_fill.as_secs()).unwrap_or(i64::MAX);
    if now - issued < min {
        return Err(TokenError::TooFast);
    }
    Ok(())
}

/// The budget key of a client address: a keyed hash (the address itself is never kept). IPv6 clients are
/// keyed by their /64, which one subscriber usually holds whole.
pub fn address_key(crypto: &Crypto, address: Option<IpAddr>) -> String {
    let text = match address {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_owned(),
    };
    crypto.blind_index("webform-client", &text)
}

/// A fixed-window budget of events per key.
#[derive(Debug)]
pub struct Budget {
    limit: u32,
    window: Duration,
    used: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Budget {
    /// `limit` events per `window` per key.
    pub fn new(limit: u32, window: Duration) -> Budget {
        Budget {
            limit,
            window,
            used: Mutex::new(HashMap::new()),
        }
    }

    /// True when `key` may still act in the current window (nothing is counted).
    pub fn allows(&self, key: &str) -> bool {
        let Ok(used) = self.used.lock() else {
            return true;
        };
        match used.get(key) {
            Some((start, count)) if start.elapsed() < self.window => *count < self.limit,
            _ => true,
        }
    }

    /// Counts one event for `key`.
    pub fn charge(&self, key: &str) {
        let Ok(mut used) = self.used.lock() else {
            return;
        };
        if used.len() >= BUDGET_MAX_KEYS && !used.contains_key(key) {
            let window = self.window;
            used.retain(|_, (start, _)| start.elapsed() < window);
            if used.len() >= BUDGET_MAX_KEYS {
                // Still full of live entries: a flood from very many addresses. Forget rather than grow.
                tracing::warn!(security = true, "web form budget table full; cleared");
                used.clear();
            }
        }
        let now = Instant::now();
        let entry = used.entry(key.to_owned()).or_insert((now, 0));
        if entry.0.elapsed() >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn crypto() -> Result<Crypto, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let keys = crate::keys::load_or_generate(&dir.path().join("k.toml"), true)?;
        Ok(Crypto::new(Arc::new(keys)))
    }

    #[test]
    fn tokens_bind_cookie_purpose_and_time() -> Result<(), Box<dyn std::error::Error>> {
        let c = crypto()?;
        let cookie = new_cookie_value();
        let other = new_cookie_value();
        let min = Duration::from_secs(3);
        let token = issue(&c, Purpose::Report, &cookie, 1_000);
        let check = |p, ck: &str, t: &str, now| verify(&c, p, Some(ck), Some(t), now, min);
        assert_eq!(check(Purpose::Report, &cookie, &token, 1_005), Ok(()));
        assert_eq!(
            check(Purpose::Report, &cookie, &token, 1_001),
            Err(TokenError::TooFast)
        );
        assert_eq!(
            check(Purpose::Report, &other, &token, 1_005),
            Err(TokenError::Forged)
        );
        assert_eq!(
            check(Purpose::Status, &cookie, &token, 1_005),
            Err(TokenError::Forged)
        );
        assert_eq!(
            check(Purpose::Report, &cookie, &token, 1_000 + TOKEN_MAX_AGE_SECS + 1),
            Err(TokenError::Expired)
        );
        let moved = token.replacen("1000.", "900.", 1);
        assert_eq!(
            check(Purpose::Report, &cookie, &moved, 1_005),
            Err(TokenError::Forged)
        );
        assert_eq!(
            check(Purpose::Report, &cookie, "garbage", 1_005),
            Err(TokenError::Forged)
        );
        assert_eq!(
            verify(&c, Purpose::Report, None, Some(&token), 1_005, min),
            Err(TokenError::Forged)
        );
        Ok(())
    }

    #[test]
    fn one_ipv6_slash_64_is_one_client_and_addresses_are_never_kept() -> Result<(), Box<dyn std::error::Error>>
    {
        let c = crypto()?;
        let a = address_key(&c, Some("2001:db8:1:2:aaaa::1".parse()?));
        let b = address_key(&c, Some("2001:db8:1:2:bbbb::2".parse()?));
        assert_eq!(a, b, "one IPv6 /64 is one client");
        assert!(!a.contains("2001"));
        Ok(())
    }

    #[test]
    fn budget_counts_per_key_within_the_window() {
        let budget = Budget::new(2, Duration::from_secs(3600));
        assert!(budget.allows("a"));
        budget.charge("a");
        budget.charge("a");
        assert!(!budget.allows("a"));
        assert!(budget.allows("b"));
        let short = Budget::new(1, Duration::from_millis(0));
        short.charge("a");
        assert!(short.allows("a"));
    }
}
