//! Cases: the victim-assistance case a report opens or joins. This module owns every change to a case —
//! nothing else updates `cases` or inserts `case_events` (a test scans the source for it). Each action is
//! one plain function taking a connection (inside the caller's write transaction), the acting staff member
//! and typed input; it checks the case gate, changes the row, appends to the timeline, writes the audit
//! entry and the outbox rows, all in that one transaction. The API, the console, the command line and the
//! workers call these functions; run a staff action through [`perform`], which also audits a refusal.
//!
//! - [`gate`]: who may open or change a case (another organization's: not found; a child case without
//!   training: `case_forbidden`, the same everywhere).
//! - [`incoming`]: what a new report does — open a case, join the contact's open case and raise its risk,
//!   collapse a flood (Komek itself acts: no staff actor; the timeline records it).
//! - [`taking`]: acknowledge, assign. [`overrides`]: override triage. [`contact`]: safe-contact record and
//!   SMS to the contact. [`deadline`]: the missed-acknowledgement mark.
//! - [`timeline`]: the leaf that appends events. [`view`]: the queue and one case in full.
//!
//! Risk and flags only ever rise automatically (a later message can make a case more urgent, never
//! less); lowering them is an operator's override with a reason.

pub mod consents;
pub mod contact;
pub mod deadline;
pub mod gate;
pub mod incoming;
pub mod overrides;
pub mod taking;
pub mod timeline;
pub mod view;

use chrono::NaiveDateTime;
use diesel::prelude::*;

pub use gate::Opened;
pub use incoming::{Opening, effective_flags, effective_risk, open_case_of_contact};
pub use timeline::{Event, EventKind};

use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::crypto::CryptoError;
use crate::db::schema::cases;
use crate::db::{Db, DbError};
use crate::error::{ApiError, ErrorCode};
use crate::triage::{ExploitationType, RiskLevel};

/// Why a case action did not happen. Nothing was changed (the transaction rolls back).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// No such record in the caller's organization — or one the caller may not know about.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The case gate refused: the case exists, but this caller may not open or change it. [`perform`]
    /// audits the refusal (as `action`, outcome denied).
    #[error("this case may be opened or changed only by child-protection trained staff or supervisors")]
    Forbidden { case_id: String, action: &'static str },
    /// The input is invalid or the case's state does not allow the action.
    #[error("{message}")]
    Refused {
        code: ErrorCode,
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
}

impl CaseError {
    /// A refusal with its code and the code's meaning as message.
    pub fn refused(code: ErrorCode) -> Self {
        CaseError::refused_with(code, code.meaning())
    }

    /// A refusal with its code and a message.
    pub fn refused_with(code: ErrorCode, message: impl Into<String>) -> Self {
        CaseError::Refused {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// True when the database could not be reached or was too busy.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CaseError::Db(e) if e.is_unavailable())
    }
}

impl From<diesel::result::Error> for CaseError {
    fn from(err: diesel::result::Error) -> Self {
        CaseError::Db(err.into())
    }
}

impl From<timeline::TimelineError> for CaseError {
    fn from(err: timeline::TimelineError) -> Self {
        match err {
            timeline::TimelineError::Crypto(e) => CaseError::Crypto(e),
            timeline::TimelineError::Query(e) => e.into(),
        }
    }
}

impl From<crate::reports::ReportError> for CaseError {
    fn from(err: crate::reports::ReportError) -> Self {
        match err {
            crate::reports::ReportError::Crypto(e) => CaseError::Crypto(e),
            crate::reports::ReportError::Query(e) => e.into(),
        }
    }
}

impl From<crate::contacts::ContactError> for CaseError {
    fn from(err: crate::contacts::ContactError) -> Self {
        match err {
            crate::contacts::ContactError::Crypto(e) => CaseError::Crypto(e),
            crate::contacts::ContactError::Query(e) => e.into(),
        }
    }
}

impl From<CaseError> for ApiError {
    fn from(err: CaseError) -> Self {
        match err {
            CaseError::NotFound(what) => ApiError::not_found(what),
            CaseError::Forbidden { .. } => ApiError::case_forbidden(),
            CaseError::Refused {
                code,
                message,
                details,
            } => {
                let answer = ApiError::new(code, message);
                match details {
                    Some(details) => answer.with_details(details),
                    None => answer,
                }
            }
            CaseError::Crypto(e) => e.into(),
            CaseError::Db(e) => e.into(),
            CaseError::Audit(e) => e.into(),
        }
    }
}

/// Runs one staff action on cases in one write transaction scoped to the actor's organization. When the
/// case gate refuses ([`CaseError::Forbidden`]), the action's transaction rolls back and the refusal is
/// audited in a transaction of its own, so it is on record even though nothing else happened.
pub async fn perform<T, F>(db: &Db, staff: &Staff, action: F) -> Result<T, CaseError>
where
    F: FnOnce(&mut crate::db::AnyConnection) -> Result<T, CaseError> + Send + 'static,
    T: Send + 'static,
{
    let result = db.write_as(&staff.organization_id, action).await;
    if let Err(CaseError::Forbidden { case_id, action }) = &result {
        let (staff, case_id, action) = (staff.clone(), case_id.clone(), *action);
        db.write_as(&staff.organization_id.clone(), move |conn| {
            audit::record(
                conn,
                &staff.audit(action, Some("case"), Some(&case_id), Outcome::Denied, None),
            )
            .map_err(CaseError::from)
        })
        .await?;
    }
    result
}

/// Sort rank of a risk level in the queue (most urgent first).
pub fn risk_rank(risk: RiskLevel) -> i32 {
    match risk {
        RiskLevel::Critical => 0,
        RiskLevel::High => 1,
        RiskLevel::Medium => 2,
        RiskLevel::Low => 3,
    }
}

/// A case row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cases)]
pub struct CaseRow {
    pub id: String,
    pub organization_id: String,
    pub reference: String,
    pub status: String,
    pub risk: String,
    pub risk_rank: i32,
    pub exploitation_types: String,
    pub child_victim: bool,
    pub shelter_needed: bool,
    pub silent: bool,
    pub language: Option<String>,
    pub contact_id: Option<String>,
    pub assignee_id: Option<String>,
    pub sla_due_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl CaseRow {
    /// The stored risk level.
    pub fn risk_level(&self) -> RiskLevel {
        self.risk.parse().unwrap_or(RiskLevel::High)
    }

    /// The stored exploitation types.
    pub fn types(&self) -> Vec<ExploitationType> {
        parse_types(&self.exploitation_types)
    }

    /// The case's identity for a timeline event.
    pub fn event(&self, kind: EventKind) -> Event<'_> {
        Event::new(&self.id, &self.organization_id, kind)
    }
}

/// Parses the comma-separated stored exploitation types (unknown names are skipped).
pub fn parse_types(stored: &str) -> Vec<ExploitationType> {
    stored.split(',').filter_map(|t| t.trim().parse().ok()).collect()
}

pub(crate) fn join_types(types: &[ExploitationType]) -> String {
    types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
}

/// Loads a case row by id (no access decision: for Komek's own actions).
pub fn load(conn: &mut crate::db::AnyConnection, case_id: &str) -> QueryResult<Option<CaseRow>> {
    cases::table
        .find(case_id)
        .select(CaseRow::as_select())
        .first(conn)
        .optional()
}
