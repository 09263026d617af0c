//! The staff case API on real intake: the queue and one case in full, tenancy (another organization's case
//! is a 404), need-to-know (child cases, the reporter's identity), one audit entry per case read, the
//! operator's triage override, and the reports log.

use komek::domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, Tokens, spawn_app};
use crate::intake::{Sms, channel, deliver};

backend_tests!(
    an_sms_case_is_listed_and_read_in_full_with_its_timeline,
    the_queue_filters_and_pages_with_a_cursor,
    another_organizations_case_is_not_found,
    child_cases_need_training_and_caseworkers_never_see_the_reporter,
    an_on_duty_caseworker_may_pick_up_unassigned_cases,
    every_case_read_writes_one_audit_entry,
    an_operator_overrides_triage_with_a_reason_and_the_old_result_is_kept,
    the_reports_log_is_for_operators_and_supervisors,
);

/// Delivers an SMS through a capcom6 channel of a new organization; returns (organization id, case id).
async fn case_from_sms(app: &TestApp, from: &str, text: &str) -> (String, String) {
    let channel_id = channel(app, Sms::Capcom6, Sms::Capcom6.secret()).await;
    let org = organization_of_channel(app, &channel_id).await;
    let (status, body) = deliver(
        app,
        &Sms::Capcom6.delivery(&channel_id, &uuid::Uuid::new_v4().to_string(), from, text),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.settle().await;
    let case_id = latest_case(app, &org).await;
    (org, case_id)
}

async fn organization_of_channel(app: &TestApp, channel_id: &str) -> String {
    use diesel::prelude::*;
    use komek::db::schema::channels;
    let id = channel_id.to_owned();
    app.db
        .run(move |conn| {
            channels::table
                .find(&id)
                .select(channels::organization_id)
                .first::<String>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap()
}

async fn latest_case(app: &TestApp, org: &str) -> String {
    use diesel::prelude::*;
    use komek::db::schema::cases;
    let org = org.to_owned();
    app.db
        .run(move |conn| {
            cases::table
                .filter(cases::organization_id.eq(&org))
                .order(cases::id.desc())
                .select(cases::id)
                .first::<String>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, path: &str, tokens: &Tokens) -> (u16, Value) {
    let response = app
        .authed(Method::GET, path, &tokens.access)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn an_sms_case_is_listed_and_read_in_full_with_its_timeline(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org, case_id) = case_from_sms(&app, "+77015551001", "pomogite zabrali pasport ne platyat").await;
    let (_, operator) = app.staff(&org, Role::Operator).await;

    let (status, list) = get_json(&app, "/api/v1/cases", &operator).await;
    assert_eq!(status, 200, "{list}");
    let cases = list["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["id"], case_id.as_str());
    assert!(
        cases[0].get("reporter").is_none() && !list.to_string().contains("7015551001"),
        "the queue carries no personal data"
    );

    let (status, case) = get_json(&app, &format!("/api/v1/cases/{case_id}"), &operator).await;
    assert_eq!(status, 200, "{case}");
    for field in [
        "id",
        "reference",
        "status",
        "risk",
        "child_victim",
        "shelter_needed",
        "exploitation_types",
        "language",
        "created_at",
        "timeline",
    ] {
        assert!(case.get(field).is_some(), "case has `{field}`: {case}");
    }
    assert!(case["reference"].as_str().unwrap().starts_with("KMK-"));
    assert_eq!(case["status"], "open");
    assert!(
        case["exploitation_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "labour"),
        "{case}"
    );
    let kinds: Vec<&str> = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"opened") && kinds.contains(&"triage"),
        "{kinds:?}"
    );
    assert_eq!(case["reports"][0]["text"], "pomogite zabrali pasport ne platyat");
    assert_eq!(
        case["reporter"]["phone"], "+77015551001",
        "an operator handling the case sees the reporter"
    );

    // The reference works as well as the id.
    let reference = case["reference"].as_str().unwrap().to_owned();
    let (status, by_reference) = get_json(
        &app,
        &format!("/api/v1/cases/{}", reference.to_lowercase()),
        &operator,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(by_reference["id"], case_id.as_str());
    let (status, _) = get_json(&app, "/api/v1/cases/KMK-NOSUCH", &operator).await;
    assert_eq!(status, 404);
}

async fn the_queue_filters_and_pages_with_a_cursor(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("queue-ngo", None).await;
    for child in [false, false, true] {
        app.insert_case(&org, child, None).await;
    }
    let (_, supervisor) = app.staff(&org, Role::Supervisor).await;
    let (status, first) = get_json(&app, "/api/v1/cases?limit=2", &supervisor).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["cases"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = get_json(
        &app,
        &format!("/api/v1/cases?limit=2&cursor={cursor}"),
        &supervisor,
    )
    .await;
    assert_eq!(second["cases"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let mut seen: Vec<String> = first["cases"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["cases"].as_array().unwrap())
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    seen.dedup();
    assert_eq!(seen.len(), 3, "pages do not overlap");
    let (_, children) = get_json(&app, "/api/v1/cases?child_victim=true", &supervisor).await;
    assert_eq!(children["cases"].as_array().unwrap().len(), 1);
    let (_, high) = get_json(&app, "/api/v1/cases?risk=high&status=open", &supervisor).await;
    assert_eq!(high["cases"].as_array().unwrap().len(), 3);
    for bad in [
        "risk=urgent",
        "status=lost",
        "cursor=zzz",
        "limit=0",
        "limit=5000",
        "colour=red",
    ] {
        let (status, body) = get_json(&app, &format!("/api/v1/cases?{bad}"), &supervisor).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["code"].is_string());
    }
}

async fn another_organizations_case_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org_a, case_a) = case_from_sms(&app, "+77015551002", "pomogite").await;
    let org_b = app.create_org("other-ngo", None).await;
    let (_, operator_b) = app.staff(&org_b, Role::Operator).await;
    let (_, supervisor_b) = app.staff(&org_b, Role::Supervisor).await;
    for tokens in [&operator_b, &supervisor_b] {
        let (status, body) = get_json(&app, &format!("/api/v1/cases/{case_a}"), tokens).await;
        assert_eq!(status, 404, "{body}");
        let (_, list) = get_json(&app, "/api/v1/cases", tokens).await;
        assert_eq!(list["cases"].as_array().unwrap().len(), 0);
        let response = app
            .authed(
                Method::POST,
                &format!("/api/v1/cases/{case_a}/triage-override"),
                &tokens.access,
            )
            .json(&json!({ "risk": "low", "reason": "not ours" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    let (_, operator_a) = app.staff(&org_a, Role::Operator).await;
    assert_eq!(
        get_json(&app, &format!("/api/v1/cases/{case_a}"), &operator_a)
            .await
            .0,
        200
    );
}

async fn child_cases_need_training_and_caseworkers_never_see_the_reporter(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org, adult_case) = case_from_sms(&app, "+77015551003", "zabrali pasport ne platyat").await;
    let caseworker = app.create_user(&org, Role::Caseworker).await;
    app.set_user_flags(&caseworker.id, false, false).await;
    let untrained = app.login(&caseworker).await;
    let child_case = app.insert_case(&org, true, Some(&caseworker.id)).await;
    assign(&app, &adult_case, &caseworker.id).await;

    let (status, body) = get_json(&app, &format!("/api/v1/cases/{child_case}"), &untrained).await;
    assert_eq!(
        status, 403,
        "an untrained caseworker cannot open a child case: {body}"
    );
    let (status, adult) = get_json(&app, &format!("/api/v1/cases/{adult_case}"), &untrained).await;
    assert_eq!(status, 200, "{adult}");
    assert!(
        adult["reporter"].is_null(),
        "a caseworker sees the case without the reporter's identity"
    );
    assert!(!adult.to_string().contains("7015551003"));
    let (_, list) = get_json(&app, "/api/v1/cases", &untrained).await;
    let ids: Vec<&str> = list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![adult_case.as_str()],
        "the queue hides what the caller may not open"
    );

    app.set_user_flags(&caseworker.id, false, true).await;
    let trained = app.login(&caseworker).await;
    assert_eq!(
        get_json(&app, &format!("/api/v1/cases/{child_case}"), &trained)
            .await
            .0,
        200
    );
    let (_, supervisor) = app.staff(&org, Role::Supervisor).await;
    assert_eq!(
        get_json(&app, &format!("/api/v1/cases/{child_case}"), &supervisor)
            .await
            .0,
        200
    );
}

async fn assign(app: &TestApp, case_id: &str, user_id: &str) {
    use diesel::prelude::*;
    use komek::db::schema::cases;
    let (case_id, user_id) = (case_id.to_owned(), user_id.to_owned());
    app.db
        .write(move |conn| {
            diesel::update(cases::table.find(&case_id))
                .set(cases::assignee_id.eq(&user_id))
                .execute(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
}

async fn every_case_read_writes_one_audit_entry(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org, case_id) = case_from_sms(&app, "+77015551004", "pomogite").await;
    let (operator, tokens) = app.staff(&org, Role::Operator).await;
    let reads = |entries: &[komek::audit::StoredEntry]| {
        entries
            .iter()
            .filter(|e| e.action == "case_read" && e.target_id.as_deref() == Some(case_id.as_str()))
            .count()
    };
    let before = reads(&app.audit_entries().await);
    for n in 1..=3 {
        assert_eq!(
            get_json(&app, &format!("/api/v1/cases/{case_id}"), &tokens)
                .await
                .0,
            200
        );
        let entries = app.audit_entries().await;
        assert_eq!(reads(&entries), before + n, "one audit entry per read");
        let last = entries.iter().rev().find(|e| e.action == "case_read").unwrap();
        assert_eq!(last.actor_id.as_deref(), Some(operator.id.as_str()));
    }
    // The supervisor's access log shows who looked.
    let (_, supervisor) = app.staff(&org, Role::Supervisor).await;
    let (status, log) = get_json(&app, &format!("/api/v1/cases/{case_id}/access-log"), &supervisor).await;
    assert_eq!(status, 200, "{log}");
    assert!(log.to_string().contains(&operator.id));
}

async fn an_operator_overrides_triage_with_a_reason_and_the_old_result_is_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org, case_id) = case_from_sms(&app, "+77015551005", "ne platyat zarplatu").await;
    let (_, operator) = app.staff(&org, Role::Operator).await;
    let (_, original) = get_json(&app, &format!("/api/v1/cases/{case_id}"), &operator).await;
    let outbox_before = app.count("outbox WHERE topic = 'case_critical'").await;
    let path = format!("/api/v1/cases/{case_id}/triage-override");

    let refused = app
        .authed(Method::POST, &path, &operator.access)
        .json(&json!({ "risk": "critical", "reason": " " }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "a reason is required");
    let child_low = app
        .authed(Method::POST, &path, &operator.access)
        .json(&json!({ "child_victim": true, "risk": "low", "reason": "caller is 15" }))
        .send()
        .await
        .unwrap();
    assert_eq!(child_low.status(), 400, "a child case is at least high");
    let unknown = app
        .authed(Method::POST, &path, &operator.access)
        .json(&json!({ "risk": "apocalyptic", "reason": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);

    let (_, caseworker) = app.staff(&org, Role::Caseworker).await;
    let denied = app
        .authed(Method::POST, &path, &caseworker.access)
        .json(&json!({ "risk": "critical", "reason": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403, "caseworkers do not override triage");

    let response = app
        .authed(Method::POST, &path, &operator.access)
        .json(&json!({ "risk": "critical", "shelter_needed": true, "exploitation_types": ["labour", "domestic_servitude"], "reason": "called back: locked in tonight" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, case) = get_json(&app, &format!("/api/v1/cases/{case_id}"), &operator).await;
    assert_eq!(case["risk"], "critical");
    assert_eq!(case["shelter_needed"], true);
    assert!(
        case["sla_due_at"].is_string(),
        "a case made critical gets an acknowledgement deadline"
    );
    let event = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "triage_override")
        .unwrap()
        .clone();
    assert_eq!(
        event["data"]["previous"]["risk"], original["risk"],
        "the overridden result is kept: {event}"
    );
    assert_eq!(event["data"]["new"]["risk"], "critical");
    assert!(event["actor_user_id"].is_string(), "who did it");
    assert!(
        !event["data"].to_string().contains("locked in tonight"),
        "the reason is sealed, not in the event data"
    );
    assert!(
        event["text"]
            .as_str()
            .is_some_and(|t| t.contains("locked in tonight")),
        "whoever may open the case reads the reason: {event}"
    );
    assert_eq!(
        app.count("case_events WHERE data LIKE '%locked in tonight%'")
            .await,
        0,
        "the reason is stored encrypted"
    );
    assert_eq!(
        app.count("outbox WHERE topic = 'case_critical'").await,
        outbox_before + 1
    );
    assert!(
        app.audit_entries()
            .await
            .iter()
            .any(|e| e.action == "case_triage_override")
    );
}

async fn the_reports_log_is_for_operators_and_supervisors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (org, case_id) = case_from_sms(&app, "+77015551006", "pomogite").await;
    let (_, operator) = app.staff(&org, Role::Operator).await;
    let (status, body) = get_json(&app, "/api/v1/reports", &operator).await;
    assert_eq!(status, 200, "{body}");
    let reports = body["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["case_id"], case_id.as_str());
    assert_eq!(reports[0]["source"], "sms");
    assert!(reports[0].get("text").is_none() && !body.to_string().contains("pomogite"));
    let (_, caseworker) = app.staff(&org, Role::Caseworker).await;
    assert_eq!(get_json(&app, "/api/v1/reports", &caseworker).await.0, 403);
    let (status, _) = get_json(&app, "/api/v1/reports?source=fax", &operator).await;
    assert_eq!(status, 400);
}

async fn set_on_duty(app: &TestApp, user_id: &str, on_duty: bool) {
    use diesel::prelude::*;
    use komek::db::schema::users;
    let id = user_id.to_owned();
    app.db
        .write(move |conn| {
            diesel::update(users::table.find(&id))
                .set(users::on_duty.eq(on_duty))
                .execute(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
}

async fn an_on_duty_caseworker_may_pick_up_unassigned_cases(backend: Backend) {
    let app = spawn_app(backend).await;
    // A critical case emails on-duty caseworkers: the link they get must open.
    let (org, case_id) = case_from_sms(
        &app,
        "+77015551007",
        "pomogite srochno menya b'yut zabrali pasport",
    )
    .await;
    let (caseworker, tokens) = app.staff(&org, Role::Caseworker).await;
    let path = format!("/api/v1/cases/{case_id}");
    assert_eq!(
        get_json(&app, &path, &tokens).await.0,
        404,
        "off duty, an unassigned case is not theirs"
    );
    set_on_duty(&app, &caseworker.id, true).await;
    let (status, case) = get_json(&app, &path, &tokens).await;
    assert_eq!(
        status, 200,
        "on duty (read live, no new login), they can pick it up: {case}"
    );
    assert!(
        case["reporter"].is_null(),
        "still without the reporter's identity"
    );
    let (_, list) = get_json(&app, "/api/v1/cases", &tokens).await;
    assert_eq!(list["cases"].as_array().unwrap().len(), 1);
    let colleague = app.create_user(&org, Role::Caseworker).await;
    let other = app.insert_case(&org, false, Some(&colleague.id)).await;
    assert_eq!(
        get_json(&app, &format!("/api/v1/cases/{other}"), &tokens).await.0,
        404,
        "another caseworker's case"
    );
    set_on_duty(&app, &caseworker.id, false).await;
    assert_eq!(get_json(&app, &path, &tokens).await.0, 404);
}
