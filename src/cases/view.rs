//! What staff see of cases: the queue (list with filters and cursor pagination) and one case in full — its
//! timeline, its reports with their decrypted text, and, only for those who may see it, the reporter's
//! contact. Which cases and which fields a caller gets is decided by `auth::policy`; this module only
//! builds the views it is asked for.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::{CaseRow, parse_types};
use crate::contacts;
use crate::contacts::DeclaredContact;
use crate::crypto::{Crypto, CryptoError};
use crate::db::AnyConnection;
use crate::db::schema::{case_events, cases, contacts as contacts_table, reports};
use crate::reports::{body_place, details_place};

/// Largest page of a list.
pub const MAX_PAGE: i64 = 200;

/// Filters of the case list.
#[derive(Debug, Default, Clone)]
pub struct CaseFilter {
    pub status: Option<String>,
    pub risk: Option<String>,
    pub child_victim: Option<bool>,
    /// Only cases assigned to this user (caseworkers see their own)...
    pub assignee_id: Option<String>,
    /// ...and, with `assignee_id`, unassigned cases too (an on-duty caseworker picks them up).
    pub or_unassigned: bool,
    /// Leave out child cases (staff without child-protection training).
    pub exclude_child: bool,
    /// Cases older than this id (the cursor: ids are time-ordered).
    pub before_id: Option<String>,
    pub limit: i64,
}

/// A case in the queue: no personal data.
#[derive(Debug, Serialize)]
pub struct CaseSummary {
    pub id: String,
    pub reference: String,
    pub status: String,
    pub risk: String,
    pub child_victim: bool,
    pub shelter_needed: bool,
    pub silent: bool,
    pub exploitation_types: Vec<String>,
    pub language: Option<String>,
    pub assignee_id: Option<String>,
    pub sla_due_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl From<&CaseRow> for CaseSummary {
    fn from(case: &CaseRow) -> Self {
        CaseSummary {
            id: case.id.clone(),
            reference: case.reference.clone(),
            status: case.status.clone(),
            risk: case.risk.clone(),
            child_victim: case.child_victim,
            shelter_needed: case.shelter_needed,
            silent: case.silent,
            exploitation_types: parse_types(&case.exploitation_types)
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            language: case.language.clone(),
            assignee_id: case.assignee_id.clone(),
            sla_due_at: case.sla_due_at,
            acknowledged_at: case.acknowledged_at,
            created_at: case.created_at,
            updated_at: case.updated_at,
        }
    }
}

/// One page of cases of `organization_id`, newest first.
pub fn list(
    conn: &mut AnyConnection,
    organization_id: &str,
    filter: &CaseFilter,
) -> QueryResult<Vec<CaseRow>> {
    let mut query = cases::table
        .filter(cases::organization_id.eq(organization_id.to_owned()))
        .select(CaseRow::as_select())
        .order(cases::id.desc())
        .limit(filter.limit.clamp(1, MAX_PAGE))
        .into_boxed();
    if let Some(status) = &filter.status {
        query = query.filter(cases::status.eq(status.clone()));
    }
    if let Some(risk) = &filter.risk {
        query = query.filter(cases::risk.eq(risk.clone()));
    }
    if let Some(child) = filter.child_victim {
        query = query.filter(cases::child_victim.eq(child));
    }
    if filter.exclude_child {
        query = query.filter(cases::child_victim.eq(false));
    }
    match (&filter.assignee_id, filter.or_unassigned) {
        (Some(assignee), false) => query = query.filter(cases::assignee_id.eq(assignee.clone())),
        (Some(assignee), true) => {
            query = query.filter(
                cases::assignee_id
                    .eq(assignee.clone())
                    .or(cases::assignee_id.is_null()),
            )
        }
        (None, _) => {}
    }
    if let Some(before) = &filter.before_id {
        query = query.filter(cases::id.lt(before.clone()));
    }
    query.load(conn)
}

/// A case of `organization_id` by id or by reference.
pub fn find(
    conn: &mut AnyConnection,
    organization_id: &str,
    id_or_reference: &str,
) -> QueryResult<Option<CaseRow>> {
    cases::table
        .filter(cases::organization_id.eq(organization_id))
        .filter(
            cases::id
                .eq(id_or_reference)
                .or(cases::reference.eq(id_or_reference.to_ascii_uppercase())),
        )
        .select(CaseRow::as_select())
        .first(conn)
        .optional()
}

/// One timeline entry.
#[derive(Debug, Serialize)]
pub struct TimelineEvent {
    pub id: String,
    pub kind: String,
    pub actor_user_id: Option<String>,
    pub report_id: Option<String>,
    pub data: Option<Value>,
    pub created_at: NaiveDateTime,
}

/// A report as shown inside its case.
#[derive(Debug, Serialize)]
pub struct CaseReport {
    pub id: String,
    pub source: String,
    pub provider: Option<String>,
    pub received_at: NaiveDateTime,
    pub triage_status: String,
    pub text: Option<String>,
    pub triage: Option<Value>,
}

/// The reporter's contact, for those who may see it.
#[derive(Debug, Serialize)]
pub struct Reporter {
    pub contact_id: String,
    pub address_kind: String,
    pub phone: Option<String>,
}

/// A way to reach the person that they declared on the public web form: unverified (anyone can type any
/// number into the form), never linked to a contact.
#[derive(Debug, Serialize)]
pub struct Declared {
    pub report_id: String,
    #[serde(flatten)]
    pub contact: DeclaredContact,
}

/// A case in full.
#[derive(Debug, Serialize)]
pub struct CaseDetail {
    #[serde(flatten)]
    pub summary: CaseSummary,
    pub timeline: Vec<TimelineEvent>,
    pub reports: Vec<CaseReport>,
    /// Present only for callers who may see the reporter's identity; `null` otherwise.
    pub reporter: Option<Reporter>,
    /// Numbers declared on the web form with this case's reports (unverified); only for callers who may
    /// see the reporter's identity, empty otherwise.
    pub declared_contacts: Vec<Declared>,
}

/// Errors while building a view.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<ViewError> for super::CaseError {
    fn from(err: ViewError) -> Self {
        match err {
            ViewError::Query(q) => q.into(),
            ViewError::Crypto(c) => c.into(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = reports)]
struct ReportForView {
    id: String,
    source: String,
    provider: Option<String>,
    received_at: NaiveDateTime,
    triage_status: String,
    body_enc: Option<Vec<u8>>,
    details_enc: Option<Vec<u8>>,
    dek_wrapped: Vec<u8>,
    key_version: i32,
    triage: Option<String>,
}

/// The part of a web report's details that names a declared contact.
#[derive(serde::Deserialize)]
struct WebDeclared {
    declared_contact: Option<DeclaredContact>,
}

/// Builds the full view of `case`.
pub fn detail(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    case: &CaseRow,
    shows_reporter: bool,
) -> Result<CaseDetail, ViewError> {
    let timeline = case_events::table
        .filter(case_events::case_id.eq(&case.id))
        .order(case_events::id.asc())
        .select((
            case_events::id,
            case_events::kind,
            case_events::actor_user_id,
            case_events::report_id,
            case_events::data,
            case_events::created_at,
        ))
        .load::<(
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            NaiveDateTime,
        )>(conn)?
        .into_iter()
        .map(
            |(id, kind, actor_user_id, report_id, data, created_at)| TimelineEvent {
                id,
                kind,
                actor_user_id,
                report_id,
                data: data.and_then(|d| serde_json::from_str(&d).ok()),
                created_at,
            },
        )
        .collect();
    let rows = reports::table
        .filter(reports::case_id.eq(&case.id))
        .order(reports::id.asc())
        .select(ReportForView::as_select())
        .load(conn)?;
    let mut shown = Vec::with_capacity(rows.len());
    let mut declared_contacts = Vec::new();
    for row in rows {
        let key = crypto.unwrap_record_key(&row.dek_wrapped, row.key_version)?;
        let text = match &row.body_enc {
            Some(sealed) => Some(key.open_string(body_place(&row.id), sealed)?.expose().clone()),
            None => None,
        };
        if let (true, "web", Some(sealed)) = (shows_reporter, row.source.as_str(), &row.details_enc) {
            let details = key.open(details_place(&row.id), sealed)?;
            if let Ok(WebDeclared {
                declared_contact: Some(contact),
            }) = serde_json::from_slice(details.expose())
            {
                declared_contacts.push(Declared {
                    report_id: row.id.clone(),
                    contact,
                });
            }
        }
        shown.push(CaseReport {
            id: row.id,
            source: row.source,
            provider: row.provider,
            received_at: row.received_at,
            triage_status: row.triage_status,
            text,
            triage: row.triage.and_then(|t| serde_json::from_str(&t).ok()),
        });
    }
    let reporter = match (&case.contact_id, shows_reporter) {
        (Some(contact_id), true) => reporter(conn, crypto, contact_id)?,
        _ => None,
    };
    Ok(CaseDetail {
        summary: CaseSummary::from(case),
        timeline,
        reports: shown,
        reporter,
        declared_contacts,
    })
}

fn reporter(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    contact_id: &str,
) -> Result<Option<Reporter>, ViewError> {
    let row = contacts_table::table
        .find(contact_id)
        .select((
            contacts_table::address_kind,
            contacts_table::address_enc,
            contacts_table::dek_wrapped,
            contacts_table::key_version,
        ))
        .first::<(String, Option<Vec<u8>>, Vec<u8>, i32)>(conn)
        .optional()?;
    let Some((address_kind, address_enc, dek, version)) = row else {
        return Ok(None);
    };
    let phone = match address_enc {
        Some(sealed) if address_kind == "phone" => {
            let key = crypto.unwrap_record_key(&dek, version)?;
            Some(
                key.open_string(contacts::address_place(contact_id), &sealed)?
                    .expose()
                    .clone(),
            )
        }
        _ => None,
    };
    Ok(Some(Reporter {
        contact_id: contact_id.to_owned(),
        address_kind,
        phone,
    }))
}
