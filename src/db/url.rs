//! Which database a URL names. The backend is chosen by the scheme alone, never by trying to connect:
//! a bare path or `sqlite://` is SQLite, `postgres://` or `postgresql://` is PostgreSQL, and anything else is
//! refused with a message naming the accepted forms (so a typo cannot end up as a SQLite file named
//! `mysql:/...`).

use std::fmt;
use std::path::PathBuf;

/// The accepted forms, quoted in every error about a database URL.
pub const ACCEPTED_FORMS: &str = "a file path (./komek-data/komek.db), sqlite:///absolute/path.db, \
     sqlite://relative/path.db, or postgres://user:password@host:5432/database (postgresql:// also works)";

/// A parsed database location. The PostgreSQL variant holds a URL that may carry a password, so `Debug`
/// and `Display` print only the backend and host-free description.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// Which engine a [`DatabaseUrl`] points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (the default).
    Sqlite,
    /// PostgreSQL (production, several instances).
    Postgres,
}

impl Backend {
    /// The backend's name as operators see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Why a database URL was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DatabaseUrlError {
    #[error("the database URL is empty; use {ACCEPTED_FORMS}")]
    Empty,
    #[error("the database URL scheme `{0}` is not supported; use {ACCEPTED_FORMS}")]
    UnsupportedScheme(String),
    #[error("in-memory SQLite cannot be shared by a connection pool; use a file path: {ACCEPTED_FORMS}")]
    InMemory,
    #[error("the sqlite:// URL has no path; use {ACCEPTED_FORMS}")]
    MissingPath,
}

impl DatabaseUrl {
    /// Parses a database URL or path.
    pub fn parse(raw: &str) -> Result<Self, DatabaseUrlError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(DatabaseUrlError::Empty);
        }
        match raw.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => Ok(DatabaseUrl::Postgres(raw.to_owned())),
                "sqlite" => Self::sqlite_path(rest),
                other => Err(DatabaseUrlError::UnsupportedScheme(other.to_owned())),
            },
            None => {
                if let Some((scheme, _)) = raw.split_once(':') {
                    let looks_like_scheme = !scheme.is_empty()
                        && scheme.len() > 1
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-');
                    if scheme.eq_ignore_ascii_case("sqlite") {
                        return Self::sqlite_path(&raw[scheme.len() + 1..]);
                    }
                    if looks_like_scheme && raw != ":memory:" {
                        return Err(DatabaseUrlError::UnsupportedScheme(scheme.to_owned()));
                    }
                }
                Self::sqlite_path(raw)
            }
        }
    }

    fn sqlite_path(path: &str) -> Result<Self, DatabaseUrlError> {
        let path = path.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(DatabaseUrlError::MissingPath);
        }
        if path == ":memory:" || path.contains("mode=memory") {
            return Err(DatabaseUrlError::InMemory);
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// The backend this URL selects.
    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite file {}", path.display()),
            DatabaseUrl::Postgres(_) => f.write_str("postgres database"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_paths_and_sqlite_urls_are_sqlite() {
        assert_eq!(
            DatabaseUrl::parse("./komek-data/komek.db"),
            Ok(DatabaseUrl::Sqlite("./komek-data/komek.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("/var/lib/komek.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/komek.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/k.db"),
            Ok(DatabaseUrl::Sqlite("/var/lib/k.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/k.db"),
            Ok(DatabaseUrl::Sqlite("data/k.db".into()))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:data/k.db"),
            Ok(DatabaseUrl::Sqlite("data/k.db".into()))
        );
    }

    #[test]
    fn postgres_urls_are_postgres() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u:p@h:5432/db",
            "POSTGRES://h/db",
        ] {
            assert_eq!(
                DatabaseUrl::parse(url).map(|u| u.backend()),
                Ok(Backend::Postgres),
                "{url}"
            );
        }
    }

    #[test]
    fn other_schemes_are_refused_with_the_accepted_forms() {
        for url in [
            "mysql://root@localhost/komek",
            "postgress://h/db",
            "http://x",
            "mariadb:foo",
        ] {
            let err = DatabaseUrl::parse(url).err();
            assert!(
                matches!(err, Some(DatabaseUrlError::UnsupportedScheme(_))),
                "{url}: {err:?}"
            );
            let message = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains("postgres://") && message.contains("sqlite://"),
                "{message}"
            );
        }
        assert_eq!(DatabaseUrl::parse(""), Err(DatabaseUrlError::Empty));
        assert_eq!(DatabaseUrl::parse(":memory:"), Err(DatabaseUrlError::InMemory));
        assert_eq!(
            DatabaseUrl::parse("sqlite://"),
            Err(DatabaseUrlError::MissingPath)
        );
    }

    #[test]
    fn display_never_shows_a_postgres_password() {
        let url = DatabaseUrl::parse("postgres://komek:hunter2@db/komek")
            .unwrap_or(DatabaseUrl::Sqlite("x".into()));
        assert!(!format!("{url} {url:?}").contains("hunter2"));
    }
}
