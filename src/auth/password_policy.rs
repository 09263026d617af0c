//! What a new staff password must be (OWASP ASVS 6.2, NIST 800-63B): 12 to 128 characters, not on the
//! bundled list of common passwords, not the account's email address — and nothing else: no composition
//! rules (upper case, digits, symbols), no truncation, any Unicode allowed. Length is counted in characters.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Shortest accepted password, in characters.
pub const MIN_CHARS: usize = 12;
/// Longest accepted password, in characters (Argon2 hashes anything, but a limit bounds the work).
pub const MAX_CHARS: usize = 128;

const COMMON: &str = include_str!("common-passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Why a password was refused; the message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password must have at least {MIN_CHARS} characters; a few unrelated words make a good one")]
    TooShort,
    #[error("the password must have at most {MAX_CHARS} characters")]
    TooLong,
    #[error("this password is on the list of commonly used passwords; choose another")]
    Common,
    #[error("the password must not be your email address")]
    LooksLikeAccount,
}

impl WeakPassword {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            WeakPassword::TooShort => "password_too_short",
            WeakPassword::TooLong => "password_too_long",
            WeakPassword::Common => "password_too_common",
            WeakPassword::LooksLikeAccount => "password_matches_account",
        }
    }
}

/// Checks a candidate password for the account with `email`.
pub fn check(candidate: &str, email: &str) -> Result<(), WeakPassword> {
    let chars = candidate.chars().count();
    if chars < MIN_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(WeakPassword::TooLong);
    }
    let lowered = candidate.to_lowercase();
    if common().contains(lowered.as_str()) {
        return Err(WeakPassword::Common);
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lowered == email || (local.chars().count() >= 4 && lowered.trim_end_matches(char::is_numeric) == local)
    {
        return Err(WeakPassword::LooksLikeAccount);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_list_and_account_rules() {
        assert_eq!(check("short", "a@x.org"), Err(WeakPassword::TooShort));
        assert_eq!(check(&"x".repeat(129), "a@x.org"), Err(WeakPassword::TooLong));
        assert!(
            check(&"é".repeat(128), "a@x.org").is_ok(),
            "length counts characters, not bytes"
        );
        assert_eq!(check("Password123456", "a@x.org"), Err(WeakPassword::Common));
        assert_eq!(check("qwertyuiop123", "a@x.org"), Err(WeakPassword::Common));
        assert_eq!(
            check("aida.nurlanova@x.org", "aida.nurlanova@x.org"),
            Err(WeakPassword::LooksLikeAccount)
        );
        assert_eq!(
            check("aida.nurlanova2026", "aida.nurlanova@x.org"),
            Err(WeakPassword::LooksLikeAccount)
        );
        // No composition rules: lower-case words are fine.
        assert!(check("river tulip copper lantern", "a@x.org").is_ok());
        assert!(
            common().len() > 3_000,
            "the bundled list has a few thousand entries"
        );
    }
}
