//! Staff sign-in and one's own account: `POST /api/v1/auth/login`, `/auth/refresh`, `/auth/logout`,
//! `GET /api/v1/me`, `POST /api/v1/me/password`.
//!
//! A new account's one-time password (from `komek user add` or the users API) works for one thing: a
//! session that must change it can call `GET /me`, `POST /me/password` and `POST /auth/logout` only; every
//! other route answers `403 password_change_required` until the password is changed. Changing it ends every
//! other session of the account and answers with fresh tokens for this one.

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::registry::Routes;
use crate::accounts::password;
use crate::audit::{self, Actor, AuditEntry, Outcome};
use crate::auth::login::{self, Credentials, Origin};
use crate::auth::permissions::{self, OwnAccount};
use crate::auth::sessions::{self, IssuedTokens, Refreshed, SessionUser};
use crate::auth::{AuthContext, Authorized, Permission, client_address, password_policy};
use crate::db::schema::users;
use crate::error::{ApiError, ErrorCode};
use crate::middleware::RequestId;
use crate::sensitive::Sensitive;
use crate::state::AppState;

/// Registers the routes.
pub fn register(r: &mut Routes<'_>) {
    r.public(
        Method::POST,
        "/api/v1/auth/login",
        "staff sign-in: password and second factor, throttled per account and address",
        login,
    )
    .public(
        Method::POST,
        "/api/v1/auth/refresh",
        "token renewal: authenticated by the single-use refresh token in the body",
        refresh,
    )
    .guarded::<OwnAccount, _, _>(Method::POST, "/api/v1/auth/logout", logout)
    .guarded::<OwnAccount, _, _>(Method::GET, "/api/v1/me", me)
    .guarded::<OwnAccount, _, _>(Method::POST, "/api/v1/me/password", change_password);
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

/// The token answer of login, refresh and password change.
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: &'a str,
}

fn token_response(status: StatusCode, tokens: &IssuedTokens) -> HttpResponse {
    HttpResponse::build(status).json(TokenResponse {
        access_token: tokens.access_token.expose(),
        token_type: "Bearer",
        expires_in: tokens.expires_in,
        refresh_token: tokens.refresh_token.expose(),
    })
}

fn request_id(req: &HttpRequest) -> Option<String> {
    actix_web::HttpMessage::extensions(req)
        .get::<RequestId>()
        .map(|r| r.0.clone())
}

async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let credentials = Credentials {
        email: body.email,
        password: Sensitive::new(body.password),
        totp: body.totp.map(Sensitive::new),
    };
    let origin = Origin {
        address: client_address(&req, &ctx),
        request_id: request_id(&req),
    };
    let tokens = login::login(&state, &ctx, credentials, origin).await?;
    Ok(token_response(StatusCode::OK, &tokens))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let presented = Sensitive::new(body.into_inner().refresh_token);
    let jwt = ctx.jwt.clone();
    let lifetimes = ctx.lifetimes;
    let request_id = request_id(&req);
    let outcome = state
        .db
        .write(move |conn| {
            let outcome = sessions::refresh(conn, &jwt, presented.expose(), &lifetimes)?;
            if let Refreshed::Reused {
                session_id,
                user_id,
                organization_id,
            } = &outcome
            {
                audit::record(
                    conn,
                    &AuditEntry {
                        organization_id: Some(organization_id),
                        actor: Actor::User(user_id),
                        action: "refresh_token_reused",
                        target_kind: Some("session"),
                        target_id: Some(session_id),
                        outcome: Outcome::Denied,
                        details: Some(serde_json::json!({ "session_revoked": true })),
                        request_id: request_id.as_deref(),
                    },
                )?;
            }
            Ok::<_, ApiError>(outcome)
        })
        .await?;
    match outcome {
        Refreshed::Issued { tokens, .. } => Ok(token_response(StatusCode::OK, &tokens)),
        Refreshed::Reused { session_id, .. } => {
            tracing::warn!(session.id = %session_id, "a used refresh token was presented again; session revoked");
            Err(ApiError::unauthenticated("refresh_token_reused"))
        }
        Refreshed::Invalid => Err(ApiError::unauthenticated("refresh_token_invalid")),
    }
}

async fn logout(auth: Authorized<OwnAccount>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    state
        .db
        .write(move |conn| {
            sessions::revoke(conn, &staff.session_id, "logout")?;
            audit::record(
                conn,
                &staff.audit(
                    "logout",
                    Some("session"),
                    Some(&staff.session_id),
                    Outcome::Success,
                    None,
                ),
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(HttpResponse::NoContent()
        .insert_header(("Clear-Site-Data", "\"cookies\", \"storage\""))
        .finish())
}

#[derive(Serialize)]
struct MeResponse {
    id: String,
    organization_id: String,
    email: String,
    display_name: Option<String>,
    role: &'static str,
    child_protection_trained: bool,
    on_duty: bool,
    must_change_password: bool,
    permissions: Vec<&'static str>,
}

async fn me(auth: Authorized<OwnAccount>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let user_id = staff.user_id.clone();
    let (email, display_name, on_duty): (String, Option<String>, bool) = state
        .db
        .run(move |conn| {
            users::table
                .filter(users::id.eq(&user_id))
                .select((users::email, users::display_name, users::on_duty))
                .first(conn)
                .map_err(ApiError::from)
        })
        .await?;
    let permissions = if staff.must_change_password {
        vec![<OwnAccount as Permission>::NAME]
    } else {
        permissions::names_for(staff.role)
    };
    Ok(HttpResponse::Ok().json(MeResponse {
        id: staff.user_id,
        organization_id: staff.organization_id,
        email,
        display_name,
        role: staff.role.as_str(),
        child_protection_trained: staff.child_protection_trained,
        on_duty,
        must_change_password: staff.must_change_password,
        permissions,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

async fn change_password(
    auth: Authorized<OwnAccount>,
    req: HttpRequest,
    state: web::Data<AppState>,
    ctx: web::Data<AuthContext>,
    body: web::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let body = body.into_inner();
    let current = Sensitive::new(body.current_password);
    let new = Sensitive::new(body.new_password);
    let key = ctx
        .limiter
        .key(&format!("user:{}", staff.user_id), &client_address(&req, &ctx));
    if let Some(wait) = ctx.limiter.check(&key) {
        return Err(ApiError::rate_limited(crate::auth::retry_seconds(wait)));
    }
    let user_id = staff.user_id.clone();
    let (email, stored): (String, String) = state
        .db
        .run(move |conn| {
            users::table
                .filter(users::id.eq(&user_id))
                .select((users::email, users::password_hash))
                .first(conn)
                .map_err(ApiError::from)
        })
        .await?;
    password_policy::check(new.expose(), &email).map_err(ApiError::from)?;
    let (current_ok, same, new_hash) = tokio::task::spawn_blocking(move || {
        let ok = password::verify(&current, &stored);
        let same = ok && password::verify(&new, &stored);
        let hash = (ok && !same).then(|| password::hash(&new));
        (ok, same, hash)
    })
    .await
    .map_err(ApiError::internal)?;
    if !current_ok {
        ctx.limiter.failed(&key);
        let failed = staff.clone();
        state
            .db
            .write(move |conn| {
                audit::record(
                    conn,
                    &failed.audit(
                        "password_change_failed",
                        Some("user"),
                        Some(&failed.user_id),
                        Outcome::Failure,
                        Some(serde_json::json!({ "reason": "current_password_incorrect" })),
                    ),
                )
                .map_err(ApiError::from)
            })
            .await?;
        return Err(ApiError::of(ErrorCode::CurrentPasswordIncorrect));
    }
    if same {
        return Err(ApiError::new(
            ErrorCode::PasswordUnchanged,
            "the new password must differ from the current one",
        ));
    }
    let new_hash = new_hash
        .transpose()
        .map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no hash computed")))?;
    let jwt = ctx.jwt.clone();
    let lifetimes = ctx.lifetimes;
    let tokens = state
        .db
        .write(move |conn| {
            let stamp = uuid::Uuid::new_v4().to_string();
            let now = Utc::now().naive_utc();
            diesel::update(users::table.filter(users::id.eq(&staff.user_id)))
                .set((
                    users::password_hash.eq(&new_hash),
                    users::password_changed_at.eq(now),
                    users::must_change_password.eq(false),
                    users::security_stamp.eq(&stamp),
                    users::updated_at.eq(now),
                ))
                .execute(conn)?;
            let ended = sessions::revoke_all_for_user(conn, &staff.user_id, "password_changed")?;
            let tokens = sessions::start(
                conn,
                &jwt,
                &SessionUser {
                    user_id: staff.user_id.clone(),
                    organization_id: staff.organization_id.clone(),
                    security_stamp: stamp,
                },
                &lifetimes,
            )?;
            audit::record(
                conn,
                &staff.audit(
                    "password_changed",
                    Some("user"),
                    Some(&staff.user_id),
                    Outcome::Success,
                    Some(serde_json::json!({ "sessions_ended": ended })),
                ),
            )?;
            Ok::<_, ApiError>(tokens)
        })
        .await?;
    ctx.limiter.succeeded(&key);
    Ok(token_response(StatusCode::OK, &tokens))
}
