//! `OrgSlug`: the short name that identifies an organization on the command line and in URLs.

use std::fmt;

use super::ParseError;

/// 2–40 characters: lowercase ASCII letters, digits and single hyphens, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgSlug(String);

impl OrgSlug {
    /// Parses a slug.
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let slug = raw.trim();
        let valid = (2..=40).contains(&slug.len())
            && slug.starts_with(|c: char| c.is_ascii_lowercase())
            && !slug.ends_with('-')
            && !slug.contains("--")
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(OrgSlug(slug.to_owned()))
        } else {
            Err(ParseError(format!(
                "`{slug}` is not a valid organization slug: use 2-40 lowercase letters, digits and hyphens, \
                 starting with a letter (e.g. `sana-sezim`)"
            )))
        }
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_slugs_and_refuses_the_rest() {
        for good in ["sana-sezim", "ngo1", "hotline"] {
            assert!(OrgSlug::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "Sana",
            "1ngo",
            "ngo-",
            "ngo--x",
            "ngo_x",
            "нко",
            &"a".repeat(41),
        ] {
            assert!(OrgSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
