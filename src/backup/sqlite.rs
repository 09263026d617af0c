//! SQLite: a consistent copy of a live database with `VACUUM INTO`, and putting a copy back in place.

use std::path::Path;

use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, RunQueryDsl as _, SqliteConnection};

use super::{BackupError, io_error, remove_if_exists, restrict_and_sync, sibling, sync_parent};

/// How long the copy waits for a writer holding the lock at the moment it starts.
const BUSY_TIMEOUT_MS: u32 = 30_000;

fn open(path: &Path) -> Result<SqliteConnection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Refused(format!(
            "the SQLite database {} does not exist",
            path.display()
        )));
    }
    let mut conn = SqliteConnection::establish(&path.display().to_string())
        .map_err(|e| BackupError::Database(e.to_string()))?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
        .map_err(|e| BackupError::Database(e.to_string()))?;
    Ok(conn)
}

/// Copies the live database at `database` into the new file `out`, as of one moment.
pub fn copy_live(database: &Path, out: &Path) -> Result<(), BackupError> {
    let mut conn = open(database)?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(out.display().to_string())
        .execute(&mut conn)
        .map_err(|e| BackupError::Database(e.to_string()))?;
    check_integrity(out)
}

#[derive(diesel::QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn check_integrity(path: &Path) -> Result<(), BackupError> {
    let mut conn = open(path)?;
    let lines: Vec<Line> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .map_err(|e| BackupError::Database(e.to_string()))?;
    match lines.as_slice() {
        [only] if only.integrity_check == "ok" => Ok(()),
        _ => Err(BackupError::Refused(format!(
            "{} failed SQLite's integrity check",
            path.display()
        ))),
    }
}

/// True when `path` holds a Komek database with at least one organization.
fn holds_data(path: &Path) -> Result<bool, BackupError> {
    if !path.exists() {
        return Ok(false);
    }
    let mut conn = open(path)?;
    let tables: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'organizations'",
    )
    .get_result(&mut conn)
    .map_err(|e| BackupError::Database(e.to_string()))?;
    if tables.n == 0 {
        return Ok(false);
    }
    let rows: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM organizations")
        .get_result(&mut conn)
        .map_err(|e| BackupError::Database(e.to_string()))?;
    Ok(rows.n > 0)
}

/// Replaces `target` with the backup `source` (Komek must be stopped).
pub fn restore(source: &Path, target: &Path, force: bool) -> Result<(), BackupError> {
    check_integrity(source)?;
    if !force && holds_data(target)? {
        return Err(BackupError::Refused(format!(
            "{} already holds data; stop Komek and add --force to replace it with the backup",
            target.display()
        )));
    }
    let staged = sibling(target, "restore");
    std::fs::copy(source, &staged).map_err(io_error(format!("cannot copy to {}", staged.display())))?;
    restrict_and_sync(&staged)?;
    // The old database's write-ahead log must not be replayed onto the restored file.
    for suffix in ["-wal", "-shm"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        remove_if_exists(Path::new(&side))?;
    }
    std::fs::rename(&staged, target).map_err(io_error(format!("cannot write {}", target.display())))?;
    sync_parent(target)
}
