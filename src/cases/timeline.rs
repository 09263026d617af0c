//! A case's timeline: the `case_events` rows, one per thing that happened to the case. This is a leaf
//! module (it knows the table, the event kinds and how a free-text body is sealed, nothing else), so every
//! case action can append to it inside its own transaction; it is the only code that inserts events.
//!
//! `data` holds small structured facts without personal data (ids, codes, the values a change replaced).
//! Free text that may hold personal data (a note, an override's reason) goes in `body_enc`, sealed under the
//! case's data key and bound to the event's row.

use chrono::Utc;
use diesel::prelude::*;
use serde_json::Value;

use crate::crypto::{Crypto, CryptoError, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::{case_events, cases};

/// What happened. The stored names are stable: the console and the API show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The case was opened by a report.
    Opened,
    /// The first report's triage result.
    Triage,
    /// A later report of the same contact joined the case.
    ReportLinked,
    /// A later report raised the case's risk or flags.
    Escalated,
    /// Reports from one sender came too fast and were attached without triage.
    FloodCollapsed,
    /// Staff acknowledged the case (the deadline clock stopped).
    Acknowledged,
    /// The case was assigned.
    Assigned,
    /// Staff changed triage's result (with a sealed reason).
    TriageOverride,
    /// A critical case passed its acknowledgement deadline.
    SlaBreached,
    /// Staff recorded how and when the contact may be reached.
    SafeContactRecorded,
    /// An SMS to the contact was queued.
    ContactSmsQueued,
    /// An SMS to the contact was sent, delivered or failed (the provider's delivery report).
    ContactSmsStatus,
    /// The status changed (with a closure reason when closed).
    StatusChanged,
    /// A caseworker or operator asked to close a child case; a supervisor decides.
    ClosureRequested,
    ClosureApproved,
    ClosureRejected,
    /// A note (sealed); a correction points to the note it corrects.
    Note,
    /// A report was moved into this case from another.
    ReportMovedIn,
    /// A report was moved out of this case.
    ReportMovedOut,
    /// Another case was merged into this one.
    Merged,
    /// This case was merged into another (and closed as a duplicate).
    MergedInto,
    /// The victim profile changed.
    ProfileUpdated,
    /// Consent for a purpose was given or withdrawn.
    ConsentRecorded,
    /// An operator recorded a contact taken outside the gateways into this case.
    OperatorEntry,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 24] = [
        EventKind::Opened,
        EventKind::Triage,
        EventKind::ReportLinked,
        EventKind::Escalated,
        EventKind::FloodCollapsed,
        EventKind::Acknowledged,
        EventKind::Assigned,
        EventKind::TriageOverride,
        EventKind::SlaBreached,
        EventKind::SafeContactRecorded,
        EventKind::ContactSmsQueued,
        EventKind::ContactSmsStatus,
        EventKind::StatusChanged,
        EventKind::ClosureRequested,
        EventKind::ClosureApproved,
        EventKind::ClosureRejected,
        EventKind::Note,
        EventKind::ReportMovedIn,
        EventKind::ReportMovedOut,
        EventKind::Merged,
        EventKind::MergedInto,
        EventKind::ProfileUpdated,
        EventKind::ConsentRecorded,
        EventKind::OperatorEntry,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Triage => "triage",
            EventKind::ReportLinked => "report_linked",
            EventKind::Escalated => "escalated",
            EventKind::FloodCollapsed => "flood_collapsed",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Assigned => "assigned",
            EventKind::TriageOverride => "triage_override",
            EventKind::SlaBreached => "sla_breached",
            EventKind::SafeContactRecorded => "safe_contact_recorded",
            EventKind::ContactSmsQueued => "contact_sms_queued",
            EventKind::ContactSmsStatus => "contact_sms_status",
            EventKind::StatusChanged => "status_changed",
            EventKind::ClosureRequested => "closure_requested",
            EventKind::ClosureApproved => "closure_approved",
            EventKind::ClosureRejected => "closure_rejected",
            EventKind::Note => "note",
            EventKind::ReportMovedIn => "report_moved_in",
            EventKind::ReportMovedOut => "report_moved_out",
            EventKind::Merged => "merged",
            EventKind::MergedInto => "merged_into",
            EventKind::ProfileUpdated => "profile_updated",
            EventKind::ConsentRecorded => "consent_recorded",
            EventKind::OperatorEntry => "operator_entry",
        }
    }

    /// Kinds whose sealed body is free text staff wrote (shown by need-to-know).
    pub fn has_body(self) -> bool {
        matches!(
            self,
            EventKind::Note
                | EventKind::TriageOverride
                | EventKind::StatusChanged
                | EventKind::ClosureRequested
                | EventKind::ClosureApproved
                | EventKind::ClosureRejected
                | EventKind::ConsentRecorded
        )
    }
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub case_id: &'a str,
    pub organization_id: &'a str,
    pub kind: EventKind,
    /// The staff member who acted (`None`: Komek itself — intake, the deadline watch, a delivery report).
    pub actor_user_id: Option<&'a str>,
    pub report_id: Option<&'a str>,
    pub data: Option<Value>,
}

impl<'a> Event<'a> {
    /// An event by Komek itself, without data.
    pub fn new(case_id: &'a str, organization_id: &'a str, kind: EventKind) -> Self {
        Event {
            case_id,
            organization_id,
            kind,
            actor_user_id: None,
            report_id: None,
            data: None,
        }
    }

    /// Names who acted.
    pub fn by(mut self, user_id: &'a str) -> Self {
        self.actor_user_id = Some(user_id);
        self
    }

    /// Names the report concerned.
    pub fn report(mut self, report_id: &'a str) -> Self {
        self.report_id = Some(report_id);
        self
    }

    /// Adds structured facts (no personal data).
    pub fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// The place of an event's sealed body.
pub fn body_place(event_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "case_events",
        column: "body_enc",
        row_id: event_id,
    }
}

/// Errors of appending a sealed event.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

fn insert(conn: &mut AnyConnection, id: &str, event: &Event<'_>, body: Option<Vec<u8>>) -> QueryResult<()> {
    diesel::insert_into(case_events::table)
        .values((
            case_events::id.eq(id),
            case_events::case_id.eq(event.case_id),
            case_events::organization_id.eq(event.organization_id),
            case_events::kind.eq(event.kind.as_str()),
            case_events::actor_user_id.eq(event.actor_user_id),
            case_events::report_id.eq(event.report_id),
            case_events::data.eq(event.data.as_ref().map(Value::to_string)),
            case_events::body_enc.eq(body),
            case_events::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Appends an event; returns its id.
pub fn add(conn: &mut AnyConnection, event: &Event<'_>) -> QueryResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    insert(conn, &id, event, None)?;
    Ok(id)
}

/// Appends an event with a free-text body sealed under the case's data key; returns its id.
pub fn add_with_body(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    event: &Event<'_>,
    body: &str,
) -> Result<String, TimelineError> {
    let (dek, version): (Vec<u8>, i32) = cases::table
        .find(event.case_id)
        .select((cases::dek_wrapped, cases::key_version))
        .first(conn)?;
    let key = crypto.unwrap_record_key(&dek, version)?;
    let id = uuid::Uuid::now_v7().to_string();
    let sealed = key.seal_str(body_place(&id), body)?;
    insert(conn, &id, event, Some(sealed))?;
    Ok(id)
}

/// Moves the whole timeline of one case to another (a merge); returns how many events moved.
pub fn move_all(conn: &mut AnyConnection, from_case: &str, to_case: &str) -> QueryResult<usize> {
    diesel::update(case_events::table.filter(case_events::case_id.eq(from_case)))
        .set(case_events::case_id.eq(to_case))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_unique_snake_case() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
    }
}
