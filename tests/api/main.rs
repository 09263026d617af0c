//! Black-box tests of the whole service: one test binary, one module per area. Each test that touches the
//! database runs on SQLite and on PostgreSQL (`sqlite::NAME`, `postgres::NAME`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod cli;
mod health;
mod intake;
mod notify;
mod smtp_sink;
mod storage;
