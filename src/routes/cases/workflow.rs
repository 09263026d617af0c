//! `POST /api/v1/cases/{id}/status {"status", "reason"?, "note"?}` (`update_case`; 409
//! `invalid_transition` naming the allowed ones; a child case closed by a caseworker or operator answers
//! 202 with `closure_requested`), `POST /api/v1/cases/{id}/closure/approve {"note"?}` and
//! `/closure/reject {"reason"}` (`approve_child_case_closure`), and `POST /api/v1/cases/{id}/notes
//! {"text", "corrects"?}` (`update_case`), `PATCH /api/v1/cases/{id}/profile` (`update_case`; coded values,
//! `null` clears a field, `invalid_profile` names what is wrong), `PUT /api/v1/cases/{id}/consents/{purpose}
//! {"granted", "method", "note"?}` (`update_case`; withdrawable).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::auth::Authorized;
use crate::auth::permissions::{ApproveChildCaseClosure, UpdateCase};
use crate::cases::status::{Change, ClosureReason, Status};
use crate::cases::{self, consents, notes, profile, workflow};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusBody {
    status: String,
    reason: Option<String>,
    note: Option<String>,
}

pub(super) async fn change_status(
    auth: Authorized<UpdateCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<StatusBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let to = Status::parse(&body.status).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidStatus,
            "status must be one of open, in_progress, waiting, referred, closure_requested, closed",
        )
    })?;
    let reason = body
        .reason
        .as_deref()
        .map(|raw| ClosureReason::parse(raw).ok_or_else(|| ApiError::of(ErrorCode::InvalidClosureReason)))
        .transpose()?;
    let staff = auth.staff;
    let (case, crypto, actor) = (path.into_inner(), state.crypto.clone(), staff.clone());
    let done = cases::perform(&state.db, &staff, move |conn| {
        workflow::change_status(
            conn,
            &crypto,
            &actor,
            &case,
            Change { to, reason },
            body.note.as_deref(),
        )
    })
    .await?;
    Ok(if done.closure_requested {
        HttpResponse::Accepted().json(done)
    } else {
        HttpResponse::Ok().json(done)
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DecisionBody {
    reason: Option<String>,
    note: Option<String>,
}

async fn decide(
    staff: crate::auth::Staff,
    state: web::Data<AppState>,
    case: String,
    approve: bool,
    body: DecisionBody,
) -> Result<HttpResponse, ApiError> {
    let (crypto, actor) = (state.crypto.clone(), staff.clone());
    let text = if approve {
        body.note.or(body.reason)
    } else {
        body.reason
    };
    let done = cases::perform(&state.db, &staff, move |conn| {
        workflow::decide_closure(conn, &crypto, &actor, &case, approve, text.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(done))
}

pub(super) async fn approve_closure(
    auth: Authorized<ApproveChildCaseClosure>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    decide(auth.staff, state, path.into_inner(), true, body.into_inner()).await
}

pub(super) async fn reject_closure(
    auth: Authorized<ApproveChildCaseClosure>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<DecisionBody>,
) -> Result<HttpResponse, ApiError> {
    decide(auth.staff, state, path.into_inner(), false, body.into_inner()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoteBody {
    text: String,
    corrects: Option<String>,
}

pub(super) async fn add_note(
    auth: Authorized<UpdateCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NoteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let staff = auth.staff;
    let (case, crypto, actor) = (path.into_inner(), state.crypto.clone(), staff.clone());
    let done = cases::perform(&state.db, &staff, move |conn| {
        notes::add_note(conn, &crypto, &actor, &case, &body.text, body.corrects.as_deref())
    })
    .await?;
    Ok(HttpResponse::Created().json(done))
}

pub(super) async fn set_profile(
    auth: Authorized<UpdateCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<HttpResponse, ApiError> {
    let change = profile::ProfileChange::parse(&body.into_inner())?;
    let staff = auth.staff;
    let (case, crypto, actor) = (path.into_inner(), state.crypto.clone(), staff.clone());
    let shown = cases::perform(&state.db, &staff, move |conn| {
        profile::set_profile(conn, &crypto, &actor, &case, change)
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "profile": shown })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsentBody {
    granted: bool,
    method: String,
    note: Option<String>,
}

pub(super) async fn set_consent(
    auth: Authorized<UpdateCase>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<ConsentBody>,
) -> Result<HttpResponse, ApiError> {
    let (case, purpose) = path.into_inner();
    let body = body.into_inner();
    let purpose = consents::Purpose::parse(&purpose).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidConsent,
            format!("`{purpose}` is not a consent purpose"),
        )
    })?;
    let method = consents::Method::parse(&body.method).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidConsent,
            "method must be verbal, ivr, web or written",
        )
    })?;
    let staff = auth.staff;
    let (crypto, actor) = (state.crypto.clone(), staff.clone());
    let current = cases::perform(&state.db, &staff, move |conn| {
        consents::set_consent(
            conn,
            &crypto,
            &actor,
            &case,
            purpose,
            body.granted,
            method,
            body.note.as_deref(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "consents": current })))
}
