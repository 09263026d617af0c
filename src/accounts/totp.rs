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

#[cfg(test)]
mod tests {
    use super::*;

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
