//! Intake through the real webhooks: for every SMS provider, a signed message becomes exactly one report and
//! one case; a provider's retry changes nothing and gets the same answer; a forged or unauthorised delivery
//! writes nothing; a follow-up message threads into the open case; a flood is collapsed; with the database
//! unavailable the answer is 503; and no phone number or message text is stored or logged in clear.

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{AppOptions, Backend, Outage, PUBLIC_URL, TestApp, spawn_app, spawn_app_with};

backend_tests!(
    each_sms_provider_turns_a_signed_message_into_one_report_and_one_case,
    a_redelivered_message_gets_the_same_answer_and_writes_nothing,
    forged_or_unauthorised_deliveries_write_nothing,
    a_follow_up_sms_threads_into_the_open_case,
    an_infobip_batch_stores_every_message,
    a_flood_from_one_sender_is_collapsed_without_crowding_out_others,
    unknown_channels_and_oversized_bodies_are_refused,
    malformed_payloads_get_400_and_write_nothing,
    a_webhook_with_the_database_unavailable_gets_503,
    no_phone_number_or_message_text_is_stored_or_logged_in_clear,
);

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// A signed provider request, built independently of the gateways crate (so a bug in its signing cannot
/// hide a bug in its verification).
pub struct Delivery {
    method: reqwest::Method,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    content_type: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sms {
    Capcom6,
    Twilio,
    Vonage,
    AfricasTalking,
    Infobip,
    Jasmin,
    Smssync,
}

const ALL: [Sms; 7] = [
    Sms::Capcom6,
    Sms::Twilio,
    Sms::Vonage,
    Sms::AfricasTalking,
    Sms::Infobip,
    Sms::Jasmin,
    Sms::Smssync,
];

impl Sms {
    fn slug(self) -> &'static str {
        match self {
            Sms::Capcom6 => "capcom6",
            Sms::Twilio => "twilio",
            Sms::Vonage => "vonage",
            Sms::AfricasTalking => "africastalking",
            Sms::Infobip => "infobip",
            Sms::Jasmin => "jasmin",
            Sms::Smssync => "smssync",
        }
    }

    pub fn secret(self) -> &'static str {
        match self {
            Sms::Capcom6 => "signing_key=capcom6-test-key",
            Sms::Twilio => "AC0123456789abcdef0123456789abcdef:twilio-test-token",
            Sms::Vonage => "signature_secret=vonage-test-secret;signature_method=sha256",
            Sms::Smssync => "smssync-shared-secret",
            Sms::AfricasTalking | Sms::Infobip | Sms::Jasmin => "",
        }
    }

    /// Providers that sign nothing are checked against a source allowlist; this one excludes loopback.
    fn blocking_secret(self) -> Option<&'static str> {
        match self {
            Sms::AfricasTalking => Some("allow_ips=196.201.214.0/24"),
            Sms::Infobip => Some("allow_ips=193.105.74.0/24"),
            Sms::Jasmin => Some("allow_ips=10.1.2.0/24"),
            _ => None,
        }
    }

    pub fn delivery(self, channel_id: &str, event_id: &str, from: &str, text: &str) -> Delivery {
        let path = format!("/webhooks/{}/{channel_id}/sms", self.slug());
        let now = chrono::Utc::now().timestamp();
        let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).unwrap().into_bytes();
        match self {
            Sms::Capcom6 => {
                let body = serde_json::to_vec(&json!({
                    "deviceId": "ffffffffceb0b1db00000193991c27e5", "event": "sms:received", "id": event_id,
                    "payload": { "message": text, "receivedAt": "2026-11-22T07:29:55.000+05:00", "messageId": "69bde8d0",
                                 "phoneNumber": from, "simNumber": 1 },
                    "webhookId": "LreFUt-Z3sSq0JufY9uWB",
                }))
                .unwrap();
                let timestamp = now.to_string();
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"capcom6-test-key").unwrap();
                mac.update(&body);
                mac.update(timestamp.as_bytes());
                let signature = hex::encode(mac.finalize().into_bytes());
                Delivery {
                    method: reqwest::Method::POST,
                    path,
                    query: String::new(),
                    headers: vec![("X-Timestamp".into(), timestamp), ("X-Signature".into(), signature)],
                    body,
                    content_type: "application/json",
                }
            }
            Sms::Twilio => {
                let params = [
                    ("MessageSid", event_id), ("SmsSid", event_id), ("AccountSid", TWILIO_SID), ("From", from),
                    ("To", "+77270000000"), ("Body", text), ("NumMedia", "0"), ("NumSegments", "1"),
                    ("SmsStatus", "received"), ("ApiVersion", "2010-04-01"),
                ];
                let mut sorted = params.to_vec();
                sorted.sort();
                let mut signed = format!("{PUBLIC_URL}{path}");
                for (k, v) in sorted {
                    signed.push_str(k);
                    signed.push_str(v);
                }
                let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"twilio-test-token").unwrap();
                mac.update(signed.as_bytes());
                let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                Delivery {
                    method: reqwest::Method::POST,
                    path,
                    query: String::new(),
                    headers: vec![("X-Twilio-Signature".into(), signature)],
                    body: form(&params),
                    content_type: "application/x-www-form-urlencoded",
                }
            }
            Sms::Vonage => {
                let timestamp = now.to_string();
                let msisdn = from.trim_start_matches('+');
                let mut params = vec![
                    ("msisdn", msisdn), ("to", "77270000000"), ("messageId", event_id), ("text", text),
                    ("type", "unicode"), ("keyword", "HELP"), ("message-timestamp", "2026-11-22 07:29:55"),
                    ("timestamp", timestamp.as_str()), ("nonce", "7c8c8b9e-2d4d-4b65-9a8c-0c5d2a1a1a1a"),
                ];
                params.sort();
                let mut signed = String::new();
                for (k, v) in &params {
                    signed.push('&');
                    signed.push_str(k);
                    signed.push('=');
                    signed.push_str(&v.replace(['&', '='], "_"));
                }
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"vonage-test-secret").unwrap();
                mac.update(signed.as_bytes());
                let sig = hex::encode(mac.finalize().into_bytes());
                params.push(("sig", sig.as_str()));
                Delivery {
                    method: reqwest::Method::GET,
                    path,
                    query: serde_urlencoded::to_string(&params).unwrap(),
                    headers: vec![],
                    body: vec![],
                    content_type: "application/x-www-form-urlencoded",
                }
            }
            Sms::AfricasTalking => Delivery {
                method: reqwest::Method::POST,
                path,
                query: String::new(),
                headers: vec![],
                body: form(&[
                    ("linkId", "SampleLinkId123"), ("text", text), ("to", "20880"), ("id", event_id),
                    ("date", "2026-11-22 07:29:55"), ("from", from),
                ]),
                content_type: "application/x-www-form-urlencoded",
            },
            Sms::Infobip => Delivery {
                method: reqwest::Method::POST,
                path,
                query: String::new(),
                headers: vec![],
                body: serde_json::to_vec(&json!({
                    "results": [{ "messageId": event_id, "from": from.trim_start_matches('+'), "to": "77270000000",
                                  "text": text, "cleanText": text, "keyword": "", "receivedAt": "2026-11-22T07:29:55.220+0000",
                                  "smsCount": 1, "price": { "pricePerMessage": 0, "currency": "EUR" } }],
                    "messageCount": 1, "pendingMessageCount": 0,
                }))
                .unwrap(),
                content_type: "application/json",
            },
            Sms::Jasmin => Delivery {
                method: reqwest::Method::POST,
                path,
                query: String::new(),
                headers: vec![],
                body: form(&[("content", text), ("coding", "8"), ("from", from), ("to", "1414"), ("id", event_id)]),
                content_type: "application/x-www-form-urlencoded",
            },
            Sms::Smssync => Delivery {
                method: reqwest::Method::POST,
                path,
                query: String::new(),
                headers: vec![],
                body: form(&[
                    ("from", from), ("message", text), ("message_id", event_id), ("sent_to", "+77270000000"),
                    ("secret", "smssync-shared-secret"), ("device_id", "1"),
                ]),
                content_type: "application/x-www-form-urlencoded",
            },
        }
    }
}

pub async fn deliver(app: &TestApp, delivery: &Delivery) -> (u16, String) {
    deliver_to(&app.client, &app.address, delivery).await.unwrap()
}

/// Sends a delivery to the server at `base` (an error: no answer, e.g. the server died mid-request).
pub async fn deliver_to(
    client: &reqwest::Client,
    base: &str,
    delivery: &Delivery,
) -> Result<(u16, String), reqwest::Error> {
    let mut url = format!("{base}{}", delivery.path);
    if !delivery.query.is_empty() {
        url = format!("{url}?{}", delivery.query);
    }
    let mut request = client
        .request(delivery.method.clone(), url)
        .header("content-type", delivery.content_type);
    for (name, value) in &delivery.headers {
        request = request.header(name, value);
    }
    if delivery.method == reqwest::Method::POST {
        request = request.body(delivery.body.clone());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// A Jasmin (coding 8) body is UCS-2 big-endian hex in `content`... unless given plainly: keep texts ASCII
/// for Jasmin so its GSM/UCS-2 decoding is not what these tests measure.
fn text_for(provider: Sms, text: &str) -> String {
    if provider == Sms::Jasmin {
        text.chars().filter(char::is_ascii).collect()
    } else {
        text.to_owned()
    }
}

pub async fn channel(app: &TestApp, provider: Sms, secret: &str) -> String {
    let org = app
        .create_org(&format!("ngo-{}", provider.slug()), Some("KZ"))
        .await;
    app.create_channel(&org, provider.slug(), secret).await
}

async fn each_sms_provider_turns_a_signed_message_into_one_report_and_one_case(backend: Backend) {
    let app = spawn_app(backend).await;
    for (n, provider) in ALL.into_iter().enumerate() {
        let channel = channel(&app, provider, provider.secret()).await;
        let from = format!("+7701555{:04}", 1000 + n);
        let text = text_for(provider, "pomogite zabrali pasport ne platyat");
        let (status, body) = deliver(
            &app,
            &provider.delivery(&channel, &format!("evt-{n}"), &from, &text),
        )
        .await;
        assert_eq!(status, 200, "{provider:?}: {body}");
        match provider {
            Sms::Twilio => assert!(
                body.contains("<Response/>") && !body.contains("<Message"),
                "no SMS reply: {body}"
            ),
            Sms::Jasmin => assert_eq!(body, "ACK/Jasmin"),
            Sms::Smssync => assert!(body.contains("\"success\":true"), "{body}"),
            _ => {}
        }
        app.settle().await;
        assert_eq!(
            app.count("reports").await,
            n as i64 + 1,
            "{provider:?}: one report"
        );
        assert_eq!(app.count("cases").await, n as i64 + 1, "{provider:?}: one case");
        assert_eq!(
            app.count("contacts").await,
            n as i64 + 1,
            "{provider:?}: one contact"
        );
    }
    let events = app.count("case_events").await;
    assert!(
        events >= 2 * ALL.len() as i64,
        "each case records its opening and its triage: {events}"
    );
}

async fn a_redelivered_message_gets_the_same_answer_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for provider in ALL {
        let channel = channel(&app, provider, provider.secret()).await;
        let delivery = provider.delivery(
            &channel,
            "retry-1",
            "+77015550001",
            &text_for(provider, "menya derzhat vzaperti"),
        );
        let first = deliver(&app, &delivery).await;
        app.settle().await;
        let counts = (
            app.count("reports").await,
            app.count("cases").await,
            app.count("case_events").await,
        );
        let second = deliver(&app, &delivery).await;
        app.settle().await;
        assert_eq!(first, second, "{provider:?}: a retry gets the same answer");
        let again = (
            app.count("reports").await,
            app.count("cases").await,
            app.count("case_events").await,
        );
        assert_eq!(counts, again, "{provider:?}: a retry writes nothing");
    }
}

async fn forged_or_unauthorised_deliveries_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for provider in ALL {
        let mut forged = Vec::new();
        if let Some(blocking) = provider.blocking_secret() {
            let channel = channel(&app, provider, blocking).await;
            forged.push(provider.delivery(&channel, "evt", "+77015550002", "pomogite"));
        } else {
            let channel = channel(&app, provider, provider.secret()).await;
            let good = provider.delivery(&channel, "evt", "+77015550002", "pomogite");
            // The text changed after signing.
            let mut tampered = provider.delivery(&channel, "evt", "+77015550002", "pomogite");
            match provider {
                Sms::Vonage => tampered.query = tampered.query.replace("pomogite", "pomogitE"),
                _ => {
                    let at = tampered.body.iter().position(|b| *b == b'p').unwrap();
                    tampered.body[at] = b'P';
                }
            }
            // SMSSync authenticates with a shared secret, not a signature over the text.
            if provider != Sms::Smssync {
                forged.push(tampered);
            }
            // The signature (or secret) left out.
            let mut missing = provider.delivery(&channel, "evt", "+77015550002", "pomogite");
            match provider {
                Sms::Vonage => {
                    missing.query = missing
                        .query
                        .split('&')
                        .filter(|p| !p.starts_with("sig="))
                        .collect::<Vec<_>>()
                        .join("&")
                }
                Sms::Smssync => {
                    missing.body = String::from_utf8(missing.body)
                        .unwrap()
                        .replace("secret=smssync-shared-secret", "secret=wrong")
                        .into_bytes()
                }
                _ => missing.headers.retain(|(name, _)| !name.contains("Signature")),
            }
            forged.push(missing);
            let (status, _) = deliver(&app, &good).await;
            assert_eq!(status, 200, "{provider:?}: the untampered original is accepted");
            app.settle().await;
        }
        let counts = (
            app.count("reports").await,
            app.count("contacts").await,
            app.count("cases").await,
        );
        for delivery in &forged {
            let (status, body) = deliver(&app, delivery).await;
            assert_eq!(status, 403, "{provider:?}: {body}");
            assert!(!body.contains("secret") || body.contains("signature"), "{body}");
        }
        app.settle().await;
        assert_eq!(
            counts,
            (
                app.count("reports").await,
                app.count("contacts").await,
                app.count("cases").await
            ),
            "{provider:?}"
        );
    }
}

async fn a_follow_up_sms_threads_into_the_open_case(backend: Backend) {
    let app = spawn_app(backend).await;
    let channel = channel(&app, Sms::Capcom6, Sms::Capcom6.secret()).await;
    let first = Sms::Capcom6.delivery(&channel, "evt-1", "87015550003", "mne nuzhna pomosh");
    assert_eq!(deliver(&app, &first).await.0, 200);
    app.settle().await;
    // The same person, written the international way this time, and more urgent.
    let second = Sms::Capcom6.delivery(
        &channel,
        "evt-2",
        "+7 701 555 0003",
        "oni zabrali pasport i b'yut menya pomogite srochno",
    );
    assert_eq!(deliver(&app, &second).await.0, 200);
    app.settle().await;
    assert_eq!(app.count("reports").await, 2);
    assert_eq!(app.count("contacts").await, 1, "one person, one contact");
    assert_eq!(app.count("cases").await, 1, "the follow-up joins the open case");
    assert_eq!(
        app.count("(SELECT DISTINCT case_id FROM reports WHERE case_id IS NOT NULL) AS linked")
            .await,
        1
    );
    let kinds = event_kinds(&app).await;
    assert!(kinds.contains(&"report_linked".to_owned()), "{kinds:?}");
}

async fn event_kinds(app: &TestApp) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Kind {
        #[diesel(sql_type = diesel::sql_types::Text)]
        kind: String,
    }
    app.db
        .run(|conn| {
            use diesel::RunQueryDsl as _;
            diesel::sql_query("SELECT kind FROM case_events ORDER BY id")
                .load::<Kind>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kind)
        .collect()
}

async fn an_infobip_batch_stores_every_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let channel = channel(&app, Sms::Infobip, "").await;
    let body = serde_json::to_vec(&json!({
        "results": [
            { "messageId": "ib-1", "from": "77015550011", "to": "77270000000", "text": "pomogite", "receivedAt": "2026-11-22T07:29:55.220+0000", "smsCount": 1 },
            { "messageId": "ib-2", "from": "77015550012", "to": "77270000000", "text": "help me please", "receivedAt": "2026-11-22T07:29:56.220+0000", "smsCount": 1 },
        ],
        "messageCount": 2, "pendingMessageCount": 0,
    }))
    .unwrap();
    let delivery = Delivery {
        method: reqwest::Method::POST,
        path: format!("/webhooks/infobip/{channel}/sms"),
        query: String::new(),
        headers: vec![],
        body,
        content_type: "application/json",
    };
    assert_eq!(deliver(&app, &delivery).await.0, 200);
    app.settle().await;
    assert_eq!(app.count("reports").await, 2);
    assert_eq!(app.count("cases").await, 2, "two senders, two cases");
}

async fn a_flood_from_one_sender_is_collapsed_without_crowding_out_others(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            flood_threshold: 3,
            ..AppOptions::default()
        },
    )
    .await;
    let channel = channel(&app, Sms::Capcom6, Sms::Capcom6.secret()).await;
    for i in 0..12 {
        let delivery = Sms::Capcom6.delivery(
            &channel,
            &format!("flood-{i}"),
            "+77015550020",
            &format!("spam {i}"),
        );
        assert_eq!(
            deliver(&app, &delivery).await.0,
            200,
            "every message of a flood is still stored"
        );
    }
    let other = Sms::Capcom6.delivery(&channel, "other-1", "+77015550021", "pomogite zabrali pasport");
    assert_eq!(deliver(&app, &other).await.0, 200);
    app.settle().await;
    assert_eq!(app.count("reports").await, 13, "nothing is dropped");
    assert_eq!(
        app.count("cases").await,
        2,
        "the flood is one case; the other sender has their own"
    );
    let collapsed = app.count("reports WHERE triage_status = 'collapsed'").await;
    assert!(
        collapsed >= 8,
        "messages past the threshold are collapsed, not triaged: {collapsed}"
    );
    assert!(event_kinds(&app).await.contains(&"flood_collapsed".to_owned()));
}

async fn unknown_channels_and_oversized_bodies_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let channel = channel(&app, Sms::Capcom6, Sms::Capcom6.secret()).await;
    let unknown = Sms::Capcom6.delivery(&uuid::Uuid::new_v4().to_string(), "e", "+77015550030", "x");
    assert_eq!(deliver(&app, &unknown).await.0, 404);
    let wrong_provider = Sms::Twilio.delivery(&channel, "e", "+77015550030", "x");
    assert_eq!(
        deliver(&app, &wrong_provider).await.0,
        404,
        "a channel answers only at its own provider's path"
    );
    let not_a_uuid = app
        .client
        .post(app.url("/webhooks/capcom6/not-a-channel/sms"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_uuid.status(), 404);
    let unknown_provider = app
        .client
        .post(app.url(&format!("/webhooks/nokia/{channel}/sms")))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_provider.status(), 404);
    let huge = Sms::Capcom6.delivery(&channel, "big", "+77015550030", &"a".repeat(70 * 1024));
    let (status, body) = deliver(&app, &huge).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"));
    assert_eq!(app.count("reports").await, 0);
}

async fn malformed_payloads_get_400_and_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let channel = channel(&app, Sms::Smssync, Sms::Smssync.secret()).await;
    // Authentic (right secret) but without the sender.
    let body = "message=hello&secret=smssync-shared-secret&message_id=1";
    let response = app
        .client
        .post(app.url(&format!("/webhooks/smssync/{channel}/sms")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let json: serde_json::Value = response.json().await.unwrap();
    assert!(
        json["error"]["message"].as_str().unwrap_or("").contains("from"),
        "{json}"
    );
    assert_eq!(app.count("reports").await, 0);
}

async fn a_webhook_with_the_database_unavailable_gets_503(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            sqlite_busy_timeout_ms: 200,
            db_checkout_timeout_ms: 500,
            ..AppOptions::default()
        },
    )
    .await;
    let channel = channel(&app, Sms::Twilio, Sms::Twilio.secret()).await;
    let delivery = Sms::Twilio.delivery(&channel, "down-1", "+77015550040", "pomogite");
    let outage = Outage::begin(&app).await;
    let (status, _) = deliver(&app, &delivery).await;
    assert_eq!(status, 503, "providers that retry must be told to retry");
    outage.end(&app).await;
    assert_eq!(app.count("reports").await, 0);
    let (status, _) = deliver(&app, &delivery).await;
    assert_eq!(
        status, 200,
        "the provider's retry succeeds once the database is back"
    );
    app.settle().await;
    assert_eq!(app.count("reports").await, 1);
}

async fn no_phone_number_or_message_text_is_stored_or_logged_in_clear(backend: Backend) {
    let app = spawn_app(backend).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let digits: String = unique
        .chars()
        .filter(char::is_ascii_digit)
        .chain("1234567".chars())
        .take(7)
        .collect();
    let phone = format!("+7701{digits}");
    let text = format!("canary-{unique} zabrali pasport");
    for provider in [Sms::Twilio, Sms::Capcom6, Sms::Smssync] {
        let channel = channel(&app, provider, provider.secret()).await;
        let delivery = provider.delivery(&channel, &format!("canary-{}", provider.slug()), &phone, &text);
        assert_eq!(deliver(&app, &delivery).await.0, 200);
    }
    app.settle().await;
    assert_eq!(app.count("cases").await, 3);
    let national = phone.trim_start_matches("+7");
    let needles = [unique.as_str(), phone.as_str(), &phone[1..], national];
    crate::helpers::assert_nothing_in_clear(&app, &needles, "reports");
}
