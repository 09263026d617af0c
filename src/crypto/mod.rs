//! Application-level encryption of personal data, and the blind index used to find it again.
//!
//! Envelope encryption: every record (a report, a contact, a case) gets its own random data key; fields
//! are sealed with XChaCha20-Poly1305 under that key, with the table, column and row id as associated
//! data so that a ciphertext cannot be moved to another row or column. The data key is stored beside the
//! record wrapped by the current key-encryption key from the keys file (which never enters the database),
//! together with that key's version, so keys can be rotated by re-wrapping data keys only.
//!
//! Phone numbers are looked up through a keyed HMAC-SHA256 blind index: equal numbers give equal index
//! values, but the index reveals nothing without the key.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::Sha256;

use crate::keys::Keyset;
use crate::sensitive::Sensitive;

const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 24;

/// Encryption failures. None carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("no key-encryption key with version {0} is configured")]
    UnknownKeyVersion(i32),
    #[error("the keys file has no current key-encryption key")]
    NoCurrentKey,
    #[error("a ciphertext is malformed or was altered")]
    Tampered,
}

impl CryptoError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::UnknownKeyVersion(_) => "unknown_key_version",
            CryptoError::NoCurrentKey => "no_current_key",
            CryptoError::Tampered => "ciphertext_tampered",
        }
    }
}

/// Where a sealed value lives; bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    /// Table name.
    pub table: &'a str,
    /// Column name.
    pub column: &'a str,
    /// The row's id.
    pub row_id: &'a str,
}

impl FieldContext<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("komek/v1/{}/{}/{}", self.table, self.column, self.row_id).into_bytes()
    }
}

/// A record's unwrapped data key. Prints nothing; zeroed on drop.
#[derive(Clone)]
pub struct RecordKey(Sensitive<Vec<u8>>);

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKey([redacted])")
    }
}

/// A data key as stored: wrapped, with the version of the key that wrapped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// The wrapped data key.
    pub bytes: Vec<u8>,
    /// The key-encryption key's version.
    pub version: i32,
}

fn seal_with(key: &[u8], associated: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new_from_slice(key).map_err(|_| CryptoError::Tampered)?;
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: associated,
            },
        )
        .map_err(|_| CryptoError::Tampered)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open_with(key: &[u8], associated: &[u8], blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (format, rest) = blob.split_first().ok_or(CryptoError::Tampered)?;
    if *format != FORMAT_V1 || rest.len() < NONCE_LEN {
        return Err(CryptoError::Tampered);
    }
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new_from_slice(key).map_err(|_| CryptoError::Tampered)?;
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: associated,
            },
        )
        .map_err(|_| CryptoError::Tampered)
}

impl RecordKey {
    /// Seals `plaintext` for the given place.
    pub fn seal(&self, place: FieldContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(self.0.expose(), &place.associated_data(), plaintext)
    }

    /// Seals a string.
    pub fn seal_str(&self, place: FieldContext<'_>, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal(place, plaintext.as_bytes())
    }

    /// Opens a sealed value; fails if it was altered or belongs to another place.
    pub fn open(&self, place: FieldContext<'_>, blob: &[u8]) -> Result<Sensitive<Vec<u8>>, CryptoError> {
        open_with(self.0.expose(), &place.associated_data(), blob).map(Sensitive::new)
    }

    /// Opens a sealed UTF-8 string.
    pub fn open_string(
        &self,
        place: FieldContext<'_>,
        blob: &[u8],
    ) -> Result<Sensitive<String>, CryptoError> {
        let bytes = open_with(self.0.expose(), &place.associated_data(), blob)?;
        String::from_utf8(bytes)
            .map(Sensitive::new)
            .map_err(|_| CryptoError::Tampered)
    }
}

/// Encryption and blind indexing with the server's keys.
#[derive(Clone, Debug)]
pub struct Crypto {
    keys: Arc<Keyset>,
}

const WRAP_CONTEXT: &[u8] = b"komek/v1/data-key";

impl Crypto {
    /// Uses `keys`.
    pub fn new(keys: Arc<Keyset>) -> Self {
        Crypto { keys }
    }

    /// A fresh data key for a new record, and its wrapped form to store.
    pub fn new_record_key(&self) -> Result<(RecordKey, WrappedKey), CryptoError> {
        let kek = self.keys.current_data().ok_or(CryptoError::NoCurrentKey)?;
        let mut dek = vec![0u8; 32];
        OsRng.fill_bytes(&mut dek);
        let wrapped = seal_with(kek.key.expose(), WRAP_CONTEXT, &dek)?;
        Ok((
            RecordKey(Sensitive::new(dek)),
            WrappedKey {
                bytes: wrapped,
                version: kek.version,
            },
        ))
    }

    /// Unwraps a stored data key.
    pub fn unwrap_record_key(&self, wrapped: &[u8], version: i32) -> Result<RecordKey, CryptoError> {
        let kek = self
            .keys
            .data
            .iter()
            .find(|k| k.version == version)
            .ok_or(CryptoError::UnknownKeyVersion(version))?;
        open_with(kek.key.expose(), WRAP_CONTEXT, wrapped).map(|dek| RecordKey(Sensitive::new(dek)))
    }

    /// Re-wraps a stored data key under the current key-encryption key (key rotation).
    pub fn rewrap(&self, wrapped: &[u8], version: i32) -> Result<WrappedKey, CryptoError> {
        let dek = self.unwrap_record_key(wrapped, version)?;
        let kek = self.keys.current_data().ok_or(CryptoError::NoCurrentKey)?;
        let bytes = seal_with(kek.key.expose(), WRAP_CONTEXT, dek.0.expose())?;
        Ok(WrappedKey {
            bytes,
            version: kek.version,
        })
    }

    /// The blind index of `value` within `domain` (e.g. "phone"), as lowercase hex.
    pub fn blind_index(&self, domain: &str, value: &str) -> String {
        hex::encode(keyed_digest(self.keys.index.expose(), domain, value))
    }
}

/// HMAC-SHA256 of `domain`, a NUL separator and `value` under `key`: equal inputs give equal digests, and
/// the digest reveals nothing about the value without the key. Used for the blind index and for keying
/// in-memory rate limits by addresses that must not be kept.
pub fn keyed_digest(key: &[u8], domain: &str, value: &str) -> [u8; 32] {
    match <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(domain.as_bytes());
            mac.update(b"\0");
            mac.update(value.as_bytes());
            mac.finalize().into_bytes().into()
        }
        // HMAC takes keys of any length, so this branch cannot run; it still never returns an unkeyed digest.
        Err(_) => {
            use sha2::Digest as _;
            let mut hasher = Sha256::new();
            hasher.update(key);
            hasher.update(domain.as_bytes());
            hasher.update(b"\0");
            hasher.update(value.as_bytes());
            hasher.finalize().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    fn crypto() -> Result<Crypto, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let keys = keys::load_or_generate(&dir.path().join("k.toml"), true)?;
        Ok(Crypto::new(Arc::new(keys)))
    }

    const PLACE: FieldContext<'static> = FieldContext {
        table: "reports",
        column: "body_enc",
        row_id: "r1",
    };

    #[test]
    fn sealed_fields_round_trip_and_bind_to_their_place() -> Result<(), Box<dyn std::error::Error>> {
        let crypto = crypto()?;
        let (key, wrapped) = crypto.new_record_key()?;
        let blob = key.seal_str(PLACE, "zabrali pasport")?;
        assert!(!blob.windows(8).any(|w| w == b"pasport\0" || w == b"zabrali "));
        let again = crypto.unwrap_record_key(&wrapped.bytes, wrapped.version)?;
        assert_eq!(again.open_string(PLACE, &blob)?.expose(), "zabrali pasport");
        let elsewhere = FieldContext {
            row_id: "r2",
            ..PLACE
        };
        assert!(matches!(again.open(elsewhere, &blob), Err(CryptoError::Tampered)));
        let mut altered = blob.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(again.open(PLACE, &altered), Err(CryptoError::Tampered)));
        Ok(())
    }

    #[test]
    fn blind_index_is_stable_and_keyed() -> Result<(), Box<dyn std::error::Error>> {
        let a = crypto()?;
        let b = crypto()?;
        assert_eq!(
            a.blind_index("phone", "+77011234567"),
            a.blind_index("phone", "+77011234567")
        );
        assert_ne!(
            a.blind_index("phone", "+77011234567"),
            b.blind_index("phone", "+77011234567")
        );
        assert_ne!(
            a.blind_index("phone", "+77011234567"),
            a.blind_index("email", "+77011234567")
        );
        Ok(())
    }
}
