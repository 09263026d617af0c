//! The compiled matcher: one aho-corasick automaton for every word of every rule file, and the scan that
//! turns one pass of it over a normalised message into rule hits, age statements and language votes.
//!
//! This module owns the "one pass" promise. Each distinct word pattern of every phrase, negation word,
//! number word, age unit and language hint word becomes one automaton pattern (`" word "` for a whole
//! word, `" stem"` for a stem), so word boundaries come from the automaton itself. A single overlapping
//! scan reports every occurrence; phrases are then assembled from those occurrences by token position
//! (words in order, at most `phrase_gap` words apart), with negation words next to a phrase cancelling it.
//! There is no regular expression and no per-rule pass over the text.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::HashMap;

use super::normalize::Normalized;
use super::rules::{AgeKind, MAX_PHRASE_WORDS, PatWord, RuleSet};
use super::types::Language;

#[derive(Debug, Clone, Copy)]
enum Use {
    Slot { phrase: u32, slot: u8 },
    NegBefore,
    NegAfter,
    Hint(Language),
    Number(u32),
    Unit,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner {
    Rule(u32),
    Age(AgeKind),
}

#[derive(Debug, Clone)]
struct CPhrase {
    owner: Owner,
    lang: Language,
    /// `true` for a `{n}` slot.
    number_slots: Vec<bool>,
    word_slots: u32,
    /// Language votes a hit earns: 0 when the same phrase is in several languages' files.
    votes: u32,
}

/// One occurrence of a phrase word (or, in the number list, a number) by token positions, inclusive.
#[derive(Debug, Clone, Copy, Default)]
struct Hit {
    phrase: u32,
    slot: u8,
    start: u32,
    end: u32,
    value: u32,
}

/// Where a rule fired first (not negated), by token index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleHit {
    pub rule: u32,
    pub start: u32,
    pub end: u32,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AgeHit {
    pub kind: AgeKind,
    pub value: u32,
    /// Token index of the number.
    pub at: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Sorted by rule index; one entry per fired rule.
    pub rules: Vec<RuleHit>,
    pub ages: Vec<AgeHit>,
    pub lang_votes: [u32; 6],
}

#[derive(Debug)]
pub(crate) struct Matcher {
    ac: AhoCorasick,
    /// Per automaton pattern: the range of its uses in `uses`.
    use_ranges: Vec<(u32, u32)>,
    uses: Vec<Use>,
    phrases: Vec<CPhrase>,
    gap: u32,
    rule_count: usize,
}

const TOK_NEG_BEFORE: u8 = 1;
const TOK_NEG_AFTER: u8 = 2;
const TOK_UNIT: u8 = 4;
/// Bound on phrase-assembly steps per phrase, so adversarial repetition stays cheap.
const SEARCH_BUDGET: u32 = 4096;

impl Matcher {
    /// Builds the automaton. Rule indices are the position of a rule in the files, in order.
    pub(crate) fn build(set: &RuleSet) -> Result<Matcher, aho_corasick::BuildError> {
        let mut patterns: Vec<String> = Vec::new();
        let mut by_text: HashMap<String, usize> = HashMap::new();
        let mut uses_per: Vec<Vec<Use>> = Vec::new();
        let mut add = |text: &str, prefix: bool, u: Use| {
            let key = if prefix {
                format!(" {text}")
            } else {
                format!(" {text} ")
            };
            let id = *by_text.entry(key.clone()).or_insert_with(|| {
                patterns.push(key);
                uses_per.push(Vec::new());
                patterns.len() - 1
            });
            if let Some(list) = uses_per.get_mut(id) {
                list.push(u);
            }
        };
        let mut phrases = Vec::new();
        let mut phrase_langs: HashMap<String, Vec<Language>> = HashMap::new();
        let mut phrase_keys: Vec<String> = Vec::new();
        let mut rule_index = 0u32;
        for file in &set.files {
            let lang = file.language;
            for w in &file.negation_before {
                add(w, false, Use::NegBefore);
            }
            for w in &file.negation_after {
                add(w, false, Use::NegAfter);
            }
            for w in &file.hint_words {
                add(w, false, Use::Hint(lang));
            }
            for (w, v) in &file.numbers {
                add(w, false, Use::Number(*v));
            }
            for w in &file.age_units {
                add(w, true, Use::Unit);
            }
            let mut add_phrase = |words: &[PatWord], owner: Owner, phrases: &mut Vec<CPhrase>| {
                let phrase = u32::try_from(phrases.len()).unwrap_or(u32::MAX);
                let mut number_slots = Vec::with_capacity(words.len());
                let mut word_slots = 0;
                for (slot, w) in words.iter().enumerate() {
                    let slot = u8::try_from(slot).unwrap_or(u8::MAX);
                    match w {
                        PatWord::Word { text, prefix } => {
                            add(text, *prefix, Use::Slot { phrase, slot });
                            number_slots.push(false);
                            word_slots += 1;
                        }
                        PatWord::Number => number_slots.push(true),
                    }
                }
                phrases.push(CPhrase {
                    owner,
                    lang,
                    number_slots,
                    word_slots,
                    votes: 2 * word_slots,
                });
                let key = format!("{words:?}");
                let langs = phrase_langs.entry(key).or_default();
                if !langs.contains(&lang) {
                    langs.push(lang);
                }
                phrase_keys.push(format!("{words:?}"));
            };
            for age in &file.age {
                add_phrase(&age.phrase.words, Owner::Age(age.kind), &mut phrases);
            }
            for rule in &file.rules {
                for p in &rule.phrases {
                    add_phrase(&p.words, Owner::Rule(rule_index), &mut phrases);
                }
                rule_index += 1;
            }
        }
        for (phrase, key) in phrases.iter_mut().zip(&phrase_keys) {
            if phrase_langs.get(key).is_some_and(|l| l.len() > 1) {
                phrase.votes = 0;
            }
        }
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&patterns)?;
        let mut use_ranges = Vec::with_capacity(uses_per.len());
        let mut uses = Vec::new();
        for list in uses_per {
            let start = u32::try_from(uses.len()).unwrap_or(u32::MAX);
            uses.extend(list);
            use_ranges.push((start, u32::try_from(uses.len()).unwrap_or(u32::MAX)));
        }
        Ok(Matcher {
            ac,
            use_ranges,
            uses,
            phrases,
            gap: set.scoring.phrase_gap,
            rule_count: rule_index as usize,
        })
    }

    /// Scans one normalised message.
    pub(crate) fn scan(&self, norm: &Normalized) -> Scan {
        let tokens = &norm.tokens;
        let n = tokens.len();
        let mut scan = Scan::default();
        if n == 0 {
            return scan;
        }
        let mut flags = vec![0u8; n];
        let mut word_numbers: Vec<(u32, u32)> = Vec::new();
        let mut hits: Vec<Hit> = Vec::with_capacity(64);
        let mut hinted: Vec<(u32, Language)> = Vec::new();

        for m in self.ac.find_overlapping_iter(&norm.text) {
            // Every pattern starts with the space before a token.
            let Ok(tok) = tokens.binary_search_by_key(&(m.start() as u64 + 1), |t| u64::from(t.start)) else {
                continue;
            };
            let tok = u32::try_from(tok).unwrap_or(u32::MAX);
            let Some(&(a, b)) = self.use_ranges.get(m.pattern().as_usize()) else {
                continue;
            };
            for u in self.uses.get(a as usize..b as usize).unwrap_or(&[]) {
                match *u {
                    Use::Slot { phrase, slot } => hits.push(Hit {
                        phrase,
                        slot,
                        start: tok,
                        end: tok,
                        value: 0,
                    }),
                    Use::NegBefore => flags[tok as usize] |= TOK_NEG_BEFORE,
                    Use::NegAfter => flags[tok as usize] |= TOK_NEG_AFTER,
                    Use::Unit => flags[tok as usize] |= TOK_UNIT,
                    Use::Number(v) => word_numbers.push((tok, v)),
                    Use::Hint(lang) => hinted.push((tok, lang)),
                }
            }
        }

        hinted.sort_unstable_by_key(|(t, l)| (*t, l.index()));
        hinted.dedup_by_key(|(t, l)| (*t, l.index()));
        for (_, lang) in &hinted {
            scan.lang_votes[lang.index()] += 1;
        }

        let numbers = number_spans(norm, &mut word_numbers);
        if hits.is_empty() {
            return scan;
        }
        hits.sort_unstable_by_key(|h| (h.phrase, h.slot, h.start));
        hits.dedup_by_key(|h| (h.phrase, h.slot, h.start));

        let mut fired = vec![false; self.rule_count];
        let mut i = 0;
        while i < hits.len() {
            let p = hits[i].phrase;
            let mut j = i + 1;
            while j < hits.len() && hits[j].phrase == p {
                j += 1;
            }
            let group = &hits[i..j];
            i = j;
            let Some(phrase) = self.phrases.get(p as usize) else {
                continue;
            };
            if let Owner::Rule(r) = phrase.owner
                && fired.get(r as usize).copied().unwrap_or(true)
            {
                continue;
            }
            // Candidate lists per slot.
            let mut cands: [&[Hit]; MAX_PHRASE_WORDS] = [&[]; MAX_PHRASE_WORDS];
            let slots = phrase.number_slots.len().min(MAX_PHRASE_WORDS);
            let mut present = 0u32;
            for (s, is_num) in phrase.number_slots.iter().take(slots).enumerate() {
                if *is_num {
                    cands[s] = &numbers;
                } else {
                    let lo = group.partition_point(|h| (h.slot as usize) < s);
                    let hi = group.partition_point(|h| (h.slot as usize) <= s);
                    cands[s] = &group[lo..hi];
                    if hi > lo {
                        present += 1;
                    }
                }
            }
            if present < phrase.word_slots || cands[..slots].iter().any(|c| c.is_empty()) {
                continue;
            }
            let mut chain = [Hit::default(); MAX_PHRASE_WORDS];
            let mut budget = SEARCH_BUDGET;
            match phrase.owner {
                Owner::Rule(r) => {
                    let mut accept = |c: &[Hit]| !negated(c, &flags);
                    if search(
                        &cands[..slots],
                        0,
                        None,
                        self.gap,
                        &mut chain,
                        &mut budget,
                        &mut accept,
                    ) {
                        if let Some(f) = fired.get_mut(r as usize) {
                            *f = true;
                        }
                        let (start, end) = (chain[0].start, chain[slots - 1].end);
                        scan.rules.push(RuleHit { rule: r, start, end });
                        scan.lang_votes[phrase.lang.index()] += phrase.votes;
                    }
                }
                Owner::Age(kind) => {
                    let mut found: Option<(u32, u32)> = None;
                    let mut accept = |c: &[Hit]| {
                        let Some(num) = c
                            .iter()
                            .zip(&phrase.number_slots)
                            .find(|(_, n)| **n)
                            .map(|(h, _)| h)
                        else {
                            return false;
                        };
                        let next = num.end as usize + 1;
                        let unit_follows = flags.get(next).is_some_and(|f| f & TOK_UNIT != 0)
                            || tokens.get(next).is_some_and(|t| t.number.is_some());
                        if unit_follows || num.value == 0 || num.value > 120 {
                            return false;
                        }
                        found = Some((num.value, num.start));
                        true
                    };
                    // Age words must be adjacent: no gap.
                    if search(&cands[..slots], 0, None, 0, &mut chain, &mut budget, &mut accept)
                        && let Some((value, at)) = found
                    {
                        scan.ages.push(AgeHit { kind, value, at });
                        scan.lang_votes[phrase.lang.index()] += phrase.votes.min(1);
                    }
                }
            }
        }
        scan.rules.sort_unstable_by_key(|h| h.rule);
        scan
    }
}

/// Numbers in the message as token spans: digit tokens, number words, and tens + units word pairs
/// ("двадцать один", "он бес", "twenty one").
fn number_spans(norm: &Normalized, word_numbers: &mut Vec<(u32, u32)>) -> Vec<Hit> {
    word_numbers.sort_unstable();
    word_numbers.dedup_by_key(|(t, _)| *t);
    let mut out = Vec::new();
    for (t, tok) in norm.tokens.iter().enumerate() {
        if let Some(v) = tok.number {
            let t = u32::try_from(t).unwrap_or(u32::MAX);
            out.push(Hit {
                phrase: 0,
                slot: 0,
                start: t,
                end: t,
                value: v,
            });
        }
    }
    for (k, &(t, v)) in word_numbers.iter().enumerate() {
        out.push(Hit {
            phrase: 0,
            slot: 0,
            start: t,
            end: t,
            value: v,
        });
        if v >= 10
            && v % 10 == 0
            && let Some(&(t2, u)) = word_numbers.get(k + 1)
            && t2 == t + 1
            && (1..=9).contains(&u)
        {
            out.push(Hit {
                phrase: 0,
                slot: 0,
                start: t,
                end: t2,
                value: v + u,
            });
        }
    }
    out.sort_unstable_by_key(|h| (h.start, h.end));
    out
}

/// A chain is negated when a "before" negation word stands right before its first word or between its
/// words, or an "after" negation word right after its last word.
fn negated(chain: &[Hit], flags: &[u8]) -> bool {
    let Some(first) = chain.first() else { return false };
    let Some(last) = chain.last() else { return false };
    if first.start > 0
        && flags
            .get(first.start as usize - 1)
            .is_some_and(|f| f & TOK_NEG_BEFORE != 0)
    {
        return true;
    }
    for pair in chain.windows(2) {
        for t in pair[0].end + 1..pair[1].start {
            if flags.get(t as usize).is_some_and(|f| f & TOK_NEG_BEFORE != 0) {
                return true;
            }
        }
    }
    flags
        .get(last.end as usize + 1)
        .is_some_and(|f| f & TOK_NEG_AFTER != 0)
}

/// Depth-first search for slot occurrences in order, each starting at most `gap` tokens after the
/// previous one ended. Candidate lists are sorted by start.
fn search(
    cands: &[&[Hit]],
    k: usize,
    prev_end: Option<u32>,
    gap: u32,
    chain: &mut [Hit; MAX_PHRASE_WORDS],
    budget: &mut u32,
    accept: &mut dyn FnMut(&[Hit]) -> bool,
) -> bool {
    let Some(list) = cands.get(k) else {
        return accept(&chain[..k]);
    };
    let from = match prev_end {
        Some(pe) => list.partition_point(|h| h.start <= pe),
        None => 0,
    };
    for h in &list[from..] {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        if let Some(pe) = prev_end
            && h.start - pe - 1 > gap
        {
            break;
        }
        chain[k] = *h;
        if search(cands, k + 1, Some(h.end), gap, chain, budget, accept) {
            return true;
        }
    }
    false
}
