//! `POST /api/v1/reports` (`create_report`): operator entry — a contact taken outside the gateways,
//! recorded, triaged and opening or joining a case (201 with the report id and the case reference).
//! `POST /api/v1/reports/{id}/move {"case_id"}` (`update_case`): move a misthreaded report.
//!
//! `GET /api/v1/reports`: the intake log for operators and supervisors — every report of the caller's
//! organization, newest first, with its source, triage state and case, but not its text (the text is read
//! inside its case, where each read is audited). Cursor-paginated; filters by triage status and source.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::cases::SafeContactBody;
use super::registry::Routes;
use crate::auth::Authorized;
use crate::auth::permissions::{CreateReport, ReadReports, UpdateCase};
use crate::cases::entry::{self, Entry, Medium};
use crate::cases::view::MAX_PAGE;
use crate::cases::{self, threading};
use crate::db::schema::{cases as cases_t, reports};
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::webform::i18n::Lang;

/// Registers the routes.
pub fn register(r: &mut Routes<'_>) {
    r.guarded::<ReadReports, _, _>(Method::GET, "/api/v1/reports", list_reports);
    r.guarded::<CreateReport, _, _>(Method::POST, "/api/v1/reports", create_report);
    r.guarded::<UpdateCase, _, _>(Method::POST, "/api/v1/reports/{id}/move", move_report);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    medium: String,
    text: String,
    language: Option<String>,
    phone: Option<String>,
    case_id: Option<String>,
    safe_contact: Option<SafeContactBody>,
}

async fn create_report(
    auth: Authorized<CreateReport>,
    state: web::Data<AppState>,
    body: web::Json<EntryBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let staff = auth.staff;
    let medium = Medium::parse(&body.medium).ok_or_else(|| ApiError::of(ErrorCode::InvalidMedium))?;
    let language = body
        .language
        .as_deref()
        .map(|raw| {
            Lang::ALL
                .into_iter()
                .find(|l| l.code() == raw)
                .map(Lang::code)
                .ok_or_else(|| ApiError::of(ErrorCode::InvalidLanguage))
        })
        .transpose()?;
    let safe_contact = body
        .safe_contact
        .map(|record| record.into_record(&staff.user_id))
        .transpose()?;
    let entry = Entry {
        medium,
        text: body.text,
        language,
        phone: body.phone,
        case: body.case_id,
        safe_contact,
    };
    let ctx = state.process_context();
    let actor = staff.clone();
    let done = cases::perform(&state.db, &staff, move |conn| {
        entry::record_entry(conn, &ctx, &actor, &entry)
    })
    .await?;
    Ok(HttpResponse::Created().json(done))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    case_id: String,
}

async fn move_report(
    auth: Authorized<UpdateCase>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<MoveBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let (report, to) = (path.into_inner(), body.into_inner().case_id);
    let actor = staff.clone();
    let done = cases::perform(&state.db, &staff, move |conn| {
        threading::move_report(conn, &actor, &report, &to)
    })
    .await?;
    Ok(HttpResponse::Ok().json(done))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    triage_status: Option<String>,
    source: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize, Queryable)]
struct ReportSummary {
    id: String,
    source: String,
    provider: Option<String>,
    channel_id: Option<String>,
    triage_status: String,
    case_id: Option<String>,
    case_reference: Option<String>,
    received_at: NaiveDateTime,
    created_at: NaiveDateTime,
}

async fn list_reports(
    auth: Authorized<ReadReports>,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    if let Some(status) = &query.triage_status
        && !["pending", "done", "collapsed", "failed"].contains(&status.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidTriageStatus,
            "use pending, done, collapsed or failed",
        ));
    }
    if let Some(source) = &query.source
        && !["sms", "voice", "web", "operator"].contains(&source.as_str())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidSource,
            "use sms, voice, web or operator",
        ));
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
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let org = auth.staff.organization_id.clone();
    let rows = state
        .db
        .run_as(&auth.staff.organization_id, move |conn| {
            let mut q = reports::table
                .left_join(cases_t::table)
                .filter(reports::organization_id.eq(org.clone()))
                .select((
                    reports::id,
                    reports::source,
                    reports::provider,
                    reports::channel_id,
                    reports::triage_status,
                    reports::case_id,
                    cases_t::reference.nullable(),
                    reports::received_at,
                    reports::created_at,
                ))
                .order(reports::id.desc())
                .limit(limit)
                .into_boxed();
            if let Some(status) = query.triage_status {
                q = q.filter(reports::triage_status.eq(status));
            }
            if let Some(source) = query.source {
                q = q.filter(reports::source.eq(source));
            }
            if let Some(cursor) = query.cursor {
                q = q.filter(reports::id.lt(cursor));
            }
            q.load::<ReportSummary>(conn).map_err(ApiError::from)
        })
        .await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({ "reports": rows, "next_cursor": next_cursor })))
}
