//! Who is told what. Recipients are staff accounts of the case's organization (never an outside address),
//! resolved when the event happens and written as one outbox row per recipient, so a retry reaches only the
//! recipient whose delivery failed.
//!
//! | topic | told by default | configurable |
//! |---|---|---|
//! | `case_critical` (a new or newly critical case) | on-duty caseworkers, and every supervisor | yes: add staff |
//! | `case_child` (a child case) | the child-protection focal points: child-protection-trained supervisors and caseworkers | yes: add staff |
//! | `sla_breach` (a critical case not acknowledged by its deadline) | every supervisor | yes: add staff |
//! | `case_assigned` | the assignee only | no |
//!
//! Configured recipients (`komek notify recipients add`, or the API) are added to the default set for their
//! organization. If a set is still empty (no supervisor, nobody trained), every supervisor and admin of the
//! organization is told instead; if there is nobody at all, `notify_case` writes one row without a
//! recipient, which the worker turns into a dead-letter alert — an event is never silently dropped. Disabled accounts and shelter staff
//! are never recipients.

use chrono::Utc;
use diesel::prelude::*;

use crate::accounts::is_unique_violation;
use crate::db::AnyConnection;
use crate::db::schema::{notification_recipients, users};

/// A notification topic that can be configured per organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    CaseCritical,
    CaseChild,
    SlaBreach,
}

impl Topic {
    /// Every configurable topic.
    pub const ALL: [Topic; 3] = [Topic::CaseCritical, Topic::CaseChild, Topic::SlaBreach];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::CaseCritical => "case_critical",
            Topic::CaseChild => "case_child",
            Topic::SlaBreach => "sla_breach",
        }
    }
}

impl std::str::FromStr for Topic {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a topic (case_critical, case_child or sla_breach)"))
    }
}

/// A configured recipient.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Configured {
    pub topic: String,
    pub user_id: String,
}

/// Errors of recipient configuration.
#[derive(Debug, thiserror::Error)]
pub enum RecipientError {
    /// The user is not an active staff member of this organization who may receive notifications.
    #[error("no active staff account with that id or address in this organization")]
    UnknownUser,
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl RecipientError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            RecipientError::UnknownUser => "unknown_recipient",
            RecipientError::Query(_) => "database_error",
        }
    }
}

/// Active staff of an organization (not disabled, not shelter staff).
macro_rules! active_staff {
    ($organization_id:expr) => {
        users::table
            .filter(users::organization_id.eq($organization_id))
            .filter(users::disabled_at.is_null())
            .filter(users::role.ne("shelter_staff"))
    };
}

/// The recipients (user ids) of `topic` in an organization, in a stable order, without duplicates.
pub fn resolve(conn: &mut AnyConnection, organization_id: &str, topic: Topic) -> QueryResult<Vec<String>> {
    let mut ids: Vec<String> = match topic {
        Topic::CaseCritical => active_staff!(organization_id)
            .filter(
                users::role
                    .eq("supervisor")
                    .or(users::role.eq("caseworker").and(users::on_duty.eq(true))),
            )
            .select(users::id)
            .load(conn)?,
        Topic::CaseChild => active_staff!(organization_id)
            .filter(users::role.eq_any(["supervisor", "caseworker"]))
            .filter(users::child_protection_trained.eq(true))
            .select(users::id)
            .load(conn)?,
        Topic::SlaBreach => active_staff!(organization_id)
            .filter(users::role.eq("supervisor"))
            .select(users::id)
            .load(conn)?,
    };
    let configured: Vec<String> = notification_recipients::table
        .inner_join(users::table)
        .filter(notification_recipients::organization_id.eq(organization_id))
        .filter(notification_recipients::topic.eq(topic.as_str()))
        .filter(users::organization_id.eq(organization_id))
        .filter(users::disabled_at.is_null())
        .filter(users::role.ne("shelter_staff"))
        .select(users::id)
        .load(conn)?;
    ids.extend(configured);
    if ids.is_empty() {
        ids = active_staff!(organization_id)
            .filter(users::role.eq_any(["supervisor", "admin"]))
            .select(users::id)
            .load(conn)?;
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Finds an active staff account of the organization by id or email address.
pub fn find_staff(
    conn: &mut AnyConnection,
    organization_id: &str,
    who: &str,
) -> Result<String, RecipientError> {
    active_staff!(organization_id)
        .filter(
            users::id
                .eq(who.to_owned())
                .or(users::email.eq(who.to_ascii_lowercase())),
        )
        .select(users::id)
        .first(conn)
        .optional()?
        .ok_or(RecipientError::UnknownUser)
}

/// Adds a configured recipient; adding one twice is not an error. Returns true when it was new.
pub fn add(
    conn: &mut AnyConnection,
    organization_id: &str,
    topic: Topic,
    user_id: &str,
) -> Result<bool, RecipientError> {
    find_staff(conn, organization_id, user_id)?;
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(notification_recipients::table)
            .values((
                notification_recipients::id.eq(uuid::Uuid::now_v7().to_string()),
                notification_recipients::organization_id.eq(organization_id),
                notification_recipients::topic.eq(topic.as_str()),
                notification_recipients::user_id.eq(user_id),
                notification_recipients::created_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes a configured recipient. Returns true when there was one.
pub fn remove(
    conn: &mut AnyConnection,
    organization_id: &str,
    topic: Topic,
    user_id: &str,
) -> Result<bool, RecipientError> {
    let n = diesel::delete(
        notification_recipients::table
            .filter(notification_recipients::organization_id.eq(organization_id))
            .filter(notification_recipients::topic.eq(topic.as_str()))
            .filter(notification_recipients::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(n > 0)
}

/// The configured recipients of an organization.
pub fn list(conn: &mut AnyConnection, organization_id: &str) -> Result<Vec<Configured>, RecipientError> {
    let rows: Vec<(String, String)> = notification_recipients::table
        .filter(notification_recipients::organization_id.eq(organization_id))
        .order((notification_recipients::topic, notification_recipients::user_id))
        .select((notification_recipients::topic, notification_recipients::user_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(topic, user_id)| Configured { topic, user_id })
        .collect())
}
