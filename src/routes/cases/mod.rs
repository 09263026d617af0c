//! The staff case API. Handlers are thin: they read the request into typed input, run one case action
//! (`crate::cases`) through `cases::perform` — one transaction scoped to the caller's organization, the
//! case gate first, the refusal audited — and answer. Another organization's case is `404 not_found`; a
//! child case for staff without child-protection training is `403 case_forbidden`, on every route.
//!
//! - [`read`]: `GET /api/v1/cases` (the queue) and `GET /api/v1/cases/{id}` (one case in full; `{id}` is
//!   the id or the `KMK-` reference).
//! - [`taking`]: `POST /api/v1/cases/{id}/acknowledge`, `/assign`, `/triage-override`.
//! - [`contact`]: `PUT /api/v1/cases/{id}/safe-contact`, `POST /api/v1/cases/{id}/sms`.

mod contact;
mod read;
mod taking;

use actix_web::http::Method;

use super::registry::Routes;
use crate::auth::permissions::{
    AcknowledgeCase, AssignCase, ManageSafeContact, OverrideTriage, ReadCases, SendContactSms,
};

/// Registers the case routes.
pub fn register(r: &mut Routes<'_>) {
    r.guarded::<ReadCases, _, _>(Method::GET, "/api/v1/cases", read::list_cases);
    r.guarded::<ReadCases, _, _>(Method::GET, "/api/v1/cases/{id}", read::read_case);
    r.guarded::<AcknowledgeCase, _, _>(
        Method::POST,
        "/api/v1/cases/{id}/acknowledge",
        taking::acknowledge,
    );
    r.guarded::<AssignCase, _, _>(Method::POST, "/api/v1/cases/{id}/assign", taking::assign);
    r.guarded::<OverrideTriage, _, _>(
        Method::POST,
        "/api/v1/cases/{id}/triage-override",
        taking::override_triage,
    );
    r.guarded::<ManageSafeContact, _, _>(
        Method::PUT,
        "/api/v1/cases/{id}/safe-contact",
        contact::put_safe_contact,
    );
    r.guarded::<SendContactSms, _, _>(Method::POST, "/api/v1/cases/{id}/sms", contact::send_sms);
}
