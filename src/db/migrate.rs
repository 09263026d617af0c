//! Embedded migrations, one tree per backend (`migrations/sqlite`, `migrations/postgres`, same version
//! names). They are compiled into the binary, so `komek serve` and `komek migrate` need no files on disk.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::connection::AnyConnection;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A migration that could not be applied or reverted.
#[derive(Debug, thiserror::Error)]
#[error("database migration failed: {0}")]
pub struct MigrationError(String);

fn failed(err: impl std::fmt::Display) -> MigrationError {
    MigrationError(err.to_string())
}

/// Applies every pending migration; returns the versions applied.
pub fn run_pending(conn: &mut AnyConnection) -> Result<Vec<String>, MigrationError> {
    let applied = match conn {
        AnyConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map_err(failed)?,
        AnyConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map_err(failed)?,
    };
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// Reverts every applied migration (used by the up → down → up check; not exposed to operators).
pub fn revert_all(conn: &mut AnyConnection) -> Result<Vec<String>, MigrationError> {
    let reverted = match conn {
        AnyConnection::Postgresql(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map_err(failed)?,
        AnyConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map_err(failed)?,
    };
    Ok(reverted.into_iter().map(|v| v.to_string()).collect())
}

/// True when the database has every migration this binary knows.
pub fn is_current(conn: &mut AnyConnection) -> Result<bool, MigrationError> {
    let pending = match conn {
        AnyConnection::Postgresql(c) => c.has_pending_migration(POSTGRES_MIGRATIONS).map_err(failed)?,
        AnyConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS).map_err(failed)?,
    };
    Ok(!pending)
}
