//! Contacts: someone who reached out, found again by a keyed blind index of their phone number so that a
//! follow-up message threads into their open case. The number itself is stored only encrypted, under the
//! contact's own data key; the index (HMAC-SHA256 with the server's index key) reveals nothing without it.

use chrono::Utc;
use diesel::prelude::*;

use crate::accounts::is_unique_violation;
use crate::crypto::{Crypto, CryptoError, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::contacts;
use crate::domain::PhoneNumber;

/// Errors of the contact store.
#[derive(Debug, thiserror::Error)]
pub enum ContactError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// The place of a contact's encrypted address.
pub fn address_place(contact_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "contacts",
        column: "address_enc",
        row_id: contact_id,
    }
}

/// The blind index of a phone number.
pub fn phone_index(crypto: &Crypto, phone: &PhoneNumber) -> String {
    crypto.blind_index("phone", phone.expose_e164())
}

/// The contact with this phone number in the organization, created if new. Returns its id.
pub fn find_or_create_by_phone(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    organization_id: &str,
    phone: &PhoneNumber,
) -> Result<String, ContactError> {
    let index = phone_index(crypto, phone);
    let now = Utc::now().naive_utc();
    let existing = find_by_index(conn, organization_id, &index)?;
    if let Some(id) = existing {
        diesel::update(contacts::table.find(&id))
            .set(contacts::last_seen_at.eq(now))
            .execute(conn)?;
        return Ok(id);
    }
    let id = uuid::Uuid::now_v7().to_string();
    let (key, wrapped) = crypto.new_record_key()?;
    let sealed = key.seal_str(address_place(&id), phone.expose_e164())?;
    // A concurrent first message from the same number can win the race on PostgreSQL: insert inside a
    // savepoint and, on a unique violation, use the row the other request created.
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(contacts::table)
            .values((
                contacts::id.eq(&id),
                contacts::organization_id.eq(organization_id),
                contacts::address_kind.eq("phone"),
                contacts::address_index.eq(&index),
                contacts::address_enc.eq(&sealed),
                contacts::dek_wrapped.eq(&wrapped.bytes),
                contacts::key_version.eq(wrapped.version),
                contacts::first_seen_at.eq(now),
                contacts::last_seen_at.eq(now),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(id),
        Err(e) if is_unique_violation(&e) => find_by_index(conn, organization_id, &index)?
            .ok_or(ContactError::Query(diesel::result::Error::NotFound)),
        Err(e) => Err(e.into()),
    }
}

fn find_by_index(
    conn: &mut AnyConnection,
    organization_id: &str,
    index: &str,
) -> Result<Option<String>, diesel::result::Error> {
    contacts::table
        .filter(contacts::organization_id.eq(organization_id))
        .filter(contacts::address_index.eq(index))
        .select(contacts::id)
        .first(conn)
        .optional()
}

/// How to reach someone as they declared it themselves on the public web form — kept only with that
/// form's case (sealed in its report's details), never looked up or joined to a contact: anyone can type
/// anyone's number into a public form. Staff see it on the case (need-to-know) and, once they have
/// confirmed it belongs to the person, link the cases by hand.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeclaredContact {
    /// `sms` or `call`.
    pub way: String,
    /// The number in E.164.
    pub phone: String,
    /// When it is safe, in their words.
    pub hours: Option<String>,
    /// Always false: nobody has confirmed the number is theirs.
    pub verified: bool,
}

impl std::fmt::Debug for DeclaredContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclaredContact")
            .field("way", &self.way)
            .finish_non_exhaustive()
    }
}
