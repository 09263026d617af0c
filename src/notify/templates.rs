//! Email templates: one subject, one plain-text and one HTML template, with the words of each of the six
//! languages (en, ru, kk, ky, tg, uz) in a table. A notification can carry only what these types allow: a
//! [`CaseRef`] (valid by construction), an [`Event`] and an [`Urgency`] (closed sets, translated here) and a
//! console link built from the configured public URL and the reference. There is no free-text input, so no
//! name, phone number, place or message text can reach an email; the words used are neutral (no
//! "trafficking", "child" or "victim" in any language) because a trafficker may read a caseworker's mailbox.
//! The HTML template is auto-escaped (minijinja escapes by the `.html` template name).

use minijinja::{Environment, context};

use crate::domain::CaseRef;

/// What happened, as told to staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new case is critical.
    NewCritical,
    /// A case needs the organization's focal points.
    FocalPoint,
    /// A case was assigned to the recipient.
    Assigned,
    /// A critical case was not acknowledged by its deadline.
    NotAcknowledged,
}

impl Event {
    /// Every event (for template tests).
    pub const ALL: [Event; 4] = [
        Event::NewCritical,
        Event::FocalPoint,
        Event::Assigned,
        Event::NotAcknowledged,
    ];
}

/// How urgent the case is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Critical,
    High,
    Medium,
    Low,
}

impl Urgency {
    /// Every urgency (for template tests).
    pub const ALL: [Urgency; 4] = [Urgency::Critical, Urgency::High, Urgency::Medium, Urgency::Low];

    /// From a stored risk level (`critical`, `high`, `medium`, `low`); unknown values read as high.
    pub fn from_risk(risk: &str) -> Urgency {
        match risk {
            "critical" => Urgency::Critical,
            "medium" => Urgency::Medium,
            "low" => Urgency::Low,
            _ => Urgency::High,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Critical => "critical",
            Urgency::High => "high",
            Urgency::Medium => "medium",
            Urgency::Low => "low",
        }
    }
}

/// The languages staff can receive email in.
pub const LANGUAGES: [&str; 6] = ["en", "ru", "kk", "ky", "tg", "uz"];

/// The words of one language.
struct Words {
    case: &'static str,
    /// Indexed like [`Event::ALL`].
    events: [&'static str; 4],
    /// Indexed like [`Urgency::ALL`].
    urgencies: [&'static str; 4],
    urgency_label: &'static str,
    open: &'static str,
    footer: &'static str,
}

fn words(language: &str) -> &'static Words {
    match language {
        "ru" => &RU,
        "kk" => &KK,
        "ky" => &KY,
        "tg" => &TG,
        "uz" => &UZ,
        _ => &EN,
    }
}

const EN: Words = Words {
    case: "Case",
    events: [
        "new, needs attention",
        "needs a focal point",
        "assigned to you",
        "not acknowledged in time",
    ],
    urgencies: ["critical", "high", "medium", "low"],
    urgency_label: "Urgency",
    open: "Open it in the console:",
    footer: "This message holds no case details. Do not reply; sign in to the console to see the case.",
};

const RU: Words = Words {
    case: "Дело",
    events: [
        "новое, требует внимания",
        "нужен ответственный специалист",
        "назначено вам",
        "не подтверждено в срок",
    ],
    urgencies: ["критическая", "высокая", "средняя", "низкая"],
    urgency_label: "Срочность",
    open: "Откройте его в консоли:",
    footer: "В этом письме нет сведений о деле. Не отвечайте на него; войдите в консоль, чтобы открыть дело.",
};

const KK: Words = Words {
    case: "Іс",
    events: [
        "жаңа, назар аударуды қажет етеді",
        "жауапты маман қажет",
        "сізге тағайындалды",
        "уақытында расталмады",
    ],
    urgencies: ["өте шұғыл", "жоғары", "орташа", "төмен"],
    urgency_label: "Шұғылдығы",
    open: "Консольде ашыңыз:",
    footer: "Бұл хатта іс туралы мәлімет жоқ. Жауап бермеңіз; істі көру үшін консольге кіріңіз.",
};

const KY: Words = Words {
    case: "Иш",
    events: [
        "жаңы, көңүл бурууну талап кылат",
        "жооптуу адис керек",
        "сизге дайындалды",
        "убагында ырасталган жок",
    ],
    urgencies: ["өтө шашылыш", "жогору", "орточо", "төмөн"],
    urgency_label: "Шашылыштыгы",
    open: "Консолдо ачыңыз:",
    footer: "Бул катта иш тууралуу маалымат жок. Жооп бербеңиз; ишти көрүү үчүн консолго кириңиз.",
};

const TG: Words = Words {
    case: "Парванда",
    events: [
        "нав, таваҷҷуҳ талаб мекунад",
        "мутахассиси масъул лозим аст",
        "ба шумо супорида шуд",
        "сари вақт тасдиқ нашуд",
    ],
    urgencies: ["фаврӣ", "ҷиддӣ", "миёна", "паст"],
    urgency_label: "Фаврият",
    open: "Дар консол кушоед:",
    footer: "Дар ин мактуб маълумоти парванда нест. Ҷавоб надиҳед; барои дидани парванда ба консол ворид шавед.",
};

const UZ: Words = Words {
    case: "Ish",
    events: [
        "yangi, e'tibor talab qiladi",
        "mas'ul mutaxassis kerak",
        "sizga biriktirildi",
        "o'z vaqtida tasdiqlanmadi",
    ],
    urgencies: ["o'ta shoshilinch", "yuqori", "o'rta", "past"],
    urgency_label: "Shoshilinchlik",
    open: "Konsolda oching:",
    footer: "Bu xatda ish haqida ma'lumot yo'q. Javob bermang; ishni ko'rish uchun konsolga kiring.",
};

const SUBJECT: &str = "{{ case }} {{ reference }}: {{ event }} ({{ urgency }})";

const TEXT: &str = "{{ case }} {{ reference }}: {{ event }}.
{{ urgency_label }}: {{ urgency }}.

{{ open }}
{{ link }}

{{ footer }}
";

const HTML: &str = r#"<!DOCTYPE html>
<html lang="{{ lang }}">
<head><meta charset="utf-8"><title>{{ case }} {{ reference }}</title></head>
<body style="font-family: sans-serif">
<p><strong>{{ case }} {{ reference }}</strong>: {{ event }}.</p>
<p>{{ urgency_label }}: <strong>{{ urgency }}</strong>.</p>
<p>{{ open }} <a href="{{ link }}">{{ link }}</a></p>
<p style="color: #555">{{ footer }}</p>
</body>
</html>
"#;

/// A rendered email (no addresses: those are added when it is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Template failures (a bug, not bad input: every input is typed).
#[derive(Debug, thiserror::Error)]
#[error("email template failed: {0}")]
pub struct TemplateError(String);

impl TemplateError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        "template_failed"
    }
}

/// The console link of a case.
pub fn console_link(public_url: &url::Url, reference: &CaseRef) -> String {
    format!(
        "{}/console/cases/{}",
        public_url.as_str().trim_end_matches('/'),
        reference.as_str()
    )
}

/// Renders the email for `event` about case `reference`, in `language` (unknown languages read as English).
pub fn render(
    language: &str,
    event: Event,
    urgency: Urgency,
    reference: &CaseRef,
    public_url: &url::Url,
) -> Result<Rendered, TemplateError> {
    let w = words(language);
    let lang = if LANGUAGES.contains(&language) {
        language
    } else {
        "en"
    };
    let event_index = Event::ALL.iter().position(|e| *e == event).unwrap_or(0);
    let urgency_index = Urgency::ALL.iter().position(|u| *u == urgency).unwrap_or(0);
    let mut env = Environment::new();
    let fail = |e: minijinja::Error| TemplateError(e.to_string());
    env.add_template("subject.txt", SUBJECT).map_err(fail)?;
    env.add_template("body.txt", TEXT).map_err(fail)?;
    env.add_template("body.html", HTML).map_err(fail)?;
    let ctx = context! {
        lang => lang,
        case => w.case,
        reference => reference.as_str(),
        event => w.events[event_index],
        urgency => w.urgencies[urgency_index],
        urgency_label => w.urgency_label,
        open => w.open,
        footer => w.footer,
        link => console_link(public_url, reference),
    };
    let subject = env
        .get_template("subject.txt")
        .and_then(|t| t.render(&ctx))
        .map_err(fail)?;
    let text = env
        .get_template("body.txt")
        .and_then(|t| t.render(&ctx))
        .map_err(fail)?;
    let html = env
        .get_template("body.html")
        .and_then(|t| t.render(&ctx))
        .map_err(fail)?;
    Ok(Rendered {
        // A subject is one line, whatever a translation holds.
        subject: subject.replace(['\r', '\n'], " "),
        text,
        html,
    })
}

/// Words that must never appear in a notification, in any of the six languages (lower case).
pub const FORBIDDEN_WORDS: &[&str] = &[
    "traffick",
    "child",
    "minor",
    "victim",
    "exploit",
    "slave",
    "passport",
    "торгов",
    "ребен",
    "ребён",
    "дет",
    "несовершеннолет",
    "жертв",
    "рабств",
    "паспорт",
    "бала",
    "сауда",
    "құрбан",
    "сатуу",
    "жабырлан",
    "кӯдак",
    "кудак",
    "савдо",
    "қурбон",
    "bola",
    "savdo",
    "jabrlan",
    "qurbon",
    "pasport",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_in_every_language_holds_only_neutral_words() {
        let public_url = url::Url::parse("https://komek.example.org").unwrap_or_else(|e| panic!("{e}"));
        let reference = CaseRef::parse("KMK-7Q2F9X").unwrap_or_else(|e| panic!("{e}"));
        for language in LANGUAGES.iter().chain(["xx", ""].iter()) {
            for event in Event::ALL {
                for urgency in Urgency::ALL {
                    let r = render(language, event, urgency, &reference, &public_url)
                        .unwrap_or_else(|e| panic!("{e}"));
                    assert!(r.subject.contains("KMK-7Q2F9X") && !r.subject.contains('\n'));
                    assert!(
                        r.text
                            .contains("https://komek.example.org/console/cases/KMK-7Q2F9X")
                    );
                    assert!(r.html.contains("KMK-7Q2F9X") && r.html.contains("<a href="));
                    for part in [&r.subject, &r.text, &r.html] {
                        let lower = part.to_lowercase();
                        for word in FORBIDDEN_WORDS {
                            assert!(!lower.contains(word), "{language} {event:?}: `{word}` in {part}");
                        }
                    }
                }
            }
        }
    }
}
