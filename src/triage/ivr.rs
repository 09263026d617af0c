//! IVR menu paths: the flags a caller's key presses carry into triage.
//!
//! This module owns the small grammar intake uses to hand the IVR menu path (or, for the web form, the
//! answers to its yes/no questions) to triage. A path is a list of segments separated by `>`, `/`, `,`,
//! `;`, `|` or spaces, e.g. `lang:ru>2>child` or `lang:uz>1:danger`. Case does not matter.
//!
//! * `lang:XX` (or `lang=XX`) with XX one of ru, kk, ky, tg, uz, en: the language the caller chose.
//! * `danger` (in danger now), `silent` (cannot speak safely): the report is critical.
//! * `child` or `under18`: the victim is under 18 (child case, at least high).
//! * `shelter`: the person needs a safe place to stay.
//!
//! A flag may also follow the key that chose it (`1:danger`, `3=child`). Anything else (plain menu
//! digits, unknown words) is ignored, so the IVR can grow menus without breaking triage.

use std::str::FromStr;

use super::types::Language;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct IvrFlags {
    pub danger: bool,
    pub silent: bool,
    pub child: bool,
    pub shelter: bool,
    pub lang: Option<Language>,
}

pub(crate) fn parse(path: &str) -> IvrFlags {
    let mut f = IvrFlags::default();
    let segments = path.split(|c: char| matches!(c, '>' | '/' | ',' | ';' | '|') || c.is_whitespace());
    for seg in segments.filter(|s| !s.is_empty()) {
        let seg = seg.to_ascii_lowercase();
        let mut parts = seg.split([':', '=']);
        let head = parts.next().unwrap_or_default();
        if head == "lang" {
            if let Some(lang) = parts.next().and_then(|l| Language::from_str(l.trim()).ok()) {
                f.lang = Some(lang);
            }
            continue;
        }
        for part in std::iter::once(head).chain(parts) {
            match part.trim() {
                "danger" => f.danger = true,
                "silent" => f.silent = true,
                "child" | "under18" => f.child = true,
                "shelter" => f.shelter = true,
                _ => {}
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let f = parse("lang:ru>1");
        assert_eq!(
            f,
            IvrFlags {
                lang: Some(Language::Ru),
                ..IvrFlags::default()
            }
        );
        let f = parse("LANG=uz > 3:child >silent");
        assert!(f.child && f.silent && !f.danger);
        assert_eq!(f.lang, Some(Language::Uz));
        assert!(parse("lang:xx>danger").danger);
        assert_eq!(parse("lang:xx").lang, None);
        assert_eq!(parse(""), IvrFlags::default());
    }
}
