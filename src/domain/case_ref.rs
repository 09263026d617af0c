//! `CaseRef`: the public reference of a case (`KMK-7Q2F9X`), which a caller can quote on the phone. It is
//! random (not a counter, so it reveals nothing about volume or order) and uses an alphabet without letters
//! that are confused when read aloud or handwritten (no 0/O, 1/I/L, 5/S, 8/B, U/V).

use std::fmt;

use rand::Rng as _;

use super::ParseError;

const ALPHABET: &[u8] = b"234679ACDEFGHJKMNPQRTWXYZ";
const PREFIX: &str = "KMK-";
const LEN: usize = 6;

/// A case reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaseRef(String);

impl CaseRef {
    /// A new random reference (25^6 ≈ 2.4e8 values; uniqueness is enforced by the database).
    pub fn generate() -> CaseRef {
        let mut rng = rand::rngs::OsRng;
        let code: String = (0..LEN)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect();
        CaseRef(format!("{PREFIX}{code}"))
    }

    /// Parses a reference as a person would type it: any case, with or without the prefix or a space.
    pub fn parse(raw: &str) -> Result<CaseRef, ParseError> {
        let upper: String = raw
            .trim()
            .to_ascii_uppercase()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let code = upper
            .strip_prefix(PREFIX)
            .or_else(|| upper.strip_prefix("KMK"))
            .unwrap_or(&upper);
        if code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b)) {
            Ok(CaseRef(format!("{PREFIX}{code}")))
        } else {
            Err(ParseError(format!(
                "`{raw}` is not a case reference (like KMK-7Q2F9X)"
            )))
        }
    }

    /// The reference text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_references_parse_back_and_avoid_ambiguous_characters() {
        for _ in 0..200 {
            let reference = CaseRef::generate();
            assert_eq!(CaseRef::parse(reference.as_str()), Ok(reference.clone()));
            assert!(
                !reference.as_str()[4..].contains(['0', 'O', '1', 'I', 'L', '5', 'S', '8', 'B', 'U', 'V'])
            );
        }
        assert_eq!(
            CaseRef::parse(" kmk-7q2f9x ").map(|r| r.0),
            Ok("KMK-7Q2F9X".to_owned())
        );
        assert_eq!(CaseRef::parse("7Q2F9X").map(|r| r.0), Ok("KMK-7Q2F9X".to_owned()));
        for bad in ["", "KMK-", "KMK-7Q2F9", "KMK-7Q2F9XX", "KMK-0O1IL5"] {
            assert!(CaseRef::parse(bad).is_err(), "{bad}");
        }
    }
}
