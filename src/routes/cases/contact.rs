//! `PUT /api/v1/cases/{id}/safe-contact` (`manage_safe_contact`): how and when the case's contact may be
//! reached by SMS, and the agreed wording. `POST /api/v1/cases/{id}/sms` (`send_contact_sms`): send the
//! agreed wording (202 when queued; 409 with the reason's code when the safe-contact rules or the limits
//! refuse it — audited either way).

use actix_web::{HttpResponse, web};
use chrono::{NaiveTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authorized;
use crate::auth::permissions::{ManageSafeContact, SendContactSms};
use crate::cases::{self, contact};
use crate::error::{ApiError, ErrorCode};
use crate::notify::sms::{self, SafeContact, Window};
use crate::notify::worker::sms_policy;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowBody {
    from: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SafeContactBody {
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

pub(super) async fn put_safe_contact(
    auth: Authorized<ManageSafeContact>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SafeContactBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case = path.into_inner();
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
    let crypto = state.crypto.clone();
    let actor = staff.clone();
    let case_id = cases::perform(&state.db, &staff, move |conn| {
        contact::record_safe_contact(conn, &crypto, &actor, &case, &record)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "case_id": case_id, "recorded": true })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct SendBody {
    /// Optional: when given it must be the agreed wording.
    text: Option<String>,
}

pub(super) async fn send_sms(
    auth: Authorized<SendContactSms>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<SendBody>,
) -> Result<HttpResponse, ApiError> {
    let staff = auth.staff;
    let case = path.into_inner();
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
    let crypto = state.crypto.clone();
    let policy = sms_policy(&state.settings);
    let actor = staff.clone();
    // A refusal is answered 409 after its audit entry commits (the action returns Ok).
    let requested = cases::perform(&state.db, &staff, move |conn| {
        contact::request_sms(
            conn,
            &crypto,
            &policy,
            &actor,
            &case,
            text.as_deref(),
            Utc::now().naive_utc(),
        )
    })
    .await?;
    match requested.outcome {
        Err(blocked) => {
            tracing::info!(case.id = %requested.case_id, reason = blocked.code(), "outbound SMS refused");
            Err(ApiError::from(blocked))
        }
        Ok(outbox_id) => Ok(HttpResponse::Accepted().json(json!({
            "case_id": requested.case_id, "outbox_id": outbox_id, "status": "queued",
        }))),
    }
}
