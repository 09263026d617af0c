//! Domain types that are valid by construction: once a value of one of these types exists, it has been
//! checked, so the rest of the code passes them around instead of strings and never re-validates.

mod case_ref;
mod country;
mod email;
mod org_slug;
mod phone;
mod role;

pub use case_ref::CaseRef;
pub use country::CountryCode;
pub use email::EmailAddress;
pub use org_slug::OrgSlug;
pub use phone::PhoneNumber;
pub use role::Role;

/// A value that failed to parse, with a message saying what a good one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
