//! The [`Authorized<P>`](super::Authorized) extractor: token from the `Authorization` header or the session
//! cookie (with the CSRF check), verification, the per-request database check, the permission check, and
//! the audit entry for a denial.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use subtle::ConstantTimeEq as _;

use super::cookies::{CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};
use super::{AuthContext, Authorized, Permission, Staff, sessions};
use crate::audit::{self, Outcome};
use crate::error::{ApiError, ErrorCode};
use crate::middleware::RequestId;
use crate::state::AppState;

/// The client's address for rate limiting: the configured trusted proxy header's last value when one is
/// configured (the proxy appends the address it saw), else the TCP peer. Never logged.
pub fn client_address(req: &HttpRequest, ctx: &AuthContext) -> String {
    crate::client_address::of(req, &ctx.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default()
}

fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthenticated("authorization_header_malformed"))?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or(ApiError::unauthenticated("authorization_header_malformed"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthenticated("authorization_header_malformed"));
    }
    Ok(Some(token.trim().to_owned()))
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The access token of a request: the `Authorization: Bearer` header, else the session cookie — for which
/// an unsafe method must also carry an `X-CSRF-Token` header equal to the CSRF cookie.
fn access_token(req: &HttpRequest) -> Result<String, ApiError> {
    if let Some(token) = bearer(req)? {
        return Ok(token);
    }
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Err(ApiError::unauthenticated("no_token"));
    };
    if !is_safe(req.method()) {
        let header = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let expected = req
            .cookie(CSRF_COOKIE)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        let matches = expected.len() >= 32 && bool::from(header.as_bytes().ct_eq(expected.as_bytes()));
        if !matches {
            return Err(ApiError::of(ErrorCode::CsrfFailed));
        }
    }
    Ok(cookie.value().to_owned())
}

/// Authenticates a request: token, signature and claims, then session, user and stamp in the database.
pub(crate) async fn authenticate(req: &HttpRequest) -> Result<(Staff, web::Data<AppState>), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState is not registered")))?;
    let ctx = req
        .app_data::<web::Data<AuthContext>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AuthContext is not registered")))?;
    let token = access_token(req)?;
    let claims = ctx.jwt.verify(&token, chrono::Utc::now().timestamp())?;
    let mut staff = state
        .db
        .run(move |conn| sessions::load_staff(conn, &claims))
        .await?;
    staff.request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    Ok((staff, state))
}

/// Grants or refuses `P` to an authenticated caller; a refusal is audited in its own transaction.
pub(crate) async fn authorize<P: Permission>(
    staff: Staff,
    state: &web::Data<AppState>,
    route: Option<String>,
) -> Result<Authorized<P>, ApiError> {
    if staff.must_change_password && !P::BEFORE_PASSWORD_CHANGE {
        return Err(ApiError::of(ErrorCode::PasswordChangeRequired));
    }
    if P::granted_to(staff.role) {
        return Ok(Authorized::new(staff));
    }
    tracing::info!(
        user.id = %staff.user_id,
        permission = P::NAME,
        role = staff.role.as_str(),
        "permission denied"
    );
    let entry_staff = staff.clone();
    state
        .db
        .write(move |conn| {
            audit::record(
                conn,
                &entry_staff.audit(
                    "permission_denied",
                    None,
                    None,
                    Outcome::Denied,
                    Some(serde_json::json!({
                        "permission": P::NAME,
                        "role": entry_staff.role.as_str(),
                        "route": route,
                    })),
                ),
            )
            .map_err(ApiError::from)
        })
        .await?;
    Err(ApiError::permission_denied(P::NAME))
}

/// A caller already authenticated and authorized for one permission by [`require`], kept in the
/// request's extensions for the handler's `Authorized<P>` argument.
#[derive(Debug, Clone)]
struct Granted {
    staff: Staff,
    permission: &'static str,
}

/// Route middleware for guarded routes: authenticates and authorizes **before** any other extractor runs
/// (a body that fails to parse must not answer 400 to a caller who may not call the route at all), then
/// leaves the caller for `Authorized<P>`.
pub async fn require<P: Permission, B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let http = req.request().clone();
    let result = match authenticate(&http).await {
        Ok((staff, state)) => authorize::<P>(staff, &state, http.match_pattern()).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(granted) => {
            req.extensions_mut().insert(Granted {
                staff: granted.staff,
                permission: P::NAME,
            });
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(err) => Ok(req.error_response(err).map_into_right_body()),
    }
}

impl<P: Permission> FromRequest for Authorized<P> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let granted = req
            .extensions()
            .get::<Granted>()
            .filter(|g| g.permission == P::NAME)
            .map(|g| g.staff.clone());
        if let Some(staff) = granted {
            return Box::pin(std::future::ready(Ok(Authorized::new(staff))));
        }
        // Not mounted through `Routes::guarded` (which runs `require` first): check here.
        let req = req.clone();
        Box::pin(async move {
            let (staff, state) = authenticate(&req).await?;
            authorize::<P>(staff, &state, req.match_pattern()).await
        })
    }
}
