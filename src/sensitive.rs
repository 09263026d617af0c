//! `Sensitive<T>`: a wrapper for personal data and secrets whose `Debug` and `Display` print nothing.
//!
//! Phone numbers, names, message bodies, passwords and keys live in this type (or in a type that wraps it)
//! so that a stray `{:?}` in a log line or an error message cannot leak them. The value is reached only
//! through [`Sensitive::expose`], which is easy to find in review.

use std::fmt;

use zeroize::Zeroize;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sensitive<T: Zeroize>(T);

impl<T: Zeroize> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// The wrapped value. Every call site is a place where personal data or a secret is used on purpose.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Sensitive<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Sensitive<String> {
    fn from(value: String) -> Self {
        Sensitive(value)
    }
}

impl From<Vec<u8>> for Sensitive<Vec<u8>> {
    fn from(value: Vec<u8>) -> Self {
        Sensitive(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_print_nothing() {
        let phone = Sensitive::new("+77011234567".to_owned());
        assert_eq!(format!("{phone:?} {phone}"), "[redacted] [redacted]");
        assert_eq!(phone.expose(), "+77011234567");
    }
}
