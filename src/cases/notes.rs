//! Notes on a case: free text staff write, sealed in a timeline event under the case's data key. Notes are
//! append-only: a correction is a new note that names the note it corrects (which stays, as written).

use serde::Serialize;
use serde_json::json;

use super::timeline::{self, EventKind};
use super::workflow::clean_text;
use super::{CaseError, gate};
use crate::audit::{self, Outcome};
use crate::auth::Staff;
use crate::crypto::Crypto;
use crate::db::AnyConnection;
use crate::db::schema::case_events;
use crate::error::ErrorCode;

/// The result of [`add_note`].
#[derive(Debug, Clone, Serialize)]
pub struct NoteAdded {
    pub case_id: String,
    /// The note's timeline event.
    pub note_id: String,
    pub corrects: Option<String>,
}

/// Adds a note (`update_case`); `corrects` names an earlier note of the same case it corrects.
pub fn add_note(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    staff: &Staff,
    case: &str,
    text: &str,
    corrects: Option<&str>,
) -> Result<NoteAdded, CaseError> {
    use diesel::prelude::*;
    let text = clean_text(Some(text))?
        .ok_or_else(|| CaseError::refused_with(ErrorCode::InvalidText, "write the note's text"))?;
    let case = gate::for_change(conn, staff, case, "case_note_added")?.case;
    if let Some(corrected) = corrects {
        let found: i64 = case_events::table
            .filter(case_events::id.eq(corrected))
            .filter(case_events::case_id.eq(&case.id))
            .filter(case_events::kind.eq(EventKind::Note.as_str()))
            .count()
            .get_result(conn)?;
        if found == 0 {
            return Err(CaseError::refused(ErrorCode::NoteNotFound));
        }
    }
    let facts = json!({ "corrects": corrects });
    let note_id = timeline::add_with_body(
        conn,
        crypto,
        &case.event(EventKind::Note).by(&staff.user_id).data(facts),
        &text,
    )?;
    audit::record(
        conn,
        &staff.audit(
            "case_note_added",
            Some("case"),
            Some(&case.id),
            Outcome::Success,
            Some(json!({ "note_id": note_id, "corrects": corrects })),
        ),
    )?;
    Ok(NoteAdded {
        case_id: case.id,
        note_id,
        corrects: corrects.map(str::to_owned),
    })
}
