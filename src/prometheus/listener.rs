//! The private `/metrics` server: its own listener (`metrics_bind`), one worker, one route. It shares no
//! middleware or routes with the public server, so nothing else is reachable through it.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::db::Db;

struct Scrape {
    handle: PrometheusHandle,
    db: Db,
}

async fn metrics(scrape: web::Data<Scrape>) -> HttpResponse {
    super::sample::refresh(&scrape.db).await;
    scrape.handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(scrape.handle.render())
}

/// Builds the metrics server on `listener`; the caller runs it and stops it with the main server.
pub fn build(listener: TcpListener, handle: PrometheusHandle, db: Db) -> std::io::Result<Server> {
    let scrape = web::Data::new(Scrape { handle, db });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(scrape.clone())
            .route("/metrics", web::get().to(metrics))
            .default_service(web::to(HttpResponse::NotFound))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}
