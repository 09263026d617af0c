//! The HTTP error: one enum with a stable `code` per variant, rendered as
//! `{"error": {"code": "snake_case", "message": "what to fix"}}`. Client errors say what is wrong;
//! server errors say nothing internal (the cause goes to the log, once, without personal data).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::db::DbError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a value is invalid (400).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// No valid credentials (401).
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing there — or nothing this caller may know is there (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The body is larger than this route accepts (413).
    #[error("the request body is larger than this endpoint accepts ({limit} bytes)")]
    PayloadTooLarge { limit: usize },
    /// Too many requests (429).
    #[error("too many requests; try again later")]
    RateLimited,
    /// The database is unreachable or overloaded (503): callers that retry should retry.
    #[error("the service is temporarily unavailable; try again shortly")]
    Unavailable,
    /// Anything else (500). The cause is logged, never answered.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// A 400 with a code and a message saying what to fix.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// Wraps an unexpected failure as a 500.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } | ApiError::Conflict { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::Unavailable => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = %format!("{cause:#}"), "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unavailable) {
            response.insert_header(("Retry-After", "5"));
        }
        response.json(Envelope {
            error: Body {
                code: self.code(),
                message: self.to_string(),
            },
        })
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        if err.is_unavailable() {
            tracing::warn!(error.code = err.code(), error = %err, "database unavailable");
            ApiError::Unavailable
        } else if matches!(err, DbError::Query(diesel::result::Error::NotFound)) {
            ApiError::NotFound("record")
        } else {
            ApiError::Internal(err.into())
        }
    }
}

impl From<crate::audit::AuditError> for ApiError {
    fn from(err: crate::audit::AuditError) -> Self {
        // Without its audit entry, personal data is not returned: the transaction rolls back.
        ApiError::Internal(err.into())
    }
}

impl From<crate::crypto::CryptoError> for ApiError {
    fn from(err: crate::crypto::CryptoError) -> Self {
        ApiError::Internal(err.into())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> Self {
        ApiError::from(DbError::from(err))
    }
}

/// Converts actix's extractor failures (bad JSON, bad path, body too large) into the JSON envelope.
pub fn extractor_error(err: actix_web::Error) -> actix_web::Error {
    use actix_web::error::{JsonPayloadError, PayloadError, QueryPayloadError, UrlencodedError};
    let api = if let Some(json) = err.as_error::<JsonPayloadError>() {
        match json {
            JsonPayloadError::OverflowKnownLength { limit, .. } => {
                ApiError::PayloadTooLarge { limit: *limit }
            }
            JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit: *limit },
            JsonPayloadError::ContentType => {
                ApiError::bad_request("unsupported_content_type", "send the body as application/json")
            }
            JsonPayloadError::Deserialize(e) => ApiError::bad_request("invalid_json", e.to_string()),
            other => ApiError::bad_request("invalid_body", other.to_string()),
        }
    } else if let Some(form) = err.as_error::<UrlencodedError>() {
        match form {
            UrlencodedError::Overflow { limit, .. } => ApiError::PayloadTooLarge { limit: *limit },
            other => ApiError::bad_request("invalid_form", other.to_string()),
        }
    } else if let Some(PayloadError::Overflow) = err.as_error::<PayloadError>() {
        ApiError::PayloadTooLarge { limit: 0 }
    } else if let Some(query) = err.as_error::<QueryPayloadError>() {
        ApiError::bad_request("invalid_query", query.to_string())
    } else if let Some(path) = err.as_error::<actix_web::error::PathError>() {
        ApiError::bad_request("invalid_path", path.to_string())
    } else {
        ApiError::bad_request("invalid_request", err.to_string())
    };
    api.into()
}
