//! Sessions and the tokens that carry them. A login starts a session (absolute end: the configured
//! absolute timeout); it hands out a short-lived access JWT naming the session, and a refresh token.
//!
//! Refresh tokens are 256 random bits, stored only as SHA-256 hashes (a database dump yields no usable
//! token), valid for the idle timeout, and rotated on every use: using one marks it used and issues a new
//! one. Presenting a used token again means it was stolen (or the client is confused): the whole session is
//! revoked (RFC 9700 §4.14 refresh-token rotation with reuse detection).
//!
//! On every authenticated request [`load_staff`] reads the user and the session in one indexed query and
//! refuses a revoked or ended session, a disabled user, or a token issued before a password change, a
//! disable or a second-factor reset (the user's security stamp changed) — so those take effect on the next
//! request. The role and the child-protection flag are read live, so a role change also takes effect on the
//! next request.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use super::Staff;
use super::jwt::{AUDIENCE, AccessClaims, CLAIM_TYP, JwtKeys};
use crate::db::AnyConnection;
use crate::db::schema::{refresh_tokens, sessions, users};
use crate::domain::Role;
use crate::error::ApiError;
use crate::sensitive::Sensitive;

/// Refresh tokens start with this, so they are recognisable in a leak scan and never mistaken for a JWT.
pub const REFRESH_PREFIX: &str = "kmr1_";

/// Lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Access token lifetime (at most 15 minutes).
    pub access: Duration,
    /// How long a refresh token stays usable (the idle timeout).
    pub idle: Duration,
    /// How long a session lasts at most, however active (the absolute timeout).
    pub absolute: Duration,
}

/// What a login or refresh hands to the client.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access JWT.
    pub access_token: Sensitive<String>,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The refresh token.
    pub refresh_token: Sensitive<String>,
    /// The session id.
    pub session_id: String,
}

/// The user facts a session is issued for.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user_id: String,
    pub organization_id: String,
    pub security_stamp: String,
}

/// A digest of a security stamp, carried in tokens (the stamp itself stays in the database).
pub fn stamp_digest(stamp: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"komek/v1/security-stamp\0");
    digest.update(stamp.as_bytes());
    hex::encode(&digest.finalize()[..16])
}

/// The stored form of a refresh token.
pub fn refresh_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_refresh_token() -> Sensitive<String> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Sensitive::new(format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

fn after(now: NaiveDateTime, span: Duration) -> NaiveDateTime {
    now + chrono::Duration::from_std(span).unwrap_or_else(|_| chrono::Duration::minutes(15))
}

fn sign_access(
    jwt: &JwtKeys,
    user: &SessionUser,
    session_id: &str,
    lifetimes: &Lifetimes,
) -> Result<(Sensitive<String>, i64), ApiError> {
    let now = Utc::now().timestamp();
    let ttl = i64::try_from(lifetimes.access.as_secs()).unwrap_or(600);
    let claims = AccessClaims {
        iss: jwt.issuer().to_owned(),
        aud: AUDIENCE.to_owned(),
        sub: user.user_id.clone(),
        iat: now,
        exp: now + ttl,
        jti: uuid::Uuid::new_v4().to_string(),
        typ: CLAIM_TYP.to_owned(),
        sid: session_id.to_owned(),
        org: user.organization_id.clone(),
        stp: stamp_digest(&user.security_stamp),
    };
    let token = jwt.sign(&claims).map_err(ApiError::internal)?;
    Ok((Sensitive::new(token), ttl))
}

fn insert_refresh(
    conn: &mut AnyConnection,
    session_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> Result<Sensitive<String>, ApiError> {
    let token = new_refresh_token();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(uuid::Uuid::now_v7().to_string()),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::token_hash.eq(refresh_hash(token.expose())),
            refresh_tokens::created_at.eq(now),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Starts a session for `user` and issues its first tokens. Call inside a write transaction.
pub fn start(
    conn: &mut AnyConnection,
    jwt: &JwtKeys,
    user: &SessionUser,
    lifetimes: &Lifetimes,
) -> Result<IssuedTokens, ApiError> {
    let now = Utc::now().naive_utc();
    let session_id = uuid::Uuid::new_v4().to_string();
    let session_end = after(now, lifetimes.absolute);
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(&session_id),
            sessions::user_id.eq(&user.user_id),
            sessions::organization_id.eq(&user.organization_id),
            sessions::created_at.eq(now),
            sessions::expires_at.eq(session_end),
        ))
        .execute(conn)?;
    let refresh_token = insert_refresh(
        conn,
        &session_id,
        now,
        after(now, lifetimes.idle).min(session_end),
    )?;
    let (access_token, expires_in) = sign_access(jwt, user, &session_id, lifetimes)?;
    Ok(IssuedTokens {
        access_token,
        expires_in,
        refresh_token,
        session_id,
    })
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Refreshed {
    /// New tokens for the same session.
    Issued {
        tokens: IssuedTokens,
        user_id: String,
        organization_id: String,
    },
    /// The token was already used: the session is now revoked. Audit it.
    Reused {
        session_id: String,
        user_id: String,
        organization_id: String,
    },
    /// Unknown, expired, or its session or user is no longer valid.
    Invalid,
}

/// Rotates a refresh token. Call inside a write transaction.
pub fn refresh(
    conn: &mut AnyConnection,
    jwt: &JwtKeys,
    presented: &str,
    lifetimes: &Lifetimes,
) -> Result<Refreshed, ApiError> {
    if !presented.starts_with(REFRESH_PREFIX) || presented.len() > 128 {
        return Ok(Refreshed::Invalid);
    }
    let now = Utc::now().naive_utc();
    let found: Option<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(refresh_hash(presented)))
        .select((
            refresh_tokens::id,
            refresh_tokens::session_id,
            refresh_tokens::expires_at,
            refresh_tokens::used_at,
        ))
        .first(conn)
        .optional()?;
    let Some((token_id, session_id, expires_at, used_at)) = found else {
        return Ok(Refreshed::Invalid);
    };
    let row: Option<RefreshRow> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(&session_id))
        .select((
            users::id,
            users::organization_id,
            users::security_stamp,
            users::disabled_at,
            sessions::revoked_at,
            sessions::expires_at,
        ))
        .first(conn)
        .optional()?;
    let Some((user_id, organization_id, stamp, disabled_at, revoked_at, session_end)) = row else {
        return Ok(Refreshed::Invalid);
    };
    if used_at.is_some() {
        if revoked_at.is_none() {
            revoke(conn, &session_id, "refresh_token_reused")?;
        }
        return Ok(Refreshed::Reused {
            session_id,
            user_id,
            organization_id,
        });
    }
    if revoked_at.is_some() || disabled_at.is_some() || expires_at <= now || session_end <= now {
        return Ok(Refreshed::Invalid);
    }
    // Only one of two concurrent refreshes with the same token wins; the other sees it used.
    let claimed = diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(&token_id))
            .filter(refresh_tokens::used_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)?;
    if claimed != 1 {
        return Ok(Refreshed::Invalid);
    }
    let user = SessionUser {
        user_id: user_id.clone(),
        organization_id: organization_id.clone(),
        security_stamp: stamp,
    };
    let refresh_token = insert_refresh(
        conn,
        &session_id,
        now,
        after(now, lifetimes.idle).min(session_end),
    )?;
    let (access_token, expires_in) = sign_access(jwt, &user, &session_id, lifetimes)?;
    Ok(Refreshed::Issued {
        tokens: IssuedTokens {
            access_token,
            expires_in,
            refresh_token,
            session_id,
        },
        user_id,
        organization_id,
    })
}

/// Revokes one session (its access tokens fail from the next request; its refresh tokens stop working).
pub fn revoke(conn: &mut AnyConnection, session_id: &str, reason: &str) -> Result<(), ApiError> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(session_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Utc::now().naive_utc()),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(())
}

/// Revokes every open session of a user.
pub fn revoke_all_for_user(conn: &mut AnyConnection, user_id: &str, reason: &str) -> Result<usize, ApiError> {
    Ok(diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(Utc::now().naive_utc()),
        sessions::revoked_reason.eq(reason),
    ))
    .execute(conn)?)
}

/// Deletes sessions that ended (revoked or past their absolute end) before `cutoff`, with their refresh
/// tokens — for the retention job. Returns how many sessions were deleted.
pub fn purge_ended(conn: &mut AnyConnection, cutoff: NaiveDateTime) -> Result<usize, ApiError> {
    let ended = sessions::table
        .filter(
            sessions::expires_at
                .lt(cutoff)
                .or(sessions::revoked_at.lt(cutoff)),
        )
        .select(sessions::id);
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::session_id.eq_any(ended))).execute(conn)?;
    Ok(diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .lt(cutoff)
                .or(sessions::revoked_at.lt(cutoff)),
        ),
    )
    .execute(conn)?)
}

/// A new random security stamp for a user: every token issued before it stops working.
pub fn rotate_stamp(conn: &mut AnyConnection, user_id: &str) -> Result<(), ApiError> {
    diesel::update(users::table.filter(users::id.eq(user_id)))
        .set((
            users::security_stamp.eq(uuid::Uuid::new_v4().to_string()),
            users::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

type RefreshRow = (
    String,
    String,
    String,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

type StaffRow = (
    String,
    String,
    String,
    bool,
    bool,
    bool,
    String,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    NaiveDateTime,
);

/// Checks a verified access token against the database and returns the staff member it stands for, or
/// `Unauthenticated` when the session, the user or the stamp no longer allows it.
pub fn load_staff(conn: &mut AnyConnection, claims: &AccessClaims) -> Result<Staff, ApiError> {
    let row: Option<StaffRow> = sessions::table
        .inner_join(users::table)
        .filter(sessions::id.eq(&claims.sid))
        .filter(users::id.eq(&claims.sub))
        .select((
            users::id,
            users::organization_id,
            users::role,
            users::child_protection_trained,
            users::on_duty,
            users::must_change_password,
            users::security_stamp,
            users::disabled_at,
            sessions::revoked_at,
            sessions::expires_at,
        ))
        .first(conn)
        .optional()?;
    let Some((
        user_id,
        organization_id,
        role,
        trained,
        on_duty,
        must_change,
        stamp,
        disabled,
        revoked,
        session_end,
    )) = row
    else {
        return Err(ApiError::unauthenticated("session_unknown"));
    };
    if revoked.is_some() {
        return Err(ApiError::unauthenticated("session_revoked"));
    }
    if session_end <= Utc::now().naive_utc() {
        return Err(ApiError::unauthenticated("session_ended"));
    }
    if disabled.is_some() {
        return Err(ApiError::unauthenticated("user_disabled"));
    }
    if stamp_digest(&stamp) != claims.stp || organization_id != claims.org {
        return Err(ApiError::unauthenticated("security_stamp_changed"));
    }
    let role: Role = role
        .parse()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("a user row has an unknown role")))?;
    Ok(Staff {
        user_id,
        organization_id,
        role,
        child_protection_trained: trained,
        on_duty,
        must_change_password: must_change,
        session_id: claims.sid.clone(),
        request_id: None,
    })
}
