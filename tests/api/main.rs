//! Black-box tests of the whole service: one test binary, one module per area. Each test that touches the
//! database runs on SQLite and on PostgreSQL (`sqlite::NAME`, `postgres::NAME`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod audit;
mod auth;
mod backup;
mod cases;
mod cli;
mod durability;
mod health;
mod instances;
mod intake;
mod ivr;
mod metrics;
mod notify;
mod ownership;
mod platform;
mod route_inventory;
mod smtp_sink;
mod storage;
mod webform;
