//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use komek_gateways::WebhookRequest;

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

pub fn now() -> DateTime<Utc> {
    at(1_760_354_400) // 2025-10-13 11:20 UTC, as in courier's tests
}

pub fn post<'a>(url: &'a str, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest::new("POST", url, body, now())
        .with_header("Content-Type", "application/x-www-form-urlencoded")
}

pub fn post_json<'a>(url: &'a str, body: &'a [u8]) -> WebhookRequest<'a> {
    WebhookRequest::new("POST", url, body, now()).with_header("Content-Type", "application/json")
}

pub fn get(url: &str) -> WebhookRequest<'_> {
    WebhookRequest::new("GET", url, b"", now())
}

/// `application/x-www-form-urlencoded` encoding of pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}
