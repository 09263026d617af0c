//! The database: one connection type over SQLite and PostgreSQL, a pool, embedded migrations, and the
//! [`Db`] handle through which every unit of work runs.
//!
//! Diesel is synchronous, so every unit of work — pool checkout included — runs as one closure on tokio's
//! blocking pool, inside the caller's tracing span. A transaction therefore never spans an `.await`, and a
//! request that is dropped half-way still commits or rolls back cleanly. [`Db::write`] opens
//! `BEGIN IMMEDIATE` on SQLite so that a writer waits for the lock up front instead of failing with
//! `SQLITE_BUSY` when a read transaction tries to upgrade.

pub mod connection;
pub mod lock;
pub mod migrate;
pub mod schema;
pub mod url;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::result::Error as DieselError;
use tracing::Instrument as _;

pub use connection::{AnyConnection, ConnectOptions, SqliteSynchronous};
pub use url::{Backend, DatabaseUrl};

/// Errors of the storage layer. Each has a stable code; none carries personal data.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time (pool exhausted or database down): answer 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    /// A migration failed.
    #[error(transparent)]
    Migration(#[from] migrate::MigrationError),
    /// The blocking task panicked or was cancelled.
    #[error("database task failed: {0}")]
    Task(String),
}

impl DbError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DbError::Unavailable(_) => "database_unavailable",
            DbError::Query(DieselError::NotFound) => "not_found",
            DbError::Query(_) => "database_error",
            DbError::Migration(_) => "migration_failed",
            DbError::Task(_) => "database_task_failed",
        }
    }

    /// True when the error means the database could not be reached (as opposed to a bad query).
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Unavailable(_) => true,
            DbError::Query(DieselError::DatabaseError(kind, info)) => {
                // SQLite reports a writer that waited out busy_timeout as "database is locked".
                matches!(kind, diesel::result::DatabaseErrorKind::ClosedConnection)
                    || info.message().contains("database is locked")
                    || info.message().contains("database is busy")
            }
            _ => false,
        }
    }
}

/// How the pool is sized and how long a request waits for a connection.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub max_size: u32,
    /// How long a checkout waits before the request is answered 503.
    pub checkout_timeout: Duration,
}

/// A snapshot of the pool's use.
#[derive(Clone, Copy, Debug)]
pub struct PoolUse {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// A cloneable handle to the pool.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<connection::Manager>,
    backend: Backend,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects, switches SQLite to WAL, and builds the pool. Blocking: call before the server starts or
    /// from a blocking context.
    pub fn connect(url: &DatabaseUrl, connect: ConnectOptions, pool: PoolOptions) -> Result<Db, DbError> {
        if let DatabaseUrl::Sqlite(path) = url {
            if let Some(parent) = path
                .parent()
                .filter(|p| connect.create_if_missing && !p.as_os_str().is_empty())
            {
                create_private_dir(parent).map_err(|e| {
                    DbError::Unavailable(format!("cannot create the folder {}: {e}", parent.display()))
                })?;
            }
            let mut first =
                connection::establish(url, &connect).map_err(|e| DbError::Unavailable(e.to_string()))?;
            enable_wal(&mut first)?;
        }
        let manager = connection::Manager::new(url.clone(), connect);
        let pool = r2d2::Pool::builder()
            .max_size(pool.max_size)
            .min_idle(Some(0))
            .connection_timeout(pool.checkout_timeout)
            .test_on_check_out(true)
            .build_unchecked(manager);
        Ok(Db {
            pool,
            backend: url.backend(),
        })
    }

    /// Which backend this handle talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool's connections: open, idle among them, and the most it may open (for metrics).
    pub fn pool_use(&self) -> PoolUse {
        let state = self.pool.state();
        PoolUse {
            open: state.connections,
            idle: state.idle_connections,
            max: self.pool.max_size(),
        }
    }

    /// Runs `f` with a pooled connection on the blocking pool (no transaction is opened for you).
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        let joined = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = checkout(&pool)?;
            f(&mut conn)
        })
        .in_current_span()
        .await;
        joined.map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// Runs `f` inside one write transaction (`BEGIN IMMEDIATE` on SQLite), committing when it returns `Ok`
    /// and rolling back when it returns `Err`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<DieselError> + Send + 'static,
    {
        self.run(move |conn| write_transaction(conn, f)).await
    }

    /// Like [`Db::write`], for work done on behalf of a staff member of `organization_id`: on PostgreSQL the
    /// transaction first runs `SET LOCAL komek.organization_id`, so row-level security hides every other
    /// organization's case rows from it even if a query forgets its filter (a second wall; queries still
    /// filter by organization). A no-op on SQLite, which has no row-level security.
    pub async fn write_as<T, E, F>(&self, organization_id: &str, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<DieselError> + Send + 'static,
    {
        let organization_id = organization_id.to_owned();
        self.run(move |conn| {
            write_transaction(conn, |conn| {
                set_tenant(conn, &organization_id)?;
                f(conn)
            })
        })
        .await
    }

    /// Like [`Db::run`] but inside a read transaction scoped to `organization_id` (see [`Db::write_as`]).
    pub async fn run_as<T, E, F>(&self, organization_id: &str, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<DieselError> + Send + 'static,
    {
        let organization_id = organization_id.to_owned();
        self.run(move |conn| {
            <AnyConnection as diesel::Connection>::transaction(conn, |conn| {
                set_tenant(conn, &organization_id)?;
                f(conn)
            })
        })
        .await
    }

    /// Blocking variant of [`Db::run`] for command-line tools and startup.
    pub fn run_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E>,
        E: From<DbError>,
    {
        let mut conn = checkout(&self.pool)?;
        f(&mut conn)
    }

    /// Blocking variant of [`Db::write`] for command-line tools and startup.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, E>,
        E: From<DbError> + From<DieselError>,
    {
        let mut conn = checkout(&self.pool)?;
        write_transaction(&mut conn, f)
    }

    /// Applies pending migrations; returns the versions applied.
    pub fn migrate_blocking(&self) -> Result<Vec<String>, DbError> {
        self.run_blocking(|conn| migrate::run_pending(conn).map_err(DbError::from))
    }

    /// Checkpoints SQLite's WAL into the main file (on shutdown); a no-op on PostgreSQL.
    pub fn checkpoint_blocking(&self) -> Result<(), DbError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        self.run_blocking(|conn| {
            conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                .map_err(DbError::from)
        })
    }
}

/// Creates a folder (and its parents) readable only by the service user.
pub fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

fn checkout(
    pool: &r2d2::Pool<connection::Manager>,
) -> Result<r2d2::PooledConnection<connection::Manager>, DbError> {
    pool.get().map_err(|e| DbError::Unavailable(e.to_string()))
}

/// Runs `f` in a transaction that takes SQLite's write lock at `BEGIN`.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<DieselError>,
{
    match conn {
        AnyConnection::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
        }
        AnyConnection::Postgresql(_) => {
            <AnyConnection as diesel::Connection>::TransactionManager::begin_transaction(conn)?;
        }
    }
    match f(conn) {
        Ok(value) => {
            <AnyConnection as diesel::Connection>::TransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            // The closure's error is the one worth reporting; a failed rollback leaves the connection
            // marked broken, and r2d2 discards it.
            if let Err(rollback) =
                <AnyConnection as diesel::Connection>::TransactionManager::rollback_transaction(conn)
            {
                tracing::warn!(error = %rollback, "rollback after a failed transaction also failed");
            }
            Err(err)
        }
    }
}

/// Scopes the current transaction to one organization for PostgreSQL row-level security
/// (`set_config(..., is_local = true)` is `SET LOCAL` with a bound value). Must run inside a transaction;
/// a no-op on SQLite.
pub fn set_tenant(conn: &mut AnyConnection, organization_id: &str) -> Result<(), DieselError> {
    use diesel::RunQueryDsl as _;
    if let AnyConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT set_config('komek.organization_id', $1, true)")
            .bind::<diesel::sql_types::Text, _>(organization_id)
            .execute(pg)?;
    }
    Ok(())
}

fn enable_wal(conn: &mut AnyConnection) -> Result<(), DbError> {
    // Switching to WAL needs a moment of exclusive access; another process opening the same file at start
    // can make it busy, so retry briefly instead of failing the start.
    let mut last = None;
    for _ in 0..20 {
        match conn.batch_execute("PRAGMA journal_mode = WAL") {
            Ok(()) => return Ok(()),
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Err(last
        .map(DbError::from)
        .unwrap_or_else(|| DbError::Unavailable("cannot enable WAL".to_owned())))
}
