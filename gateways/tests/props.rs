//! Property tests: any single-byte change to a signed part breaks verification, and no
//! verifier or parser panics on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use komek_gateways::{Action, ChannelCredentials, Provider, WebhookRequest, parse, verify};
use proptest::prelude::*;

const REPLACEMENTS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Replaces the byte at `index` (modulo length, within `range`) with a byte that differs even
/// case-insensitively (hex signatures, URL schemes and hosts are case-insensitive by design).
fn mutate(s: &str, range: std::ops::Range<usize>, index: usize, pick: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let i = range.start + index % range.len();
    let old = bytes[i].to_ascii_lowercase();
    let mut new = REPLACEMENTS[pick % REPLACEMENTS.len()];
    if new == old {
        new = REPLACEMENTS[(pick + 1) % REPLACEMENTS.len()];
    }
    bytes[i] = new;
    String::from_utf8_lossy(&bytes).into_owned()
}

// --- capcom6: body, X-Timestamp and X-Signature are all signed/checked.
const A1_BODY: &str = r#"{"deviceId":"ffffffffceb0b1db00000193991c27e5","event":"sms:received","id":"-9qZ4oiiZZRm-h_A3mrp2","payload":{"message":"Android is always a sweet treat!","receivedAt":"2025-03-14T07:29:55.000+07:00","messageId":"69bde8d0","phoneNumber":"6505551212","simNumber":1},"webhookId":"LreFUt-Z3sSq0JufY9uWB"}"#;
const A1_SIG: &str = "001ea995c78503fc5dcd8379f0082e46ecdc1d30cb44091bac26f5cfe83df2d6";
const A1_TS: &str = "1741912196";

fn capcom6_ok(body: &str, ts: &str, sig: &str) -> bool {
    let creds = ChannelCredentials::parse(Provider::Capcom6, "signing_key=my-signing-key").unwrap();
    let mut r = post_json("https://k.example/w", body.as_bytes())
        .with_header("X-Signature", sig)
        .with_header("X-Timestamp", ts);
    r.now = at(1_741_912_196);
    verify(Provider::Capcom6, Action::Sms, &creds, &r).is_ok()
}

// --- Twilio: URL (mutations never only change letter case: scheme and host are case-insensitive),
// form body and signature.
const TW_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const TW_HOST_END: usize = "https://mycompany.com".len();
const TW_BODY: &str =
    "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
const TW_SIG: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const TW_JSON: &str = r#"{"property": "value", "boolean": true}"#;
const TW_JSON_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
const TW_JSON_SIG: &str = "a9nBmqA0ju/hNViExpshrM61xv4=";

fn twilio_ok(url: &str, body: &str, sig: &str, json: bool) -> bool {
    let creds =
        ChannelCredentials::parse(Provider::Twilio, "AC00000000000000000000000000000000:12345").unwrap();
    let r = if json {
        post_json(url, body.as_bytes())
    } else {
        post(url, body.as_bytes())
    };
    verify(
        Provider::Twilio,
        Action::Sms,
        &creds,
        &r.with_header("X-Twilio-Signature", sig),
    )
    .is_ok()
}

// --- Vonage SMS `sig`: the query parameters (the path is not signed by Vonage) and `sig`.
const VN_PATH: &str = "https://k.example/webhooks/vonage/c1/sms?";
const VN_QUERY: &str = "message-timestamp=2013-11-21+15%3A27%3A30&messageId=020000001B0FE827&msisdn=14843472194&text=Test+again&timestamp=1385047698&to=13239877404&type=text&sig=d2e7b1dc968737c5998ad624e02f90b7";

fn vonage_sig_ok(query: &str) -> bool {
    let creds =
        ChannelCredentials::parse(Provider::Vonage, "signature_secret=my_secret_key_for_testing").unwrap();
    let url = format!("{VN_PATH}{query}");
    verify(Provider::Vonage, Action::Sms, &creds, &get(&url)).is_ok()
}

// --- Vonage JWT: token (header, claims incl. iat, signature) and body.
const V10_BODY: &str = r#"{"msisdn":"447700900001","to":"447700900000","messageId":"0A0000000123ABCD1","text":"Hello","type":"text","keyword":"HELLO","message-timestamp":"2020-01-01 12:00:00"}"#;
const V10_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE1ODc0OTQ5NjIsImp0aSI6ImM1YmE4ZjI0LTFhMTQtNGMxMC1iZmRmLTNmYmU4Y2U1MTFiNSIsImlzcyI6IlZvbmFnZSIsInBheWxvYWRfaGFzaCI6IjYxZjBlZjRjODZjNTMxNGQ1MmExNmM4YjkzNzY2YTNlZWZmMjI1N2ZhMTgzOWMzZWRlNWM1MzI4MGYzMmIyMWQiLCJhcGlfa2V5IjoiYTFiMmMzZCIsImFwcGxpY2F0aW9uX2lkIjoiYWFhYWFhYWEtYmJiYi1jY2NjLWRkZGQtMDEyMzQ1Njc4OWFiIn0.eraYbMy3bksKQdYeHXmjzPeGtusGcyt7sf7z4dVGRTs";

fn vonage_jwt_ok(token: &str, body: &str) -> bool {
    let creds = ChannelCredentials::parse(
        Provider::Vonage,
        "signature_secret=qwertyuiopasdfghjklzxcvbnm123456",
    )
    .unwrap();
    let mut r = post_json("https://k.example/w", body.as_bytes())
        .with_header("Authorization", &format!("Bearer {token}"));
    r.now = at(1_587_494_962 + 5);
    verify(Provider::Vonage, Action::VoiceStatus, &creds, &r).is_ok()
}

#[test]
fn unmutated_vectors_verify() {
    assert!(capcom6_ok(A1_BODY, A1_TS, A1_SIG));
    assert!(twilio_ok(TW_URL, TW_BODY, TW_SIG, false));
    assert!(twilio_ok(TW_JSON_URL, TW_JSON, TW_JSON_SIG, true));
    assert!(vonage_sig_ok(VN_QUERY));
    assert!(vonage_jwt_ok(V10_TOKEN, V10_BODY));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn capcom6_any_byte_change_fails(i in any::<usize>(), pick in any::<usize>()) {
        prop_assert!(!capcom6_ok(&mutate(A1_BODY, 0..A1_BODY.len(), i, pick), A1_TS, A1_SIG));
        prop_assert!(!capcom6_ok(A1_BODY, &mutate(A1_TS, 0..A1_TS.len(), i, pick), A1_SIG));
        prop_assert!(!capcom6_ok(A1_BODY, A1_TS, &mutate(A1_SIG, 0..A1_SIG.len(), i, pick)));
    }

    #[test]
    fn twilio_any_byte_change_fails(i in any::<usize>(), pick in any::<usize>()) {
        prop_assert!(!twilio_ok(&mutate(TW_URL, 0..TW_URL.len(), i, pick), TW_BODY, TW_SIG, false));
        prop_assert!(!twilio_ok(&mutate(TW_URL, TW_HOST_END..TW_URL.len(), i, pick), TW_BODY, TW_SIG, false));
        prop_assert!(!twilio_ok(TW_URL, &mutate(TW_BODY, 0..TW_BODY.len(), i, pick), TW_SIG, false));
        prop_assert!(!twilio_ok(TW_URL, TW_BODY, &mutate(TW_SIG, 0..TW_SIG.len(), i, pick), false));
        prop_assert!(!twilio_ok(&mutate(TW_JSON_URL, TW_HOST_END..TW_JSON_URL.len(), i, pick), TW_JSON, TW_JSON_SIG, true));
        prop_assert!(!twilio_ok(TW_JSON_URL, &mutate(TW_JSON, 0..TW_JSON.len(), i, pick), TW_JSON_SIG, true));
        prop_assert!(!twilio_ok(TW_JSON_URL, TW_JSON, &mutate(TW_JSON_SIG, 0..TW_JSON_SIG.len(), i, pick), true));
    }

    #[test]
    fn vonage_any_byte_change_fails(i in any::<usize>(), pick in any::<usize>()) {
        prop_assert!(!vonage_sig_ok(&mutate(VN_QUERY, 0..VN_QUERY.len(), i, pick)));
        prop_assert!(!vonage_jwt_ok(&mutate(V10_TOKEN, 0..V10_TOKEN.len(), i, pick), V10_BODY));
        prop_assert!(!vonage_jwt_ok(V10_TOKEN, &mutate(V10_BODY, 0..V10_BODY.len(), i, pick)));
    }
}

fn all_credentials() -> Vec<ChannelCredentials> {
    [
        (Provider::Capcom6, "signing_key=k;user=u;password=p"),
        (Provider::Twilio, "AC00000000000000000000000000000000:t"),
        (
            Provider::Vonage,
            "signature_secret=s;signature_method=sha256;sig_max_age=300",
        ),
        (
            Provider::AfricasTalking,
            "username=u;api_key=k;allow_ips=10.0.0.0/8",
        ),
        (Provider::Infobip, "allow_ips=10.0.0.1"),
        (Provider::Jasmin, ""),
        (Provider::Smssync, "s"),
        (Provider::Freeswitch, "u:p"),
    ]
    .into_iter()
    .map(|(p, s)| ChannelCredentials::parse(p, s).unwrap())
    .collect()
}

fn header_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "X-Signature",
        "X-Timestamp",
        "X-Twilio-Signature",
        "Authorization",
        "Content-Type",
        "X-Other",
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn nothing_panics_on_arbitrary_input(
        body in prop::collection::vec(any::<u8>(), 0..256),
        query in "[a-zA-Z0-9_%=&+.:-]{0,64}",
        headers in prop::collection::vec((header_name(), ".{0,64}"), 0..4),
        is_get in any::<bool>(),
        raw_url in prop::option::of(".{0,48}"),
    ) {
        let url = raw_url.unwrap_or_else(|| format!("https://k.example:8443/webhooks/x/c1/sms?{query}"));
        let mut req = WebhookRequest::new(if is_get { "GET" } else { "POST" }, &url, &body, now());
        for (k, v) in &headers {
            req = req.with_header(k, v);
        }
        let creds = all_credentials();
        for p in Provider::all() {
            for a in Action::ALL {
                let _ = parse(*p, a, &req);
                for c in &creds {
                    let _ = verify(*p, a, c, &req);
                }
            }
        }
    }

    #[test]
    fn json_shaped_bodies_never_panic(
        event in prop::sample::select(vec!["sms:received", "sms:sent", "sms:failed", "x"]),
        value in prop_oneof![Just(serde_json::Value::Null), any::<i64>().prop_map(serde_json::Value::from), ".{0,12}".prop_map(serde_json::Value::from)],
        key in prop::sample::select(vec!["message", "sender", "receivedAt", "messageId", "dtmf", "status", "concat-part", "results", "from", "text", "uuid", "msisdn"]),
    ) {
        let mut obj = serde_json::json!({"event": event, "id": "e", "payload": {}, "uuid": "u", "messageId": "m", "msisdn": "1", "text": "t", "concat": "true", "concat-ref": "1", "concat-total": "2", "results": [{}]});
        obj[key] = value.clone();
        obj["payload"][key] = value;
        let body = serde_json::to_vec(&obj).unwrap();
        let req = post_json("https://k.example/w", &body);
        for p in Provider::all() {
            for a in Action::ALL {
                let _ = parse(*p, a, &req);
            }
        }
    }

    #[test]
    fn credentials_parser_never_panics(secret in ".{0,80}") {
        for p in Provider::all() {
            if let Err(e) = ChannelCredentials::parse(*p, &secret) {
                // Errors never echo the secret (only field names or fixed text).
                let msg = e.to_string();
                if secret.len() > 12 && !secret.contains('=') {
                    prop_assert!(!msg.contains(&secret));
                }
            }
        }
    }
}
