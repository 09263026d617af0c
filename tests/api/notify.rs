//! Notifications end to end, with a real SMTP server on loopback (`smtp_sink`): an SMS that opens a
//! critical case emails exactly the expected staff; emails queued while SMTP is down arrive when it returns;
//! a worker killed between sending and marking sent causes at most one duplicate, with the same Message-ID;
//! two workers never send the same row; no email can carry a canary name, number or message text; missed
//! deadlines, assignments and dead letters; and outbound SMS only under a safe-contact record.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use komek::config::RawSettings;
use komek::db::schema::{cases, outbox, users};
use komek::db::{Db, DbError};
use komek::notify::email::{Mailer, MemoryMailbox};
use komek::notify::sms::{self, Blocked, SafeContact, Window};
use komek::notify::templates::{self, FORBIDDEN_WORDS};
use komek::notify::{self, CaseNotice, Worker};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::backend_tests;
use crate::helpers::{AppOptions, Backend, TestApp, open_migrated, spawn_app_with};
use crate::smtp_sink::SmtpSink;

backend_tests!(
    an_sms_that_opens_a_critical_case_emails_exactly_the_expected_staff,
    emails_queued_while_smtp_is_down_arrive_when_it_returns,
    a_worker_killed_after_sending_causes_at_most_one_duplicate_with_the_same_message_id,
    two_workers_never_send_the_same_row,
    no_email_carries_a_canary_name_number_or_message_text,
    an_unacknowledged_critical_case_is_reported_to_supervisors_once,
    failing_messages_are_dead_lettered_and_can_be_requeued,
    outbound_sms_needs_a_safe_contact_record_and_stays_within_limits,
    the_api_acknowledges_records_safe_contact_and_sends_only_agreed_sms,
    supervisors_manage_recipients_and_see_dead_letters,
    the_notify_commands_configure_recipients_and_list_dead_letters,
);

const CRITICAL_SMS: &str = "pomogite srochno menya b'yut zabrali pasport";
const CANARY_NAME: &str = "Aigerim CANARYNAME7f3a";
const CANARY_TEXT: &str = "CANARYTEXT91bc";

fn fast(smtp_url: Option<String>, more: impl Fn(&mut RawSettings) + Send + Sync + 'static) -> AppOptions {
    AppOptions::with(move |raw| {
        raw.smtp_url = smtp_url.clone();
        raw.outbox_poll_interval_ms = 50;
        raw.outbox_retry_base_secs = 1;
        raw.outbox_retry_max_secs = 2;
        raw.outbox_lease_secs = 3;
        raw.sla_check_interval_secs = 1;
        more(raw);
    })
}

fn no_worker(raw: &mut RawSettings) {
    raw.outbox_worker = false;
}

/// A staff account inserted directly (no password hashing: these tests never log in).
struct Staff<'a> {
    role: &'a str,
    on_duty: bool,
    trained: bool,
    language: &'a str,
    disabled: bool,
}

impl Default for Staff<'_> {
    fn default() -> Self {
        Staff {
            role: "caseworker",
            on_duty: false,
            trained: false,
            language: "en",
            disabled: false,
        }
    }
}

async fn add_staff(app: &TestApp, org: &str, email: &str, staff: Staff<'_>) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now().naive_utc();
    let (org, email, role, language) = (
        org.to_owned(),
        email.to_owned(),
        staff.role.to_owned(),
        staff.language.to_owned(),
    );
    let (on_duty, trained, disabled) = (staff.on_duty, staff.trained, staff.disabled);
    let user_id = id.clone();
    app.db
        .write(move |conn| {
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(&user_id),
                    users::organization_id.eq(&org),
                    users::email.eq(&email),
                    users::role.eq(&role),
                    users::child_protection_trained.eq(trained),
                    users::on_duty.eq(on_duty),
                    users::language.eq(&language),
                    users::password_hash.eq("not-a-hash"),
                    users::password_changed_at.eq(now),
                    users::must_change_password.eq(false),
                    users::security_stamp.eq("stamp"),
                    users::disabled_at.eq(disabled.then_some(now)),
                    users::created_at.eq(now),
                    users::updated_at.eq(now),
                ))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    id
}

/// A signed capcom6 delivery of one SMS; returns the HTTP status.
async fn send_sms(app: &TestApp, channel: &str, event_id: &str, from: &str, text: &str) -> u16 {
    app.send_sms(channel, event_id, from, text).await
}

/// An on-duty caseworker (`duty@ngo.test`) and a supervisor (`sup@ngo.test`): who a critical case emails.
async fn duty_caseworker_and_supervisor(app: &TestApp, org: &str) {
    add_staff(
        app,
        org,
        "duty@ngo.test",
        Staff {
            on_duty: true,
            ..Staff::default()
        },
    )
    .await;
    add_staff(
        app,
        org,
        "sup@ngo.test",
        Staff {
            role: "supervisor",
            ..Staff::default()
        },
    )
    .await;
}

async fn org_with_channel(app: &TestApp, slug: &str) -> (String, String) {
    let org = app.create_org(slug, Some("KZ")).await;
    let channel = app.sms_channel(&org).await;
    (org, channel)
}

#[derive(Debug, Clone, Queryable)]
struct OutboxView {
    id: String,
    topic: String,
    status: String,
    attempts: i32,
    recipient_user_id: Option<String>,
    last_error: Option<String>,
}

async fn outbox_rows(db: &Db, kind: &'static str) -> Vec<OutboxView> {
    db.run(move |conn| {
        outbox::table
            .filter(outbox::kind.eq(kind))
            .order(outbox::id)
            .select((
                outbox::id,
                outbox::topic,
                outbox::status,
                outbox::attempts,
                outbox::recipient_user_id,
                outbox::last_error,
            ))
            .load::<OutboxView>(conn)
            .map_err(DbError::from)
    })
    .await
    .unwrap()
}

async fn case_ids(db: &Db) -> Vec<(String, String)> {
    db.run(|conn| {
        cases::table
            .order(cases::created_at)
            .select((cases::id, cases::reference))
            .load::<(String, String)>(conn)
            .map_err(DbError::from)
    })
    .await
    .unwrap()
}

fn message_id(outbox_id: &str) -> String {
    format!("<outbox-{outbox_id}@komek.test>")
}

/// Waits until `check` holds on the outbox (panics after `timeout`).
async fn wait_outbox(
    db: &Db,
    timeout: Duration,
    what: &str,
    check: impl Fn(&[OutboxView]) -> bool,
) -> Vec<OutboxView> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let rows = outbox_rows(db, "email").await;
        if check(&rows) {
            return rows;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("outbox never reached: {what}; rows: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_sent(rows: &[OutboxView]) -> bool {
    !rows.is_empty() && rows.iter().all(|r| r.status == "sent")
}

fn assert_clean(text: &str, extra: &[&str]) {
    let lower = text.to_lowercase();
    for canary in [
        CANARY_NAME,
        "canaryname7f3a",
        CANARY_TEXT,
        "aigerim",
        "77015550001",
        "7015550001",
        "pomogite",
        "pasport",
        "srochno",
    ]
    .iter()
    .chain(extra)
    {
        assert!(
            !lower.contains(&canary.to_lowercase()),
            "`{canary}` leaked into an email:\n{text}"
        );
    }
    for word in FORBIDDEN_WORDS {
        assert!(!lower.contains(word), "`{word}` in an email:\n{text}");
    }
}

async fn an_sms_that_opens_a_critical_case_emails_exactly_the_expected_staff(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(backend, fast(Some(sink.url()), |_| {})).await;
    let (org, channel) = org_with_channel(&app, "ngo-a").await;
    let other_org = app.create_org("ngo-b", Some("KZ")).await;
    let on_duty = add_staff(
        &app,
        &org,
        "duty@ngo.test",
        Staff {
            on_duty: true,
            language: "ru",
            ..Staff::default()
        },
    )
    .await;
    add_staff(&app, &org, "off@ngo.test", Staff::default()).await;
    let supervisor = add_staff(
        &app,
        &org,
        "sup@ngo.test",
        Staff {
            role: "supervisor",
            language: "kk",
            ..Staff::default()
        },
    )
    .await;
    add_staff(
        &app,
        &org,
        "op@ngo.test",
        Staff {
            role: "operator",
            on_duty: true,
            ..Staff::default()
        },
    )
    .await;
    add_staff(
        &app,
        &org,
        "gone@ngo.test",
        Staff {
            role: "supervisor",
            disabled: true,
            ..Staff::default()
        },
    )
    .await;
    add_staff(
        &app,
        &org,
        "shelter@ngo.test",
        Staff {
            role: "shelter_staff",
            on_duty: true,
            ..Staff::default()
        },
    )
    .await;
    add_staff(
        &app,
        &other_org,
        "sup@other.test",
        Staff {
            role: "supervisor",
            ..Staff::default()
        },
    )
    .await;

    let text = format!("{CRITICAL_SMS} {CANARY_NAME} {CANARY_TEXT}");
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", &text).await,
        200
    );
    assert_eq!(
        app.count("cases WHERE risk = 'critical'").await,
        1,
        "the SMS opens a critical case"
    );
    let (_, reference) = case_ids(&app.db).await.remove(0);

    let received = sink.wait_for(2, Duration::from_secs(20)).await;
    let rows = wait_outbox(&app.db, Duration::from_secs(10), "all sent", all_sent).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let received_now = sink.received();
    assert_eq!(received_now.len(), 2, "exactly two emails: {received_now:#?}");
    assert_eq!(rows.len(), 2, "one outbox row per recipient");

    let by_recipient: BTreeMap<String, _> = received
        .iter()
        .map(|m| (m.recipients.join(","), m.clone()))
        .collect();
    assert_eq!(
        by_recipient.keys().cloned().collect::<Vec<_>>(),
        vec!["duty@ngo.test".to_owned(), "sup@ngo.test".to_owned()],
        "the on-duty caseworker and the supervisor, nobody else"
    );
    let expected_ids: BTreeSet<String> = rows.iter().map(|r| message_id(&r.id)).collect();
    let got_ids: BTreeSet<String> = received.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(
        got_ids, expected_ids,
        "Message-IDs are derived from the outbox rows"
    );
    let recipients: BTreeSet<_> = rows.iter().filter_map(|r| r.recipient_user_id.clone()).collect();
    assert_eq!(recipients, BTreeSet::from([on_duty, supervisor]));

    let ru = &by_recipient["duty@ngo.test"];
    assert!(
        ru.subject.starts_with(&format!("Дело {reference}")),
        "{}",
        ru.subject
    );
    let kk = &by_recipient["sup@ngo.test"];
    assert!(
        kk.subject.starts_with(&format!("Іс {reference}")),
        "{}",
        kk.subject
    );
    for message in &received {
        assert!(
            message
                .decoded
                .contains(&format!("https://komek.test/console/cases/{reference}"))
        );
        assert!(message.raw.contains("multipart/alternative") && message.raw.contains("text/html"));
        assert_clean(&message.raw, &[]);
        assert_clean(&message.decoded, &[]);
    }
}

async fn emails_queued_while_smtp_is_down_arrive_when_it_returns(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    sink.stop();
    let app = spawn_app_with(
        backend,
        fast(Some(sink.url()), |raw| raw.outbox_max_attempts = 100),
    )
    .await;
    let (org, channel) = org_with_channel(&app, "ngo-down").await;
    duty_caseworker_and_supervisor(&app, &org).await;
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", CRITICAL_SMS).await,
        200
    );

    let rows = wait_outbox(
        &app.db,
        Duration::from_secs(20),
        "two failed attempts each",
        |rows| rows.len() == 2 && rows.iter().all(|r| r.attempts >= 2),
    )
    .await;
    assert!(rows.iter().all(|r| r.status == "pending"), "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.last_error.as_deref() == Some("smtp_failed")),
        "{rows:?}"
    );
    assert!(sink.received().is_empty());

    sink.resume().await;
    let rows = wait_outbox(&app.db, Duration::from_secs(20), "all sent", all_sent).await;
    let received = sink.received();
    let expected: BTreeSet<String> = rows.iter().map(|r| message_id(&r.id)).collect();
    let got: BTreeSet<String> = received.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(got, expected, "every queued email arrived");
    assert_eq!(received.len(), 2, "and each once: {received:#?}");
}

/// `komek ...` against the test database.
fn komek(app: &TestApp) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_komek"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KOMEK_") {
            command.env_remove(key);
        }
    }
    command
        .env("KOMEK_DATABASE_URL", app.storage.database_url())
        .env("KOMEK_DATA_DIR", app.storage.dir.path())
        .env("KOMEK_PUBLIC_URL", "https://komek.test")
        .stdin(Stdio::null());
    command
}

/// `komek worker` as a child process against the test database.
fn spawn_worker(app: &TestApp, smtp_url: &str) -> Child {
    komek(app)
        .arg("worker")
        .env("KOMEK_SMTP_URL", smtp_url)
        .env("KOMEK_OUTBOX_LEASE_SECS", "2")
        .env("KOMEK_OUTBOX_POLL_INTERVAL_MS", "50")
        .env("KOMEK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn a_worker_killed_after_sending_causes_at_most_one_duplicate_with_the_same_message_id(
    backend: Backend,
) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(backend, fast(Some(sink.url()), no_worker)).await;
    let (org, channel) = org_with_channel(&app, "ngo-kill").await;
    duty_caseworker_and_supervisor(&app, &org).await;
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", CRITICAL_SMS).await,
        200
    );
    assert_eq!(outbox_rows(&app.db, "email").await.len(), 2);

    // The sink takes the first message's data and never answers: the worker is killed while it waits,
    // after the message left it and before it could mark the row sent.
    sink.hold(true);
    let mut first = spawn_worker(&app, &sink.url());
    let held = sink.wait_for(1, Duration::from_secs(30)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(
        app.count("outbox WHERE status = 'sent'").await,
        0,
        "killed before marking sent"
    );

    sink.hold(false);
    let mut second = spawn_worker(&app, &sink.url());
    let rows = wait_outbox(
        &app.db,
        Duration::from_secs(30),
        "all sent after the lease expired",
        all_sent,
    )
    .await;
    // A graceful stop: SIGTERM, and the worker exits cleanly.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(second.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = second.wait().unwrap();
    assert!(exit.success(), "the worker stops cleanly on SIGTERM: {exit:?}");

    let received = sink.received();
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for m in &received {
        *per_id.entry(m.message_id.clone()).or_default() += 1;
    }
    let expected: BTreeSet<String> = rows.iter().map(|r| message_id(&r.id)).collect();
    assert_eq!(
        per_id.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "none lost"
    );
    assert_eq!(received.len(), 3, "exactly one duplicate: {per_id:?}");
    assert_eq!(
        per_id[&held[0].message_id], 2,
        "the duplicate is the interrupted message, same Message-ID"
    );
    let retried = rows
        .iter()
        .find(|r| message_id(&r.id) == held[0].message_id)
        .unwrap();
    assert_eq!(retried.attempts, 2, "both attempts are counted");
}

async fn two_workers_never_send_the_same_row(backend: Backend) {
    const ROWS: usize = 60;
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(backend, fast(Some(sink.url()), no_worker)).await;
    let org = app.create_org("ngo-two", Some("KZ")).await;
    let supervisor = add_staff(
        &app,
        &org,
        "sup@ngo.test",
        Staff {
            role: "supervisor",
            ..Staff::default()
        },
    )
    .await;
    app.db
        .write(move |conn| {
            for n in 0..ROWS {
                let reference = komek::domain::CaseRef::generate();
                let message = komek::outbox::NewMessage {
                    dedupe_key: Some(format!("load:{n}")),
                    recipient_user_id: Some(&supervisor),
                    ..komek::outbox::NewMessage::new(
                        &org,
                        komek::outbox::Channel::Email,
                        "case_critical",
                        json!({ "reference": reference.as_str(), "urgency": "critical" }),
                    )
                };
                komek::outbox::enqueue(conn, &message)?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let one = Worker::from_settings(&app.settings, app.db.clone(), crypto.clone()).unwrap();
    // The second worker has its own connection pool, as a second instance would.
    let other_db = open_migrated(&app.settings);
    let two = Worker::from_settings(&app.settings, other_db, crypto).unwrap();
    let (stop_one, one) = notify::worker::spawn(one);
    let (stop_two, two) = notify::worker::spawn(two);
    let rows = wait_outbox(&app.db, Duration::from_secs(60), "all sent", |rows| {
        rows.len() == ROWS && all_sent(rows)
    })
    .await;
    let _ = stop_one.send(true);
    let _ = stop_two.send(true);
    let _ = one.await;
    let _ = two.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = sink.received();
    let ids: BTreeSet<String> = received.iter().map(|m| m.message_id.clone()).collect();
    assert_eq!(received.len(), ROWS, "each row sent exactly once");
    assert_eq!(ids, rows.iter().map(|r| message_id(&r.id)).collect());
    assert!(rows.iter().all(|r| r.attempts == 1), "no row was claimed twice");
}

async fn no_email_carries_a_canary_name_number_or_message_text(backend: Backend) {
    let app = spawn_app_with(backend, fast(None, no_worker)).await;
    let (org, channel) = org_with_channel(&app, "ngo-canary").await;
    let mut staff = Vec::new();
    for language in templates::LANGUAGES {
        let id = add_staff(
            &app,
            &org,
            &format!("{language}@ngo.test"),
            Staff {
                role: "supervisor",
                on_duty: true,
                trained: true,
                language,
                ..Staff::default()
            },
        )
        .await;
        staff.push((id, language));
    }
    // A critical child case whose report holds every canary.
    let text = format!("{CRITICAL_SMS} mne 15 let {CANARY_NAME} {CANARY_TEXT} Almaty ulitsa Abaya 10");
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", &text).await,
        200
    );
    let (case_id, reference) = case_ids(&app.db).await.remove(0);
    assert_eq!(
        app.count("cases WHERE child_victim").await,
        1,
        "triage saw a child case"
    );
    // Every other kind of email too: assignment to each, and the missed deadline.
    let assigned = staff.clone();
    let case = case_id.clone();
    app.db
        .write(move |conn| {
            for (user, _) in &assigned {
                notify::notify_case(conn, &case, CaseNotice::Assigned, Some(user))?;
            }
            diesel::update(cases::table.find(&case))
                .set(cases::sla_due_at.eq(Utc::now().naive_utc() - chrono::Duration::minutes(1)))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    assert_eq!(notify::sla::run_once(&app.db).await.unwrap(), 1);

    let mailbox = MemoryMailbox::default();
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let worker = Worker::with_mailer(
        &app.settings,
        app.db.clone(),
        crypto,
        Mailer::Memory(mailbox.clone()),
    )
    .unwrap();
    let handled = worker.drain().await.unwrap();
    let messages = mailbox.messages();
    assert_eq!(
        handled,
        6 * 4,
        "critical, child, assigned and deadline emails for each of six staff"
    );
    assert_eq!(messages.len(), 6 * 4);
    let language_of: BTreeMap<String, &str> =
        staff.iter().map(|(_, l)| (format!("{l}@ngo.test"), *l)).collect();
    let mut subjects = BTreeSet::new();
    for m in &messages {
        assert_clean(
            &format!("{}\n{}\n{}", m.subject, m.text, m.html),
            &["almaty", "abaya", "15"],
        );
        let language = language_of[&m.to];
        // The subject is one of the fixed strings for that language: reference, event and urgency only.
        let reference = komek::domain::CaseRef::parse(&reference).unwrap();
        let fixed: Vec<String> = templates::Event::ALL
            .iter()
            .flat_map(|e| templates::Urgency::ALL.map(|u| (*e, u)))
            .map(|(e, u)| {
                templates::render(language, e, u, &reference, &app.settings.public_url)
                    .unwrap()
                    .subject
            })
            .collect();
        assert!(fixed.contains(&m.subject), "unexpected subject {}", m.subject);
        subjects.insert(m.subject.clone());
    }
    assert_eq!(
        subjects.len(),
        6 * 4,
        "each language and event has its own fixed subject"
    );
}

async fn an_unacknowledged_critical_case_is_reported_to_supervisors_once(backend: Backend) {
    let app = spawn_app_with(backend, fast(None, no_worker)).await;
    let (org, channel) = org_with_channel(&app, "ngo-sla").await;
    let supervisor = add_staff(
        &app,
        &org,
        "sup@ngo.test",
        Staff {
            role: "supervisor",
            ..Staff::default()
        },
    )
    .await;
    let caseworker = add_staff(
        &app,
        &org,
        "cw@ngo.test",
        Staff {
            on_duty: true,
            ..Staff::default()
        },
    )
    .await;
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", CRITICAL_SMS).await,
        200
    );
    assert_eq!(
        send_sms(&app, &channel, "evt-2", "+77015550002", CRITICAL_SMS).await,
        200
    );
    let cases = case_ids(&app.db).await;
    assert_eq!(cases.len(), 2);
    let (late, acknowledged) = (cases[0].0.clone(), cases[1].0.clone());
    assert_eq!(
        app.count("cases WHERE sla_due_at IS NOT NULL").await,
        2,
        "critical cases get a deadline"
    );
    assert_eq!(notify::sla::run_once(&app.db).await.unwrap(), 0, "not due yet");
    let (l, a) = (late.clone(), acknowledged.clone());
    let mut actor = komek::auth::Staff::for_tests(&caseworker, &org, komek::domain::Role::Caseworker, false);
    actor.on_duty = true;
    app.db
        .write(move |conn| {
            let acknowledge = |conn: &mut komek::db::AnyConnection| {
                komek::cases::taking::acknowledge(conn, &actor, &a)
                    .map(|done| done.changed)
                    .map_err(|e| DbError::Task(e.to_string()))
            };
            assert!(acknowledge(conn)?);
            assert!(!acknowledge(conn)?, "acknowledging twice changes nothing");
            diesel::update(cases::table.filter(cases::id.eq_any([&l, &a])))
                .set(cases::sla_due_at.eq(Utc::now().naive_utc() - chrono::Duration::minutes(1)))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        notify::sla::run_once(&app.db).await.unwrap(),
        1,
        "only the unacknowledged case"
    );
    assert_eq!(notify::sla::run_once(&app.db).await.unwrap(), 0, "reported once");
    assert_eq!(app.count("case_events WHERE kind = 'sla_breached'").await, 1);
    assert_eq!(app.count("case_events WHERE kind = 'acknowledged'").await, 1);
    let breach: Vec<_> = outbox_rows(&app.db, "email")
        .await
        .into_iter()
        .filter(|r| r.topic == "sla_breach")
        .collect();
    assert_eq!(breach.len(), 1);
    assert_eq!(
        breach[0].recipient_user_id.as_deref(),
        Some(supervisor.as_str()),
        "supervisors only"
    );

    // An assignment tells the assignee, and only them.
    let (case, assignee) = (late.clone(), caseworker.clone());
    let n = app
        .db
        .write(move |conn| {
            notify::notify_case(conn, &case, CaseNotice::Assigned, Some(&assignee)).map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(app.count("outbox WHERE topic = 'case_assigned'").await, 1);

    // Configured recipients are added; the watch runs inside the worker too.
    let extra = add_staff(
        &app,
        &org,
        "extra@ngo.test",
        Staff {
            role: "operator",
            ..Staff::default()
        },
    )
    .await;
    let (o, e) = (org.clone(), extra.clone());
    app.db
        .write(move |conn| {
            notify::recipients::add(conn, &o, notify::Topic::SlaBreach, &e)
                .map_err(|e| DbError::Task(e.to_string()))
        })
        .await
        .unwrap();
    let (_, another) = (
        send_sms(&app, &channel, "evt-3", "+77015550003", CRITICAL_SMS).await,
        case_ids(&app.db).await.remove(2).0,
    );
    let a = another.clone();
    app.db
        .write(move |conn| {
            diesel::update(cases::table.find(&a))
                .set(cases::sla_due_at.eq(Utc::now().naive_utc() - chrono::Duration::minutes(1)))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(notify::sla::run_once(&app.db).await.unwrap(), 1);
    let told: BTreeSet<String> = outbox_rows(&app.db, "email")
        .await
        .into_iter()
        .filter(|r| r.topic == "sla_breach")
        .filter_map(|r| r.recipient_user_id)
        .collect();
    assert_eq!(told, BTreeSet::from([supervisor, extra]));
}

async fn failing_messages_are_dead_lettered_and_can_be_requeued(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    sink.stop();
    let app = spawn_app_with(backend, fast(Some(sink.url()), |raw| raw.outbox_max_attempts = 2)).await;
    let (org, channel) = org_with_channel(&app, "ngo-dead").await;
    add_staff(
        &app,
        &org,
        "sup@ngo.test",
        Staff {
            role: "supervisor",
            ..Staff::default()
        },
    )
    .await;
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", CRITICAL_SMS).await,
        200
    );
    let rows = wait_outbox(&app.db, Duration::from_secs(20), "dead", |rows| {
        rows.len() == 1 && rows[0].status == "dead"
    })
    .await;
    assert_eq!(rows[0].attempts, 2);
    let o = org.clone();
    let dead = app
        .db
        .run(move |conn| notify::worker::dead_letters(conn, &o, 10).map_err(DbError::from))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("smtp_failed"));
    sink.resume().await;
    let o = org.clone();
    let requeued = app
        .db
        .write(move |conn| notify::worker::requeue_dead(conn, Some(&o), None).map_err(DbError::from))
        .await
        .unwrap();
    assert_eq!(requeued, 1);
    wait_outbox(&app.db, Duration::from_secs(20), "sent after requeue", all_sent).await;
    assert_eq!(sink.received().len(), 1);

    // An organization with nobody to tell: the event becomes an alert instead of vanishing.
    let (_, lonely) = org_with_channel(&app, "ngo-empty").await;
    assert_eq!(
        send_sms(&app, &lonely, "evt-2", "+77015550002", CRITICAL_SMS).await,
        200
    );
    let rows = wait_outbox(
        &app.db,
        Duration::from_secs(20),
        "an unroutable row dead-lettered",
        |rows| {
            rows.iter()
                .any(|r| r.status == "dead" && r.last_error.as_deref() == Some("no_recipient"))
        },
    )
    .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(sink.received().len(), 1, "nothing was sent for it");
}

/// A tiny HTTP server standing in for an SMS provider's API: records every request, answers 200 with an id.
#[derive(Clone, Default)]
struct MockProvider {
    requests: Arc<Mutex<Vec<(String, String)>>>,
}

impl MockProvider {
    async fn start() -> (MockProvider, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mock = MockProvider::default();
        let requests = mock.requests.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    loop {
                        let n = stream.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + length {
                                let line = text.lines().next().unwrap_or_default().to_owned();
                                let body =
                                    String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                                requests.lock().unwrap().push((line, body));
                                let reply = r#"{"id":"provider-msg-1","state":"Pending"}"#;
                                let response = format!(
                                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                                    reply.len()
                                );
                                let _ = stream.write_all(response.as_bytes()).await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        (mock, base)
    }

    fn requests(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }
}

fn all_day(wording: &str) -> SafeContact {
    let midnight = chrono::NaiveTime::from_hms_opt(0, 0, 0).unwrap();
    SafeContact {
        sms: true,
        windows: vec![Window {
            from: midnight,
            to: midnight,
        }],
        utc_offset_minutes: 300,
        wording: wording.to_owned(),
        recorded_by: "test".to_owned(),
        recorded_at: Utc::now().naive_utc(),
    }
}

async fn outbound_sms_needs_a_safe_contact_record_and_stays_within_limits(backend: Backend) {
    let (mock, base) = MockProvider::start().await;
    let app = spawn_app_with(
        backend,
        fast(None, move |raw| {
            raw.outbox_worker = false;
            raw.sms_api_base_url = Some(base.clone());
            raw.sms_per_case_per_day = 1;
        }),
    )
    .await;
    let (_, channel) = org_with_channel(&app, "ngo-sms").await;
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", CRITICAL_SMS).await,
        200
    );
    assert_eq!(
        send_sms(&app, &channel, "evt-2", "+79161234567", CRITICAL_SMS).await,
        200
    );
    let cases = case_ids(&app.db).await;
    let (kz_case, ru_case) = (cases[0].0.clone(), cases[1].0.clone());
    let crypto = komek::crypto::Crypto::new(app.keys.clone());
    let policy = notify::worker::sms_policy(&app.settings);
    let worker = Worker::with_mailer(
        &app.settings,
        app.db.clone(),
        crypto.clone(),
        Mailer::Memory(MemoryMailbox::default()),
    )
    .unwrap();

    let request = |case: &str, text: Option<&'static str>| {
        let (crypto, policy, case) = (crypto.clone(), policy.clone(), case.to_owned());
        let db = app.db.clone();
        async move {
            db.write(move |conn| {
                sms::request_send(conn, &crypto, &policy, &case, text, Utc::now().naive_utc())
                    .map(|sent| sent.map(|queued| queued.outbox_id))
                    .map_err(|e| DbError::Task(e.to_string()))
            })
            .await
            .unwrap()
        }
    };
    // No safe-contact record: refused, nothing queued, the provider hears nothing.
    assert_eq!(request(&kz_case, None).await, Err(Blocked::NoSafeContact));
    worker.drain().await.unwrap();
    assert!(mock.requests().is_empty());
    assert_eq!(app.count("outbox WHERE kind = 'sms'").await, 0);

    let record = |case: &str, safe: SafeContact| {
        let (crypto, case) = (crypto.clone(), case.to_owned());
        let db = app.db.clone();
        async move {
            db.write(move |conn| {
                sms::record_safe_contact(conn, &crypto, &case, &safe)
                    .map_err(|e| DbError::Task(e.to_string()))
            })
            .await
            .unwrap()
            .unwrap()
        }
    };
    // A long canary: nothing random (ids in the payload) can contain it by chance.
    let wording = format!("Vash zakaz gotov. Kod CANARY-{}", uuid::Uuid::new_v4().simple());
    let wording = wording.as_str();
    record(
        &kz_case,
        SafeContact {
            sms: false,
            ..all_day(wording)
        },
    )
    .await;
    assert_eq!(request(&kz_case, None).await, Err(Blocked::SmsNotAgreed));
    let mut closed = all_day(wording);
    // A one-second window twelve hours away from now.
    let local_now = (Utc::now() + chrono::Duration::minutes(300)).time();
    let away = local_now + chrono::Duration::hours(12);
    closed.windows = vec![Window {
        from: away,
        to: away + chrono::Duration::seconds(1),
    }];
    record(&kz_case, closed).await;
    assert_eq!(request(&kz_case, None).await, Err(Blocked::OutsideWindow));

    record(&kz_case, all_day(wording)).await;
    assert_eq!(
        request(&kz_case, Some("Come to the shelter at Abaya 10")).await,
        Err(Blocked::WordingNotAgreed)
    );
    let queued = request(&kz_case, None).await.unwrap();
    assert_eq!(
        request(&kz_case, None).await,
        Err(Blocked::CaseDailyCap),
        "per-case daily cap"
    );
    record(&ru_case, all_day(wording)).await;
    assert_eq!(
        request(&ru_case, None).await,
        Err(Blocked::DestinationNotAllowed),
        "+7 9.. is not +77"
    );
    assert_eq!(app.count("outbox WHERE kind = 'sms'").await, 1);

    // The queued text is sealed in the database.
    let sealed = app
        .db
        .run(move |conn| {
            outbox::table
                .find(&queued)
                .select((outbox::payload, outbox::payload_enc))
                .first::<(String, Option<Vec<u8>>)>(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert!(
        !sealed.0.contains(wording) && !sealed.0.contains("77015550001"),
        "{}",
        sealed.0
    );
    assert!(
        sealed
            .1
            .is_some_and(|b| !String::from_utf8_lossy(&b).contains(wording))
    );

    assert_eq!(worker.drain().await.unwrap(), 1);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(requests[0].0.starts_with("POST /message"), "{}", requests[0].0);
    assert!(
        requests[0].1.contains(wording) && requests[0].1.contains("+77015550001"),
        "{}",
        requests[0].1
    );
    assert_eq!(
        app.count("outbox WHERE kind = 'sms' AND status = 'sent'").await,
        1
    );
}

async fn wait_requests(mock: &MockProvider, n: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        let got = mock.requests();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the mock provider did not receive {n} requests: {:?}",
        mock.requests()
    );
}

async fn the_api_acknowledges_records_safe_contact_and_sends_only_agreed_sms(backend: Backend) {
    use komek::domain::Role;
    use reqwest::Method;
    let (mock, base) = MockProvider::start().await;
    let app = spawn_app_with(
        backend,
        fast(None, move |raw| raw.sms_api_base_url = Some(base.clone())),
    )
    .await;
    let (org, channel) = org_with_channel(&app, "ngo-api").await;
    let other = app.create_org("ngo-other", Some("KZ")).await;
    assert_eq!(
        send_sms(&app, &channel, "evt-1", "+77015550001", CRITICAL_SMS).await,
        200
    );
    let (case_id, _) = case_ids(&app.db).await.remove(0);
    let (_, operator) = app.staff(&org, Role::Operator).await;
    let (_, outsider) = app.staff(&other, Role::Operator).await;
    let (caseworker_user, caseworker) = app.staff(&org, Role::Caseworker).await;
    let sms_path = format!("/api/v1/cases/{case_id}/sms");
    let post = |path: &str, token: &str, body: serde_json::Value| {
        app.authed(Method::POST, path, token).json(&body).send()
    };

    // No safe-contact record: 409, audited, and the provider hears nothing.
    let response = post(&sms_path, &operator.access, json!({})).await.unwrap();
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_safe_contact", "{body}");
    let denied = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == "contact_sms_requested" && e.outcome == "denied")
        .count();
    assert_eq!(denied, 1, "the refusal is audited");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(mock.requests().is_empty());
    assert_eq!(app.count("outbox WHERE kind = 'sms'").await, 0);

    // Another organization's staff and an unassigned caseworker do not see the case.
    for token in [&outsider.access, &caseworker.access] {
        let response = post(&sms_path, token, json!({})).await.unwrap();
        assert_eq!(response.status(), 404);
        let response = post(&format!("/api/v1/cases/{case_id}/acknowledge"), token, json!({}))
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    // Assigning the case tells the assignee (one email row), who can then work it.
    let assign = format!("/api/v1/cases/{case_id}/assign");
    let response = post(&assign, &operator.access, json!({ "user_id": "nobody" }))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = post(
        &assign,
        &operator.access,
        json!({ "user_id": caseworker_user.id }),
    )
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        200,
        "{}",
        response.text().await.unwrap_or_default()
    );
    assert_eq!(app.count("outbox WHERE topic = 'case_assigned'").await, 1);
    assert_eq!(app.count("case_events WHERE kind = 'assigned'").await, 1);
    let response = post(&sms_path, &caseworker.access, json!({})).await.unwrap();
    assert_eq!(
        response.status(),
        409,
        "the assignee reaches the case; the SMS is still refused"
    );

    let wording = "Vash zakaz gotov. Kod 4471";
    let safe_path = format!("/api/v1/cases/{case_id}/safe-contact");
    let bad = app
        .authed(Method::PUT, &safe_path, &operator.access)
        .json(&json!({ "sms": true, "windows": [{ "from": "9am", "to": "18:00" }], "utc_offset_minutes": 300, "wording": wording }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let recorded = app
        .authed(Method::PUT, &safe_path, &operator.access)
        .json(&json!({ "sms": true, "windows": [{ "from": "00:00", "to": "00:00" }], "utc_offset_minutes": 300, "wording": wording }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        recorded.status(),
        200,
        "{}",
        recorded.text().await.unwrap_or_default()
    );

    let response = post(
        &sms_path,
        &operator.access,
        json!({ "text": "Come to Abaya 10 tonight" }),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "wording_not_agreed");

    let response = post(&sms_path, &operator.access, json!({})).await.unwrap();
    assert_eq!(response.status(), 202);
    let requests = wait_requests(&mock, 1).await;
    assert!(
        requests[0].1.contains(wording) && requests[0].1.contains("+77015550001"),
        "{requests:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mock.requests().len(), 1, "sent once");

    // Acknowledgement stops the clock, once.
    let ack = format!("/api/v1/cases/{case_id}/acknowledge");
    let first: serde_json::Value = post(&ack, &operator.access, json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["already_acknowledged"], false, "{first}");
    let again: serde_json::Value = post(&ack, &operator.access, json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["already_acknowledged"], true);
    assert_eq!(app.count("cases WHERE acknowledged_at IS NOT NULL").await, 1);
    let acknowledged = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == "case_acknowledged")
        .count();
    assert_eq!(acknowledged, 1);
}

async fn supervisors_manage_recipients_and_see_dead_letters(backend: Backend) {
    use komek::domain::Role;
    use reqwest::Method;
    let app = spawn_app_with(backend, fast(None, no_worker)).await;
    let org = app.create_org("ngo-rcp", Some("KZ")).await;
    let (_, supervisor) = app.staff(&org, Role::Supervisor).await;
    let (_, operator) = app.staff(&org, Role::Operator).await;
    let caseworker = add_staff(&app, &org, "cw@ngo.test", Staff::default()).await;
    let path = format!("/api/v1/notifications/recipients/case_critical/{caseworker}");

    let denied = app
        .authed(Method::GET, "/api/v1/notifications/recipients", &operator.access)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let added: serde_json::Value = app
        .authed(Method::PUT, &path, &supervisor.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["changed"], true, "{added}");
    let listed: serde_json::Value = app
        .authed(
            Method::GET,
            "/api/v1/notifications/recipients",
            &supervisor.access,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["configured"][0]["user_id"],
        caseworker.as_str(),
        "{listed}"
    );
    let critical = listed["effective"]["case_critical"].as_array().unwrap();
    assert!(critical.iter().any(|v| v == caseworker.as_str()), "{listed}");
    let bad_topic = app
        .authed(
            Method::PUT,
            &format!("/api/v1/notifications/recipients/everything/{caseworker}"),
            &supervisor.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad_topic.status(), 400);
    let unknown = app
        .authed(
            Method::PUT,
            "/api/v1/notifications/recipients/case_child/nobody",
            &supervisor.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let removed: serde_json::Value = app
        .authed(Method::DELETE, &path, &supervisor.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(removed["changed"], true);

    // A child case is assigned only to trained staff (or a supervisor).
    let child_case = app.insert_case(&org, true, None).await;
    let response = app
        .authed(
            Method::POST,
            &format!("/api/v1/cases/{child_case}/assign"),
            &supervisor.access,
        )
        .json(&json!({ "user_id": caseworker }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "assignee_not_trained");

    // A dead letter is an alert supervisors see, and can requeue.
    let o = org.clone();
    app.db
        .write(move |conn| {
            let message = komek::outbox::NewMessage::new(
                &o,
                komek::outbox::Channel::Email,
                "case_critical",
                json!({ "reference": "KMK-7Q2F9X", "urgency": "critical" }),
            );
            komek::outbox::enqueue(conn, &message)?;
            diesel::update(outbox::table)
                .set((
                    outbox::status.eq("dead"),
                    outbox::attempts.eq(10),
                    outbox::last_error.eq("smtp_failed"),
                ))
                .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();
    let dead: serde_json::Value = app
        .authed(Method::GET, "/api/v1/notifications/dead", &supervisor.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dead["count"], 1, "{dead}");
    assert_eq!(dead["items"][0]["last_error"], "smtp_failed");
    let requeued: serde_json::Value = app
        .authed(
            Method::POST,
            "/api/v1/notifications/dead/requeue",
            &supervisor.access,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requeued["requeued"], 1);
    assert_eq!(app.count("outbox WHERE status = 'pending'").await, 1);
}

async fn the_notify_commands_configure_recipients_and_list_dead_letters(backend: Backend) {
    let app = spawn_app_with(backend, fast(None, no_worker)).await;
    let org = app.create_org("ngo-cli", Some("KZ")).await;
    let caseworker = add_staff(&app, &org, "cw@ngo.test", Staff::default()).await;
    let run = |args: &[&str]| {
        let output = komek(&app).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "komek {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    run(&[
        "notify",
        "recipients",
        "add",
        "--org",
        "ngo-cli",
        "--topic",
        "case_child",
        "--user",
        "cw@ngo.test",
    ]);
    let listed: serde_json::Value = serde_json::from_str(&run(&[
        "notify",
        "recipients",
        "list",
        "--org",
        "ngo-cli",
        "--json",
    ]))
    .unwrap();
    assert_eq!(listed, json!([{ "topic": "case_child", "user_id": caseworker }]));
    let bad = komek(&app)
        .args([
            "notify",
            "recipients",
            "add",
            "--org",
            "ngo-cli",
            "--topic",
            "all",
            "--user",
            "cw@ngo.test",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    run(&[
        "notify",
        "recipients",
        "remove",
        "--org",
        "ngo-cli",
        "--topic",
        "case_child",
        "--user",
        &caseworker,
    ]);
    let listed: serde_json::Value = serde_json::from_str(&run(&[
        "notify",
        "recipients",
        "list",
        "--org",
        "ngo-cli",
        "--json",
    ]))
    .unwrap();
    assert_eq!(listed, json!([]));
    let dead: serde_json::Value =
        serde_json::from_str(&run(&["notify", "dead", "--org", "ngo-cli", "--json"])).unwrap();
    assert_eq!(dead, json!([]));
    // `komek worker --once` drains what is due and exits.
    run(&["worker", "--once"]);
}
