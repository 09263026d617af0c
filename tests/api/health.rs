//! `/healthz`, `/readyz`, the error envelope, request ids and security headers.

use crate::backend_tests;
use crate::helpers::{AppOptions, Backend, spawn_app, spawn_app_with};

backend_tests!(
    healthz_and_readyz_answer_200,
    readyz_is_503_while_migrations_are_pending,
    a_pool_timeout_is_answered_503,
    unknown_routes_get_the_json_error_envelope,
    every_response_has_security_headers_and_a_request_id,
);

async fn healthz_and_readyz_answer_200(backend: Backend) {
    let app = spawn_app(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    let expected = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
}

async fn readyz_is_503_while_migrations_are_pending(backend: Backend) {
    let app = spawn_app(backend).await;
    app.db
        .run(|conn| komek::db::migrate::revert_all(conn).map_err(komek::db::DbError::from))
        .await
        .unwrap();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
    assert!(
        !body.to_string().to_lowercase().contains("migration"),
        "5xx bodies say nothing internal: {body}"
    );
}

async fn a_pool_timeout_is_answered_503(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions {
            db_pool_size: 1,
            db_checkout_timeout_ms: 200,
            ..AppOptions::default()
        },
    )
    .await;
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    let db = app.db.clone();
    let holder = tokio::spawn(async move {
        db.run(move |_conn| {
            let _ = held_tx.send(());
            std::thread::sleep(std::time::Duration::from_millis(1_500));
            Ok::<(), komek::db::DbError>(())
        })
        .await
    });
    held_rx.await.unwrap();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or("")),
        Some("5")
    );
    holder.await.unwrap().unwrap();
    assert_eq!(
        app.get("/readyz").await.status(),
        200,
        "the pool recovers once the connection is back"
    );
}

async fn unknown_routes_get_the_json_error_envelope(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/no/such/route").await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

async fn every_response_has_security_headers_and_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/healthz", "/readyz", "/nothing-here"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert!(
            headers.get("x-request-id").is_some_and(|v| v.len() >= 8),
            "{path}"
        );
    }
    let echoed = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "req-abcdef123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "req-abcdef123");
    let forged = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert_ne!(forged.headers()["x-request-id"], "<script>alert(1)</script>");
}
