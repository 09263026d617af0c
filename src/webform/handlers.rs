//! The form's routes and the order of their checks.
//!
//! `POST /report`: body limit (413) → CSRF token and cookie (403) and minimum fill time (400) → the same
//! form sent again (a reload, a retry) gets its earlier receipt → per-address budget (429) → honeypot
//! (400) → the organization (404) → the answers (400, saying what to fix) → store and open the case in
//! one transaction (503 when the database is away) → the receipt page. Every refusal is a page in the
//! person's language that keeps what they typed (except a body too large to read) with a fresh token, so
//! pressing Send again works. Submissions that look automated (honeypot, too fast) count against the
//! budget like stored ones; a person's typing mistakes and a lost cookie do not.
//!
//! `POST /report/status`: body limit → budget → CSRF → the code's keyed hash → the case's public status,
//! or the same neutral "not found" for any code that matches nothing. The code travels only in the body.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use diesel::prelude::*;
use futures_util::StreamExt as _;
use minijinja::{Value, context};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization as _;

use super::guard::{self, Purpose, TokenError};
use super::i18n::Lang;
use super::intake::{self, ContactWay, SafeContact, Submission, Under18};
use super::pages::{self, Frame, Pages};
use super::replay::Receipt;
use crate::db::DbError;
use crate::db::schema::organizations;
use crate::domain::{CountryCode, OrgSlug, PhoneNumber};
use crate::state::AppState;

/// Largest report form body accepted (security.md R29).
pub const REPORT_BODY_LIMIT: usize = 32 * 1024;
/// Largest follow-up code form body accepted.
pub const STATUS_BODY_LIMIT: usize = 4 * 1024;

const WHAT_MAX_CHARS: usize = 4000;
const PLACE_MAX_CHARS: usize = 300;
const HOURS_MAX_CHARS: usize = 100;
const PHONE_MAX_CHARS: usize = 40;

/// Mounts the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/report")
            .route(web::get().to(show_form))
            .route(web::post().to(submit)),
    )
    .service(
        web::resource("/report/status")
            .route(web::get().to(show_status))
            .route(web::post().to(check_status)),
    )
    .service(web::resource("/report/style.css").route(web::get().to(stylesheet)));
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(pages::STYLESHEET)
}

/// What the request says about language and organization.
struct Ask {
    lang: Lang,
    /// The slug asked for with `?org=`, when it is not the default.
    org: Option<String>,
}

fn ask(req: &HttpRequest, state: &AppState) -> Ask {
    let query: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let lang = get("lang")
        .and_then(Lang::parse)
        .or_else(|| {
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|h| h.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::DEFAULT);
    let org = get("org")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != state.settings.web_form_org)
        .map(str::to_owned);
    Ask { lang, org }
}

/// Per-request rendering context.
struct Page<'a> {
    pages: &'static Pages,
    state: &'a AppState,
    lang: Lang,
    org: Option<String>,
    https: bool,
    /// The form cookie: the request's, or a new one to set.
    cookie: String,
    new_cookie: bool,
}

impl<'a> Page<'a> {
    fn new(req: &HttpRequest, state: &'a AppState) -> Result<Page<'a>, Box<HttpResponse>> {
        let exit = state.settings.web_form_quick_exit_url.as_str();
        let pages = Pages::embedded().map_err(|e| {
            tracing::error!(error = %e, "web form pages cannot be built");
            Box::new(pages::fallback(StatusCode::INTERNAL_SERVER_ERROR, exit))
        })?;
        let Ask { lang, org } = ask(req, state);
        let https = state.settings.public_url.scheme() == "https";
        let (cookie, new_cookie) = match guard::cookie_value(req, https) {
            Some(value) => (value, false),
            None => (guard::new_cookie_value(), true),
        };
        Ok(Page {
            pages,
            state,
            lang,
            org,
            https,
            cookie,
            new_cookie,
        })
    }

    fn text(&self, key: &str) -> String {
        self.pages.text(self.lang, key).to_owned()
    }

    fn token(&self, purpose: Purpose) -> String {
        guard::issue(&self.state.crypto, purpose, &self.cookie, now())
    }

    fn html(&self, status: StatusCode, template: &str, path: &'static str, page: Value) -> HttpResponse {
        let frame = Frame {
            lang: self.lang,
            path,
            org: self.org.as_deref(),
            exit_url: self.state.settings.web_form_quick_exit_url.as_str(),
        };
        match self.pages.render(template, &frame, page) {
            Ok(body) => {
                let cookie = self
                    .new_cookie
                    .then(|| guard::make_cookie(self.cookie.clone(), self.https));
                pages::respond(status, self.lang, body, cookie)
            }
            Err(err) => {
                tracing::error!(template, error = %err, "web form page cannot be rendered");
                pages::fallback(StatusCode::INTERNAL_SERVER_ERROR, frame.exit_url)
            }
        }
    }

    fn form(&self, status: StatusCode, values: &FormValues, error: Option<&str>) -> HttpResponse {
        let page = context! {
            token => self.token(Purpose::Report),
            v => values,
            error => error.map(|key| self.text(key)),
        };
        self.html(status, "form.html", "/report", page)
    }

    fn status_form(&self, status: StatusCode, result: Option<&str>, error: Option<&str>) -> HttpResponse {
        let page = context! {
            token => self.token(Purpose::Status),
            result => result.map(|key| self.text(key)),
            error => error.map(|key| self.text(key)),
        };
        self.html(status, "status.html", "/report/status", page)
    }

    fn message(&self, status: StatusCode, title: &str, message: &str, back: bool) -> HttpResponse {
        let page = context! { title => self.text(title), message => self.text(message), back => back };
        self.html(status, "message.html", "/report", page)
    }

    fn address_key(&self, req: &HttpRequest) -> String {
        let address = crate::client_address::of(req, &self.state.settings.trusted_proxies);
        guard::address_key(&self.state.crypto, address)
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The answers as typed, to show again.
#[derive(Debug, Default, Clone, Serialize)]
struct FormValues {
    what: String,
    place: String,
    under_18: String,
    shelter: String,
    contact: String,
    phone: String,
    hours: String,
    consent: bool,
}

/// NFC, no control or bidirectional-override characters (newlines and tabs in the long text stay), trimmed.
fn clean(raw: &str, multiline: bool) -> String {
    let text: String = raw
        .nfc()
        .filter(|c| {
            let bidi =
                matches!(*c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
            let allowed_control = multiline && matches!(*c, '\n' | '\t');
            !bidi && (!c.is_control() || allowed_control)
        })
        .collect();
    text.trim().to_owned()
}

fn parse_fields(body: &[u8]) -> Option<HashMap<String, String>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    let mut fields = HashMap::new();
    for (key, value) in pairs {
        fields.entry(key).or_insert(value);
    }
    Some(fields)
}

impl FormValues {
    fn from_fields(fields: &HashMap<String, String>) -> FormValues {
        let get = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        FormValues {
            what: clean(&get("what").replace("\r\n", "\n"), true),
            place: clean(get("place"), false),
            under_18: clean(get("under_18"), false),
            shelter: clean(get("shelter"), false),
            contact: clean(get("contact"), false),
            phone: clean(get("phone"), false),
            hours: clean(get("hours"), false),
            consent: get("consent") == "yes",
        }
    }

    fn fresh() -> FormValues {
        FormValues {
            contact: "none".to_owned(),
            ..FormValues::default()
        }
    }
}

/// Turns the answers into a submission, or names (by translation key) what to fix.
fn validate(
    values: &FormValues,
    organization_id: &str,
    country: Option<CountryCode>,
    lang: Lang,
) -> Result<Submission, &'static str> {
    if values.what.is_empty() {
        return Err("err_what_missing");
    }
    let too_long = values.what.chars().count() > WHAT_MAX_CHARS
        || values.place.chars().count() > PLACE_MAX_CHARS
        || values.hours.chars().count() > HOURS_MAX_CHARS
        || values.phone.chars().count() > PHONE_MAX_CHARS;
    if too_long {
        return Err("err_text_long");
    }
    let under_18 = match values.under_18.as_str() {
        "yes" => Under18::Yes,
        "no" => Under18::No,
        "unknown" | "" => Under18::Unknown,
        _ => return Err("err_check"),
    };
    let shelter = match values.shelter.as_str() {
        "yes" => true,
        "no" | "" => false,
        _ => return Err("err_check"),
    };
    let way = match values.contact.as_str() {
        "none" | "" => ContactWay::None,
        "sms" => ContactWay::Sms,
        "call" => ContactWay::Call,
        _ => return Err("err_check"),
    };
    if !values.consent {
        return Err("err_consent");
    }
    let contact = match way {
        ContactWay::None => None,
        ContactWay::Sms | ContactWay::Call => {
            if values.phone.is_empty() {
                return Err("err_phone_missing");
            }
            let phone = PhoneNumber::parse(&values.phone, country).map_err(|_| "err_phone")?;
            Some(SafeContact {
                way,
                phone,
                hours: values.hours.clone(),
            })
        }
    };
    Ok(Submission {
        organization_id: organization_id.to_owned(),
        what: values.what.clone(),
        place: values.place.clone(),
        under_18,
        shelter,
        contact,
        lang,
    })
}

/// Reads the body within `limit`; `None` when it is larger.
async fn read_body(req: &HttpRequest, mut payload: web::Payload, limit: usize) -> Option<Vec<u8>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// The organization of the form: id and country; `None` if there is no such hotline.
async fn find_org(state: &AppState, slug: &str) -> Result<Option<(String, Option<CountryCode>)>, DbError> {
    let Ok(slug) = OrgSlug::parse(slug) else {
        return Ok(None);
    };
    let slug = slug.as_str().to_owned();
    state
        .db
        .run(move |conn| {
            let row: Option<(String, Option<String>)> = organizations::table
                .filter(organizations::slug.eq(&slug))
                .filter(organizations::kind.eq("hotline"))
                .select((organizations::id, organizations::country))
                .first(conn)
                .optional()?;
            Ok(row.map(|(id, country)| (id, country.and_then(|c| CountryCode::parse(&c).ok()))))
        })
        .await
}

fn refused(check: &'static str) {
    tracing::warn!(security = true, check, "web form submission refused");
}

async fn show_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let page = match Page::new(&req, &state) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let slug = page
        .org
        .clone()
        .unwrap_or_else(|| state.settings.web_form_org.clone());
    match find_org(&state, &slug).await {
        Ok(Some(_)) => page.form(StatusCode::OK, &FormValues::fresh(), None),
        Ok(None) => page.message(StatusCode::NOT_FOUND, "error_title", "err_no_form", false),
        Err(err) => server_error(&page, err, None),
    }
}

fn server_error(page: &Page<'_>, err: impl Into<DbError>, values: Option<&FormValues>) -> HttpResponse {
    let err = err.into();
    let status = if err.is_unavailable() {
        tracing::warn!(error.code = err.code(), "web form: database unavailable");
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        tracing::error!(error.code = err.code(), error = %err, "web form: database error");
        StatusCode::INTERNAL_SERVER_ERROR
    };
    match values {
        Some(values) => page.form(status, values, Some("err_server")),
        None => page.message(status, "error_title", "err_server", false),
    }
}

async fn submit(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let page = match Page::new(&req, &state) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let Some(body) = read_body(&req, payload, REPORT_BODY_LIMIT).await else {
        refused("body_too_large");
        return page.form(
            StatusCode::PAYLOAD_TOO_LARGE,
            &FormValues::fresh(),
            Some("err_too_large"),
        );
    };
    let Some(fields) = parse_fields(&body) else {
        refused("form_unreadable");
        return page.form(StatusCode::BAD_REQUEST, &FormValues::fresh(), Some("err_check"));
    };
    let values = FormValues::from_fields(&fields);
    let budget_key = page.address_key(&req);
    let budget = &state.webform.submissions;
    let cookie = guard::cookie_value(&req, page.https);
    let token = fields.get("token").map(String::as_str);
    let min_fill = state.settings.web_form_min_fill;
    match guard::verify(
        &state.crypto,
        Purpose::Report,
        cookie.as_deref(),
        token,
        now(),
        min_fill,
    ) {
        Ok(()) => {}
        Err(err) => {
            refused(err.code());
            let (status, message) = match err {
                TokenError::Forged | TokenError::Expired => (StatusCode::FORBIDDEN, "err_token"),
                TokenError::TooFast => (StatusCode::BAD_REQUEST, "err_check"),
            };
            // Too fast is a robot's sign; a missing cookie or an old page is usually a person whose
            // browser was closed in between, and costs them nothing.
            if err == TokenError::TooFast {
                budget.charge(&budget_key);
            }
            return page.form(status, &values, Some(message));
        }
    }
    // The token passed: it is this browser's. The same form sent again gets the same receipt.
    let token = token.unwrap_or_default().to_owned();
    if let Some(receipt) = state.webform.receipts.get(&state.crypto, &token) {
        return receipt_page(&page, receipt);
    }
    if !budget.allows(&budget_key) {
        refused("over_budget");
        return page.form(StatusCode::TOO_MANY_REQUESTS, &values, Some("err_busy"));
    }
    if fields.get("website").is_some_and(|v| !v.is_empty()) {
        refused("honeypot");
        budget.charge(&budget_key);
        return page.form(StatusCode::BAD_REQUEST, &values, Some("err_check"));
    }

    let slug = page
        .org
        .clone()
        .unwrap_or_else(|| state.settings.web_form_org.clone());
    let (organization_id, country) = match find_org(&state, &slug).await {
        Ok(Some(org)) => org,
        Ok(None) => return page.message(StatusCode::NOT_FOUND, "error_title", "err_no_form", false),
        Err(err) => return server_error(&page, err, Some(&values)),
    };
    let submission = match validate(&values, &organization_id, country, page.lang) {
        Ok(submission) => submission,
        Err(message) => return page.form(StatusCode::BAD_REQUEST, &values, Some(message)),
    };

    let code = intake::new_follow_up_code();
    let Some(code_hash) = intake::follow_up_code_hash(&state.crypto, &code) else {
        return page.message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error_title",
            "err_server",
            false,
        );
    };
    let ctx = state.process_context();
    let stored = state
        .db
        .write(move |conn| intake::submit(conn, &ctx, &submission, code_hash))
        .await;
    let receipt = match stored {
        Ok(receipt) => receipt,
        Err(err) => {
            let status = if err.is_unavailable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            tracing::error!(error = %err, status = status.as_u16(), "web form report could not be stored");
            return page.form(status, &values, Some("err_server"));
        }
    };
    budget.charge(&budget_key);
    tracing::info!(case = %receipt.reference, "web form report stored");
    let receipt = Receipt {
        reference: receipt.reference,
        code,
    };
    state
        .webform
        .receipts
        .remember(&state.crypto, &token, receipt.clone());
    receipt_page(&page, receipt)
}

fn receipt_page(page: &Page<'_>, receipt: Receipt) -> HttpResponse {
    let done = context! { reference => receipt.reference, code => receipt.code };
    page.html(StatusCode::OK, "done.html", "/report", done)
}

async fn show_status(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match Page::new(&req, &state) {
        Ok(page) => page.status_form(StatusCode::OK, None, None),
        Err(response) => *response,
    }
}

async fn check_status(req: HttpRequest, payload: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let page = match Page::new(&req, &state) {
        Ok(page) => page,
        Err(response) => return *response,
    };
    let Some(body) = read_body(&req, payload, STATUS_BODY_LIMIT).await else {
        refused("body_too_large");
        return page.status_form(StatusCode::PAYLOAD_TOO_LARGE, None, Some("err_too_large"));
    };
    let fields = parse_fields(&body).unwrap_or_default();
    let budget_key = page.address_key(&req);
    let budget = &state.webform.status_checks;
    if !budget.allows(&budget_key) {
        refused("over_budget");
        return page.status_form(StatusCode::TOO_MANY_REQUESTS, None, Some("err_status_busy"));
    }
    budget.charge(&budget_key);
    let cookie = guard::cookie_value(&req, page.https);
    let token = fields.get("token").map(String::as_str);
    if let Err(err) = guard::verify(
        &state.crypto,
        Purpose::Status,
        cookie.as_deref(),
        token,
        now(),
        Duration::ZERO,
    ) {
        refused(err.code());
        return page.status_form(StatusCode::FORBIDDEN, None, Some("err_token"));
    }
    let typed = fields.get("code").map(String::as_str).unwrap_or_default();
    let Some(hash) = intake::follow_up_code_hash(&state.crypto, typed) else {
        return page.status_form(StatusCode::OK, None, Some("status_not_found"));
    };
    let found = state
        .db
        .run(move |conn| intake::status_by_code(conn, &hash).map_err(DbError::from))
        .await;
    match found {
        Ok(Some(status)) => page.status_form(StatusCode::OK, Some(status.message_key()), None),
        Ok(None) => page.status_form(StatusCode::OK, None, Some("status_not_found")),
        Err(err) => server_error(&page, err, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_strips_controls_and_bidi_overrides() {
        assert_eq!(clean(" a\u{202E}b\u{0007}c \n", false), "abc");
        assert_eq!(clean("line1\nline2\t!", true), "line1\nline2\t!");
        assert_eq!(clean("e\u{0301}", false), "\u{e9}");
    }
}
