//! `GET /api/v1/cases` (the queue, newest first, filtered, cursor-paginated) and `GET /api/v1/cases/{id}`
//! (one case in full, its read audited in the same transaction: without its audit entry nothing is
//! returned).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::audit::{self, Outcome};
use crate::auth::Authorized;
use crate::auth::permissions::ReadCases;
use crate::auth::policy;
use crate::cases::view::{self, CaseFilter, CaseSummary};
use crate::cases::{self, gate};
use crate::domain::Role;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::triage::RiskLevel;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    status: Option<String>,
    risk: Option<String>,
    child_victim: Option<bool>,
    cursor: Option<String>,
    limit: Option<i64>,
}

const STATUSES: [&str; 5] = ["open", "in_progress", "referred", "closure_requested", "closed"];

pub(super) async fn list_cases(
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
        return Err(ApiError::of(ErrorCode::InvalidCursor));
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
        .filter(|case| policy::case_access(&staff, &gate::facts(case)).allows_read())
        .map(CaseSummary::from)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "cases": cases, "next_cursor": next_cursor })))
}

pub(super) async fn read_case(
    auth: Authorized<ReadCases>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let id = path.into_inner();
    let crypto = state.crypto.clone();
    let actor = staff.clone();
    let detail = cases::perform(&state.db, &staff, move |conn| {
        let opened = gate::for_read(conn, &actor, &id, "case_read")?;
        let full = opened.access.shows_reporter();
        let details = json!({ "view": if full { "full" } else { "without_reporter" } });
        audit::record(
            conn,
            &actor.audit(
                "case_read",
                Some("case"),
                Some(&opened.case.id),
                Outcome::Success,
                Some(details),
            ),
        )?;
        Ok(view::detail(conn, &crypto, &opened.case, full)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(detail))
}
