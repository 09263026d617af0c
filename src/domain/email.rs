//! `EmailAddress`: a staff member's login and notification address, normalised to lower case.

use std::fmt;

use super::ParseError;

/// A plausible email address (one `@`, a dotted domain, no spaces), stored lower-case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses and lower-cases an address.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let address = raw.trim().to_lowercase();
        let valid = address.len() <= 254
            && address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && (domain.contains('.') || domain == "localhost")
            })
            && !address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
        if valid {
            Ok(EmailAddress(address))
        } else {
            Err(ParseError(
                "not a valid email address (name@example.org)".to_owned(),
            ))
        }
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress([redacted])")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_garbage() {
        assert_eq!(
            EmailAddress::parse(" Aida@Example.ORG ").map(|e| e.0),
            Ok("aida@example.org".to_owned())
        );
        assert!(EmailAddress::parse("admin@localhost").is_ok());
        for bad in [
            "",
            "aida",
            "aida@",
            "@x.org",
            "a b@x.org",
            "a@x",
            "a@.org",
            "a@b@c.org",
            "a\n@x.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            format!("{:?}", EmailAddress::parse("a@x.org")),
            "Ok(EmailAddress([redacted]))"
        );
    }
}
