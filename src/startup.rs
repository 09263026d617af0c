//! Building and running the HTTP server. `Application::build` takes an already bound listener (port 0 in
//! tests) so the caller knows the port before the server runs; `run` serves until SIGTERM/SIGINT (or a
//! stop through the handle), letting in-flight requests finish within the shutdown timeout.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::crypto::Crypto;
use crate::db::Db;
use crate::error::extractor_error;
use crate::keys::Keyset;
use crate::middleware::{security_headers, trace_requests};
use crate::routes;
use crate::state::AppState;

/// Largest JSON body any API route accepts unless it sets its own limit.
pub const DEFAULT_JSON_LIMIT: usize = 64 * 1024;

/// A built server, bound and ready to run.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Builds the server on `listener` with an open database and loaded keys.
    pub fn build(
        settings: Arc<Settings>,
        db: Db,
        keys: Arc<Keyset>,
        listener: TcpListener,
    ) -> Result<Application, anyhow::Error> {
        let port = listener.local_addr()?.port();
        let state = AppState {
            db,
            crypto: Crypto::new(keys.clone()),
            settings: settings.clone(),
        };
        let data = web::Data::new(state.clone());
        let auth = web::Data::from(crate::auth::AuthContext::new(&settings, keys.clone()));
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
        Ok(Application { port, server, state })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (the test harness and the workers use it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A handle that can stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}
