//! Two `komek serve` processes on one PostgreSQL database, reached directly on their ports with nothing in
//! front: SMS webhooks go to both alternately (each also retried at the other, as a provider retries),
//! phone calls take each step at the other instance, and both run the outbox worker against one SMTP
//! server. Every message becomes exactly one report, every call stays one continuous call with one report,
//! and every email is sent exactly once. SQLite is a single-server database; PostgreSQL is how Komek
//! runs more than one instance, so this test runs on PostgreSQL only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};

use crate::cli::{Served, komek, run, start_serve};
use crate::helpers::{
    AppOptions, Backend, PUBLIC_URL, TestStorage, http_client, open_migrated, test_settings,
};
use crate::intake::{Sms, deliver_to};
use crate::smtp_sink::SmtpSink;

const TWILIO_SECRET: &str = "AC0123456789abcdef0123456789abcdef:twilio-two-instances";
const CRITICAL_SMS: &str = "pomogite srochno menya b'yut zabrali pasport";

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_share_one_database_without_losing_or_doubling_anything() {
        super::two_instances(super::Backend::Postgres).await
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A Twilio request signed as Twilio signs it: HMAC-SHA1 over the public URL and the sorted parameters.
async fn twilio(client: &reqwest::Client, base: &str, path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort();
    let mut signed = format!("{PUBLIC_URL}{path}");
    for (k, v) in &sorted {
        signed.push_str(k);
        signed.push_str(v);
    }
    let token = TWILIO_SECRET.split(':').nth(1).unwrap();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let response = client
        .post(format!("{base}{path}"))
        .header("X-Twilio-Signature", signature)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(params).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// The path (and query) of the URL a TwiML answer sends the next step to.
fn next_step(twiml: &str) -> String {
    let start = twiml
        .find("action=\"")
        .unwrap_or_else(|| panic!("no action in {twiml}"))
        + "action=\"".len();
    let end = start + twiml[start..].find('"').unwrap();
    twiml[start..end]
        .replace("&amp;", "&")
        .strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("action outside the public URL: {twiml}"))
        .to_owned()
}

async fn two_instances(backend: Backend) {
    let storage = TestStorage::new(backend);
    let dir = storage.dir.path().to_owned();
    let keys = dir.join("keys.toml");
    ok(&run(komek(&dir).args(["keys", "generate", "--out"]).arg(&keys)));
    let sink = SmtpSink::start().await;
    let env = |command: &mut std::process::Command, instance: &str| {
        command
            .env("KOMEK_DATABASE_URL", storage.database_url())
            .env("KOMEK_DATA_DIR", dir.join(instance))
            .env("KOMEK_KEYS_FILE", &keys)
            .env("KOMEK_PUBLIC_URL", PUBLIC_URL)
            .env("KOMEK_BIND", "127.0.0.1:0")
            .env("KOMEK_SMTP_URL", sink.url())
            .env("KOMEK_OUTBOX_POLL_INTERVAL_MS", "50");
    };
    let admin = |args: &[&str], secret: Option<&str>| {
        let mut command = komek(&dir);
        env(&mut command, "admin");
        command.args(args);
        if let Some(secret) = secret {
            command.env("KOMEK_CHANNEL_SECRET", secret);
        }
        ok(&run(&mut command))
    };
    admin(
        &[
            "org",
            "add",
            "--slug",
            "two",
            "--name",
            "Two NGO",
            "--country",
            "KZ",
        ],
        None,
    );
    admin(
        &[
            "user",
            "add",
            "--org",
            "two",
            "--email",
            "sup@two.test",
            "--role",
            "supervisor",
            "--json",
        ],
        None,
    );
    let channel_id = |json: String| {
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let sms_channel = channel_id(admin(
        &[
            "channel",
            "add",
            "--org",
            "two",
            "--provider",
            "capcom6",
            "--json",
        ],
        Some(Sms::Capcom6.secret()),
    ));
    let voice_channel = channel_id(admin(
        &[
            "channel",
            "add",
            "--org",
            "two",
            "--provider",
            "twilio",
            "--number",
            "+77012000000",
            "--json",
        ],
        Some(TWILIO_SECRET),
    ));

    let mut instances = Vec::new();
    for name in ["a", "b"] {
        let mut serve = komek(&dir);
        env(&mut serve, name);
        serve.arg("serve");
        instances.push(start_serve(serve));
    }
    let bases: Vec<String> = instances
        .iter()
        .map(|s| format!("http://127.0.0.1:{}", s.port))
        .collect();
    let client = http_client();

    // SMS: alternately to a and b, each retried at the other one; half of them critical.
    let mut sms_events = Vec::new();
    for n in 0..16usize {
        let event = format!("two-{n}");
        let text = if n % 2 == 0 {
            CRITICAL_SMS
        } else {
            "gde mozhno uznat pro rabotu"
        };
        let delivery = Sms::Capcom6.delivery(&sms_channel, &event, &format!("+7701333{n:04}"), text);
        for base in [&bases[n % 2], &bases[(n + 1) % 2]] {
            let (status, body) = deliver_to(&client, base, &delivery).await.unwrap();
            assert_eq!(status, 200, "{body}");
        }
        sms_events.push(event);
    }

    // Calls: every step at the other instance than the step before.
    let mut calls = Vec::new();
    for n in 0..6usize {
        let call_sid = format!("CA{}", uuid::Uuid::new_v4().simple());
        let from = format!("+7701444{n:04}");
        let account = TWILIO_SECRET.split(':').next().unwrap();
        let at = |step: usize| bases[(n + step) % 2].as_str();
        let voice = format!("/webhooks/twilio/{voice_channel}/voice");
        let menu = twilio(
            &client,
            at(0),
            &voice,
            &[
                ("CallSid", &call_sid),
                ("AccountSid", account),
                ("From", &from),
                ("To", "+77012000000"),
                ("Caller", &from),
                ("Called", "+77012000000"),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("ApiVersion", "2010-04-01"),
            ],
        )
        .await;
        let main = twilio(
            &client,
            at(1),
            &next_step(&menu),
            &[("CallSid", &call_sid), ("AccountSid", account), ("Digits", "1")],
        )
        .await;
        let record = twilio(
            &client,
            at(2),
            &next_step(&main),
            &[("CallSid", &call_sid), ("AccountSid", account), ("Digits", "2")],
        )
        .await;
        assert!(record.contains("<Record"), "the report path records: {record}");
        let url = format!("https://recordings.example/{call_sid}.wav");
        let thanks = twilio(
            &client,
            at(3),
            &next_step(&record),
            &[
                ("CallSid", &call_sid),
                ("AccountSid", account),
                ("RecordingUrl", &url),
                ("RecordingDuration", "17"),
                ("RecordingSid", "RE0123456789"),
                ("Digits", "#"),
            ],
        )
        .await;
        assert!(thanks.contains("thanks"), "{thanks}");
        twilio(
            &client,
            at(4),
            &format!("/webhooks/twilio/{voice_channel}/voice-status"),
            &[
                ("CallSid", &call_sid),
                ("CallStatus", "completed"),
                ("CallDuration", "42"),
            ],
        )
        .await;
        calls.push(call_sid);
    }

    // Both instances process and send; wait until nothing is pending or unsent.
    let settings = test_settings(&storage, &AppOptions::default());
    let db = open_migrated(&settings);
    let count = |sql: String| {
        let db = db.clone();
        async move {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            db.run(move |conn| {
                use diesel::RunQueryDsl as _;
                diesel::sql_query(sql)
                    .get_result::<N>(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap()
            .n
        }
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let pending = count("SELECT COUNT(*) AS n FROM reports WHERE triage_status = 'pending'".into()).await;
        let unsent =
            count("SELECT COUNT(*) AS n FROM outbox WHERE kind = 'email' AND status <> 'sent'".into()).await;
        if pending == 0 && unsent == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} reports pending, {unsent} emails unsent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for event in &sms_events {
        let n = count(format!(
            "SELECT COUNT(*) AS n FROM reports WHERE channel_id = '{sms_channel}' AND provider_event_id = '{event}'"
        ))
        .await;
        assert_eq!(n, 1, "{event}: one report though both instances acknowledged it");
    }
    for call in &calls {
        let n = count(format!(
            "SELECT COUNT(*) AS n FROM reports WHERE channel_id = '{voice_channel}' \
             AND provider_event_id = 'call:{call}' AND ivr_path = 'lang:ru>2:report'"
        ))
        .await;
        assert_eq!(
            n, 1,
            "{call}: one continuous call, one report with the whole menu path"
        );
        let rows = count(format!(
            "SELECT COUNT(*) AS n FROM calls WHERE provider_call_id = '{call}'"
        ))
        .await;
        assert_eq!(rows, 1, "{call}: one call row");
    }

    let emails = count("SELECT COUNT(*) AS n FROM outbox WHERE kind = 'email'".into()).await;
    assert!(
        emails >= 8,
        "the critical messages emailed the supervisor ({emails})"
    );
    // A duplicate would arrive shortly after the original: give it the time to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = sink.received();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for message in &received {
        *by_id.entry(message.message_id.clone()).or_default() += 1;
    }
    assert_eq!(
        received.len() as i64,
        emails,
        "every email sent, none twice: {by_id:?}"
    );
    assert!(by_id.values().all(|n| *n == 1), "{by_id:?}");

    for Served {
        mut child, reader, ..
    } in instances
    {
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
    }
}
