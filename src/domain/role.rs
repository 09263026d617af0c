//! `Role`: what a staff member does at their organization. Permissions are derived from it (auth).

use std::fmt;
use std::str::FromStr;

use super::ParseError;

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Users, channels, shelters, keys of their organization.
    Admin,
    /// Sees every case of the organization, SLA breaches and access logs; approves child-case closure.
    Supervisor,
    /// Answers the hotline: the live queue, reports, opening and linking cases.
    Operator,
    /// Works assigned cases: timeline, notes, consent, referrals.
    Caseworker,
    /// Staff of a shelter: sees only referrals to their shelter.
    ShelterStaff,
}

impl Role {
    /// Every role, for help texts.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Supervisor,
        Role::Operator,
        Role::Caseworker,
        Role::ShelterStaff,
    ];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Operator => "operator",
            Role::Caseworker => "caseworker",
            Role::ShelterStaff => "shelter_staff",
        }
    }
}

impl FromStr for Role {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<Self, ParseError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == raw.trim())
            .ok_or_else(|| {
                ParseError(format!(
                    "unknown role `{raw}`: use admin, supervisor, operator, caseworker or shelter_staff"
                ))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_role() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
