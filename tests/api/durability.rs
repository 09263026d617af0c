//! "Never lose a report that was acknowledged", tested the way trusted systems are: a stream of webhooks
//! into a real `komek serve` process, `kill -9` in the middle of it, a restart on the same database — and
//! every message that was answered 200 is there exactly once, and gets triaged into a case after the
//! restart (the sweeper picks up what the killed process never processed).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::cli::{Served, komek, run, start_serve};
use crate::helpers::{Backend, TestStorage, http_client};
use crate::intake::{Sms, deliver_to};

backend_tests!(every_acknowledged_webhook_survives_kill_9_exactly_once);

fn env(command: &mut std::process::Command, storage: &TestStorage) {
    command
        .env("KOMEK_DATABASE_URL", storage.database_url())
        .env("KOMEK_DATA_DIR", storage.dir.path().join("data"))
        .env("KOMEK_PUBLIC_URL", "https://komek.test")
        .env("KOMEK_BIND", "127.0.0.1:0");
}

async fn every_acknowledged_webhook_survives_kill_9_exactly_once(backend: Backend) {
    let storage = TestStorage::new(backend);
    let dir = storage.dir.path();
    let mut org = komek(dir);
    env(&mut org, &storage);
    assert!(
        run(org.args([
            "org",
            "add",
            "--slug",
            "durable",
            "--name",
            "Durable NGO",
            "--country",
            "KZ"
        ]))
        .status
        .success()
    );
    let mut channel = komek(dir);
    env(&mut channel, &storage);
    let out = run(channel
        .args([
            "channel",
            "add",
            "--org",
            "durable",
            "--provider",
            "capcom6",
            "--json",
        ])
        .env("KOMEK_CHANNEL_SECRET", Sms::Capcom6.secret()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let channel_id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut serve = komek(dir);
    env(&mut serve, &storage);
    serve.arg("serve");
    let Served {
        mut child,
        port,
        reader,
    } = start_serve(serve);
    let base = format!("http://127.0.0.1:{port}");

    // Eight concurrent senders stream messages; the server is killed once 40 were acknowledged.
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let client = http_client();
    let mut senders = Vec::new();
    for sender in 0..8 {
        let (client, base, channel_id, acknowledged) = (
            client.clone(),
            base.clone(),
            channel_id.clone(),
            acknowledged.clone(),
        );
        senders.push(tokio::spawn(async move {
            for n in 0..40 {
                let event = format!("evt-{sender}-{n}");
                let from = format!("+7701{sender:03}{n:04}");
                let delivery = Sms::Capcom6.delivery(&channel_id, &event, &from, "pomogite zabrali pasport");
                match deliver_to(&client, &base, &delivery).await {
                    Ok((200, _)) => {
                        acknowledged.lock().unwrap().insert(event);
                    }
                    Ok(_) | Err(_) => break,
                }
            }
        }));
    }
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the stream did not get going"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL: no graceful shutdown, no checkpoint.
    child.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let _ = reader.join();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 40);

    // Restart on the same database: every acknowledged message is there once, and gets processed.
    let mut again = komek(dir);
    env(&mut again, &storage);
    again.arg("serve");
    let Served {
        mut child, reader, ..
    } = start_serve(again);
    let settings = crate::helpers::test_settings(&storage, &crate::helpers::AppOptions::default());
    let db = crate::helpers::open_migrated(&settings);
    let deadline = Instant::now() + Duration::from_secs(30);
    let (stored, pending) = loop {
        let rows = db
            .run(|conn| {
                use diesel::prelude::*;
                use komek::db::schema::reports;
                reports::table
                    .select((reports::provider_event_id, reports::triage_status))
                    .load::<(Option<String>, String)>(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap();
        let pending = rows.iter().filter(|(_, status)| status == "pending").count();
        if pending == 0 || Instant::now() > deadline {
            break (rows, pending);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    for event in &acknowledged {
        let copies = stored
            .iter()
            .filter(|(id, _)| id.as_deref() == Some(event.as_str()))
            .count();
        assert_eq!(copies, 1, "acknowledged {event} must be stored exactly once");
    }
    assert_eq!(
        pending, 0,
        "after the restart the sweeper processes what the killed process left pending"
    );
}
