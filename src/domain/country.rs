//! `CountryCode`: an ISO 3166-1 alpha-2 code, upper case.

use std::fmt;

use super::ParseError;

/// Two ASCII letters, stored upper case (KZ, KG, TJ, UZ, TM, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses a two-letter code.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        match raw.trim().as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(CountryCode([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(ParseError(format!(
                "`{raw}` is not a two-letter ISO country code (KZ, KG, TJ, UZ, ...)"
            ))),
        }
    }

    /// The code text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_letters_only() {
        assert_eq!(
            CountryCode::parse("kz").map(|c| c.to_string()),
            Ok("KZ".to_owned())
        );
        for bad in ["", "K", "KAZ", "K1", "ҚЗ"] {
            assert!(CountryCode::parse(bad).is_err(), "{bad}");
        }
    }
}
