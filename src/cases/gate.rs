//! The case gate: the one place that decides whether a staff member may open or change one case, so that
//! every route, console page and command answers a refusal the same way. It finds the case in the staff
//! member's organization (by id or `KMK-` reference) and applies the need-to-know policy
//! (`auth::policy::case_access`):
//!
//! - no such case in their organization, or one that is not theirs to know about: [`CaseError::NotFound`];
//! - a case of their organization they may not open (a child case without child-protection training; a
//!   role that never opens cases): [`CaseError::Forbidden`], audited by `cases::perform`;
//! - otherwise the case, with how much of it they may see.
//!
//! For a change, the case's row is locked first (PostgreSQL), so two changes of one case apply one after
//! the other and each sees the other's result.

use super::{CaseError, CaseRow, view};
use crate::auth::Staff;
use crate::auth::policy::{CaseAccess, CaseFacts, case_access};
use crate::db::AnyConnection;
use crate::db::lock::{Locked, lock_row};

/// A case the caller may open.
#[derive(Debug, Clone)]
pub struct Opened {
    pub case: CaseRow,
    /// `Full` or `WithoutReporter`.
    pub access: CaseAccess,
}

/// The facts the policy decides on.
pub fn facts(case: &CaseRow) -> CaseFacts<'_> {
    CaseFacts {
        organization_id: &case.organization_id,
        child_victim: case.child_victim,
        assignee_id: case.assignee_id.as_deref(),
    }
}

fn decide(staff: &Staff, case: CaseRow, action: &'static str) -> Result<Opened, CaseError> {
    match case_access(staff, &facts(&case)) {
        CaseAccess::NotFound => Err(CaseError::NotFound("case")),
        CaseAccess::Forbidden => Err(CaseError::Forbidden {
            case_id: case.id,
            action,
        }),
        access => Ok(Opened { case, access }),
    }
}

/// Opens a case for reading. `action` names the audit entry of a refusal.
pub fn for_read(
    conn: &mut AnyConnection,
    staff: &Staff,
    id_or_reference: &str,
    action: &'static str,
) -> Result<Opened, CaseError> {
    let case =
        view::find(conn, &staff.organization_id, id_or_reference)?.ok_or(CaseError::NotFound("case"))?;
    decide(staff, case, action)
}

/// Opens a case for a change: like [`for_read`], with the row locked until the transaction ends.
pub fn for_change(
    conn: &mut AnyConnection,
    staff: &Staff,
    id_or_reference: &str,
    action: &'static str,
) -> Result<Opened, CaseError> {
    let found =
        view::find(conn, &staff.organization_id, id_or_reference)?.ok_or(CaseError::NotFound("case"))?;
    lock_row(conn, Locked::Cases, &found.id)?;
    // Read again under the lock: a change that committed while this one waited is seen.
    let case = super::load(conn, &found.id)?.ok_or(CaseError::NotFound("case"))?;
    decide(staff, case, action)
}
