//! One connection type over both backends, and the r2d2 manager that opens it.
//!
//! `AnyConnection` is diesel's `MultiConnection` over PostgreSQL and SQLite, so queries are written once.
//! The manager picks the variant from the parsed URL instead of letting diesel try each backend in turn,
//! and prepares every new SQLite connection for server use: `busy_timeout` (wait for the writer instead of
//! failing), `foreign_keys=ON` (SQLite's default is off) and the configured `synchronous` level (FULL by
//! default, so an acknowledged report survives a power cut).

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

use super::url::DatabaseUrl;

/// A connection to whichever backend the configuration chose.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// SQLite (last, as diesel's derive expects the most permissive backend last).
    Sqlite(SqliteConnection),
}

/// SQLite's `synchronous` pragma levels that are safe with WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// fsync the WAL on every commit: nothing acknowledged is lost on power failure.
    Full,
    /// fsync only at checkpoints: faster, may lose the last commits on power failure.
    Normal,
}

impl SqliteSynchronous {
    fn pragma(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

/// How connections are opened.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Create the SQLite file when it does not exist. Off in production, where a mistyped path must fail.
    pub create_if_missing: bool,
    /// SQLite `synchronous` level.
    pub sqlite_synchronous: SqliteSynchronous,
    /// SQLite `busy_timeout` in milliseconds.
    pub sqlite_busy_timeout_ms: u32,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            create_if_missing: true,
            sqlite_synchronous: SqliteSynchronous::Full,
            sqlite_busy_timeout_ms: 5_000,
        }
    }
}

/// Opens a connection for `url`, applying the per-connection settings.
pub fn establish(url: &DatabaseUrl, options: &ConnectOptions) -> Result<AnyConnection, ConnectionError> {
    match url {
        DatabaseUrl::Postgres(raw) => {
            let mut conn = PgConnection::establish(raw)?;
            conn.batch_execute("SET synchronous_commit = on; SET application_name = 'komek'")
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(AnyConnection::Postgresql(conn))
        }
        DatabaseUrl::Sqlite(path) => {
            if !options.create_if_missing && !path.exists() {
                return Err(ConnectionError::BadConnection(format!(
                    "the SQLite database {} does not exist; check KOMEK_DATABASE_URL, or run `komek migrate` \
                     to create it on purpose",
                    path.display()
                )));
            }
            let path_text = path.to_str().ok_or_else(|| {
                ConnectionError::InvalidConnectionUrl("the SQLite path is not valid UTF-8".to_owned())
            })?;
            let mut conn = SqliteConnection::establish(path_text)?;
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {};",
                options.sqlite_busy_timeout_ms,
                options.sqlite_synchronous.pragma()
            ))
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(AnyConnection::Sqlite(conn))
        }
    }
}

/// The r2d2 manager: opens connections with [`establish`] and checks them with a ping.
#[derive(Clone, Debug)]
pub struct Manager {
    url: DatabaseUrl,
    options: ConnectOptions,
}

impl Manager {
    /// A manager for `url` with `options`.
    pub fn new(url: DatabaseUrl, options: ConnectOptions) -> Self {
        Manager { url, options }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<AnyConnection, ConnectionError> {
        establish(&self.url, &self.options)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), ConnectionError> {
        conn.ping()
            .map_err(|e| ConnectionError::BadConnection(e.to_string()))
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}
