//! `GET /healthz` (the process is alive) and `GET /readyz` (the database is reachable and fully migrated,
//! else 503 — what a load balancer or orchestrator should route on).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::db::{DbError, migrate};
use crate::error::ApiError;
use crate::state::AppState;

/// Mounts the health routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let backend = state.db.backend();
    let current = state
        .db
        .run(|conn| migrate::is_current(conn).map_err(DbError::from))
        .await
        .map_err(|err| {
            tracing::warn!(error.code = err.code(), error = %err, "readiness check failed");
            ApiError::unavailable()
        })?;
    if !current {
        tracing::warn!("readiness check: migrations are pending");
        return Err(ApiError::unavailable());
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "database": backend.as_str() })))
}
