//! Duty rosters: the staff numbers the danger path (`general`) and the child path (`child`) dial, in
//! order. One encrypted list per organization and kind, set with `komek roster set` (the console will
//! edit it later). The numbers are staff phone numbers: personal data, stored only sealed.

use chrono::Utc;
use diesel::prelude::*;

use super::IvrError;
use super::menu::RosterKind;
use crate::crypto::{Crypto, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::duty_rosters;
use crate::domain::PhoneNumber;

fn place(roster_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "duty_rosters",
        column: "numbers_enc",
        row_id: roster_id,
    }
}

/// Replaces the organization's roster of `kind` with `numbers` (in dialling order; empty clears it).
pub fn set(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    organization_id: &str,
    kind: RosterKind,
    numbers: &[PhoneNumber],
) -> Result<(), IvrError> {
    diesel::delete(
        duty_rosters::table
            .filter(duty_rosters::organization_id.eq(organization_id))
            .filter(duty_rosters::kind.eq(kind.as_str())),
    )
    .execute(conn)?;
    if numbers.is_empty() {
        return Ok(());
    }
    let id = uuid::Uuid::now_v7().to_string();
    let (key, wrapped) = crypto.new_record_key()?;
    let list: Vec<&str> = numbers.iter().map(PhoneNumber::expose_e164).collect();
    let sealed = key.seal_str(place(&id), &list.join(","))?;
    diesel::insert_into(duty_rosters::table)
        .values((
            duty_rosters::id.eq(&id),
            duty_rosters::organization_id.eq(organization_id),
            duty_rosters::kind.eq(kind.as_str()),
            duty_rosters::numbers_enc.eq(&sealed),
            duty_rosters::dek_wrapped.eq(&wrapped.bytes),
            duty_rosters::key_version.eq(wrapped.version),
            duty_rosters::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The organization's roster of `kind`, in dialling order (E.164), empty when none is set.
pub fn numbers(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    organization_id: &str,
    kind: RosterKind,
) -> Result<Vec<String>, IvrError> {
    let row: Option<(String, Vec<u8>, Vec<u8>, i32)> = duty_rosters::table
        .filter(duty_rosters::organization_id.eq(organization_id))
        .filter(duty_rosters::kind.eq(kind.as_str()))
        .select((
            duty_rosters::id,
            duty_rosters::numbers_enc,
            duty_rosters::dek_wrapped,
            duty_rosters::key_version,
        ))
        .first(conn)
        .optional()?;
    let Some((id, sealed, dek, version)) = row else {
        return Ok(Vec::new());
    };
    let key = crypto.unwrap_record_key(&dek, version)?;
    let text = key.open_string(place(&id), &sealed)?;
    Ok(text
        .expose()
        .split(',')
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Parses `E164,E164,...` for `komek roster set`.
pub fn parse_numbers(list: &str) -> Result<Vec<PhoneNumber>, IvrError> {
    let mut out = Vec::new();
    for (i, raw) in list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let number = PhoneNumber::parse(raw, None).map_err(|e| IvrError::InvalidRoster {
            position: i + 1,
            reason: e.0,
        })?;
        if !out.contains(&number) {
            out.push(number);
        }
    }
    Ok(out)
}
