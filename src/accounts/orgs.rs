//! Organizations (tenants): hotline NGOs and shelter NGOs.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{AccountError, is_unique_violation};
use crate::db::AnyConnection;
use crate::db::schema::organizations;
use crate::domain::{CountryCode, OrgSlug};

/// An organization row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub country: Option<String>,
    pub kind: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What is needed to create an organization.
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub slug: OrgSlug,
    pub name: String,
    pub country: Option<CountryCode>,
}

impl NewOrganization {
    /// Checks the fields that have no type of their own.
    pub fn new(slug: OrgSlug, name: &str, country: Option<CountryCode>) -> Result<Self, AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AccountError::Invalid(
                "the organization name must have 1 to 200 characters".into(),
            ));
        }
        Ok(NewOrganization {
            slug,
            name: name.to_owned(),
            country,
        })
    }
}

/// Inserts an organization; the slug must be free.
pub fn create(conn: &mut AnyConnection, new: &NewOrganization) -> Result<Organization, AccountError> {
    let now = Utc::now().naive_utc();
    let row = Organization {
        id: uuid::Uuid::now_v7().to_string(),
        slug: new.slug.as_str().to_owned(),
        name: new.name.clone(),
        country: new.country.map(|c| c.to_string()),
        kind: "hotline".to_owned(),
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(organizations::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                AccountError::OrgExists(row.slug.clone())
            } else {
                e.into()
            }
        })?;
    Ok(row)
}

/// Finds an organization by slug.
pub fn find_by_slug(conn: &mut AnyConnection, slug: &OrgSlug) -> Result<Organization, AccountError> {
    organizations::table
        .filter(organizations::slug.eq(slug.as_str()))
        .select(Organization::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| AccountError::NoSuchOrg(slug.to_string()))
}

/// How many organizations exist (zero means a first start).
pub fn count(conn: &mut AnyConnection) -> Result<i64, AccountError> {
    Ok(organizations::table.count().get_result(conn)?)
}

/// The organization's country, for reading national phone formats (`None` when it has none, or an
/// unreadable one).
pub fn country(conn: &mut AnyConnection, organization_id: &str) -> QueryResult<Option<CountryCode>> {
    let country: Option<String> = organizations::table
        .find(organization_id)
        .select(organizations::country)
        .first(conn)?;
    Ok(country.and_then(|c| CountryCode::parse(&c).ok()))
}
