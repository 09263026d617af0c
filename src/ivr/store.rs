//! Calls in the database: the `calls` row that holds each call's menu state (so any instance answers the
//! next step), applying a webhook's call events to it in one write transaction, and turning the call into
//! exactly one voice report — when the menu finishes or when the caller hangs up, whichever comes first.
//!
//! Idempotency: every action URL carries the `seq` of the state that produced it. An event whose `seq`
//! is not the current one is a provider's repeat: it changes nothing and is answered by rendering the
//! current state again. Recordings attach idempotently whenever they arrive (Vonage posts them after the
//! call moved on, sometimes after the hang-up); the report's sealed details are updated with them.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use komek_gateways::{CallEvent, CallEventKind, DialOutcome, HangupCause, Provider, Recording};
use serde::{Deserialize, Serialize};

use super::IvrError;
use super::menu::{self, CallState, Env, Input, RosterKind, Step};
use super::roster;
use crate::accounts::is_unique_violation;
use crate::channels::Channel;
use crate::contacts;
use crate::crypto::{Crypto, FieldContext, RecordKey};
use crate::db::AnyConnection;
use crate::db::schema::{call_recordings, calls};
use crate::domain::PhoneNumber;
use crate::reports::{self, NewReport, Source};

/// A `calls` row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = calls)]
pub struct CallRow {
    pub id: String,
    pub organization_id: String,
    pub channel_id: String,
    pub provider: String,
    pub provider_call_id: String,
    pub step: String,
    pub seq: i32,
    pub language: String,
    pub menu_path: String,
    pub menu_plays: i32,
    pub no_input: i32,
    pub roster_kind: Option<String>,
    pub dial_index: i32,
    pub dial_outcome: Option<String>,
    pub contact_id: Option<String>,
    pub details_enc: Option<Vec<u8>>,
    pub dek_wrapped: Vec<u8>,
    pub key_version: i32,
    pub report_id: Option<String>,
    pub hangup_cause: Option<String>,
    pub duration_secs: Option<i32>,
    pub started_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

impl CallRow {
    /// The menu state held in the row.
    pub fn state(&self) -> CallState {
        CallState {
            step: Step::parse(&self.step),
            seq: self.seq,
            language: self.language.clone(),
            path: self
                .menu_path
                .split('>')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            menu_plays: self.menu_plays,
            no_input: self.no_input,
            roster_kind: self.roster_kind.as_deref().and_then(RosterKind::parse),
            dial_index: self.dial_index,
            dial_outcome: self.dial_outcome.clone(),
        }
    }
}

/// The sealed part of a call: everything a caller typed or left.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct CallDetails {
    /// Every key sequence entered, in order.
    digits: Vec<String>,
    recording: Option<RecordingInfo>,
    /// The number called (the channel's), as the provider gave it.
    to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct RecordingInfo {
    /// The provider's address of the audio (Twilio, Vonage, Africa's Talking).
    url: Option<String>,
    /// `call_recordings` id of audio uploaded with the request (FreeSWITCH).
    stored_id: Option<String>,
    duration_secs: Option<u32>,
    recording_id: Option<String>,
    content_type: Option<String>,
    bytes: Option<u64>,
}

fn details_of(call_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "calls",
        column: "details_enc",
        row_id: call_id,
    }
}

fn audio_place(recording_id: &str) -> FieldContext<'_> {
    FieldContext {
        table: "call_recordings",
        column: "audio_enc",
        row_id: recording_id,
    }
}

fn open_details(key: &RecordKey, call: &CallRow) -> Result<CallDetails, IvrError> {
    match &call.details_enc {
        Some(sealed) => {
            let bytes = key.open(details_of(&call.id), sealed)?;
            Ok(serde_json::from_slice(bytes.expose()).unwrap_or_default())
        }
        None => Ok(CallDetails::default()),
    }
}

fn seal_details(key: &RecordKey, call_id: &str, details: &CallDetails) -> Result<Vec<u8>, IvrError> {
    let json = serde_json::to_vec(details).map_err(|_| IvrError::Encoding)?;
    Ok(key.seal(details_of(call_id), &json)?)
}

/// What handling a webhook's events did, for the answer.
#[derive(Debug)]
pub struct Handled {
    /// The call's state after the events (render it), or `None` when the events concerned no known call.
    pub state: Option<CallState>,
    /// Numbers of the roster being dialled, when the state dials.
    pub roster: Vec<String>,
    /// The call ended (a hang-up arrived): answer with an acknowledgement, not a document.
    pub ended: bool,
    /// Only progress notices arrived: acknowledge.
    pub progress_only: bool,
    /// A report this request created: process it after the commit.
    pub new_report: Option<String>,
    /// Komek's id of the call (for the action URLs).
    pub call_ref: Option<String>,
}

/// What the store needs to know about the request.
pub struct Request<'a> {
    pub channel: &'a Channel,
    pub provider: Provider,
    /// `seq` from the action URL (`ivr` requests); `None` at `voice` and `voice-status`.
    pub seq: Option<i32>,
    /// Komek's own call id from the action URL: a dialled leg's events carry the leg's provider id
    /// (Vonage `connect`), not the caller's.
    pub call_ref: Option<String>,
}

fn load(conn: &mut AnyConnection, channel_id: &str, call_id: &str) -> QueryResult<Option<CallRow>> {
    calls::table
        .filter(calls::channel_id.eq(channel_id))
        .filter(calls::provider_call_id.eq(call_id))
        .select(CallRow::as_select())
        .first(conn)
        .optional()
}

/// On PostgreSQL, takes the call's row lock first, so that two callbacks of one call (a recording and a
/// hang-up arriving together) are applied one after the other and the report is written once. SQLite
/// writers are already serialised by `BEGIN IMMEDIATE`.
fn lock_call(
    conn: &mut AnyConnection,
    channel_id: &str,
    by_id: Option<&str>,
    call_id: &str,
) -> QueryResult<()> {
    use diesel::sql_types::Text;
    if let AnyConnection::Postgresql(pg) = conn {
        match by_id {
            Some(id) => {
                diesel::sql_query("SELECT id FROM calls WHERE channel_id = $1 AND id = $2 FOR UPDATE")
                    .bind::<Text, _>(channel_id)
                    .bind::<Text, _>(id)
                    .execute(pg)?
            }
            None => diesel::sql_query(
                "SELECT id FROM calls WHERE channel_id = $1 AND provider_call_id = $2 FOR UPDATE",
            )
            .bind::<Text, _>(channel_id)
            .bind::<Text, _>(call_id)
            .execute(pg)?,
        };
    }
    Ok(())
}

fn create(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    req: &Request<'_>,
    call_id: &str,
) -> Result<CallRow, IvrError> {
    let id = uuid::Uuid::now_v7().to_string();
    let (_, wrapped) = crypto.new_record_key()?;
    let now = Utc::now().naive_utc();
    let state = CallState::new(&req.channel.language);
    let inserted = conn.transaction(|conn| {
        diesel::insert_into(calls::table)
            .values((
                calls::id.eq(&id),
                calls::organization_id.eq(&req.channel.organization_id),
                calls::channel_id.eq(&req.channel.id),
                calls::provider.eq(req.provider.slug()),
                calls::provider_call_id.eq(call_id),
                calls::step.eq(state.step.as_str()),
                calls::seq.eq(state.seq),
                calls::language.eq(&state.language),
                calls::menu_path.eq(""),
                calls::dek_wrapped.eq(&wrapped.bytes),
                calls::key_version.eq(wrapped.version),
                calls::started_at.eq(now),
                calls::updated_at.eq(now),
            ))
            .execute(conn)
    });
    match inserted {
        Ok(_) => {}
        // Two instances raced on the first request of a call: use the row the other one made.
        Err(e) if is_unique_violation(&e) => {}
        Err(e) => return Err(e.into()),
    }
    load(conn, &req.channel.id, call_id)?.ok_or(IvrError::Query(diesel::result::Error::NotFound))
}

fn hangup_name(cause: HangupCause) -> &'static str {
    match cause {
        HangupCause::Completed => "completed",
        HangupCause::Busy => "busy",
        HangupCause::NoAnswer => "no_answer",
        HangupCause::Failed => "failed",
        HangupCause::Canceled => "canceled",
        HangupCause::Rejected => "rejected",
        HangupCause::Other => "other",
    }
}

fn dial_name(o: DialOutcome) -> &'static str {
    match o {
        DialOutcome::Answered => "answered",
        DialOutcome::Busy => "busy",
        DialOutcome::NoAnswer => "no_answer",
        DialOutcome::Failed => "failed",
        DialOutcome::Canceled => "canceled",
    }
}

/// Reads a WAV header's length in seconds (FreeSWITCH uploads say nothing about it).
fn wav_duration(audio: &[u8]) -> Option<u32> {
    if audio.len() < 44 || !audio.starts_with(b"RIFF") || audio.get(8..12) != Some(b"WAVE") {
        return None;
    }
    let byte_rate = u32::from_le_bytes(audio.get(28..32)?.try_into().ok()?);
    if byte_rate == 0 {
        return None;
    }
    let data = u32::try_from(audio.len().saturating_sub(44)).ok()?;
    Some(data / byte_rate)
}

/// Applies one webhook's call events in the current transaction.
pub fn handle(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    req: &Request<'_>,
    events: &[CallEvent],
) -> Result<Handled, IvrError> {
    let mut handled = Handled {
        state: None,
        roster: Vec::new(),
        ended: false,
        progress_only: !events.is_empty(),
        new_report: None,
        call_ref: None,
    };
    let mut current: Option<CallRow> = None;
    for event in events {
        if !matches!(event.kind, CallEventKind::Progress { .. }) {
            handled.progress_only = false;
        }
        if current.is_none() {
            lock_call(conn, &req.channel.id, req.call_ref.as_deref(), &event.call_id)?;
        }
        let existing = match (&current, &req.call_ref) {
            (Some(row), _) => Some(row.clone()),
            (None, Some(id)) => calls::table
                .filter(calls::channel_id.eq(&req.channel.id))
                .filter(calls::id.eq(id))
                .select(CallRow::as_select())
                .first(conn)
                .optional()?,
            (None, None) => load(conn, &req.channel.id, &event.call_id)?,
        };
        let row = match (existing, &event.kind) {
            (Some(row), _) => row,
            (None, CallEventKind::Started) => create(conn, crypto, req, &event.call_id)?,
            // News about a call Komek never answered (a dialled leg, or a call that arrived while the
            // database was down and heard the fallback): nothing to keep.
            (None, _) => continue,
        };
        let row = apply_event(conn, crypto, req, row, event, &mut handled)?;
        current = Some(row);
    }
    if let Some(row) = current {
        let state = row.state();
        if state.step == Step::Dial
            && let Some(kind) = state.roster_kind
        {
            handled.roster = roster::numbers(conn, crypto, &row.organization_id, kind)?;
        }
        handled.state = Some(state);
        handled.call_ref = Some(row.id);
    }
    Ok(handled)
}

fn apply_event(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    req: &Request<'_>,
    mut row: CallRow,
    event: &CallEvent,
    handled: &mut Handled,
) -> Result<CallRow, IvrError> {
    let key = crypto.unwrap_record_key(&row.dek_wrapped, row.key_version)?;
    let mut details = open_details(&key, &row)?;
    let before_details = details.clone();
    let before = row.state();
    let mut state = before.clone();
    let current_step = req.seq == Some(row.seq);
    let mut ended = false;
    let contact_before = row.contact_id.clone();
    let ended_before = row.ended_at;

    if row.contact_id.is_none()
        && let Some(from) = &event.from
    {
        let region = crate::accounts::orgs::country(conn, &row.organization_id)?;
        if let Ok(phone) = PhoneNumber::parse(from.expose(), region) {
            row.contact_id = Some(contacts::find_or_create_by_phone(
                conn,
                crypto,
                &row.organization_id,
                &phone,
            )?);
        }
    }
    if details.to.is_none()
        && let Some(to) = &event.to
    {
        details.to = Some(to.expose().clone());
    }

    let env = if matches!(event.kind, CallEventKind::DigitsEntered { .. }) && state.step == Step::Menu {
        let general = roster::numbers(conn, crypto, &row.organization_id, RosterKind::General)?.len();
        let child = roster::numbers(conn, crypto, &row.organization_id, RosterKind::Child)?.len();
        (general, child)
    } else {
        let n = match state.roster_kind {
            Some(kind) if state.step == Step::Dial => {
                roster::numbers(conn, crypto, &row.organization_id, kind)?.len()
            }
            _ => 0,
        };
        (n, n)
    };
    let env = Env {
        default_language: &req.channel.language,
        general_roster: env.0,
        child_roster: env.1,
        dials_in_order: req.provider.dials_in_order(),
    };

    match &event.kind {
        CallEventKind::Started | CallEventKind::Progress { .. } => {}
        CallEventKind::DigitsEntered { digits, .. } if current_step => {
            details.digits.push(digits.expose().clone());
            state = menu::apply(&state, &Input::Digits(digits.expose().clone()), &env);
        }
        CallEventKind::NoInput if current_step => {
            state = menu::apply(&state, &Input::NoInput, &env);
        }
        CallEventKind::DialResult { outcome, .. } => {
            if current_step {
                state = menu::apply(&state, &Input::Dialed(*outcome), &env);
            } else if req.seq.is_none() && state.step == Step::Dial {
                // Africa's Talking reports the dial only in the call's final request.
                state.dial_outcome = Some(dial_name(*outcome).to_owned());
                state.path.push(format!("dial:{}", dial_name(*outcome)));
            }
        }
        CallEventKind::RecordingReady(recording) => {
            attach_recording(conn, crypto, &row, &mut details, recording)?;
            if current_step && matches!(state.step, Step::Record | Step::Silent) {
                state = menu::apply(&state, &Input::Recorded, &env);
            }
        }
        CallEventKind::Hangup { cause, duration_secs } => {
            ended = true;
            handled.ended = true;
            if row.ended_at.is_none() {
                row.ended_at = Some(Utc::now().naive_utc());
                row.hangup_cause = Some(hangup_name(*cause).to_owned());
                row.duration_secs = duration_secs.and_then(|d| i32::try_from(d).ok());
                if state.step != Step::Done {
                    state.path.push("hangup".into());
                }
            }
        }
        // A repeat of a step the call has moved past: answered from the current state, nothing written.
        CallEventKind::DigitsEntered { .. } | CallEventKind::NoInput => {}
    }

    let state_changed = state != before;
    let details_changed = details != before_details;
    let now = Utc::now().naive_utc();
    if details_changed {
        row.details_enc = Some(seal_details(&key, &row.id, &details)?);
    }
    if state_changed {
        row.step = state.step.as_str().to_owned();
        row.seq = state.seq;
        row.language = state.language.clone();
        row.menu_path = state.path.join(">");
        row.menu_plays = state.menu_plays;
        row.no_input = state.no_input;
        row.roster_kind = state.roster_kind.map(|k| k.as_str().to_owned());
        row.dial_index = state.dial_index;
        row.dial_outcome = state.dial_outcome.clone();
    }
    let contact_changed = row.contact_id != contact_before;
    let end_changed = row.ended_at != ended_before;
    let finish = (ended || state.step == Step::Done) && row.report_id.is_none();
    if finish {
        let report_id = write_report(conn, crypto, req, &row, &state, &details)?;
        row.report_id = Some(report_id.clone());
        handled.new_report = Some(report_id);
    } else if (details_changed || end_changed)
        && let Some(report_id) = row.report_id.clone()
    {
        // A recording (Vonage) or the hang-up that arrived after the report was written.
        update_report_details(conn, crypto, &row, &state, &details, &report_id)?;
    }
    if state_changed || details_changed || finish || contact_changed || end_changed {
        diesel::update(calls::table.find(&row.id))
            .set((
                calls::step.eq(&row.step),
                calls::seq.eq(row.seq),
                calls::language.eq(&row.language),
                calls::menu_path.eq(&row.menu_path),
                calls::menu_plays.eq(row.menu_plays),
                calls::no_input.eq(row.no_input),
                calls::roster_kind.eq(&row.roster_kind),
                calls::dial_index.eq(row.dial_index),
                calls::dial_outcome.eq(&row.dial_outcome),
                calls::contact_id.eq(&row.contact_id),
                calls::details_enc.eq(&row.details_enc),
                calls::report_id.eq(&row.report_id),
                calls::hangup_cause.eq(&row.hangup_cause),
                calls::duration_secs.eq(row.duration_secs),
                calls::ended_at.eq(row.ended_at),
                calls::updated_at.eq(now),
            ))
            .execute(conn)?;
        row.updated_at = now;
    }
    Ok(row)
}

fn attach_recording(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    row: &CallRow,
    details: &mut CallDetails,
    recording: &Recording,
) -> Result<(), IvrError> {
    match recording {
        Recording::Url {
            url,
            duration_secs,
            recording_id,
        } => {
            if details
                .recording
                .as_ref()
                .is_some_and(|r| r.url.as_deref() == Some(url.expose().as_str()))
            {
                return Ok(());
            }
            details.recording = Some(RecordingInfo {
                url: Some(url.expose().clone()),
                stored_id: None,
                duration_secs: *duration_secs,
                recording_id: recording_id.clone(),
                content_type: None,
                bytes: None,
            });
        }
        Recording::Inline { audio, content_type } => {
            let size = audio.expose().len() as u64;
            if details
                .recording
                .as_ref()
                .is_some_and(|r| r.stored_id.is_some() && r.bytes == Some(size))
            {
                return Ok(());
            }
            let id = uuid::Uuid::now_v7().to_string();
            let (key, wrapped) = crypto.new_record_key()?;
            let sealed = key.seal(audio_place(&id), audio.expose())?;
            diesel::insert_into(call_recordings::table)
                .values((
                    call_recordings::id.eq(&id),
                    call_recordings::call_id.eq(&row.id),
                    call_recordings::audio_enc.eq(&sealed),
                    call_recordings::content_type.eq(content_type),
                    call_recordings::size_bytes.eq(i64::try_from(size).unwrap_or(i64::MAX)),
                    call_recordings::dek_wrapped.eq(&wrapped.bytes),
                    call_recordings::key_version.eq(wrapped.version),
                    call_recordings::created_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            details.recording = Some(RecordingInfo {
                url: None,
                stored_id: Some(id),
                duration_secs: wav_duration(audio.expose()),
                recording_id: None,
                content_type: content_type.clone(),
                bytes: Some(size),
            });
        }
    }
    Ok(())
}

/// The sealed details of a voice report.
#[derive(Serialize)]
struct ReportDetails<'a> {
    ivr: IvrDetails<'a>,
}

#[derive(Serialize)]
struct IvrDetails<'a> {
    provider_call_id: &'a str,
    language: &'a str,
    menu_path: String,
    digits: &'a [String],
    roster: Option<&'a str>,
    dialled: i32,
    dial_outcome: Option<&'a str>,
    recording: Option<&'a RecordingInfo>,
    to: Option<&'a str>,
    hangup_cause: Option<&'a str>,
    call_duration_secs: Option<i32>,
}

fn report_details(
    row: &CallRow,
    state: &CallState,
    details: &CallDetails,
) -> Result<serde_json::Value, IvrError> {
    let body = ReportDetails {
        ivr: IvrDetails {
            provider_call_id: &row.provider_call_id,
            language: &state.language,
            menu_path: state.menu_path(),
            digits: &details.digits,
            roster: state.roster_kind.map(RosterKind::as_str),
            dialled: if state.roster_kind.is_some() && state.dial_outcome.as_deref() != Some("no_roster") {
                state.dial_index + 1
            } else {
                0
            },
            dial_outcome: state.dial_outcome.as_deref(),
            recording: details.recording.as_ref(),
            to: details.to.as_deref(),
            hangup_cause: row.hangup_cause.as_deref(),
            call_duration_secs: row.duration_secs,
        },
    };
    serde_json::to_value(&body).map_err(|_| IvrError::Encoding)
}

fn write_report(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    req: &Request<'_>,
    row: &CallRow,
    state: &CallState,
    details: &CallDetails,
) -> Result<String, IvrError> {
    let event_id = format!("call:{}", row.provider_call_id);
    let menu_path = state.menu_path();
    let new = NewReport {
        organization_id: &row.organization_id,
        source: Source::Voice,
        channel_id: Some(&req.channel.id),
        provider: Some(&row.provider),
        provider_event_id: Some(&event_id),
        contact_id: row.contact_id.as_deref(),
        body: None,
        details: Some(report_details(row, state, details)?),
        received_at: row.started_at,
        part: None,
        ivr_path: Some(&menu_path),
    };
    Ok(reports::insert(conn, crypto, &new)?.report_id)
}

fn update_report_details(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    row: &CallRow,
    state: &CallState,
    details: &CallDetails,
    report_id: &str,
) -> Result<(), IvrError> {
    reports::reseal_details(conn, crypto, report_id, &report_details(row, state, details)?)?;
    Ok(())
}

/// Writes the report of calls that went quiet without a hang-up notice (a provider that never sent one,
/// an instance that died): every call still ends as one report. Returns the new reports' ids.
pub fn finish_stale(
    conn: &mut AnyConnection,
    crypto: &Crypto,
    idle: chrono::Duration,
    limit: i64,
) -> Result<Vec<String>, IvrError> {
    let cutoff = Utc::now().naive_utc() - idle;
    let stale: Vec<CallRow> = calls::table
        .filter(calls::report_id.is_null())
        .filter(calls::updated_at.lt(cutoff))
        .order(calls::updated_at.asc())
        .limit(limit)
        .select(CallRow::as_select())
        .load(conn)?;
    let mut out = Vec::new();
    for mut row in stale {
        let Some(channel) = crate::db::schema::channels::table
            .find(&row.channel_id)
            .select(Channel::as_select())
            .first::<Channel>(conn)
            .optional()?
        else {
            continue;
        };
        let Some(provider) = channel.provider() else {
            continue;
        };
        let key = crypto.unwrap_record_key(&row.dek_wrapped, row.key_version)?;
        let details = open_details(&key, &row)?;
        let mut state = row.state();
        if state.step != Step::Done {
            state.path.push("timeout".into());
        }
        let req = Request {
            channel: &channel,
            provider,
            seq: None,
            call_ref: None,
        };
        let report_id = write_report(conn, crypto, &req, &row, &state, &details)?;
        row.report_id = Some(report_id.clone());
        diesel::update(calls::table.find(&row.id))
            .set((
                calls::report_id.eq(&row.report_id),
                calls::menu_path.eq(state.path.join(">")),
                calls::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)?;
        out.push(report_id);
    }
    Ok(out)
}
