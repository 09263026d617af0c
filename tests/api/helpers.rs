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
    /// Changes any other setting (mail, outbox worker, SMS limits...).
    pub tweak: Option<SettingsTweak>,
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
            tweak: None,
        }
    }
}

/// The public URL test servers believe they are reached at (as behind a TLS proxy).
pub const PUBLIC_URL: &str = "https://komek.test";

/// A running application. Not every suite uses every field.
#[allow(dead_code)]
pub struct TestApp {
    pub address: String,
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
    log_file();
    let storage = TestStorage::new(backend);
    let settings = test_settings(&storage, &options);
    let keys = Arc::new(settings.load_keys().unwrap_or_else(|e| panic!("keys: {e}")));
    let db = open_migrated(&settings);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let settings = Arc::new(settings);
    let state =
        AppState::load(settings.clone(), db.clone(), keys.clone()).unwrap_or_else(|e| panic!("state: {e}"));
    let app = Application::build(state, listener).unwrap_or_else(|e| panic!("build: {e}"));
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run());
    let client = http_client();
    TestApp {
        address,
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
