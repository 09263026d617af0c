//! The `komek` binary as an operator uses it: zero-configuration start, PostgreSQL start, refusals, and the
//! administration commands with `--json`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::helpers::{Backend, TestStorage};

backend_tests!(
    serve_starts_with_no_configuration_and_stops_on_sigterm,
    org_add_and_user_add_print_json
);

/// A `komek serve` child process, its port, and the thread collecting its log.
pub struct Served {
    pub child: std::process::Child,
    pub port: String,
    pub reader: std::thread::JoinHandle<Vec<String>>,
}

/// Spawns `command` (a `komek serve` with `KOMEK_BIND=127.0.0.1:0`) and waits for it to report its port.
pub fn start_serve(mut command: Command) -> Served {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("address=127.0.0.1:").nth(1) {
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let _ = port_tx.send(port);
            }
            lines.push(line);
        }
        lines
    });
    let Ok(port) = port_rx.recv_timeout(Duration::from_secs(30)) else {
        let _ = child.kill();
        panic!("komek serve did not report its address: {:?}", reader.join())
    };
    Served { child, port, reader }
}

pub fn komek(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_komek"));
    command.current_dir(dir).stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KOMEK_") {
            command.env_remove(key);
        }
    }
    command
}

pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run komek: {e}"))
}

async fn serve_starts_with_no_configuration_and_stops_on_sigterm(backend: Backend) {
    let storage = TestStorage::new(backend);
    let dir = storage.dir.path().to_owned();
    let mut command = komek(&dir);
    command
        .arg("serve")
        .env("KOMEK_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if backend == Backend::Postgres {
        command.env("KOMEK_DATABASE_URL", storage.database_url());
    }
    let Served {
        mut child,
        port,
        reader,
    } = start_serve(command);
    let client = crate::helpers::http_client();
    for path in ["/healthz", "/readyz"] {
        let response = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "komek did not stop after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = reader.join().unwrap().join("\n");
    assert!(status.success(), "komek serve exited with {status}: {log}");
    let data = dir.join("komek-data");
    if backend == Backend::Sqlite {
        assert!(
            data.join("komek.db").is_file(),
            "the default database is ./komek-data/komek.db"
        );
    }
    let keys = data.join("keys.toml");
    assert!(keys.is_file(), "keys are generated into ./komek-data/");
    let credentials = std::fs::read_to_string(data.join("first-admin-credentials.txt")).unwrap();
    assert!(credentials.contains("admin@localhost") && credentials.contains("otpauth://totp/"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(data.join("first-admin-credentials.txt"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }
    let password = credentials
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    assert!(password.len() >= 16);
    assert!(
        !log.contains(&password),
        "the one-time password must never reach the log"
    );
}

async fn org_add_and_user_add_print_json(backend: Backend) {
    let storage = TestStorage::new(backend);
    let dir = storage.dir.path();
    let with_db = |command: &mut Command| {
        command
            .env("KOMEK_DATABASE_URL", storage.database_url())
            .env("KOMEK_DATA_DIR", dir.join("data"));
    };
    let mut org = komek(dir);
    with_db(&mut org);
    let out = run(org.args([
        "org",
        "add",
        "--slug",
        "sana-sezim",
        "--name",
        "Sana Sezim",
        "--country",
        "kz",
        "--json",
    ]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let org: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(org["slug"], "sana-sezim");
    assert_eq!(org["country"], "KZ");

    let mut user = komek(dir);
    with_db(&mut user);
    let out = run(user.args([
        "user",
        "add",
        "--org",
        "sana-sezim",
        "--email",
        "Aida@Example.org",
        "--role",
        "caseworker",
        "--json",
    ]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(user["email"], "aida@example.org");
    assert_eq!(user["role"], "caseworker");
    assert!(user["password"].as_str().is_some_and(|p| p.len() >= 16));
    assert!(
        user["totp_uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("otpauth://totp/Komek:"))
    );

    // The password is stored as an Argon2id hash, never in clear.
    let mut again = komek(dir);
    with_db(&mut again);
    let out = run(again.args([
        "user",
        "add",
        "--org",
        "sana-sezim",
        "--email",
        "aida@example.org",
        "--role",
        "operator",
    ]));
    assert_eq!(out.status.code(), Some(2), "a duplicate email is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    for (args, expected) in [
        (
            vec!["org", "add", "--slug", "sana-sezim", "--name", "Again"],
            "already exists",
        ),
        (vec!["org", "add", "--slug", "Bad Slug", "--name", "X"], "slug"),
        (
            vec![
                "user", "add", "--org", "nope", "--email", "a@b.org", "--role", "admin",
            ],
            "no organization",
        ),
        (
            vec![
                "user",
                "add",
                "--org",
                "sana-sezim",
                "--email",
                "a@b.org",
                "--role",
                "root",
            ],
            "unknown role",
        ),
        (
            vec![
                "user",
                "add",
                "--org",
                "sana-sezim",
                "--email",
                "not-an-email",
                "--role",
                "admin",
            ],
            "email",
        ),
    ] {
        let mut command = komek(dir);
        with_db(&mut command);
        let out = run(command.args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unsupported_database_scheme_is_refused_with_the_accepted_forms() {
    let dir = tempfile::tempdir().unwrap();
    for command in [vec!["serve"], vec!["migrate"]] {
        let out = run(komek(dir.path())
            .args(&command)
            .env("KOMEK_DATABASE_URL", "mysql://root@localhost/komek"));
        assert!(!out.status.success(), "{command:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("mysql") && stderr.contains("postgres://") && stderr.contains("sqlite://"),
            "{stderr}"
        );
    }
    assert!(!dir.path().join("mysql:").exists());
}

#[test]
fn production_refuses_a_missing_sqlite_file_generated_keys_and_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let out = run(komek(dir.path()).args(["keys", "generate", "--out"]).arg(&keys));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let production = |command: &mut Command| {
        command
            .env("KOMEK_ENV", "production")
            .env("KOMEK_PUBLIC_URL", "https://hotline.example.org")
            .env("KOMEK_BIND", "127.0.0.1:0");
    };

    let mut typo = komek(dir.path());
    production(&mut typo);
    let out = run(typo
        .arg("serve")
        .env("KOMEK_KEYS_FILE", &keys)
        .env("KOMEK_DATABASE_URL", dir.path().join("komke.db")));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join("komke.db").exists(),
        "a mistyped path must not create an empty database"
    );

    let generated = dir.path().join("generated");
    std::fs::create_dir_all(&generated).unwrap();
    std::fs::write(
        generated.join("keys.toml"),
        std::fs::read_to_string(&keys)
            .unwrap()
            .replace("origin = \"operator\"", "origin = \"generated\""),
    )
    .unwrap();
    let mut generated_keys = komek(dir.path());
    production(&mut generated_keys);
    let out = run(generated_keys
        .arg("serve")
        .env("KOMEK_KEYS_FILE", generated.join("keys.toml")));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("generated automatically"));

    let mut no_keys = komek(dir.path());
    production(&mut no_keys);
    let out = run(no_keys.arg("serve"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KOMEK_KEYS_FILE"));

    let mut http = komek(dir.path());
    production(&mut http);
    let out = run(http
        .arg("serve")
        .env("KOMEK_KEYS_FILE", &keys)
        .env("KOMEK_PUBLIC_URL", "http://hotline.example.org"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https"));
}

#[test]
fn help_and_version_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(komek(dir.path()).arg("--version"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("komek "));
    let out = run(komek(dir.path()).arg("--help"));
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "migrate", "org", "user", "keys"] {
        assert!(help.contains(command), "--help lists `{command}`: {help}");
    }
}

#[test]
fn a_broken_triage_rule_file_stops_the_start_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/triage/rules");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, rules.join(path.file_name().unwrap())).unwrap();
        }
    }
    let broken = rules.join("en.toml");
    let text = std::fs::read_to_string(&broken).unwrap();
    std::fs::write(
        &broken,
        text.replacen("script = \"latn\"", "script = \"latn\"\nweight = [unclosed", 1),
    )
    .unwrap();
    let out = run(komek(dir.path())
        .arg("serve")
        .env("KOMEK_BIND", "127.0.0.1:0")
        .env("KOMEK_TRIAGE_RULES_DIR", &rules));
    assert!(!out.status.success(), "a broken rule file must stop the start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = stderr.split("en.toml").nth(1).unwrap_or_default();
    assert!(
        named.contains("line ") && named.chars().any(|c| c.is_ascii_digit()),
        "the error names the file and line: {stderr}"
    );
    assert!(
        !dir.path().join("komek-data/komek.db").exists(),
        "the rules are checked before the database is created"
    );
}

#[test]
fn command_line_and_test_variables_are_not_mistaken_for_settings() {
    // `cargo run` in this repository sets KOMEK_TEST_POSTGRES_URL (.cargo/config.toml), and operators pass
    // KOMEK_CHANNEL_SECRET to `komek channel add`: neither may stop the service as an unknown setting.
    let dir = tempfile::tempdir().unwrap();
    let out = run(komek(dir.path())
        .arg("migrate")
        .env("KOMEK_TEST_POSTGRES_URL", "postgres://nowhere/x")
        .env("KOMEK_CHANNEL_SECRET", "s3cret"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let typo = run(komek(dir.path()).arg("migrate").env("KOMEK_DATABSE_URL", "x"));
    assert!(!typo.status.success(), "a mistyped setting is refused");
    assert!(
        String::from_utf8_lossy(&typo.stderr)
            .to_lowercase()
            .contains("databse_url")
    );
}
