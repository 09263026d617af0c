//! Need-to-know: what a staff member who holds `read_cases` may see of one particular case. Pure functions,
//! so every rule is unit-tested without a database; handlers call [`case_access`] after loading the case's
//! facts and answer according to the result.
//!
//! The rules, in order:
//! 1. Another organization's case does not exist for the caller: **404** ([`CaseAccess::NotFound`]).
//! 2. Admins and shelter staff never open cases directly (shelter staff see referrals to their shelter
//!    only): [`CaseAccess::Forbidden`].
//! 3. A child case opens only for supervisors and child-protection-trained staff (DESIGN §8):
//!    [`CaseAccess::Forbidden`] for anyone else.
//! 4. Supervisors see every case of their organization in full.
//! 5. Operators see every case of their organization in full: they handle the reports, so they see the
//!    reporter's identity and contact details.
//! 6. Caseworkers see the cases assigned to them, without the reporter's identity or contact details
//!    ([`CaseAccess::WithoutReporter`]); a case not assigned to them answers 404 like any case they have no
//!    business with.

use super::Staff;
use crate::domain::Role;

/// What the access decision needs to know about a case.
#[derive(Debug, Clone, Copy)]
pub struct CaseFacts<'a> {
    /// The case's organization.
    pub organization_id: &'a str,
    /// Whether the victim may be under 18.
    pub child_victim: bool,
    /// The assigned caseworker, if any.
    pub assignee_id: Option<&'a str>,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseAccess {
    /// Answer 404: the caller may not know the case exists (another organization, or not theirs).
    NotFound,
    /// Answer 403: the caller's organization owns it, but this caller may not open it (child case without
    /// training; a role that never opens cases). Audit the denial.
    Forbidden,
    /// Show the case without the reporter's identity and contact details.
    WithoutReporter,
    /// Show everything.
    Full,
}

impl CaseAccess {
    /// True when the case may be shown in some form.
    pub fn allows_read(self) -> bool {
        matches!(self, CaseAccess::WithoutReporter | CaseAccess::Full)
    }

    /// True when the reporter's identity and contact details may be shown.
    pub fn shows_reporter(self) -> bool {
        self == CaseAccess::Full
    }
}

/// Decides what `staff` may see of the case described by `case`.
pub fn case_access(staff: &Staff, case: &CaseFacts<'_>) -> CaseAccess {
    if staff.organization_id != case.organization_id {
        return CaseAccess::NotFound;
    }
    if matches!(staff.role, Role::Admin | Role::ShelterStaff) {
        return CaseAccess::Forbidden;
    }
    if case.child_victim && !(staff.role == Role::Supervisor || staff.child_protection_trained) {
        return CaseAccess::Forbidden;
    }
    match staff.role {
        Role::Supervisor | Role::Operator => CaseAccess::Full,
        Role::Caseworker if case.assignee_id == Some(staff.user_id.as_str()) => CaseAccess::WithoutReporter,
        // On-duty caseworkers are told about new critical cases and pick up unassigned ones.
        Role::Caseworker if case.assignee_id.is_none() && staff.on_duty => CaseAccess::WithoutReporter,
        _ => CaseAccess::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(role: Role, trained: bool) -> Staff {
        Staff::for_tests("me", "org-a", role, trained)
    }

    fn case(org: &str, child: bool, assignee: Option<&'static str>) -> CaseFacts<'static> {
        let org: &'static str = if org == "org-a" { "org-a" } else { "org-b" };
        CaseFacts {
            organization_id: org,
            child_victim: child,
            assignee_id: assignee,
        }
    }

    #[test]
    fn on_duty_caseworkers_may_open_unassigned_cases_only() {
        let mut caseworker = staff(Role::Caseworker, false);
        assert_eq!(
            case_access(&caseworker, &case("org-a", false, None)),
            CaseAccess::NotFound
        );
        caseworker.on_duty = true;
        assert_eq!(
            case_access(&caseworker, &case("org-a", false, None)),
            CaseAccess::WithoutReporter
        );
        assert_eq!(
            case_access(&caseworker, &case("org-a", false, Some("someone-else"))),
            CaseAccess::NotFound
        );
        assert_eq!(
            case_access(&caseworker, &case("org-a", true, None)),
            CaseAccess::Forbidden
        );
    }

    #[test]
    fn another_organizations_case_is_not_found_for_every_role() {
        for role in Role::ALL {
            for trained in [false, true] {
                assert_eq!(
                    case_access(&staff(role, trained), &case("org-b", false, Some("me"))),
                    CaseAccess::NotFound,
                    "{role}"
                );
            }
        }
    }

    #[test]
    fn child_cases_need_training_or_a_supervisor() {
        let child = case("org-a", true, Some("me"));
        assert_eq!(
            case_access(&staff(Role::Caseworker, false), &child),
            CaseAccess::Forbidden
        );
        assert_eq!(
            case_access(&staff(Role::Operator, false), &child),
            CaseAccess::Forbidden
        );
        assert_eq!(
            case_access(&staff(Role::Caseworker, true), &child),
            CaseAccess::WithoutReporter
        );
        assert_eq!(
            case_access(&staff(Role::Operator, true), &child),
            CaseAccess::Full
        );
        assert_eq!(
            case_access(&staff(Role::Supervisor, false), &child),
            CaseAccess::Full
        );
    }

    #[test]
    fn supervisors_and_operators_see_everything_caseworkers_their_cases_without_the_reporter() {
        let adult = case("org-a", false, None);
        assert_eq!(
            case_access(&staff(Role::Supervisor, false), &adult),
            CaseAccess::Full
        );
        assert_eq!(
            case_access(&staff(Role::Operator, false), &adult),
            CaseAccess::Full
        );
        let mine = case("org-a", false, Some("me"));
        let access = case_access(&staff(Role::Caseworker, false), &mine);
        assert_eq!(access, CaseAccess::WithoutReporter);
        assert!(access.allows_read() && !access.shows_reporter());
        assert_eq!(
            case_access(&staff(Role::Caseworker, false), &adult),
            CaseAccess::NotFound
        );
        let theirs = case("org-a", false, Some("someone-else"));
        assert_eq!(
            case_access(&staff(Role::Caseworker, true), &theirs),
            CaseAccess::NotFound
        );
    }

    #[test]
    fn admins_and_shelter_staff_never_open_cases() {
        let mine = case("org-a", false, Some("me"));
        assert_eq!(
            case_access(&staff(Role::Admin, true), &mine),
            CaseAccess::Forbidden
        );
        assert_eq!(
            case_access(&staff(Role::ShelterStaff, true), &mine),
            CaseAccess::Forbidden
        );
    }
}
