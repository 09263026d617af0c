//! `/metrics`: served only on the private listener, in Prometheus text, with the names operators alert
//! on — and no label or value that holds a phone number, a message or a channel id.

use crate::backend_tests;
use crate::helpers::{AppOptions, Backend, spawn_app_with};
use crate::intake::{Sms, channel, deliver};

backend_tests!(metrics_name_what_operators_watch_and_carry_no_personal_data);

async fn metrics_name_what_operators_watch_and_carry_no_personal_data(backend: Backend) {
    let app = spawn_app_with(
        backend,
        AppOptions::with(|raw| raw.metrics_bind = Some("127.0.0.1:0".to_owned())),
    )
    .await;
    let channel_id = channel(&app, Sms::Capcom6, Sms::Capcom6.secret()).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let phone = format!(
        "+77019{}",
        &unique.bytes().map(|b| (b % 10).to_string()).collect::<String>()[..6]
    );
    let text = format!("CANARY-{unique} pomogite zabrali pasport");
    let delivery = Sms::Capcom6.delivery(&channel_id, &format!("evt-{unique}"), &phone, &text);
    assert_eq!(deliver(&app, &delivery).await.0, 200);
    // A refused one: the same body signed for another channel id is not authentic for this one.
    let wrong = Sms::Capcom6.delivery(&uuid::Uuid::new_v4().to_string(), "evt-refused", &phone, &text);
    let refused = deliver(&app, &wrong).await.0;
    assert!(refused >= 400, "{refused}");
    app.settle().await;
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "never on the public listener"
    );

    let metrics_address = app.metrics_address.clone().expect("metrics listener");
    let response = app
        .client
        .get(format!("{metrics_address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    let body = response.text().await.unwrap();
    for expected in [
        "komek_http_requests_total{",
        "komek_http_request_duration_seconds_bucket{",
        "route=\"/webhooks/{provider}/{channel_id}/{action}\"",
        "komek_webhooks_total{provider=\"capcom6\",outcome=\"accepted\"}",
        "komek_webhooks_total{provider=\"capcom6\",outcome=\"refused\"}",
        "komek_reports_pending 0",
        "komek_reports_pending_oldest_age_seconds 0",
        "komek_outbox_pending ",
        "komek_outbox_dead_letters ",
        "komek_sla_breaches ",
        "komek_cases_sla_overdue ",
        "komek_ivr_calls_in_progress ",
        "komek_db_pool_connections ",
        "komek_db_pool_max_connections ",
        "komek_database_up 1",
        "# TYPE komek_http_request_duration_seconds histogram",
    ] {
        assert!(body.contains(expected), "missing `{expected}` in:\n{body}");
    }
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    for secret in [
        phone.as_str(),
        digits.as_str(),
        &digits[digits.len() - 7..],
        unique.as_str(),
        "pomogite",
        channel_id.as_str(),
        &channel_id[..8],
    ] {
        assert!(!body.contains(secret), "/metrics holds `{secret}`");
    }
    // Every label value is one of a closed set of shapes: route patterns, methods, statuses, providers.
    for line in body.lines().filter(|l| !l.starts_with('#') && l.contains('{')) {
        let labels = &line[line.find('{').unwrap() + 1..line.rfind('}').unwrap()];
        for pair in labels.split("\",").map(|p| p.trim_end_matches('"')) {
            let (name, value) = pair.split_once("=\"").unwrap();
            let ok = match name {
                "route" => value == "unmatched" || value.starts_with('/'),
                "method" => value.chars().all(|c| c.is_ascii_uppercase()) || value == "other",
                "status" => value.len() == 3 && value.chars().all(|c| c.is_ascii_digit()),
                "provider" => value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "outcome" => matches!(value, "accepted" | "refused"),
                "le" | "quantile" => true,
                _ => false,
            };
            assert!(ok, "unexpected label {name}={value} in {line}");
            if name == "route" {
                assert!(
                    !value.split('/').any(|seg| uuid::Uuid::parse_str(seg).is_ok()),
                    "a route label holds an id: {value}"
                );
            }
        }
    }
}
