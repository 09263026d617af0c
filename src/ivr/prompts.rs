//! The IVR's recorded prompts: the manifest (`prompts/manifest.tsv`: id, language, file, voice, text),
//! the built-in espeak-ng recordings compiled into the binary, an optional folder of human recordings that
//! replaces them file by file, and `GET /prompts/{lang}/{file}` that serves them to providers.
//!
//! Recorded audio is what callers hear: no provider speaks Kazakh, Kyrgyz, Tajik or Uzbek. The text goes
//! along as text-to-speech only where the provider speaks the language ([`Provider::speaks`]), so a
//! renderer can fall back to it. The route serves only files named in the manifest (looked up in a map,
//! never joined into a path), so no request can reach any other file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use komek_gateways::{Prompt, Provider};

use crate::channels::LANGUAGES;
use crate::error::ApiError;
use crate::state::AppState;

/// The manifest as shipped.
const MANIFEST: &str = include_str!("../../prompts/manifest.tsv");

/// Largest replacement file read from the override folder.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// How long providers may cache a prompt (replacements are picked up at restart; caches within a day).
const CACHE_CONTROL: &str = "public, max-age=86400";

macro_rules! builtin_for {
    ($lang:literal) => {
        builtin_for!(@ $lang; "language_option", "main_menu", "connecting", "connecting_child", "record",
            "no_answer", "thanks", "unavailable", "unavailable_later", "digit_0", "digit_1", "digit_2",
            "digit_3", "digit_4", "digit_5", "digit_6", "digit_7", "digit_8", "digit_9")
    };
    (@ $lang:literal; $($id:literal),+) => {
        [$(($lang, $id, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/", $lang, "/", $id, ".wav")) as &'static [u8])),+]
    };
}

/// Every built-in recording: (language, prompt id, WAV bytes).
fn builtin() -> impl Iterator<Item = (&'static str, &'static str, &'static [u8])> {
    builtin_for!("ru")
        .into_iter()
        .chain(builtin_for!("kk"))
        .chain(builtin_for!("ky"))
        .chain(builtin_for!("tg"))
        .chain(builtin_for!("uz"))
        .chain(builtin_for!("en"))
}

/// What a prompt is for. The language menu keys are fixed by the recordings: ru 1, kk 2, ky 3, tg 4,
/// uz 5, en 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromptId {
    LanguageOption,
    MainMenu,
    Connecting,
    ConnectingChild,
    Record,
    NoAnswer,
    Thanks,
    Unavailable,
    UnavailableLater,
    Digit(u8),
}

impl PromptId {
    /// The id used in the manifest and in file names.
    pub fn name(self) -> String {
        match self {
            PromptId::LanguageOption => "language_option".into(),
            PromptId::MainMenu => "main_menu".into(),
            PromptId::Connecting => "connecting".into(),
            PromptId::ConnectingChild => "connecting_child".into(),
            PromptId::Record => "record".into(),
            PromptId::NoAnswer => "no_answer".into(),
            PromptId::Thanks => "thanks".into(),
            PromptId::Unavailable => "unavailable".into(),
            PromptId::UnavailableLater => "unavailable_later".into(),
            PromptId::Digit(d) => format!("digit_{}", d.min(9)),
        }
    }
}

/// The BCP 47 tag providers use for a hotline language.
pub fn voice_tag(lang: &str) -> &'static str {
    match lang {
        "ru" => "ru-RU",
        "kk" => "kk-KZ",
        "ky" => "ky-KG",
        "tg" => "tg-TJ",
        "uz" => "uz-UZ",
        _ => "en-US",
    }
}

/// One servable audio file.
#[derive(Debug, Clone)]
struct Audio {
    bytes: Arc<[u8]>,
    content_type: &'static str,
}

/// Manifest errors (a broken built-in manifest is a build mistake the tests catch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prompts/manifest.tsv line {line}: {reason}")]
pub struct ManifestError {
    pub line: usize,
    pub reason: String,
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub id: String,
    pub lang: String,
    pub file: String,
    pub voice: String,
    pub text: String,
}

/// Parses the manifest: `#` comments, then tab-separated id, language, file, voice, text.
pub fn parse_manifest(text: &str) -> Result<Vec<ManifestEntry>, ManifestError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [id, lang, file, voice, text] = fields.as_slice() else {
            return Err(ManifestError {
                line: n + 1,
                reason: "expected 5 tab-separated fields".into(),
            });
        };
        if !LANGUAGES.contains(lang) || *file != format!("{lang}/{id}.wav") || text.trim().is_empty() {
            return Err(ManifestError {
                line: n + 1,
                reason: "unknown language, file not LANG/ID.wav, or empty text".into(),
            });
        }
        out.push(ManifestEntry {
            id: (*id).to_owned(),
            lang: (*lang).to_owned(),
            file: (*file).to_owned(),
            voice: (*voice).to_owned(),
            text: (*text).to_owned(),
        });
    }
    Ok(out)
}

/// The built-in manifest.
pub fn manifest() -> Result<Vec<ManifestEntry>, ManifestError> {
    parse_manifest(MANIFEST)
}

/// The prompt set the IVR speaks from: texts, audio (built in or replaced) and their public URLs.
#[derive(Debug)]
pub struct Prompts {
    base_url: String,
    /// (lang, id) → (text, served file name).
    entries: HashMap<(String, String), (String, String)>,
    /// (lang, file name) → audio.
    files: HashMap<(String, String), Audio>,
}

impl Prompts {
    /// Loads the built-in prompts, then any replacements in `override_dir` (`LANG/ID.wav` or
    /// `LANG/ID.mp3`). An unreadable replacement is skipped with a warning: the built-in one stays.
    pub fn load(public_url: &url::Url, override_dir: Option<&Path>) -> Prompts {
        let base_url = format!("{}/prompts", public_url.as_str().trim_end_matches('/'));
        let mut entries = HashMap::new();
        let mut files = HashMap::new();
        let texts: HashMap<(String, String), String> = match manifest() {
            Ok(list) => list.into_iter().map(|e| ((e.lang, e.id), e.text)).collect(),
            Err(err) => {
                tracing::error!(error = %err, "the built-in prompt manifest is broken");
                HashMap::new()
            }
        };
        for (lang, id, bytes) in builtin() {
            let file = format!("{id}.wav");
            let text = texts
                .get(&(lang.to_owned(), id.to_owned()))
                .cloned()
                .unwrap_or_default();
            entries.insert((lang.to_owned(), id.to_owned()), (text, file.clone()));
            files.insert(
                (lang.to_owned(), file),
                Audio {
                    bytes: Arc::from(bytes),
                    content_type: "audio/wav",
                },
            );
        }
        if let Some(dir) = override_dir {
            let mut replaced = 0usize;
            for ((lang, id), (_, file)) in entries.iter_mut() {
                for (ext, content_type) in [("wav", "audio/wav"), ("mp3", "audio/mpeg")] {
                    let path = dir.join(lang.as_str()).join(format!("{id}.{ext}"));
                    let Ok(meta) = std::fs::metadata(&path) else {
                        continue;
                    };
                    if !meta.is_file() || meta.len() == 0 || meta.len() > MAX_FILE_BYTES {
                        tracing::warn!(path = %path.display(), "prompt replacement skipped: empty, too large or not a file");
                        continue;
                    }
                    match std::fs::read(&path) {
                        Ok(bytes) => {
                            let name = format!("{id}.{ext}");
                            files.insert(
                                (lang.clone(), name.clone()),
                                Audio {
                                    bytes: Arc::from(bytes),
                                    content_type,
                                },
                            );
                            *file = name;
                            replaced += 1;
                            break;
                        }
                        Err(err) => {
                            tracing::warn!(path = %path.display(), error = %err, "prompt replacement unreadable")
                        }
                    }
                }
            }
            tracing::info!(replaced, "IVR prompt replacements loaded");
        }
        Prompts {
            base_url,
            entries,
            files,
        }
    }

    /// The prompt `id` in `lang` for `provider`: the recording, plus the text where the provider speaks it.
    pub fn prompt(&self, provider: Provider, lang: &str, id: PromptId) -> Prompt {
        let key = (lang.to_owned(), id.name());
        let tag = voice_tag(lang);
        match self.entries.get(&key) {
            Some((text, file)) => Prompt {
                lang: tag.to_owned(),
                text: provider.speaks(tag).then(|| text.clone()),
                audio_url: Some(format!("{}/{lang}/{file}", self.base_url)),
            },
            None => Prompt {
                lang: tag.to_owned(),
                text: None,
                audio_url: None,
            },
        }
    }

    /// The text of a prompt (tests and tools).
    pub fn text(&self, lang: &str, id: PromptId) -> Option<&str> {
        self.entries
            .get(&(lang.to_owned(), id.name()))
            .map(|(t, _)| t.as_str())
    }

    fn file(&self, lang: &str, file: &str) -> Option<&Audio> {
        self.files.get(&(lang.to_owned(), file.to_owned()))
    }
}

/// Mounts `GET /prompts/{lang}/{file}` (public: providers fetch prompts without credentials).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/prompts/{lang}/{file}", web::get().to(serve));
}

async fn serve(
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (lang, file) = path.into_inner();
    let audio = state
        .ivr
        .prompts
        .file(&lang, &file)
        .ok_or(ApiError::not_found("prompt"))?;
    Ok(HttpResponse::Ok()
        .content_type(audio.content_type)
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(web::Bytes::copy_from_slice(&audio.bytes)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_manifest_covers_every_language_and_prompt_and_matches_the_embedded_audio() {
        let list = manifest().unwrap();
        let embedded: Vec<(&str, &str)> = builtin().map(|(l, i, _)| (l, i)).collect();
        assert_eq!(list.len(), embedded.len());
        for (lang, id) in &embedded {
            assert!(
                list.iter().any(|e| e.lang == *lang && e.id == *id),
                "{lang}/{id} is embedded but not in the manifest"
            );
        }
        for (_, _, bytes) in builtin() {
            assert!(bytes.starts_with(b"RIFF") && bytes.len() > 1000);
        }
    }

    #[test]
    fn files_dropped_into_the_override_folder_replace_the_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("kk")).unwrap();
        std::fs::write(dir.path().join("kk/main_menu.mp3"), b"ID3 human recording").unwrap();
        std::fs::write(dir.path().join("kk/thanks.wav"), b"").unwrap();
        std::fs::write(dir.path().join("kk/unknown.wav"), b"RIFF").unwrap();
        let prompts = Prompts::load(&url::Url::parse("https://k.test").unwrap(), Some(dir.path()));
        let menu = prompts.prompt(Provider::Vonage, "kk", PromptId::MainMenu);
        assert_eq!(
            menu.audio_url.as_deref(),
            Some("https://k.test/prompts/kk/main_menu.mp3")
        );
        let audio = prompts.file("kk", "main_menu.mp3").unwrap();
        assert_eq!(audio.content_type, "audio/mpeg");
        assert_eq!(&audio.bytes[..], b"ID3 human recording");
        // An empty file is ignored; files the manifest does not name are never served.
        assert!(
            prompts
                .prompt(Provider::Vonage, "kk", PromptId::Thanks)
                .audio_url
                .unwrap()
                .ends_with("/kk/thanks.wav")
        );
        assert!(
            prompts
                .file("kk", "thanks.wav")
                .unwrap()
                .bytes
                .starts_with(b"RIFF")
        );
        assert!(prompts.file("kk", "unknown.wav").is_none());
    }

    #[test]
    fn prompts_carry_text_only_where_the_provider_speaks_the_language() {
        let prompts = Prompts::load(&url::Url::parse("https://k.test").unwrap(), None);
        let ru = prompts.prompt(Provider::Twilio, "ru", PromptId::MainMenu);
        assert!(ru.text.is_some());
        assert_eq!(
            ru.audio_url.as_deref(),
            Some("https://k.test/prompts/ru/main_menu.wav")
        );
        let kk = prompts.prompt(Provider::Twilio, "kk", PromptId::MainMenu);
        assert!(kk.text.is_none() && kk.audio_url.is_some());
        assert!(
            prompts
                .prompt(Provider::AfricasTalking, "ru", PromptId::Thanks)
                .text
                .is_none()
        );
    }
}
