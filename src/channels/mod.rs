//! Channels: a number or endpoint at one provider, owned by one organization. A channel's id is a random
//! UUID that appears in its webhook URLs (for providers that sign nothing it is part of the credential);
//! its provider secret is stored encrypted under the channel's own data key.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use komek_gateways::{ChannelCredentials, Provider};

use crate::crypto::{Crypto, CryptoError, FieldContext};
use crate::db::AnyConnection;
use crate::db::schema::channels;
use crate::domain::PhoneNumber;
use crate::sensitive::Sensitive;

/// The languages a channel (and the IVR, the web form, emails) can speak.
pub const LANGUAGES: [&str; 6] = ["ru", "kk", "ky", "tg", "uz", "en"];

/// A channel row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = channels)]
pub struct Channel {
    pub id: String,
    pub organization_id: String,
    pub provider: String,
    pub number: Option<String>,
    pub language: String,
    pub secret_enc: Option<Vec<u8>>,
    pub secret_dek: Option<Vec<u8>>,
    pub key_version: Option<i32>,
    pub enabled: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Errors of channel administration and lookup.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    Invalid(String),
    #[error("the secret is not valid for {provider}: {reason}")]
    BadSecret { provider: &'static str, reason: String },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

impl From<diesel::result::Error> for ChannelError {
    fn from(err: diesel::result::Error) -> Self {
        ChannelError::Db(err.into())
    }
}

/// What `komek channel add` asks for.
#[derive(Debug)]
pub struct NewChannel {
    pub organization_id: String,
    pub provider: Provider,
    pub number: Option<PhoneNumber>,
    pub secret: Option<Sensitive<String>>,
    pub language: String,
}

fn secret_place(channel_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "channels",
        column: "secret_enc",
        row_id: channel_id,
    }
}

fn bad_secret(provider: Provider, err: &komek_gateways::CredentialsError) -> ChannelError {
    let format = ChannelCredentials::format(provider);
    let mut reason = err.to_string();
    if !reason.contains(format) {
        reason = format!("{reason}; expected: {format}");
    }
    ChannelError::BadSecret {
        provider: provider.slug(),
        reason,
    }
}

/// Checks a secret against the provider's format without storing it.
pub fn check_secret(provider: Provider, secret: Option<&Sensitive<String>>) -> Result<(), ChannelError> {
    let text = secret.map(|s| s.expose().as_str()).unwrap_or("");
    ChannelCredentials::parse(provider, text)
        .map(|_| ())
        .map_err(|e| bad_secret(provider, &e))
}

/// Creates a channel with a fresh random id.
pub fn create(conn: &mut AnyConnection, crypto: &Crypto, new: &NewChannel) -> Result<Channel, ChannelError> {
    if !LANGUAGES.contains(&new.language.as_str()) {
        return Err(ChannelError::Invalid(format!(
            "unknown language `{}`: use one of {}",
            new.language,
            LANGUAGES.join(", ")
        )));
    }
    check_secret(new.provider, new.secret.as_ref())?;
    let id = uuid::Uuid::new_v4().to_string();
    let (secret_enc, secret_dek, key_version) = match &new.secret {
        Some(secret) => {
            let (key, wrapped) = crypto.new_record_key()?;
            (
                Some(key.seal_str(secret_place(&id), secret.expose())?),
                Some(wrapped.bytes),
                Some(wrapped.version),
            )
        }
        None => (None, None, None),
    };
    let now = Utc::now().naive_utc();
    let row = Channel {
        id,
        organization_id: new.organization_id.clone(),
        provider: new.provider.slug().to_owned(),
        number: new.number.as_ref().map(|n| n.expose_e164().to_owned()),
        language: new.language.clone(),
        secret_enc,
        secret_dek,
        key_version,
        enabled: true,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(channels::table)
        .values((
            channels::id.eq(&row.id),
            channels::organization_id.eq(&row.organization_id),
            channels::provider.eq(&row.provider),
            channels::number.eq(&row.number),
            channels::language.eq(&row.language),
            channels::secret_enc.eq(&row.secret_enc),
            channels::secret_dek.eq(&row.secret_dek),
            channels::key_version.eq(row.key_version),
            channels::enabled.eq(row.enabled),
            channels::created_at.eq(row.created_at),
            channels::updated_at.eq(row.updated_at),
        ))
        .execute(conn)?;
    Ok(row)
}

/// Every channel, or those of one organization.
pub fn list(conn: &mut AnyConnection, organization_id: Option<&str>) -> Result<Vec<Channel>, ChannelError> {
    let mut query = channels::table
        .select(Channel::as_select())
        .order(channels::created_at.asc())
        .into_boxed();
    if let Some(org) = organization_id {
        query = query.filter(channels::organization_id.eq(org.to_owned()));
    }
    Ok(query.load(conn)?)
}

/// An enabled channel of `provider` with this id, if any.
pub fn find_enabled(
    conn: &mut AnyConnection,
    channel_id: &str,
    provider: Provider,
) -> QueryResult<Option<Channel>> {
    channels::table
        .filter(channels::id.eq(channel_id))
        .filter(channels::provider.eq(provider.slug()))
        .filter(channels::enabled.eq(true))
        .select(Channel::as_select())
        .first(conn)
        .optional()
}

impl Channel {
    /// The provider, if the stored name is still known.
    pub fn provider(&self) -> Option<Provider> {
        self.provider.parse().ok()
    }

    /// Decrypts and parses the channel's credentials.
    pub fn credentials(&self, crypto: &Crypto) -> Result<ChannelCredentials, ChannelError> {
        let provider = self
            .provider()
            .ok_or_else(|| ChannelError::Invalid("unknown provider".to_owned()))?;
        let secret = match (&self.secret_enc, &self.secret_dek, self.key_version) {
            (Some(sealed), Some(dek), Some(version)) => {
                let key = crypto.unwrap_record_key(dek, version)?;
                key.open_string(secret_place(&self.id), sealed)?
            }
            _ => Sensitive::new(String::new()),
        };
        ChannelCredentials::parse(provider, secret.expose()).map_err(|e| bad_secret(provider, &e))
    }
}

/// The webhook URLs to paste into the provider's console, by action.
pub fn webhook_urls(
    public_url: &url::Url,
    provider: Provider,
    channel_id: &str,
) -> BTreeMap<&'static str, String> {
    let base = public_url.as_str().trim_end_matches('/');
    provider
        .webhook_actions()
        .iter()
        .map(|action| {
            (
                *action,
                format!("{base}/webhooks/{}/{channel_id}/{action}", provider.slug()),
            )
        })
        .collect()
}
