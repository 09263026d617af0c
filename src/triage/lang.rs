//! Language detection: which of the six hotline languages a report is written in.
//!
//! This module owns the decision; the evidence comes from elsewhere. The normaliser counts the script of
//! every letter and the letters particular to one language before it folds them away (Kazakh ә і ұ һ,
//! Tajik ӣ ӯ ҷ, Uzbek ў and Latin oʻ gʻ, the shared қ ғ ң ө ү ҳ). The matcher adds the hits of each
//! language file's phrases and its common "hint" words. The language chosen in the IVR menu adds a little.
//! The highest total wins; other languages with a clear share are kept, most evident first. With no
//! evidence at all, Cyrillic text is taken as Russian and Latin text as English.

use super::normalize::LetterStats;
use super::types::{Language, LanguageGuess, Script};

/// Votes the IVR language choice is worth.
const IVR_VOTES: u32 = 3;

pub(crate) fn decide(letters: &LetterStats, votes: &[u32; 6], ivr: Option<Language>) -> LanguageGuess {
    let mut score = [0u32; 6];
    for (i, s) in score.iter_mut().enumerate() {
        *s = letters.votes[i] + votes[i];
    }
    if let Some(l) = ivr {
        score[l.index()] += IVR_VOTES;
    }
    let script = if letters.cyrillic == 0 && letters.latin == 0 {
        ivr.map_or(Script::Cyrl, Language::usual_script)
    } else if letters.cyrillic >= letters.latin {
        Script::Cyrl
    } else {
        Script::Latn
    };
    // Tie-break order: the likelier language for the script comes first.
    let order: [Language; 6] = match script {
        Script::Cyrl => [
            Language::Ru,
            Language::Kk,
            Language::Ky,
            Language::Uz,
            Language::Tg,
            Language::En,
        ],
        Script::Latn => [
            Language::En,
            Language::Uz,
            Language::Ru,
            Language::Kk,
            Language::Ky,
            Language::Tg,
        ],
    };
    let mut primary = order[0];
    let mut top = 0;
    for l in order {
        if score[l.index()] > top {
            top = score[l.index()];
            primary = l;
        }
    }
    let threshold = (top / 4).max(2);
    let mut others: Vec<Language> = order
        .into_iter()
        .filter(|l| *l != primary && score[l.index()] >= threshold)
        .collect();
    others.sort_by_key(|l| std::cmp::Reverse(score[l.index()]));
    let script = if primary == Language::En {
        Script::Latn
    } else {
        script
    };
    LanguageGuess {
        primary,
        script,
        others,
    }
}
