//! The public web form over HTTP, as a browser without JavaScript uses it: every language renders small,
//! self-contained pages; a submission with a valid token becomes one report and one case and shows a
//! reference and a private code, which shows that case's status; the anti-automation checks (CSRF,
//! honeypot, fill time, per-address budget, body limit) refuse and store nothing; a typed number is kept
//! (unverified, with the form's case only) only when SMS or a call was declared safe, and never joins,
//! reveals or changes anything about that number's contact; and nothing typed is stored or logged in clear.

use crate::backend_tests;
use crate::helpers::{AppOptions, Backend, TestApp, spawn_app_with};

backend_tests!(
    every_language_renders_small_self_contained_pages,
    a_submission_creates_one_report_and_one_case_and_its_code_shows_the_status,
    the_yes_no_answers_raise_the_case,
    missing_or_forged_csrf_is_refused_and_stores_nothing,
    a_filled_honeypot_is_refused_and_stores_nothing,
    a_form_sent_too_fast_is_refused_and_stores_nothing,
    over_the_budget_is_429_and_a_spoofed_forwarded_for_does_not_help,
    an_oversized_body_is_413_and_stores_nothing,
    a_typed_number_is_kept_only_with_the_forms_case_and_only_when_declared_safe,
    a_number_typed_into_the_form_never_captures_that_numbers_messages,
    another_organization_form_and_unknown_organizations,
    form_text_is_not_stored_or_logged_in_clear,
    with_the_database_unavailable_the_form_answers_503_and_keeps_the_text,
);

const COOKIE: &str = "__Host-komek-form";
const EXIT: &str = "https://www.google.com/search?q=%D0%BF%D0%BE%D0%B3%D0%BE%D0%B4%D0%B0";
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'; img-src 'self'";

/// Each language and a text only its page shows (the Send button).
const LANGS: [(&str, &str); 6] = [
    ("ru", "Отправить"),
    ("kk", "Жіберу"),
    ("ky", "Жөнөтүү"),
    ("tg", "Фиристодан"),
    ("uz", "Yuborish"),
    ("en", "Send"),
];

async fn app_with(backend: Backend, options: AppOptions) -> TestApp {
    let app = spawn_app_with(backend, options).await;
    app.create_org("hotline", Some("KZ")).await;
    app
}

async fn app(backend: Backend) -> TestApp {
    app_with(backend, AppOptions::default()).await
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn token(&self) -> String {
        let marker = "name=\"token\" value=\"";
        let start = self.body.find(marker).expect("a token field") + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// The form cookie the page sets, as `name=value`.
    fn cookie(&self) -> Option<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(COOKIE))
            .map(|v| v.split(';').next().unwrap().to_owned())
    }

    fn between(&self, before: &str, after: &str) -> Option<String> {
        let start = self.body.find(before)? + before.len();
        let end = self.body[start..].find(after)? + start;
        Some(self.body[start..end].to_owned())
    }
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>, accept_language: Option<&str>) -> Page {
    let mut request = app.client.get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    if let Some(lang) = accept_language {
        request = request.header("Accept-Language", lang);
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

async fn post(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
    extra_header: Option<(&str, &str)>,
) -> Page {
    let body = serde_urlencoded::to_string(fields).unwrap();
    post_raw(app, path, cookie, body.into_bytes(), extra_header).await
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    body: Vec<u8>,
    extra_header: Option<(&str, &str)>,
) -> Page {
    let mut request = app
        .client
        .post(app.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    if let Some((name, value)) = extra_header {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    Page {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// Opens the form (as a browser would) and returns its cookie and token.
async fn open(app: &TestApp, path: &str) -> (String, String) {
    let page = get(app, path, None, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    (page.cookie().expect("the form sets its cookie"), page.token())
}

fn answers<'a>(token: &'a str, what: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("token", token),
        ("what", what),
        ("place", "Almaty"),
        ("under_18", "unknown"),
        ("shelter", "no"),
        ("contact", "none"),
        ("phone", ""),
        ("hours", ""),
        ("website", ""),
        ("consent", "yes"),
    ]
}

fn with<'a>(
    mut fields: Vec<(&'static str, &'a str)>,
    name: &'static str,
    value: &'a str,
) -> Vec<(&'static str, &'a str)> {
    fields.retain(|(k, _)| *k != name);
    fields.push((name, value));
    fields
}

/// Sends a report as a person would; returns the receipt page.
async fn report(app: &TestApp, fields: impl Fn(&str) -> Vec<(&'static str, String)>) -> Page {
    let (cookie, token) = open(app, "/report?lang=ru").await;
    let owned = fields(&token);
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post(app, "/report?lang=ru", Some(&cookie), &borrowed, None).await
}

fn owned(fields: Vec<(&'static str, &str)>) -> Vec<(&'static str, String)> {
    fields.into_iter().map(|(k, v)| (k, v.to_owned())).collect()
}

fn unescape(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
}

fn assert_page_is_safe(page: &Page, what: &str) {
    assert!(page.body.len() < 30 * 1024, "{what} is {} bytes", page.body.len());
    assert!(
        !page.body.to_lowercase().contains("<script"),
        "{what} has a script"
    );
    for attr in ["src=\"", "href=\"", "action=\""] {
        for piece in page.body.split(attr).skip(1) {
            let value = unescape(&piece[..piece.find('"').unwrap()]);
            assert!(
                value.starts_with('/') && !value.starts_with("//") || value == EXIT,
                "{what} links outside: {value}"
            );
        }
    }
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    assert_eq!(header("content-security-policy"), CSP, "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert!(page.body.contains("class=\"exit\""), "{what} has the quick exit");
}

async fn every_language_renders_small_self_contained_pages(backend: Backend) {
    let app = app(backend).await;
    for (lang, send) in LANGS {
        for path in [
            format!("/report?lang={lang}"),
            format!("/report/status?lang={lang}"),
        ] {
            let page = get(&app, &path, None, None).await;
            assert_eq!(page.status, 200, "{path}");
            assert!(page.body.contains(&format!("<html lang=\"{lang}\">")), "{path}");
            assert!(page.body.contains("class=\"exit\""), "{path} has the quick exit");
            assert_page_is_safe(&page, &path);
            if path.starts_with("/report?") {
                assert!(page.body.contains(send), "{path} is translated");
                for (other, _) in LANGS {
                    assert!(page.body.contains(&format!("hreflang=\"{other}\"")) || other == lang);
                }
            }
        }
    }
    // No ?lang: the browser's language, else Russian.
    let page = get(&app, "/report", None, Some("kk-KZ,kk;q=0.9,ru;q=0.8")).await;
    assert!(page.body.contains("<html lang=\"kk\">"));
    let page = get(&app, "/report", None, Some("de-DE")).await;
    assert!(page.body.contains("<html lang=\"ru\">"));
    let page = get(&app, "/report?lang=xx", None, None).await;
    assert!(page.body.contains("<html lang=\"ru\">"));
    // The cookie is host-only, strict and hidden from scripts.
    let set_cookie = page
        .headers
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    for part in [
        "__Host-komek-form=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    ] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Domain"));
    let css = app.get("/report/style.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.text().await.unwrap().len() < 8 * 1024);
}

fn reference_and_code(page: &Page) -> (String, String) {
    let reference = page.between("class=\"code\">", "<").expect("a reference");
    let code = page.between("class=\"code big\">", "<").expect("a code");
    (reference, code)
}

async fn check(app: &TestApp, code: &str) -> Page {
    let (cookie, token) = open(app, "/report/status?lang=ru").await;
    post(
        app,
        "/report/status?lang=ru",
        Some(&cookie),
        &[("token", &token), ("code", code)],
        None,
    )
    .await
}

async fn a_submission_creates_one_report_and_one_case_and_its_code_shows_the_status(backend: Backend) {
    let app = app(backend).await;
    let page = report(&app, |token| {
        owned(answers(token, "Работодатель забрал паспорт, не платит"))
    })
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_page_is_safe(&page, "receipt");
    let (reference, code) = reference_and_code(&page);
    assert!(
        reference.starts_with("KMK-") && reference.len() == 10,
        "{reference}"
    );
    let plain: String = code.chars().filter(|c| *c != '-').collect();
    assert!(plain.len() >= 10, "{code}");
    assert!(page.body.contains("Храните этот код в тайне"));
    assert_eq!(app.count("reports WHERE source = 'web'").await, 1);
    assert_eq!(app.count("reports WHERE triage_status = 'done'").await, 1);
    assert_eq!(app.count("cases").await, 1);
    assert_eq!(
        app.count(&format!(
            "cases WHERE reference = '{reference}' AND follow_up_code_hash IS NOT NULL"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!("cases WHERE follow_up_code_hash LIKE '%{plain}%'"))
            .await,
        0
    );
    assert_eq!(app.count("consents WHERE purpose = 'report_storage'").await, 1);

    // The code, typed loosely, shows the status and nothing else.
    let status = check(&app, &format!(" {} ", code.to_lowercase())).await;
    assert_eq!(status.status, 200);
    assert_page_is_safe(&status, "status");
    assert!(status.body.contains("Ваше сообщение получено"), "{}", status.body);
    assert!(!status.body.contains(&reference) && !status.body.contains("паспорт"));
    app.db
        .write(|conn| {
            use diesel::RunQueryDsl as _;
            diesel::sql_query("UPDATE cases SET status = 'in_progress'")
                .execute(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    assert!(check(&app, &code).await.body.contains("Наша команда работает"));
    app.db
        .write(|conn| {
            use diesel::RunQueryDsl as _;
            diesel::sql_query("UPDATE cases SET status = 'closed'")
                .execute(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    assert!(check(&app, &code).await.body.contains("Ваше дело закрыто"));

    // A wrong code (well-formed or not) gets the same neutral answer.
    for wrong in ["AAAA-AAAA-AAAA", "hello", reference.as_str()] {
        let page = check(&app, wrong).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("не найдено"), "{wrong}");
        assert!(!page.body.contains("закрыто") && !page.body.contains("получено"));
    }
    // The same form sent again (a reload, a retry) shows the same receipt and opens nothing new.
    let (cookie, token) = open(&app, "/report?lang=ru").await;
    let fields = answers(&token, "второй раз");
    let first = post(&app, "/report?lang=ru", Some(&cookie), &fields, None).await;
    let again = post(&app, "/report?lang=ru", Some(&cookie), &fields, None).await;
    assert_eq!(again.status, 200);
    assert_eq!(reference_and_code(&first), reference_and_code(&again));
    assert_eq!(app.count("cases").await, 2);
    // The status check needs its own form's token.
    let (cookie, token) = open(&app, "/report?lang=ru").await;
    let page = post(
        &app,
        "/report/status",
        Some(&cookie),
        &[("token", &token), ("code", &code)],
        None,
    )
    .await;
    assert_eq!(page.status, 403);
}

async fn the_yes_no_answers_raise_the_case(backend: Backend) {
    let app = app(backend).await;
    let page = report(&app, |token| {
        owned(with(
            with(answers(token, "We need help"), "under_18", "yes"),
            "shelter",
            "yes",
        ))
    })
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        app.count(
            "cases WHERE child_victim = TRUE AND shelter_needed = TRUE AND risk IN ('high', 'critical')"
        )
        .await,
        1
    );
    assert_eq!(app.count("outbox WHERE topic = 'case_child'").await, 1);
    // "No" lowers nothing, and a plain report stays plain.
    let page = report(&app, |token| {
        owned(with(answers(token, "We need help"), "under_18", "no"))
    })
    .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        app.count("cases WHERE child_victim = FALSE AND shelter_needed = FALSE")
            .await,
        1
    );
}

async fn missing_or_forged_csrf_is_refused_and_stores_nothing(backend: Backend) {
    let app = app(backend).await;
    let (cookie, token) = open(&app, "/report?lang=en").await;
    let (other_cookie, _) = open(&app, "/report?lang=en").await;
    let what = "someone took my passport";
    let cases: Vec<(Option<&str>, String)> = vec![
        (None, token.clone()),
        (Some(&cookie), String::new()),
        (Some(&cookie), format!("{}.{}", 1_700_000_000, "00".repeat(32))),
        (Some(&other_cookie), token.clone()),
        (Some(&cookie), token.replacen('.', "0.", 1)),
    ];
    for (cookie, token) in cases {
        let page = post(&app, "/report?lang=en", cookie, &answers(&token, what), None).await;
        assert_eq!(page.status, 403, "{cookie:?} {token}");
        assert!(page.body.contains("This page has expired"));
        assert!(page.body.contains(what), "the text is kept");
    }
    assert_eq!(app.count("reports").await, 0);
    assert_eq!(app.count("cases").await, 0);
}

async fn a_filled_honeypot_is_refused_and_stores_nothing(backend: Backend) {
    let app = app(backend).await;
    let (cookie, token) = open(&app, "/report?lang=en").await;
    let fields = with(
        answers(&token, "buy cheap pills"),
        "website",
        "http://spam.example",
    );
    let page = post(&app, "/report?lang=en", Some(&cookie), &fields, None).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Please check the form"));
    assert!(!page.body.contains("spam.example"));
    assert_eq!(app.count("reports").await, 0);
    assert_eq!(app.count("cases").await, 0);
}

async fn a_form_sent_too_fast_is_refused_and_stores_nothing(backend: Backend) {
    let app = app_with(
        backend,
        AppOptions {
            web_form_min_fill_secs: 60,
            ..AppOptions::default()
        },
    )
    .await;
    let (cookie, token) = open(&app, "/report?lang=tg").await;
    let page = post(
        &app,
        "/report?lang=tg",
        Some(&cookie),
        &answers(&token, "кӯмак"),
        None,
    )
    .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("<html lang=\"tg\">") && page.body.contains("кӯмак"));
    assert_eq!(app.count("reports").await, 0);
}

async fn over_the_budget_is_429_and_a_spoofed_forwarded_for_does_not_help(backend: Backend) {
    let app = app_with(
        backend,
        AppOptions {
            web_form_submissions_per_hour: 2,
            ..AppOptions::default()
        },
    )
    .await;
    for _ in 0..2 {
        let page = report(&app, |token| owned(answers(token, "помогите"))).await;
        assert_eq!(page.status, 200);
    }
    let page = report(&app, |token| owned(answers(token, "третье сообщение"))).await;
    assert_eq!(page.status, 429);
    assert!(page.body.contains("слишком много") && page.body.contains("третье сообщение"));
    let (cookie, token) = open(&app, "/report?lang=ru").await;
    let page = post(
        &app,
        "/report?lang=ru",
        Some(&cookie),
        &answers(&token, "ещё"),
        Some(("X-Forwarded-For", "203.0.113.9")),
    )
    .await;
    assert_eq!(
        page.status, 429,
        "X-Forwarded-For from an untrusted peer is ignored"
    );
    assert_eq!(app.count("reports").await, 2);
}

async fn an_oversized_body_is_413_and_stores_nothing(backend: Backend) {
    let app = app(backend).await;
    let (cookie, token) = open(&app, "/report?lang=uz").await;
    let long = "a".repeat(40 * 1024);
    let page = post(
        &app,
        "/report?lang=uz",
        Some(&cookie),
        &answers(&token, &long),
        None,
    )
    .await;
    assert_eq!(page.status, 413);
    assert!(page.body.contains("<html lang=\"uz\">") && page.body.contains("juda uzun"));
    // Within the body limit but over the text limit: 400, saying what to fix.
    let long = "b".repeat(4001);
    let page = post(
        &app,
        "/report?lang=uz",
        Some(&cookie),
        &answers(&token, &long),
        None,
    )
    .await;
    assert_eq!(page.status, 400);
    let page = post(
        &app,
        "/report/status",
        Some(&cookie),
        &[("code", &"c".repeat(8 * 1024))],
        None,
    )
    .await;
    assert_eq!(page.status, 413);
    assert_eq!(app.count("reports").await, 0);
}

async fn a_typed_number_is_kept_only_with_the_forms_case_and_only_when_declared_safe(backend: Backend) {
    let app = app(backend).await;
    // A number typed without saying contact is safe is dropped.
    let page = report(&app, |token| {
        owned(with(answers(token, "help"), "phone", "+7 701 555 12 34"))
    })
    .await;
    assert_eq!(page.status, 200);
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("consents WHERE purpose LIKE 'contact%'").await, 0);
    assert_eq!(
        app.count("cases WHERE contact_id IS NULL AND silent = TRUE")
            .await,
        1
    );

    // SMS chosen without a number, or with one that cannot be read: 400, nothing stored.
    for phone in ["", "not a number"] {
        let page = report(&app, |token| {
            owned(with(
                with(answers(token, "help"), "contact", "sms"),
                "phone",
                phone,
            ))
        })
        .await;
        assert_eq!(page.status, 400, "{phone}");
    }
    assert_eq!(app.count("reports").await, 1);

    // SMS declared safe, in the national format of the organization's country: consent on the form's case,
    // the number sealed with its report; no contact anywhere.
    let page = report(&app, |token| {
        let fields = with(
            with(answers(token, "help"), "contact", "sms"),
            "phone",
            "8 701 555 12 34",
        );
        owned(with(fields, "hours", "after 18:00"))
    })
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(
        app.count("consents WHERE purpose = 'contact_sms' AND source = 'web' AND contact_id IS NULL")
            .await,
        1
    );
    assert_eq!(app.count("cases WHERE contact_id IS NOT NULL").await, 0);
    assert_eq!(app.count("reports WHERE contact_id IS NOT NULL").await, 0);
    assert_eq!(app.count("cases WHERE silent = TRUE").await, 2);

    // A call declared safe: the case may be phoned.
    let page = report(&app, |token| {
        owned(with(
            with(answers(token, "help"), "contact", "call"),
            "phone",
            "+77015551234",
        ))
    })
    .await;
    assert_eq!(page.status, 200);
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("consents WHERE purpose = 'contact_call'").await, 1);
    assert_eq!(app.count("cases WHERE silent = FALSE").await, 1);
    // Each web report opened its own case.
    assert_eq!(app.count("cases").await, 3);

    // Staff who may see the reporter see the declared number, marked unverified.
    let org = app.org_id("hotline").await;
    let (_, operator) = app.staff(&org, komek::domain::Role::Operator).await;
    let case_id = case_of_newest_web_report(&app).await;
    let case = read_case(&app, &case_id, &operator.access).await;
    let declared = &case["declared_contacts"];
    assert_eq!(declared.as_array().map(Vec::len), Some(1), "{case}");
    assert_eq!(declared[0]["phone"], "+77015551234");
    assert_eq!(declared[0]["way"], "call");
    assert_eq!(declared[0]["verified"], false);
}

async fn case_of_newest_web_report(app: &TestApp) -> String {
    use diesel::prelude::*;
    use komek::db::schema::reports;
    app.db
        .run(|conn| {
            reports::table
                .filter(reports::source.eq("web"))
                .order(reports::id.desc())
                .select(reports::case_id.assume_not_null())
                .first::<String>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap()
}

async fn read_case(app: &TestApp, case_id: &str, token: &str) -> serde_json::Value {
    let response = app
        .authed(reqwest::Method::GET, &format!("/api/v1/cases/{case_id}"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn reports_of(app: &TestApp, case_id: &str) -> i64 {
    app.count(&format!("reports WHERE case_id = '{case_id}'")).await
}

/// The attack: whoever holds a victim's phone (or knows the number) types it into the public form asking
/// to be called, hoping to pull the victim's later messages into a case whose status they can follow.
async fn a_number_typed_into_the_form_never_captures_that_numbers_messages(backend: Backend) {
    use komek::domain::Role;
    let app = app(backend).await;
    let org = app.org_id("hotline").await;
    let channel = app.sms_channel(&org).await;
    let victim = "+77015550777";

    // The victim writes first: case A.
    assert_eq!(
        app.send_sms(&channel, "victim-1", victim, "pomogite zabrali pasport")
            .await,
        200
    );
    let case_a = case_of_newest_sms(&app).await;
    assert_eq!(app.count("contacts").await, 1);

    // Someone else fills the form with the victim's number and "call me": case B, its code.
    let page = report(&app, |token| {
        let fields = with(
            with(answers(token, "ищу человека"), "contact", "call"),
            "phone",
            victim,
        );
        owned(with(fields, "hours", "any time"))
    })
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (_, code) = reference_and_code(&page);
    let case_b = case_of_newest_web_report(&app).await;
    assert_ne!(case_a, case_b);
    let received = check(&app, &code).await;
    assert!(
        received.body.contains("Ваше сообщение получено"),
        "{}",
        received.body
    );

    // Nothing joined, revealed or changed about the victim's contact.
    assert_eq!(app.count("contacts").await, 1, "no contact made or found");
    assert_eq!(app.count("contacts WHERE safe_contact_enc IS NOT NULL").await, 0);
    assert_eq!(app.count("consents WHERE contact_id IS NOT NULL").await, 0);
    assert_eq!(
        app.count(&format!("cases WHERE id = '{case_b}' AND contact_id IS NULL"))
            .await,
        1
    );

    // The victim's next message goes to their own case A, not to B.
    assert_eq!(
        app.send_sms(&channel, "victim-2", victim, "oni zdes, srochno")
            .await,
        200
    );
    assert_eq!(reports_of(&app, &case_a).await, 2);
    assert_eq!(reports_of(&app, &case_b).await, 1);

    // Staff take A up; B's public status does not move, and its page says nothing about the number.
    let (_, supervisor) = app.staff(&org, Role::Supervisor).await;
    let response = app
        .authed(
            reqwest::Method::POST,
            &format!("/api/v1/cases/{case_a}/acknowledge"),
            &supervisor.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let still = check(&app, &code).await;
    assert!(still.body.contains("Ваше сообщение получено"), "{}", still.body);
    assert!(!still.body.contains("0777") && !still.body.contains("KMK-"));

    // Nothing of the victim's ever reached B's timeline.
    assert_eq!(
        app.count(&format!(
            "case_events WHERE case_id = '{case_b}' AND kind <> 'opened' AND kind <> 'triage'"
        ))
        .await,
        0
    );
}

async fn case_of_newest_sms(app: &TestApp) -> String {
    use diesel::prelude::*;
    use komek::db::schema::reports;
    app.db
        .run(|conn| {
            reports::table
                .filter(reports::source.eq("sms"))
                .order(reports::id.desc())
                .select(reports::case_id.assume_not_null())
                .first::<String>(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap()
}

async fn another_organization_form_and_unknown_organizations(backend: Backend) {
    let app = app(backend).await;
    app.create_org("ngo-bishkek", Some("KG")).await;
    let page = get(&app, "/report?org=ngo-bishkek&lang=ky", None, None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("org=ngo-bishkek"),
        "links keep the organization"
    );
    let (cookie, token) = open(&app, "/report?org=ngo-bishkek&lang=ky").await;
    let fields = with(
        with(answers(&token, "жардам"), "contact", "sms"),
        "phone",
        "0555 123 456",
    );
    let page = post(
        &app,
        "/report?org=ngo-bishkek&lang=ky",
        Some(&cookie),
        &fields,
        None,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        app.count("consents WHERE purpose = 'contact_sms'").await,
        1,
        "a Kyrgyz national number, read with KG"
    );
    assert_eq!(app.count("contacts").await, 0);
    for path in ["/report?org=nobody", "/report?org=%3Cscript%3E"] {
        let page = get(&app, path, None, None).await;
        assert_eq!(page.status, 404, "{path}");
        assert_page_is_safe(&page, path);
    }
}

async fn form_text_is_not_stored_or_logged_in_clear(backend: Backend) {
    let app = app(backend).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let digits: String = unique
        .chars()
        .filter(char::is_ascii_digit)
        .chain("1234567".chars())
        .take(7)
        .collect();
    let phone = format!("+7701{digits}");
    let what = format!("webcanary-{unique} забрали паспорт");
    let place = format!("placecanary-{}", &unique[..12]);
    let hours = format!("hourscanary-{}", &unique[12..24]);
    let page = report(&app, |token| {
        let fields = with(with(answers(token, &what), "contact", "sms"), "phone", &phone);
        owned(with(with(fields, "place", &place), "hours", &hours))
    })
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (_, code) = reference_and_code(&page);
    let code_plain: String = code.chars().filter(|c| *c != '-').collect();
    let national = phone.trim_start_matches("+7").to_owned();
    let needles = [
        unique.clone(),
        phone.clone(),
        phone[1..].to_owned(),
        national,
        place.clone(),
        hours.clone(),
        code.clone(),
        code_plain,
    ];
    crate::helpers::assert_nothing_in_clear(
        &app,
        &needles.iter().map(String::as_str).collect::<Vec<_>>(),
        "reports",
    );
}

async fn with_the_database_unavailable_the_form_answers_503_and_keeps_the_text(backend: Backend) {
    let app = app_with(
        backend,
        AppOptions {
            sqlite_busy_timeout_ms: 200,
            db_checkout_timeout_ms: 500,
            ..AppOptions::default()
        },
    )
    .await;
    let (cookie, token) = open(&app, "/report?lang=en").await;
    let what = "they locked us in the workshop";
    let outage = crate::helpers::Outage::begin(&app).await;
    let page = post(
        &app,
        "/report?lang=en",
        Some(&cookie),
        &answers(&token, what),
        None,
    )
    .await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains(what), "the text is kept to send again");
    assert!(page.body.contains("try again"));
    outage.end(&app).await;
    assert_eq!(app.count("reports").await, 0);
    // Sending again once the database is back works (the page gave a fresh token).
    let retry = page.token();
    let page = post(
        &app,
        "/report?lang=en",
        Some(&cookie),
        &answers(&retry, what),
        None,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(app.count("cases").await, 1);
}
