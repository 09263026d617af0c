//! The public web form (`/report`, DESIGN §6 "Web form"): a person at risk tells the hotline what happened,
//! without an account and without JavaScript, in Russian, Kazakh, Kyrgyz, Tajik, Uzbek or English, and gets
//! a case reference and a private follow-up code; `/report/status` shows that case's public status for the
//! code (received, being handled, closed) and nothing else.
//!
//! Cut, one job per module:
//!
//! * [`i18n`]: the six languages, choosing one (`?lang=`, then `Accept-Language`, then Russian), and the
//!   translation files (`i18n/*.toml`, one per language, every key in every language).
//! * [`pages`]: the embedded templates (minijinja, HTML auto-escaping) and the response headers every page
//!   carries (a strict CSP, `no-store`, `no-referrer`).
//! * [`guard`]: anti-automation without third parties: a signed token bound to a cookie (CSRF) that also
//!   carries the render time (minimum fill time), the honeypot, and the per-address budgets, kept in memory
//!   under a keyed hash of the address (the address is never stored or logged).
//! * [`intake`]: storing a submission (report `web`, encrypted) and turning it into a case in the same
//!   write transaction, the safe-contact answers, consents, and the follow-up code lookup.
//! * [`replay`]: the same form sent twice (a reload, a retry on a bad connection) shows the same receipt
//!   instead of opening a second case.
//! * [`handlers`]: the routes and the order of checks.
//!
//! What people write is never logged; log lines name the check that refused a request, never its content.

pub mod guard;
pub mod handlers;
pub mod i18n;
pub mod intake;
pub mod pages;
pub mod replay;

use std::time::Duration;

use actix_web::web;

use crate::config::Settings;

/// State the form keeps between requests, shared by every HTTP worker of one server.
#[derive(Debug)]
pub struct WebFormState {
    /// Reports per client address.
    pub submissions: guard::Budget,
    /// Follow-up code checks per client address.
    pub status_checks: guard::Budget,
    /// Receipts of recently sent forms.
    pub receipts: replay::Receipts,
}

impl WebFormState {
    /// Budgets sized from the settings.
    pub fn new(settings: &Settings) -> WebFormState {
        let hour = Duration::from_secs(3600);
        WebFormState {
            submissions: guard::Budget::new(settings.web_form_submissions_per_hour, hour),
            status_checks: guard::Budget::new(settings.web_form_status_checks_per_hour, hour),
            receipts: replay::Receipts::default(),
        }
    }
}

/// Mounts `/report`, `/report/status` and the stylesheet.
pub fn configure(cfg: &mut web::ServiceConfig) {
    handlers::configure(cfg);
}
