//! The route table: every route of the service is registered here, through [`registry::Routes`], which
//! records whether each route is public on purpose or guarded by a named permission. [`inventory`] lists
//! them all; the route-inventory test checks the running app against it. Each resource module exposes
//! `register(r)` (or, for modules that mount their own routes, a `configure(cfg)` registered as a declared
//! block with [`registry::Routes::public_routes`]).

pub mod access_log;
pub mod auth;
pub mod cases;
pub mod health;
pub mod notify;
pub mod registry;
pub mod reports;
pub mod users;
pub mod webhooks;

use actix_web::http::Method;
use actix_web::web;

use crate::error::ApiError;
use registry::{RouteSpec, Routes};

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut routes = Routes::mount(cfg);
    register(&mut routes);
}

/// Registers every route with its access rule.
pub fn register(r: &mut Routes<'_>) {
    r.public_routes(
        &[(Method::GET, "/healthz"), (Method::GET, "/readyz")],
        "health probes for load balancers; they reveal nothing",
        health::configure,
    );
    r.public_routes(
        &[
            (Method::GET, "/webhooks/{provider}/{channel_id}/{action}"),
            (Method::POST, "/webhooks/{provider}/{channel_id}/{action}"),
        ],
        "provider callbacks: each is checked (signature, shared secret, or source allowlist plus the \
         unguessable channel id) before any side effect",
        webhooks::configure,
    );
    r.public_routes(
        &[(Method::GET, "/prompts/{lang}/{file}")],
        "recorded IVR prompts fetched by voice providers; only the files the prompt manifest names, no \
         personal data",
        crate::ivr::prompts::configure,
    );
    r.public_routes(
        &[
            (Method::GET, "/report"),
            (Method::POST, "/report"),
            (Method::GET, "/report/status"),
            (Method::POST, "/report/status"),
            (Method::GET, "/report/style.css"),
        ],
        "the public web form: anyone may report; CSRF token, honeypot, fill time and a per-address budget \
         guard it, and the status page shows only a case's public status for its private code",
        crate::webform::configure,
    );
    auth::register(r);
    users::register(r);
    cases::register(r);
    reports::register(r);
    access_log::register(r);
    notify::register(r);
}

/// Every route of the service with its access rule.
pub fn inventory() -> Vec<RouteSpec> {
    let mut routes = Routes::record();
    register(&mut routes);
    routes.into_specs()
}

/// The answer for any path that matches no route.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::not_found("route"))
}
