//! `POST /api/v1/cases/{id}/acknowledge` (`acknowledge_case`), `POST /api/v1/cases/{id}/assign`
//! (`assign_case`; the assignee is emailed) and `POST /api/v1/cases/{id}/triage-override`
//! (`override_triage`).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authorized;
use crate::auth::permissions::{AcknowledgeCase, AssignCase, OverrideTriage};
use crate::cases::overrides::TriageOverride;
use crate::cases::{self, overrides, taking};
use crate::error::ApiError;
use crate::state::AppState;
use crate::triage::{ExploitationType, RiskLevel};

pub(super) async fn acknowledge(
    auth: Authorized<AcknowledgeCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case = path.into_inner();
    let actor = staff.clone();
    let done = cases::perform(&state.db, &staff, move |conn| {
        taking::acknowledge(conn, &actor, &case)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "case_id": done.case_id,
        "acknowledged": true,
        "already_acknowledged": !done.changed,
        "acknowledged_at": done.acknowledged_at.map(|t| t.and_utc().to_rfc3339()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignBody {
    user_id: String,
}

pub(super) async fn assign(
    auth: Authorized<AssignCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<AssignBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case = path.into_inner();
    let assignee = body.into_inner().user_id;
    let actor = staff.clone();
    let done = cases::perform(&state.db, &staff, move |conn| {
        taking::assign(conn, &actor, &case, &assignee)
    })
    .await?;
    Ok(HttpResponse::Ok().json(done))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OverrideBody {
    risk: Option<RiskLevel>,
    exploitation_types: Option<Vec<ExploitationType>>,
    child_victim: Option<bool>,
    shelter_needed: Option<bool>,
    reason: String,
}

pub(super) async fn override_triage(
    auth: Authorized<OverrideTriage>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<OverrideBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case = path.into_inner();
    let body = body.into_inner();
    let change = TriageOverride {
        risk: body.risk,
        exploitation_types: body.exploitation_types,
        child_victim: body.child_victim,
        shelter_needed: body.shelter_needed,
        reason: body.reason,
    };
    let crypto = state.crypto.clone();
    let deadline = state.settings.critical_ack_deadline;
    let actor = staff.clone();
    let done = cases::perform(&state.db, &staff, move |conn| {
        overrides::override_triage(conn, &crypto, &actor, &case, &change, deadline)
    })
    .await?;
    Ok(HttpResponse::Ok().json(done))
}
