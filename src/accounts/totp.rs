//! Second-factor enrolment (TOTP, RFC 6238: SHA-1, 6 digits, 30-second steps — what every authenticator
//! app understands). The secret is stored encrypted under the user's own data key.

use totp_rs::{Algorithm, Secret, TOTP};

use crate::sensitive::Sensitive;

/// Issuer name shown in authenticator apps.
pub const ISSUER: &str = "Komek";

/// A new TOTP secret (20 random bytes).
pub fn new_secret() -> Result<Sensitive<Vec<u8>>, String> {
    Secret::generate_secret()
        .to_bytes()
        .map(Sensitive::new)
        .map_err(|e| e.to_string())
}

/// The TOTP generator for a secret and account.
pub fn generator(secret: &Sensitive<Vec<u8>>, account: &str) -> Result<TOTP, String> {
    // The label may not contain ':'; account names are email addresses, which never do.
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.expose().clone(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| e.to_string())
}

/// The `otpauth://` enrolment URI for an authenticator app.
pub fn enrolment_uri(secret: &Sensitive<Vec<u8>>, account: &str) -> Result<Sensitive<String>, String> {
    generator(secret, account).map(|t| Sensitive::new(t.get_url()))
}

/// The length of a TOTP step in seconds.
pub const STEP_SECONDS: u64 = 30;

/// The step (RFC 6238 counter) `code` is valid for, if any: the current step or one step either side
/// (RFC 6238 §5.2 network delay), and only a step later than `last_used` — a code is accepted once
/// (§5.2: "the verifier MUST NOT accept the second attempt of the same OTP"). Compares in constant time.
pub fn matching_step(
    secret: &Sensitive<Vec<u8>>,
    code: &str,
    now_unix: u64,
    last_used: Option<i64>,
) -> Option<i64> {
    use subtle::ConstantTimeEq as _;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = generator(secret, "verify").ok()?;
    let now_step = i64::try_from(now_unix / STEP_SECONDS).ok()?;
    let mut found = None;
    for step in [now_step - 1, now_step, now_step + 1] {
        if step < 0 || last_used.is_some_and(|last| step <= last) {
            continue;
        }
        let expected = totp.generate(u64::try_from(step).ok()? * STEP_SECONDS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_within_one_step_and_only_once() -> Result<(), String> {
        let secret = new_secret()?;
        let totp = generator(&secret, "x")?;
        let now = 1_800_000_000_u64;
        let step = i64::try_from(now / STEP_SECONDS).map_err(|e| e.to_string())?;
        let code = totp.generate(now);
        assert_eq!(matching_step(&secret, &code, now, None), Some(step));
        assert_eq!(
            matching_step(&secret, &code, now, Some(step)),
            None,
            "replay refused"
        );
        assert_eq!(
            matching_step(&secret, &code, now + 30, None),
            Some(step),
            "t-30 s accepted"
        );
        assert_eq!(
            matching_step(&secret, &code, now + 60, None),
            None,
            "t-60 s refused"
        );
        assert_eq!(
            matching_step(&secret, &totp.generate(now + 30), now, None),
            Some(step + 1)
        );
        assert_eq!(matching_step(&secret, "12345", now, None), None);
        assert_eq!(matching_step(&secret, "abcdef", now, None), None);
        Ok(())
    }

    #[test]
    fn enrolment_uri_names_the_issuer_and_account() -> Result<(), String> {
        let secret = new_secret()?;
        let uri = enrolment_uri(&secret, "aida@example.org")?;
        assert!(
            uri.expose()
                .starts_with("otpauth://totp/Komek:aida%40example.org?"),
            "{}",
            uri.expose()
        );
        assert!(uri.expose().contains("issuer=Komek"));
        Ok(())
    }
}
