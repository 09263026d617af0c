//! Notification and contact routes:
//!
//! * `POST /api/v1/cases/{id}/acknowledge` (`acknowledge_case`): stop a case's acknowledgement clock.
//! * `POST /api/v1/cases/{id}/assign` (`assign_case`): assign a case to a staff member of the organization
//!   (a child case only to a supervisor or child-protection-trained staff), who is told by email.
//! * `PUT /api/v1/cases/{id}/safe-contact` (`manage_safe_contact`): record how and when the case's contact
//!   may be reached by SMS, and the agreed wording.
//! * `POST /api/v1/cases/{id}/sms` (`send_contact_sms`): send the agreed wording to the contact (202 when
//!   queued; 409 with the reason's code when the safe-contact rules or the limits refuse it — audited either
//!   way).
//! * `GET /api/v1/notifications/recipients`, `PUT|DELETE /api/v1/notifications/recipients/{topic}/{user_id}`
//!   (`manage_recipients`): who is told what in the caller's organization.
//! * `GET /api/v1/notifications/dead`, `POST /api/v1/notifications/dead/requeue` (`manage_notifications`):
//!   the dead-letter alert for supervisors, and putting those messages back in the queue.
//!
//! Case routes follow the need-to-know policy: another organization's case is a 404, a child case for
//! untrained staff a 403 (audited). Every change is audited in the same transaction.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{NaiveTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;

use super::registry::Routes;
use crate::audit::{self, Outcome};
use crate::auth::permissions::{
    AcknowledgeCase, AssignCase, ManageNotifications, ManageRecipients, ManageSafeContact, SendContactSms,
};
use crate::auth::policy::{CaseAccess, CaseFacts, case_access};
use crate::auth::{Authorized, Staff};
use crate::db::AnyConnection;
use crate::db::schema::{cases, users};
use crate::error::{ApiError, ErrorCode};
use crate::notify::recipients::{self, RecipientError, Topic};
use crate::notify::sms::{self, SafeContact, SmsError, Window};
use crate::notify::worker::{dead_letters, requeue_dead, sms_policy};
use crate::state::AppState;

/// Registers the routes.
pub fn register(r: &mut Routes<'_>) {
    r.guarded::<AcknowledgeCase, _, _>(Method::POST, "/api/v1/cases/{id}/acknowledge", acknowledge);
    r.guarded::<AssignCase, _, _>(Method::POST, "/api/v1/cases/{id}/assign", assign);
    r.guarded::<ManageSafeContact, _, _>(Method::PUT, "/api/v1/cases/{id}/safe-contact", put_safe_contact);
    r.guarded::<SendContactSms, _, _>(Method::POST, "/api/v1/cases/{id}/sms", send_sms);
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

impl From<SmsError> for ApiError {
    fn from(err: SmsError) -> Self {
        match err {
            SmsError::Query(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<RecipientError> for ApiError {
    fn from(err: RecipientError) -> Self {
        match err {
            RecipientError::UnknownUser => ApiError::not_found("staff account"),
            RecipientError::Query(e) => e.into(),
        }
    }
}

/// Loads the case's facts and decides the caller's access. A denial is audited (the caller returns `Ok`
/// so that the entry commits); `Err` only for "not found" and failures.
fn case_gate(conn: &mut AnyConnection, staff: &Staff, case_id: &str, action: &str) -> Result<bool, ApiError> {
    let row: Option<(String, bool, Option<String>)> = cases::table
        .filter(cases::id.eq(case_id))
        .filter(cases::organization_id.eq(&staff.organization_id))
        .select((cases::organization_id, cases::child_victim, cases::assignee_id))
        .first(conn)
        .optional()?;
    let Some((organization_id, child_victim, assignee_id)) = row else {
        return Err(ApiError::not_found("case"));
    };
    let facts = CaseFacts {
        organization_id: &organization_id,
        child_victim,
        assignee_id: assignee_id.as_deref(),
    };
    match case_access(staff, &facts) {
        CaseAccess::NotFound => Err(ApiError::not_found("case")),
        CaseAccess::Forbidden => {
            audit::record(
                conn,
                &staff.audit(action, Some("case"), Some(case_id), Outcome::Denied, None),
            )?;
            Ok(false)
        }
        CaseAccess::WithoutReporter | CaseAccess::Full => Ok(true),
    }
}

fn forbidden_case() -> ApiError {
    ApiError::case_forbidden()
}

async fn acknowledge(
    auth: Authorized<AcknowledgeCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case_id = path.into_inner();
    let org = staff.organization_id.clone();
    let answer = state
        .db
        .write_as(&org, move |conn| {
            if !case_gate(conn, &staff, &case_id, "case_acknowledged")? {
                return Ok(None);
            }
            let changed = crate::notify::acknowledge(conn, &case_id, &staff.user_id)?;
            let at: Option<chrono::NaiveDateTime> = cases::table
                .find(&case_id)
                .select(cases::acknowledged_at)
                .first(conn)?;
            if changed {
                audit::record(
                    conn,
                    &staff.audit(
                        "case_acknowledged",
                        Some("case"),
                        Some(&case_id),
                        Outcome::Success,
                        None,
                    ),
                )?;
            }
            Ok::<_, ApiError>(Some((case_id, changed, at)))
        })
        .await?;
    let Some((case_id, changed, at)) = answer else {
        return Err(forbidden_case());
    };
    Ok(HttpResponse::Ok().json(json!({
        "case_id": case_id,
        "acknowledged": true,
        "already_acknowledged": !changed,
        "acknowledged_at": at.map(|t| t.and_utc().to_rfc3339()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    user_id: String,
}

async fn assign(
    auth: Authorized<AssignCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<AssignBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case_id = path.into_inner();
    let assignee = body.into_inner().user_id;
    let org = staff.organization_id.clone();
    let answer = state
        .db
        .write_as(&org, move |conn| {
            if !case_gate(conn, &staff, &case_id, "case_assigned")? {
                return Ok(None);
            }
            let candidate: Option<(String, bool)> = users::table
                .filter(users::id.eq(&assignee))
                .filter(users::organization_id.eq(&staff.organization_id))
                .filter(users::disabled_at.is_null())
                .filter(users::role.eq_any(["caseworker", "supervisor", "operator"]))
                .select((users::role, users::child_protection_trained))
                .first(conn)
                .optional()?;
            let Some((role, trained)) = candidate else {
                return Err(ApiError::not_found("staff account"));
            };
            let child: bool = cases::table
                .find(&case_id)
                .select(cases::child_victim)
                .first(conn)?;
            if child && !(role == "supervisor" || trained) {
                return Err(ApiError::of(ErrorCode::AssigneeNotTrained));
            }
            diesel::update(cases::table.find(&case_id))
                .set((
                    cases::assignee_id.eq(Some(&assignee)),
                    cases::updated_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            let case_org = staff.organization_id.clone();
            crate::cases::add_event(
                conn,
                (&case_id, &case_org),
                "assigned",
                Some(&staff.user_id),
                None,
                Some(json!({ "assignee_id": assignee })),
            )?;
            audit::record(
                conn,
                &staff.audit(
                    "case_assigned",
                    Some("case"),
                    Some(&case_id),
                    Outcome::Success,
                    Some(json!({ "assignee_id": assignee })),
                ),
            )?;
            // Someone assigning a case to themselves needs no email.
            let notified = assignee != staff.user_id
                && crate::notify::notify_case(
                    conn,
                    &case_id,
                    crate::notify::CaseNotice::Assigned,
                    Some(&assignee),
                )? > 0;
            Ok::<_, ApiError>(Some((case_id, assignee, notified)))
        })
        .await?;
    let Some((case_id, assignee, notified)) = answer else {
        return Err(forbidden_case());
    };
    Ok(HttpResponse::Ok().json(json!({ "case_id": case_id, "assignee_id": assignee, "notified": notified })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowBody {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SafeContactBody {
    sms: bool,
    #[serde(default)]
    windows: Vec<WindowBody>,
    utc_offset_minutes: i32,
    #[serde(default)]
    wording: String,
}

fn parse_time(raw: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(raw.trim(), "%H:%M").map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidWindow,
            format!("`{raw}` is not a time like 09:30"),
        )
    })
}

async fn put_safe_contact(
    auth: Authorized<ManageSafeContact>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SafeContactBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case_id = path.into_inner();
    let body = body.into_inner();
    let windows = body
        .windows
        .iter()
        .map(|w| {
            Ok(Window {
                from: parse_time(&w.from)?,
                to: parse_time(&w.to)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let record = SafeContact {
        sms: body.sms,
        windows,
        utc_offset_minutes: body.utc_offset_minutes,
        wording: body.wording.trim().to_owned(),
        recorded_by: staff.user_id.clone(),
        recorded_at: Utc::now().naive_utc(),
    };
    record
        .validate()
        .map_err(|message| ApiError::new(ErrorCode::InvalidSafeContact, message))?;
    let org = staff.organization_id.clone();
    let crypto = state.crypto.clone();
    let answer = state
        .db
        .write_as(&org, move |conn| {
            if !case_gate(conn, &staff, &case_id, "safe_contact_recorded")? {
                return Ok(None);
            }
            let Some(_) = sms::record_safe_contact(conn, &crypto, &case_id, &record)? else {
                return Err(ApiError::of(ErrorCode::NoContact));
            };
            let case_org = staff.organization_id.clone();
            crate::cases::add_event(
                conn,
                (&case_id, &case_org),
                "safe_contact_recorded",
                Some(&staff.user_id),
                None,
                Some(json!({ "sms": record.sms, "windows": record.windows.len() })),
            )?;
            audit::record(
                conn,
                &staff.audit(
                    "safe_contact_recorded",
                    Some("case"),
                    Some(&case_id),
                    Outcome::Success,
                    Some(json!({ "sms": record.sms })),
                ),
            )?;
            Ok::<_, ApiError>(Some(case_id))
        })
        .await?;
    let Some(case_id) = answer else {
        return Err(forbidden_case());
    };
    Ok(HttpResponse::Ok().json(json!({ "case_id": case_id, "recorded": true })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SendBody {
    /// Optional: when given it must be the agreed wording.
    text: Option<String>,
}

enum SendAnswer {
    Forbidden,
    Blocked(sms::Blocked),
    Queued(String),
}

async fn send_sms(
    auth: Authorized<SendContactSms>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SendBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case_id = path.into_inner();
    let text = body.into_inner().text;
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > sms::MAX_WORDING)
    {
        return Err(ApiError::new(
            ErrorCode::TextTooLong,
            "the text is longer than any agreed wording",
        ));
    }
    let org = staff.organization_id.clone();
    let crypto = state.crypto.clone();
    let policy = sms_policy(&state.settings);
    let answer_case = case_id.clone();
    let answer = state
        .db
        .write_as(&org, move |conn| {
            if !case_gate(conn, &staff, &case_id, "contact_sms_requested")? {
                return Ok(SendAnswer::Forbidden);
            }
            let result = sms::request_send(
                conn,
                &crypto,
                &policy,
                &case_id,
                text.as_deref(),
                Utc::now().naive_utc(),
            )?;
            let (outcome, details) = match &result {
                Ok(id) => (Outcome::Success, json!({ "outbox_id": id })),
                Err(blocked) => (Outcome::Denied, json!({ "reason": blocked.code() })),
            };
            audit::record(
                conn,
                &staff.audit(
                    "contact_sms_requested",
                    Some("case"),
                    Some(&case_id),
                    outcome,
                    Some(details),
                ),
            )?;
            // A refusal is answered 409, and its audit entry commits (this closure returns Ok).
            Ok::<_, ApiError>(match result {
                Ok(id) => SendAnswer::Queued(id),
                Err(blocked) => SendAnswer::Blocked(blocked),
            })
        })
        .await?;
    match answer {
        SendAnswer::Forbidden => Err(forbidden_case()),
        SendAnswer::Blocked(blocked) => {
            tracing::info!(case.id = %answer_case, reason = blocked.code(), "outbound SMS refused");
            Err(ApiError::from(blocked))
        }
        SendAnswer::Queued(id) => Ok(HttpResponse::Accepted().json(json!({
            "case_id": answer_case, "outbox_id": id, "status": "queued",
        }))),
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
