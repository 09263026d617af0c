//! After a report is committed: reassemble concatenated SMS parts, collapse floods, triage, then open a
//! case or thread the report into the contact's open case — all in one write transaction per report, and
//! only if the report is still pending, so running it twice (a retry, a second instance, the sweeper after
//! a crash) changes nothing the second time.

use std::sync::Arc;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde_json::json;

use super::{ReportRow, body_place};
use crate::cases::{self, CaseError, Opening};
use crate::crypto::{Crypto, CryptoError};
use crate::db::AnyConnection;
use crate::db::schema::{case_events, reports};
use crate::triage::{ChannelKind, Engine, TriageInput};

/// What the processor needs besides a connection.
#[derive(Clone, Debug)]
pub struct ProcessContext {
    pub crypto: Crypto,
    pub engine: Arc<Engine>,
    /// How long a critical case may wait for an acknowledgement.
    pub critical_ack_deadline: Duration,
    /// More than `flood_threshold` reports from one contact within `flood_window` are collapsed.
    pub flood_threshold: i64,
    pub flood_window: Duration,
    /// How long to wait for the missing parts of a concatenated SMS before triaging what arrived.
    pub parts_wait: Duration,
}

/// Case details that come with the report rather than from triage.
#[derive(Debug, Clone, Default)]
pub struct CaseExtras {
    pub follow_up_code_hash: Option<String>,
    pub silent: bool,
    /// Structured answers as triage hints (`lang:ru>child>shelter`, the IVR menu path format).
    pub triage_hints: Option<String>,
}

/// What processing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Someone processed it already.
    AlreadyDone,
    /// Parts of a concatenated SMS are still missing; try later.
    Waiting,
    /// Part of a flood from one sender: stored and attached, not triaged.
    Collapsed { case_id: Option<String> },
    /// Joined the contact's open case.
    Linked { case_id: String },
    /// Opened a new case.
    Opened { case_id: String, reference: String },
}

/// Errors while processing.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl From<CaseError> for ProcessError {
    fn from(err: CaseError) -> Self {
        match err {
            CaseError::Crypto(e) => ProcessError::Crypto(e),
            CaseError::Query(e) => ProcessError::Query(e),
        }
    }
}

fn load(conn: &mut AnyConnection, report_id: &str) -> QueryResult<Option<ReportRow>> {
    reports::table
        .find(report_id)
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
}

fn body_text(crypto: &Crypto, report: &ReportRow) -> Result<String, CryptoError> {
    let Some(sealed) = &report.body_enc else {
        return Ok(String::new());
    };
    let key = crypto.unwrap_record_key(&report.dek_wrapped, report.key_version)?;
    Ok(key.open_string(body_place(&report.id), sealed)?.expose().clone())
}

fn channel_kind(source: &str) -> ChannelKind {
    match source {
        "voice" => ChannelKind::Voice,
        "web" => ChannelKind::Web,
        "operator" => ChannelKind::Operator,
        _ => ChannelKind::Sms,
    }
}

/// Processes one report (call inside a write transaction).
pub fn process_report(
    conn: &mut AnyConnection,
    ctx: &ProcessContext,
    report_id: &str,
    extras: &CaseExtras,
) -> Result<Outcome, ProcessError> {
    let Some(report) = load(conn, report_id)? else {
        return Ok(Outcome::AlreadyDone);
    };
    if report.triage_status != "pending" {
        return Ok(Outcome::AlreadyDone);
    }
    let now = Utc::now().naive_utc();

    // A concatenated SMS is triaged once, as a whole, by its first part.
    let mut group = vec![report.clone()];
    if let (Some(key), Some(total)) = (&report.part_group, report.part_total) {
        group = reports::table
            .filter(reports::part_group.eq(key))
            .filter(reports::triage_status.eq("pending"))
            .order((reports::part_index.asc(), reports::created_at.asc()))
            .select(ReportRow::as_select())
            .load(conn)?;
        let mut indexes: Vec<i32> = group.iter().filter_map(|r| r.part_index).collect();
        indexes.dedup();
        let oldest = group.iter().map(|r| r.created_at).min().unwrap_or(now);
        if (indexes.len() as i64) < i64::from(total) && now - oldest < ctx.parts_wait {
            return Ok(Outcome::Waiting);
        }
    }
    let Some(lead) = group.first().cloned() else {
        return Ok(Outcome::AlreadyDone);
    };

    // A flood from one sender is stored and attached to their open case, not triaged message by message.
    if let Some(contact_id) = &lead.contact_id {
        let recent: i64 = reports::table
            .filter(reports::contact_id.eq(contact_id))
            .filter(reports::created_at.gt(now - ctx.flood_window))
            .count()
            .get_result(conn)?;
        if recent > ctx.flood_threshold
            && let Some(open) = cases::open_case_of_contact(conn, &lead.organization_id, contact_id)?
        {
            for part in &group {
                mark(conn, &part.id, "collapsed", Some(&open.id), None, None)?;
            }
            let noted: i64 = case_events::table
                .filter(case_events::case_id.eq(&open.id))
                .filter(case_events::kind.eq("flood_collapsed"))
                .filter(case_events::created_at.gt(now - ctx.flood_window))
                .count()
                .get_result(conn)?;
            if noted == 0 {
                let note = json!({ "window_minutes": ctx.flood_window.num_minutes(), "threshold": ctx.flood_threshold });
                let case = (open.id.as_str(), open.organization_id.as_str());
                cases::add_event(conn, case, "flood_collapsed", None, Some(&lead.id), Some(note))?;
            }
            return Ok(Outcome::Collapsed {
                case_id: Some(open.id),
            });
        }
    }

    let mut text = String::new();
    for part in &group {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&body_text(&ctx.crypto, part)?);
    }
    let triage = ctx.engine.assess(&TriageInput {
        text: &text,
        channel: channel_kind(&lead.source),
        ivr_path: extras.triage_hints.as_deref(),
    });
    let triage_json = serde_json::to_string(&triage).ok();

    let open_case = match &lead.contact_id {
        Some(contact_id) => cases::open_case_of_contact(conn, &lead.organization_id, contact_id)?,
        None => None,
    };
    let outcome = match open_case {
        Some(case) => {
            cases::add_event(
                conn,
                (&case.id, &case.organization_id),
                "report_linked",
                None,
                Some(&lead.id),
                Some(json!({ "source": lead.source, "triage": triage })),
            )?;
            cases::escalate(conn, &case, &triage, &lead.id, ctx.critical_ack_deadline)?;
            Outcome::Linked { case_id: case.id }
        }
        None => {
            let opening = Opening {
                organization_id: &lead.organization_id,
                contact_id: lead.contact_id.as_deref(),
                triage: &triage,
                silent: extras.silent,
                follow_up_code_hash: extras.follow_up_code_hash.clone(),
                critical_ack_deadline: ctx.critical_ack_deadline,
            };
            let (case_id, reference) = cases::open(conn, &ctx.crypto, &opening)?;
            cases::add_event(
                conn,
                (&case_id, &lead.organization_id),
                "triage",
                None,
                Some(&lead.id),
                Some(json!({ "source": lead.source, "triage": triage })),
            )?;
            Outcome::Opened {
                case_id,
                reference: reference.to_string(),
            }
        }
    };
    let case_id = match &outcome {
        Outcome::Linked { case_id } | Outcome::Opened { case_id, .. } => Some(case_id.as_str()),
        _ => None,
    };
    mark(conn, &lead.id, "done", case_id, triage_json.as_deref(), None)?;
    for part in group.iter().skip(1) {
        mark(conn, &part.id, "collapsed", case_id, None, Some(&lead.id))?;
    }
    Ok(outcome)
}

fn mark(
    conn: &mut AnyConnection,
    report_id: &str,
    status: &str,
    case_id: Option<&str>,
    triage_json: Option<&str>,
    collapsed_into: Option<&str>,
) -> QueryResult<()> {
    diesel::update(
        reports::table
            .find(report_id)
            .filter(reports::triage_status.eq("pending")),
    )
    .set((
        reports::triage_status.eq(status),
        reports::case_id.eq(case_id),
        reports::triage.eq(triage_json),
        reports::collapsed_into.eq(collapsed_into),
    ))
    .execute(conn)?;
    Ok(())
}
