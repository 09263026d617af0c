//! The menu as a small, pure state machine: [`CallState`] + [`Input`] → next [`CallState`], and
//! [`CallState`] → the provider-neutral steps to answer with. No database, no clock, no provider: the
//! store persists the state per call and the route renders it, so any instance can answer any step and a
//! repeated callback is answered by rendering the same state again.
//!
//! Flow: language menu (the channel's language first; keys ru 1, kk 2, ky 3, tg 4, uz 5, en 6; no key →
//! the channel's language) → main menu: 1 in danger (dial the general duty roster in order, then record),
//! 2 report (record), 3 under 18 (dial the child roster, then record), 5 cannot speak (silent recording, no
//! more prompts), 0 repeat; no key or a wrong key → repeat once, then record → done (thanks, hang up; the
//! silent path hangs up without a word).

use komek_gateways::{DialOutcome, IvrStep};

use super::prompts::{PromptId, Prompts};

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Language,
    Menu,
    Dial,
    Record,
    Silent,
    Done,
}

impl Step {
    /// Stored and URL name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Language => "language",
            Step::Menu => "menu",
            Step::Dial => "dial",
            Step::Record => "record",
            Step::Silent => "silent",
            Step::Done => "done",
        }
    }

    /// Parses a stored name (unknown names end the call rather than loop).
    pub fn parse(s: &str) -> Step {
        match s {
            "language" => Step::Language,
            "menu" => Step::Menu,
            "dial" => Step::Dial,
            "record" => Step::Record,
            "silent" => Step::Silent,
            _ => Step::Done,
        }
    }
}

/// Which duty roster a path dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterKind {
    General,
    Child,
}

impl RosterKind {
    /// Stored and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            RosterKind::General => "general",
            RosterKind::Child => "child",
        }
    }

    /// Parses `general` or `child`.
    pub fn parse(s: &str) -> Option<RosterKind> {
        match s {
            "general" => Some(RosterKind::General),
            "child" => Some(RosterKind::Child),
            _ => None,
        }
    }
}

/// The persisted state of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallState {
    pub step: Step,
    /// Bumped on every transition; action URLs carry it, so a repeated callback is recognised.
    pub seq: i32,
    pub language: String,
    /// The caller's choices, in order (`1:danger`, `noinput`, ...), without the language.
    pub path: Vec<String>,
    pub menu_plays: i32,
    pub no_input: i32,
    pub roster_kind: Option<RosterKind>,
    /// The roster entry being dialled (providers that dial one number per step).
    pub dial_index: i32,
    /// How the last dial ended: answered, no_answer, busy, failed, canceled, no_roster.
    pub dial_outcome: Option<String>,
}

impl CallState {
    /// A new call, at the language menu.
    pub fn new(language: &str) -> CallState {
        CallState {
            step: Step::Language,
            seq: 1,
            language: language.to_owned(),
            path: Vec::new(),
            menu_plays: 0,
            no_input: 0,
            roster_kind: None,
            dial_index: 0,
            dial_outcome: None,
        }
    }

    /// The menu path triage reads (`lang:ru>1:danger>dial:no_answer>record`).
    pub fn menu_path(&self) -> String {
        std::iter::once(format!("lang:{}", self.language))
            .chain(self.path.iter().cloned())
            .collect::<Vec<_>>()
            .join(">")
    }

    /// True once the caller chose the silent path.
    pub fn is_silent(&self) -> bool {
        self.path.iter().any(|p| p == "5:silent")
    }
}

/// What the caller (or the provider) did at the current step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Digits(String),
    NoInput,
    Dialed(DialOutcome),
    Recorded,
}

/// What a transition needs to know besides the state.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    pub default_language: &'a str,
    pub general_roster: usize,
    pub child_roster: usize,
    /// The provider rings the whole roster in one step.
    pub dials_in_order: bool,
}

/// Most menu plays before the caller is asked to record instead (a stuck key cannot loop forever).
const MAX_MENU_PLAYS: i32 = 6;

/// Language menu keys, in the order the recordings say them.
pub const LANGUAGE_KEYS: [(&str, &str); 6] = [
    ("1", "ru"),
    ("2", "kk"),
    ("3", "ky"),
    ("4", "tg"),
    ("5", "uz"),
    ("6", "en"),
];

fn outcome_name(o: DialOutcome) -> &'static str {
    match o {
        DialOutcome::Answered => "answered",
        DialOutcome::Busy => "busy",
        DialOutcome::NoAnswer => "no_answer",
        DialOutcome::Failed => "failed",
        DialOutcome::Canceled => "canceled",
    }
}

fn to_record(mut s: CallState) -> CallState {
    s.step = Step::Record;
    s.path.push("record".into());
    s
}

fn start_dial(mut s: CallState, kind: RosterKind, env: &Env<'_>) -> CallState {
    let size = match kind {
        RosterKind::General => env.general_roster,
        RosterKind::Child => env.child_roster,
    };
    s.roster_kind = Some(kind);
    s.dial_index = 0;
    if size == 0 {
        s.dial_outcome = Some("no_roster".into());
        s.path.push("dial:no_roster".into());
        return to_record(s);
    }
    s.step = Step::Dial;
    s
}

fn again_or_record(mut s: CallState, label: &str) -> CallState {
    s.no_input += 1;
    s.path.push(label.into());
    if s.no_input >= 2 || s.menu_plays >= MAX_MENU_PLAYS {
        to_record(s)
    } else {
        s.menu_plays += 1;
        s
    }
}

/// The state after `input` at the current step. Returns the same state (same `seq`) when the input
/// changes nothing.
pub fn apply(state: &CallState, input: &Input, env: &Env<'_>) -> CallState {
    let s = state.clone();
    let next = match (state.step, input) {
        (Step::Language, Input::Digits(d)) => {
            let mut s = s;
            let key = d.get(..1).unwrap_or_default();
            s.language = LANGUAGE_KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, l)| (*l).to_owned())
                .unwrap_or_else(|| env.default_language.to_owned());
            s.step = Step::Menu;
            s.menu_plays = 1;
            s
        }
        (Step::Language, _) => {
            let mut s = s;
            s.language = env.default_language.to_owned();
            s.step = Step::Menu;
            s.menu_plays = 1;
            s
        }
        (Step::Menu, Input::Digits(d)) => match d.get(..1).unwrap_or_default() {
            "1" => {
                let mut s = s;
                s.path.push("1:danger".into());
                start_dial(s, RosterKind::General, env)
            }
            "2" => {
                let mut s = s;
                s.path.push("2:report".into());
                s.step = Step::Record;
                s
            }
            "3" => {
                let mut s = s;
                s.path.push("3:child".into());
                start_dial(s, RosterKind::Child, env)
            }
            "5" => {
                let mut s = s;
                s.path.push("5:silent".into());
                s.step = Step::Silent;
                s
            }
            "0" => {
                let mut s = s;
                s.path.push("0:repeat".into());
                if s.menu_plays >= MAX_MENU_PLAYS {
                    to_record(s)
                } else {
                    s.menu_plays += 1;
                    s
                }
            }
            _ => again_or_record(s, "invalid"),
        },
        (Step::Menu, _) => again_or_record(s, "noinput"),
        (Step::Dial, Input::Dialed(outcome)) => {
            let outcome = *outcome;
            let mut s = s;
            let size = match s.roster_kind {
                Some(RosterKind::Child) => env.child_roster,
                _ => env.general_roster,
            };
            s.dial_outcome = Some(outcome_name(outcome).into());
            match outcome {
                DialOutcome::Answered | DialOutcome::Canceled => {
                    s.path.push(format!("dial:{}", outcome_name(outcome)));
                    s.step = Step::Done;
                    s
                }
                _ if !env.dials_in_order && ((s.dial_index + 1) as usize) < size => {
                    s.dial_index += 1;
                    s
                }
                _ => {
                    s.path.push(format!("dial:{}", outcome_name(outcome)));
                    to_record(s)
                }
            }
        }
        // A provider that reports no dial result (FreeSWITCH without extended-data) comes back empty.
        (Step::Dial, Input::NoInput) => apply(state, &Input::Dialed(DialOutcome::NoAnswer), env),
        (Step::Record | Step::Silent, Input::Recorded | Input::NoInput) => {
            let mut s = s;
            s.step = Step::Done;
            s
        }
        _ => return s,
    };
    let mut next = next;
    next.seq = state.seq + 1;
    next
}

/// What rendering needs besides the state.
pub struct RenderCtx<'a> {
    pub prompts: &'a Prompts,
    pub provider: komek_gateways::Provider,
    pub default_language: &'a str,
    /// The numbers of the roster being dialled (empty otherwise).
    pub roster: &'a [String],
    pub caller_id: Option<&'a str>,
    pub ring_timeout_secs: u32,
    pub record_max_secs: u32,
    /// `ivr` action URL for a step: `…/ivr?step=NAME&seq=N`.
    pub action_url: &'a dyn Fn(Step, i32) -> String,
}

/// Seconds a menu waits for a key (Vonage allows at most 10).
const GATHER_TIMEOUT_SECS: u32 = 7;

/// The steps that play the state to the caller.
pub fn render(state: &CallState, ctx: &RenderCtx<'_>) -> Vec<IvrStep> {
    let p = |lang: &str, id| ctx.prompts.prompt(ctx.provider, lang, id);
    let lang = state.language.as_str();
    let action = (ctx.action_url)(state.step, state.seq);
    match state.step {
        Step::Language => {
            let mut order: Vec<&str> = vec![ctx.default_language];
            order.extend(
                LANGUAGE_KEYS
                    .iter()
                    .map(|(_, l)| *l)
                    .filter(|l| *l != ctx.default_language),
            );
            vec![IvrStep::Gather {
                prompts: order
                    .into_iter()
                    .map(|l| p(l, PromptId::LanguageOption))
                    .collect(),
                num_digits: Some(1),
                timeout_secs: GATHER_TIMEOUT_SECS,
                finish_on_key: None,
                action_url: action,
            }]
        }
        Step::Menu => vec![IvrStep::Gather {
            prompts: vec![p(lang, PromptId::MainMenu)],
            num_digits: Some(1),
            timeout_secs: GATHER_TIMEOUT_SECS,
            finish_on_key: None,
            action_url: action,
        }],
        Step::Dial => {
            let index = usize::try_from(state.dial_index).unwrap_or(0);
            let numbers: Vec<String> = if ctx.provider.dials_in_order() {
                ctx.roster.to_vec()
            } else {
                ctx.roster.get(index).cloned().into_iter().collect()
            };
            if numbers.is_empty() {
                // The roster changed under a call: go on as if nobody answered.
                return vec![IvrStep::Redirect { url: action }];
            }
            let mut steps = Vec::new();
            if index == 0 {
                let intro = match state.roster_kind {
                    Some(RosterKind::Child) => PromptId::ConnectingChild,
                    _ => PromptId::Connecting,
                };
                steps.push(IvrStep::Prompt(p(lang, intro)));
            }
            steps.push(IvrStep::Dial {
                numbers,
                ring_timeout_secs: ctx.ring_timeout_secs,
                caller_id: ctx.caller_id.map(str::to_owned),
                action_url: action,
            });
            steps
        }
        Step::Record => {
            let mut steps = Vec::new();
            if state.dial_outcome.as_deref().is_some_and(|o| o != "answered") {
                steps.push(IvrStep::Prompt(p(lang, PromptId::NoAnswer)));
            }
            steps.push(IvrStep::Prompt(p(lang, PromptId::Record)));
            steps.push(IvrStep::Record {
                max_length_secs: ctx.record_max_secs,
                finish_on_key: Some('#'),
                play_beep: true,
                action_url: action,
            });
            steps
        }
        // No prompt, no beep: whoever holds the phone hears nothing.
        Step::Silent => vec![IvrStep::Record {
            max_length_secs: ctx.record_max_secs,
            finish_on_key: None,
            play_beep: false,
            action_url: action,
        }],
        Step::Done if state.is_silent() => vec![IvrStep::Hangup],
        Step::Done => vec![IvrStep::Prompt(p(lang, PromptId::Thanks)), IvrStep::Hangup],
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ENV: Env<'static> = Env {
        default_language: "kk",
        general_roster: 2,
        child_roster: 0,
        dials_in_order: false,
    };

    fn run(inputs: &[Input]) -> CallState {
        let mut s = CallState::new("kk");
        for i in inputs {
            s = apply(&s, i, &ENV);
        }
        s
    }

    #[test]
    fn danger_dials_each_number_then_records() {
        let s = run(&[
            Input::Digits("1".into()),
            Input::Digits("1".into()),
            Input::Dialed(DialOutcome::NoAnswer),
        ]);
        assert_eq!((s.step, s.dial_index), (Step::Dial, 1));
        let s = apply(&s, &Input::Dialed(DialOutcome::Busy), &ENV);
        assert_eq!(s.step, Step::Record);
        assert_eq!(s.menu_path(), "lang:ru>1:danger>dial:busy>record");
        let s = apply(&s, &Input::Recorded, &ENV);
        assert_eq!(s.step, Step::Done);
    }

    #[test]
    fn no_input_repeats_once_then_records_and_language_defaults() {
        let s = run(&[Input::NoInput, Input::NoInput]);
        assert_eq!((s.step, s.language.as_str()), (Step::Menu, "kk"));
        let s = apply(&s, &Input::NoInput, &ENV);
        assert_eq!(s.step, Step::Record);
        assert_eq!(s.menu_path(), "lang:kk>noinput>noinput>record");
    }

    #[test]
    fn child_without_roster_records_silent_is_silent_and_noop_keeps_seq() {
        let s = run(&[Input::Digits("6".into()), Input::Digits("3".into())]);
        assert_eq!(s.step, Step::Record);
        assert!(s.menu_path().contains("3:child"));
        let s = run(&[Input::Digits("2".into()), Input::Digits("5".into())]);
        assert!(s.is_silent() && s.step == Step::Silent);
        let same = apply(&s, &Input::Dialed(DialOutcome::Busy), &ENV);
        assert_eq!(same, s);
    }
}
