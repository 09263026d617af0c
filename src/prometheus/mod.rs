//! Metrics for Prometheus. Every part of Komek records through the `metrics` facade (`counter!`,
//! `gauge!`, `histogram!`, names `komek_*`); this module installs the Prometheus recorder behind it and
//! serves the text format at `/metrics` on a separate, private listener (`metrics_bind`, off by default),
//! never on the public one.
//!
//! Labels never carry personal data or anything a caller chose: HTTP metrics are labelled with the route
//! *pattern* (`/webhooks/{provider}/{channel_id}/{action}`, never the path with a channel id in it), the
//! method and the status; webhook metrics with the provider's name, taken from Komek's own list (anything
//! else is `unknown`). Queue depths are read from the database at scrape time ([`sample`]), so every
//! instance of a multi-instance setup reports the same database-wide numbers.
//!
//! - [`http`]: per-request counters and latency, webhooks accepted and refused by provider.
//! - [`sample`]: reports waiting, outbox depth and dead letters, SLA breaches, IVR calls, pool use.
//! - [`listener`]: the `/metrics` server.

pub mod http;
pub mod listener;
pub mod sample;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: provider budgets are a few hundred milliseconds.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle).
pub fn install() -> Result<PrometheusHandle, anyhow::Error> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // Another thread may have won the race; its recorder is the one the facade uses.
    if metrics::set_global_recorder(recorder).is_ok() {
        describe();
        let _ = HANDLE.set(handle);
    }
    HANDLE
        .get()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("another metrics recorder is already installed"))
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        http::REQUESTS,
        "HTTP requests answered, by method, route pattern and status"
    );
    describe_histogram!(
        http::DURATION,
        Unit::Seconds,
        "HTTP request latency, by method, route pattern and status"
    );
    describe_counter!(
        http::WEBHOOKS,
        "Provider webhooks, by provider and outcome (accepted: 2xx/3xx; refused: anything else)"
    );
    for (name, help) in sample::DESCRIPTIONS {
        describe_gauge!(*name, *help);
    }
}
