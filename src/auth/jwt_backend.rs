//! The signing backend `jsonwebtoken` calls: HS256 only, on the `hmac` and `sha2` crates Komek already
//! uses for its blind index.
//!
//! The crate's bundled backends either pull in RSA code with a known timing side channel (`rust_crypto`
//! brings the `rsa` crate, RUSTSEC-2023-0071) or a C library (`aws_lc_rs`), though access tokens only ever
//! use HS256. Without a backend `jsonwebtoken` panics at its first use, so [`install`] must run before any
//! token is signed or checked; [`crate::auth::jwt`] calls it on every use (it is idempotent and cheap).
//! Any other algorithm is refused with `InvalidAlgorithm`.

use hmac::{Hmac, KeyInit as _, Mac as _};
use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{ErrorKind, Result as JwtResult};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HS256 with one key, for signing and verifying.
struct Hs256(HmacSha256);

impl Hs256 {
    fn new(secret: &[u8]) -> JwtResult<Hs256> {
        HmacSha256::new_from_slice(secret)
            .map(Hs256)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        // Constant-time comparison.
        mac.verify_slice(tag).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> JwtResult<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.try_get_hmac_secret()?)?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> JwtResult<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.try_get_hmac_secret()?)?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    // JWKs are never used: access tokens are checked against the server's own keys only.
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Makes HS256-only the process's `jsonwebtoken` backend. Safe to call any number of times.
pub fn install() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // Fails only if another backend was installed first, which nothing in Komek does.
        let _ = HS256_ONLY.install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Header, Validation};

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    #[test]
    fn hs256_tokens_encode_and_decode_and_other_algorithms_are_refused() {
        install();
        let claims = Claims {
            sub: "someone".into(),
            exp: chrono::Utc::now().timestamp() + 60,
        };
        let secret = [7u8; 32];
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&secret),
        );
        let Ok(token) = token else {
            panic!("HS256 signing failed: {token:?}")
        };
        let decoded = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_secret(&secret),
            &Validation::new(Algorithm::HS256),
        );
        assert_eq!(decoded.map(|d| d.claims).ok(), Some(claims));
        let wrong_key = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_secret(&[8u8; 32]),
            &Validation::new(Algorithm::HS256),
        );
        assert!(wrong_key.is_err());
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                sub: "x".into(),
                exp: 0,
            },
            &EncodingKey::from_secret(&secret),
        );
        assert!(matches!(
            hs512.map_err(|e| e.into_kind()),
            Err(ErrorKind::InvalidAlgorithm)
        ));
    }
}
