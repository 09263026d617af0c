//! The outbox worker: runs inside `komek serve` and alone as `komek worker`; any number of instances may run
//! against one database.
//!
//! # Claim protocol
//!
//! A row is *due* when `status = 'pending'`, `next_attempt_at <= now` and it holds no live lease
//! (`locked_until IS NULL OR locked_until < now`). A worker claims one due row in a short write transaction
//! by setting `locked_by` (its id), `locked_until` (now + lease) and `attempts = attempts + 1`:
//!
//! * PostgreSQL: `SELECT id ... ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED`, then the update —
//!   concurrent workers skip each other's candidate rows instead of waiting or double-claiming.
//! * SQLite: a conditional `UPDATE ... WHERE id = ? AND status = 'pending' AND (locked_until IS NULL OR
//!   locked_until < now) AND next_attempt_at <= now`, which counts as a claim only if it changed 1 row
//!   (writers are serialised by `BEGIN IMMEDIATE`, so the check and the update are atomic).
//!
//! It then sends *outside* any transaction and records the outcome: `sent` (whoever holds the lease — a
//! late success still stops further retries), or back to `pending` with `next_attempt_at` pushed by
//! exponential backoff with jitter, or `dead` after `outbox_max_attempts` attempts (or at once for a
//! failure that retrying cannot fix). A worker that dies mid-send leaves its lease to expire, and the row is
//! sent again: delivery is at-least-once, and a repeated email carries the same `Message-ID`
//! (`<outbox-ID@domain>`), so it is recognisably the same message.
//!
//! On shutdown the worker finishes the message in flight, records its outcome, and stops.

use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use lettre::message::Mailbox;
use rand::Rng as _;
use tokio::sync::watch;

use super::email::{Email, Mailer, MemoryMailbox, SmtpTarget};
use super::sms::{self, SmsPolicy};
use super::templates::{self, Urgency};
use super::{CaseNotice, sla};
use crate::config::Settings;
use crate::crypto::Crypto;
use crate::db::schema::{outbox, users};
use crate::db::{AnyConnection, Db, DbError};
use crate::domain::CaseRef;
use komek_gateways::{Endpoints, OutboundSms, SenderConfig, SmsSender};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Sleep between polls when nothing is due.
    pub poll_interval: StdDuration,
    /// How long a claim lasts before another worker may take the row.
    pub lease: Duration,
    /// Attempts before a row is dead-lettered.
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt (with jitter), up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often the acknowledgement-deadline watch runs.
    pub sla_interval: StdDuration,
}

impl WorkerConfig {
    /// From the settings.
    pub fn from_settings(settings: &Settings) -> WorkerConfig {
        WorkerConfig {
            poll_interval: StdDuration::from_millis(settings.outbox_poll_interval_ms),
            lease: Duration::seconds(i64::from(settings.outbox_lease_secs)),
            max_attempts: settings.outbox_max_attempts,
            retry_base: Duration::seconds(i64::from(settings.outbox_retry_base_secs)),
            retry_max: Duration::seconds(i64::from(settings.outbox_retry_max_secs)),
            sla_interval: StdDuration::from_secs(u64::from(settings.sla_check_interval_secs)),
        }
    }

    /// The delay before attempt `attempts + 1`: base·2^(attempts−1), capped, with "equal jitter" (half
    /// fixed, half random) so that many failed rows do not retry in lockstep.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
        let base_ms = self.retry_base.num_milliseconds().max(1);
        let max_ms = self.retry_max.num_milliseconds().max(base_ms);
        let delay = base_ms.saturating_mul(1_i64 << exp).min(max_ms);
        let half = delay / 2;
        Duration::milliseconds(half + rand::thread_rng().gen_range(0..=half.max(0)))
    }
}

/// An outbox row as the worker reads it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
struct Row {
    id: String,
    kind: String,
    topic: String,
    payload: String,
    attempts: i32,
    recipient_user_id: Option<String>,
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Failed; will be retried.
    Retry(&'static str),
    /// Failed for good (dead letter).
    Dead(&'static str),
    /// Nothing to send any more (e.g. the recipient's account was disabled): marked sent, noted.
    Skipped(&'static str),
}

/// Failure of one attempt: a code, and whether retrying can help.
struct Failure {
    code: &'static str,
    retry: bool,
}

impl Failure {
    fn retry(code: &'static str) -> Self {
        Failure { code, retry: true }
    }
    fn permanent(code: &'static str) -> Self {
        Failure { code, retry: false }
    }
}

/// The outbox worker.
#[derive(Clone)]
pub struct Worker {
    id: String,
    db: Db,
    crypto: Crypto,
    mailer: Mailer,
    sms: Option<SmsSender>,
    policy: SmsPolicy,
    from: Mailbox,
    message_domain: String,
    public_url: url::Url,
    config: WorkerConfig,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Worker setup failed (bad settings).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the outbox worker: {0}")]
pub struct WorkerSetupError(String);

/// The mailer the settings ask for: SMTP when `smtp_url` is set, else the mail folder.
pub fn mailer_from_settings(settings: &Settings) -> Result<Mailer, WorkerSetupError> {
    match &settings.smtp_url {
        Some(url) => {
            let target = SmtpTarget::parse(url.expose()).map_err(WorkerSetupError)?;
            Mailer::smtp(&target, &message_domain(settings)).map_err(|e| WorkerSetupError(e.to_string()))
        }
        None => Ok(Mailer::Maildir(settings.mail_dir.clone())),
    }
}

fn message_domain(settings: &Settings) -> String {
    settings
        .public_url
        .host_str()
        .filter(|h| !h.is_empty())
        .unwrap_or("komek.local")
        .to_owned()
}

impl Worker {
    /// A worker with the mailer and SMS sender the settings ask for.
    pub fn from_settings(settings: &Settings, db: Db, crypto: Crypto) -> Result<Worker, WorkerSetupError> {
        let mailer = mailer_from_settings(settings)?;
        Worker::with_mailer(settings, db, crypto, mailer)
    }

    /// A worker sending email through `mailer` (tests pass [`Mailer::Memory`]).
    pub fn with_mailer(
        settings: &Settings,
        db: Db,
        crypto: Crypto,
        mailer: Mailer,
    ) -> Result<Worker, WorkerSetupError> {
        let from: Mailbox = settings.email_from.parse().map_err(|_| {
            WorkerSetupError("email_from is not an address like `Komek <komek@example.org>`".into())
        })?;
        let endpoints = settings
            .sms_api_base_url
            .as_deref()
            .map(Endpoints::all_at)
            .unwrap_or_default();
        let sms = match SmsSender::new(SenderConfig {
            endpoints,
            ..SenderConfig::default()
        }) {
            Ok(sender) => Some(sender),
            Err(err) => {
                tracing::error!(
                    error.code = err.code(),
                    "the SMS sender could not be built; SMS rows will wait"
                );
                None
            }
        };
        Ok(Worker {
            id: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            db,
            crypto,
            mailer,
            sms,
            policy: sms_policy(settings),
            from,
            message_domain: message_domain(settings),
            public_url: settings.public_url.clone(),
            config: WorkerConfig::from_settings(settings),
        })
    }

    /// This worker's id (as written to `outbox.locked_by`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The in-memory mailbox, when this worker sends to memory.
    pub fn memory_mailbox(&self) -> Option<MemoryMailbox> {
        match &self.mailer {
            Mailer::Memory(m) => Some(m.clone()),
            _ => None,
        }
    }

    /// The Message-ID of an outbox row's email.
    pub fn message_id(&self, outbox_id: &str) -> String {
        message_id(outbox_id, &self.message_domain)
    }

    /// Runs until `stop` turns true (or its sender is dropped), finishing the message in flight.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(worker = %self.id, "outbox worker started");
        let mut next_sla = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                break;
            }
            if tokio::time::Instant::now() >= next_sla {
                if let Err(err) = sla::run_once(&self.db).await {
                    tracing::warn!(error.code = err.code(), "deadline watch failed; will retry");
                }
                next_sla = tokio::time::Instant::now() + self.config.sla_interval;
            }
            let pause = match self.run_one().await {
                Ok(Some(_)) => continue,
                Ok(None) => self.config.poll_interval,
                Err(err) => {
                    tracing::warn!(
                        error.code = err.code(),
                        "outbox worker could not reach the database"
                    );
                    // Back off while the database is away instead of logging at the poll rate.
                    self.config.poll_interval.max(StdDuration::from_secs(5))
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        tracing::info!(worker = %self.id, "outbox worker stopped");
    }

    /// Claims and handles one due row. `Ok(None)` when nothing is due.
    pub async fn run_one(&self) -> Result<Option<(String, Outcome)>, DbError> {
        let worker_id = self.id.clone();
        let lease = self.config.lease;
        let claimed = self
            .db
            .write(move |conn| claim(conn, &worker_id, lease).map_err(DbError::from))
            .await?;
        let Some(row) = claimed else {
            return Ok(None);
        };
        let result = match row.kind.as_str() {
            "email" => self.send_email(&row).await,
            "sms" => self.send_sms(&row).await,
            _ => Err(Failure::permanent("unknown_kind")),
        };
        let outcome = self.record(&row, result).await?;
        match &outcome {
            Outcome::Sent => {
                tracing::info!(outbox.id = %row.id, topic = %row.topic, attempt = row.attempts, "notification sent")
            }
            Outcome::Retry(code) => {
                tracing::warn!(outbox.id = %row.id, topic = %row.topic, attempt = row.attempts, error.code = code, "notification failed; will retry")
            }
            Outcome::Dead(code) => {
                tracing::error!(outbox.id = %row.id, topic = %row.topic, attempt = row.attempts, error.code = code, "notification dead-lettered; supervisors see it under notifications/dead")
            }
            Outcome::Skipped(code) => {
                tracing::info!(outbox.id = %row.id, topic = %row.topic, reason = code, "notification skipped")
            }
        }
        Ok(Some((row.id, outcome)))
    }

    /// Runs until nothing is due (tests and `komek worker --once`).
    pub async fn drain(&self) -> Result<usize, DbError> {
        let mut n = 0;
        while self.run_one().await?.is_some() {
            n += 1;
        }
        Ok(n)
    }

    async fn send_email(&self, row: &Row) -> Result<Option<&'static str>, Failure> {
        let notice = CaseNotice::from_topic(&row.topic).ok_or(Failure::permanent("unknown_topic"))?;
        let payload: serde_json::Value =
            serde_json::from_str(&row.payload).map_err(|_| Failure::permanent("bad_payload"))?;
        let reference = payload
            .get("reference")
            .and_then(|v| v.as_str())
            .and_then(|r| CaseRef::parse(r).ok())
            .ok_or(Failure::permanent("bad_payload"))?;
        let urgency = Urgency::from_risk(payload.get("urgency").and_then(|v| v.as_str()).unwrap_or("high"));
        let Some(user_id) = row.recipient_user_id.clone() else {
            return Err(Failure::permanent("no_recipient"));
        };
        let recipient = self
            .db
            .run(move |conn| {
                users::table
                    .find(&user_id)
                    .select((users::email, users::language, users::disabled_at.is_null()))
                    .first::<(String, String, bool)>(conn)
                    .optional()
                    .map_err(DbError::from)
            })
            .await
            .map_err(|_| Failure::retry("database_unavailable"))?;
        let Some((address, language, active)) = recipient else {
            return Ok(Some("recipient_deleted"));
        };
        if !active {
            return Ok(Some("recipient_disabled"));
        }
        let rendered = templates::render(&language, notice.event(), urgency, &reference, &self.public_url)
            .map_err(|e| Failure::permanent(e.code()))?;
        let email = Email {
            to: address,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            message_id: self.message_id(&row.id),
        };
        self.mailer.send(&self.from, &email).await.map_err(|e| match e {
            super::email::MailError::Build(_) => Failure::permanent("email_build_failed"),
            other => Failure::retry(other.code()),
        })?;
        Ok(None)
    }

    async fn send_sms(&self, row: &Row) -> Result<Option<&'static str>, Failure> {
        let Some(sender) = &self.sms else {
            return Err(Failure::retry("sms_sender_unavailable"));
        };
        let crypto = self.crypto.clone();
        let policy = self.policy.clone();
        let id = row.id.clone();
        let prepared = self
            .db
            .run(move |conn| {
                Ok::<_, DbError>(sms::prepare(conn, &crypto, &policy, &id, Utc::now().naive_utc()))
            })
            .await
            .map_err(|_| Failure::retry("database_unavailable"))?
            .map_err(|_| Failure::permanent("sms_unreadable"))?;
        let prepared = match prepared {
            Ok(p) => p,
            Err(blocked) => return Err(Failure::permanent(blocked.code())),
        };
        let provider = prepared
            .channel
            .provider()
            .ok_or(Failure::permanent("unknown_provider"))?;
        let credentials = prepared
            .channel
            .credentials(&self.crypto)
            .map_err(|_| Failure::permanent("channel_credentials_unreadable"))?;
        let message = OutboundSms {
            from: prepared.channel.number.clone(),
            to: komek_gateways::Sensitive::new(prepared.to.expose().clone()),
            text: komek_gateways::Sensitive::new(prepared.text.expose().clone()),
            status_callback_url: None,
        };
        sender
            .send(provider, &credentials, &message)
            .await
            .map_err(|e| Failure {
                code: e.code(),
                retry: e.is_retryable(),
            })?;
        Ok(None)
    }

    async fn record(
        &self,
        row: &Row,
        result: Result<Option<&'static str>, Failure>,
    ) -> Result<Outcome, DbError> {
        let now = Utc::now().naive_utc();
        let id = row.id.clone();
        let (outcome, status, next, error) = match result {
            Ok(None) => (Outcome::Sent, "sent", None, None),
            Ok(Some(reason)) => (
                Outcome::Skipped(reason),
                "sent",
                None,
                Some(format!("skipped: {reason}")),
            ),
            Err(f) if f.retry && row.attempts < self.config.max_attempts => (
                Outcome::Retry(f.code),
                "pending",
                Some(now + self.config.backoff(row.attempts)),
                Some(f.code.to_owned()),
            ),
            Err(f) => (Outcome::Dead(f.code), "dead", None, Some(f.code.to_owned())),
        };
        let sent_at = (status == "sent").then_some(now);
        self.db
            .write(move |conn| {
                let target = outbox::table
                    .filter(outbox::id.eq(&id))
                    .filter(outbox::status.eq("pending"));
                match next {
                    Some(next) => diesel::update(target)
                        .set((
                            outbox::next_attempt_at.eq(next),
                            outbox::locked_by.eq(None::<String>),
                            outbox::locked_until.eq(None::<NaiveDateTime>),
                            outbox::last_error.eq(error),
                        ))
                        .execute(conn),
                    None => diesel::update(target)
                        .set((
                            outbox::status.eq(status),
                            outbox::sent_at.eq(sent_at),
                            outbox::locked_by.eq(None::<String>),
                            outbox::locked_until.eq(None::<NaiveDateTime>),
                            outbox::last_error.eq(error),
                        ))
                        .execute(conn),
                }
                .map_err(DbError::from)
            })
            .await?;
        Ok(outcome)
    }
}

/// `<outbox-ID@domain>`.
pub fn message_id(outbox_id: &str, domain: &str) -> String {
    format!("<outbox-{outbox_id}@{domain}>")
}

/// The SMS limits from the settings.
pub fn sms_policy(settings: &Settings) -> SmsPolicy {
    SmsPolicy {
        allowed_prefixes: settings.sms_allowed_prefixes.clone(),
        blocked_prefixes: settings.sms_blocked_prefixes.clone(),
        per_case_per_day: i64::from(settings.sms_per_case_per_day),
        per_case_total: i64::from(settings.sms_per_case_total),
        global_per_day: i64::from(settings.sms_global_per_day),
    }
}

/// Claims one due row for `worker_id` (see the module docs). Run inside a write transaction.
fn claim(conn: &mut AnyConnection, worker_id: &str, lease: Duration) -> QueryResult<Option<Row>> {
    let now = Utc::now().naive_utc();
    let until = now + lease;
    let due = outbox::status
        .eq("pending")
        .and(outbox::next_attempt_at.le(now))
        .and(outbox::locked_until.is_null().or(outbox::locked_until.lt(now)));
    let claimed: Option<String> = match conn {
        AnyConnection::Postgresql(pg) => {
            let candidate: Option<String> = outbox::table
                .filter(due)
                .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
                .select(outbox::id)
                .limit(1)
                .for_update()
                .skip_locked()
                .first(pg)
                .optional()?;
            if let Some(id) = &candidate {
                diesel::update(outbox::table.find(id))
                    .set((
                        outbox::locked_by.eq(worker_id),
                        outbox::locked_until.eq(until),
                        outbox::attempts.eq(outbox::attempts + 1),
                    ))
                    .execute(pg)?;
            }
            candidate
        }
        AnyConnection::Sqlite(_) => {
            let candidates: Vec<String> = outbox::table
                .filter(due)
                .order((outbox::next_attempt_at.asc(), outbox::id.asc()))
                .select(outbox::id)
                .limit(8)
                .load(conn)?;
            let mut won = None;
            for id in candidates {
                let n = diesel::update(outbox::table.filter(outbox::id.eq(&id)).filter(due))
                    .set((
                        outbox::locked_by.eq(worker_id),
                        outbox::locked_until.eq(until),
                        outbox::attempts.eq(outbox::attempts + 1),
                    ))
                    .execute(conn)?;
                if n == 1 {
                    won = Some(id);
                    break;
                }
            }
            won
        }
    };
    match claimed {
        Some(id) => outbox::table
            .find(&id)
            .select(Row::as_select())
            .first(conn)
            .optional(),
        None => Ok(None),
    }
}

/// A dead-lettered row, as shown to supervisors (ids and codes only).
#[derive(Debug, Clone, serde::Serialize, Queryable)]
pub struct DeadLetter {
    pub id: String,
    pub kind: String,
    pub topic: String,
    pub case_id: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

/// The dead letters of an organization, newest first.
pub fn dead_letters(
    conn: &mut AnyConnection,
    organization_id: &str,
    limit: i64,
) -> QueryResult<Vec<DeadLetter>> {
    outbox::table
        .filter(outbox::organization_id.eq(organization_id))
        .filter(outbox::status.eq("dead"))
        .order(outbox::created_at.desc())
        .select((
            outbox::id,
            outbox::kind,
            outbox::topic,
            outbox::case_id,
            outbox::attempts,
            outbox::last_error,
            outbox::created_at,
        ))
        .limit(limit)
        .load(conn)
}

/// Puts dead letters of an organization (or one of them) back in the queue with a fresh attempt budget.
pub fn requeue_dead(
    conn: &mut AnyConnection,
    organization_id: Option<&str>,
    id: Option<&str>,
) -> QueryResult<usize> {
    let now = Utc::now().naive_utc();
    let mut target = outbox::table.filter(outbox::status.eq("dead")).into_boxed();
    if let Some(org) = organization_id {
        target = target.filter(outbox::organization_id.eq(org.to_owned()));
    }
    if let Some(id) = id {
        target = target.filter(outbox::id.eq(id.to_owned()));
    }
    let ids: Vec<String> = target.select(outbox::id).load(conn)?;
    diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
        .set((
            outbox::status.eq("pending"),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::locked_by.eq(None::<String>),
            outbox::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

/// Starts the worker as a task; returns its stop switch and handle.
pub fn spawn(worker: Worker) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(worker.run(rx));
    (tx, handle)
}
