//! Rendering the form's pages: minijinja templates embedded with `include_str!` (HTML auto-escaping on
//! for every `.html` template, undefined values are errors), filled with one language's texts, and the
//! headers every page carries: a CSP that allows nothing but this site's stylesheet and forms posting back
//! here, `Cache-Control: no-store`, `Referrer-Policy: no-referrer`, the page's language.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::http::header;
use minijinja::{Environment, UndefinedBehavior, Value, context};
use serde::Serialize;

use super::i18n::{Catalog, Lang};

/// The pages' Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; \
                       frame-ancestors 'none'; img-src 'self'";

/// The stylesheet, served at `/report/style.css`.
pub const STYLESHEET: &str = include_str!("templates/style.css");

const TEMPLATES: [(&str, &str); 5] = [
    ("base.html", include_str!("templates/base.html")),
    ("form.html", include_str!("templates/form.html")),
    ("done.html", include_str!("templates/done.html")),
    ("status.html", include_str!("templates/status.html")),
    ("message.html", include_str!("templates/message.html")),
];

/// The templates and the texts.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
    catalog: &'static Catalog,
}

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub lang: Lang,
    /// The page's own path (`/report` or `/report/status`), for the language links.
    pub path: &'static str,
    /// The organization's slug when it is not the default one (kept in links and form actions).
    pub org: Option<&'a str>,
    /// The quick-exit target.
    pub exit_url: &'a str,
}

#[derive(Serialize)]
struct LangLink {
    code: &'static str,
    name: String,
    href: String,
    current: bool,
}

fn query(lang: Lang, org: Option<&str>) -> String {
    match org {
        Some(org) => {
            let org: String = url::form_urlencoded::byte_serialize(org.as_bytes()).collect();
            format!("lang={}&org={org}", lang.code())
        }
        None => format!("lang={}", lang.code()),
    }
}

impl Pages {
    fn build() -> Result<Pages, String> {
        let catalog = Catalog::embedded().map_err(|e| e.to_string())?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(Pages { env, catalog })
    }

    /// The built-in pages, built once per process.
    pub fn embedded() -> Result<&'static Pages, String> {
        static PAGES: OnceLock<Result<Pages, String>> = OnceLock::new();
        PAGES.get_or_init(Pages::build).as_ref().map_err(Clone::clone)
    }

    /// One text in one language.
    pub fn text<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.catalog.text(lang, key)
    }

    /// Renders `template` inside the frame, with the page's own values in `page`.
    pub fn render(&self, template: &str, frame: &Frame<'_>, page: Value) -> Result<String, minijinja::Error> {
        let langs: Vec<LangLink> = Lang::ALL
            .into_iter()
            .map(|l| LangLink {
                code: l.code(),
                name: self.catalog.text(l, "lang_name").to_owned(),
                href: format!("{}?{}", frame.path, query(l, frame.org)),
                current: l == frame.lang,
            })
            .collect();
        let ctx = context! {
            t => self.catalog.messages(frame.lang),
            lang => frame.lang.code(),
            langs => langs,
            exit_url => frame.exit_url,
            query => query(frame.lang, frame.org),
            ..page
        };
        self.env.get_template(template)?.render(ctx)
    }
}

/// An HTML page response with the form's headers (and the form cookie when one must be set).
pub fn respond(
    status: StatusCode,
    lang: Lang,
    body: String,
    cookie: Option<Cookie<'static>>,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CONTENT_LANGUAGE, lang.code()));
    if let Some(cookie) = cookie {
        response.cookie(cookie);
    }
    response.body(body)
}

/// The last resort when a page cannot be rendered: a tiny fixed page (Russian and English).
pub fn fallback(status: StatusCode, exit_url: &str) -> HttpResponse {
    let exit = minijinja::HtmlEscape(exit_url).to_string();
    let body = format!(
        "<!doctype html><html lang=\"ru\"><meta charset=\"utf-8\"><title>Komek</title>\
         <p><a href=\"{exit}\" rel=\"noreferrer\">Выход / Exit</a></p>\
         <p>Ошибка. Попробуйте позже. / Error. Please try again later.</p></html>"
    );
    respond(status, Lang::Ru, body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_render_in_every_language() -> Result<(), Box<dyn std::error::Error>> {
        let pages = Pages::embedded()?;
        for lang in Lang::ALL {
            let frame = Frame {
                lang,
                path: "/report",
                org: Some("ngo"),
                exit_url: "https://example.org/weather",
            };
            let html = pages.render(
                "message.html",
                &frame,
                context! { title => "T", message => "<b>x</b>", back => true },
            )?;
            assert!(html.contains(&format!("lang=\"{}\"", lang.code())));
            assert!(
                html.contains("&lt;b&gt;x") && !html.contains("<b>x"),
                "auto-escaping is on"
            );
        }
        Ok(())
    }
}
