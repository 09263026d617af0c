//! Building and running the HTTP server. `Application::build` takes an already bound listener (port 0 in
//! tests) so the caller knows the port before the server runs; `run` serves until SIGTERM/SIGINT (or a
//! stop through the handle), letting in-flight requests finish within the shutdown timeout.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::error::extractor_error;
use crate::intake::sweeper;
use crate::middleware::{security_headers, trace_requests};
use crate::notify::worker::{self, Worker};
use crate::routes;
use crate::state::AppState;

/// How often the intake sweeper looks for reports left pending.
const SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Largest JSON body any API route accepts unless it sets its own limit.
pub const DEFAULT_JSON_LIMIT: usize = 64 * 1024;

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    /// The outbox worker, when this instance runs one (`outbox_worker`).
    worker: Option<Worker>,
    /// The private `/metrics` server and its port, when `metrics_bind` is set.
    metrics: Option<(Server, u16)>,
}

impl Application {
    /// Builds the server on `listener` with the assembled state.
    pub fn build(state: AppState, listener: TcpListener) -> Result<Application, anyhow::Error> {
        let port = listener.local_addr()?.port();
        let settings = state.settings.clone();
        let data = web::Data::new(state.clone());
        let auth = web::Data::from(crate::auth::AuthContext::new(&settings, state.keys.clone()));
        let registered = web::Data::new(routes::registry::Registered::new(&routes::inventory()));
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(auth.clone())
                .app_data(registered.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(DEFAULT_JSON_LIMIT)
                        .error_handler(|err, _| extractor_error(err.into())),
                )
                .app_data(web::PathConfig::default().error_handler(|err, _| extractor_error(err.into())))
                .app_data(web::QueryConfig::default().error_handler(|err, _| extractor_error(err.into())))
                .app_data(web::FormConfig::default().error_handler(|err, _| extractor_error(err.into())))
                .configure(routes::configure)
                .default_service(web::to(routes::not_found))
                .wrap(from_fn(routes::registry::enforce_registry))
                .wrap(from_fn(security_headers))
                .wrap(from_fn(trace_requests))
        })
        .shutdown_timeout(settings.shutdown_timeout.as_secs());
        if settings.http_workers > 0 {
            server = server.workers(settings.http_workers);
        }
        let server = server.listen(listener)?.run();
        // Built here so that a bad mail setting stops the start instead of failing every send later.
        let worker = if settings.outbox_worker {
            Some(Worker::from_settings(
                &settings,
                state.db.clone(),
                state.crypto.clone(),
            )?)
        } else {
            None
        };
        let metrics = match settings.metrics_bind {
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {address}: {e}"))?;
                let metrics_port = listener.local_addr()?.port();
                let handle = crate::prometheus::install()?;
                let server = crate::prometheus::listener::build(listener, handle, state.db.clone())?;
                Some((server, metrics_port))
            }
            None => None,
        };
        Ok(Application {
            port,
            server,
            state,
            worker,
            metrics,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the private `/metrics` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// The shared state (the test harness and the workers use it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that can stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, with the background workers (the intake sweeper, the stale-call watch, the
    /// outbox worker) running beside the server. On shutdown the server drains its requests first; then the
    /// outbox worker finishes the message in flight (within the shutdown timeout) and stops.
    pub async fn run(self) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweeper::run(
            self.state.db.clone(),
            self.state.process_context(),
            SWEEP_INTERVAL,
        ));
        let stale_calls = tokio::spawn(crate::ivr::watch_stale_calls(self.state.clone()));
        let outbox = self.worker.map(worker::spawn);
        let metrics = self.metrics.map(|(server, _)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        sweeper.abort();
        stale_calls.abort();
        if let Some((stop, handle)) = outbox {
            let _ = stop.send(true);
            if tokio::time::timeout(self.state.settings.shutdown_timeout, handle)
                .await
                .is_err()
            {
                tracing::warn!("the outbox worker did not stop in time; its message will be retried");
            }
        }
        result
    }
}
