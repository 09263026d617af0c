//! Organizations and staff accounts: creating them (command line, first start) and reading them back.
//! Login, tokens and permissions build on these rows (auth).

pub mod orgs;
pub mod password;
pub mod totp;
pub mod users;

/// Errors when administering organizations and accounts; each has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("an organization with the slug `{0}` already exists")]
    OrgExists(String),
    #[error("no organization has the slug `{0}`")]
    NoSuchOrg(String),
    #[error("a user with this email address already exists")]
    UserExists,
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl AccountError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Invalid(_) => "invalid_input",
            AccountError::OrgExists(_) => "organization_exists",
            AccountError::NoSuchOrg(_) => "organization_not_found",
            AccountError::UserExists => "user_exists",
            AccountError::Db(e) => e.code(),
            AccountError::Crypto(e) => e.code(),
            AccountError::Hashing(_) => "password_hashing_failed",
        }
    }
}

impl From<diesel::result::Error> for AccountError {
    fn from(err: diesel::result::Error) -> Self {
        AccountError::Db(err.into())
    }
}

impl From<crate::domain::ParseError> for AccountError {
    fn from(err: crate::domain::ParseError) -> Self {
        AccountError::Invalid(err.0)
    }
}

pub(crate) fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
