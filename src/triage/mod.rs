//! Triage: an explainable first read of every report (DESIGN §7–§8, issue 5).
//!
//! A pure, total function from a report's text, channel and IVR path to a [`Triage`]: risk, exploitation
//! types, child-victim flag, shelter need, language and the rules that fired. It never panics, does no
//! I/O after loading, and never logs or returns the message text.
//!
//! ```no_run
//! # fn main() -> Result<(), komek::triage::RuleFileError> {
//! use komek::triage::{ChannelKind, Engine, TriageInput};
//! // At start: the built-in rules, or an NGO's edited copies (KOMEK_TRIAGE_RULES_DIR).
//! let engine = match std::env::var_os("KOMEK_TRIAGE_RULES_DIR") {
//!     Some(dir) => Engine::from_dir(dir)?,
//!     None => Engine::embedded()?,
//! };
//! let t = engine.assess(&TriageInput { text: "pomogite zabrali pasport", channel: ChannelKind::Sms, ivr_path: None });
//! assert!(t.risk >= komek::triage::RiskLevel::Medium);
//! # Ok(()) }
//! ```
//!
//! Modules, and what each owns:
//!
//! * [`types`]: the input and result types and their labels (text forms for the database, serde).
//! * `rules`: the rule-file format (`rules/*.toml`, described for NGO staff in `rules/README.md`), its
//!   loading and validation, and [`RuleFileError`] (file + line + what is wrong).
//! * `normalize`: the one canonical spelling shared by messages and rule phrases (case, NFKC,
//!   look-alikes, the letters of the Central Asian alphabets, Russian in Latin letters, repeats).
//! * `matcher`: one aho-corasick automaton over every word of every file; one pass per message.
//! * `lang`: language and script detection. `ivr`: flags carried by the IVR path.
//! * this file: [`Engine`] and the decision: how the hits become a risk level, a child flag and the rest.
//!
//! How a decision is made (the weights and thresholds are data: `rules/scoring.toml`):
//!
//! 1. Each rule that fires (one of its phrases found, not negated) is listed with its explanation.
//! 2. Score: every signal (documents taken, debt bondage, ...) counts once, with the weight of its
//!    strongest rule. Medium, high and critical thresholds turn the score into a risk level.
//! 3. `danger` rules, and the IVR `danger`/`silent` paths, make the report critical.
//! 4. Context: a `media` rule (a film, a book, an article) scales the score down and drops the types
//!    if nothing else is left; a `past` rule (it happened before, the person is safe now) caps the risk
//!    at medium. Neither applies when a `danger` rule fired.
//! 5. Child victim: the writer's stated age under 18, school words or a school grade (unless the writer
//!    says they are an adult), the IVR `child` path; or a child word or someone's age under 18 in the
//!    same sentence as an exploitation indicator, within `child_window` words after it or
//!    `child_window_before` words before it (so "my child is sick" does not count). A child case is at least high risk; labour by a child also gets `child_labour`.
//! 6. An untranscribed voice message is at least medium: nobody has heard it yet.

mod ivr;
mod lang;
mod matcher;
mod normalize;
mod rules;
pub mod types;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use rules::RuleFileError;
pub use types::{
    ChannelKind, ExploitationType, FiredRule, Language, LanguageGuess, ParseLabelError, RiskLevel, Script,
    Triage, TriageInput,
};

use matcher::{Matcher, Scan};
use rules::{AgeKind, RuleSet, Scoring, Signal};

/// The compiled rules. Build it once at start and share it (`Arc<Engine>` or `web::Data`): it is
/// immutable, `Send` and `Sync`, and [`Engine::assess`] takes `&self`.
#[derive(Debug)]
pub struct Engine {
    matcher: Matcher,
    rules: Vec<RuleMeta>,
    scoring: Scoring,
}

#[derive(Debug)]
struct RuleMeta {
    id: String,
    explain: String,
    signal: Signal,
    weight: u32,
    types: Vec<ExploitationType>,
    shelter: bool,
}

const SIGNALS: usize = Signal::ALL.len();

impl Engine {
    /// The rule files compiled into the binary (`src/triage/rules/`).
    pub fn embedded() -> Result<Engine, RuleFileError> {
        let set = rules::load_set(("scoring.toml", rules::EMBEDDED_SCORING), rules::EMBEDDED)?;
        Engine::from_set(set, "embedded rules")
    }

    /// Every `*.toml` in `dir`: `scoring.toml` plus language files (same format as the built-in ones;
    /// start from a copy of `src/triage/rules/`).
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Engine, RuleFileError> {
        let dir = dir.as_ref();
        let set = rules::load_dir(dir)?;
        Engine::from_set(set, &dir.display().to_string())
    }

    /// Rule files given as text: `scoring` is `(file name, contents)` of `scoring.toml`, `files` the
    /// language files. File names are only used in error messages.
    pub fn from_sources(scoring: (&str, &str), files: &[(&str, &str)]) -> Result<Engine, RuleFileError> {
        let set = rules::load_set(scoring, files)?;
        Engine::from_set(set, "rule sources")
    }

    fn from_set(set: RuleSet, origin: &str) -> Result<Engine, RuleFileError> {
        let matcher = Matcher::build(&set).map_err(|e| RuleFileError::Set {
            dir: origin.to_owned(),
            message: format!("the phrases cannot be compiled: {e}"),
        })?;
        let rules = set
            .files
            .into_iter()
            .flat_map(|f| f.rules)
            .map(|r| RuleMeta {
                id: r.id,
                explain: r.explain,
                signal: r.signal,
                weight: r.weight,
                types: r.types,
                shelter: r.shelter,
            })
            .collect();
        Ok(Engine {
            matcher,
            rules,
            scoring: set.scoring,
        })
    }

    /// Number of rules loaded (all files).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Triage one report. Total: any text, any path, never panics.
    pub fn assess(&self, input: &TriageInput<'_>) -> Triage {
        let norm = normalize::normalize(input.text);
        let scan = self.matcher.scan(&norm);
        let ivr = input.ivr_path.map(ivr::parse).unwrap_or_default();
        let language = lang::decide(&norm.letters, &scan.lang_votes, ivr.lang);
        let mut d = Decision::new(self, &scan, &norm.tokens);

        d.score_and_risk();
        d.ages_and_children(&scan);
        d.finish(input, &ivr, norm.tokens.is_empty());

        let mut types = d.types;
        types.sort_unstable();
        types.dedup();
        Triage {
            risk: d.risk,
            exploitation_types: types,
            child_victim: d.child,
            shelter_needed: d.shelter,
            language,
            stated_age: d.stated_age.and_then(|a| u8::try_from(a).ok()),
            rules: d.fired,
        }
    }
}

/// The working state of one assessment.
struct Decision<'a> {
    engine: &'a Engine,
    tokens: &'a [normalize::Token],
    fired: Vec<FiredRule>,
    has: [bool; SIGNALS],
    best: [u32; SIGNALS],
    types: Vec<ExploitationType>,
    shelter: bool,
    risk: RiskLevel,
    child: bool,
    stated_age: Option<u32>,
    media: bool,
    past: bool,
    danger: bool,
}

impl<'a> Decision<'a> {
    fn new(engine: &'a Engine, scan: &'a Scan, tokens: &'a [normalize::Token]) -> Decision<'a> {
        let mut d = Decision {
            engine,
            tokens,
            fired: Vec::with_capacity(scan.rules.len() + 2),
            has: [false; SIGNALS],
            best: [0; SIGNALS],
            types: Vec::new(),
            shelter: false,
            risk: RiskLevel::Low,
            child: false,
            stated_age: None,
            media: false,
            past: false,
            danger: false,
        };
        for hit in &scan.rules {
            let Some(rule) = engine.rules.get(hit.rule as usize) else {
                continue;
            };
            let s = rule.signal as usize;
            d.has[s] = true;
            d.best[s] = d.best[s].max(rule.weight);
            d.types.extend_from_slice(&rule.types);
            d.shelter |= rule.shelter || rule.signal == Signal::Shelter;
            d.fired.push(FiredRule {
                id: rule.id.clone(),
                explanation: rule.explain.clone(),
            });
        }
        d.media = d.has[Signal::Media as usize];
        d.past = d.has[Signal::Past as usize];
        d.danger = d.has[Signal::Danger as usize];
        d
    }

    fn engine_rule(&mut self, id: &str, explanation: String) {
        self.fired.push(FiredRule {
            id: id.to_owned(),
            explanation,
        });
    }

    fn score_and_risk(&mut self) {
        let s = &self.engine.scoring;
        let raw: u32 = self.best.iter().sum();
        let dampen = self.media && !self.danger;
        let score = if dampen { raw * s.media_percent / 100 } else { raw };
        self.risk = if score >= s.critical_at {
            RiskLevel::Critical
        } else if score >= s.high_at {
            RiskLevel::High
        } else if score >= s.medium_at {
            RiskLevel::Medium
        } else {
            RiskLevel::Low
        };
        if dampen && raw > 0 {
            self.engine_rule(
                "engine.media",
                format!(
                    "Talks about a film, book or news: indicator score {raw} counted at {}%",
                    s.media_percent
                ),
            );
            if self.risk == RiskLevel::Low {
                self.types.clear();
            }
        }
        if self.danger {
            self.risk = RiskLevel::Critical;
        } else if self.past && self.risk > RiskLevel::Medium {
            self.risk = RiskLevel::Medium;
            self.engine_rule(
                "engine.past",
                "Described as past, no sign of danger now: risk capped at medium".to_owned(),
            );
        }
    }

    fn ages_and_children(&mut self, scan: &Scan) {
        let ages = &scan.ages;
        let self_age = ages.iter().find(|a| a.kind == AgeKind::SelfAge);
        let others: Vec<_> = ages
            .iter()
            .filter(|a| a.kind == AgeKind::Other && self_age.is_none_or(|s| s.at != a.at))
            .collect();
        let grade = ages.iter().find(|a| a.kind == AgeKind::Grade && a.value <= 11);
        self.stated_age = self_age.or(others.first().copied()).map(|a| a.value);

        let self_minor = self_age.is_some_and(|a| a.value < 18);
        let self_adult = self_age.is_some_and(|a| a.value >= 18);
        if let Some(a) = self_age {
            let note = if a.value < 18 { " (under 18)" } else { " (adult)" };
            self.engine_rule(
                "age.self",
                format!("The writer gives their age: {}{note}", a.value),
            );
        }
        for a in &others {
            let note = if a.value < 18 { " (under 18)" } else { " (adult)" };
            self.engine_rule("age.other", format!("Someone's age is given: {}{note}", a.value));
        }
        if let Some(g) = grade {
            self.engine_rule("age.grade", format!("A school grade is mentioned: {}", g.value));
        }

        let dampen = self.media && !self.danger;
        let school = !self_adult && !dampen && (self.has[Signal::ChildSelf as usize] || grade.is_some());
        let mut child = self_minor || school;
        if self_minor {
            self.engine_rule("child.age", "The writer is under 18: child case".to_owned());
        } else if school {
            self.engine_rule(
                "child.school",
                "The writer is a school pupil: child case".to_owned(),
            );
        }

        // A child word, or someone's age under 18, next to an exploitation indicator.
        let minor_other: Vec<u32> = others.iter().filter(|a| a.value < 18).map(|a| a.at).collect();
        let adult_other = others.iter().any(|a| a.value >= 18);
        // A stated adult age (and no minor one) outweighs a child word ("моей дочери 20 лет").
        let child_words = !(dampen || (adult_other && minor_other.is_empty()));
        if !child && !dampen {
            let mut points: Vec<(u32, u32)> = minor_other.iter().map(|&t| (t, t)).collect();
            if child_words {
                for h in &scan.rules {
                    if self
                        .engine
                        .rules
                        .get(h.rule as usize)
                        .is_some_and(|r| r.signal == Signal::ChildWord)
                    {
                        points.push((h.start, h.end));
                    }
                }
            }
            let (after, before) = (
                self.engine.scoring.child_window,
                self.engine.scoring.child_window_before,
            );
            let near = points.iter().any(|&(ps, pe)| {
                scan.rules.iter().any(|h| {
                    let Some(r) = self.engine.rules.get(h.rule as usize) else {
                        return false;
                    };
                    if !r.signal.is_indicator() || r.weight == 0 {
                        return false;
                    }
                    let same_sentence = self.sentence(ps) == self.sentence(h.start)
                        || self.sentence(pe) == self.sentence(h.end);
                    let close = if h.start > pe {
                        h.start - pe <= after
                    } else if ps > h.end {
                        ps - h.end <= before
                    } else {
                        true
                    };
                    same_sentence && close
                })
            });
            if near {
                child = true;
                self.engine_rule(
                    "child.indicator",
                    "A child is mentioned next to an exploitation indicator: child case".to_owned(),
                );
            }
        }
        self.child = child;
    }

    fn sentence(&self, tok: u32) -> u32 {
        self.tokens.get(tok as usize).map_or(0, |t| t.sentence)
    }

    fn finish(&mut self, input: &TriageInput<'_>, ivr: &ivr::IvrFlags, no_text: bool) {
        if ivr.danger {
            self.risk = RiskLevel::Critical;
            self.engine_rule(
                "ivr.danger",
                "Caller chose \"in danger now\" in the phone menu".to_owned(),
            );
        }
        if ivr.silent {
            self.risk = RiskLevel::Critical;
            self.engine_rule(
                "ivr.silent",
                "Caller chose the silent path: cannot speak safely".to_owned(),
            );
        }
        if ivr.child {
            self.child = true;
            self.engine_rule("ivr.child", "Caller said the victim is under 18".to_owned());
        }
        if ivr.shelter {
            self.shelter = true;
            self.engine_rule(
                "ivr.shelter",
                "Caller said they need a safe place to stay".to_owned(),
            );
        }
        if self.child {
            if self.types.contains(&ExploitationType::Labour) {
                self.types.push(ExploitationType::ChildLabour);
            }
            if self.risk < RiskLevel::High {
                self.risk = RiskLevel::High;
                self.engine_rule("child.priority", "Child case: priority raised to high".to_owned());
            }
        }
        if self.risk == RiskLevel::Low {
            // A low report gets no exploitation type: one work-place word is not a case of forced labour.
            self.types.clear();
        }
        if input.channel == ChannelKind::Voice && no_text && self.risk < RiskLevel::Medium {
            self.risk = RiskLevel::Medium;
            self.engine_rule(
                "channel.voice_untranscribed",
                "Voice message without transcript: listen to the recording".to_owned(),
            );
        }
    }
}
