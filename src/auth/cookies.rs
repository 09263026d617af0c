//! The browser form of the access token, for the console: an `__Host-komek_session` cookie (HttpOnly,
//! Secure, SameSite=Strict, Path=/, no Domain — the `__Host-` prefix makes browsers enforce the last three),
//! plus CSRF protection by double submit: a random `__Host-komek_csrf` cookie readable by the page's
//! script, whose value the page echoes in an `X-CSRF-Token` header on every unsafe request. A cross-site
//! page can make the browser send the cookies but cannot read them, so it cannot set the header.
//! SameSite=Strict already stops cross-site sends in current browsers; the token is the second wall.

use actix_web::cookie::{Cookie, SameSite, time};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "__Host-komek_session";
/// The CSRF cookie's name.
pub const CSRF_COOKIE: &str = "__Host-komek_csrf";
/// The header that must echo the CSRF cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A new random CSRF token.
pub fn new_csrf_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The two cookies that carry a session in a browser.
pub fn session_cookies(access_token: &str, csrf_token: &str, max_age_seconds: i64) -> [Cookie<'static>; 2] {
    let session = Cookie::build(SESSION_COOKIE, access_token.to_owned())
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::seconds(max_age_seconds))
        .finish();
    let csrf = Cookie::build(CSRF_COOKIE, csrf_token.to_owned())
        .path("/")
        .secure(true)
        .http_only(false)
        .same_site(SameSite::Strict)
        .max_age(time::Duration::seconds(max_age_seconds))
        .finish();
    [session, csrf]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_the_host_prefix_rules() {
        let [session, csrf] = session_cookies("t", &new_csrf_token(), 600);
        let text = session.to_string();
        for part in [
            "__Host-komek_session=t",
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!text.contains("Domain"));
        assert!(!csrf.to_string().contains("HttpOnly"));
        assert!(csrf.value().len() >= 43);
    }
}
