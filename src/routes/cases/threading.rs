//! `POST /api/v1/cases/{id}/merge {"into": case_id}` (`update_case`): every report and the timeline move
//! into the other case; this one closes as a duplicate.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::auth::Authorized;
use crate::auth::permissions::UpdateCase;
use crate::cases::{self, threading};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MergeBody {
    into: String,
}

pub(super) async fn merge(
    auth: Authorized<UpdateCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<MergeBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let (case, into) = (path.into_inner(), body.into_inner().into);
    let (crypto, actor) = (state.crypto.clone(), staff.clone());
    let done = cases::perform(&state.db, &staff, move |conn| {
        threading::merge(conn, &crypto, &actor, &case, &into)
    })
    .await?;
    Ok(HttpResponse::Ok().json(done))
}
