//! Notification routes (case actions — acknowledge, assign, safe contact, SMS — live with the case
//! routes, `routes::cases`):
//!
//! * `GET /api/v1/notifications/recipients`, `PUT|DELETE /api/v1/notifications/recipients/{topic}/{user_id}`
//!   (`manage_recipients`): who is told what in the caller's organization.
//! * `GET /api/v1/notifications/dead`, `POST /api/v1/notifications/dead/requeue` (`manage_notifications`):
//!   the dead-letter alert for supervisors, and putting those messages back in the queue.
//!
//! Every change is audited in the same transaction.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::registry::Routes;
use crate::audit::{self, Outcome};
use crate::auth::permissions::{ManageNotifications, ManageRecipients};
use crate::auth::{Authorized, Staff};
use crate::error::{ApiError, ErrorCode};
use crate::notify::recipients::{self, RecipientError, Topic};
use crate::notify::worker::{dead_letters, requeue_dead};
use crate::state::AppState;

/// Registers the routes.
pub fn register(r: &mut Routes<'_>) {
    r.guarded::<ManageRecipients, _, _>(Method::GET, "/api/v1/notifications/recipients", list_recipients);
    r.guarded::<ManageRecipients, _, _>(
        Method::PUT,
        "/api/v1/notifications/recipients/{topic}/{user_id}",
        add_recipient,
    );
    r.guarded::<ManageRecipients, _, _>(
        Method::DELETE,
        "/api/v1/notifications/recipients/{topic}/{user_id}",
        remove_recipient,
    );
    r.guarded::<ManageNotifications, _, _>(Method::GET, "/api/v1/notifications/dead", list_dead);
    r.guarded::<ManageNotifications, _, _>(Method::POST, "/api/v1/notifications/dead/requeue", requeue);
}

impl From<RecipientError> for ApiError {
    fn from(err: RecipientError) -> Self {
        match err {
            RecipientError::UnknownUser => ApiError::not_found("staff account"),
            RecipientError::Query(e) => e.into(),
        }
    }
}

async fn list_recipients(
    auth: Authorized<ManageRecipients>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let org = auth.staff.organization_id.clone();
    let scope = org.clone();
    let (configured, effective) = state
        .db
        .run_as(&scope, move |conn| {
            let configured = recipients::list(conn, &org)?;
            let mut effective = serde_json::Map::new();
            for topic in Topic::ALL {
                effective.insert(
                    topic.as_str().to_owned(),
                    json!(recipients::resolve(conn, &org, topic)?),
                );
            }
            Ok::<_, ApiError>((configured, effective))
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "configured": configured, "effective": effective })))
}

fn parse_topic(raw: &str) -> Result<Topic, ApiError> {
    raw.parse()
        .map_err(|message: String| ApiError::new(ErrorCode::InvalidTopic, message))
}

async fn change_recipient(
    staff: Staff,
    state: web::Data<AppState>,
    path: (String, String),
    add: bool,
) -> Result<HttpResponse, ApiError> {
    let topic = parse_topic(&path.0)?;
    let user_id = path.1;
    let org = staff.organization_id.clone();
    let changed = state
        .db
        .write_as(&org, move |conn| {
            let user = recipients::find_staff(conn, &staff.organization_id, &user_id)?;
            let changed = if add {
                recipients::add(conn, &staff.organization_id, topic, &user)?
            } else {
                recipients::remove(conn, &staff.organization_id, topic, &user)?
            };
            if changed {
                audit::record(
                    conn,
                    &staff.audit(
                        if add {
                            "notification_recipient_added"
                        } else {
                            "notification_recipient_removed"
                        },
                        Some("user"),
                        Some(&user),
                        Outcome::Success,
                        Some(json!({ "topic": topic.as_str() })),
                    ),
                )?;
            }
            Ok::<_, ApiError>(changed)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "topic": topic.as_str(), "changed": changed })))
}

async fn add_recipient(
    auth: Authorized<ManageRecipients>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    change_recipient(auth.staff, state, path.into_inner(), true).await
}

async fn remove_recipient(
    auth: Authorized<ManageRecipients>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    change_recipient(auth.staff, state, path.into_inner(), false).await
}

async fn list_dead(
    auth: Authorized<ManageNotifications>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let org = auth.staff.organization_id.clone();
    let scope = org.clone();
    let items = state
        .db
        .run_as(&scope, move |conn| {
            Ok::<_, ApiError>(dead_letters(conn, &org, 500)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "count": items.len(), "items": items })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RequeueBody {
    id: Option<String>,
}

async fn requeue(
    auth: Authorized<ManageNotifications>,
    state: web::Data<AppState>,
    body: web::Json<RequeueBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = body.into_inner().id;
    let org = staff.organization_id.clone();
    let n = state
        .db
        .write_as(&org, move |conn| {
            let n = requeue_dead(conn, Some(&staff.organization_id), id.as_deref())?;
            audit::record(
                conn,
                &staff.audit(
                    "notifications_requeued",
                    Some("outbox"),
                    id.as_deref(),
                    Outcome::Success,
                    Some(json!({ "count": n })),
                ),
            )?;
            Ok::<_, ApiError>(n)
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "requeued": n })))
}
