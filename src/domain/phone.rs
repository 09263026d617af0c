//! `PhoneNumber`: a phone number normalised to E.164 with libphonenumber's metadata (the `phonenumber`
//! crate). Numbers written the local way ("8 701 123 45 67" in Kazakhstan, "0555 123 456" in Kyrgyzstan)
//! are read with the organization's country as the default region. +7 is shared by Kazakhstan and Russia:
//! the E.164 form is the same either way, so lookups do not depend on guessing the country.

use std::fmt;

use super::{CountryCode, ParseError};
use crate::sensitive::Sensitive;

/// A valid phone number in E.164 form (`+77011234567`). Personal data: `Debug` and `Display` redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(Sensitive<String>);

impl PhoneNumber {
    /// Parses `raw`, reading national formats with `default_region` when given.
    pub fn parse(raw: &str, default_region: Option<CountryCode>) -> Result<Self, ParseError> {
        let trimmed = raw.trim();
        let refused = || {
            ParseError("not a valid phone number; write it in international form (+7 701 123 4567)".into())
        };
        if trimmed.is_empty() || trimmed.len() > 40 {
            return Err(refused());
        }
        // Providers often send international numbers without the plus sign ("77011234567").
        let region = default_region.and_then(|c| c.as_str().parse::<phonenumber::country::Id>().ok());
        let candidates: Vec<String> = if trimmed.starts_with('+') || trimmed.starts_with("00") {
            vec![
                trimmed
                    .trim_start_matches("00")
                    .trim_start_matches('+')
                    .to_owned(),
            ]
            .into_iter()
            .map(|digits| format!("+{digits}"))
            .collect()
        } else {
            let mut list = Vec::new();
            if region.is_some() {
                list.push(trimmed.to_owned());
            }
            list.push(format!("+{trimmed}"));
            list
        };
        for candidate in candidates {
            let parsed = if candidate.starts_with('+') {
                phonenumber::parse(None, &candidate)
            } else {
                phonenumber::parse(region, &candidate)
            };
            if let Ok(number) = parsed
                && phonenumber::is_valid(&number)
            {
                let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
                return Ok(PhoneNumber(Sensitive::new(e164)));
            }
        }
        Err(refused())
    }

    /// The E.164 text. Personal data: use it only to encrypt, index or dial.
    pub fn expose_e164(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneNumber([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kz() -> Option<CountryCode> {
        CountryCode::parse("KZ").ok()
    }

    #[test]
    fn normalises_international_and_national_forms() {
        let cases = [
            ("+7 701 123 45 67", None, "+77011234567"),
            ("77011234567", None, "+77011234567"),
            ("87011234567", kz(), "+77011234567"),
            ("8 (701) 123-45-67", kz(), "+77011234567"),
            ("+996 555 123 456", kz(), "+996555123456"),
            ("+992 93 123 4567", None, "+992931234567"),
            ("+998 90 123 45 67", None, "+998901234567"),
            ("+7 916 123-45-67", None, "+79161234567"),
            ("0555123456", CountryCode::parse("KG").ok(), "+996555123456"),
        ];
        for (raw, region, expected) in cases {
            let parsed = PhoneNumber::parse(raw, region).map(|p| p.expose_e164().to_owned());
            assert_eq!(parsed.as_deref(), Ok(expected), "{raw}");
        }
    }

    #[test]
    fn refuses_garbage_and_never_prints_the_number() {
        for bad in ["", "hello", "+1", "12", "+7 000", "MEGAFON"] {
            assert!(PhoneNumber::parse(bad, kz()).is_err(), "{bad}");
        }
        let number = PhoneNumber::parse("+77011234567", None);
        assert!(!format!("{number:?}").contains("7011234567"));
    }
}
