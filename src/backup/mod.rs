//! Backups that restore: `komek backup` takes a consistent copy of the live database while Komek serves,
//! optionally encrypted to the organization's `age` public key, and `komek restore` puts one back.
//!
//! - SQLite: `VACUUM INTO` copies the database inside one read transaction, so the copy holds every
//!   transaction committed before it started and none half-way, while the server keeps writing (WAL).
//! - PostgreSQL: `pg_dump --format=custom` (one snapshot) and `pg_restore --single-transaction`; the
//!   client tools must match the server's major version, and a failing tool stops the backup loudly.
//!
//! A backup is a faithful copy of every row (the audit log's hash chain included), so a restored database
//! verifies as the original did. Personal data inside it is still encrypted under the keys file, which is
//! never part of a backup: without it a backup is unreadable, so keep it — elsewhere.
//!
//! Files are written under a temporary name, synced and renamed, so a crash never leaves a truncated file
//! under the final name; they are readable by their owner only.

mod age_file;
mod postgres;
mod rotation;
mod sqlite;

use std::path::{Path, PathBuf};

use crate::db::DatabaseUrl;

pub use age_file::parse_recipient;
pub use rotation::{backup_name, prune};

/// What a backup file holds, told by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A SQLite database file.
    Sqlite,
    /// A `pg_dump --format=custom` archive.
    PgDump,
    /// An `age`-encrypted file (one of the above inside).
    Age,
}

impl Format {
    /// Recognises a backup by its header.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        if head.starts_with(b"SQLite format 3\0") {
            Some(Format::Sqlite)
        } else if head.starts_with(b"PGDMP") {
            Some(Format::PgDump)
        } else if head.starts_with(b"age-encryption.org/v1") {
            Some(Format::Age)
        } else {
            None
        }
    }

    /// The file name extension of a plain backup of this backend.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Sqlite => "sqlite",
            Format::PgDump => "pgdump",
            Format::Age => "age",
        }
    }
}

/// A backup or restore problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Refused(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the database refused the backup or restore: {0}")]
    Database(String),
    #[error("{tool} failed ({status}): {stderr}")]
    Tool {
        tool: &'static str,
        status: String,
        stderr: String,
    },
    #[error("encryption: {0}")]
    Age(String),
}

pub(crate) fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

/// What `backup` produced.
#[derive(Debug)]
pub struct BackupDone {
    pub path: PathBuf,
    pub bytes: u64,
    pub encrypted: bool,
}

/// Takes a backup of `database` into `out` (which must not exist), encrypted to `recipient` if given.
pub fn backup(
    database: &DatabaseUrl,
    out: &Path,
    recipient: Option<&str>,
) -> Result<BackupDone, BackupError> {
    if out.exists() {
        return Err(BackupError::Refused(format!(
            "{} already exists; a backup never overwrites a file",
            out.display()
        )));
    }
    let recipient = recipient
        .map(parse_recipient)
        .transpose()
        .map_err(BackupError::Age)?;
    let partial = sibling(out, "partial");
    let plain = sibling(out, "plain");
    let result = (|| {
        match database {
            DatabaseUrl::Sqlite(path) => sqlite::copy_live(path, &plain)?,
            DatabaseUrl::Postgres(url) => postgres::dump(url, &plain)?,
        }
        match &recipient {
            Some(recipient) => {
                age_file::encrypt_file(&plain, &partial, recipient)?;
                remove_if_exists(&plain)?;
            }
            None => std::fs::rename(&plain, &partial).map_err(io_error("cannot move the copy in place"))?,
        }
        restrict_and_sync(&partial)?;
        std::fs::rename(&partial, out).map_err(io_error(format!("cannot write {}", out.display())))?;
        sync_parent(out)
    })();
    if result.is_err() {
        let _ = remove_if_exists(&plain);
        let _ = remove_if_exists(&partial);
    }
    result?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(BackupDone {
        path: out.to_owned(),
        bytes,
        encrypted: recipient.is_some(),
    })
}

/// Puts the backup `file` back into `database`. An encrypted backup needs the identity file (the
/// `AGE-SECRET-KEY-1…` matching the recipient). Refuses a database that holds data unless `force`.
/// Komek must be stopped while a SQLite database is restored.
pub fn restore(
    database: &DatabaseUrl,
    file: &Path,
    identity: Option<&Path>,
    force: bool,
) -> Result<Format, BackupError> {
    let format = sniff_file(file)?;
    let staging_dir = match database {
        DatabaseUrl::Sqlite(path) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_owned),
        DatabaseUrl::Postgres(_) => None,
    }
    .unwrap_or_else(|| PathBuf::from("."));
    crate::db::create_private_dir(&staging_dir)
        .map_err(io_error(format!("cannot create {}", staging_dir.display())))?;
    // An encrypted backup is decrypted next to the target first (the target's folder is private).
    let decrypted = staging_dir.join(format!(".komek-restore-{}", uuid::Uuid::new_v4().simple()));
    let (source, inner) = if format == Format::Age {
        let identity = identity.ok_or_else(|| {
            BackupError::Refused(
                "this backup is encrypted: give the organization's age identity file with --identity".into(),
            )
        })?;
        age_file::decrypt_file(file, &decrypted, identity)?;
        let inner = sniff_file(&decrypted)?;
        (decrypted.clone(), inner)
    } else {
        (file.to_owned(), format)
    };
    let result = match (database, inner) {
        (DatabaseUrl::Sqlite(target), Format::Sqlite) => sqlite::restore(&source, target, force),
        (DatabaseUrl::Postgres(url), Format::PgDump) => postgres::restore(&source, url, force),
        (DatabaseUrl::Sqlite(_), _) => Err(BackupError::Refused(
            "this is not a SQLite backup, and KOMEK_DATABASE_URL is a SQLite database".into(),
        )),
        (DatabaseUrl::Postgres(_), _) => Err(BackupError::Refused(
            "this is not a PostgreSQL backup (pg_dump custom format), and KOMEK_DATABASE_URL is PostgreSQL"
                .into(),
        )),
    };
    let _ = remove_if_exists(&decrypted);
    result.map(|()| inner)
}

fn sniff_file(file: &Path) -> Result<Format, BackupError> {
    let mut head = [0u8; 32];
    let mut reader =
        std::fs::File::open(file).map_err(io_error(format!("cannot open {}", file.display())))?;
    let n =
        read_up_to(&mut reader, &mut head).map_err(io_error(format!("cannot read {}", file.display())))?;
    Format::sniff(&head[..n]).ok_or_else(|| {
        BackupError::Refused(format!(
            "{} is not a Komek backup (neither SQLite, pg_dump custom format, nor age-encrypted)",
            file.display()
        ))
    })
}

fn read_up_to(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A hidden temporary name beside `path`.
pub(crate) fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{what}-{}", uuid::Uuid::new_v4().simple()))
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), BackupError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format!("cannot remove {}", path.display()))(e)),
    }
}

/// Makes `path` readable by its owner only and flushes it to disk.
pub(crate) fn restrict_and_sync(path: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(format!("cannot restrict {}", path.display())))?;
    }
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_error(format!("cannot sync {}", path.display())))
}

pub(crate) fn sync_parent(path: &Path) -> Result<(), BackupError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(io_error(format!("cannot sync {}", parent.display())))?;
    }
    Ok(())
}
