//! The staff case API: `GET /api/v1/cases` (the queue, newest first, filtered, cursor-paginated),
//! `GET /api/v1/cases/{id}` (one case in full; `{id}` is the id or the `KMK-` reference) and
//! `POST /api/v1/cases/{id}/triage-override`. Every case is scoped to the caller's organization (another
//! organization's case is a 404) and filtered by the need-to-know policy; every read of a case and every
//! change is audited in the same transaction, so without its audit entry nothing is returned.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::registry::Routes;
use crate::audit::{self, Outcome};
use crate::auth::permissions::{OverrideTriage, ReadCases};
use crate::auth::policy::{self, CaseAccess, CaseFacts};
use crate::auth::{Authorized, Staff};
use crate::cases::overrides::{self, OverrideError, TriageOverride};
use crate::cases::view::{self, CaseFilter, CaseSummary, ViewError};
use crate::cases::{CaseError, CaseRow};
use crate::db::AnyConnection;
use crate::domain::Role;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::triage::{ExploitationType, RiskLevel};

/// Registers the case routes.
pub fn register(r: &mut Routes<'_>) {
    r.guarded::<ReadCases, _, _>(Method::GET, "/api/v1/cases", list_cases);
    r.guarded::<ReadCases, _, _>(Method::GET, "/api/v1/cases/{id}", read_case);
    r.guarded::<OverrideTriage, _, _>(
        Method::POST,
        "/api/v1/cases/{id}/triage-override",
        override_triage,
    );
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    risk: Option<String>,
    child_victim: Option<bool>,
    cursor: Option<String>,
    limit: Option<i64>,
}

const STATUSES: [&str; 5] = ["open", "in_progress", "referred", "closure_requested", "closed"];

fn facts(case: &CaseRow) -> CaseFacts<'_> {
    CaseFacts {
        organization_id: &case.organization_id,
        child_victim: case.child_victim,
        assignee_id: case.assignee_id.as_deref(),
    }
}

async fn list_cases(
    auth: Authorized<ReadCases>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidStatus,
            format!("status must be one of {}", STATUSES.join(", ")),
        ));
    }
    if let Some(risk) = &query.risk {
        risk.parse::<RiskLevel>()
            .map_err(|e| ApiError::new(ErrorCode::InvalidRisk, e.to_string()))?;
    }
    if let Some(cursor) = &query.cursor
        && uuid::Uuid::parse_str(cursor).is_err()
    {
        return Err(ApiError::new(
            ErrorCode::InvalidCursor,
            "use the next_cursor of the previous page",
        ));
    }
    let limit = query.limit.unwrap_or(50);
    if !(1..=view::MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {}", view::MAX_PAGE),
        ));
    }
    let staff = auth.staff;
    // The SQL filter mirrors the policy for whole groups of cases; the policy still decides per case.
    let filter = CaseFilter {
        status: query.status,
        risk: query.risk,
        child_victim: query.child_victim,
        assignee_id: (staff.role == Role::Caseworker).then(|| staff.user_id.clone()),
        or_unassigned: staff.role == Role::Caseworker && staff.on_duty,
        exclude_child: !staff.child_protection_trained && staff.role != Role::Supervisor,
        before_id: query.cursor,
        limit,
    };
    let org = staff.organization_id.clone();
    let rows = state
        .db
        .run_as(&staff.organization_id, move |conn| {
            view::list(conn, &org, &filter).map_err(ApiError::from)
        })
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|c| c.id.clone()))
        .flatten();
    let cases: Vec<CaseSummary> = rows
        .iter()
        .filter(|case| policy::case_access(&staff, &facts(case)).allows_read())
        .map(CaseSummary::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "cases": cases, "next_cursor": next_cursor })))
}

/// Loads a case of the caller's organization and records the access decision in the audit log. Returns
/// the decision and the case; `None` when there is no such case in the caller's organization.
fn load_audited(
    conn: &mut AnyConnection,
    staff: &Staff,
    id: &str,
    action: &str,
) -> Result<Option<(CaseAccess, CaseRow)>, ApiError> {
    let Some(case) = view::find(conn, &staff.organization_id, id)? else {
        return Ok(None);
    };
    let access = policy::case_access(staff, &facts(&case));
    if access != CaseAccess::NotFound {
        let outcome = if access.allows_read() {
            Outcome::Success
        } else {
            Outcome::Denied
        };
        let details = json!({ "view": if access.shows_reporter() { "full" } else { "without_reporter" } });
        audit::record(
            conn,
            &staff.audit(action, Some("case"), Some(&case.id), outcome, Some(details)),
        )?;
    }
    Ok(Some((access, case)))
}

fn refuse(access: Option<CaseAccess>) -> ApiError {
    match access {
        Some(CaseAccess::Forbidden) => ApiError::case_forbidden(),
        _ => ApiError::not_found("case"),
    }
}

async fn read_case(
    auth: Authorized<ReadCases>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
    let crypto = state.crypto.clone();
    let org = staff.organization_id.clone();
    let answer = state
        .db
        .write_as(&org, move |conn| {
            let Some((access, case)) = load_audited(conn, &staff, &id, "case_read")? else {
                return Ok(Err(None));
            };
            if !access.allows_read() {
                return Ok(Err(Some(access)));
            }
            let detail =
                view::detail(conn, &crypto, &case, access.shows_reporter()).map_err(|e| match e {
                    ViewError::Query(q) => ApiError::from(q),
                    ViewError::Crypto(c) => ApiError::from(c),
                })?;
            Ok::<_, ApiError>(Ok(detail))
        })
        .await?;
    match answer {
        Ok(detail) => Ok(HttpResponse::Ok().json(detail)),
        Err(access) => Err(refuse(access)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    risk: Option<RiskLevel>,
    exploitation_types: Option<Vec<ExploitationType>>,
    child_victim: Option<bool>,
    shelter_needed: Option<bool>,
    reason: String,
}

async fn override_triage(
    auth: Authorized<OverrideTriage>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<OverrideBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
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
    let org = staff.organization_id.clone();
    let answer = state
        .db
        .write_as(&org, move |conn| {
            let Some((access, case)) = load_audited(conn, &staff, &id, "case_triage_override")? else {
                return Ok(Err(None));
            };
            if !access.allows_read() {
                return Ok(Err(Some(access)));
            }
            let (before, after) = overrides::apply(conn, &crypto, &case, &staff.user_id, &change, deadline)
                .map_err(|e| match e {
                OverrideError::Case(CaseError::Query(q)) => ApiError::from(q),
                OverrideError::Case(CaseError::Crypto(c)) => ApiError::from(c),
                other => ApiError::new(ErrorCode::InvalidOverride, other.to_string()),
            })?;
            Ok::<_, ApiError>(Ok(
                json!({ "id": case.id, "reference": case.reference, "previous": before, "new": after }),
            ))
        })
        .await?;
    match answer {
        Ok(result) => Ok(HttpResponse::Ok().json(result)),
        Err(access) => Err(refuse(access)),
    }
}
