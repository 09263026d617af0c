//! Rule files: their format, loading and validation.
//!
//! This module owns the boundary between the TOML files NGO staff edit and the engine. It parses each
//! file, checks every label, weight, phrase and id, and turns phrases into normalised word patterns. Any
//! problem becomes a [`RuleFileError`] naming the file and the line, so a broken edit is refused at start
//! with a message a non-programmer can act on, never half-loaded. The format itself is described for
//! NGO staff in `rules/README.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;

use super::normalize::normalize;
use super::types::{ExploitationType, Language};

/// A rule file (or rule directory) that cannot be used. `Display` gives file, line and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    /// A file or directory could not be read.
    #[error("triage rules: cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid TOML, or says something the engine cannot accept.
    #[error("triage rules: {file}, line {line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    /// The set of files is incomplete (no `scoring.toml`, no language file).
    #[error("triage rules: {dir}: {message}")]
    Set { dir: String, message: String },
}

impl RuleFileError {
    /// The file the error is about, when it is about one file.
    pub fn file(&self) -> Option<&str> {
        match self {
            RuleFileError::Invalid { file, .. } => Some(file),
            RuleFileError::Io { path, .. } => path.to_str(),
            RuleFileError::Set { .. } => None,
        }
    }

    /// The 1-based line the error is about, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            RuleFileError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// What a rule says about a report. Every rule file uses these names (`signal = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Signal {
    // Palermo "act"
    Recruitment,
    Transport,
    Sold,
    Kidnapping,
    // Palermo "means" and the ILO forced-labour indicators
    Deception,
    DocumentsTaken,
    DebtBondage,
    WagesWithheld,
    LockedIn,
    Threats,
    Violence,
    Isolation,
    AbusiveConditions,
    // Palermo "purpose": words naming the exploitation itself
    Exploitation,
    // Urgency and needs
    HelpRequest,
    Danger,
    Escape,
    Shelter,
    // Children
    ChildSelf,
    ChildWord,
    // Context that lowers the risk
    Media,
    Past,
}

impl Signal {
    pub(crate) const ALL: &'static [(Signal, &'static str)] = &[
        (Signal::Recruitment, "recruitment"),
        (Signal::Transport, "transport"),
        (Signal::Sold, "sold"),
        (Signal::Kidnapping, "kidnapping"),
        (Signal::Deception, "deception"),
        (Signal::DocumentsTaken, "documents_taken"),
        (Signal::DebtBondage, "debt_bondage"),
        (Signal::WagesWithheld, "wages_withheld"),
        (Signal::LockedIn, "locked_in"),
        (Signal::Threats, "threats"),
        (Signal::Violence, "violence"),
        (Signal::Isolation, "isolation"),
        (Signal::AbusiveConditions, "abusive_conditions"),
        (Signal::Exploitation, "exploitation"),
        (Signal::HelpRequest, "help_request"),
        (Signal::Danger, "danger"),
        (Signal::Escape, "escape"),
        (Signal::Shelter, "shelter"),
        (Signal::ChildSelf, "child_self"),
        (Signal::ChildWord, "child_word"),
        (Signal::Media, "media"),
        (Signal::Past, "past"),
    ];

    fn names() -> String {
        Signal::ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
    }

    /// Context rules change how other rules count; they carry no weight themselves.
    pub(crate) fn is_context(self) -> bool {
        matches!(self, Signal::Media | Signal::Past)
    }

    /// Signals that say something bad is happening to someone (used for the child-word proximity test).
    pub(crate) fn is_indicator(self) -> bool {
        !matches!(
            self,
            Signal::HelpRequest
                | Signal::Shelter
                | Signal::ChildSelf
                | Signal::ChildWord
                | Signal::Media
                | Signal::Past
                | Signal::Recruitment
                | Signal::Transport
        )
    }
}

impl FromStr for Signal {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Signal::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(sig, _)| *sig)
            .ok_or(())
    }
}

/// One word of a phrase after normalisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatWord {
    /// A whole word, or (with `prefix`) any word starting with `text` (`*` in the file).
    Word { text: String, prefix: bool },
    /// `{n}`: a number in digits or number words (age patterns only).
    Number,
}

/// A phrase: words that must appear in order, with at most `phrase_gap` other words between them.
#[derive(Debug, Clone)]
pub(crate) struct Phrase {
    pub words: Vec<PatWord>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub id: String,
    pub signal: Signal,
    pub weight: u32,
    pub types: Vec<ExploitationType>,
    pub shelter: bool,
    pub explain: String,
    pub phrases: Vec<Phrase>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgeKind {
    /// The writer's own age ("мне 15 лет").
    SelfAge,
    /// Someone's age ("девочке 12 лет", "15-летняя").
    Other,
    /// A school grade ("9 класс"); 1–11 means a child.
    Grade,
}

#[derive(Debug, Clone)]
pub(crate) struct AgePattern {
    pub kind: AgeKind,
    pub phrase: Phrase,
}

/// One language file after validation.
#[derive(Debug, Clone)]
pub(crate) struct RuleFile {
    #[allow(dead_code)] // kept for diagnostics
    pub name: String,
    pub language: Language,
    pub negation_before: Vec<String>,
    pub negation_after: Vec<String>,
    pub hint_words: Vec<String>,
    pub numbers: Vec<(String, u32)>,
    pub age: Vec<AgePattern>,
    /// Words that, right after a number, show it is not an age ("3 дня", "5 months").
    pub age_units: Vec<String>,
    pub rules: Vec<Rule>,
}

/// `scoring.toml`: how indicator weights add up to a risk level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scoring {
    pub medium_at: u32,
    pub high_at: u32,
    pub critical_at: u32,
    pub media_percent: u32,
    pub phrase_gap: u32,
    pub child_window: u32,
    pub child_window_before: u32,
}

pub(crate) const MAX_PHRASE_WORDS: usize = 8;

// ---------------------------------------------------------------------------------------------------
// Raw (serde) shapes

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    language: Spanned<String>,
    #[serde(default)]
    script: Option<Spanned<String>>,
    #[serde(default)]
    negation_before: Vec<Spanned<String>>,
    #[serde(default)]
    negation_after: Vec<Spanned<String>>,
    #[serde(default)]
    hint_words: Vec<Spanned<String>>,
    #[serde(default)]
    numbers: BTreeMap<String, Spanned<i64>>,
    #[serde(default)]
    age: RawAge,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAge {
    #[serde(default, rename = "self")]
    self_age: Vec<Spanned<String>>,
    #[serde(default)]
    other: Vec<Spanned<String>>,
    #[serde(default)]
    grade: Vec<Spanned<String>>,
    #[serde(default)]
    units: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    signal: Spanned<String>,
    weight: Spanned<i64>,
    #[serde(default)]
    types: Vec<Spanned<String>>,
    #[serde(default)]
    shelter: bool,
    explain: Spanned<String>,
    phrases: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScoring {
    medium_at: Spanned<i64>,
    high_at: Spanned<i64>,
    critical_at: Spanned<i64>,
    media_percent: Spanned<i64>,
    phrase_gap: Spanned<i64>,
    child_window: Spanned<i64>,
    child_window_before: Spanned<i64>,
}

// ---------------------------------------------------------------------------------------------------
// Loading

/// The rule files compiled into the binary.
pub(crate) const EMBEDDED: &[(&str, &str)] = &[
    ("ru.toml", include_str!("rules/ru.toml")),
    ("ru_latn.toml", include_str!("rules/ru_latn.toml")),
    ("kk.toml", include_str!("rules/kk.toml")),
    ("ky.toml", include_str!("rules/ky.toml")),
    ("tg.toml", include_str!("rules/tg.toml")),
    ("uz.toml", include_str!("rules/uz.toml")),
    ("en.toml", include_str!("rules/en.toml")),
];
pub(crate) const EMBEDDED_SCORING: &str = include_str!("rules/scoring.toml");
pub(crate) const SCORING_FILE: &str = "scoring.toml";

/// A whole rule set, validated.
#[derive(Debug, Clone)]
pub(crate) struct RuleSet {
    pub scoring: Scoring,
    pub files: Vec<RuleFile>,
}

/// Parses and validates a set of files given as `(file name, contents)`; `scoring` is `scoring.toml`.
pub(crate) fn load_set(scoring: (&str, &str), files: &[(&str, &str)]) -> Result<RuleSet, RuleFileError> {
    let scoring = parse_scoring(scoring.0, scoring.1)?;
    let mut ids: HashMap<String, (String, usize)> = HashMap::new();
    let mut out = Vec::with_capacity(files.len());
    for (name, text) in files {
        let file = parse_file(name, text, &mut ids)?;
        out.push(file);
    }
    Ok(RuleSet { scoring, files: out })
}

/// Reads every `*.toml` in `dir`: `scoring.toml` and one or more language files.
pub(crate) fn load_dir(dir: &Path) -> Result<RuleSet, RuleFileError> {
    let io = |path: &Path, source| RuleFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            names.push(path);
        }
    }
    names.sort();
    let mut scoring = None;
    let mut files = Vec::new();
    for path in names {
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        let shown = path.display().to_string();
        if path.file_name().is_some_and(|n| n == SCORING_FILE) {
            scoring = Some((shown, text));
        } else {
            files.push((shown, text));
        }
    }
    let dir_shown = dir.display().to_string();
    let Some(scoring) = scoring else {
        return Err(RuleFileError::Set {
            dir: dir_shown,
            message: format!("no {SCORING_FILE} (the risk thresholds) in this directory"),
        });
    };
    if files.is_empty() {
        return Err(RuleFileError::Set {
            dir: dir_shown,
            message: "no language rule files (*.toml) in this directory".to_owned(),
        });
    }
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    load_set((&scoring.0, &scoring.1), &borrowed)
}

struct Ctx<'a> {
    name: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn err<T>(&self, span: std::ops::Range<usize>, message: impl fmt::Display) -> Result<T, RuleFileError> {
        Err(RuleFileError::Invalid {
            file: self.name.to_owned(),
            line: self.line(span.start),
            message: message.to_string(),
        })
    }

    fn toml<T: serde::de::DeserializeOwned>(&self) -> Result<T, RuleFileError> {
        toml::from_str(self.text).map_err(|e| RuleFileError::Invalid {
            file: self.name.to_owned(),
            line: e.span().map_or(1, |s| self.line(s.start)),
            message: e.message().trim().to_owned(),
        })
    }

    fn ranged(&self, v: &Spanned<i64>, what: &str, lo: i64, hi: i64) -> Result<u32, RuleFileError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return self.err(
                v.span(),
                format!("{what} {x} is out of range (allowed: {lo} to {hi})"),
            );
        }
        u32::try_from(x).or_else(|_| self.err(v.span(), format!("{what} {x} is out of range")))
    }
}

fn parse_scoring(name: &str, text: &str) -> Result<Scoring, RuleFileError> {
    let cx = Ctx { name, text };
    let raw: RawScoring = cx.toml()?;
    let s = Scoring {
        medium_at: cx.ranged(&raw.medium_at, "medium_at", 1, 10_000)?,
        high_at: cx.ranged(&raw.high_at, "high_at", 1, 10_000)?,
        critical_at: cx.ranged(&raw.critical_at, "critical_at", 1, 10_000)?,
        media_percent: cx.ranged(&raw.media_percent, "media_percent", 0, 100)?,
        phrase_gap: cx.ranged(&raw.phrase_gap, "phrase_gap", 0, 5)?,
        child_window: cx.ranged(&raw.child_window, "child_window", 0, 50)?,
        child_window_before: cx.ranged(&raw.child_window_before, "child_window_before", 0, 50)?,
    };
    if s.medium_at >= s.high_at {
        return cx.err(raw.high_at.span(), "high_at must be greater than medium_at");
    }
    if s.high_at >= s.critical_at {
        return cx.err(raw.critical_at.span(), "critical_at must be greater than high_at");
    }
    Ok(s)
}

fn parse_file(
    name: &str,
    text: &str,
    ids: &mut HashMap<String, (String, usize)>,
) -> Result<RuleFile, RuleFileError> {
    let cx = Ctx { name, text };
    let raw: RawFile = cx.toml()?;
    let language = Language::from_str(raw.language.get_ref()).or_else(|e| cx.err(raw.language.span(), e))?;
    if let Some(script) = &raw.script
        && !matches!(script.get_ref().as_str(), "cyrl" | "latn" | "both")
    {
        return cx.err(
            script.span(),
            format!(
                "unknown script `{}` (expected one of: cyrl, latn, both)",
                script.get_ref()
            ),
        );
    }
    let words = |list: &[Spanned<String>], what: &str| -> Result<Vec<String>, RuleFileError> {
        let mut out = Vec::with_capacity(list.len());
        for w in list {
            out.push(single_word(&cx, w, what)?);
        }
        Ok(out)
    };
    let negation_before = words(&raw.negation_before, "negation word")?;
    let negation_after = words(&raw.negation_after, "negation word")?;
    let hint_words = words(&raw.hint_words, "hint word")?;
    let age_units = words(&raw.age.units, "age unit word")?;

    let mut numbers = Vec::with_capacity(raw.numbers.len());
    for (word, value) in &raw.numbers {
        let v = cx.ranged(value, &format!("number word `{word}` value"), 0, 1000)?;
        let spanned = Spanned::new(value.span(), word.clone());
        numbers.push((single_word(&cx, &spanned, "number word")?, v));
    }

    let mut age = Vec::new();
    for (kind, list) in [
        (AgeKind::SelfAge, &raw.age.self_age),
        (AgeKind::Other, &raw.age.other),
        (AgeKind::Grade, &raw.age.grade),
    ] {
        for p in list {
            let phrase = parse_phrase(&cx, p, true)?;
            let slots = phrase.words.iter().filter(|w| **w == PatWord::Number).count();
            if slots != 1 {
                return cx.err(
                    p.span(),
                    format!("age pattern `{}` must contain `{{n}}` exactly once", p.get_ref()),
                );
            }
            age.push(AgePattern { kind, phrase });
        }
    }

    let mut rules = Vec::with_capacity(raw.rule.len());
    for r in &raw.rule {
        let id = r.id.get_ref().trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return cx.err(
                r.id.span(),
                format!("rule id `{id}` must be non-empty ASCII letters, digits, `_`, `.` or `-`"),
            );
        }
        let line = cx.line(r.id.span().start);
        if let Some((first_file, first_line)) = ids.get(id) {
            return cx.err(
                r.id.span(),
                format!("duplicate rule id `{id}` (first defined in {first_file}, line {first_line})"),
            );
        }
        ids.insert(id.to_owned(), (name.to_owned(), line));

        let signal = Signal::from_str(r.signal.get_ref()).or_else(|()| {
            cx.err(
                r.signal.span(),
                format!(
                    "unknown signal `{}` (expected one of: {})",
                    r.signal.get_ref(),
                    Signal::names()
                ),
            )
        })?;
        let weight = cx.ranged(&r.weight, "weight", 0, 100)?;
        if signal.is_context() && weight != 0 {
            return cx.err(
                r.weight.span(),
                format!(
                    "a `{}` rule only changes how other rules count: its weight must be 0",
                    r.signal.get_ref()
                ),
            );
        }
        let mut types = Vec::with_capacity(r.types.len());
        for t in &r.types {
            let ty = ExploitationType::from_str(t.get_ref()).or_else(|e| cx.err(t.span(), e))?;
            if !types.contains(&ty) {
                types.push(ty);
            }
        }
        let explain = r.explain.get_ref().trim();
        if explain.is_empty() {
            return cx.err(
                r.explain.span(),
                format!("rule `{id}` needs an explanation (`explain`)"),
            );
        }
        if r.phrases.get_ref().is_empty() {
            return cx.err(r.phrases.span(), format!("rule `{id}` has no phrases"));
        }
        let mut phrases = Vec::with_capacity(r.phrases.get_ref().len());
        for p in r.phrases.get_ref() {
            phrases.push(parse_phrase(&cx, p, false)?);
        }
        rules.push(Rule {
            id: id.to_owned(),
            signal,
            weight,
            types,
            shelter: r.shelter,
            explain: explain.to_owned(),
            phrases,
        });
    }
    Ok(RuleFile {
        name: name.to_owned(),
        language,
        negation_before,
        negation_after,
        hint_words,
        numbers,
        age,
        age_units,
        rules,
    })
}

/// A list entry that must normalise to exactly one whole word.
fn single_word(cx: &Ctx<'_>, w: &Spanned<String>, what: &str) -> Result<String, RuleFileError> {
    let n = normalize(w.get_ref());
    match n.tokens.as_slice() {
        [t] => Ok(n.text[t.start as usize..t.end as usize].to_owned()),
        [] => cx.err(w.span(), format!("empty {what}")),
        _ => cx.err(
            w.span(),
            format!("{what} `{}` must be a single word", w.get_ref()),
        ),
    }
}

/// Splits a phrase into normalised words; `*` at the end of a word makes it a stem, `{n}` is a number.
fn parse_phrase(cx: &Ctx<'_>, p: &Spanned<String>, age: bool) -> Result<Phrase, RuleFileError> {
    let raw = p.get_ref();
    let mut words = Vec::new();
    for piece in raw.split_whitespace() {
        if piece == "{n}" {
            if !age {
                return cx.err(
                    p.span(),
                    format!("`{{n}}` is only allowed in age patterns (in `{raw}`)"),
                );
            }
            words.push(PatWord::Number);
            continue;
        }
        let (body, prefix) = match piece.strip_suffix('*') {
            Some(b) => (b, true),
            None => (piece, false),
        };
        if body.contains('*') || body.contains('{') || body.contains('}') {
            return cx.err(
                p.span(),
                format!("`{piece}` in phrase `{raw}`: `*` may only end a word, `{{n}}` must stand alone"),
            );
        }
        let n = normalize(body);
        let count = n.tokens.len();
        for (i, t) in n.tokens.iter().enumerate() {
            let text = n.text[t.start as usize..t.end as usize].to_owned();
            words.push(PatWord::Word {
                text,
                prefix: prefix && i + 1 == count,
            });
        }
        if count == 0 {
            return cx.err(
                p.span(),
                format!("`{piece}` in phrase `{raw}` has no letters or digits"),
            );
        }
    }
    if words.is_empty() {
        return cx.err(p.span(), "empty phrase");
    }
    if !words.iter().any(|w| matches!(w, PatWord::Word { .. })) {
        return cx.err(p.span(), format!("phrase `{raw}` needs at least one word"));
    }
    if words.len() > MAX_PHRASE_WORDS {
        return cx.err(
            p.span(),
            format!("phrase `{raw}` is longer than {MAX_PHRASE_WORDS} words"),
        );
    }
    for w in &words {
        if let PatWord::Word { text, prefix: true } = w
            && text.chars().count() < 3
        {
            return cx.err(
                p.span(),
                format!("stem `{text}*` in phrase `{raw}` is too short: give at least 3 letters"),
            );
        }
    }
    Ok(Phrase { words })
}
