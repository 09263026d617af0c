//! Komek on real platforms: Kubernetes puts service-link variables (`KOMEK_PORT`, `KOMEK_SERVICE_HOST`,
//! `KOMEK_PORT_8080_TCP_…`) into every pod when a Service is named `komek`; they must not stop the start,
//! while a mistyped setting — in the file or in the environment — still must.

use std::process::Stdio;

use crate::backend_tests;
use crate::cli::{Served, komek, run, start_serve};
use crate::helpers::{Backend, TestStorage, http_client};

backend_tests!(kubernetes_service_links_do_not_stop_the_start_but_typos_do);

const SERVICE_LINKS: &[(&str, &str)] = &[
    ("KOMEK_PORT", "tcp://10.96.12.34:8080"),
    ("KOMEK_PORT_8080_TCP", "tcp://10.96.12.34:8080"),
    ("KOMEK_PORT_8080_TCP_PROTO", "tcp"),
    ("KOMEK_PORT_8080_TCP_PORT", "8080"),
    ("KOMEK_PORT_8080_TCP_ADDR", "10.96.12.34"),
    ("KOMEK_SERVICE_HOST", "10.96.12.34"),
    ("KOMEK_SERVICE_PORT", "8080"),
    ("KOMEK_SERVICE_PORT_HTTP", "8080"),
    ("KOMEK_METRICS_SERVICE_HOST", "10.96.12.35"),
    ("KOMEK_METRICS_PORT_9464_TCP_ADDR", "10.96.12.35"),
];

async fn kubernetes_service_links_do_not_stop_the_start_but_typos_do(backend: Backend) {
    let storage = TestStorage::new(backend);
    let dir = storage.dir.path();
    let mut serve = komek(dir);
    serve
        .arg("serve")
        .env("KOMEK_BIND", "127.0.0.1:0")
        .env("KOMEK_DATABASE_URL", storage.database_url());
    for (name, value) in SERVICE_LINKS {
        serve.env(name, value);
    }
    let Served {
        mut child,
        port,
        reader,
    } = start_serve(serve);
    let health = http_client()
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    assert_eq!(health, 200);

    // A typo in the environment still stops the start, naming the variable.
    let mut typo = komek(dir);
    typo.args(["migrate"])
        .env("KOMEK_DATABASE_URL", storage.database_url())
        .env("KOMEK_BNID", "127.0.0.1:0")
        .stdout(Stdio::null());
    let out = run(&mut typo);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bnid"), "{out:?}");

    // And so does one in the file, even with every service link set.
    let file = dir.join("komek.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:0\"\nsmtp_ulr = \"smtp://relay:25?tls=none\"\n",
    )
    .unwrap();
    let mut typo = komek(dir);
    typo.arg("--config")
        .arg(&file)
        .arg("migrate")
        .env("KOMEK_DATABASE_URL", storage.database_url());
    for (name, value) in SERVICE_LINKS {
        typo.env(name, value);
    }
    let out = run(&mut typo);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("smtp_ulr"),
        "{out:?}"
    );
}
