//! The audit log, black-box: the hash chain holds under concurrent appends, `komek audit verify` passes on
//! an intact chain and names the first changed or missing entry, and supervisors see a case's access log
//! (tenant-scoped).

use std::process::{Command, Stdio};

use diesel::prelude::*;
use komek::audit::{self, Actor, AuditEntry, Outcome, Verification};
use komek::db::{AnyConnection, DbError};
use komek::domain::Role;
use reqwest::Method;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, spawn_app};

backend_tests!(
    concurrent_appends_keep_the_chain_intact,
    audit_verify_passes_on_an_intact_chain_and_names_a_changed_row,
    supervisors_see_who_accessed_a_case_of_their_organization,
);

fn entry<'a>(org: Option<&'a str>, action: &'a str, case: Option<&'a str>) -> AuditEntry<'a> {
    AuditEntry {
        organization_id: org,
        actor: Actor::System,
        action,
        target_kind: case.map(|_| "case"),
        target_id: case,
        outcome: Outcome::Success,
        details: Some(serde_json::json!({ "fields": ["status", "risk"] })),
        request_id: None,
    }
}

async fn verify(app: &TestApp) -> Verification {
    app.db
        .run(|conn| audit::verify(conn).map_err(DbError::from))
        .await
        .unwrap()
}

async fn concurrent_appends_keep_the_chain_intact(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let db = app.db.clone();
        tasks.push(tokio::spawn(async move {
            db.write(move |conn| {
                audit::record(conn, &entry(None, &format!("test_{i}"), None))
                    .map_err(|e| DbError::Task(e.to_string()))
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    match verify(&app).await {
        Verification::Intact { entries, head } => {
            assert_eq!(entries, 24);
            assert_eq!(head.len(), 64);
        }
        broken => panic!("{broken:?}"),
    }
    // An audit write that fails takes its transaction with it.
    let result = app
        .db
        .write(|conn| {
            audit::record(conn, &entry(None, "kept_only_if_committed", None))
                .map_err(|e| DbError::Task(e.to_string()))?;
            Err::<(), DbError>(DbError::Task("the action failed".into()))
        })
        .await;
    assert!(result.is_err());
    assert!(
        !app.audit_entries()
            .await
            .iter()
            .any(|e| e.action == "kept_only_if_committed")
    );
}

fn komek_verify(app: &TestApp) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_komek"));
    command.current_dir(app.storage.dir.path()).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KOMEK_") {
            command.env_remove(key);
        }
    }
    let out = command
        .args(["audit", "verify"])
        .env("KOMEK_DATABASE_URL", app.storage.database_url())
        .env("KOMEK_DATA_DIR", app.storage.dir.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn audit_verify_passes_on_an_intact_chain_and_names_a_changed_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    // Real entries: logins, a denial, admin actions.
    let (_, admin) = app.staff(&org, Role::Admin).await;
    let (_, operator) = app.staff(&org, Role::Operator).await;
    app.authed(Method::GET, "/api/v1/users", &operator.access)
        .send()
        .await
        .unwrap();
    app.authed(Method::GET, "/api/v1/users", &admin.access)
        .send()
        .await
        .unwrap();
    let count = app.audit_entries().await.len();
    assert!(count >= 4, "{count}");

    let (ok, stdout, stderr) = komek_verify(&app);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("intact") && stdout.contains(&format!("{count} entries")),
        "{stdout}"
    );

    // A tamperer with database access disables the append-only trigger and edits entry 2.
    app.db
        .run(|conn| {
            use diesel::connection::SimpleConnection as _;
            let disable = match conn {
                AnyConnection::Sqlite(_) => "DROP TRIGGER audit_log_no_update",
                AnyConnection::Postgresql(_) => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update",
            };
            conn.batch_execute(disable)?;
            conn.batch_execute("UPDATE audit_log SET outcome = 'failure' WHERE seq = 2")
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    let (ok, stdout, stderr) = komek_verify(&app);
    assert!(!ok, "verify must fail on a changed row: {stdout}");
    assert!(
        stderr.contains("entry 2") && stderr.contains("changed"),
        "{stderr}"
    );
    assert!(matches!(verify(&app).await, Verification::Broken { seq: 2, .. }));

    // Rewriting the row's own hash too only moves the break to the next entry.
    app.db
        .run(|conn| {
            use komek::db::schema::audit_log;
            let mut row: audit::StoredEntry = audit_log::table
                .filter(audit_log::seq.eq(2_i64))
                .select(audit::StoredEntry::as_select())
                .first(conn)?;
            row.hash = audit::entry_hash(&row);
            diesel::update(audit_log::table.filter(audit_log::seq.eq(2_i64)))
                .set(audit_log::hash.eq(&row.hash))
                .execute(conn)
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    assert!(matches!(verify(&app).await, Verification::Broken { seq: 3, .. }));

    // Deleting an entry is named as a missing entry.
    app.db
        .run(|conn| {
            use diesel::connection::SimpleConnection as _;
            if let AnyConnection::Postgresql(_) = conn {
                conn.batch_execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")?;
            } else {
                conn.batch_execute("DROP TRIGGER audit_log_no_delete")?;
            }
            conn.batch_execute("DELETE FROM audit_log WHERE seq = 1")
                .map_err(DbError::from)
        })
        .await
        .unwrap();
    match verify(&app).await {
        Verification::Broken { seq, reason } => {
            assert_eq!(seq, 1);
            assert!(reason.contains("missing"), "{reason}");
        }
        intact => panic!("{intact:?}"),
    }
}

async fn supervisors_see_who_accessed_a_case_of_their_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    let org_a = app.create_org("ngo-a", None).await;
    let org_b = app.create_org("ngo-b", None).await;
    let case = app.insert_case(&org_a, true, None).await;
    let (_, supervisor) = app.staff(&org_a, Role::Supervisor).await;
    let (_, other_supervisor) = app.staff(&org_b, Role::Supervisor).await;
    let (_, operator) = app.staff(&org_a, Role::Operator).await;
    let case_for_audit = case.clone();
    let org_for_audit = org_a.clone();
    app.db
        .write(move |conn| {
            for action in ["case_read", "case_updated"] {
                audit::record(conn, &entry(Some(&org_for_audit), action, Some(&case_for_audit)))
                    .map_err(|e| DbError::Task(e.to_string()))?;
            }
            Ok::<_, DbError>(())
        })
        .await
        .unwrap();

    let path = format!("/api/v1/cases/{case}/access-log");
    let response = app
        .authed(Method::GET, &path, &supervisor.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let actions: Vec<&str> = body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["case_read", "case_updated"]);
    // Reading the log is itself on the log.
    let again: Value = app
        .authed(Method::GET, &path, &supervisor.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["entries"].as_array().unwrap().len(), 3);

    let response = app
        .authed(Method::GET, &path, &other_supervisor.access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        404,
        "another organization's case does not exist for them"
    );
    let response = app
        .authed(
            Method::GET,
            "/api/v1/cases/no-such-case/access-log",
            &supervisor.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .authed(Method::GET, &path, &operator.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "operators do not read access logs");
}
