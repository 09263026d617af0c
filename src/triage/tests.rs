//! Triage tests: the corpus (with per-label precision and recall), totality (property tests), rule-file
//! errors, and the result's text forms.
//!
//! Corpus policy (see `corpus/README.md`): child flag, shelter flag, exploitation types, primary
//! language, script and stated age must match exactly for every case; risk must match exactly except on
//! cases marked `risk_tolerance = 1`, which may be one level off but never below an expected critical.
//! Every language set needs at least 12 cases. The table is printed with `eprintln!`
//! (`cargo test triage::tests::corpus -- --nocapture` to see it when the test passes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde::Deserialize;

use super::*;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::embedded().expect("embedded rules load"))
}

fn sms(text: &str) -> Triage {
    engine().assess(&TriageInput {
        text,
        channel: ChannelKind::Sms,
        ivr_path: None,
    })
}

const CORPUS: &[(&str, &str)] = &[
    ("ru", include_str!("corpus/ru.toml")),
    ("ru_latn", include_str!("corpus/ru_latn.toml")),
    ("kk", include_str!("corpus/kk.toml")),
    ("ky", include_str!("corpus/ky.toml")),
    ("tg", include_str!("corpus/tg.toml")),
    ("uz_latn", include_str!("corpus/uz_latn.toml")),
    ("uz_cyrl", include_str!("corpus/uz_cyrl.toml")),
    ("en", include_str!("corpus/en.toml")),
    ("mixed", include_str!("corpus/mixed.toml")),
    ("extra", include_str!("corpus/extra.toml")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusFile {
    case: Vec<Case>,
}

fn default_channel() -> ChannelKind {
    ChannelKind::Sms
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    text: String,
    risk: RiskLevel,
    child: bool,
    shelter: bool,
    types: Vec<ExploitationType>,
    lang: Language,
    script: Option<Script>,
    age: Option<u8>,
    #[serde(default = "default_channel")]
    channel: ChannelKind,
    ivr: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
    #[serde(default)]
    risk_tolerance: u8,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Counts {
    fn add(&mut self, expected: bool, got: bool) {
        match (expected, got) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => {}
        }
    }
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(self.tp + self.fp)
        }
    }
    fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            f64::from(self.tp) / f64::from(self.tp + self.fn_)
        }
    }
}

#[test]
fn corpus() {
    let e = engine();
    let mut labels: BTreeMap<String, Counts> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut tolerated = Vec::new();
    let mut total = 0;
    let mut risk_exact = 0;
    for (set, text) in CORPUS {
        let file: CorpusFile = toml::from_str(text).unwrap_or_else(|err| panic!("corpus/{set}.toml: {err}"));
        if !matches!(*set, "mixed" | "extra") {
            assert!(
                file.case.len() >= 12,
                "corpus/{set}.toml has {} cases, needs at least 12",
                file.case.len()
            );
        }
        for (i, c) in file.case.iter().enumerate() {
            total += 1;
            let t = e.assess(&TriageInput {
                text: &c.text,
                channel: c.channel,
                ivr_path: c.ivr.as_deref(),
            });
            let mut wrong = Vec::new();
            if t.risk == c.risk {
                risk_exact += 1;
            } else {
                let off = (t.risk as i32 - c.risk as i32).abs();
                if c.risk_tolerance >= 1 && off == 1 && c.risk != RiskLevel::Critical {
                    tolerated.push(format!("{set}#{i}: risk {} expected {}", t.risk, c.risk));
                } else {
                    wrong.push(format!("risk {} (expected {})", t.risk, c.risk));
                }
            }
            if t.child_victim != c.child {
                wrong.push(format!("child {} (expected {})", t.child_victim, c.child));
            }
            if t.shelter_needed != c.shelter {
                wrong.push(format!("shelter {} (expected {})", t.shelter_needed, c.shelter));
            }
            let mut want = c.types.clone();
            want.sort_unstable();
            if t.exploitation_types != want {
                wrong.push(format!("types {:?} (expected {want:?})", t.exploitation_types));
            }
            if t.language.primary != c.lang {
                wrong.push(format!("language {} (expected {})", t.language.primary, c.lang));
            }
            if let Some(s) = c.script
                && t.language.script != s
            {
                wrong.push(format!("script {} (expected {s})", t.language.script));
            }
            if c.age.is_some() && t.stated_age != c.age {
                wrong.push(format!("age {:?} (expected {:?})", t.stated_age, c.age));
            }
            if !wrong.is_empty() {
                let fired: Vec<&str> = t.rules.iter().map(|r| r.id.as_str()).collect();
                failures.push(format!(
                    "{set}#{i} {:?}\n    {}\n    fired: {fired:?}",
                    c.text,
                    wrong.join("; ")
                ));
            }

            labels
                .entry("child_victim".into())
                .or_default()
                .add(c.child, t.child_victim);
            labels
                .entry("shelter_needed".into())
                .or_default()
                .add(c.shelter, t.shelter_needed);
            for ty in ExploitationType::ALL {
                labels
                    .entry(format!("type:{ty}"))
                    .or_default()
                    .add(c.types.contains(ty), t.exploitation_types.contains(ty));
            }
            for r in RiskLevel::ALL {
                labels
                    .entry(format!("risk:{r}"))
                    .or_default()
                    .add(c.risk == *r, t.risk == *r);
            }
            labels
                .entry("risk:high_or_above".into())
                .or_default()
                .add(c.risk >= RiskLevel::High, t.risk >= RiskLevel::High);
            labels
                .entry(format!("lang:{}", c.lang))
                .or_default()
                .add(true, t.language.primary == c.lang);
        }
    }

    eprintln!("\ntriage corpus: {total} cases, risk exact {risk_exact}/{total}");
    eprintln!(
        "{:<28} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "label", "tp", "fp", "fn", "precision", "recall"
    );
    for (label, c) in &labels {
        if c.tp + c.fp + c.fn_ == 0 {
            continue;
        }
        eprintln!(
            "{label:<28} {:>4} {:>4} {:>4} {:>9.2} {:>7.2}",
            c.tp,
            c.fp,
            c.fn_,
            c.precision(),
            c.recall()
        );
    }
    for t in &tolerated {
        eprintln!("tolerated: {t}");
    }
    assert!(
        failures.is_empty(),
        "{} corpus case(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Held-out cases: not used to tune the rules. Prints the outcome; asserts only loose bounds, so a rule
/// edit that makes things clearly worse fails, while honest misses stay visible in the output.
#[test]
fn holdout() {
    let file: CorpusFile = toml::from_str(include_str!("corpus/holdout.toml")).expect("holdout parses");
    let e = engine();
    let (mut risk_exact, mut risk_near, mut child_ok, mut types_ok, mut shelter_ok, mut lang_ok) =
        (0, 0, 0, 0, 0, 0);
    let mut under_high = 0;
    let n = file.case.len();
    for (i, c) in file.case.iter().enumerate() {
        let t = e.assess(&TriageInput {
            text: &c.text,
            channel: c.channel,
            ivr_path: c.ivr.as_deref(),
        });
        let mut want = c.types.clone();
        want.sort_unstable();
        risk_exact += usize::from(t.risk == c.risk);
        risk_near += usize::from((t.risk as i32 - c.risk as i32).abs() <= 1);
        under_high += usize::from(c.risk >= RiskLevel::High && t.risk < RiskLevel::High);
        child_ok += usize::from(t.child_victim == c.child);
        types_ok += usize::from(t.exploitation_types == want);
        shelter_ok += usize::from(t.shelter_needed == c.shelter);
        lang_ok += usize::from(t.language.primary == c.lang);
        if t.risk != c.risk || t.child_victim != c.child || t.exploitation_types != want {
            eprintln!(
                "holdout#{i}: risk {} (want {}), child {} (want {}), types {:?} (want {want:?})",
                t.risk, c.risk, t.child_victim, c.child, t.exploitation_types
            );
        }
    }
    eprintln!(
        "holdout: {n} cases; risk exact {risk_exact}, within one level {risk_near}, high+ missed {under_high}; \
         child {child_ok}, types {types_ok}, shelter {shelter_ok}, language {lang_ok}"
    );
    // Bounds set just under what the rules achieved when this set was written (risk within one level
    // 10/12, child 11/12, language 12/12): a clear regression fails, honest misses stay visible above.
    assert!(
        risk_near * 4 >= n * 3,
        "risk within one level on fewer than 75% of held-out cases"
    );
    assert!(
        child_ok * 100 >= n * 85,
        "child flag right on fewer than 85% of held-out cases"
    );
    assert!(
        lang_ok * 10 >= n * 9,
        "language right on fewer than 90% of held-out cases"
    );
}

// ------------------------------------------------------------------------------------------------
// Totality

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_any_unicode(text in any::<String>(), path in proptest::option::of(any::<String>()), ch in 0u8..4) {
        let channel = [ChannelKind::Sms, ChannelKind::Voice, ChannelKind::Web, ChannelKind::Operator][usize::from(ch)];
        let t = engine().assess(&TriageInput { text: &text, channel, ivr_path: path.as_deref() });
        prop_assert!(t.stated_age.is_none_or(|a| a > 0));
    }

    #[test]
    fn never_panics_on_hotline_alphabets(
        text in "[а-яёәіңғүұқөһӣӯҷҳўa-zA-ZА-Я0-9 '’ʻ.,!?*{}\\-\\n]{0,300}",
        path in "[a-z0-9:>=/ ]{0,30}",
    ) {
        let t = engine().assess(&TriageInput { text: &text, channel: ChannelKind::Sms, ivr_path: Some(&path) });
        // Deterministic.
        let again = engine().assess(&TriageInput { text: &text, channel: ChannelKind::Sms, ivr_path: Some(&path) });
        prop_assert_eq!(t, again);
    }

    #[test]
    fn rule_parser_never_panics(text in any::<String>()) {
        let _ = Engine::from_sources(("scoring.toml", rules::EMBEDDED_SCORING), &[("x.toml", &text)]);
    }
}

#[test]
fn adversarial_inputs_stay_fast_and_total() {
    let long_repeats = [
        "я ".repeat(20_000),
        "мне 15 ".repeat(5_000),
        "не ".repeat(20_000),
        "забрали паспорт ".repeat(5_000),
        "4".repeat(50_000),
        "\u{0301}".repeat(10_000),
        "o'".repeat(20_000),
        "x".repeat(100_000),
    ];
    for text in &long_repeats {
        let start = std::time::Instant::now();
        let _ = sms(text);
        assert!(
            start.elapsed().as_secs() < 5,
            "too slow on a {}-byte input",
            text.len()
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Decisions the issue names explicitly

#[test]
fn ivr_flags_are_honoured() {
    let e = engine();
    let with = |path: &str| {
        e.assess(&TriageInput {
            text: "",
            channel: ChannelKind::Voice,
            ivr_path: Some(path),
        })
    };
    assert_eq!(with("lang:ru>1:danger").risk, RiskLevel::Critical);
    assert_eq!(with("silent").risk, RiskLevel::Critical);
    let child = with("lang:kk>child");
    assert!(child.child_victim);
    assert!(child.risk >= RiskLevel::High);
    assert_eq!(child.language.primary, Language::Kk);
    assert!(with("shelter").shelter_needed);
    // Danger wins over a harmless text.
    let t = e.assess(&TriageInput {
        text: "хочу узнать",
        channel: ChannelKind::Voice,
        ivr_path: Some("danger"),
    });
    assert_eq!(t.risk, RiskLevel::Critical);
    assert!(t.rules.iter().any(|r| r.id == "ivr.danger"));
}

#[test]
fn age_statements_in_six_languages() {
    let cases: &[(&str, u8)] = &[
        ("мне 15 лет", 15),
        ("мне пятнадцать лет", 15),
        ("I'm sixteen", 16),
        ("i am 14 years old", 14),
        ("15 жаста", 15),
        ("мен он бес жастамын", 15),
        ("16 yoshda", 16),
        ("men o'n olti yoshdaman", 16),
        ("ман 14 солаам", 14),
        ("мен 13 жаштамын", 13),
        ("mne 17 let", 17),
    ];
    for (text, age) in cases {
        assert_eq!(sms(text).stated_age, Some(*age), "{text}");
    }
    for text in [
        "9th grade",
        "я школьница",
        "учусь в 8 классе",
        "men 7-sinfda o'qiyman",
    ] {
        assert!(sms(text).child_victim, "{text}");
    }
    // Not ages.
    for text in [
        "мне 3 месяца не платят",
        "I am 5 minutes away",
        "мне 500 должны",
        "im one of them",
    ] {
        let t = sms(text);
        assert!(!t.child_victim, "{text}");
    }
    // 18 is an adult, even at school.
    let t = sms("мне 18 лет, я школьница");
    assert!(!t.child_victim);
    assert_eq!(t.stated_age, Some(18));
}

#[test]
fn child_words_need_an_indicator() {
    assert!(!sms("my child is sick").child_victim);
    assert!(!sms("мой сын болеет, ему 5 лет").child_victim);
    assert!(sms("моему сыну 12, его бьют на работе").child_victim);
    assert!(sms("they beat my son").child_victim);
    // An adult daughter is not a child.
    assert!(!sms("моей дочери 20 лет, ее заставляют работать").child_victim);
}

#[test]
fn language_detection() {
    let cases: &[(&str, Language, Script)] = &[
        ("Сәлеметсіз бе, маған көмек керек", Language::Kk, Script::Cyrl),
        ("Саламатсызбы, мага жардам керек", Language::Ky, Script::Cyrl),
        ("Салом, ба ман ёрӣ лозим аст", Language::Tg, Script::Cyrl),
        ("Assalomu alaykum, menga yordam kerak", Language::Uz, Script::Latn),
        ("Ассалому алайкум, менга ёрдам керак", Language::Uz, Script::Cyrl),
        ("Здравствуйте, мне нужна помощь", Language::Ru, Script::Cyrl),
        ("zdravstvuyte mne nuzhna pomosh", Language::Ru, Script::Latn),
        ("Hello, I need help", Language::En, Script::Latn),
    ];
    for (text, lang, script) in cases {
        let g = sms(text).language;
        assert_eq!((g.primary, g.script), (*lang, *script), "{text}");
    }
    let mixed = sms("Помогите пожалуйста, менга ёрдам керак, хозяин паспорт забрал").language;
    assert!(mixed.primary == Language::Ru || mixed.primary == Language::Uz);
    assert!(!mixed.others.is_empty(), "mixed message keeps the other language");
}

#[test]
fn explanations_never_contain_the_message() {
    let text = "Помогите Zyxwvut забрали паспорт";
    let t = sms(text);
    assert!(!t.rules.is_empty());
    let json = serde_json::to_string(&t).unwrap();
    assert!(!json.to_lowercase().contains("zyxwvut"));
}

// ------------------------------------------------------------------------------------------------
// Result types

#[test]
fn triage_serialises_with_snake_case_labels() {
    let t = sms("Соседи заставляют девочку 12 лет попрошайничать, помогите");
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["risk"], "high");
    assert_eq!(json["exploitation_types"][0], "forced_begging");
    assert_eq!(json["child_victim"], true);
    assert_eq!(json["language"]["primary"], "ru");
    assert_eq!(json["language"]["script"], "cyrl");
    let back: Triage = serde_json::from_value(json).unwrap();
    assert_eq!(back, t);
}

#[test]
fn labels_round_trip_through_text() {
    for r in RiskLevel::ALL {
        assert_eq!(RiskLevel::from_str(r.as_str()), Ok(*r));
    }
    for t in ExploitationType::ALL {
        assert_eq!(ExploitationType::from_str(t.as_str()), Ok(*t));
        let json = serde_json::to_string(t).unwrap();
        assert_eq!(json, format!("\"{}\"", t.as_str()));
    }
    for l in Language::ALL {
        assert_eq!(Language::from_str(l.as_str()), Ok(*l));
    }
    assert!(RiskLevel::from_str("urgent").is_err());
    assert_eq!(ExploitationType::DomesticServitude.as_str(), "domestic_servitude");
    assert!(RiskLevel::Critical > RiskLevel::High && RiskLevel::High > RiskLevel::Medium);
    assert!(RiskLevel::Medium > RiskLevel::Low);
    let err = Language::from_str("tk").unwrap_err().to_string();
    assert!(err.contains("tk") && err.contains("ru, kk"), "{err}");
}

#[test]
fn engine_is_shareable() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Engine>();
}

// ------------------------------------------------------------------------------------------------
// Rule-file errors

fn load_err(file: &str) -> RuleFileError {
    Engine::from_sources(
        ("scoring.toml", rules::EMBEDDED_SCORING),
        &[("broken.toml", file)],
    )
    .unwrap_err()
}

const GOOD_HEAD: &str = "language = \"ru\"\n\n[[rule]]\nid = \"x.one\"\n";

#[test]
fn broken_rule_files_name_file_and_line() {
    let cases: &[(String, usize, &str)] = &[
        // 1. TOML syntax
        (format!("{GOOD_HEAD}signal = \"violence\nweight = 1\n"), 5, ""),
        // 2. unknown signal
        (
            format!("{GOOD_HEAD}signal = \"violense\"\nweight = 10\nexplain = \"x\"\nphrases = [\"бьют\"]\n"),
            5,
            "violense",
        ),
        // 3. weight out of range
        (
            format!(
                "{GOOD_HEAD}signal = \"violence\"\nweight = 150\nexplain = \"x\"\nphrases = [\"бьют\"]\n"
            ),
            6,
            "150",
        ),
        // 4. empty phrase
        (
            format!(
                "{GOOD_HEAD}signal = \"violence\"\nweight = 10\nexplain = \"x\"\nphrases = [\n  \"бьют\",\n  \"\",\n]\n"
            ),
            10,
            "empty",
        ),
        // 5. unknown exploitation type
        (
            format!(
                "{GOOD_HEAD}signal = \"violence\"\nweight = 10\ntypes = [\"labor\"]\nexplain = \"x\"\nphrases = [\"бьют\"]\n"
            ),
            7,
            "labor",
        ),
        // 6. duplicate id in one file
        (
            format!(
                "{GOOD_HEAD}signal = \"violence\"\nweight = 10\nexplain = \"x\"\nphrases = [\"бьют\"]\n\n[[rule]]\nid = \"x.one\"\nsignal = \"violence\"\nweight = 10\nexplain = \"x\"\nphrases = [\"бьют\"]\n"
            ),
            11,
            "duplicate",
        ),
        // 7. unknown language
        ("language = \"tk\"\n".to_owned(), 1, "tk"),
        // 8. unknown key (typo)
        (
            format!("{GOOD_HEAD}signal = \"violence\"\nweigth = 10\nexplain = \"x\"\nphrases = [\"бьют\"]\n"),
            6,
            "weigth",
        ),
        // 9. punctuation-only phrase
        (
            format!("{GOOD_HEAD}signal = \"violence\"\nweight = 10\nexplain = \"x\"\nphrases = [\"!!!\"]\n"),
            8,
            "no letters",
        ),
        // 10. context rule with a weight
        (
            format!("{GOOD_HEAD}signal = \"media\"\nweight = 10\nexplain = \"x\"\nphrases = [\"фильм\"]\n"),
            6,
            "must be 0",
        ),
        // 11. too short stem
        (
            format!("{GOOD_HEAD}signal = \"violence\"\nweight = 10\nexplain = \"x\"\nphrases = [\"бь*\"]\n"),
            8,
            "too short",
        ),
        // 12. age pattern without {n}
        (
            "language = \"ru\"\n[age]\nself = [\"мне лет\"]\n".to_owned(),
            3,
            "{n}",
        ),
    ];
    for (i, (file, line, needle)) in cases.iter().enumerate() {
        let err = load_err(file);
        let msg = err.to_string();
        assert_eq!(err.file(), Some("broken.toml"), "case {}: {msg}", i + 1);
        assert_eq!(err.line(), Some(*line), "case {}: {msg}", i + 1);
        assert!(
            msg.contains("broken.toml") && msg.contains(&format!("line {line}")),
            "case {}: {msg}",
            i + 1
        );
        assert!(msg.contains(needle), "case {}: {msg}", i + 1);
    }
}

#[test]
fn duplicate_ids_across_files_name_the_first_file() {
    let a = "language = \"ru\"\n[[rule]]\nid = \"dup\"\nsignal = \"violence\"\nweight = 1\nexplain = \"x\"\nphrases = [\"бьют\"]\n";
    let err = Engine::from_sources(
        ("scoring.toml", rules::EMBEDDED_SCORING),
        &[("a.toml", a), ("b.toml", a)],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("b.toml") && err.contains("line 3") && err.contains("a.toml"),
        "{err}"
    );
}

#[test]
fn broken_scoring_file_is_refused() {
    let bad = rules::EMBEDDED_SCORING.replace("high_at = 50", "high_at = 10");
    let err = Engine::from_sources(("scoring.toml", &bad), &[]).unwrap_err();
    assert_eq!(err.file(), Some("scoring.toml"));
    assert!(err.to_string().contains("high_at"), "{err}");
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("komek-triage-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rules_dir_loads_edited_copies_and_reports_broken_ones() {
    let dir = temp_dir("dir");
    std::fs::write(dir.join("scoring.toml"), rules::EMBEDDED_SCORING).unwrap();
    for (name, text) in rules::EMBEDDED {
        std::fs::write(dir.join(name), text).unwrap();
    }
    std::fs::write(dir.join("README.md"), "not a rule file").unwrap();
    let from_dir = Engine::from_dir(&dir).unwrap();
    assert_eq!(from_dir.rule_count(), engine().rule_count());
    let msg = "pomogite zabrali pasport";
    let input = TriageInput {
        text: msg,
        channel: ChannelKind::Sms,
        ivr_path: None,
    };
    assert_eq!(from_dir.assess(&input), engine().assess(&input));

    // Break one line of kk.toml.
    let kk = rules::EMBEDDED.iter().find(|(n, _)| *n == "kk.toml").unwrap().1;
    let line = kk.lines().position(|l| l.starts_with("weight = 35")).unwrap() + 1;
    let broken = kk.replacen("weight = 35", "weight = -5", 1);
    std::fs::write(dir.join("kk.toml"), broken).unwrap();
    let err = Engine::from_dir(&dir).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("kk.toml") && text.contains(&format!("line {line}")) && text.contains("-5"),
        "{text}"
    );

    // No scoring file.
    std::fs::remove_file(dir.join("scoring.toml")).unwrap();
    assert!(
        Engine::from_dir(&dir)
            .unwrap_err()
            .to_string()
            .contains("scoring.toml")
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Missing directory.
    assert!(matches!(
        Engine::from_dir(dir.join("nope")),
        Err(RuleFileError::Io { .. })
    ));
}
