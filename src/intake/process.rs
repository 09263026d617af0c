//! After a report is committed: reassemble concatenated SMS parts, collapse floods, triage, then open a
//! case or thread the report into the contact's open case — all in one write transaction per report, and
//! only if the report is still pending, so running it twice (a retry, a second instance, the sweeper after
//! a crash) changes nothing the second time.

use std::sync::Arc;

use chrono::{Duration, Utc};

use crate::cases::{self, CaseError, Opening};
use crate::crypto::Crypto;
use crate::db::AnyConnection;
use crate::db::lock::{Locked, lock_row};
use crate::reports::{self, Processed};
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
    /// Join this case (an operator's entry for a given case) instead of the contact's open case.
    pub join_case: Option<String>,
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

/// Errors while processing: those of the case actions it runs.
pub type ProcessError = CaseError;

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
    // Processing the same report twice at once (the sweeper and the request that stored it, two
    // instances): the second waits here and then finds it done.
    lock_row(conn, Locked::Reports, report_id)?;
    let Some(report) = reports::load(conn, report_id)? else {
        return Ok(Outcome::AlreadyDone);
    };
    if report.triage_status != "pending" {
        return Ok(Outcome::AlreadyDone);
    }
    // Two reports of one sender processed at once (two instances, the sweeper and a request, two parts of
    // one SMS) must not both find no open case and open two: the second waits for the first, then sees
    // its case (or finds its own report already processed with the first's group).
    if let Some(contact_id) = &report.contact_id {
        lock_row(conn, Locked::Contacts, contact_id)?;
        if reports::load(conn, report_id)?.is_none_or(|r| r.triage_status != "pending") {
            return Ok(Outcome::AlreadyDone);
        }
    }
    let now = Utc::now().naive_utc();

    // A concatenated SMS is triaged once, as a whole, by its first part.
    let mut group = vec![report.clone()];
    if let (Some(key), Some(total)) = (&report.part_group, report.part_total) {
        group = reports::pending_parts(conn, key)?;
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
        let recent = reports::count_from_contact(conn, contact_id, now - ctx.flood_window)?;
        if recent > ctx.flood_threshold
            && let Some(open) = cases::open_case_of_contact(conn, &lead.organization_id, contact_id)?
        {
            for part in &group {
                reports::mark(
                    conn,
                    &part.id,
                    Some(&open.id),
                    Processed::Collapsed { into: None },
                )?;
            }
            cases::incoming::note_flood(conn, &open, &lead.id, ctx.flood_window, ctx.flood_threshold)?;
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
        text.push_str(reports::open_body(&ctx.crypto, part)?.expose());
    }
    let triage = ctx.engine.assess(&TriageInput {
        text: &text,
        channel: channel_kind(&lead.source),
        // The IVR menu path of a call, or the web form's answers.
        ivr_path: lead.ivr_path.as_deref().or(extras.triage_hints.as_deref()),
    });
    // The IVR's silent path: nobody may call back by voice.
    let silent = extras.silent || triage.rules.iter().any(|r| r.id == "ivr.silent");
    let triage_json = serde_json::to_string(&triage).ok();

    let open_case = match (&extras.join_case, &lead.contact_id) {
        (Some(case_id), _) => cases::load(conn, case_id)?,
        (None, Some(contact_id)) => cases::open_case_of_contact(conn, &lead.organization_id, contact_id)?,
        (None, None) => None,
    };
    let outcome = match open_case {
        Some(case) => {
            cases::incoming::join(
                conn,
                &case,
                &lead.id,
                &lead.source,
                &triage,
                silent,
                ctx.critical_ack_deadline,
            )?;
            Outcome::Linked { case_id: case.id }
        }
        None => {
            let opening = Opening {
                organization_id: &lead.organization_id,
                contact_id: lead.contact_id.as_deref(),
                triage: &triage,
                silent,
                follow_up_code_hash: extras.follow_up_code_hash.clone(),
                critical_ack_deadline: ctx.critical_ack_deadline,
                report_id: &lead.id,
                source: &lead.source,
            };
            let (case_id, reference) = cases::incoming::open(conn, &ctx.crypto, &opening)?;
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
    reports::mark(
        conn,
        &lead.id,
        case_id,
        Processed::Done {
            triage: triage_json.as_deref(),
        },
    )?;
    for part in group.iter().skip(1) {
        reports::mark(
            conn,
            &part.id,
            case_id,
            Processed::Collapsed { into: Some(&lead.id) },
        )?;
    }
    Ok(outcome)
}
