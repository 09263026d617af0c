//! Staff accounts: creation with an Argon2id-hashed one-time password and a TOTP enrolment whose secret is
//! stored encrypted. The password and enrolment URI are returned once, to be shown to the person creating
//! the account, and are never logged.

use chrono::Utc;
use diesel::prelude::*;

use super::{AccountError, is_unique_violation, password, totp};
use crate::crypto::{Crypto, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::users;
use crate::domain::{EmailAddress, Role};
use crate::sensitive::Sensitive;

/// The `users` row as inserted.
#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: &'a str,
    organization_id: &'a str,
    email: &'a str,
    display_name: Option<&'a str>,
    role: &'a str,
    child_protection_trained: bool,
    on_duty: bool,
    language: &'a str,
    password_hash: &'a str,
    password_changed_at: chrono::NaiveDateTime,
    must_change_password: bool,
    totp_secret_enc: Option<Vec<u8>>,
    totp_dek: Option<Vec<u8>>,
    totp_key_version: Option<i32>,
    security_stamp: &'a str,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

/// A created account and its one-time credentials (shown once).
#[derive(Debug)]
pub struct CreatedUser {
    pub id: String,
    pub email: EmailAddress,
    pub role: Role,
    pub organization_id: String,
    pub password: Sensitive<String>,
    pub totp_uri: Sensitive<String>,
}

/// The place of a user's encrypted TOTP secret.
pub fn totp_place(user_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "users",
        column: "totp_secret_enc",
        row_id: user_id,
    }
}

/// Creates an account with a generated one-time password and a TOTP enrolment.
pub fn create(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    organization_id: &str,
    email: &EmailAddress,
    role: Role,
) -> Result<CreatedUser, AccountError> {
    let id = uuid::Uuid::now_v7().to_string();
    let one_time = password::generate_one_time();
    let password_hash = password::hash(&one_time).map_err(AccountError::Hashing)?;
    let secret = totp::new_secret().map_err(AccountError::Hashing)?;
    let totp_uri = totp::enrolment_uri(&secret, email.as_str()).map_err(AccountError::Invalid)?;
    let (key, wrapped) = crypto.new_record_key()?;
    let sealed_secret = key.seal(totp_place(&id), secret.expose())?;
    let now = Utc::now().naive_utc();
    let stamp = uuid::Uuid::new_v4().to_string();
    let row = NewUserRow {
        id: &id,
        organization_id,
        email: email.as_str(),
        display_name: None,
        role: role.as_str(),
        child_protection_trained: false,
        on_duty: false,
        language: "en",
        password_hash: &password_hash,
        password_changed_at: now,
        must_change_password: true,
        totp_secret_enc: Some(sealed_secret),
        totp_dek: Some(wrapped.bytes),
        totp_key_version: Some(wrapped.version),
        security_stamp: &stamp,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(users::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                AccountError::UserExists
            } else {
                e.into()
            }
        })?;
    Ok(CreatedUser {
        id,
        email: email.clone(),
        role,
        organization_id: organization_id.to_owned(),
        password: one_time,
        totp_uri,
    })
}

/// Replaces a user's second factor with a new enrolment (new secret under a new data key; the last used
/// step is cleared). Returns the new `otpauth://` URI, to be shown once.
pub fn reset_totp(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    user_id: &str,
    email: &str,
) -> Result<Sensitive<String>, AccountError> {
    let secret = totp::new_secret().map_err(AccountError::Hashing)?;
    let totp_uri = totp::enrolment_uri(&secret, email).map_err(AccountError::Invalid)?;
    let (key, wrapped) = crypto.new_record_key()?;
    let sealed_secret = key.seal(totp_place(user_id), secret.expose())?;
    diesel::update(users::table.filter(users::id.eq(user_id)))
        .set((
            users::totp_secret_enc.eq(Some(sealed_secret)),
            users::totp_dek.eq(Some(wrapped.bytes)),
            users::totp_key_version.eq(Some(wrapped.version)),
            users::totp_last_step.eq(None::<i64>),
            users::updated_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)?;
    Ok(totp_uri)
}
