//! The provider-neutral IVR step list and the rules every renderer shares.
//!
//! A reply to a `voice` or `ivr` webhook is a short list of [`IvrStep`]s. Prompts and pauses
//! run in order; the list may end with one *terminal* step (Gather, Record, Dial, Redirect,
//! Hangup) that hands control back: the provider then calls the step's `action_url` (an `ivr`
//! webhook URL the service chose, with its own state in the query string) and the service's
//! answer to that request decides what happens next. This makes Twilio (verbs after `<Gather>`
//! run on timeout), Vonage (NCCO runs on after `record`), Africa's Talking and FreeSWITCH behave
//! the same; a step after a terminal step is a [`RenderError::StepAfterTerminal`].
//!
//! Result of each terminal step at its `action_url` ([`crate::CallEventKind`]):
//! * Gather → `DigitsEntered`, or `NoInput` when nothing was pressed.
//! * Record → `RecordingReady`, or `NoInput` (Twilio/AT: nothing recorded). On Vonage the record
//!   event (`RecordingReady`, answer ignored) and a continuation request (`NoInput`, whose answer
//!   continues the call) both arrive at `action_url`.
//! * Dial → `DialResult` (Twilio, Vonage, FreeSWITCH with `extended-data`); Africa's Talking
//!   reports the dial only in the call's final request and the call ends after `Dial`.
//! * Redirect → `NoInput`.

use crate::error::RenderError;
use crate::provider::Provider;

/// Something to say or play. Recorded audio is preferred when present; otherwise the text is
/// spoken if the provider speaks the language ([`Provider::speaks`]); otherwise rendering fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// BCP 47 language of the prompt (`ru-RU`, `kk-KZ`, ...).
    pub lang: String,
    /// Text for text-to-speech.
    pub text: Option<String>,
    /// Recorded audio (https URL; for FreeSWITCH also a local path).
    pub audio_url: Option<String>,
}

impl Prompt {
    /// Text to speak in `lang`.
    pub fn say(lang: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            lang: lang.into(),
            text: Some(text.into()),
            audio_url: None,
        }
    }

    /// Recorded audio in `lang`.
    pub fn play(lang: impl Into<String>, audio_url: impl Into<String>) -> Self {
        Self {
            lang: lang.into(),
            text: None,
            audio_url: Some(audio_url.into()),
        }
    }

    /// Adds recorded audio as an alternative to the text.
    pub fn or_play(mut self, audio_url: impl Into<String>) -> Self {
        self.audio_url = Some(audio_url.into());
        self
    }
}

/// One IVR instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IvrStep {
    /// Say or play a prompt.
    Prompt(Prompt),
    /// Play prompts (interruptible) and collect keys; terminal.
    Gather {
        /// Prompts played while waiting.
        prompts: Vec<Prompt>,
        /// Stop after this many keys (1–20); `None`: until `finish_on_key` or timeout.
        num_digits: Option<u8>,
        /// Seconds to wait for a key (Vonage allows at most 10; larger values are clamped).
        timeout_secs: u32,
        /// Key that ends input (`#` or `*`); not part of the digits.
        finish_on_key: Option<char>,
        /// Where the result goes.
        action_url: String,
    },
    /// Record the caller after an optional beep; terminal.
    Record {
        /// Maximum length in seconds.
        max_length_secs: u32,
        /// Key that ends the recording.
        finish_on_key: Option<char>,
        /// Play a beep first.
        play_beep: bool,
        /// Where the recording goes.
        action_url: String,
    },
    /// Call the numbers one after another and bridge the first that answers; terminal.
    /// Several numbers need [`Provider::dials_in_order`]; elsewhere dial one per step.
    Dial {
        /// Numbers (or, on FreeSWITCH, full dial strings containing `/`).
        numbers: Vec<String>,
        /// How long each number may ring.
        ring_timeout_secs: u32,
        /// Caller id shown to the callee (must be one of the channel's numbers).
        caller_id: Option<String>,
        /// Where the result goes.
        action_url: String,
    },
    /// Continue at another URL (an `ivr` webhook); terminal.
    Redirect {
        /// Target.
        url: String,
    },
    /// Silence.
    Pause {
        /// Seconds (1–60).
        secs: u32,
    },
    /// End the call; terminal.
    Hangup,
}

impl IvrStep {
    pub(crate) fn is_terminal(&self) -> bool {
        matches!(
            self,
            IvrStep::Gather { .. }
                | IvrStep::Record { .. }
                | IvrStep::Dial { .. }
                | IvrStep::Redirect { .. }
                | IvrStep::Hangup
        )
    }
}

/// How a prompt will be rendered for a provider.
pub(crate) enum PromptRender<'a> {
    Say { text: &'a str, lang: &'static str },
    Play { url: &'a str },
}

pub(crate) fn resolve_prompt<'a>(
    provider: Provider,
    index: usize,
    prompt: &'a Prompt,
) -> Result<PromptRender<'a>, RenderError> {
    if let Some(url) = prompt.audio_url.as_deref().filter(|u| !u.is_empty()) {
        return Ok(PromptRender::Play { url });
    }
    match prompt.text.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => match provider.voice_language(&prompt.lang) {
            Some(lang) => Ok(PromptRender::Say { text, lang }),
            None => Err(RenderError::LanguageNotSpoken {
                provider,
                lang: prompt.lang.clone(),
            }),
        },
        None => Err(RenderError::EmptyPrompt { index }),
    }
}

/// Checks rules shared by every renderer: terminal steps last, sane numbers, non-empty URLs.
pub(crate) fn validate(provider: Provider, steps: &[IvrStep]) -> Result<(), RenderError> {
    for (index, step) in steps.iter().enumerate() {
        if index > 0 && steps[index - 1].is_terminal() {
            return Err(RenderError::StepAfterTerminal { index });
        }
        let invalid = |reason| Err(RenderError::InvalidStep { index, reason });
        match step {
            IvrStep::Gather {
                num_digits,
                timeout_secs,
                finish_on_key,
                action_url,
                ..
            } => {
                if action_url.is_empty() {
                    return invalid("empty action_url");
                }
                if matches!(num_digits, Some(n) if *n == 0 || *n > 20) {
                    return invalid("num_digits must be 1-20");
                }
                if *timeout_secs == 0 || *timeout_secs > 600 {
                    return invalid("timeout_secs must be 1-600");
                }
                if num_digits.is_none() && finish_on_key.is_none() {
                    return invalid("gather needs num_digits or finish_on_key");
                }
                if matches!(finish_on_key, Some(k) if !matches!(k, '#' | '*')) {
                    return invalid("finish_on_key must be # or *");
                }
            }
            IvrStep::Record {
                max_length_secs,
                finish_on_key,
                action_url,
                ..
            } => {
                if action_url.is_empty() {
                    return invalid("empty action_url");
                }
                if *max_length_secs == 0 || *max_length_secs > 7200 {
                    return invalid("max_length_secs must be 1-7200");
                }
                if matches!(finish_on_key, Some(k) if !matches!(k, '0'..='9' | '#' | '*')) {
                    return invalid("finish_on_key must be a DTMF key");
                }
            }
            IvrStep::Dial {
                numbers,
                ring_timeout_secs,
                action_url,
                ..
            } => {
                if action_url.is_empty() {
                    return invalid("empty action_url");
                }
                if numbers.is_empty() || numbers.iter().any(|n| n.trim().is_empty()) {
                    return invalid("dial needs at least one non-empty number");
                }
                if numbers.len() > 1 && !provider.dials_in_order() {
                    return Err(RenderError::Unsupported {
                        index,
                        provider,
                        what: "dial several numbers in order in one step (dial one per step)",
                    });
                }
                if *ring_timeout_secs == 0 || *ring_timeout_secs > 600 {
                    return invalid("ring_timeout_secs must be 1-600");
                }
            }
            IvrStep::Redirect { url } => {
                if url.is_empty() {
                    return invalid("empty url");
                }
            }
            IvrStep::Pause { secs } => {
                if *secs == 0 || *secs > 60 {
                    return invalid("pause must be 1-60 s");
                }
            }
            IvrStep::Prompt(_) | IvrStep::Hangup => {}
        }
    }
    Ok(())
}
