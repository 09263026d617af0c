//! Komek: anti-trafficking hotline and incident intake service.
//!
//! # Layout
//! - [`cli`]: the `komek` command line; [`startup`]: building and running the HTTP server.
//! - [`config`]: layered settings validated once; [`keys`]: the keys file; [`telemetry`]: logging.
//! - [`db`]: one connection type over SQLite and PostgreSQL, the pool, migrations, the schema.
//! - [`domain`]: types valid by construction; [`sensitive`]: a wrapper that never prints personal data.
//! - [`crypto`]: envelope encryption of personal data and the blind index.
//! - [`accounts`]: organizations and staff accounts; [`bootstrap`]: the first start.
//! - [`channels`]: provider endpoints; [`reports`]: the one store of reports (insert, seal, open);
//!   [`intake`]: storing SMS and processing reports; [`contacts`]: who
//!   reached out; [`cases`]: cases and their timeline; [`triage`]: the first read of a report;
//!   [`outbox`]: notifications written with the event that causes them; [`notify`]: who is told what,
//!   email templates and backends, the outbox worker, the deadline watch, outbound SMS to contacts;
//!   [`ivr`]: the phone menu, from the first ring to the report a call becomes.
//! - [`auth`]: sign-in, tokens, permissions, need-to-know policy, key rotation; [`audit`]: the
//!   hash-chained audit log.
//! - [`webform`]: the public web form at `/report` (pages, translations, anti-automation, its intake).
//! - [`backup`]: consistent, encrypted backups and restores ([`ops_cli`]: their commands);
//!   [`prometheus`]: metrics for Prometheus on a private listener.
//! - [`routes`]: the route table and handlers; [`middleware`]: request ids, logging, security headers;
//!   [`error`]: the HTTP error envelope.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod bootstrap;
pub mod cases;
pub mod channels;
pub mod cli;
pub mod client_address;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod intake;
pub mod ivr;
pub mod keys;
pub mod middleware;
pub mod notify;
pub mod ops_cli;
pub mod outbox;
pub mod prometheus;
pub mod reports;
pub mod routes;
pub mod sensitive;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod triage;
pub mod webform;
