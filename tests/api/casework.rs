//! Case work over the API: the status workflow, a child case's closure with a supervisor, notes — each
//! action with its permission (403 for roles without it), tenancy (404 for another organization's case),
//! its timeline event and audit entry, and bad input answering 4xx with nothing changed.

use komek::domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, Tokens, spawn_app};

backend_tests!(
    the_status_workflow_moves_a_case_and_refuses_impossible_changes,
    a_child_case_closes_only_with_a_supervisor,
    notes_are_sealed_append_only_and_corrected_by_new_notes,
    an_operator_entry_opens_a_triaged_case_or_joins_one,
    a_report_moves_and_a_case_merges_where_they_should,
    the_victim_profile_takes_coded_values_and_seals_free_text,
    consent_is_recorded_per_purpose_and_withdrawable,
);

/// An organization with a channel and one signed-in member of each role, and another organization.
pub struct World {
    pub app: TestApp,
    pub org: String,
    pub channel: String,
    pub supervisor: Tokens,
    pub operator: Tokens,
    pub caseworker: (String, Tokens),
    pub admin: Tokens,
    pub outsider: Tokens,
}

impl World {
    pub async fn new(backend: Backend) -> World {
        let app = spawn_app(backend).await;
        let org = app.create_org("ngo-work", Some("KZ")).await;
        let channel = app.sms_channel(&org).await;
        let (_, supervisor) = app.staff(&org, Role::Supervisor).await;
        let (_, operator) = app.staff(&org, Role::Operator).await;
        let (cw, caseworker) = app.staff(&org, Role::Caseworker).await;
        let (_, admin) = app.staff(&org, Role::Admin).await;
        let other = app.create_org("ngo-else", Some("KZ")).await;
        let (_, outsider) = app.staff(&other, Role::Supervisor).await;
        World {
            app,
            org,
            channel,
            supervisor,
            operator,
            caseworker: (cw.id, caseworker),
            admin,
            outsider,
        }
    }

    /// A case opened by an SMS; returns its id.
    pub async fn sms_case(&self, event: &str, from: &str, text: &str) -> String {
        assert_eq!(self.app.send_sms(&self.channel, event, from, text).await, 200);
        let query = format!("reports WHERE provider_event_id = '{event}' AND case_id IS NOT NULL");
        assert_eq!(self.app.count(&query).await, 1);
        self.case_of_event(event).await
    }

    pub async fn case_of_event(&self, event: &str) -> String {
        use diesel::prelude::*;
        use komek::db::schema::reports;
        let event = event.to_owned();
        self.app
            .db
            .run(move |conn| {
                reports::table
                    .filter(reports::provider_event_id.eq(&event))
                    .select(reports::case_id.assume_not_null())
                    .first::<String>(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap()
    }

    /// Calls the API; returns the status and the JSON body.
    pub async fn call(&self, method: Method, path: &str, tokens: &Tokens, body: Value) -> (u16, Value) {
        let mut request = self.app.authed(method.clone(), path, &tokens.access);
        if method != Method::GET {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn case(&self, case_id: &str) -> Value {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/api/v1/cases/{case_id}"),
                &self.supervisor,
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// How many timeline events of `kind` the case has.
    pub async fn events(&self, case_id: &str, kind: &str) -> i64 {
        self.app
            .count(&format!(
                "case_events WHERE case_id = '{case_id}' AND kind = '{kind}'"
            ))
            .await
    }

    /// How many audit entries of `action` about the case end with `outcome`.
    pub async fn audited(&self, case_id: &str, action: &str, outcome: &str) -> usize {
        self.app
            .audit_entries()
            .await
            .iter()
            .filter(|e| e.action == action && e.target_id.as_deref() == Some(case_id) && e.outcome == outcome)
            .count()
    }

    /// A snapshot of what a refused request must leave alone: the case row's status and the counts of its
    /// events, reports and outbox rows.
    pub async fn snapshot(&self, case_id: &str) -> (Value, i64, i64, i64) {
        let case = self.case(case_id).await;
        (
            json!([case["status"], case["closure_reason"], case["assignee_id"]]),
            self.app
                .count(&format!("case_events WHERE case_id = '{case_id}'"))
                .await,
            self.app
                .count(&format!("reports WHERE case_id = '{case_id}'"))
                .await,
            self.app
                .count(&format!("outbox WHERE case_id = '{case_id}'"))
                .await,
        )
    }

    /// Checks that `path` refuses every role in `refused` with 403 and another organization's supervisor
    /// with 404, changing nothing.
    pub async fn assert_guarded(&self, case_id: &str, path: &str, body: Value, refused: &[&Tokens]) {
        let before = self.snapshot(case_id).await;
        for tokens in refused {
            let (status, answer) = self.call(Method::POST, path, tokens, body.clone()).await;
            assert_eq!(status, 403, "{path}: {answer}");
        }
        let (status, answer) = self.call(Method::POST, path, &self.outsider, body).await;
        assert_eq!(status, 404, "another organization's case: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
        assert_eq!(self.snapshot(case_id).await, before, "{path}: nothing changed");
    }
}

async fn the_status_workflow_moves_a_case_and_refuses_impossible_changes(backend: Backend) {
    let w = World::new(backend).await;
    let case = w
        .sms_case("st-1", "+77015552001", "pomogite zabrali pasport")
        .await;
    let path = format!("/api/v1/cases/{case}/status");
    w.assert_guarded(&case, &path, json!({ "status": "in_progress" }), &[&w.admin])
        .await;

    for to in ["in_progress", "waiting", "in_progress"] {
        let (status, body) = w
            .call(Method::POST, &path, &w.operator, json!({ "status": to }))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], to);
    }
    assert_eq!(w.events(&case, "status_changed").await, 3);
    assert_eq!(w.audited(&case, "case_status_changed", "success").await, 3);
    let (_, queue) = w
        .call(
            Method::GET,
            "/api/v1/cases?status=in_progress",
            &w.operator,
            Value::Null,
        )
        .await;
    assert_eq!(queue["cases"].as_array().map(Vec::len), Some(1), "{queue}");

    // Impossible, unreasoned or unknown changes: 4xx, nothing changed.
    let before = w.snapshot(&case).await;
    let (status, body) = w
        .call(Method::POST, &path, &w.operator, json!({ "status": "referred" }))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "invalid_transition");
    assert_eq!(body["error"]["details"]["allowed"], json!(["waiting", "closed"]));
    let (status, body) = w
        .call(Method::POST, &path, &w.operator, json!({ "status": "closed" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_closure_reason"))
    );
    let (status, body) = w
        .call(
            Method::POST,
            &path,
            &w.operator,
            json!({ "status": "waiting", "reason": "resolved" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_closure_reason"))
    );
    let (status, body) = w
        .call(Method::POST, &path, &w.operator, json!({ "status": "asleep" }))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_status"))
    );
    let (status, _) = w
        .call(
            Method::POST,
            &path,
            &w.operator,
            json!({ "status": "closed", "reason": "bored" }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(w.snapshot(&case).await, before);

    // Closing with a reason and a note; the note is sealed and shown in the timeline.
    let note = format!("closing-note-{}", uuid::Uuid::new_v4().simple());
    let (status, body) = w
        .call(
            Method::POST,
            &path,
            &w.operator,
            json!({ "status": "closed", "reason": "no_further_contact", "note": note }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let shown = w.case(&case).await;
    assert_eq!(shown["status"], "closed");
    assert_eq!(shown["closure_reason"], "no_further_contact");
    let last = shown["timeline"]
        .as_array()
        .and_then(|t| t.last())
        .cloned()
        .unwrap();
    assert_eq!(last["kind"], "status_changed");
    assert_eq!(last["text"], note.as_str());
    assert_eq!(
        w.app
            .count(&format!(
                "cases WHERE id = '{case}' AND closed_at IS NOT NULL AND sla_due_at IS NULL"
            ))
            .await,
        1
    );

    // A closed case only reopens.
    let (status, body) = w
        .call(Method::POST, &path, &w.operator, json!({ "status": "waiting" }))
        .await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["details"]["allowed"], json!(["in_progress"]));
    let (status, body) = w
        .call(
            Method::POST,
            &path,
            &w.operator,
            json!({ "status": "in_progress" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let reopened = w.case(&case).await;
    assert!(reopened["closure_reason"].is_null());
}

async fn a_child_case_closes_only_with_a_supervisor(backend: Backend) {
    let w = World::new(backend).await;
    let case = w
        .sms_case("child-1", "+77015552002", "pomogite zabrali pasport")
        .await;
    let (status, body) = w
        .call(
            Method::POST,
            &format!("/api/v1/cases/{case}/triage-override"),
            &w.supervisor,
            json!({ "child_victim": true, "risk": "high", "reason": "she said she is fifteen" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/v1/cases/{case}/status");
    let close = json!({ "status": "closed", "reason": "resolved" });

    // Untrained staff may not even touch it: the same code as reading it, audited.
    let before = w.snapshot(&case).await;
    let (status, body) = w.call(Method::POST, &path, &w.operator, close.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("case_forbidden"))
    );
    let (status, body) = w
        .call(
            Method::GET,
            &format!("/api/v1/cases/{case}"),
            &w.operator,
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("case_forbidden"))
    );
    assert_eq!(w.snapshot(&case).await, before);
    assert_eq!(w.audited(&case, "case_status_changed", "denied").await, 1);

    // A trained operator's close becomes a request; supervisors are emailed.
    let (trained, trained_tokens) = {
        let user = w.app.create_user(&w.org, Role::Operator).await;
        w.app.set_user_flags(&user.id, false, true).await;
        let tokens = w.app.login(&user).await;
        (user, tokens)
    };
    let _ = trained;
    let (status, body) = w.call(Method::POST, &path, &trained_tokens, close.clone()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "closure_requested");
    assert_eq!(body["closure_requested"], true);
    assert_eq!(w.events(&case, "closure_requested").await, 1);
    assert_eq!(w.audited(&case, "case_closure_requested", "success").await, 1);
    assert!(
        w.app
            .count(&format!(
                "outbox WHERE case_id = '{case}' AND topic = 'case_closure_requested'"
            ))
            .await
            >= 1
    );
    // Only a supervisor changes it now.
    let (status, body) = w
        .call(
            Method::POST,
            &path,
            &trained_tokens,
            json!({ "status": "in_progress" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("invalid_transition"))
    );

    let approve = format!("/api/v1/cases/{case}/closure/approve");
    let reject = format!("/api/v1/cases/{case}/closure/reject");
    w.assert_guarded(
        &case,
        &approve,
        json!({}),
        &[&trained_tokens, &w.caseworker.1, &w.admin],
    )
    .await;
    let (status, body) = w.call(Method::POST, &reject, &w.supervisor, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_reason"))
    );
    let (status, body) = w
        .call(
            Method::POST,
            &reject,
            &w.supervisor,
            json!({ "reason": "we still owe her a call" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "in_progress");
    assert_eq!(w.events(&case, "closure_rejected").await, 1);
    assert_eq!(w.audited(&case, "case_closure_rejected", "success").await, 1);

    let (status, _) = w.call(Method::POST, &path, &trained_tokens, close.clone()).await;
    assert_eq!(status, 202);
    let (status, body) = w.call(Method::POST, &approve, &w.supervisor, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "closed");
    assert_eq!(body["closure_reason"], "resolved");
    assert_eq!(w.events(&case, "closure_approved").await, 1);
    assert_eq!(w.audited(&case, "case_closure_approved", "success").await, 1);
    let (status, body) = w.call(Method::POST, &approve, &w.supervisor, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("no_closure_request"))
    );

    // A supervisor closes a child case directly.
    let (status, _) = w
        .call(
            Method::POST,
            &path,
            &w.supervisor,
            json!({ "status": "in_progress" }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = w.call(Method::POST, &path, &w.supervisor, close).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "closed");
}

async fn notes_are_sealed_append_only_and_corrected_by_new_notes(backend: Backend) {
    let w = World::new(backend).await;
    let case = w
        .sms_case("note-1", "+77015552003", "pomogite zabrali pasport")
        .await;
    let path = format!("/api/v1/cases/{case}/notes");
    w.assert_guarded(&case, &path, json!({ "text": "x" }), &[&w.admin])
        .await;

    let text = format!("notecanary-{}", uuid::Uuid::new_v4().simple());
    let (status, first) = w
        .call(Method::POST, &path, &w.operator, json!({ "text": text }))
        .await;
    assert_eq!(status, 201, "{first}");
    let note_id = first["note_id"].as_str().unwrap().to_owned();
    let fix = format!("fixcanary-{}", uuid::Uuid::new_v4().simple());
    let (status, second) = w
        .call(
            Method::POST,
            &path,
            &w.operator,
            json!({ "text": fix, "corrects": note_id }),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(w.events(&case, "note").await, 2);
    assert_eq!(w.audited(&case, "case_note_added", "success").await, 2);
    let shown = w.case(&case).await;
    let notes: Vec<&Value> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note")
        .collect();
    assert_eq!(
        notes[0]["text"],
        text.as_str(),
        "the corrected note stays as written"
    );
    assert_eq!(notes[1]["text"], fix.as_str());
    assert_eq!(notes[1]["data"]["corrects"], note_id.as_str());
    assert_eq!(
        w.app
            .count(&format!(
                "case_events WHERE data LIKE '%{text}%' OR data LIKE '%{fix}%'"
            ))
            .await,
        0,
        "the text is sealed, not in the event's data"
    );

    let before = w.snapshot(&case).await;
    for (body, code, status) in [
        (json!({ "text": "  " }), "invalid_text", 400),
        (json!({ "text": "a\u{0007}b" }), "invalid_text", 400),
        (json!({ "text": "x".repeat(4001) }), "text_too_long", 400),
        (
            json!({ "text": "x", "corrects": uuid::Uuid::now_v7().to_string() }),
            "note_not_found",
            409,
        ),
        (
            json!({ "text": "x", "corrects": first["case_id"] }),
            "note_not_found",
            409,
        ),
    ] {
        let (got, answer) = w.call(Method::POST, &path, &w.operator, body).await;
        assert_eq!(
            (got, answer["error"]["code"].clone()),
            (status, json!(code)),
            "{answer}"
        );
    }
    let (got, _) = w
        .call(Method::POST, &path, &w.operator, json!({ "txt": "x" }))
        .await;
    assert_eq!(got, 400, "unknown fields are refused");
    assert_eq!(w.snapshot(&case).await, before);
}

async fn an_operator_entry_opens_a_triaged_case_or_joins_one(backend: Backend) {
    let w = World::new(backend).await;
    let path = "/api/v1/reports";
    let entry = json!({
        "medium": "phone", "language": "ru", "phone": "8 701 555 30 01",
        "text": "Работодатель забрал паспорт и не выпускает нас, пожалуйста помогите",
    });
    for tokens in [&w.caseworker.1, &w.admin] {
        let (status, _) = w.call(Method::POST, path, tokens, entry.clone()).await;
        assert_eq!(status, 403);
    }
    assert_eq!(w.app.count("reports").await, 0);

    let (status, opened) = w.call(Method::POST, path, &w.operator, entry.clone()).await;
    assert_eq!(status, 201, "{opened}");
    assert_eq!(opened["outcome"], "opened");
    assert!(opened["reference"].as_str().unwrap().starts_with("KMK-"));
    let case = opened["case_id"].as_str().unwrap().to_owned();
    assert_eq!(
        w.app
            .count(&format!(
                "reports WHERE source = 'operator' AND triage_status = 'done' AND case_id = '{case}'"
            ))
            .await,
        1
    );
    let shown = w.case(&case).await;
    assert_ne!(
        shown["exploitation_types"],
        json!([]),
        "triaged like any report: {shown}"
    );
    assert_eq!(w.events(&case, "operator_entry").await, 1);
    assert_eq!(w.audited(&case, "report_created", "success").await, 1);
    assert_eq!(w.app.count("contacts").await, 1);

    // The same caller again joins their open case; naming a case joins that one.
    let (status, again) = w.call(Method::POST, path, &w.operator, entry.clone()).await;
    assert_eq!((status, again["outcome"].clone()), (201, json!("linked")));
    assert_eq!(again["case_id"], case.as_str());
    let other = w.sms_case("entry-sms", "+77015553002", "pomogite").await;
    let (status, joined) = w
        .call(
            Method::POST,
            path,
            &w.operator,
            json!({ "medium": "walk_in", "text": "she came to the office", "case_id": other }),
        )
        .await;
    assert_eq!(
        (status, joined["outcome"].clone()),
        (201, json!("linked")),
        "{joined}"
    );
    assert_eq!(joined["case_id"], other.as_str());
    let (status, _) = w
        .call(
            Method::POST,
            path,
            &w.outsider,
            json!({ "medium": "walk_in", "text": "x", "case_id": other }),
        )
        .await;
    assert_eq!(status, 404, "another organization's case");

    // A safe-contact record is kept on the caller's contact.
    let (status, body) = w
        .call(
            Method::POST,
            path,
            &w.operator,
            json!({ "medium": "phone", "text": "called back", "phone": "+77015553001",
                    "safe_contact": { "sms": true, "windows": [{ "from": "09:00", "to": "18:00" }],
                                      "utc_offset_minutes": 300, "wording": "Your parcel is ready" } }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        w.app.count("contacts WHERE safe_contact_enc IS NOT NULL").await,
        1
    );

    // Bad input: 400, nothing stored.
    let before = w.app.count("reports").await;
    for (body, code) in [
        (json!({ "medium": "fax", "text": "x" }), "invalid_medium"),
        (json!({ "medium": "phone", "text": " " }), "invalid_text"),
        (
            json!({ "medium": "phone", "text": "x", "phone": "not a number" }),
            "invalid_phone",
        ),
        (
            json!({ "medium": "phone", "text": "x", "language": "fr" }),
            "invalid_language",
        ),
        (
            json!({ "medium": "phone", "text": "x", "safe_contact": { "sms": false, "utc_offset_minutes": 300 } }),
            "invalid_safe_contact",
        ),
    ] {
        let (status, answer) = w.call(Method::POST, path, &w.operator, body).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (400, json!(code)),
            "{answer}"
        );
    }
    assert_eq!(w.app.count("reports").await, before);
}

async fn a_report_moves_and_a_case_merges_where_they_should(backend: Backend) {
    let w = World::new(backend).await;
    let a = w
        .sms_case("mv-a", "+77015554001", "pomogite zabrali pasport")
        .await;
    let b = w.sms_case("mv-b", "+77015554002", "pomogite").await;
    let report = {
        use diesel::prelude::*;
        use komek::db::schema::reports;
        w.app
            .db
            .run(|conn| {
                reports::table
                    .filter(reports::provider_event_id.eq("mv-b"))
                    .select(reports::id)
                    .first::<String>(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap()
    };
    let move_path = format!("/api/v1/reports/{report}/move");
    w.assert_guarded(&b, &move_path, json!({ "case_id": a }), &[&w.admin])
        .await;

    let (status, body) = w
        .call(Method::POST, &move_path, &w.operator, json!({ "case_id": a }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            w.app.count(&format!("reports WHERE case_id = '{a}'")).await,
            w.app.count(&format!("reports WHERE case_id = '{b}'")).await
        ),
        (2, 0)
    );
    assert_eq!(w.events(&b, "report_moved_out").await, 1);
    assert_eq!(w.events(&a, "report_moved_in").await, 1);
    assert_eq!(w.audited(&a, "report_moved_in", "success").await, 1);
    assert_eq!(w.audited(&b, "report_moved_out", "success").await, 1);
    let (status, body) = w
        .call(Method::POST, &move_path, &w.operator, json!({ "case_id": a }))
        .await;
    assert_eq!((status, body["error"]["code"].clone()), (409, json!("same_case")));
    let (status, _) = w
        .call(
            Method::POST,
            &move_path,
            &w.operator,
            json!({ "case_id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(status, 404);
    // Undone by another move.
    let (status, _) = w
        .call(Method::POST, &move_path, &w.operator, json!({ "case_id": b }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(w.app.count(&format!("reports WHERE case_id = '{b}'")).await, 1);

    // Merge B into A: every report and the timeline (sealed notes too) go to A; B closes as a duplicate.
    let note = format!("mergenote-{}", uuid::Uuid::new_v4().simple());
    let (status, _) = w
        .call(
            Method::POST,
            &format!("/api/v1/cases/{b}/notes"),
            &w.operator,
            json!({ "text": note }),
        )
        .await;
    assert_eq!(status, 201);
    let merge_path = format!("/api/v1/cases/{b}/merge");
    w.assert_guarded(&b, &merge_path, json!({ "into": a }), &[&w.admin])
        .await;
    let (status, body) = w
        .call(
            Method::POST,
            &format!("/api/v1/cases/{a}/merge"),
            &w.operator,
            json!({ "into": a }),
        )
        .await;
    assert_eq!((status, body["error"]["code"].clone()), (409, json!("same_case")));
    let (status, body) = w
        .call(Method::POST, &merge_path, &w.operator, json!({ "into": a }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(w.app.count(&format!("reports WHERE case_id = '{a}'")).await, 2);
    let merged = w.case(&b).await;
    assert_eq!(merged["status"], "closed");
    assert_eq!(merged["closure_reason"], "duplicate");
    assert_eq!(merged["merged_into"], a.as_str());
    let kinds: Vec<Value> = merged["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("merged_into")]);
    let survivor = w.case(&a).await;
    assert!(
        survivor["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "note" && e["text"] == note.as_str()),
        "the moved note opens under A's key: {survivor}"
    );
    assert_eq!(w.events(&a, "merged").await, 1);
    assert_eq!(w.audited(&a, "case_merged", "success").await, 1);
    assert_eq!(w.audited(&b, "case_merged_into", "success").await, 1);
    let (status, body) = w
        .call(
            Method::POST,
            &format!("/api/v1/cases/{a}/merge"),
            &w.operator,
            json!({ "into": b }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("case_closed"))
    );
}

async fn the_victim_profile_takes_coded_values_and_seals_free_text(backend: Backend) {
    let w = World::new(backend).await;
    let case = w
        .sms_case("pr-1", "+77015555001", "pomogite zabrali pasport")
        .await;
    let path = format!("/api/v1/cases/{case}/profile");
    let name = format!("namecanary-{}", uuid::Uuid::new_v4().simple());
    let profile = json!({
        "sex": "female", "age_band": "21-23", "citizenship": "UZ", "languages": ["uz", "ru"],
        "trafficking_status": "presumed", "means_of_control": ["withholds_documents", "debt_bondage"],
        "exploitation_country": "KZ", "exploitation_region": "Almaty oblast", "recruitment": ["job_offer"],
        "name": name,
    });
    let before = w.snapshot(&case).await;
    let (status, _) = w.call(Method::PATCH, &path, &w.admin, profile.clone()).await;
    assert_eq!(status, 403);
    let (status, answer) = w.call(Method::PATCH, &path, &w.outsider, profile.clone()).await;
    assert_eq!(
        (status, answer["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    for bad in [
        json!({ "sex": "f" }),
        json!({ "age_band": "10-20" }),
        json!({ "citizenship": "Uzbekistan" }),
        json!({ "means_of_control": ["locked_in"] }),
        json!({ "hair": "brown" }),
        json!({ "age_band": "21-23", "birth_year": 2003 }),
    ] {
        let (status, answer) = w.call(Method::PATCH, &path, &w.operator, bad.clone()).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (400, json!("invalid_profile")),
            "{bad}"
        );
    }
    assert_eq!(w.snapshot(&case).await, before);
    assert_eq!(w.app.count("case_profiles").await, 0);

    let (status, body) = w.call(Method::PATCH, &path, &w.operator, profile).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["profile"]["means_of_control"],
        json!(["withholds_documents", "debt_bondage"])
    );
    assert_eq!(body["profile"]["name"], name.as_str());
    assert_eq!(w.events(&case, "profile_updated").await, 1);
    assert_eq!(w.audited(&case, "case_profile_updated", "success").await, 1);
    assert_eq!(
        w.app
            .count(&format!(
                "case_profiles WHERE case_id = '{case}' AND name_enc IS NOT NULL"
            ))
            .await,
        1
    );
    let log = format!("{:?}", w.app.audit_entries().await);
    assert!(!log.contains(&name), "no name in the audit log");

    // A change names only what it changes; null clears; a minor's age makes it a child case.
    let (status, body) = w
        .call(
            Method::PATCH,
            &path,
            &w.operator,
            json!({ "age_band": "9-17", "name": null }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"]["sex"], "female");
    assert!(body["profile"]["name"].is_null());
    let shown = w.case(&case).await;
    assert_eq!(shown["child_victim"], true);
    assert_eq!(shown["profile"]["age_band"], "9-17");
}

async fn consent_is_recorded_per_purpose_and_withdrawable(backend: Backend) {
    let w = World::new(backend).await;
    let case = w
        .sms_case("cs-1", "+77015556001", "pomogite zabrali pasport")
        .await;
    let path = format!("/api/v1/cases/{case}/consents/referral");
    let give = json!({ "granted": true, "method": "verbal", "note": "agreed on the phone" });
    let before = w.snapshot(&case).await;
    let (status, _) = w.call(Method::PUT, &path, &w.admin, give.clone()).await;
    assert_eq!(status, 403);
    let (status, _) = w.call(Method::PUT, &path, &w.outsider, give.clone()).await;
    assert_eq!(status, 404);
    for (url, body) in [
        (format!("/api/v1/cases/{case}/consents/gossip"), give.clone()),
        (path.clone(), json!({ "granted": true, "method": "telepathy" })),
    ] {
        let (status, answer) = w.call(Method::PUT, &url, &w.operator, body).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (400, json!("invalid_consent"))
        );
    }
    assert_eq!(w.snapshot(&case).await, before);

    let (status, body) = w.call(Method::PUT, &path, &w.operator, give).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consents"][0]["purpose"], "referral");
    assert_eq!(body["consents"][0]["granted"], true);
    assert_eq!(w.events(&case, "consent_recorded").await, 1);
    assert_eq!(w.audited(&case, "case_consent_recorded", "success").await, 1);

    let (status, body) = w
        .call(
            Method::PUT,
            &path,
            &w.operator,
            json!({ "granted": false, "method": "verbal" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consents"][0]["granted"], false);
    assert_eq!(
        w.app
            .count(&format!(
                "consents WHERE case_id = '{case}' AND withdrawn_at IS NOT NULL"
            ))
            .await,
        1
    );
    let shown = w.case(&case).await;
    assert_eq!(shown["consents"][0]["granted"], false, "{shown}");
}
