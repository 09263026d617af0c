//! Gauges read from the database when `/metrics` is scraped: what is waiting, what failed, what is
//! overdue. Counts only, never a row's content. If the database cannot be read, `komek_database_up` is 0
//! and the other gauges keep their last values.

use diesel::prelude::*;

use crate::db::schema::{calls, cases, outbox, reports};
use crate::db::{Db, DbError};

pub const DATABASE_UP: &str = "komek_database_up";
pub const REPORTS_PENDING: &str = "komek_reports_pending";
pub const REPORTS_PENDING_OLDEST_AGE: &str = "komek_reports_pending_oldest_age_seconds";
pub const OUTBOX_PENDING: &str = "komek_outbox_pending";
pub const OUTBOX_DEAD: &str = "komek_outbox_dead_letters";
pub const SLA_BREACHES: &str = "komek_sla_breaches";
pub const SLA_OVERDUE: &str = "komek_cases_sla_overdue";
pub const IVR_CALLS: &str = "komek_ivr_calls_in_progress";
pub const POOL_OPEN: &str = "komek_db_pool_connections";
pub const POOL_IDLE: &str = "komek_db_pool_idle_connections";
pub const POOL_MAX: &str = "komek_db_pool_max_connections";

/// Help texts of the gauges.
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        DATABASE_UP,
        "1 when the last scrape could read the database, else 0",
    ),
    (
        REPORTS_PENDING,
        "Reports stored and acknowledged but not yet processed",
    ),
    (
        REPORTS_PENDING_OLDEST_AGE,
        "Age in seconds of the oldest report waiting to be processed (0 when none waits)",
    ),
    (OUTBOX_PENDING, "Notifications (emails, SMS) waiting to be sent"),
    (
        OUTBOX_DEAD,
        "Notifications that failed for good (dead letters), shown to supervisors",
    ),
    (
        SLA_BREACHES,
        "Critical cases that ever missed their acknowledgement deadline",
    ),
    (
        SLA_OVERDUE,
        "Open critical cases past their acknowledgement deadline and not yet acknowledged",
    ),
    (IVR_CALLS, "Phone calls in progress"),
    (POOL_OPEN, "Database connections open in this instance's pool"),
    (POOL_IDLE, "Idle database connections in this instance's pool"),
    (
        POOL_MAX,
        "Most database connections this instance's pool may open",
    ),
];

/// The database-wide numbers.
struct Counts {
    reports_pending: i64,
    oldest_pending: Option<chrono::NaiveDateTime>,
    outbox_pending: i64,
    outbox_dead: i64,
    sla_breaches: i64,
    sla_overdue: i64,
    ivr_calls: i64,
}

fn count(conn: &mut crate::db::AnyConnection) -> Result<Counts, DbError> {
    let now = chrono::Utc::now().naive_utc();
    let reports_pending = reports::table
        .filter(reports::triage_status.eq("pending"))
        .count()
        .get_result(conn)?;
    let oldest_pending = reports::table
        .filter(reports::triage_status.eq("pending"))
        .select(diesel::dsl::min(reports::received_at))
        .first(conn)?;
    let outbox_pending = outbox::table
        .filter(outbox::status.eq("pending"))
        .count()
        .get_result(conn)?;
    let outbox_dead = outbox::table
        .filter(outbox::status.eq("dead"))
        .count()
        .get_result(conn)?;
    let sla_breaches = cases::table
        .filter(cases::sla_notified_at.is_not_null())
        .count()
        .get_result(conn)?;
    let sla_overdue = cases::table
        .filter(cases::sla_due_at.lt(now))
        .filter(cases::acknowledged_at.is_null())
        .filter(cases::closed_at.is_null())
        .count()
        .get_result(conn)?;
    let ivr_calls = calls::table
        .filter(calls::ended_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(Counts {
        reports_pending,
        oldest_pending,
        outbox_pending,
        outbox_dead,
        sla_breaches,
        sla_overdue,
        ivr_calls,
    })
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn gauge(name: &'static str, value: i64) {
    metrics::gauge!(name).set(value as f64);
}

/// Reads the database and sets the gauges.
pub async fn refresh(db: &Db) {
    let pool = db.pool_use();
    metrics::gauge!(POOL_OPEN).set(f64::from(pool.open));
    metrics::gauge!(POOL_IDLE).set(f64::from(pool.idle));
    metrics::gauge!(POOL_MAX).set(f64::from(pool.max));
    match db.run(count).await {
        Ok(counts) => {
            metrics::gauge!(DATABASE_UP).set(1.0);
            gauge(REPORTS_PENDING, counts.reports_pending);
            let age = counts
                .oldest_pending
                .map(|at| (chrono::Utc::now().naive_utc() - at).num_milliseconds().max(0))
                .unwrap_or(0);
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(REPORTS_PENDING_OLDEST_AGE).set(age as f64 / 1000.0);
            gauge(OUTBOX_PENDING, counts.outbox_pending);
            gauge(OUTBOX_DEAD, counts.outbox_dead);
            gauge(SLA_BREACHES, counts.sla_breaches);
            gauge(SLA_OVERDUE, counts.sla_overdue);
            gauge(IVR_CALLS, counts.ivr_calls);
        }
        Err(err) => {
            metrics::gauge!(DATABASE_UP).set(0.0);
            tracing::warn!(code = err.code(), "metrics could not read the database");
        }
    }
}
