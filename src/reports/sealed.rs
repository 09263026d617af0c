//! Sealing and opening a report's personal content: its body (what the person said or wrote) and its
//! details (everything else the event carried, as JSON: the sender as given, menu digits, a recording's
//! address, the web form's answers). Both are sealed under the report's own data key and bound to their
//! place (table, column, row), so a value copied to another row or column does not open.

use diesel::prelude::*;

use super::ReportRow;
use crate::crypto::{Crypto, CryptoError, FieldContext, RecordKey};
use crate::db::AnyConnection;
use crate::db::schema::reports;
use crate::sensitive::Sensitive;

/// The place of a report's encrypted body.
pub fn body_place(report_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "reports",
        column: "body_enc",
        row_id: report_id,
    }
}

/// The place of a report's encrypted details.
pub fn details_place(report_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "reports",
        column: "details_enc",
        row_id: report_id,
    }
}

pub(super) fn seal_details(
    key: &RecordKey,
    report_id: &str,
    details: &serde_json::Value,
) -> Result<Vec<u8>, CryptoError> {
    let json = serde_json::to_vec(details).map_err(|_| CryptoError::Tampered)?;
    key.seal(details_place(report_id), &json)
}

/// The report's body in clear (empty for a report without one, such as a call).
pub fn open_body(crypto: &Crypto, report: &ReportRow) -> Result<Sensitive<String>, CryptoError> {
    let Some(sealed) = &report.body_enc else {
        return Ok(Sensitive::new(String::new()));
    };
    let key = crypto.unwrap_record_key(&report.dek_wrapped, report.key_version)?;
    key.open_string(body_place(&report.id), sealed)
}

/// The report's details in clear, as JSON (`None` when it has none).
pub fn open_details(crypto: &Crypto, report: &ReportRow) -> Result<Option<Sensitive<Vec<u8>>>, CryptoError> {
    let Some(sealed) = &report.details_enc else {
        return Ok(None);
    };
    let key = crypto.unwrap_record_key(&report.dek_wrapped, report.key_version)?;
    key.open(details_place(&report.id), sealed).map(Some)
}

/// Replaces a report's details (a recording or hang-up that arrived after the call's report was written).
pub fn reseal_details(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    report_id: &str,
    details: &serde_json::Value,
) -> Result<(), super::ReportError> {
    let (dek, version): (Vec<u8>, i32) = reports::table
        .find(report_id)
        .select((reports::dek_wrapped, reports::key_version))
        .first(conn)?;
    let key = crypto.unwrap_record_key(&dek, version)?;
    let sealed = seal_details(&key, report_id, details)?;
    diesel::update(reports::table.find(report_id))
        .set(reports::details_enc.eq(Some(sealed)))
        .execute(conn)?;
    Ok(())
}
