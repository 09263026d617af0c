//! The users admin API for an organization's admins (`manage_users`): list, add, read, change role and
//! flags, disable and enable, reset the second factor. Scoped to the admin's own organization: another
//! organization's user answers 404. An admin never sets or sees another user's chosen password: a new
//! account gets a generated one-time password (shown once, must be changed at first login); a body with
//! any field not listed here (e.g. `password`) is refused.
//!
//! Disabling a user, and resetting their second factor, end all their sessions and change their security
//! stamp, so their tokens stop working on their next request; a role or flag change is read live on their
//! next request. The last enabled admin of an organization cannot be demoted or disabled.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::registry::Routes;
use crate::accounts::users as accounts;
use crate::audit::{self, Outcome};
use crate::auth::permissions::ManageUsers;
use crate::auth::{Authorized, Staff, sessions};
use crate::db::AnyConnection;
use crate::db::schema::users;
use crate::domain::{EmailAddress, Role};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// Registers the routes.
pub fn register(r: &mut Routes<'_>) {
    r.guarded::<ManageUsers, _, _>(Method::GET, "/api/v1/users", list)
        .guarded::<ManageUsers, _, _>(Method::POST, "/api/v1/users", add)
        .guarded::<ManageUsers, _, _>(Method::GET, "/api/v1/users/{id}", get)
        .guarded::<ManageUsers, _, _>(Method::PATCH, "/api/v1/users/{id}", update)
        .guarded::<ManageUsers, _, _>(Method::POST, "/api/v1/users/{id}/disable", disable)
        .guarded::<ManageUsers, _, _>(Method::POST, "/api/v1/users/{id}/enable", enable)
        .guarded::<ManageUsers, _, _>(
            Method::POST,
            "/api/v1/users/{id}/second-factor/reset",
            reset_second_factor,
        );
}

/// A user as the admin API shows it.
#[derive(Debug, Serialize, Queryable)]
struct UserView {
    id: String,
    email: String,
    display_name: Option<String>,
    role: String,
    child_protection_trained: bool,
    on_duty: bool,
    must_change_password: bool,
    #[serde(skip)]
    disabled_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
}

#[derive(Serialize)]
struct UserJson {
    #[serde(flatten)]
    user: UserView,
    disabled: bool,
}

impl From<UserView> for UserJson {
    fn from(user: UserView) -> Self {
        let disabled = user.disabled_at.is_some();
        UserJson { user, disabled }
    }
}

type ViewColumns = (
    users::id,
    users::email,
    users::display_name,
    users::role,
    users::child_protection_trained,
    users::on_duty,
    users::must_change_password,
    users::disabled_at,
    users::created_at,
);

const VIEW: ViewColumns = (
    users::id,
    users::email,
    users::display_name,
    users::role,
    users::child_protection_trained,
    users::on_duty,
    users::must_change_password,
    users::disabled_at,
    users::created_at,
);

/// The user `id` of the admin's organization, or 404.
fn find(conn: &mut AnyConnection, staff: &Staff, id: &str) -> Result<UserView, ApiError> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::organization_id.eq(&staff.organization_id))
        .select(VIEW)
        .first(conn)
        .optional()?
        .ok_or(ApiError::not_found("user"))
}

fn enabled_admins(conn: &mut AnyConnection, organization_id: &str) -> Result<i64, ApiError> {
    Ok(users::table
        .filter(users::organization_id.eq(organization_id))
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::disabled_at.is_null())
        .count()
        .get_result(conn)?)
}

async fn list(auth: Authorized<ManageUsers>, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let org = staff.organization_id.clone();
    let rows = state
        .db
        .write_as(&org, move |conn| {
            let rows: Vec<UserView> = users::table
                .filter(users::organization_id.eq(&staff.organization_id))
                .order(users::created_at.asc())
                .select(VIEW)
                .load(conn)?;
            audit::record(
                conn,
                &staff.audit(
                    "users_listed",
                    None,
                    None,
                    Outcome::Success,
                    Some(serde_json::json!({ "count": rows.len() })),
                ),
            )?;
            Ok::<_, ApiError>(rows)
        })
        .await?;
    let users: Vec<UserJson> = rows.into_iter().map(UserJson::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": users })))
}

async fn get(
    auth: Authorized<ManageUsers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
    let org = staff.organization_id.clone();
    let user = state
        .db
        .write_as(&org, move |conn| {
            let user = find(conn, &staff, &id)?;
            audit::record(
                conn,
                &staff.audit("user_read", Some("user"), Some(&user.id), Outcome::Success, None),
            )?;
            Ok::<_, ApiError>(user)
        })
        .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    email: String,
    role: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    child_protection_trained: bool,
    #[serde(default)]
    on_duty: bool,
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse::<Role>()
        .map_err(|e| ApiError::new(ErrorCode::InvalidRole, e.0))
}

fn check_display_name(name: Option<&str>) -> Result<Option<String>, ApiError> {
    match name.map(str::trim) {
        None | Some("") => Ok(None),
        Some(name) if name.chars().count() <= 100 && !name.chars().any(char::is_control) => {
            Ok(Some(name.to_owned()))
        }
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidDisplayName,
            "the display name must have at most 100 characters and no control characters",
        )),
    }
}

async fn add(
    auth: Authorized<ManageUsers>,
    state: web::Data<AppState>,
    body: web::Json<AddBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let body = body.into_inner();
    let email = EmailAddress::parse(&body.email).map_err(|e| ApiError::new(ErrorCode::InvalidEmail, e.0))?;
    let role = parse_role(&body.role)?;
    let display_name = check_display_name(body.display_name.as_deref())?;
    let crypto = state.crypto.clone();
    let org = staff.organization_id.clone();
    let created = state
        .db
        .write_as(&org, move |conn| {
            let created = accounts::create(conn, &crypto, &staff.organization_id, &email, role)?;
            diesel::update(users::table.filter(users::id.eq(&created.id)))
                .set((
                    users::display_name.eq(&display_name),
                    users::child_protection_trained.eq(body.child_protection_trained),
                    users::on_duty.eq(body.on_duty),
                ))
                .execute(conn)?;
            audit::record(
                conn,
                &staff.audit(
                    "user_created",
                    Some("user"),
                    Some(&created.id),
                    Outcome::Success,
                    Some(serde_json::json!({
                        "role": role.as_str(),
                        "child_protection_trained": body.child_protection_trained,
                    })),
                ),
            )?;
            Ok::<_, ApiError>(created)
        })
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": created.id,
        "email": created.email.as_str(),
        "role": created.role.as_str(),
        "password": created.password.expose(),
        "totp_uri": created.totp_uri.expose(),
        "must_change_password": true,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    child_protection_trained: Option<bool>,
    #[serde(default)]
    on_duty: Option<bool>,
    #[serde(default)]
    display_name: Option<String>,
}

async fn update(
    auth: Authorized<ManageUsers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
    let body = body.into_inner();
    let role = body.role.as_deref().map(parse_role).transpose()?;
    let display_name = body
        .display_name
        .as_deref()
        .map(|n| check_display_name(Some(n)))
        .transpose()?;
    if role.is_none()
        && body.child_protection_trained.is_none()
        && body.on_duty.is_none()
        && display_name.is_none()
    {
        return Err(ApiError::new(
            ErrorCode::NothingToChange,
            "give at least one of role, child_protection_trained, on_duty, display_name",
        ));
    }
    let org = staff.organization_id.clone();
    let user = state
        .db
        .write_as(&org, move |conn| {
            let before = find(conn, &staff, &id)?;
            if let Some(role) = role {
                if before.role == Role::Admin.as_str()
                    && role != Role::Admin
                    && before.disabled_at.is_none()
                    && enabled_admins(conn, &staff.organization_id)? <= 1
                {
                    return Err(ApiError::of(ErrorCode::LastAdmin));
                }
                diesel::update(users::table.filter(users::id.eq(&id)))
                    .set(users::role.eq(role.as_str()))
                    .execute(conn)?;
            }
            if let Some(trained) = body.child_protection_trained {
                diesel::update(users::table.filter(users::id.eq(&id)))
                    .set(users::child_protection_trained.eq(trained))
                    .execute(conn)?;
            }
            if let Some(on_duty) = body.on_duty {
                diesel::update(users::table.filter(users::id.eq(&id)))
                    .set(users::on_duty.eq(on_duty))
                    .execute(conn)?;
            }
            if let Some(name) = &display_name {
                diesel::update(users::table.filter(users::id.eq(&id)))
                    .set(users::display_name.eq(name))
                    .execute(conn)?;
            }
            diesel::update(users::table.filter(users::id.eq(&id)))
                .set(users::updated_at.eq(Utc::now().naive_utc()))
                .execute(conn)?;
            audit::record(
                conn,
                &staff.audit(
                    "user_updated",
                    Some("user"),
                    Some(&id),
                    Outcome::Success,
                    Some(serde_json::json!({
                        "role_before": before.role,
                        "role": role.map(Role::as_str),
                        "child_protection_trained": body.child_protection_trained,
                        "on_duty": body.on_duty,
                        "display_name_changed": display_name.is_some(),
                    })),
                ),
            )?;
            find(conn, &staff, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(user)))
}

async fn disable(
    auth: Authorized<ManageUsers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
    let org = staff.organization_id.clone();
    let user = state
        .db
        .write_as(&org, move |conn| {
            let before = find(conn, &staff, &id)?;
            if before.id == staff.user_id {
                return Err(ApiError::of(ErrorCode::CannotDisableSelf));
            }
            if before.disabled_at.is_none() {
                diesel::update(users::table.filter(users::id.eq(&id)))
                    .set((
                        users::disabled_at.eq(Some(Utc::now().naive_utc())),
                        users::updated_at.eq(Utc::now().naive_utc()),
                    ))
                    .execute(conn)?;
                sessions::rotate_stamp(conn, &id)?;
                sessions::revoke_all_for_user(conn, &id, "user_disabled")?;
            }
            audit::record(
                conn,
                &staff.audit("user_disabled", Some("user"), Some(&id), Outcome::Success, None),
            )?;
            find(conn, &staff, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(user)))
}

async fn enable(
    auth: Authorized<ManageUsers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
    let org = staff.organization_id.clone();
    let user = state
        .db
        .write_as(&org, move |conn| {
            find(conn, &staff, &id)?;
            diesel::update(users::table.filter(users::id.eq(&id)))
                .set((
                    users::disabled_at.eq(None::<NaiveDateTime>),
                    users::updated_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            audit::record(
                conn,
                &staff.audit("user_enabled", Some("user"), Some(&id), Outcome::Success, None),
            )?;
            find(conn, &staff, &id)
        })
        .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(user)))
}

async fn reset_second_factor(
    auth: Authorized<ManageUsers>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
    let crypto = state.crypto.clone();
    let org = staff.organization_id.clone();
    let answer_id = id.clone();
    let uri = state
        .db
        .write_as(&org, move |conn| {
            let user = find(conn, &staff, &id)?;
            let uri = accounts::reset_totp(conn, &crypto, &id, &user.email)?;
            sessions::rotate_stamp(conn, &id)?;
            sessions::revoke_all_for_user(conn, &id, "second_factor_reset")?;
            audit::record(
                conn,
                &staff.audit(
                    "second_factor_reset",
                    Some("user"),
                    Some(&id),
                    Outcome::Success,
                    None,
                ),
            )?;
            Ok::<_, ApiError>(uri)
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": answer_id, "totp_uri": uri.expose() })))
}
