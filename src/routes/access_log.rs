//! `GET /api/v1/cases/{id}/access-log`: who looked at or changed a case, for supervisors of the case's
//! organization (`read_access_log`). Another organization's case answers 404. Reading the log is itself
//! audited against the case.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::registry::Routes;
use crate::audit::{self, Outcome};
use crate::auth::Authorized;
use crate::auth::permissions::ReadAccessLog;
use crate::db::schema::cases;
use crate::error::ApiError;
use crate::state::AppState;

/// The most entries returned.
const LIMIT: i64 = 1_000;

/// Registers the route.
pub fn register(r: &mut Routes<'_>) {
    r.guarded::<ReadAccessLog, _, _>(Method::GET, "/api/v1/cases/{id}/access-log", access_log);
}

#[derive(Serialize)]
struct Entry {
    seq: i64,
    at: NaiveDateTime,
    actor_kind: String,
    actor_id: Option<String>,
    action: String,
    outcome: String,
    request_id: Option<String>,
}

async fn access_log(
    auth: Authorized<ReadAccessLog>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case_id = path.into_inner();
    let org = staff.organization_id.clone();
    let answer_id = case_id.clone();
    let entries = state
        .db
        .write_as(&org, move |conn| {
            let exists: i64 = cases::table
                .filter(cases::id.eq(&case_id))
                .filter(cases::organization_id.eq(&staff.organization_id))
                .count()
                .get_result(conn)?;
            if exists == 0 {
                return Err(ApiError::not_found("case"));
            }
            let entries = audit::entries_for_target(conn, "case", &case_id, LIMIT)?;
            audit::record(
                conn,
                &staff.audit(
                    "case_access_log_read",
                    Some("case"),
                    Some(&case_id),
                    Outcome::Success,
                    Some(serde_json::json!({ "entries": entries.len() })),
                ),
            )?;
            Ok::<_, ApiError>(entries)
        })
        .await?;
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|e| Entry {
            seq: e.seq,
            at: e.at,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            action: e.action,
            outcome: e.outcome,
            request_id: e.request_id,
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "case_id": answer_id, "entries": entries })))
}
