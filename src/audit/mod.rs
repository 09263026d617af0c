//! The audit log: who did what to which record, when, with what outcome — written in the same transaction
//! as the action it records, so that if the audit write fails the action fails too (and data that was read
//! is not returned).
//!
//! The `audit_log` table is append-only (database triggers refuse UPDATE and DELETE) and hash-chained: each
//! entry stores the hash of the one before it and its own hash, SHA-256 over the previous hash and the
//! entry's canonical JSON form. Changing, removing or inserting a row anywhere breaks the chain from that
//! point on, and [`verify`] (`komek audit verify`) names the first bad entry. Appends are serialised so that
//! two transactions can never take the same sequence number: SQLite's `BEGIN IMMEDIATE` ([`Db::write`])
//! already holds the database's one write lock; on PostgreSQL [`record`] takes a transaction-scoped
//! advisory lock.
//!
//! Entries carry identifiers and codes only — never a name, phone number, email address, message text,
//! token or IP address. `details` is for small structured facts (`{"role": "operator"}`, a reason code).
//!
//! [`Db::write`]: crate::db::Db::write

use chrono::{NaiveDateTime, Timelike as _, Utc};
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::db::AnyConnection;
use crate::db::schema::audit_log;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The advisory-lock key that serialises appends on PostgreSQL ("komek-audit" as a number).
const PG_AUDIT_LOCK: i64 = 0x6b6f_6d65_6b61_7564;

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// A signed-in staff member (their user id).
    User(&'a str),
    /// Someone not signed in: a failed login, a public form (no identifier is recorded).
    Anonymous,
    /// An operator at the command line (`komek ...`).
    Cli,
    /// The service itself (workers, webhooks).
    System,
}

impl Actor<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Anonymous => "anonymous",
            Actor::Cli => "cli",
            Actor::System => "system",
        }
    }

    fn id(&self) -> Option<&str> {
        match self {
            Actor::User(id) => Some(id),
            _ => None,
        }
    }
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or the data was returned).
    Success,
    /// Refused by access control (no permission, wrong tenant, need-to-know).
    Denied,
    /// Attempted and failed (a wrong password, a replayed code).
    Failure,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// One entry to append. Identifiers and codes only: no personal data, no secrets.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// The organization whose data or account is concerned (None for events without one).
    pub organization_id: Option<&'a str>,
    /// Who acted.
    pub actor: Actor<'a>,
    /// What was done, snake_case: `case_read`, `login_succeeded`, `permission_denied`, `user_created`, ...
    pub action: &'a str,
    /// The kind of record acted on: `case`, `user`, `session`, `key`, ... (`case` entries make up a case's
    /// access log).
    pub target_kind: Option<&'a str>,
    /// The record's id.
    pub target_id: Option<&'a str>,
    /// How it ended.
    pub outcome: Outcome,
    /// Small structured facts without personal data (permission name, new role, reason code, fields shown).
    pub details: Option<serde_json::Value>,
    /// The HTTP request id, to join with the application log.
    pub request_id: Option<&'a str>,
}

/// An audit failure. Callers fail their whole action with it.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit write failed: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("audit details could not be encoded: {0}")]
    Encode(String),
}

impl AuditError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuditError::Db(_) => "audit_write_failed",
            AuditError::Encode(_) => "audit_encode_failed",
        }
    }
}

/// A stored entry, as read back.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct StoredEntry {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub organization_id: Option<String>,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub details: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical form hashed into the chain: every column but `hash`, in a fixed order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at: String,
    organization_id: Option<&'a str>,
    actor_kind: &'a str,
    actor_id: Option<&'a str>,
    action: &'a str,
    target_kind: Option<&'a str>,
    target_id: Option<&'a str>,
    outcome: &'a str,
    details: Option<&'a str>,
    request_id: Option<&'a str>,
}

fn timestamp_text(at: &NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// The hash of an entry: hex SHA-256 over `prev_hash`, a newline, and the canonical JSON of the entry.
pub fn entry_hash(entry: &StoredEntry) -> String {
    let canonical = Canonical {
        seq: entry.seq,
        at: timestamp_text(&entry.at),
        organization_id: entry.organization_id.as_deref(),
        actor_kind: &entry.actor_kind,
        actor_id: entry.actor_id.as_deref(),
        action: &entry.action,
        target_kind: entry.target_kind.as_deref(),
        target_id: entry.target_id.as_deref(),
        outcome: &entry.outcome,
        details: entry.details.as_deref(),
        request_id: entry.request_id.as_deref(),
    };
    // Serialising a struct of strings and numbers cannot fail; an empty body would still chain.
    let body = serde_json::to_vec(&canonical).unwrap_or_default();
    let mut digest = Sha256::new();
    digest.update(entry.prev_hash.as_bytes());
    digest.update(b"\n");
    digest.update(&body);
    hex::encode(digest.finalize())
}

/// Now, truncated to microseconds (what both backends store exactly), so the hash survives a round trip.
fn now_micros() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    let micros = now.nanosecond() / 1_000 * 1_000;
    now.with_nanosecond(micros).unwrap_or(now)
}

/// Appends `entry` to the chain. Call it inside the transaction of the action it records (a
/// [`Db::write`](crate::db::Db::write) / `write_as` closure): if it fails, fail the action.
pub fn record(conn: &mut AnyConnection, entry: &AuditEntry<'_>) -> Result<i64, AuditError> {
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(PG_AUDIT_LOCK)
            .execute(pg)?;
    }
    let last: Option<(i64, String)> = audit_log::table
        .select((audit_log::seq, audit_log::hash))
        .order(audit_log::seq.desc())
        .first(conn)
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let details = entry
        .details
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| AuditError::Encode(e.to_string()))?;
    let mut row = StoredEntry {
        seq,
        at: now_micros(),
        organization_id: entry.organization_id.map(str::to_owned),
        actor_kind: entry.actor.kind().to_owned(),
        actor_id: entry.actor.id().map(str::to_owned),
        action: entry.action.to_owned(),
        target_kind: entry.target_kind.map(str::to_owned),
        target_id: entry.target_id.map(str::to_owned),
        outcome: entry.outcome.as_str().to_owned(),
        details,
        request_id: entry.request_id.map(str::to_owned),
        prev_hash,
        hash: String::new(),
    };
    row.hash = entry_hash(&row);
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::seq.eq(row.seq),
            audit_log::at.eq(row.at),
            audit_log::organization_id.eq(&row.organization_id),
            audit_log::actor_kind.eq(&row.actor_kind),
            audit_log::actor_id.eq(&row.actor_id),
            audit_log::action.eq(&row.action),
            audit_log::target_kind.eq(&row.target_kind),
            audit_log::target_id.eq(&row.target_id),
            audit_log::outcome.eq(&row.outcome),
            audit_log::details.eq(&row.details),
            audit_log::request_id.eq(&row.request_id),
            audit_log::prev_hash.eq(&row.prev_hash),
            audit_log::hash.eq(&row.hash),
        ))
        .execute(conn)?;
    Ok(seq)
}

/// The outcome of a chain check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every entry links and hashes correctly.
    Intact {
        /// How many entries were checked.
        entries: u64,
        /// The hash of the last entry (the chain head), to export and compare later.
        head: String,
    },
    /// The first entry that does not check out.
    Broken {
        /// Its sequence number (or the number that is missing).
        seq: i64,
        /// What is wrong, in words.
        reason: String,
    },
}

/// Checks the whole chain, oldest first, in batches.
pub fn verify(conn: &mut AnyConnection) -> Result<Verification, diesel::result::Error> {
    const BATCH: i64 = 1_000;
    let mut expected_seq = 1_i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut count = 0_u64;
    loop {
        let rows: Vec<StoredEntry> = audit_log::table
            .filter(audit_log::seq.ge(expected_seq))
            .order(audit_log::seq.asc())
            .limit(BATCH)
            .select(StoredEntry::as_select())
            .load(conn)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            if row.seq != expected_seq {
                return Ok(Verification::Broken {
                    seq: expected_seq,
                    reason: format!("entry {expected_seq} is missing (the next entry is {})", row.seq),
                });
            }
            if row.prev_hash != prev_hash {
                return Ok(Verification::Broken {
                    seq: row.seq,
                    reason: "its prev_hash does not match the hash of the entry before it".to_owned(),
                });
            }
            if entry_hash(row) != row.hash {
                return Ok(Verification::Broken {
                    seq: row.seq,
                    reason: "its contents do not match its hash (the row was changed)".to_owned(),
                });
            }
            prev_hash.clone_from(&row.hash);
            expected_seq += 1;
            count += 1;
        }
    }
    Ok(Verification::Intact {
        entries: count,
        head: prev_hash,
    })
}

/// The entries about one record (`target_kind`, `target_id`), oldest first: a case's access log.
pub fn entries_for_target(
    conn: &mut AnyConnection,
    target_kind: &str,
    target_id: &str,
    limit: i64,
) -> Result<Vec<StoredEntry>, diesel::result::Error> {
    audit_log::table
        .filter(audit_log::target_kind.eq(target_kind))
        .filter(audit_log::target_id.eq(target_id))
        .order(audit_log::seq.asc())
        .limit(limit)
        .select(StoredEntry::as_select())
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, prev: &str) -> StoredEntry {
        let mut row = StoredEntry {
            seq,
            at: NaiveDateTime::default(),
            organization_id: Some("org".into()),
            actor_kind: "user".into(),
            actor_id: Some("u1".into()),
            action: "case_read".into(),
            target_kind: Some("case".into()),
            target_id: Some("c1".into()),
            outcome: "success".into(),
            details: None,
            request_id: None,
            prev_hash: prev.into(),
            hash: String::new(),
        };
        row.hash = entry_hash(&row);
        row
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let a = entry(1, GENESIS_HASH);
        assert_eq!(a.hash.len(), 64);
        let mut changed = a.clone();
        changed.action = "case_updated".into();
        assert_ne!(entry_hash(&changed), a.hash);
        let mut relinked = a.clone();
        relinked.prev_hash = "x".into();
        assert_ne!(entry_hash(&relinked), a.hash);
        let mut moved = a.clone();
        moved.target_id = Some("c2".into());
        assert_ne!(entry_hash(&moved), a.hash);
        assert_eq!(entry_hash(&a.clone()), a.hash, "the hash is deterministic");
    }

    #[test]
    fn timestamps_hash_at_microsecond_precision() {
        let now = now_micros();
        assert_eq!(now.nanosecond() % 1_000, 0);
        assert_eq!(
            timestamp_text(&NaiveDateTime::default()),
            "1970-01-01T00:00:00.000000"
        );
    }
}
