//! Text normalisation: one canonical spelling for messages and for rule phrases alike.
//!
//! This module owns the only place where text is rewritten. Messages and rule phrases go through the same
//! function, so a rule written the textbook way matches a message typed the SMS way. In order:
//!
//! * NFKC (skipped for pure ASCII) and lower case; invisible characters and combining marks dropped.
//! * Tokens: runs of letters and digits. Everything else separates; `. ! ? ; newline` also end a
//!   sentence. Apostrophes inside words vanish (`o'z` → `oz`, `i'm` → `im`, Uzbek `oʻ`/`gʻ` → `o`/`g`).
//! * Look-alikes: a token written mostly in Cyrillic gets its Latin look-alikes turned Cyrillic
//!   (`пaспорт` with a Latin `a`), and the other way round.
//! * Cyrillic: the letters Kazakh, Kyrgyz, Tajik and Uzbek add to Russian fold to the Russian letter a
//!   Russian keyboard would type instead (`қ`→`к`, `ң`→`н`, `ә`→`а`, `ө`→`о`, `ү`/`ұ`/`ў`/`ӯ`→`у`,
//!   `і`/`ӣ`/`й`→`и`, `ғ`→`г`, `ҳ`/`һ`→`х`, `ҷ`→`ч`, `ё`→`е`, `ъ`→`ь`).
//! * Latin: diacritics dropped (`ş`→`sh`, `ç`→`ch`, `ı`→`i`), and the spellings of Russian in Latin letters
//!   brought together: `x`/`kh`→`h`, `w`→`sh`, `j` before a vowel → `y`, a lone `4` inside a word → `ch`
//!   (`4to`, `do4ka`; in Cyrillic words `ч`).
//! * Letters and digits are split apart (`15лет` → `15 лет`, `9th` → `9 th`), and a repeated letter is
//!   written once (`помогииите`, `passport` → `pasport`).
//!
//! The output is `" tok tok tok "`: every token has one space before and after, which lets the
//! aho-corasick patterns (`" паспорт"` for a stem, `" не "` for a whole word) carry their own word
//! boundaries. While it reads the letters it also counts the evidence language detection needs
//! (script, and the letters particular to Kazakh, Kyrgyz, Tajik and Uzbek) before they are folded away.

use unicode_normalization::{IsNormalized, UnicodeNormalization};

use super::types::Language;

/// One token of normalised text: `text[start..end]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub start: u32,
    pub end: u32,
    /// Sentence number, counted from 0 (only punctuation and new lines end a sentence).
    pub sentence: u32,
    /// The value of an all-digit token (saturating; very long digit runs give `None`).
    pub number: Option<u32>,
}

/// Script and characteristic-letter evidence gathered before folding.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LetterStats {
    pub cyrillic: u32,
    pub latin: u32,
    /// Votes per language, `Language::index()` order.
    pub votes: [u32; 6],
}

#[derive(Debug, Default)]
pub(crate) struct Normalized {
    pub text: String,
    pub tokens: Vec<Token>,
    pub letters: LetterStats,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Cyrl,
    Latn,
    Other,
}

/// Normalise `input` (see the module docs).
pub(crate) fn normalize(input: &str) -> Normalized {
    let mut n = Normalizer {
        out: Normalized {
            text: String::with_capacity(input.len() + 8),
            ..Normalized::default()
        },
        raw: Vec::with_capacity(32),
        seg: Vec::with_capacity(32),
        sentence: 0,
        pending_break: false,
    };
    n.out.text.push(' ');
    if input.is_ascii() {
        for b in input.bytes() {
            n.push_char(char::from(b.to_ascii_lowercase()));
        }
    } else if unicode_normalization::is_nfkc_quick(input.chars()) == IsNormalized::Yes {
        // Already NFKC (most messages): skip the composition pass.
        for c in input.chars() {
            n.push_lower(c);
        }
    } else {
        for c in input.nfkc() {
            n.push_lower(c);
        }
    }
    n.flush();
    n.out
}

struct Normalizer {
    out: Normalized,
    /// The current raw token: lower-cased letters, digits and apostrophes.
    raw: Vec<char>,
    /// The folded letters of the token part being built.
    seg: Vec<char>,
    sentence: u32,
    pending_break: bool,
}

pub(crate) fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BB}' | '\u{02BC}' | '`' | '\u{00B4}' | '\u{02B9}'
    )
}

/// Letters and digits, with a fast path for ASCII and the common Cyrillic letters.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '\u{0430}'..='\u{045F}')
        || (!c.is_ascii() && c.is_alphanumeric())
}

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{0300}'..='\u{036F}')
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{052F}')
}

fn is_latin(c: char) -> bool {
    c.is_ascii_lowercase() || (matches!(c, '\u{00C0}'..='\u{024F}') && c.is_alphabetic())
}

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

impl Normalizer {
    fn push_lower(&mut self, c: char) {
        if c.is_ascii() {
            self.push_char(c.to_ascii_lowercase());
        } else {
            for lc in c.to_lowercase() {
                self.push_char(lc);
            }
        }
    }

    fn push_char(&mut self, c: char) {
        if is_invisible(c) {
            return;
        }
        if is_apostrophe(c) {
            if !self.raw.is_empty() {
                self.raw.push('\'');
            }
        } else if is_word_char(c) {
            self.raw.push(c);
        } else {
            self.flush();
            if matches!(c, '.' | '!' | '?' | ';' | '\n' | '\r' | '\u{2026}' | '\u{3002}') {
                self.pending_break = true;
            }
        }
    }

    /// Ends the raw token: decides its script, folds it and emits one or more tokens.
    fn flush(&mut self) {
        if self.raw.is_empty() {
            return;
        }
        let (mut cyr, mut lat) = (0u32, 0u32);
        for &c in &self.raw {
            if is_cyrillic(c) {
                cyr += 1;
            } else if is_latin(c) {
                lat += 1;
            }
        }
        let target = if cyr > lat {
            Target::Cyrl
        } else if lat > 0 {
            Target::Latn
        } else {
            Target::Other
        };
        self.count_evidence(target, cyr, lat);

        let raw = std::mem::take(&mut self.raw);
        let mut i = 0;
        while i < raw.len() {
            let c = raw[i];
            if c == '\'' {
                i += 1;
                continue;
            }
            if c.is_ascii_digit() {
                let mut j = i;
                while j < raw.len() && raw[j].is_ascii_digit() {
                    j += 1;
                }
                let letter_before = i > 0 && !raw[i - 1].is_ascii_digit() && raw[i - 1] != '\'';
                let letter_after = j < raw.len() && raw[j] != '\'';
                if j - i == 1 && c == '4' && (letter_before || letter_after) && target != Target::Other {
                    // "4to", "do4ka": a 4 standing for ч.
                    if target == Target::Cyrl {
                        self.seg.push('ч');
                    } else {
                        self.seg.extend(['c', 'h']);
                    }
                } else {
                    self.emit_seg(target);
                    let digits = &raw[i..j];
                    let number = if digits.len() <= 9 {
                        digits.iter().try_fold(0u32, |acc, d| {
                            d.to_digit(10).and_then(|v| acc.checked_mul(10)?.checked_add(v))
                        })
                    } else {
                        None
                    };
                    self.emit_token(digits.iter().copied(), number);
                }
                i = j;
                continue;
            }
            fold_letter(c, target, &mut self.seg);
            i += 1;
        }
        self.emit_seg(target);
        self.raw = raw;
        self.raw.clear();
    }

    fn count_evidence(&mut self, target: Target, cyr: u32, lat: u32) {
        let stats = &mut self.out.letters;
        stats.cyrillic += cyr;
        stats.latin += lat;
        let v = &mut stats.votes;
        let (ru, kk, ky, tg, uz) = (
            Language::Ru.index(),
            Language::Kk.index(),
            Language::Ky.index(),
            Language::Tg.index(),
            Language::Uz.index(),
        );
        match target {
            Target::Cyrl => {
                for &c in &self.raw {
                    match c {
                        'ә' | 'і' | 'ұ' | 'һ' => v[kk] += 3,
                        'қ' | 'ғ' => {
                            v[kk] += 1;
                            v[tg] += 1;
                            v[uz] += 1;
                        }
                        'ң' | 'ө' | 'ү' => {
                            v[kk] += 1;
                            v[ky] += 1;
                        }
                        'ӣ' | 'ӯ' | 'ҷ' => v[tg] += 3,
                        'ҳ' => {
                            v[tg] += 1;
                            v[uz] += 1;
                        }
                        'ў' => v[uz] += 3,
                        'щ' => v[ru] += 1,
                        _ => {}
                    }
                }
            }
            Target::Latn => {
                let raw = &self.raw;
                for (k, &c) in raw.iter().enumerate() {
                    let next = raw.get(k + 1).copied();
                    match c {
                        // Uzbek Latin: oʻ gʻ
                        'o' | 'g'
                            if next == Some('\'') && raw.get(k + 2).is_some_and(|c| c.is_alphabetic()) =>
                        {
                            v[uz] += 3;
                        }
                        'q' if next != Some('u') => v[uz] += 1,
                        _ => {}
                    }
                }
            }
            Target::Other => {}
        }
    }

    /// Emits the folded letters collected in `seg` as a token (Latin digraphs folded, repeats collapsed).
    fn emit_seg(&mut self, target: Target) {
        if self.seg.is_empty() {
            return;
        }
        let text = &mut self.out.text;
        let start = text.len();
        let mut last: Option<char> = None;
        let mut k = 0;
        while k < self.seg.len() {
            let c = self.seg[k];
            let next = self.seg.get(k + 1).copied();
            let c = if target == Target::Latn {
                match (c, next) {
                    ('k', Some('h')) => {
                        k += 1;
                        'h'
                    }
                    ('j', Some(n)) if is_vowel(n) => 'y',
                    _ => c,
                }
            } else {
                c
            };
            if last != Some(c) {
                text.push(c);
                last = Some(c);
            }
            k += 1;
        }
        self.seg.clear();
        self.finish_token(start, None);
    }

    fn emit_token(&mut self, chars: impl Iterator<Item = char>, number: Option<u32>) {
        let start = self.out.text.len();
        self.out.text.extend(chars);
        self.finish_token(start, number);
    }

    /// Closes the token that starts at byte `start` of the output (nothing if it is empty).
    fn finish_token(&mut self, start: usize, number: Option<u32>) {
        let text = &mut self.out.text;
        if text.len() == start {
            return;
        }
        let end = text.len();
        text.push(' ');
        if self.pending_break && !self.out.tokens.is_empty() {
            self.sentence += 1;
        }
        self.pending_break = false;
        self.out.tokens.push(Token {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
            sentence: self.sentence,
            number,
        });
    }
}

/// Folds one lower-case letter of a token whose dominant script is `target`, pushing 0–2 letters.
fn fold_letter(c: char, target: Target, out: &mut Vec<char>) {
    match target {
        Target::Cyrl => {
            let c = latin_to_cyrillic(c).unwrap_or(c);
            out.push(fold_cyrillic(c));
        }
        Target::Latn => {
            let c = cyrillic_to_latin(c).unwrap_or(c);
            fold_latin(c, out);
        }
        Target::Other => out.push(c),
    }
}

/// Latin letters that look like (lower- or upper-case) Cyrillic ones.
fn latin_to_cyrillic(c: char) -> Option<char> {
    Some(match c {
        'a' => 'а',
        'b' => 'в',
        'c' => 'с',
        'e' => 'е',
        'h' => 'н',
        'i' => 'і',
        'k' => 'к',
        'm' => 'м',
        'o' => 'о',
        'p' => 'р',
        't' => 'т',
        'x' => 'х',
        'y' => 'у',
        _ => return None,
    })
}

/// Cyrillic letters that look like Latin ones.
fn cyrillic_to_latin(c: char) -> Option<char> {
    Some(match c {
        'а' => 'a',
        'в' => 'b',
        'е' => 'e',
        'і' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'ѕ' => 's',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'ԁ' => 'd',
        _ => return None,
    })
}

fn fold_cyrillic(c: char) -> char {
    match c {
        'ё' | 'є' => 'е',
        'й' | 'і' | 'ї' | 'ӣ' => 'и',
        'қ' | 'ҡ' => 'к',
        'ғ' | 'ґ' | 'ҕ' => 'г',
        'ң' | 'ӊ' => 'н',
        'ә' | 'ӓ' => 'а',
        'ө' | 'ӧ' => 'о',
        'ү' | 'ұ' | 'ў' | 'ӯ' => 'у',
        'һ' | 'ҳ' => 'х',
        'ҷ' | 'ҹ' => 'ч',
        'ъ' => 'ь',
        _ => c,
    }
}

fn fold_latin(c: char, out: &mut Vec<char>) {
    match c {
        'x' => out.push('h'),
        'w' => out.extend(['s', 'h']),
        'ş' | 'ș' => out.extend(['s', 'h']),
        'ç' => out.extend(['c', 'h']),
        'ß' => out.extend(['s', 's']),
        'ı' => out.push('i'),
        'ł' => out.push('l'),
        'ø' => out.push('o'),
        'æ' => out.extend(['a', 'e']),
        'œ' => out.extend(['o', 'e']),
        _ if c.is_ascii() => out.push(c),
        _ => {
            // Strip diacritics: the first character of the canonical decomposition.
            let mut base = None;
            unicode_normalization::char::decompose_canonical(c, |d| {
                if base.is_none() {
                    base = Some(d);
                }
            });
            match base {
                Some(b) if b.is_ascii() => fold_latin(b, out),
                _ => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize(s).text
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(norm("Помогите!!! Забрали ПАСПОРТ"), " помогите забрали паспорт ");
        assert_eq!(norm("пaспорт"), " паспорт "); // Latin a
        assert_eq!(norm("pаsport"), " pasport "); // Cyrillic а
        assert_eq!(norm("passport"), " pasport ");
        assert_eq!(norm("mne 15let"), " mne 15 let ");
        assert_eq!(norm("4to"), " chto ");
        assert_eq!(norm("do4ka"), " dochka ");
        assert_eq!(norm("хозяин xozyain khozyain"), " хозяин hozyain hozyain ");
        assert_eq!(norm("o‘zbek oʻzbek o'zbek"), " ozbek ozbek ozbek ");
        assert_eq!(norm("Көмек қажет"), " комек кажет ");
        assert_eq!(norm("ja v rabstve"), " ya v rabstve ");
        assert_eq!(norm("vawa"), " vasha ");
        assert_eq!(norm("9th grade"), " 9 th grade ");
        assert_eq!(norm("15-летняя"), " 15 летня ");
        assert_eq!(norm(""), " ");
        assert_eq!(norm("  ,,, "), " ");
    }

    #[test]
    fn sentences_and_numbers() {
        let n = normalize("мне 15. ей 12");
        let sentences: Vec<u32> = n.tokens.iter().map(|t| t.sentence).collect();
        assert_eq!(sentences, vec![0, 0, 1, 1]);
        assert_eq!(n.tokens[1].number, Some(15));
        assert_eq!(normalize("99999999999").tokens[0].number, None);
    }

    #[test]
    fn letter_evidence() {
        let n = normalize("менің паспортымды алды");
        assert!(n.letters.votes[Language::Kk.index()] >= 3);
        let n = normalize("ман ҷавон ҳастам");
        assert!(n.letters.votes[Language::Tg.index()] >= 3);
        let n = normalize("o'zbekman");
        assert!(n.letters.votes[Language::Uz.index()] >= 3);
    }
}
