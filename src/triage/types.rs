//! The vocabulary of triage: its input, its result and the labels in both.
//!
//! This module owns every type that crosses the triage boundary: what intake hands in ([`TriageInput`],
//! [`ChannelKind`]) and what it gets back ([`Triage`] and the labels inside it). Labels are closed enums
//! with a stable snake_case text form, because the database stores them as text, the console shows them
//! and an operator override (built elsewhere) stores an overridden [`Triage`] as JSON. `as_str()` and
//! `FromStr` are the only text conversions; serde uses the same strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a report reached the hotline. It changes little: an untranscribed voice message is at least
/// medium risk, because nobody has heard it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Sms,
    Voice,
    Web,
    Operator,
}

/// One report to triage.
#[derive(Debug, Clone, Copy)]
pub struct TriageInput<'a> {
    /// The message body: SMS text, web form text, operator notes or a voice transcript; empty if none.
    pub text: &'a str,
    pub channel: ChannelKind,
    /// The IVR menu path, or for the web form its yes/no answers, as segments separated by `>`, `/`,
    /// `,`, `;`, `|` or spaces, e.g. `lang:ru>2>child` or `lang:uz>1:danger`. Understood segments:
    /// `lang:XX` (ru, kk, ky, tg, uz, en; the chosen language), `danger` and `silent` (critical),
    /// `child` or `under18` (child victim), `shelter` (shelter needed); a flag may follow the key that
    /// chose it (`1:danger`). Anything else (plain digits, unknown words) is ignored.
    pub ivr_path: Option<&'a str>,
}

/// Urgency. The derived order makes `Critical` the greatest, so `max` raises and `min` caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

/// Purpose of exploitation (Palermo Protocol, art. 3), with child labour kept apart as DESIGN §8 asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExploitationType {
    Labour,
    Sexual,
    DomesticServitude,
    ForcedBegging,
    ForcedCriminality,
    ForcedMarriage,
    OrganRemoval,
    ChildLabour,
}

/// The six hotline languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Ru,
    Kk,
    Ky,
    Tg,
    Uz,
    En,
}

/// Writing system of a message (ISO 15924 codes, lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Script {
    Cyrl,
    Latn,
}

/// Which language a report is in: the dominant one, the script it was written in, and any other
/// languages that also clearly appear (mixed messages), most evident first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanguageGuess {
    pub primary: Language,
    pub script: Script,
    pub others: Vec<Language>,
}

/// One reason behind a triage result, shown to the operator. `id` names the rule (rule-file ids such as
/// `ru.documents_taken`, or engine ids such as `ivr.danger`, `age.self`); `explanation` is a short plain
/// sentence. It never contains the message text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredRule {
    pub id: String,
    pub explanation: String,
}

/// The first read of a report. Serialises to JSON with snake_case label strings, so an operator override
/// can keep the result it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    pub risk: RiskLevel,
    /// Sorted, without duplicates.
    pub exploitation_types: Vec<ExploitationType>,
    pub child_victim: bool,
    pub shelter_needed: bool,
    pub language: LanguageGuess,
    /// An age the report states (the writer's own if given, else someone else's), in years.
    pub stated_age: Option<u8>,
    /// Every rule that fired, in a stable order (rule files first, then engine decisions).
    pub rules: Vec<FiredRule>,
}

/// A label string that is not one of the known values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (expected one of: {expected})")]
pub struct ParseLabelError {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

macro_rules! labels {
    ($ty:ident, $kind:literal, $expected:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable text form (as stored in the database and used in rule files).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $text),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = ParseLabelError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    _ => Err(ParseLabelError { kind: $kind, value: s.to_owned(), expected: $expected }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

labels!(ChannelKind, "channel kind", "sms, voice, web, operator", {
    Sms => "sms", Voice => "voice", Web => "web", Operator => "operator",
});
labels!(RiskLevel, "risk level", "critical, high, medium, low", {
    Low => "low", Medium => "medium", High => "high", Critical => "critical",
});
labels!(ExploitationType, "exploitation type",
    "labour, sexual, domestic_servitude, forced_begging, forced_criminality, forced_marriage, organ_removal, child_labour", {
    Labour => "labour",
    Sexual => "sexual",
    DomesticServitude => "domestic_servitude",
    ForcedBegging => "forced_begging",
    ForcedCriminality => "forced_criminality",
    ForcedMarriage => "forced_marriage",
    OrganRemoval => "organ_removal",
    ChildLabour => "child_labour",
});
labels!(Language, "language", "ru, kk, ky, tg, uz, en", {
    Ru => "ru", Kk => "kk", Ky => "ky", Tg => "tg", Uz => "uz", En => "en",
});
labels!(Script, "script", "cyrl, latn", { Cyrl => "cyrl", Latn => "latn" });

impl Language {
    /// Index into per-language arrays (`Language::ALL` order).
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The script a language is usually written in, used when a report has no text to look at.
    pub const fn usual_script(self) -> Script {
        match self {
            Language::Uz | Language::En => Script::Latn,
            Language::Ru | Language::Kk | Language::Ky | Language::Tg => Script::Cyrl,
        }
    }
}
