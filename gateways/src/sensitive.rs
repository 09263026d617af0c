//! Wrappers that keep personal data and secrets out of logs.
//!
//! Komek must never log a phone number, a message body, a recording address or a secret
//! (DESIGN.md §5, §10). Every such value this crate hands out is wrapped: [`Sensitive`] for
//! personal data (its `Debug` and `Display` print `[redacted]`; read it with
//! [`Sensitive::expose`]), [`Secret`] for credentials (never readable outside the crate).

use std::fmt;

/// Personal data (phone number, message text, recording address, DTMF digits).
///
/// `Debug` prints `[redacted]`, so a struct holding it can derive `Debug` and still be logged.
/// Read the value deliberately with [`Sensitive::expose`].
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Call sites are easy to audit: grep for `expose()`.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl From<&str> for Sensitive<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A credential (auth token, signing key, API secret, password).
///
/// Its value is only readable inside this crate; `Debug` prints `[secret]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Sensitive::new("+77011234567".to_owned());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "+77011234567");
        let k = Secret::new("hunter2");
        assert_eq!(format!("{k:?}"), "[secret]");
    }
}
