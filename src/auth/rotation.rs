//! Key rotation (`komek keys rotate`).
//!
//! - **JWT** (`--jwt`): a new signing key is appended to the keys file. New tokens are signed with it;
//!   tokens signed with an older key keep verifying (by their `kid`) until they expire, at most 15 minutes.
//!   Remove an old key from the file only after that.
//! - **Data** (`--data`): a new key-encryption key version is appended, then every stored data key is
//!   re-wrapped under it ([`rewrap_all`]), table by table in batches, each batch one transaction. The
//!   personal data itself is not re-encrypted (its data keys do not change). Old versions stay in the file so
//!   that rows written by a server still running with the old keys can be re-wrapped by running
//!   `komek keys rewrap` after restarting it; once no row uses an old version, it may be deleted.
//!
//! The running server reads the keys file at start: restart it after a rotation. The file is rewritten
//! atomically (a temporary file with mode 0600, checked by loading it, then renamed over the old one).
//!
//! Every place a wrapped data key is stored is listed once, in [`WRAPPED_KEY_COLUMNS`] (via the
//! `wrapped_key_tables!` macro): add new tables there.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use diesel::prelude::*;
use rand::RngCore as _;

use crate::crypto::{Crypto, CryptoError};
use crate::db::{AnyConnection, Db, DbError};
use crate::keys::{self, KeyError, MIN_KEY_BYTES};

/// A rotation failure.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("cannot rewrite the keys file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("re-wrapping {table}.{column} row {row}: {source}")]
    Rewrap {
        table: &'static str,
        column: &'static str,
        row: String,
        source: CryptoError,
    },
}

impl From<diesel::result::Error> for RotationError {
    fn from(err: diesel::result::Error) -> Self {
        RotationError::Db(err.into())
    }
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    BASE64.encode(bytes)
}

fn file_error(path: &Path, err: impl std::fmt::Display) -> RotationError {
    RotationError::File {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

/// Reads the keys file as a TOML table, lets `change` edit it, checks the result loads, and replaces the
/// file atomically.
fn edit_keys_file(
    path: &Path,
    change: impl FnOnce(&mut toml::Table) -> Result<(), String>,
) -> Result<(), RotationError> {
    // Load first: refuse to rotate a file that is not valid to begin with.
    keys::load(path)?;
    let text = fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let header: String = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| file_error(path, e))?;
    change(&mut table).map_err(|e| file_error(path, e))?;
    let body = toml::to_string(&table).map_err(|e| file_error(path, e))?;
    let temp = path.with_extension(format!("rotating-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(&temp).map_err(|e| file_error(&temp, e))?;
        file.write_all(format!("{header}{body}").as_bytes())
            .map_err(|e| file_error(&temp, e))?;
        file.sync_all().map_err(|e| file_error(&temp, e))?;
        keys::load(&temp)?;
        fs::rename(&temp, path).map_err(|e| file_error(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn array<'a>(table: &'a mut toml::Table, name: &str) -> Result<&'a mut Vec<toml::Value>, String> {
    table
        .get_mut(name)
        .and_then(toml::Value::as_array_mut)
        .ok_or_else(|| format!("`{name}` is missing"))
}

/// Appends a new JWT signing key; returns its `kid`.
pub fn add_jwt_key(path: &Path) -> Result<String, RotationError> {
    let mut kid_bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut kid_bytes);
    let kid = hex::encode(kid_bytes);
    let new_kid = kid.clone();
    edit_keys_file(path, move |table| {
        let mut entry = toml::Table::new();
        entry.insert("kid".into(), toml::Value::String(new_kid));
        entry.insert("secret".into(), toml::Value::String(random_b64(MIN_KEY_BYTES)));
        array(table, "jwt_keys")?.push(toml::Value::Table(entry));
        Ok(())
    })?;
    Ok(kid)
}

/// Appends a new data key-encryption key; returns its version.
pub fn add_data_key(path: &Path) -> Result<i32, RotationError> {
    let current = keys::load(path)?
        .data
        .iter()
        .map(|k| k.version)
        .max()
        .unwrap_or(0);
    let version = current + 1;
    edit_keys_file(path, move |table| {
        let mut entry = toml::Table::new();
        entry.insert("version".into(), toml::Value::Integer(i64::from(version)));
        entry.insert("key".into(), toml::Value::String(random_b64(MIN_KEY_BYTES)));
        array(table, "data_keys")?.push(toml::Value::Table(entry));
        Ok(())
    })?;
    Ok(version)
}

/// How many rows of one column were re-wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrapped {
    pub table: &'static str,
    pub column: &'static str,
    pub rows: u64,
}

macro_rules! wrapped_key_tables {
    ($( $table:ident . $dek:ident / $version:ident ; )*) => {
        /// Every `(table, wrapped data key column, key version column)` in the database. The one list to
        /// extend when a table gets its own data keys.
        pub const WRAPPED_KEY_COLUMNS: &[(&str, &str, &str)] = &[
            $((stringify!($table), stringify!($dek), stringify!($version))),*
        ];

        /// Re-wraps every stored data key not yet under the current key-encryption key (`current`, the
        /// highest version in `crypto`'s keyset). Idempotent.
        pub fn rewrap_all(db: &Db, crypto: &Crypto, current: i32) -> Result<Vec<Rewrapped>, RotationError> {
            let mut done = Vec::new();
            $(
                let mut rows = 0_u64;
                loop {
                    let batch = db.write_blocking(|conn: &mut AnyConnection| -> Result<u64, RotationError> {
                        use crate::db::schema::$table::dsl as t;
                        let pending: Vec<(String, Option<Vec<u8>>, Option<i32>)> = t::$table
                            .filter(t::$version.ne(current))
                            .filter(t::$dek.is_not_null())
                            .select((t::id, t::$dek.nullable(), t::$version.nullable()))
                            .limit(500)
                            .load(conn)?;
                        let mut count = 0;
                        for (id, dek, version) in pending {
                            let (Some(dek), Some(version)) = (dek, version) else { continue };
                            let rewrapped = crypto.rewrap(&dek, version).map_err(|source| RotationError::Rewrap {
                                table: stringify!($table),
                                column: stringify!($dek),
                                row: id.clone(),
                                source,
                            })?;
                            diesel::update(t::$table.filter(t::id.eq(&id)))
                                .set((t::$dek.eq(rewrapped.bytes), t::$version.eq(rewrapped.version)))
                                .execute(conn)?;
                            count += 1;
                        }
                        Ok(count)
                    })?;
                    if batch == 0 {
                        break;
                    }
                    rows += batch;
                }
                done.push(Rewrapped { table: stringify!($table), column: stringify!($dek), rows });
            )*
            Ok(done)
        }
    };
}

wrapped_key_tables! {
    users.totp_dek / totp_key_version;
    channels.secret_dek / key_version;
    contacts.dek_wrapped / key_version;
    cases.dek_wrapped / key_version;
    reports.dek_wrapped / key_version;
    outbox.dek_wrapped / key_version;
}
