//! The black-box harness: starts the real application on port 0 — on a temporary SQLite file, or on a fresh
//! PostgreSQL database created for the test and dropped afterwards — and talks to it over HTTP.
//!
//! Every test body takes a [`Backend`] and is instantiated for both by [`backend_tests!`]. The PostgreSQL
//! variants need `KOMEK_TEST_POSTGRES_URL` (set by default in `.cargo/config.toml` to the local server);
//! when PostgreSQL is unreachable they fail with a message saying so — they are never skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use diesel::Connection as _;
use diesel::RunQueryDsl as _;
use diesel::pg::PgConnection;
use komek::config::{LogFormat, RawSettings, Settings};
use komek::db::Db;
use komek::keys::Keyset;
use komek::startup::Application;
use komek::state::AppState;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares `sqlite::NAME` and `postgres::NAME` tests for each `async fn NAME(backend: Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// The file every test's server logs into, so tests can check what was (not) logged.
pub fn log_file() -> &'static Path {
    static LOG: OnceLock<PathBuf> = OnceLock::new();
    LOG.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("komek-test-{}.log", std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        if let Ok(file) = file {
            let writer = komek::telemetry::SharedFile(Arc::new(Mutex::new(file)));
            let filter = std::env::var("TEST_LOG").unwrap_or_else(|_| "info".to_owned());
            let _ = komek::telemetry::init(&filter, LogFormat::Json, writer, false);
        }
        path
    })
}

/// An HTTP client for talking to test servers (plain http on loopback; redirects not followed).
pub fn http_client() -> reqwest::Client {
    // reqwest is built without a default TLS crypto provider (the gateways crate passes its own): install
    // one for the test process so building a client cannot panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

/// The PostgreSQL maintenance URL, or a panic that says how to provide one.
pub fn postgres_admin_url() -> String {
    match std::env::var("KOMEK_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "this test runs on PostgreSQL and KOMEK_TEST_POSTGRES_URL is not set: start PostgreSQL (.ci/run does) \
             and export KOMEK_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres"
        ),
    }
}

/// A PostgreSQL database created for one test and dropped when this value is dropped.
pub struct PgTestDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgTestDatabase {
    pub fn create() -> PgTestDatabase {
        let admin_url = postgres_admin_url();
        let mut admin = PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at KOMEK_TEST_POSTGRES_URL ({e}); start it (.ci/run does) or fix the URL")
        });
        let name = format!("komek_test_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create the test database: {e}"));
        let mut url = url::Url::parse(&admin_url).unwrap_or_else(|e| panic!("KOMEK_TEST_POSTGRES_URL: {e}"));
        url.set_path(&format!("/{name}"));
        PgTestDatabase {
            admin_url,
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut admin);
        }
    }
}

/// Where a test's data lives: a temporary folder, and the PostgreSQL database if any.
pub struct TestStorage {
    pub dir: tempfile::TempDir,
    pub pg: Option<PgTestDatabase>,
}

impl TestStorage {
    pub fn new(backend: Backend) -> TestStorage {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let pg = (backend == Backend::Postgres).then(PgTestDatabase::create);
        TestStorage { dir, pg }
    }

    /// The database URL as `KOMEK_DATABASE_URL` would give it.
    pub fn database_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self.dir.path().join("komek.db").display().to_string(),
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A change to a test server's settings.
pub type SettingsTweak = Box<dyn Fn(&mut RawSettings) + Send + Sync>;

/// Options for [`spawn_app_with`].
pub struct AppOptions {
    pub db_pool_size: u32,
    pub db_checkout_timeout_ms: u64,
    pub sqlite_busy_timeout_ms: u32,
    pub flood_threshold: u32,
    pub ivr_fallback_number: Option<String>,
    /// Changes any other setting (mail, outbox worker, SMS limits...).
    pub tweak: Option<SettingsTweak>,
    /// The web form's minimum fill time (0 in tests unless a test checks it).
    pub web_form_min_fill_secs: u32,
    /// Web form reports per client address per hour.
    pub web_form_submissions_per_hour: u32,
    /// Follow-up code checks per client address per hour.
    pub web_form_status_checks_per_hour: u32,
    /// The organization `/report` shows without `?org=`.
    pub web_form_org: Option<String>,
}

impl AppOptions {
    /// Default options with a settings change.
    pub fn with(tweak: impl Fn(&mut RawSettings) + Send + Sync + 'static) -> AppOptions {
        AppOptions {
            tweak: Some(Box::new(tweak)),
            ..AppOptions::default()
        }
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            db_pool_size: 4,
            db_checkout_timeout_ms: 2_000,
            sqlite_busy_timeout_ms: 5_000,
            flood_threshold: 10,
            ivr_fallback_number: None,
            tweak: None,
            web_form_min_fill_secs: 0,
            web_form_submissions_per_hour: 1000,
            web_form_status_checks_per_hour: 1000,
            web_form_org: None,
        }
    }
}

/// The public URL test servers believe they are reached at (as behind a TLS proxy).
pub const PUBLIC_URL: &str = "https://komek.test";

/// A running application. Not every suite uses every field.
#[allow(dead_code)]
pub struct TestApp {
    pub address: String,
    /// `http://127.0.0.1:PORT` of the private `/metrics` listener, when `metrics_bind` was set.
    pub metrics_address: Option<String>,
    pub backend: Backend,
    pub db: Db,
    pub settings: Arc<Settings>,
    pub keys: Arc<Keyset>,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    // Dropped last: the server stops before its database goes.
    pub storage: TestStorage,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Creates an organization directly in the database; returns its id.
    pub async fn create_org(&self, slug: &str, country: Option<&str>) -> String {
        let new = komek::accounts::orgs::NewOrganization::new(
            komek::domain::OrgSlug::parse(slug).unwrap(),
            "Test NGO",
            country.map(|c| komek::domain::CountryCode::parse(c).unwrap()),
        )
        .unwrap();
        self.db
            .write(move |conn| komek::accounts::orgs::create(conn, &new))
            .await
            .unwrap_or_else(|e| panic!("create org: {e}"))
            .id
    }

    /// Creates a channel as `komek channel add` would; returns its id.
    pub async fn create_channel(&self, organization_id: &str, provider: &str, secret: &str) -> String {
        let crypto = komek::crypto::Crypto::new(self.keys.clone());
        let new = komek::channels::NewChannel {
            organization_id: organization_id.to_owned(),
            provider: provider.parse().unwrap(),
            number: None,
            secret: (!secret.is_empty()).then(|| komek::sensitive::Sensitive::new(secret.to_owned())),
            language: "ru".to_owned(),
        };
        self.db
            .write(move |conn| komek::channels::create(conn, &crypto, &new))
            .await
            .unwrap_or_else(|e| panic!("create channel: {e}"))
            .id
    }

    /// Counts the rows of a table (or of `table WHERE ...`).
    pub async fn count(&self, table: &str) -> i64 {
        let query = format!("SELECT COUNT(*) AS n FROM {table}");
        self.db
            .run(move |conn| {
                use diesel::RunQueryDsl as _;
                diesel::sql_query(query)
                    .get_result::<Count>(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap_or_else(|e| panic!("count {table}: {e}"))
            .n
    }

    /// Waits until no report is pending (processing runs after the webhook is answered).
    pub async fn settle(&self) {
        for _ in 0..200 {
            if self.count("reports WHERE triage_status = 'pending'").await == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("reports stayed pending for 5 seconds");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stop without waiting: in-flight test requests are over by now.
        drop(tokio::spawn(async move { handle.stop(false).await }));
    }
}

/// Settings for a test server on `storage`.
pub fn test_settings(storage: &TestStorage, options: &AppOptions) -> Settings {
    let mut raw = RawSettings {
        database_url: Some(storage.database_url()),
        bind: "127.0.0.1:0".to_owned(),
        data_dir: storage.dir.path().to_owned(),
        http_workers: 1,
        public_url: Some(PUBLIC_URL.to_owned()),
        db_pool_size: options.db_pool_size,
        db_checkout_timeout_ms: options.db_checkout_timeout_ms,
        sqlite_busy_timeout_ms: options.sqlite_busy_timeout_ms,
        flood_threshold: options.flood_threshold,
        ivr_fallback_number: options.ivr_fallback_number.clone(),
        web_form_min_fill_secs: options.web_form_min_fill_secs,
        web_form_submissions_per_hour: options.web_form_submissions_per_hour,
        web_form_status_checks_per_hour: options.web_form_status_checks_per_hour,
        web_form_org: options.web_form_org.clone(),
        shutdown_timeout_secs: 1,
        ..RawSettings::default()
    };
    if let Some(tweak) = &options.tweak {
        tweak(&mut raw);
    }
    raw.validate().unwrap_or_else(|e| panic!("test settings: {e}"))
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: AppOptions) -> TestApp {
    spawn_app_tweaked(backend, options, |_| {}).await
}

/// Like [`spawn_app_with`], with a last change to the validated settings (e.g. `require_mfa = false`).
pub async fn spawn_app_tweaked(
    backend: Backend,
    options: AppOptions,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    log_file();
    let storage = TestStorage::new(backend);
    spawn_app_on(backend, storage, options, tweak).await
}

/// Like [`spawn_app_tweaked`], on storage that already holds a database (a restored backup, say).
pub async fn spawn_app_on(
    backend: Backend,
    storage: TestStorage,
    options: AppOptions,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    log_file();
    let mut settings = test_settings(&storage, &options);
    tweak(&mut settings);
    let keys = Arc::new(settings.load_keys().unwrap_or_else(|e| panic!("keys: {e}")));
    let db = open_migrated(&settings);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let settings = Arc::new(settings);
    let triage = komek::state::load_triage(&settings).unwrap_or_else(|e| panic!("triage rules: {e}"));
    let state = AppState::new(settings.clone(), db.clone(), keys.clone(), triage);
    let app = Application::build(state, listener).unwrap_or_else(|e| panic!("build: {e}"));
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app.metrics_port().map(|port| format!("http://127.0.0.1:{port}"));
    let handle = app.handle();
    tokio::spawn(app.run());
    let client = http_client();
    TestApp {
        address,
        metrics_address,
        backend,
        db,
        settings,
        keys,
        client,
        handle,
        storage,
    }
}

/// Opens the configured database and applies the migrations.
pub fn open_migrated(settings: &Settings) -> Db {
    let db = Db::connect(
        &settings.database_url,
        settings.connect_options(true),
        settings.pool_options(),
    )
    .unwrap_or_else(|e| panic!("connect: {e}"));
    db.migrate_blocking().unwrap_or_else(|e| panic!("migrate: {e}"));
    db
}

/// A staff account made for a test, with its one-time credentials.
#[allow(dead_code)]
#[derive(Clone)]
pub struct TestUser {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub password: String,
    pub totp_uri: String,
}

impl TestUser {
    /// The authenticator code for now + `offset_seconds`.
    pub fn totp_at(&self, offset_seconds: i64) -> String {
        let totp = totp_rs::TOTP::from_url(&self.totp_uri).unwrap_or_else(|e| panic!("totp uri: {e}"));
        let now = chrono::Utc::now().timestamp() + offset_seconds;
        totp.generate(u64::try_from(now).unwrap_or(0))
    }

    /// The authenticator code for now.
    pub fn totp(&self) -> String {
        self.totp_at(0)
    }
}

/// Tokens of a signed-in test user.
#[allow(dead_code)]
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

#[allow(dead_code)]
impl TestApp {
    /// Creates a user of `role` in the organization (one-time password still to be changed).
    pub async fn create_user(&self, organization_id: &str, role: komek::domain::Role) -> TestUser {
        let crypto = komek::crypto::Crypto::new(self.keys.clone());
        let email = komek::domain::EmailAddress::parse(&format!(
            "{}-{}@example.org",
            role.as_str().replace('_', "-"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
        .unwrap_or_else(|e| panic!("email: {e}"));
        let org = organization_id.to_owned();
        let created = self
            .db
            .write(move |conn| komek::accounts::users::create(conn, &crypto, &org, &email, role))
            .await
            .unwrap_or_else(|e| panic!("create user: {e}"));
        TestUser {
            id: created.id,
            organization_id: organization_id.to_owned(),
            email: created.email.as_str().to_owned(),
            password: created.password.expose().clone(),
            totp_uri: created.totp_uri.expose().clone(),
        }
    }

    /// Sets columns of a user directly (test setup only).
    pub async fn set_user_flags(
        &self,
        user_id: &str,
        must_change_password: bool,
        child_protection_trained: bool,
    ) {
        use diesel::prelude::*;
        use komek::db::schema::users;
        let id = user_id.to_owned();
        self.db
            .write(move |conn| {
                diesel::update(users::table.filter(users::id.eq(&id)))
                    .set((
                        users::must_change_password.eq(must_change_password),
                        users::child_protection_trained.eq(child_protection_trained),
                        users::totp_last_step.eq(None::<i64>),
                    ))
                    .execute(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap_or_else(|e| panic!("set flags: {e}"));
    }

    /// Forgets the last used TOTP step, so the current code works again (test setup only).
    pub async fn forget_totp_step(&self, user_id: &str) {
        use diesel::prelude::*;
        use komek::db::schema::users;
        let id = user_id.to_owned();
        self.db
            .write(move |conn| {
                diesel::update(users::table.filter(users::id.eq(&id)))
                    .set(users::totp_last_step.eq(None::<i64>))
                    .execute(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap_or_else(|e| panic!("forget step: {e}"));
    }

    /// `POST /api/v1/auth/login` with a JSON body.
    pub async fn post_login(&self, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("login: {e}"))
    }

    /// Signs `user` in with password and current code; panics unless it works.
    pub async fn login(&self, user: &TestUser) -> Tokens {
        self.forget_totp_step(&user.id).await;
        let response = self
            .post_login(&serde_json::json!({
                "email": user.email, "password": user.password, "totp": user.totp()
            }))
            .await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        assert_eq!(status, 200, "login failed: {body}");
        Tokens {
            access: body["access_token"].as_str().unwrap_or_default().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// A signed-in user of `role` (password already changed, so every permission of the role works).
    pub async fn staff(&self, organization_id: &str, role: komek::domain::Role) -> (TestUser, Tokens) {
        let user = self.create_user(organization_id, role).await;
        self.set_user_flags(&user.id, false, false).await;
        let tokens = self.login(&user).await;
        (user, tokens)
    }

    /// A request with a bearer token.
    pub fn authed(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(token)
    }

    /// `GET path` with a bearer token, answered with JSON (whatever the status).
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        self.authed(reqwest::Method::GET, path, token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// Inserts a bare case row (no personal data) for access tests; returns its id.
    pub async fn insert_case(
        &self,
        organization_id: &str,
        child_victim: bool,
        assignee_id: Option<&str>,
    ) -> String {
        use diesel::prelude::*;
        use komek::db::schema::cases;
        let id = uuid::Uuid::now_v7().to_string();
        let row_id = id.clone();
        let org = organization_id.to_owned();
        let assignee = assignee_id.map(str::to_owned);
        let (_, wrapped) = komek::crypto::Crypto::new(self.keys.clone())
            .new_record_key()
            .unwrap_or_else(|e| panic!("record key: {e}"));
        self.db
            .write(move |conn| {
                let now = chrono::Utc::now().naive_utc();
                diesel::insert_into(cases::table)
                    .values((
                        cases::id.eq(&row_id),
                        cases::organization_id.eq(&org),
                        cases::reference.eq(format!("KMK-{}", &row_id[row_id.len() - 8..])),
                        cases::risk.eq("high"),
                        cases::risk_rank.eq(1),
                        cases::child_victim.eq(child_victim),
                        cases::assignee_id.eq(&assignee),
                        cases::dek_wrapped.eq(wrapped.bytes),
                        cases::key_version.eq(wrapped.version),
                        cases::created_at.eq(now),
                        cases::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap_or_else(|e| panic!("insert case: {e}"));
        id
    }

    /// The audit entries, oldest first.
    pub async fn audit_entries(&self) -> Vec<komek::audit::StoredEntry> {
        use diesel::prelude::*;
        use komek::db::schema::audit_log;
        self.db
            .run(|conn| {
                audit_log::table
                    .order(audit_log::seq.asc())
                    .select(komek::audit::StoredEntry::as_select())
                    .load(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap_or_else(|e| panic!("audit entries: {e}"))
    }
}

/// Checks that none of `needles` is stored in clear: in the SQLite files (after a WAL checkpoint) or a
/// PostgreSQL data dump (which must contain rows of `dumped_table`), or in the test log. Returns the log.
pub fn assert_nothing_in_clear(app: &TestApp, needles: &[&str], dumped_table: &str) -> String {
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    match app.backend {
        Backend::Sqlite => {
            app.db.checkpoint_blocking().unwrap();
            for entry in std::fs::read_dir(app.storage.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("komek.db"))
                {
                    haystacks.push((path.display().to_string(), std::fs::read(&path).unwrap()));
                }
            }
        }
        Backend::Postgres => {
            let url = &app.storage.pg.as_ref().unwrap().url;
            let dump = std::process::Command::new("pg_dump")
                .args(["--data-only", "--inserts", url])
                .output()
                .unwrap_or_else(|e| {
                    panic!("pg_dump is needed for this test (.ci/run installs postgresql-client): {e}")
                });
            assert!(
                dump.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&dump.stderr)
            );
            let insert = format!("INSERT INTO public.{dumped_table}");
            assert!(
                String::from_utf8_lossy(&dump.stdout).contains(&insert),
                "the dump has {dumped_table} rows"
            );
            haystacks.push(("pg_dump".to_owned(), dump.stdout));
        }
    }
    let log = std::fs::read(log_file()).unwrap_or_default();
    haystacks.push(("log".to_owned(), log.clone()));
    for (name, bytes) in &haystacks {
        let hay = String::from_utf8_lossy(bytes);
        for needle in needles {
            assert!(!hay.contains(needle), "{name} contains personal data in clear");
        }
    }
    String::from_utf8_lossy(&log).into_owned()
}

/// Makes the database unavailable to an app: on SQLite another connection holds the write lock; on
/// PostgreSQL the database refuses connections and the app's connections are cut.
pub enum Outage {
    SqliteLock(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>),
    Postgres,
}

impl Outage {
    pub async fn begin(app: &TestApp) -> Outage {
        use diesel::connection::SimpleConnection as _;
        match app.backend {
            Backend::Sqlite => {
                let path = app.storage.dir.path().join("komek.db");
                let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
                let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
                let holder = std::thread::spawn(move || {
                    let mut conn = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
                    conn.batch_execute("BEGIN EXCLUSIVE").unwrap();
                    held_tx.send(()).unwrap();
                    let _ = stop_rx.recv();
                    conn.batch_execute("ROLLBACK").unwrap();
                });
                held_rx.recv().unwrap();
                Outage::SqliteLock(stop_tx, holder)
            }
            Backend::Postgres => {
                let pg = app.storage.pg.as_ref().unwrap();
                let mut admin = PgConnection::establish(&postgres_admin_url()).unwrap();
                let name = pg.url.rsplit('/').next().unwrap().to_owned();
                admin
                    .batch_execute(&format!(
                        "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
                    ))
                    .unwrap();
                Outage::Postgres
            }
        }
    }

    pub async fn end(self, app: &TestApp) {
        use diesel::connection::SimpleConnection as _;
        match self {
            Outage::SqliteLock(stop, holder) => {
                stop.send(()).unwrap();
                holder.join().unwrap();
            }
            Outage::Postgres => {
                let pg = app.storage.pg.as_ref().unwrap();
                let name = pg.url.rsplit('/').next().unwrap().to_owned();
                let mut admin = PgConnection::establish(&postgres_admin_url()).unwrap();
                admin
                    .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .unwrap();
            }
        }
    }
}

/// Every `.rs` file under `dir` (for tests that scan the sources).
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The secret of a capcom6 (SMS Gateway for Android) channel made by [`TestApp::sms_channel`].
pub const CAPCOM6_SECRET: &str = "signing_key=capcom6-test-key;user=komek;password=gateway-pass";

#[allow(dead_code)]
impl TestApp {
    /// A capcom6 SMS channel of the organization; returns its id.
    pub async fn sms_channel(&self, organization_id: &str) -> String {
        self.create_channel(organization_id, "capcom6", CAPCOM6_SECRET)
            .await
    }

    /// Delivers an inbound SMS to a [`TestApp::sms_channel`] channel, signed as capcom6 signs, and waits
    /// until it is processed; returns the webhook's status.
    pub async fn send_sms(&self, channel: &str, event_id: &str, from: &str, text: &str) -> u16 {
        use hmac::{KeyInit as _, Mac as _};
        let body = serde_json::to_vec(&serde_json::json!({
            "deviceId": "ffffffffceb0b1db00000193991c27e5", "event": "sms:received", "id": event_id,
            "payload": { "message": text, "receivedAt": "2026-11-22T07:29:55.000+05:00", "messageId": event_id,
                         "phoneNumber": from, "simNumber": 1 },
            "webhookId": "LreFUt-Z3sSq0JufY9uWB",
        }))
        .unwrap();
        let timestamp = chrono::Utc::now().timestamp().to_string();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"capcom6-test-key").unwrap();
        mac.update(&body);
        mac.update(timestamp.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let response = self
            .client
            .post(self.url(&format!("/webhooks/capcom6/{channel}/sms")))
            .header("content-type", "application/json")
            .header("X-Timestamp", timestamp)
            .header("X-Signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        self.settle().await;
        status
    }

    /// The id of the organization with this slug.
    pub async fn org_id(&self, slug: &str) -> String {
        use diesel::prelude::*;
        use komek::db::schema::organizations;
        let slug = slug.to_owned();
        self.db
            .run(move |conn| {
                organizations::table
                    .filter(organizations::slug.eq(&slug))
                    .select(organizations::id)
                    .first::<String>(conn)
                    .map_err(komek::db::DbError::from)
            })
            .await
            .unwrap()
    }
}
