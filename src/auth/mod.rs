//! Staff authentication and authorization: who is calling, and may they do this.
//!
//! - [`Authorized<P>`]: the extractor every staff handler takes. It accepts an access token from
//!   `Authorization: Bearer` or from the `__Host-komek_session` cookie (then, for unsafe methods, a CSRF
//!   token must match: [`cookies`]), verifies it ([`jwt`]), checks the session, user and security stamp in
//!   the database ([`sessions::load_staff`]), and grants the request only if the caller's role holds the
//!   permission `P` ([`permissions`]) — else 401, or 403 with an audit entry `permission_denied`.
//! - [`policy`]: need-to-know decisions per case (tenant, child cases, reporter identity).
//! - [`login`]: password + second factor, throttled by [`limiter`]; [`password_policy`] for new passwords.
//! - [`rotation`]: `komek keys rotate` (JWT signing keys, data key-encryption keys with re-wrapping).
//!
//! Every failure is a `crate::error::ApiError` (the one error envelope, stable codes); nothing here logs a
//! password, token, code, email or IP address.
//!
//! # A case handler
//!
//! Case routes take the permission as their first argument and run one case action through
//! `cases::perform`, which opens the transaction, lets the case gate (`cases::gate`) apply
//! [`policy::case_access`] and audits a refusal:
//!
//! ```text
//! async fn acknowledge(
//!     auth: Authorized<permissions::AcknowledgeCase>,   // first argument: 401 / 403 handled for you
//!     state: web::Data<AppState>,
//!     path: web::Path<String>,
//! ) -> Result<HttpResponse, ApiError> {
//!     let (staff, case) = (auth.staff, path.into_inner());
//!     let actor = staff.clone();
//!     let done = cases::perform(&state.db, &staff, move |conn| {
//!         cases::taking::acknowledge(conn, &actor, &case)   // gate, row, timeline, audit: one transaction
//!     })
//!     .await?;
//!     Ok(HttpResponse::Ok().json(done))
//! }
//! // Registered in src/routes/cases/mod.rs:
//! // r.guarded::<AcknowledgeCase, _, _>(Method::POST, "/api/v1/cases/{id}/acknowledge", acknowledge);
//! ```

pub mod cookies;
mod extract;
pub mod jwt;
pub mod jwt_backend;
pub mod limiter;
pub mod login;
pub mod password_policy;
pub mod permissions;
pub mod policy;
pub mod rotation;
pub mod sessions;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

pub use extract::{client_address, require};
pub use permissions::Permission;

use crate::audit::{Actor, AuditEntry, Outcome};
use crate::config::Settings;
use crate::domain::Role;
use crate::keys::Keyset;

/// An authenticated staff member, as the database says now (role and flags are read on every request).
#[derive(Debug, Clone)]
pub struct Staff {
    /// The user's id.
    pub user_id: String,
    /// Their organization (tenant): every query of theirs is scoped to it.
    pub organization_id: String,
    /// Their role.
    pub role: Role,
    /// Whether they may open child cases (DESIGN §8).
    pub child_protection_trained: bool,
    /// On duty now: an on-duty caseworker may pick up unassigned cases (they are emailed about new critical
    /// ones).
    pub on_duty: bool,
    /// True until they replace their one-time password; only `/me`, `/me/password` and logout work then.
    pub must_change_password: bool,
    /// The session (login) the request belongs to.
    pub session_id: String,
    /// The request id, for audit entries.
    pub request_id: Option<String>,
}

impl Staff {
    /// An audit entry with this staff member as actor, in their organization, with the request id; their
    /// role is added to `details` (R43: who, in which role).
    pub fn audit<'a>(
        &'a self,
        action: &'a str,
        target_kind: Option<&'a str>,
        target_id: Option<&'a str>,
        outcome: Outcome,
        details: Option<serde_json::Value>,
    ) -> AuditEntry<'a> {
        let details = match details {
            Some(serde_json::Value::Object(mut map)) => {
                map.entry("role").or_insert_with(|| self.role.as_str().into());
                serde_json::Value::Object(map)
            }
            Some(other) => serde_json::json!({ "role": self.role.as_str(), "value": other }),
            None => serde_json::json!({ "role": self.role.as_str() }),
        };
        AuditEntry {
            organization_id: Some(&self.organization_id),
            actor: Actor::User(&self.user_id),
            action,
            target_kind,
            target_id,
            outcome,
            details: Some(details),
            request_id: self.request_id.as_deref(),
        }
    }

    /// A staff value for unit tests of policies (no database, no token).
    pub fn for_tests(
        user_id: &str,
        organization_id: &str,
        role: Role,
        child_protection_trained: bool,
    ) -> Staff {
        Staff {
            user_id: user_id.to_owned(),
            organization_id: organization_id.to_owned(),
            role,
            child_protection_trained,
            on_duty: false,
            must_change_password: false,
            session_id: "test-session".to_owned(),
            request_id: None,
        }
    }
}

/// A request whose caller holds permission `P`. Take it as a handler argument: the handler runs only for
/// such callers. (401 without a valid token; 403 and an audit entry `permission_denied` without `P`.)
#[derive(Debug, Clone)]
pub struct Authorized<P: Permission> {
    /// The caller.
    pub staff: Staff,
    _permission: PhantomData<P>,
}

impl<P: Permission> Authorized<P> {
    fn new(staff: Staff) -> Self {
        Authorized {
            staff,
            _permission: PhantomData,
        }
    }
}

impl<P: Permission> std::ops::Deref for Authorized<P> {
    type Target = Staff;
    fn deref(&self) -> &Staff {
        &self.staff
    }
}

/// What the auth extractors and handlers need, shared by every worker (registered as `web::Data`).
#[derive(Debug)]
pub struct AuthContext {
    /// Access-token signing and verification.
    pub jwt: jwt::JwtKeys,
    /// Token and session lifetimes.
    pub lifetimes: sessions::Lifetimes,
    /// Whether a second factor is required (false only in development demos).
    pub require_mfa: bool,
    /// Login throttling.
    pub limiter: limiter::LoginLimiter,
    /// Reverse proxies whose `X-Forwarded-For` hops are believed for the client address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl AuthContext {
    /// Builds the context from validated settings and the keyset.
    pub fn new(settings: &Settings, keys: Arc<Keyset>) -> Arc<AuthContext> {
        let issuer = settings.public_url.as_str().trim_end_matches('/').to_owned();
        // Compute the dummy hash now, off the request path, so the first login for an unknown account
        // takes no longer than any other.
        std::thread::spawn(|| crate::accounts::password::dummy_hash().len());
        Arc::new(AuthContext {
            jwt: jwt::JwtKeys::new(keys, issuer),
            lifetimes: sessions::Lifetimes {
                access: settings.access_token_ttl,
                idle: settings.session_idle_timeout,
                absolute: settings.session_absolute_timeout,
            },
            require_mfa: settings.require_mfa,
            limiter: limiter::LoginLimiter::new(),
            trusted_proxies: settings.trusted_proxies.clone(),
        })
    }
}

/// How long to wait before retrying, rounded up to whole seconds.
pub(crate) fn retry_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
