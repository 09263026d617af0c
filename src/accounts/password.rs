//! Password hashing with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane), stored as
//! PHC strings so parameters can rise later and old hashes still verify; and generation of one-time
//! passwords for new accounts.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng as _;

use crate::sensitive::Sensitive;

/// OWASP Password Storage Cheat Sheet: Argon2id, m=19456 KiB, t=2, p=1.
fn hasher() -> Result<Argon2<'static>, String> {
    let params = Params::new(19_456, 2, 1, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string.
pub fn hash(password: &Sensitive<String>) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// True when `password` matches the PHC string `stored`.
pub fn verify(password: &Sensitive<String>, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    hasher().is_ok_and(|h| h.verify_password(password.expose().as_bytes(), &parsed).is_ok())
}

/// True when `stored` was made with other parameters (or another algorithm) than [`hash`] uses now, so the
/// password should be hashed again at the next successful login (parameters rise over the years).
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    let Ok(current) = hasher() else {
        return false;
    };
    let current = current.params().clone();
    parsed.algorithm.as_str() != "argon2id"
        || parsed.version != Some(0x13)
        || Params::try_from(&parsed).map_or(true, |p| {
            p.m_cost() < current.m_cost() || p.t_cost() < current.t_cost() || p.p_cost() != current.p_cost()
        })
}

/// A PHC string of a random password: verifying against it costs what verifying a real password costs, so
/// a login for an unknown account takes as long as one with a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&generate_one_time()).unwrap_or_default())
}

/// A random one-time password: 20 characters from an alphabet without look-alikes (about 110 bits).
pub fn generate_one_time() -> Sensitive<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let text: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    Sensitive::new(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_use_argon2id() -> Result<(), String> {
        let password = generate_one_time();
        let stored = hash(&password)?;
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify(&password, &stored));
        assert!(!verify(&Sensitive::new("wrong password!".to_owned()), &stored));
        assert!(!verify(&password, "not a phc string"));
        assert!(!needs_rehash(&stored));
        let weaker = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8_192, 1, 1, None).map_err(|e| e.to_string())?,
        )
        .hash_password(b"x", &SaltString::generate(&mut OsRng))
        .map_err(|e| e.to_string())?
        .to_string();
        assert!(needs_rehash(&weaker));
        assert!(!verify(&password, dummy_hash()) && dummy_hash().starts_with("$argon2id$"));
        Ok(())
    }
}
