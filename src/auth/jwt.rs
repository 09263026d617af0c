//! Access tokens: short-lived JWTs (HS256, RFC 8725). This is the only module that touches
//! `jsonwebtoken` (besides its HS256 backend, [`super::jwt_backend`]), and the only place that reads a
//! token header before its signature is checked (to pick the key by `kid` from the server's own keyset —
//! never from the token, never a URL, a path or SQL).
//!
//! Validation is pinned and complete: exactly one algorithm (HS256; `none` does not exist in the crate and
//! any other `alg` is refused), `kid` must name a key in the keyset, signature first, then `exp`, `iat`,
//! `iss`, `aud`, `sub`, `jti` required with a 10-second leeway, `typ` must be `at+jwt` in the header and
//! `access` in the claims (so no other kind of token can pass as an access token, RFC 8725 §3.11–3.12).
//! Numeric claims are typed as integers, so a string `exp` (CVE-2026-25537) fails to decode.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::Keyset;

/// The header `typ` of an access token (RFC 9068).
pub const HEADER_TYP: &str = "at+jwt";
/// The `typ` claim of an access token.
pub const CLAIM_TYP: &str = "access";
/// The `aud` of access tokens for the staff API.
pub const AUDIENCE: &str = "komek-api";
/// Clock leeway for `exp`/`iat`, in seconds (the crate's default of 60 is too wide).
pub const LEEWAY_SECONDS: u64 = 10;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer: the service's public URL.
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Token type: [`CLAIM_TYP`].
    pub typ: String,
    /// The session this token belongs to (revocation is checked against it on every request).
    pub sid: String,
    /// The user's organization at issue time (informational; the database is authoritative).
    pub org: String,
    /// A digest of the user's security stamp at issue time: a password change, disable or second-factor
    /// reset changes the stamp and so invalidates every token issued before it.
    pub stp: String,
}

/// Why a token was refused (never shown to the client beyond "401"; logged by code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed or uses another algorithm")]
    Malformed,
    #[error("the token's key id is unknown")]
    UnknownKey,
    #[error("the token's signature or claims are invalid: {0}")]
    Invalid(String),
    #[error("the token is not an access token")]
    WrongType,
    #[error("the token could not be signed: {0}")]
    Signing(String),
    #[error("no signing key is configured")]
    NoKey,
}

impl TokenError {
    /// A stable machine-readable code (for logs).
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::UnknownKey => "token_unknown_kid",
            TokenError::Invalid(_) => "token_invalid",
            TokenError::WrongType => "token_wrong_type",
            TokenError::Signing(_) => "token_signing_failed",
            TokenError::NoKey => "token_no_key",
        }
    }
}

/// Signs and verifies access tokens with the server's JWT keys.
#[derive(Clone, Debug)]
pub struct JwtKeys {
    keys: Arc<Keyset>,
    issuer: String,
}

impl JwtKeys {
    /// Uses the JWT keys of `keys`; tokens carry `issuer` as `iss`.
    pub fn new(keys: Arc<Keyset>, issuer: String) -> Self {
        JwtKeys { keys, issuer }
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs `claims` with the current (last) key, naming it in `kid`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        super::jwt_backend::install();
        let key = self.keys.current_jwt().ok_or(TokenError::NoKey)?;
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some(HEADER_TYP.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.secret.expose()))
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Verifies an access token and returns its claims.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
        super::jwt_backend::install();
        if token.len() > 4096 {
            return Err(TokenError::Malformed);
        }
        // Unverified read of the header, only to choose the key among our own by exact kid.
        #[allow(clippy::disallowed_methods)]
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Malformed);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .jwt
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = false;
        validation.set_issuer(&[self.issuer.as_str()]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(
            token,
            &DecodingKey::from_secret(key.secret.expose()),
            &validation,
        )
        .map_err(|e| TokenError::Invalid(e.kind_name()))?;
        if data.header.typ.as_deref() != Some(HEADER_TYP) || data.claims.typ != CLAIM_TYP {
            return Err(TokenError::WrongType);
        }
        let claims = data.claims;
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap_or(0);
        if claims.iat > now_unix + leeway
            || claims.exp <= claims.iat
            || claims.jti.is_empty()
            || claims.sub.is_empty()
        {
            return Err(TokenError::Invalid("iat, jti or sub".to_owned()));
        }
        Ok(claims)
    }
}

trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> String {
        // The error's Debug form names the kind (ExpiredSignature, InvalidAudience, ...) without the token.
        format!("{:?}", self.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys;

    fn jwt_keys() -> Result<(JwtKeys, tempfile::TempDir), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let keys = keys::load_or_generate(&dir.path().join("k.toml"), true)?;
        Ok((JwtKeys::new(Arc::new(keys), "https://komek.test".into()), dir))
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://komek.test".into(),
            aud: AUDIENCE.into(),
            sub: "user-1".into(),
            iat: now,
            exp: now + 600,
            jti: "j1".into(),
            typ: CLAIM_TYP.into(),
            sid: "s1".into(),
            org: "o1".into(),
            stp: "x".into(),
        }
    }

    #[test]
    fn a_signed_token_round_trips_and_a_changed_one_does_not() -> Result<(), Box<dyn std::error::Error>> {
        let (keys, _dir) = jwt_keys()?;
        let now = chrono::Utc::now().timestamp();
        let token = keys.sign(&claims(now))?;
        assert_eq!(keys.verify(&token, now)?, claims(now));
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(keys.verify(&tampered, now).is_err());
        let expired = keys.sign(&AccessClaims {
            exp: now - 11,
            iat: now - 700,
            ..claims(now)
        })?;
        assert!(matches!(keys.verify(&expired, now), Err(TokenError::Invalid(_))));
        let wrong_typ = keys.sign(&AccessClaims {
            typ: "refresh".into(),
            ..claims(now)
        })?;
        assert_eq!(keys.verify(&wrong_typ, now), Err(TokenError::WrongType));
        Ok(())
    }
}
