//! One named permission per action, as marker types, and the role matrix that grants them. Deny by default:
//! a role holds a permission only where [`Permission::granted_to`] says so. A handler states what it needs
//! by extracting [`Authorized<P>`](super::Authorized) — the type is the guard, so a handler cannot run for a
//! caller without it.
//!
//! | permission | admin | supervisor | operator | caseworker | shelter_staff |
//! |---|---|---|---|---|---|
//! | own_account | ✓ | ✓ | ✓ | ✓ | ✓ |
//! | read_reports, create_report, override_triage, assign_case | | ✓ | ✓ | | |
//! | read_cases, update_case, acknowledge_case, send_contact_sms, manage_safe_contact | | ✓ | ✓ | ✓ | |
//! | approve_child_case_closure, read_access_log | | ✓ | | | |
//! | read_referrals | | ✓ | | ✓ | ✓ |
//! | answer_referrals | | | | | ✓ |
//! | read_statistics, manage_recipients, manage_notifications | ✓ | ✓ | | | |
//! | manage_users, manage_channels, manage_shelters | ✓ | | | | |
//!
//! Admins administer (accounts, channels, shelters) and do not read cases; an NGO whose administrator also
//! supervises gives that person a second, supervisor account. Which *case* a permitted caller may open, and
//! with which fields, is decided per object by [`policy`](super::policy).

use crate::domain::Role;

/// A named permission. Implemented by the marker types below; add one per new action.
pub trait Permission: 'static {
    /// The stable name (audit entries, the route inventory, error messages).
    const NAME: &'static str;
    /// Whether `role` holds this permission.
    fn granted_to(role: Role) -> bool;
    /// Whether a session that must still change its one-time password may use it (only the few actions
    /// needed to change it: own account, logout).
    const BEFORE_PASSWORD_CHANGE: bool = false;
}

macro_rules! permissions {
    ($( $(#[$doc:meta])* $ty:ident = $name:literal : [$($role:ident),*] $(, before_password_change = $early:literal)? ;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $ty;

            impl Permission for $ty {
                const NAME: &'static str = $name;
                fn granted_to(role: Role) -> bool {
                    matches!(role, $(Role::$role)|*)
                }
                $(const BEFORE_PASSWORD_CHANGE: bool = $early;)?
            }
        )*

        /// Every permission's name and grant function, for the matrix test, `GET /api/v1/me` and docs.
        pub const ALL: &[(&str, fn(Role) -> bool)] = &[
            $(($name, <$ty as Permission>::granted_to)),*
        ];
    };
}

permissions! {
    /// See and change one's own account (`/me`), log out.
    OwnAccount = "own_account": [Admin, Supervisor, Operator, Caseworker, ShelterStaff], before_password_change = true;
    /// Read inbound reports (the live queue).
    ReadReports = "read_reports": [Supervisor, Operator];
    /// Record a report taken by phone (operator entry).
    CreateReport = "create_report": [Supervisor, Operator];
    /// Read cases (which ones and which fields: `policy::case_access`).
    ReadCases = "read_cases": [Supervisor, Operator, Caseworker];
    /// Add notes, change status, record consent on a case.
    UpdateCase = "update_case": [Supervisor, Operator, Caseworker];
    /// Override the automatic triage (risk, child flag, types).
    OverrideTriage = "override_triage": [Supervisor, Operator];
    /// Acknowledge a case (stop its SLA clock).
    AcknowledgeCase = "acknowledge_case": [Supervisor, Operator, Caseworker];
    /// Assign a case to a caseworker.
    AssignCase = "assign_case": [Supervisor, Operator];
    /// Approve the closure of a child case.
    ApproveChildCaseClosure = "approve_child_case_closure": [Supervisor];
    /// Send an SMS to a case contact (only where safe contact is recorded).
    SendContactSms = "send_contact_sms": [Supervisor, Operator, Caseworker];
    /// Record or change a contact's safe-contact preferences.
    ManageSafeContact = "manage_safe_contact": [Supervisor, Operator, Caseworker];
    /// See who accessed a case.
    ReadAccessLog = "read_access_log": [Supervisor];
    /// Read referrals (shelter staff: only those to their shelter).
    ReadReferrals = "read_referrals": [Supervisor, Caseworker, ShelterStaff];
    /// Accept or decline a referral to one's shelter.
    AnswerReferrals = "answer_referrals": [ShelterStaff];
    /// Aggregate statistics.
    ReadStatistics = "read_statistics": [Admin, Supervisor];
    /// Who is notified of what (notification recipients).
    ManageRecipients = "manage_recipients": [Admin, Supervisor];
    /// See notifications that failed for good (the dead-letter alert) and requeue them.
    ManageNotifications = "manage_notifications": [Admin, Supervisor];
    /// Staff accounts of one's organization.
    ManageUsers = "manage_users": [Admin];
    /// Channels (numbers, gateways, webhook secrets).
    ManageChannels = "manage_channels": [Admin];
    /// Shelters and their capacity.
    ManageShelters = "manage_shelters": [Admin];
}

/// The names of the permissions `role` holds.
pub fn names_for(role: Role) -> Vec<&'static str> {
    ALL.iter()
        .filter(|(_, granted)| granted(role))
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn the_matrix_denies_by_default() {
        assert!(ManageUsers::granted_to(Role::Admin));
        for role in [
            Role::Supervisor,
            Role::Operator,
            Role::Caseworker,
            Role::ShelterStaff,
        ] {
            assert!(!ManageUsers::granted_to(role), "{role}");
        }
        assert!(!ReadCases::granted_to(Role::Admin));
        assert!(!ReadCases::granted_to(Role::ShelterStaff));
        assert!(ReadAccessLog::granted_to(Role::Supervisor));
        assert!(!ReadAccessLog::granted_to(Role::Operator));
        assert_eq!(
            names_for(Role::ShelterStaff),
            vec!["own_account", "read_referrals", "answer_referrals"]
        );
        const { assert!(OwnAccount::BEFORE_PASSWORD_CHANGE) };
        const { assert!(!ReadCases::BEFORE_PASSWORD_CHANGE) };
    }
}
