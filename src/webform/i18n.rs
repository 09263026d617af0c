//! The form's six languages and their texts. Each language has one file, `i18n/XX.toml` (flat
//! `key = "text"`), embedded in the binary; English is the reference, and loading fails (and a test fails)
//! when any language misses a key or has one the others lack.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A language of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Ru,
    Kk,
    Ky,
    Tg,
    Uz,
    En,
}

impl Lang {
    /// Every language, in the order of the language links.
    pub const ALL: [Lang; 6] = [Lang::Ru, Lang::Kk, Lang::Ky, Lang::Tg, Lang::Uz, Lang::En];

    /// The default when nothing else says which.
    pub const DEFAULT: Lang = Lang::Ru;

    /// The ISO 639-1 code (also the `lang` attribute).
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::Kk => "kk",
            Lang::Ky => "ky",
            Lang::Tg => "tg",
            Lang::Uz => "uz",
            Lang::En => "en",
        }
    }

    /// Parses a code or a language tag's primary subtag (`ru`, `ru-RU`, `uz-Latn`); any case.
    pub fn parse(raw: &str) -> Option<Lang> {
        let primary = raw.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The best language in an `Accept-Language` header (by weight, then order), if any is ours.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(u16, Lang)> = None;
        for item in header.split(',').take(20) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default();
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            // Weights have at most three decimals; compare them as integers.
            let weight = (weight.clamp(0.0, 1.0) * 1000.0) as u16;
            if weight == 0 {
                continue;
            }
            if let Some(lang) = Lang::parse(tag)
                && best.is_none_or(|(w, _)| weight > w)
            {
                best = Some((weight, lang));
            }
        }
        best.map(|(_, lang)| lang)
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Ru => include_str!("i18n/ru.toml"),
            Lang::Kk => include_str!("i18n/kk.toml"),
            Lang::Ky => include_str!("i18n/ky.toml"),
            Lang::Tg => include_str!("i18n/tg.toml"),
            Lang::Uz => include_str!("i18n/uz.toml"),
            Lang::En => include_str!("i18n/en.toml"),
        }
    }
}

/// One language's texts, by key.
pub type Messages = BTreeMap<String, String>;

/// Every language's texts.
#[derive(Debug)]
pub struct Catalog {
    by_lang: Vec<(Lang, Messages)>,
}

/// A translation file that is broken or incomplete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("i18n/{lang}.toml is not valid TOML of `key = \"text\"` lines: {reason}")]
    Syntax { lang: &'static str, reason: String },
    #[error("i18n/{lang}.toml has no text for `{key}`")]
    Missing { lang: &'static str, key: String },
    #[error("i18n/{lang}.toml has `{key}`, which the English file does not")]
    Unknown { lang: &'static str, key: String },
    #[error("i18n/{lang}.toml has an empty text for `{key}`")]
    Empty { lang: &'static str, key: String },
}

impl Catalog {
    /// Parses and cross-checks the embedded files.
    pub fn load() -> Result<Catalog, CatalogError> {
        let mut by_lang = Vec::new();
        for lang in Lang::ALL {
            let messages: Messages = toml::from_str(lang.source()).map_err(|e| CatalogError::Syntax {
                lang: lang.code(),
                reason: e.message().to_owned(),
            })?;
            by_lang.push((lang, messages));
        }
        let reference = by_lang
            .iter()
            .find(|(l, _)| *l == Lang::En)
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        for (lang, messages) in &by_lang {
            let code = lang.code();
            if let Some(key) = reference.keys().find(|k| !messages.contains_key(*k)) {
                return Err(CatalogError::Missing {
                    lang: code,
                    key: key.clone(),
                });
            }
            if let Some(key) = messages.keys().find(|k| !reference.contains_key(*k)) {
                return Err(CatalogError::Unknown {
                    lang: code,
                    key: key.clone(),
                });
            }
            if let Some((key, _)) = messages.iter().find(|(_, v)| v.trim().is_empty()) {
                return Err(CatalogError::Empty {
                    lang: code,
                    key: key.clone(),
                });
            }
        }
        Ok(Catalog { by_lang })
    }

    /// The built-in catalog, loaded once.
    pub fn embedded() -> Result<&'static Catalog, CatalogError> {
        static CATALOG: OnceLock<Result<Catalog, CatalogError>> = OnceLock::new();
        CATALOG.get_or_init(Catalog::load).as_ref().map_err(Clone::clone)
    }

    /// A language's texts (empty only if the catalog were built without it, which `load` prevents).
    pub fn messages(&self, lang: Lang) -> &Messages {
        static EMPTY: Messages = BTreeMap::new();
        self.by_lang
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, m)| m)
            .unwrap_or(&EMPTY)
    }

    /// One text.
    pub fn text<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.messages(lang).get(key).map(String::as_str).unwrap_or(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_key() {
        let catalog = Catalog::load();
        assert!(catalog.is_ok(), "{catalog:?}");
    }

    #[test]
    fn chooses_from_accept_language() {
        assert_eq!(
            Lang::from_accept_language("kk-KZ,kk;q=0.9,ru;q=0.8"),
            Some(Lang::Kk)
        );
        assert_eq!(
            Lang::from_accept_language("de-DE, en;q=0.5, uz;q=0.7"),
            Some(Lang::Uz)
        );
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(Lang::from_accept_language("tg;q=0, ky"), Some(Lang::Ky));
        assert_eq!(Lang::from_accept_language(""), None);
        assert_eq!(Lang::parse("uz-Latn"), Some(Lang::Uz));
        assert_eq!(Lang::parse("xx"), None);
    }
}
