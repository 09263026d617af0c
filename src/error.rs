//! The one HTTP error model of the whole API: [`ApiError`], rendered as
//! `{"error": {"code": "snake_case", "message": "what to fix"}}` (plus `"details"` where a refusal names
//! what would be allowed). Every code is an [`ErrorCode`], and each code has exactly one HTTP status, so the
//! same refusal answers the same status and code on every route. The README's "Error codes" table lists
//! them all (a unit test keeps the two in step).
//!
//! Client errors say what is wrong; server errors say nothing internal (the cause goes to the log, once,
//! without personal data).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::DbError;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:ident, $meaning:literal; )*) => {
        /// A stable machine-readable error code, with its one HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( #[doc = $meaning] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the README table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as answered (`snake_case`).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),* }
            }

            /// The HTTP status every answer with this code has.
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status),* }
            }

            /// What the code means (the README table's third column).
            pub fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning),* }
            }
        }
    };
}

error_codes! {
    // 400: the request is malformed or a value is invalid; nothing was changed.
    InvalidJson = "invalid_json", BAD_REQUEST, "the body is not the JSON this route expects (the message names the field)";
    InvalidBody = "invalid_body", BAD_REQUEST, "the body could not be read";
    UnsupportedContentType = "unsupported_content_type", BAD_REQUEST, "send the body as application/json";
    InvalidForm = "invalid_form", BAD_REQUEST, "the form body could not be read";
    InvalidQuery = "invalid_query", BAD_REQUEST, "a query parameter is unknown or malformed";
    InvalidPath = "invalid_path", BAD_REQUEST, "a path segment is malformed";
    InvalidRequest = "invalid_request", BAD_REQUEST, "the request could not be read";
    InvalidInput = "invalid_input", BAD_REQUEST, "a value is invalid (the message says which and why)";
    InvalidWebhook = "invalid_webhook", BAD_REQUEST, "a provider's webhook body could not be parsed";
    InvalidEmail = "invalid_email", BAD_REQUEST, "not an email address";
    InvalidDisplayName = "invalid_display_name", BAD_REQUEST, "the display name is too long or holds control characters";
    InvalidRole = "invalid_role", BAD_REQUEST, "not a role";
    InvalidLanguage = "invalid_language", BAD_REQUEST, "not one of the languages Komek speaks (en, ru, kk, ky, tg, uz)";
    NothingToChange = "nothing_to_change", BAD_REQUEST, "the request changes nothing";
    PasswordTooShort = "password_too_short", BAD_REQUEST, "the new password is too short";
    PasswordTooLong = "password_too_long", BAD_REQUEST, "the new password is too long";
    PasswordTooCommon = "password_too_common", BAD_REQUEST, "the new password is a commonly used one";
    PasswordMatchesAccount = "password_matches_account", BAD_REQUEST, "the new password contains the account's name";
    PasswordUnchanged = "password_unchanged", BAD_REQUEST, "the new password is the current one";
    InvalidStatus = "invalid_status", BAD_REQUEST, "not a case status";
    InvalidClosureReason = "invalid_closure_reason", BAD_REQUEST, "closing needs one of the closure reasons";
    InvalidRisk = "invalid_risk", BAD_REQUEST, "not a risk level (critical, high, medium, low)";
    InvalidCursor = "invalid_cursor", BAD_REQUEST, "use the next_cursor of the previous page";
    InvalidLimit = "invalid_limit", BAD_REQUEST, "the page size is out of range";
    InvalidTriageStatus = "invalid_triage_status", BAD_REQUEST, "not a triage status (pending, done, collapsed, failed)";
    InvalidSource = "invalid_source", BAD_REQUEST, "not a report source (sms, voice, web, operator)";
    InvalidOverride = "invalid_override", BAD_REQUEST, "the triage override has no reason, changes nothing or puts a child case below high";
    InvalidTopic = "invalid_topic", BAD_REQUEST, "not a notification topic";
    InvalidWindow = "invalid_window", BAD_REQUEST, "a time window is not like 09:30";
    InvalidSafeContact = "invalid_safe_contact", BAD_REQUEST, "the safe-contact record is incomplete or out of range";
    TextTooLong = "text_too_long", BAD_REQUEST, "a text is longer than allowed";
    InvalidText = "invalid_text", BAD_REQUEST, "a text is empty or holds control characters";
    InvalidPhone = "invalid_phone", BAD_REQUEST, "not a phone number Komek can read";
    InvalidMedium = "invalid_medium", BAD_REQUEST, "not a medium of operator entry (phone, walk_in, email, other)";
    InvalidReason = "invalid_reason", BAD_REQUEST, "give a reason (1 to 2000 characters)";
    InvalidProfile = "invalid_profile", BAD_REQUEST, "a victim-profile value is not one of its codes";
    InvalidConsent = "invalid_consent", BAD_REQUEST, "not a consent purpose or method";
    InvalidChannel = "invalid_channel", BAD_REQUEST, "the channel's provider, number, language or secret is invalid";
    // 401
    Unauthorized = "unauthorized", UNAUTHORIZED, "sign in: the access token is missing, invalid, expired or revoked";
    InvalidCredentials = "invalid_credentials", UNAUTHORIZED, "the email address, password or second-factor code is not correct (one answer for all)";
    // 403
    Forbidden = "forbidden", FORBIDDEN, "your role does not hold the permission this route needs";
    PasswordChangeRequired = "password_change_required", FORBIDDEN, "change your one-time password first (POST /api/v1/me/password)";
    CsrfFailed = "csrf_failed", FORBIDDEN, "a cookie-authenticated change without the matching X-CSRF-Token header";
    CurrentPasswordIncorrect = "current_password_incorrect", FORBIDDEN, "the current password is not correct";
    CaseForbidden = "case_forbidden", FORBIDDEN, "this case may be opened or changed only by child-protection trained staff or supervisors";
    WebhookNotVerified = "webhook_not_verified", FORBIDDEN, "the webhook's signature or source could not be verified";
    // 404
    NotFound = "not_found", NOT_FOUND, "nothing there, or nothing the caller may know is there (another organization's record)";
    // 409: the request is well formed but the current state does not allow it; nothing was changed.
    UserExists = "user_exists", CONFLICT, "a user with this email address already exists";
    LastAdmin = "last_admin", CONFLICT, "the organization's last enabled admin cannot lose the role";
    CannotDisableSelf = "cannot_disable_self", CONFLICT, "an admin cannot disable their own account";
    AssigneeNotTrained = "assignee_not_trained", CONFLICT, "a child case can only be assigned to a supervisor or child-protection trained staff";
    NoContact = "no_contact", CONFLICT, "the case has no contact to record this for";
    InvalidTransition = "invalid_transition", CONFLICT, "the case cannot move to that status from its current one (details name the allowed ones)";
    NoClosureRequest = "no_closure_request", CONFLICT, "the case has no closure request to approve or reject";
    ClosureNeedsSupervisor = "closure_needs_supervisor", CONFLICT, "closing (or merging away) a child case needs a supervisor";
    SameCase = "same_case", CONFLICT, "the report or case is already there";
    CaseClosed = "case_closed", CONFLICT, "the case is closed; reopen it first";
    NoteNotFound = "note_not_found", CONFLICT, "the note being corrected is not a note of this case";
    NoContactNumber = "no_contact_number", CONFLICT, "the case has no contact with a phone number";
    NoSafeContact = "no_safe_contact", CONFLICT, "no safe-contact record: record how and when the person may be contacted first";
    SmsNotAgreed = "sms_not_agreed", CONFLICT, "the safe-contact record does not allow SMS";
    OutsideContactWindow = "outside_contact_window", CONFLICT, "it is outside the time windows the person agreed to";
    WordingNotAgreed = "wording_not_agreed", CONFLICT, "the text is not the wording agreed with the person";
    DestinationNotAllowed = "destination_not_allowed", CONFLICT, "the destination number is not in an allowed range";
    NoSmsChannel = "no_sms_channel", CONFLICT, "no enabled channel that can send SMS reached this case";
    CaseDailySmsCap = "case_daily_sms_cap", CONFLICT, "the per-case daily SMS limit is reached";
    CaseSmsCap = "case_sms_cap", CONFLICT, "the per-case SMS limit is reached";
    GlobalDailySmsCap = "global_daily_sms_cap", CONFLICT, "the service-wide daily SMS limit is reached";
    ChannelNumberTaken = "channel_number_taken", CONFLICT, "another enabled channel of this provider has that number";
    // 413, 429, 500, 503
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, "the body is larger than this route accepts";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, "too many requests; retry after the Retry-After header's seconds";
    InternalError = "internal_error", INTERNAL_SERVER_ERROR, "something failed inside Komek; nothing internal is said (the log has the cause)";
    ServiceUnavailable = "service_unavailable", SERVICE_UNAVAILABLE, "the database is unreachable or busy; retry shortly";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered to an HTTP client: a code, a message saying what to fix, and for 500s the cause (logged,
/// never answered).
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
    retry_after: Option<u64>,
    /// Why a request was not authenticated, for the log only (`token_expired`, `session_revoked`...).
    log_reason: Option<&'static str>,
    cause: Option<anyhow::Error>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|c| c.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl ApiError {
    /// An error with a code and a message saying what to fix.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            log_reason: None,
            cause: None,
        }
    }

    /// An error whose message is the code's meaning.
    pub fn of(code: ErrorCode) -> Self {
        ApiError::new(code, code.meaning())
    }

    /// Adds structured details to the answer (e.g. the allowed transitions).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404: nothing there — or nothing this caller may know is there.
    pub fn not_found(what: &'static str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// 401: no valid credentials; `reason` goes to the log only.
    pub fn unauthenticated(reason: &'static str) -> Self {
        ApiError {
            log_reason: Some(reason),
            ..ApiError::of(ErrorCode::Unauthorized)
        }
    }

    /// 401: a login failed (unknown account, wrong password or code, disabled: one answer for all).
    pub fn invalid_credentials() -> Self {
        ApiError::of(ErrorCode::InvalidCredentials)
    }

    /// 403: the caller's role lacks `permission`.
    pub fn permission_denied(permission: &'static str) -> Self {
        ApiError::new(
            ErrorCode::Forbidden,
            format!("your role does not allow this ({permission})"),
        )
    }

    /// 403: the case gate refused (a child case for staff without child-protection training).
    pub fn case_forbidden() -> Self {
        ApiError::of(ErrorCode::CaseForbidden)
    }

    /// 413.
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body is larger than this endpoint accepts ({limit} bytes)"),
        )
    }

    /// 429, retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        ApiError {
            retry_after: Some(seconds.max(1)),
            ..ApiError::new(
                ErrorCode::RateLimited,
                format!("too many attempts; try again in {seconds} seconds"),
            )
        }
    }

    /// 503: the database is unreachable or overloaded; callers that retry should retry.
    pub fn unavailable() -> Self {
        ApiError {
            retry_after: Some(5),
            ..ApiError::new(
                ErrorCode::ServiceUnavailable,
                "the service is temporarily unavailable; try again shortly",
            )
        }
    }

    /// 500 from an unexpected failure. The cause is logged, never answered.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError {
            cause: Some(err.into()),
            ..ApiError::new(ErrorCode::InternalError, "internal error")
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message answered.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.cause {
            tracing::error!(error = %format!("{cause:#}"), "request failed");
        }
        if let Some(reason) = self.log_reason {
            tracing::info!(auth.reason = reason, "request not authenticated");
        }
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        response.json(Envelope {
            error: Body {
                code: self.code.as_str(),
                message: &self.message,
                details: self.details.as_ref(),
            },
        })
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error.code = err.code(), "database unavailable");
            ApiError::unavailable()
        } else if matches!(err, DbError::Query(diesel::result::Error::NotFound)) {
            ApiError::not_found("record")
        } else {
            ApiError::internal(err)
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        ApiError::from(DbError::from(err))
    }
}

impl From<crate::audit::AuditError> for ApiError {
    fn from(err: crate::audit::AuditError) -> Self {
        // Without its audit entry, personal data is not returned: the transaction rolls back.
        ApiError::internal(err)
    }
}

impl From<crate::crypto::CryptoError> for ApiError {
    fn from(err: crate::crypto::CryptoError) -> Self {
        ApiError::internal(err)
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(err: crate::accounts::AccountError) -> Self {
        use crate::accounts::AccountError;
        match err {
            AccountError::Invalid(message) => ApiError::new(ErrorCode::InvalidInput, message),
            AccountError::UserExists => ApiError::of(ErrorCode::UserExists),
            AccountError::Db(db) => db.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::auth::password_policy::WeakPassword> for ApiError {
    fn from(weak: crate::auth::password_policy::WeakPassword) -> Self {
        use crate::auth::password_policy::WeakPassword;
        let code = match weak {
            WeakPassword::TooShort => ErrorCode::PasswordTooShort,
            WeakPassword::TooLong => ErrorCode::PasswordTooLong,
            WeakPassword::Common => ErrorCode::PasswordTooCommon,
            WeakPassword::LooksLikeAccount => ErrorCode::PasswordMatchesAccount,
        };
        ApiError::new(code, weak.to_string())
    }
}

impl From<crate::auth::jwt::TokenError> for ApiError {
    fn from(err: crate::auth::jwt::TokenError) -> Self {
        ApiError::unauthenticated(err.code())
    }
}

impl From<crate::notify::sms::Blocked> for ApiError {
    fn from(blocked: crate::notify::sms::Blocked) -> Self {
        use crate::notify::sms::Blocked;
        let code = match blocked {
            Blocked::NoPhone => ErrorCode::NoContactNumber,
            Blocked::NoSafeContact => ErrorCode::NoSafeContact,
            Blocked::SmsNotAgreed => ErrorCode::SmsNotAgreed,
            Blocked::OutsideWindow => ErrorCode::OutsideContactWindow,
            Blocked::WordingNotAgreed => ErrorCode::WordingNotAgreed,
            Blocked::DestinationNotAllowed => ErrorCode::DestinationNotAllowed,
            Blocked::NoChannel => ErrorCode::NoSmsChannel,
            Blocked::CaseDailyCap => ErrorCode::CaseDailySmsCap,
            Blocked::CaseCap => ErrorCode::CaseSmsCap,
            Blocked::GlobalDailyCap => ErrorCode::GlobalDailySmsCap,
        };
        ApiError::new(code, blocked.to_string())
    }
}

/// Converts actix's extractor failures (bad JSON, bad path, body too large) into the JSON envelope.
pub fn extractor_error(err: actix_web::Error) -> actix_web::Error {
    use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError, UrlencodedError};
    let api = if let Some(json) = err.as_error::<JsonPayloadError>() {
        match json {
            JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::payload_too_large(*limit),
            JsonPayloadError::Overflow { limit } => ApiError::payload_too_large(*limit),
            JsonPayloadError::ContentType => ApiError::of(ErrorCode::UnsupportedContentType),
            JsonPayloadError::Deserialize(e) => ApiError::new(ErrorCode::InvalidJson, e.to_string()),
            other => ApiError::new(ErrorCode::InvalidBody, other.to_string()),
        }
    } else if let Some(form) = err.as_error::<UrlencodedError>() {
        match form {
            UrlencodedError::Overflow { limit, .. } => ApiError::payload_too_large(*limit),
            other => ApiError::new(ErrorCode::InvalidForm, other.to_string()),
        }
    } else if let Some(PayloadError::Overflow) = err.as_error::<PayloadError>() {
        ApiError::payload_too_large(0)
    } else if let Some(query) = err.as_error::<QueryPayloadError>() {
        ApiError::new(ErrorCode::InvalidQuery, query.to_string())
    } else if let Some(path) = err.as_error::<actix_web::error::PathError>() {
        ApiError::new(ErrorCode::InvalidPath, path.to_string())
    } else {
        ApiError::new(ErrorCode::InvalidRequest, err.to_string())
    };
    api.into()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The README's error-code table: code → (status, meaning).
    fn readme_table() -> BTreeMap<String, (u16, String)> {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap_or_default();
        let mut table = BTreeMap::new();
        let mut inside = false;
        for line in readme.lines() {
            if line.starts_with("## ") {
                inside = line.trim() == "## Error codes";
                continue;
            }
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            if !inside || cells.len() != 3 {
                continue;
            }
            let code = cells[0].trim_matches('`');
            if let Ok(status) = cells[1].parse::<u16>() {
                table.insert(code.to_owned(), (status, cells[2].to_owned()));
            }
        }
        table
    }

    /// The table as it should read, to paste into the README when a code is added.
    fn expected_table() -> String {
        let mut out = String::from("| code | status | meaning |\n|---|---|---|\n");
        for code in ErrorCode::ALL {
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.as_str(),
                code.status().as_u16(),
                code.meaning()
            ));
        }
        out
    }

    #[test]
    fn every_code_is_in_the_readme_table_with_its_status_and_nothing_else_is() {
        let table = readme_table();
        let expected = expected_table();
        for code in ErrorCode::ALL {
            let row = table.get(code.as_str());
            assert!(
                row.is_some_and(|(status, _)| *status == code.status().as_u16()),
                "README `## Error codes` lacks `{code}` with status {}; the table should be:\n{expected}",
                code.status().as_u16()
            );
        }
        for code in table.keys() {
            assert!(
                ErrorCode::ALL.iter().any(|c| c.as_str() == code),
                "README lists `{code}`, which no error has; the table should be:\n{expected}"
            );
        }
    }

    #[test]
    fn codes_are_unique_snake_case_and_statuses_are_errors() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert!(
            ErrorCode::ALL
                .iter()
                .all(|c| c.status().is_client_error() || c.status().is_server_error())
        );
    }

    #[test]
    fn internal_errors_say_nothing_internal() {
        let err = ApiError::internal(anyhow::anyhow!("secret detail"));
        assert_eq!(err.to_string(), "internal error");
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
