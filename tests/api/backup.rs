//! Backups that restore, tested as an operator would meet them: `komek backup` runs while a real
//! `komek serve` takes a stream of signed webhooks; the encrypted backup is restored with `komek restore`
//! into a fresh directory (a fresh database), and every report acknowledged before the backup began is
//! there exactly once and readable through the API with the original keys file; the audit log still
//! verifies. A database that holds data is not overwritten without `--force`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret as _;

use crate::backend_tests;
use crate::cli::{Served, komek, run, start_serve};
use crate::helpers::{AppOptions, Backend, TestStorage, http_client, spawn_app_on};
use crate::intake::{Sms, deliver_to};

backend_tests!(a_backup_taken_under_load_restores_every_acknowledged_report);

fn env(command: &mut std::process::Command, storage: &TestStorage, keys: &Path) {
    command
        .env("KOMEK_DATABASE_URL", storage.database_url())
        .env("KOMEK_DATA_DIR", storage.dir.path().join("data"))
        .env("KOMEK_KEYS_FILE", keys)
        .env("KOMEK_PUBLIC_URL", "https://komek.test")
        .env("KOMEK_BIND", "127.0.0.1:0");
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

type Acknowledged = Arc<Mutex<BTreeMap<String, String>>>;

async fn a_backup_taken_under_load_restores_every_acknowledged_report(backend: Backend) {
    let source = TestStorage::new(backend);
    let dir = source.dir.path().to_owned();
    // The keys file lives apart from the data and the backups, as in production.
    let keys = dir.join("secrets").join("keys.toml");
    std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
    ok(&run(komek(&dir).args(["keys", "generate", "--out"]).arg(&keys)));
    let identity = age::x25519::Identity::generate();
    let identity_file = dir.join("secrets").join("backup-identity.txt");
    std::fs::write(&identity_file, identity.to_string().expose_secret()).unwrap();
    let recipient = identity.to_public().to_string();

    let mut org = komek(&dir);
    env(&mut org, &source, &keys);
    ok(&run(org.args([
        "org",
        "add",
        "--slug",
        "backed-up",
        "--name",
        "Backed-up NGO",
    ])));
    let mut channel = komek(&dir);
    env(&mut channel, &source, &keys);
    let out = ok(&run(channel
        .args([
            "channel",
            "add",
            "--org",
            "backed-up",
            "--provider",
            "capcom6",
            "--json",
        ])
        .env("KOMEK_CHANNEL_SECRET", Sms::Capcom6.secret())));
    let channel_id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut serve = komek(&dir);
    env(&mut serve, &source, &keys);
    serve.arg("serve");
    let Served {
        mut child,
        port,
        reader,
    } = start_serve(serve);
    let base = format!("http://127.0.0.1:{port}");

    // Four senders stream messages, each from its own number, until told to stop.
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let acknowledged: Acknowledged = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let client = http_client();
    let mut senders = Vec::new();
    for sender in 0..4u32 {
        let (client, base, channel_id, acknowledged, stop, run_id) = (
            client.clone(),
            base.clone(),
            channel_id.clone(),
            acknowledged.clone(),
            stop.clone(),
            run_id.clone(),
        );
        senders.push(tokio::spawn(async move {
            for n in 0..2_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let event = format!("evt-{sender}-{n}");
                let from = format!("+7702{sender}{n:06}");
                let text = format!("CANARY-{run_id}-{sender}-{n} pomogite zabrali pasport");
                let delivery = Sms::Capcom6.delivery(&channel_id, &event, &from, &text);
                if let Ok((200, _)) = deliver_to(&client, &base, &delivery).await {
                    acknowledged.lock().unwrap().insert(event, text);
                }
            }
        }));
    }
    let wait_for = |count: usize| {
        let acknowledged = acknowledged.clone();
        async move {
            let started = Instant::now();
            while acknowledged.lock().unwrap().len() < count {
                assert!(started.elapsed() < Duration::from_secs(120), "the stream stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(30).await;

    // The backup, by the command line, while the stream goes on.
    let before: BTreeMap<String, String> = acknowledged.lock().unwrap().clone();
    let backup_file = dir.join("backups").join("komek.backup.age");
    std::fs::create_dir_all(backup_file.parent().unwrap()).unwrap();
    let mut backup = komek(&dir);
    env(&mut backup, &source, &keys);
    backup
        .args(["backup", "--json", "--age-recipient", &recipient, "--out"])
        .arg(&backup_file);
    let out = tokio::task::spawn_blocking(move || backup.output())
        .await
        .unwrap()
        .unwrap();
    let report: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(report["encrypted"], true);
    wait_for(before.len() + 20).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();

    let bytes = std::fs::read(&backup_file).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    assert!(
        !String::from_utf8_lossy(&bytes).contains(&run_id),
        "the backup is encrypted"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&backup_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Restore into a fresh directory (and, on PostgreSQL, a fresh database).
    let target = TestStorage::new(backend);
    let restore = |extra: &[&str]| {
        let mut command = komek(target.dir.path());
        env(&mut command, &target, &keys);
        command.arg("restore").arg(&backup_file).args(extra);
        run(&mut command)
    };
    let without_identity = restore(&[]);
    assert!(!without_identity.status.success());
    assert!(String::from_utf8_lossy(&without_identity.stderr).contains("--identity"));
    let identity_arg = identity_file.display().to_string();
    ok(&restore(&["--identity", &identity_arg]));
    let again = restore(&["--identity", &identity_arg]);
    assert!(!again.status.success(), "a database with data is not overwritten");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    ok(&restore(&["--identity", &identity_arg, "--force"]));

    let mut verify = komek(target.dir.path());
    env(&mut verify, &target, &keys);
    ok(&run(verify.args(["audit", "verify"])));

    // Serve the restored database with the original keys file.
    let keys_for_app = keys.clone();
    let app = spawn_app_on(
        backend,
        target,
        AppOptions::with(move |raw| raw.keys_file = Some(keys_for_app.clone())),
        |_| {},
    )
    .await;
    let stored: Vec<Option<String>> = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use komek::db::schema::reports;
            reports::table
                .select(reports::provider_event_id)
                .load(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    let all_sent: BTreeSet<String> = acknowledged.lock().unwrap().keys().cloned().collect();
    for event in before.keys() {
        let copies = stored.iter().filter(|id| id.as_deref() == Some(event)).count();
        assert_eq!(
            copies, 1,
            "{event}, acknowledged before the backup, is in it exactly once"
        );
    }
    for id in stored.iter().flatten() {
        assert!(all_sent.contains(id), "nothing unexpected in the backup: {id}");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.count("reports WHERE triage_status = 'pending'").await > 0 {
        assert!(
            Instant::now() < deadline,
            "the restored reports were not processed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Readable: a supervisor of the restored installation sees every text.
    let org_id: String = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            use komek::db::schema::organizations;
            organizations::table
                .filter(organizations::slug.eq("backed-up"))
                .select(organizations::id)
                .first(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    let (_, tokens) = app.staff(&org_id, komek::domain::Role::Supervisor).await;
    let mut texts = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/cases?limit=200&cursor={c}"),
            None => "/api/v1/cases?limit=200".to_owned(),
        };
        let page = app.get_json(&path, &tokens.access).await;
        for case in page["cases"].as_array().unwrap() {
            let id = case["id"].as_str().unwrap();
            let detail = app.get_json(&format!("/api/v1/cases/{id}"), &tokens.access).await;
            for report in detail["reports"].as_array().unwrap() {
                if let Some(text) = report["text"].as_str() {
                    texts.insert(text.to_owned());
                }
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    for (event, text) in &before {
        assert!(texts.contains(text), "{event} decrypts after the restore");
    }
}
