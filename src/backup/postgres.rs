//! PostgreSQL: `pg_dump --format=custom` and `pg_restore`, run as child processes. The password, if the
//! URL has one, goes to them in `PGPASSWORD`, never on a command line other users can list. Row-level
//! security stays on (`--enable-row-security`): Komek's role is not allowed to bypass it, and with no
//! organization set its policies let every row through.

use std::path::Path;
use std::process::Command;

use diesel::{Connection as _, PgConnection, RunQueryDsl as _};

use super::BackupError;

/// The URL without its password, and the password.
fn split_password(url: &str) -> Result<(String, Option<String>), BackupError> {
    let mut parsed =
        url::Url::parse(url).map_err(|_| BackupError::Refused("KOMEK_DATABASE_URL is not a URL".into()))?;
    let password = parsed.password().map(|p| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    });
    if password.is_some() {
        let _ = parsed.set_password(None);
    }
    Ok((parsed.to_string(), password))
}

fn run(tool: &'static str, url: &str, args: &[&std::ffi::OsStr]) -> Result<(), BackupError> {
    let (url, password) = split_password(url)?;
    let mut command = Command::new(tool);
    command.args(args).arg("--dbname").arg(&url).arg("--no-password");
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().map_err(|e| {
        BackupError::Refused(format!(
            "cannot run {tool} ({e}); install the PostgreSQL client tools of the server's major version \
             (Debian: postgresql-client)"
        ))
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BackupError::Tool {
            tool,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Dumps the database into the new file `out`.
pub fn dump(url: &str, out: &Path) -> Result<(), BackupError> {
    run(
        "pg_dump",
        url,
        &[
            "--format=custom".as_ref(),
            "--enable-row-security".as_ref(),
            "--file".as_ref(),
            out.as_os_str(),
        ],
    )
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn holds_data(url: &str) -> Result<bool, BackupError> {
    let mut conn = PgConnection::establish(url).map_err(|e| BackupError::Database(e.to_string()))?;
    let exists: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'organizations'",
    )
    .get_result(&mut conn)
    .map_err(|e| BackupError::Database(e.to_string()))?;
    if exists.n == 0 {
        return Ok(false);
    }
    let rows: Count = diesel::sql_query("SELECT COUNT(*) AS n FROM organizations")
        .get_result(&mut conn)
        .map_err(|e| BackupError::Database(e.to_string()))?;
    Ok(rows.n > 0)
}

/// Restores the dump `source` into the database at `url`, in one transaction: all of it or nothing.
pub fn restore(source: &Path, url: &str, force: bool) -> Result<(), BackupError> {
    if !force && holds_data(url)? {
        return Err(BackupError::Refused(
            "the database already holds data; stop Komek and add --force to replace it with the backup"
                .into(),
        ));
    }
    run(
        "pg_restore",
        url,
        &[
            "--clean".as_ref(),
            "--if-exists".as_ref(),
            "--single-transaction".as_ref(),
            "--exit-on-error".as_ref(),
            "--no-owner".as_ref(),
            "--enable-row-security".as_ref(),
            source.as_os_str(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() -> Result<(), BackupError> {
        let (url, password) = split_password("postgres://komek:s%40cret@db:5432/komek")?;
        assert_eq!(url, "postgres://komek@db:5432/komek");
        assert_eq!(password.as_deref(), Some("s@cret"));
        let (url, password) = split_password("postgres://komek@db/komek")?;
        assert_eq!((url.as_str(), password), ("postgres://komek@db/komek", None));
        Ok(())
    }
}
