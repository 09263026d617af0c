//! Signing in: email + password + second factor → a new session.
//!
//! One answer for every failure (`401 invalid_credentials`): unknown account, wrong password, disabled
//! account, missing, wrong or replayed code. An unknown account is verified against a dummy Argon2 hash
//! and audited like a wrong password, so the status, body and time are the same (ASVS 6.3.8). Attempts are
//! throttled per account and address first ([`limiter`](super::limiter)); the password is checked on the
//! blocking pool *outside* any database transaction (Argon2 takes tens of milliseconds and must not hold
//! SQLite's write lock); the code's step is stored so the same code never works twice, even in two
//! concurrent logins (the update only succeeds if the stored step is older).
//!
//! With `require_mfa = false` (development only; refused in production) a login without a code is
//! accepted; a code that is given is still checked.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use super::AuthContext;
use super::sessions::{self, IssuedTokens, SessionUser};
use crate::accounts::{password, totp, users::totp_place};
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::db::schema::users;
use crate::domain::EmailAddress;
use crate::error::ApiError;
use crate::sensitive::Sensitive;
use crate::state::AppState;

/// A login attempt.
pub struct Credentials {
    /// As typed.
    pub email: String,
    /// As typed.
    pub password: Sensitive<String>,
    /// The 6-digit code from the authenticator app.
    pub totp: Option<Sensitive<String>>,
}

/// Where the attempt came from (for throttling and the audit entry; the address is never stored).
pub struct Origin {
    /// The client address (hashed by the limiter, never stored or logged).
    pub address: String,
    /// The request id.
    pub request_id: Option<String>,
}

#[derive(Queryable)]
struct LoginRow {
    id: String,
    organization_id: String,
    password_hash: String,
    security_stamp: String,
    disabled_at: Option<NaiveDateTime>,
    totp_secret_enc: Option<Vec<u8>>,
    totp_dek: Option<Vec<u8>>,
    totp_key_version: Option<i32>,
    totp_last_step: Option<i64>,
}

async fn record_failure(
    state: &AppState,
    user: Option<&LoginRow>,
    reason: &'static str,
    request_id: Option<&str>,
) -> Result<ApiError, ApiError> {
    let owned = (
        user.map(|u| u.organization_id.clone()),
        user.map(|u| u.id.clone()),
        request_id.map(str::to_owned),
    );
    tracing::info!(auth.reason = reason, "login failed");
    state
        .db
        .write(move |conn| {
            let (org, target, request_id) = &owned;
            audit::record(
                conn,
                &AuditEntry {
                    organization_id: org.as_deref(),
                    actor: Actor::Anonymous,
                    action: "login_failed",
                    target_kind: target.as_ref().map(|_| "user"),
                    target_id: target.as_deref(),
                    outcome: Outcome::Failure,
                    details: Some(serde_json::json!({ "reason": reason })),
                    request_id: request_id.as_deref(),
                },
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(ApiError::invalid_credentials())
}

/// Checks the credentials and starts a session.
pub async fn login(
    state: &AppState,
    ctx: &AuthContext,
    credentials: Credentials,
    origin: Origin,
) -> Result<IssuedTokens, ApiError> {
    let request_id = origin.request_id.as_deref();
    let email = EmailAddress::parse(&credentials.email).ok();
    let key = ctx.limiter.key(
        email
            .as_ref()
            .map_or(credentials.email.as_str(), EmailAddress::as_str),
        &origin.address,
    );
    if let Some(wait) = ctx.limiter.check(&key) {
        tracing::warn!(retry_after = super::retry_seconds(wait), "login throttled");
        return Err(ApiError::rate_limited(super::retry_seconds(wait)));
    }
    let user: Option<LoginRow> = match email.clone() {
        Some(email) => {
            state
                .db
                .run(move |conn| {
                    users::table
                        .filter(users::email.eq(email.as_str()))
                        .select((
                            users::id,
                            users::organization_id,
                            users::password_hash,
                            users::security_stamp,
                            users::disabled_at,
                            users::totp_secret_enc,
                            users::totp_dek,
                            users::totp_key_version,
                            users::totp_last_step,
                        ))
                        .first::<LoginRow>(conn)
                        .optional()
                        .map_err(ApiError::from)
                })
                .await?
        }
        None => None,
    };
    // Argon2 on the blocking pool, against the real hash or a dummy one: same work either way.
    let stored = user
        .as_ref()
        .map_or_else(|| password::dummy_hash().to_owned(), |u| u.password_hash.clone());
    let typed = credentials.password.clone();
    let (password_ok, rehash) = tokio::task::spawn_blocking(move || {
        let too_long = typed.expose().chars().count() > super::password_policy::MAX_CHARS * 4;
        let ok = !too_long && password::verify(&typed, &stored);
        let rehash = (ok && password::needs_rehash(&stored))
            .then(|| password::hash(&typed).ok())
            .flatten();
        (ok, rehash)
    })
    .await
    .map_err(ApiError::internal)?;

    let Some(user) = user else {
        ctx.limiter.failed(&key);
        return Err(record_failure(state, None, "unknown_account", request_id).await?);
    };
    if !password_ok {
        ctx.limiter.failed(&key);
        return Err(record_failure(state, Some(&user), "wrong_password", request_id).await?);
    }
    if user.disabled_at.is_some() {
        ctx.limiter.failed(&key);
        return Err(record_failure(state, Some(&user), "account_disabled", request_id).await?);
    }

    // Second factor.
    let mut accepted_step = None;
    if ctx.require_mfa || credentials.totp.is_some() {
        if !ctx.limiter.mfa_allowed(&key) {
            return Err(record_failure(state, Some(&user), "mfa_throttled", request_id).await?);
        }
        let step = match (
            &credentials.totp,
            &user.totp_secret_enc,
            &user.totp_dek,
            user.totp_key_version,
        ) {
            (Some(code), Some(sealed), Some(dek), Some(version)) => {
                let key = state
                    .crypto
                    .unwrap_record_key(dek, version)
                    .map_err(ApiError::internal)?;
                let secret = key
                    .open(totp_place(&user.id), sealed)
                    .map_err(ApiError::internal)?;
                let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
                totp::matching_step(&secret, code.expose(), now, user.totp_last_step)
            }
            _ => None,
        };
        let Some(step) = step else {
            ctx.limiter.failed(&key);
            ctx.limiter.mfa_failed(&key);
            let reason = if credentials.totp.is_none() {
                "mfa_missing"
            } else {
                "mfa_invalid"
            };
            return Err(record_failure(state, Some(&user), reason, request_id).await?);
        };
        accepted_step = Some(step);
    }

    let jwt = ctx.jwt.clone();
    let lifetimes = ctx.lifetimes;
    let session_user = SessionUser {
        user_id: user.id.clone(),
        organization_id: user.organization_id.clone(),
        security_stamp: user.security_stamp.clone(),
    };
    let request_id_owned = origin.request_id.clone();
    let issued = state
        .db
        .write(move |conn| {
            if let Some(step) = accepted_step {
                // Accept the step only if it is newer than the stored one: a replay loses this race.
                let claimed = diesel::update(
                    users::table
                        .filter(users::id.eq(&session_user.user_id))
                        .filter(users::totp_last_step.is_null().or(users::totp_last_step.lt(step))),
                )
                .set(users::totp_last_step.eq(step))
                .execute(conn)?;
                if claimed != 1 {
                    return Ok(None);
                }
            }
            if let Some(new_hash) = &rehash {
                diesel::update(users::table.filter(users::id.eq(&session_user.user_id)))
                    .set(users::password_hash.eq(new_hash))
                    .execute(conn)?;
            }
            let tokens = sessions::start(conn, &jwt, &session_user, &lifetimes)?;
            audit::record(
                conn,
                &AuditEntry {
                    organization_id: Some(&session_user.organization_id),
                    actor: Actor::User(&session_user.user_id),
                    action: "login_succeeded",
                    target_kind: Some("session"),
                    target_id: Some(&tokens.session_id),
                    outcome: Outcome::Success,
                    details: Some(serde_json::json!({
                        "mfa": accepted_step.is_some(),
                        "password_rehashed": rehash.is_some(),
                    })),
                    request_id: request_id_owned.as_deref(),
                },
            )?;
            Ok::<_, ApiError>(Some(tokens))
        })
        .await?;
    let Some(tokens) = issued else {
        ctx.limiter.failed(&key);
        ctx.limiter.mfa_failed(&key);
        return Err(record_failure(state, Some(&user), "mfa_replayed", request_id).await?);
    };
    ctx.limiter.succeeded(&key);
    tracing::info!(user.id = %user.id, session.id = %tokens.session_id, "login succeeded");
    Ok(tokens)
}
