//! The IVR: what a caller hears and presses, from the first ring to the report their call becomes.
//!
//! This module owns the provider-neutral menu ([`menu`]: a pure state machine), its persistence per call
//! ([`store`]: one `calls` row per (channel, provider call id), so any instance answers the next step and
//! a restart mid-call continues it), the recorded prompts and their public route ([`prompts`]), the duty
//! rosters the danger and child paths dial ([`roster`]), and the answer to `voice`, `voice-status` and
//! `ivr` webhooks ([`respond`]), rendered for each provider by `komek_gateways::render_ivr`.
//!
//! Safety rules kept here: the IVR never places a call by itself (it only bridges a caller who chose
//! "in danger" or "under 18" to the duty roster); caller numbers, digits and recording addresses are
//! never logged nor spoken (only a short prefix of the provider's call id appears in logs); the silent
//! path plays nothing at all; with the database unreachable the caller hears a pre-rendered apology in the
//! channel's language and another number to call (`ivr_fallback_number`) instead of an error.

pub mod menu;
pub mod prompts;
pub mod roster;
pub mod store;

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, Ordering};

use komek_gateways::{AckOutcome, Action, CallEvent, InboundEvent, IvrStep, Provider, Reply};

pub use menu::RosterKind;
use menu::{RenderCtx, Step};
use prompts::{PromptId, Prompts};

use crate::channels::{Channel, LANGUAGES};
use crate::config::Settings;
use crate::crypto::CryptoError;
use crate::db::DbError;
use crate::intake::sweeper;
use crate::state::AppState;

/// Errors of the IVR. Each has a stable code; none carries a number, digits or a recording address.
#[derive(Debug, thiserror::Error)]
pub enum IvrError {
    #[error("roster number {position} is not valid: {reason}")]
    InvalidRoster { position: usize, reason: String },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("call details could not be encoded")]
    Encoding,
}

impl From<crate::contacts::ContactError> for IvrError {
    fn from(err: crate::contacts::ContactError) -> Self {
        match err {
            crate::contacts::ContactError::Crypto(e) => IvrError::Crypto(e),
            crate::contacts::ContactError::Query(e) => IvrError::Query(e),
        }
    }
}

impl From<crate::reports::ReportError> for IvrError {
    fn from(err: crate::reports::ReportError) -> Self {
        match err {
            crate::reports::ReportError::Crypto(e) => IvrError::Crypto(e),
            crate::reports::ReportError::Query(e) => IvrError::Query(e),
        }
    }
}

impl IvrError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IvrError::InvalidRoster { .. } => "invalid_roster_number",
            IvrError::Crypto(e) => e.code(),
            IvrError::Query(_) => "database_error",
            IvrError::Db(e) => e.code(),
            IvrError::Encoding => "call_details_unencodable",
        }
    }

    fn is_unavailable(&self) -> bool {
        match self {
            IvrError::Db(e) => e.is_unavailable(),
            IvrError::Query(diesel::result::Error::DatabaseError(kind, info)) => {
                matches!(kind, diesel::result::DatabaseErrorKind::ClosedConnection)
                    || info.message().contains("database is locked")
                    || info.message().contains("database is busy")
            }
            _ => false,
        }
    }
}

/// Calls idle this long without a hang-up notice are closed into their report.
const STALE_AFTER_MINUTES: i64 = 120;
/// At most one stale-call sweep per this many seconds per instance.
const STALE_SWEEP_EVERY_SECS: i64 = 60;
/// Channel languages remembered for the fallback (bounded; cleared when full).
const LANGUAGE_CACHE_MAX: usize = 10_000;

/// The IVR's shared state: prompts, pre-rendered fallbacks, settings.
#[derive(Debug)]
pub struct Ivr {
    pub prompts: Prompts,
    /// (provider, channel language or `None` for "unknown: every language") → the safe answer.
    fallbacks: HashMap<(Provider, Option<&'static str>), Reply>,
    channel_languages: RwLock<HashMap<String, &'static str>>,
    last_stale_sweep: AtomicI64,
    /// On SQLite, IVR steps of this instance queue here for the write lock instead of meeting in
    /// SQLite's busy handler, whose sleeps (up to 100 ms each) would make a caller wait.
    sqlite_writes: tokio::sync::Mutex<()>,
    public_url: String,
    ring_timeout_secs: u32,
    record_max_secs: u32,
}

const VOICE_PROVIDERS: [Provider; 4] = [
    Provider::Twilio,
    Provider::Vonage,
    Provider::AfricasTalking,
    Provider::Freeswitch,
];

fn static_language(lang: &str) -> Option<&'static str> {
    LANGUAGES.iter().copied().find(|l| *l == lang)
}

impl Ivr {
    /// Loads the prompts and pre-renders the database-down answers for every voice provider and language.
    pub fn new(settings: &Settings) -> Ivr {
        let prompts = Prompts::load(&settings.public_url, settings.ivr_prompts_dir.as_deref());
        let mut fallbacks = HashMap::new();
        for provider in VOICE_PROVIDERS {
            for lang in LANGUAGES.iter().copied().map(Some).chain([None]) {
                let langs: Vec<&str> = match lang {
                    Some(l) => vec![l],
                    None => LANGUAGES.to_vec(),
                };
                let mut steps = Vec::new();
                for l in langs {
                    match &settings.ivr_fallback_number {
                        Some(number) => {
                            steps.push(IvrStep::Prompt(prompts.prompt(
                                provider,
                                l,
                                PromptId::Unavailable,
                            )));
                            for d in number.bytes().filter(u8::is_ascii_digit) {
                                steps.push(IvrStep::Prompt(prompts.prompt(
                                    provider,
                                    l,
                                    PromptId::Digit(d - b'0'),
                                )));
                            }
                        }
                        None => steps.push(IvrStep::Prompt(prompts.prompt(
                            provider,
                            l,
                            PromptId::UnavailableLater,
                        ))),
                    }
                }
                steps.push(IvrStep::Hangup);
                let reply = komek_gateways::render_ivr(provider, &steps).unwrap_or_else(|err| {
                    tracing::error!(provider = provider.slug(), error = %err, "cannot pre-render the IVR fallback");
                    komek_gateways::ack(provider, Action::Voice, AckOutcome::Accepted)
                });
                fallbacks.insert((provider, lang), reply);
            }
        }
        Ivr {
            prompts,
            fallbacks,
            channel_languages: RwLock::new(HashMap::new()),
            last_stale_sweep: AtomicI64::new(0),
            sqlite_writes: tokio::sync::Mutex::new(()),
            public_url: settings.public_url.as_str().trim_end_matches('/').to_owned(),
            ring_timeout_secs: settings.ivr_ring_timeout_secs,
            record_max_secs: settings.ivr_record_max_secs,
        }
    }

    /// Remembers a voice channel's language, so the database-down answer can speak it.
    pub fn remember_channel(&self, channel: &Channel) {
        let Some(lang) = static_language(&channel.language) else {
            return;
        };
        if let Ok(read) = self.channel_languages.read()
            && read.get(&channel.id) == Some(&lang)
        {
            return;
        }
        if let Ok(mut write) = self.channel_languages.write() {
            if write.len() >= LANGUAGE_CACHE_MAX {
                write.clear();
            }
            write.insert(channel.id.clone(), lang);
        }
    }

    /// The pre-rendered safe answer for a call Komek cannot serve now (database down or broken state):
    /// an apology and another number to call, in the channel's language when known, else in all six.
    pub fn fallback(&self, provider: Provider, channel_id: &str) -> Reply {
        let lang = self
            .channel_languages
            .read()
            .ok()
            .and_then(|m| m.get(channel_id).copied());
        self.fallbacks
            .get(&(provider, lang))
            .or_else(|| self.fallbacks.get(&(provider, None)))
            .cloned()
            .unwrap_or_else(|| komek_gateways::ack(provider, Action::Voice, AckOutcome::Accepted))
    }
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn short(call_id: &str) -> &str {
    call_id.get(..8).unwrap_or(call_id)
}

/// Answers a `voice`, `voice-status` or `ivr` webhook whose events were verified and parsed.
pub async fn respond(
    state: &AppState,
    channel: &Channel,
    provider: Provider,
    action: Action,
    query: Option<&str>,
    events: Vec<InboundEvent>,
) -> Reply {
    let ivr = &state.ivr;
    let seq = query_value(query, "seq").and_then(|v| v.parse::<i32>().ok());
    let call_ref = query_value(query, "call").filter(|v| uuid::Uuid::parse_str(v).is_ok());
    let calls: Vec<CallEvent> = events
        .into_iter()
        .filter_map(|e| match e {
            InboundEvent::Call(c) => Some(c),
            _ => None,
        })
        .collect();
    let call_tag = calls
        .first()
        .map(|c| short(&c.call_id).to_owned())
        .unwrap_or_default();
    if calls.is_empty() {
        return komek_gateways::ack(provider, action, AckOutcome::Accepted);
    }
    let crypto = state.crypto.clone();
    let store_channel = channel.clone();
    let queue = match state.db.backend() {
        crate::db::Backend::Sqlite => Some(ivr.sqlite_writes.lock().await),
        _ => None,
    };
    let handled = state
        .db
        .write(move |conn| {
            let req = store::Request {
                channel: &store_channel,
                provider,
                seq,
                call_ref,
            };
            store::handle(conn, &crypto, &req, &calls)
        })
        .await;
    drop(queue);
    let handled = match handled {
        Ok(handled) => handled,
        Err(err) => {
            tracing::warn!(
                provider = provider.slug(),
                action = action.slug(),
                call = %call_tag,
                error.code = err.code(),
                unavailable = err.is_unavailable(),
                "IVR step could not be stored; answering with the fallback"
            );
            return if action.expects_ivr() {
                ivr.fallback(provider, &channel.id)
            } else {
                komek_gateways::ack(provider, action, AckOutcome::TemporaryFailure)
            };
        }
    };
    if let Some(report_id) = handled.new_report.clone() {
        let db = state.db.clone();
        let ctx = state.process_context();
        let shared = state.ivr.clone();
        tokio::spawn(async move {
            // Triage waits its turn behind callers' steps instead of in SQLite's busy handler.
            let _queue = match db.backend() {
                crate::db::Backend::Sqlite => Some(shared.sqlite_writes.lock().await),
                _ => None,
            };
            sweeper::process_one(&db, &ctx, report_id).await;
        });
    }
    sweep_stale_calls(state);
    let Some(call) = handled.state.as_ref() else {
        return komek_gateways::ack(provider, action, AckOutcome::Accepted);
    };
    tracing::info!(
        provider = provider.slug(),
        action = action.slug(),
        call = %call_tag,
        step = call.step.as_str(),
        seq = call.seq,
        "IVR step answered"
    );
    if !action.expects_ivr() || handled.ended || handled.progress_only {
        return komek_gateways::ack(provider, action, AckOutcome::Accepted);
    }
    let base = format!(
        "{}/webhooks/{}/{}/ivr",
        ivr.public_url,
        provider.slug(),
        channel.id
    );
    let call_ref = handled.call_ref.as_deref().unwrap_or_default();
    let action_url =
        |step: Step, seq: i32| format!("{base}?step={}&seq={seq}&call={call_ref}", step.as_str());
    let ctx = RenderCtx {
        prompts: &ivr.prompts,
        provider,
        default_language: &channel.language,
        roster: &handled.roster,
        caller_id: channel.number.as_deref(),
        ring_timeout_secs: ivr.ring_timeout_secs,
        record_max_secs: ivr.record_max_secs,
        action_url: &action_url,
    };
    let steps = menu::render(call, &ctx);
    komek_gateways::render_ivr(provider, &steps).unwrap_or_else(|err| {
        tracing::error!(provider = provider.slug(), call = %call_tag, step = call.step.as_str(), error = %err, "IVR step cannot be rendered; answering with the fallback");
        ivr.fallback(provider, &channel.id)
    })
}

/// Runs beside the server: closes calls that went quiet without a hang-up notice into their reports even
/// when no other call comes in (a provider's lost hang-up callback must not lose the caller's report).
pub async fn watch_stale_calls(state: AppState) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(
            STALE_SWEEP_EVERY_SECS.unsigned_abs(),
        ))
        .await;
        sweep_stale_calls(&state);
    }
}

/// Closes calls that went quiet without a hang-up notice into their reports (at most once a minute).
fn sweep_stale_calls(state: &AppState) {
    let now = chrono::Utc::now().timestamp();
    let last = state.ivr.last_stale_sweep.load(Ordering::Relaxed);
    if now - last < STALE_SWEEP_EVERY_SECS
        || state
            .ivr
            .last_stale_sweep
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let db = state.db.clone();
    let crypto = state.crypto.clone();
    let ctx = state.process_context();
    tokio::spawn(async move {
        let idle = chrono::Duration::minutes(STALE_AFTER_MINUTES);
        let done = db
            .write(move |conn| store::finish_stale(conn, &crypto, idle, 20))
            .await;
        match done {
            Ok(reports) => {
                for id in reports {
                    sweeper::process_one(&db, &ctx, id).await;
                }
            }
            Err(err) => tracing::warn!(error.code = err.code(), "stale IVR calls could not be closed"),
        }
    });
}
