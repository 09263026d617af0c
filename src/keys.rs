//! The server's keys: JWT signing keys (by `kid`), data key-encryption keys (by version) and the blind-index
//! key. They live in a TOML file outside the database (mode 0600). On a development machine the first
//! start generates one in the data folder; in production the operator makes one with `komek keys generate`
//! and points `KOMEK_KEYS_FILE` at it, and the service refuses generated, missing or short keys.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::sensitive::Sensitive;

/// Shortest acceptable key, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Where the keys came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOrigin {
    /// Made automatically on a first start without configuration (development only).
    Generated,
    /// Made on purpose by an operator with `komek keys generate`.
    Operator,
}

/// A symmetric key; prints nothing.
pub type KeyBytes = Sensitive<Vec<u8>>;

/// A JWT signing key and its id.
#[derive(Debug, Clone)]
pub struct JwtKey {
    /// Key id, carried in the token header.
    pub kid: String,
    /// HMAC secret.
    pub secret: KeyBytes,
}

/// A key-encryption key and its version (stored beside every wrapped data key).
#[derive(Debug, Clone)]
pub struct DataKey {
    /// Version number, increasing with each rotation.
    pub version: i32,
    /// The key.
    pub key: KeyBytes,
}

/// Every key the server holds. The last JWT key and the highest data-key version are current.
#[derive(Debug, Clone)]
pub struct Keyset {
    /// Where they came from.
    pub origin: KeyOrigin,
    /// JWT signing keys, oldest first.
    pub jwt: Vec<JwtKey>,
    /// Data key-encryption keys, oldest first.
    pub data: Vec<DataKey>,
    /// Key of the HMAC blind index used to find contacts by phone number.
    pub index: KeyBytes,
    /// The file they were read from.
    pub path: PathBuf,
}

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the keys file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("cannot write the keys file {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("the keys file {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    origin: KeyOrigin,
    index_key: String,
    jwt_keys: Vec<JwtKeyEntry>,
    data_keys: Vec<DataKeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JwtKeyEntry {
    kid: String,
    secret: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataKeyEntry {
    version: i32,
    key: String,
}

const HEADER: &str = "# Komek keys. Keep this file secret (mode 0600) and back it up apart from the database:\n\
# without data_keys the encrypted personal data cannot be read. Rotate with `komek keys rotate`.\n";

fn random_key() -> String {
    let mut bytes = vec![0u8; MIN_KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    BASE64.encode(bytes)
}

fn random_kid() -> String {
    let mut bytes = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The text of a new keys file.
pub fn generate_file_text(origin: KeyOrigin) -> Result<String, KeyError> {
    let file = KeysFile {
        origin,
        index_key: random_key(),
        jwt_keys: vec![JwtKeyEntry {
            kid: random_kid(),
            secret: random_key(),
        }],
        data_keys: vec![DataKeyEntry {
            version: 1,
            key: random_key(),
        }],
    };
    let body = toml::to_string(&file).map_err(|e| KeyError::Invalid {
        path: PathBuf::new(),
        reason: e.to_string(),
    })?;
    Ok(format!("{HEADER}{body}"))
}

/// Writes `text` to `path` with mode 0600, refusing to overwrite an existing file.
pub fn write_new_file(path: &Path, text: &str) -> Result<(), KeyError> {
    let fail = |e: std::io::Error| KeyError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::db::create_private_dir(parent).map_err(fail)?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(text.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// Loads the keys file at `path`; when `generate_if_missing`, creates it first.
pub fn load_or_generate(path: &Path, generate_if_missing: bool) -> Result<Keyset, KeyError> {
    if generate_if_missing && !path.exists() {
        write_new_file(path, &generate_file_text(KeyOrigin::Generated)?)?;
        tracing::info!(path = %path.display(), "generated new keys on first start");
    }
    load(path)
}

/// Reads and validates a keys file.
pub fn load(path: &Path) -> Result<Keyset, KeyError> {
    let invalid = |reason: String| KeyError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let text = fs::read_to_string(path).map_err(|e| KeyError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let file: KeysFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let decode = |name: &str, value: &str| -> Result<KeyBytes, KeyError> {
        let bytes = BASE64
            .decode(value.trim())
            .map_err(|_| invalid(format!("{name} is not base64")))?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(invalid(format!("{name} is shorter than {MIN_KEY_BYTES} bytes")));
        }
        Ok(Sensitive::new(bytes))
    };
    let index = decode("index_key", &file.index_key)?;
    let mut jwt = Vec::new();
    for entry in &file.jwt_keys {
        if entry.kid.trim().is_empty() {
            return Err(invalid("a jwt key has an empty kid".to_owned()));
        }
        if jwt.iter().any(|k: &JwtKey| k.kid == entry.kid) {
            return Err(invalid(format!("jwt kid {} appears twice", entry.kid)));
        }
        jwt.push(JwtKey {
            kid: entry.kid.clone(),
            secret: decode("jwt key", &entry.secret)?,
        });
    }
    let mut data = Vec::new();
    for entry in &file.data_keys {
        if data.last().is_some_and(|k: &DataKey| k.version >= entry.version) || entry.version < 1 {
            return Err(invalid(
                "data key versions must be positive and increasing".to_owned(),
            ));
        }
        data.push(DataKey {
            version: entry.version,
            key: decode("data key", &entry.key)?,
        });
    }
    if jwt.is_empty() || data.is_empty() {
        return Err(invalid(
            "at least one jwt key and one data key are needed".to_owned(),
        ));
    }
    Ok(Keyset {
        origin: file.origin,
        jwt,
        data,
        index,
        path: path.to_owned(),
    })
}

impl Keyset {
    /// The JWT key new tokens are signed with.
    pub fn current_jwt(&self) -> Option<&JwtKey> {
        self.jwt.last()
    }

    /// The key-encryption key new data keys are wrapped with.
    pub fn current_data(&self) -> Option<&DataKey> {
        self.data.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_file_round_trips_with_mode_0600() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keys.toml");
        let keys = load_or_generate(&path, true)?;
        assert_eq!(keys.origin, KeyOrigin::Generated);
        assert_eq!(keys.data.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        }
        let again = load_or_generate(&path, true)?;
        assert_eq!(
            again.index.expose(),
            keys.index.expose(),
            "a second start must reuse the keys"
        );
        Ok(())
    }

    #[test]
    fn short_keys_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("keys.toml");
        let short = BASE64.encode([1u8; 16]);
        fs::write(
            &path,
            format!(
                "origin = \"operator\"\nindex_key = \"{short}\"\n[[jwt_keys]]\nkid = \"a\"\nsecret = \"{short}\"\n\
                 [[data_keys]]\nversion = 1\nkey = \"{short}\"\n"
            ),
        )?;
        let err = load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("shorter than 32 bytes"), "{err}");
        Ok(())
    }
}
