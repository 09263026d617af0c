//! The route table: every route of the service is mounted here, so one file shows the whole HTTP surface.
//! Each resource module exposes `configure(cfg)`.

pub mod health;
pub mod webhooks;

use actix_web::web;

use crate::error::ApiError;

/// Mounts every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure)
        .configure(webhooks::configure)
        .configure(crate::webform::configure);
}

/// The answer for any path that matches no route.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}
