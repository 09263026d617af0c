//! Staff sign-in and tokens, black-box: login with a second factor, replay and enumeration resistance, the
//! JWT negative suite, revocation on logout / disable / password change, refresh rotation with reuse
//! detection, the cookie + CSRF path, and the users admin API's permissions and tenancy.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use komek::domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{AppOptions, Backend, TestApp, spawn_app, spawn_app_tweaked};

backend_tests!(
    login_with_totp_works_and_a_new_account_must_change_its_password,
    login_fails_alike_without_a_code_with_a_replayed_code_or_for_unknown_accounts,
    forged_expired_and_misused_tokens_are_all_refused,
    logout_revokes_and_disable_or_role_change_take_effect_on_the_next_request,
    refresh_tokens_rotate_and_a_reused_one_revokes_the_session,
    password_change_applies_the_policy_and_ends_other_sessions,
    the_session_cookie_needs_a_csrf_token_for_unsafe_methods,
    users_admin_api_is_for_admins_of_the_same_organization,
    brute_force_is_slowed_per_account_and_address,
    row_level_security_hides_other_organizations_in_a_scoped_transaction,
    keys_rotate_adds_a_jwt_key_and_rewraps_every_data_key,
    unknown_accounts_take_as_long_as_wrong_passwords,
    logs_carry_no_credentials_or_email_addresses,
    without_require_mfa_a_login_needs_no_code_but_a_given_code_is_checked,
    user_reset_on_the_command_line_recovers_a_locked_out_account,
);

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.authed(Method::GET, "/api/v1/me", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn login_with_totp_works_and_a_new_account_must_change_its_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let user = app.create_user(&org, Role::Operator).await;
    let response = app
        .post_login(
            &json!({ "email": user.email.to_uppercase(), "password": user.password, "totp": user.totp() }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((60..=900).contains(&expires_in), "{expires_in}");
    let access = body["access_token"].as_str().unwrap();
    assert!(body["refresh_token"].as_str().unwrap().starts_with("kmr1_"));

    let me: Value = app
        .authed(Method::GET, "/api/v1/me", access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], user.id.as_str());
    assert_eq!(me["role"], "operator");
    assert_eq!(me["must_change_password"], true);
    assert_eq!(me["permissions"], json!(["own_account"]));

    // Until the one-time password is changed, only /me, /me/password and logout work.
    let response = app
        .authed(Method::GET, "/api/v1/users", access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "password_change_required");

    let entries = app.audit_entries().await;
    let success = entries.iter().find(|e| e.action == "login_succeeded").unwrap();
    assert_eq!(success.actor_id.as_deref(), Some(user.id.as_str()));
    assert_eq!(success.organization_id.as_deref(), Some(org.as_str()));
    let text = format!("{entries:?}");
    assert!(
        !text.contains(&user.email) && !text.contains(&user.password),
        "no PII in audit entries"
    );
}

async fn login_fails_alike_without_a_code_with_a_replayed_code_or_for_unknown_accounts(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let user = app.create_user(&org, Role::Caseworker).await;

    let mut answers = Vec::new();
    for body in [
        json!({ "email": user.email, "password": user.password }),
        json!({ "email": user.email, "password": user.password, "totp": "000000" }),
        json!({ "email": user.email, "password": "wrong password, long enough", "totp": user.totp() }),
        json!({ "email": "nobody@example.org", "password": user.password, "totp": user.totp() }),
        json!({ "email": "not an email", "password": "x", "totp": "1" }),
    ] {
        let response = app.post_login(&body).await;
        let status = response.status().as_u16();
        answers.push((status, response.text().await.unwrap()));
    }
    for (status, body) in &answers {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(body, &answers[0].1, "every failure answers the same body");
    }

    let code = user.totp();
    let first = app
        .post_login(&json!({ "email": user.email, "password": user.password, "totp": code }))
        .await;
    assert_eq!(first.status(), 200);
    let replay = app
        .post_login(&json!({ "email": user.email, "password": user.password, "totp": code }))
        .await;
    assert_eq!(replay.status(), 401, "the same code is accepted once");
    // A code from two steps ago is refused.
    app.forget_totp_step(&user.id).await;
    let old = app
        .post_login(&json!({ "email": user.email, "password": user.password, "totp": user.totp_at(-60) }))
        .await;
    assert_eq!(old.status(), 401);

    let reasons: Vec<String> = app
        .audit_entries()
        .await
        .into_iter()
        .filter(|e| e.action == "login_failed")
        .filter_map(|e| e.details)
        .collect();
    for reason in ["mfa_missing", "mfa_invalid", "wrong_password", "unknown_account"] {
        assert!(
            reasons.iter().any(|d| d.contains(reason)),
            "{reason} in {reasons:?}"
        );
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    use hmac::Mac as _;
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(secret).unwrap();
    mac.update(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn forged_expired_and_misused_tokens_are_all_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let (user, tokens) = app.staff(&org, Role::Supervisor).await;
    assert_eq!(me_status(&app, &tokens.access).await, 200);

    let key = app.keys.jwt.last().unwrap();
    let secret = key.secret.expose().clone();
    let kid = key.kid.clone();
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid });
    let valid = claims_of(&tokens.access);
    let now = chrono::Utc::now().timestamp();
    // Sanity: re-signing the real claims ourselves gives a token the server accepts.
    assert_eq!(me_status(&app, &hs256(&header, &valid, &secret)).await, 200);

    let with = |field: &str, value: Value| {
        let mut claims = valid.clone();
        claims[field] = value;
        claims
    };
    let mut cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({ "alg": "none", "typ": "at+jwt", "kid": kid })),
                b64(&valid)
            ),
        ),
        ("signed with another key", hs256(&header, &valid, &[7u8; 32])),
        (
            "unknown kid",
            hs256(
                &json!({ "alg": "HS256", "typ": "at+jwt", "kid": "nope" }),
                &valid,
                &secret,
            ),
        ),
        (
            "kid as a path",
            hs256(
                &json!({ "alg": "HS256", "typ": "at+jwt", "kid": "../../etc/passwd" }),
                &valid,
                &secret,
            ),
        ),
        (
            "no kid",
            hs256(&json!({ "alg": "HS256", "typ": "at+jwt" }), &valid, &secret),
        ),
        (
            "HS512",
            hs256(
                &json!({ "alg": "HS512", "typ": "at+jwt", "kid": kid }),
                &valid,
                &secret,
            ),
        ),
        (
            "expired beyond the leeway",
            hs256(&header, &with("exp", json!(now - 11)), &secret),
        ),
        (
            "exp as a string",
            hs256(&header, &with("exp", json!("never")), &secret),
        ),
        ("no exp", {
            let mut claims = valid.clone();
            claims.as_object_mut().unwrap().remove("exp");
            hs256(&header, &claims, &secret)
        }),
        (
            "issued in the future",
            hs256(&header, &with("iat", json!(now + 3600)), &secret),
        ),
        (
            "wrong aud",
            hs256(&header, &with("aud", json!("komek-referrals")), &secret),
        ),
        (
            "wrong iss",
            hs256(&header, &with("iss", json!("https://evil.example")), &secret),
        ),
        (
            "wrong typ claim",
            hs256(&header, &with("typ", json!("refresh")), &secret),
        ),
        (
            "wrong typ header",
            hs256(
                &json!({ "alg": "HS256", "typ": "JWT", "kid": kid }),
                &valid,
                &secret,
            ),
        ),
        (
            "another user's sub",
            hs256(&header, &with("sub", json!("someone-else")), &secret),
        ),
        (
            "unknown session",
            hs256(&header, &with("sid", json!("no-session")), &secret),
        ),
        (
            "stale stamp",
            hs256(&header, &with("stp", json!("0000")), &secret),
        ),
        ("a refresh token as access token", tokens.refresh.clone()),
        ("garbage", "not.a.token".to_owned()),
    ];
    // A token that expired long ago, signed by the server's own code path.
    let expired = komek::auth::jwt::JwtKeys::new(
        app.keys.clone(),
        app.settings.public_url.as_str().trim_end_matches('/').to_owned(),
    )
    .sign(&komek::auth::jwt::AccessClaims {
        iss: valid["iss"].as_str().unwrap().to_owned(),
        aud: valid["aud"].as_str().unwrap().to_owned(),
        sub: user.id.clone(),
        iat: now - 3600,
        exp: now - 1800,
        jti: "j".into(),
        typ: "access".into(),
        sid: valid["sid"].as_str().unwrap().to_owned(),
        org: org.clone(),
        stp: valid["stp"].as_str().unwrap().to_owned(),
    })
    .unwrap();
    cases.push(("expired (server-signed)", expired));
    for (name, token) in &cases {
        let response = app.authed(Method::GET, "/api/v1/me", token).send().await.unwrap();
        assert_eq!(response.status(), 401, "{name}");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{name}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{name}");
    }
    // Missing or malformed Authorization headers.
    let response = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("Authorization", format!("Basic {}", tokens.access))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The real token still works: nothing above damaged the session.
    assert_eq!(me_status(&app, &tokens.access).await, 200);
}

async fn logout_revokes_and_disable_or_role_change_take_effect_on_the_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let (_admin, admin_tokens) = app.staff(&org, Role::Admin).await;

    // Logout: the same access token is refused afterwards, and so is its refresh token.
    let (_, tokens) = app.staff(&org, Role::Operator).await;
    assert_eq!(me_status(&app, &tokens.access).await, 200);
    let response = app
        .authed(Method::POST, "/api/v1/auth/logout", &tokens.access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(me_status(&app, &tokens.access).await, 401, "revoked after logout");
    let response = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": tokens.refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // Role change: a supervisor demoted to caseworker loses read_access_log on the next request.
    let (supervisor, sup_tokens) = app.staff(&org, Role::Supervisor).await;
    let case = app.insert_case(&org, false, None).await;
    let log_path = format!("/api/v1/cases/{case}/access-log");
    let status = |token: String, path: String| {
        let app = &app;
        async move {
            app.authed(Method::GET, &path, &token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(sup_tokens.access.clone(), log_path.clone()).await, 200);
    let response = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/users/{}", supervisor.id),
            &admin_tokens.access,
        )
        .json(&json!({ "role": "caseworker" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["role"], "caseworker");
    assert_eq!(status(sup_tokens.access.clone(), log_path.clone()).await, 403);
    let me: Value = app
        .authed(Method::GET, "/api/v1/me", &sup_tokens.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "caseworker");

    // Disable: the next request is refused, login is refused too.
    let (worker, worker_tokens) = app.staff(&org, Role::Caseworker).await;
    assert_eq!(me_status(&app, &worker_tokens.access).await, 200);
    let response = app
        .authed(
            Method::POST,
            &format!("/api/v1/users/{}/disable", worker.id),
            &admin_tokens.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(me_status(&app, &worker_tokens.access).await, 401, "disabled user");
    app.forget_totp_step(&worker.id).await;
    let response = app
        .post_login(&json!({ "email": worker.email, "password": worker.password, "totp": worker.totp() }))
        .await;
    assert_eq!(response.status(), 401);
    // Enabled again, they can sign in (their old tokens stay dead: the stamp changed).
    let response = app
        .authed(
            Method::POST,
            &format!("/api/v1/users/{}/enable", worker.id),
            &admin_tokens.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(me_status(&app, &worker_tokens.access).await, 401);
    let again = app.login(&worker).await;
    assert_eq!(me_status(&app, &again.access).await, 200);
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": token }))
        .send()
        .await
        .unwrap()
}

async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let (_, tokens) = app.staff(&org, Role::Operator).await;
    let response = refresh(&app, &tokens.refresh).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let second_access = body["access_token"].as_str().unwrap().to_owned();
    let second_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, tokens.refresh);
    assert_eq!(me_status(&app, &second_access).await, 200);

    // The first refresh token was used: presenting it again is theft, and ends the whole session.
    assert_eq!(refresh(&app, &tokens.refresh).await.status(), 401);
    assert_eq!(
        me_status(&app, &second_access).await,
        401,
        "the session is revoked"
    );
    assert_eq!(refresh(&app, &second_refresh).await.status(), 401);
    assert!(
        app.audit_entries()
            .await
            .iter()
            .any(|e| e.action == "refresh_token_reused")
    );
    assert_eq!(refresh(&app, "kmr1_unknown").await.status(), 401);
    assert_eq!(
        refresh(&app, &second_access).await.status(),
        401,
        "an access token is no refresh token"
    );

    // Refresh tokens are stored hashed.
    let stored: Vec<String> = app
        .db
        .run(|conn| {
            use diesel::prelude::*;
            komek::db::schema::refresh_tokens::table
                .select(komek::db::schema::refresh_tokens::token_hash)
                .load(conn)
                .map_err(komek::db::DbError::from)
        })
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert!(
        !stored
            .iter()
            .any(|h| h == &tokens.refresh || h == &second_refresh)
    );

    // The retention job removes ended sessions and their refresh tokens, and nothing else.
    let (_, live) = app.staff(&org, Role::Operator).await;
    let purged = app
        .db
        .write(|conn| {
            let cutoff = chrono::Utc::now().naive_utc() + chrono::Duration::seconds(1);
            komek::auth::sessions::purge_ended(conn, cutoff)
        })
        .await
        .unwrap();
    assert_eq!(purged, 1, "the revoked session");
    assert_eq!(me_status(&app, &live.access).await, 200);
    assert_eq!(refresh(&app, &live.refresh).await.status(), 200);
}

async fn change_password(app: &TestApp, token: &str, current: &str, new: &str) -> reqwest::Response {
    app.authed(Method::POST, "/api/v1/me/password", token)
        .json(&json!({ "current_password": current, "new_password": new }))
        .send()
        .await
        .unwrap()
}

async fn password_change_applies_the_policy_and_ends_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let user = app.create_user(&org, Role::Admin).await;
    let first = app.login(&user).await;
    app.forget_totp_step(&user.id).await;
    let other = app.login(&user).await;

    for (new, code) in [
        ("short", "password_too_short"),
        ("password123456", "password_too_common"),
        ("qwertyuiop123", "password_too_common"),
    ] {
        let response = change_password(&app, &first.access, &user.password, new).await;
        assert_eq!(response.status(), 400, "{new}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{new}");
    }
    let response = change_password(
        &app,
        &first.access,
        "not the password",
        "river tulip copper lantern",
    )
    .await;
    assert_eq!(response.status(), 403);

    let new_password = "river tulip copper lantern";
    let response = change_password(&app, &first.access, &user.password, new_password).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me_status(&app, &fresh).await, 200);
    assert_eq!(me_status(&app, &first.access).await, 401, "the old session ended");
    assert_eq!(me_status(&app, &other.access).await, 401, "other sessions ended");
    // Every permission of the role works now.
    let response = app
        .authed(Method::GET, "/api/v1/users", &fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The one-time password no longer works; the new one does.
    app.forget_totp_step(&user.id).await;
    let response = app
        .post_login(&json!({ "email": user.email, "password": user.password, "totp": user.totp() }))
        .await;
    assert_eq!(response.status(), 401);
    let response = app
        .post_login(&json!({ "email": user.email, "password": new_password, "totp": user.totp() }))
        .await;
    assert_eq!(response.status(), 200);
}

async fn the_session_cookie_needs_a_csrf_token_for_unsafe_methods(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let (_, tokens) = app.staff(&org, Role::Operator).await;
    let csrf = "c".repeat(43);
    let cookie = format!("__Host-komek_session={}; __Host-komek_csrf={csrf}", tokens.access);
    let response = app
        .client
        .get(app.url("/api/v1/me"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a safe method with the session cookie");
    for header in [None, Some("wrong".to_owned()), Some("d".repeat(43))] {
        let mut request = app
            .client
            .post(app.url("/api/v1/auth/logout"))
            .header("Cookie", &cookie);
        if let Some(value) = &header {
            request = request.header("X-CSRF-Token", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 403, "{header:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_failed");
    }
    assert_eq!(
        me_status(&app, &tokens.access).await,
        200,
        "nothing was logged out"
    );
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(me_status(&app, &tokens.access).await, 401);
}

async fn users_admin_api_is_for_admins_of_the_same_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    let org_a = app.create_org("ngo-a", None).await;
    let org_b = app.create_org("ngo-b", None).await;
    let (admin_a, admin) = app.staff(&org_a, Role::Admin).await;
    let (_, admin_b) = app.staff(&org_b, Role::Admin).await;

    // Non-admins: 403, and the denial is audited.
    for role in [
        Role::Supervisor,
        Role::Operator,
        Role::Caseworker,
        Role::ShelterStaff,
    ] {
        let (user, tokens) = app.staff(&org_a, role).await;
        let response = app
            .authed(Method::GET, "/api/v1/users", &tokens.access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{role}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        let entries = app.audit_entries().await;
        let denial = entries
            .iter()
            .rev()
            .find(|e| e.action == "permission_denied")
            .unwrap();
        assert_eq!(denial.actor_id.as_deref(), Some(user.id.as_str()));
        assert_eq!(denial.outcome, "denied");
        assert!(
            denial
                .details
                .as_deref()
                .unwrap_or_default()
                .contains("manage_users")
        );
    }

    // Add: the one-time credentials are returned once.
    let response = app
        .authed(Method::POST, "/api/v1/users", &admin.access)
        .json(&json!({ "email": "New.Worker@Example.org", "role": "caseworker", "child_protection_trained": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["email"], "new.worker@example.org");
    assert!(created["password"].as_str().unwrap().len() >= 16);
    assert!(
        created["totp_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let new_id = created["id"].as_str().unwrap().to_owned();
    // An admin cannot set anyone's password, nor add unknown fields.
    let response = app
        .authed(Method::PATCH, &format!("/api/v1/users/{new_id}"), &admin.access)
        .json(&json!({ "password": "river tulip copper lantern" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .authed(Method::POST, "/api/v1/users", &admin.access)
        .json(&json!({ "email": "x@example.org", "role": "root" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = app
        .authed(Method::POST, "/api/v1/users", &admin.access)
        .json(&json!({ "email": "new.worker@example.org", "role": "operator" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);

    let list: Value = app
        .authed(Method::GET, "/api/v1/users", &admin.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = list["users"].as_array().unwrap();
    assert!(
        users
            .iter()
            .any(|u| u["id"] == new_id.as_str() && u["child_protection_trained"] == true)
    );
    assert!(
        users
            .iter()
            .all(|u| u.get("password_hash").is_none() && u.get("password").is_none())
    );

    // Another organization's admin: 404 on every user route; org A's list does not show them.
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/users/{new_id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/users/{new_id}"),
            Some(json!({ "role": "admin" })),
        ),
        (Method::POST, format!("/api/v1/users/{new_id}/disable"), None),
        (Method::POST, format!("/api/v1/users/{new_id}/enable"), None),
        (
            Method::POST,
            format!("/api/v1/users/{new_id}/second-factor/reset"),
            None,
        ),
    ] {
        let mut request = app.authed(method.clone(), &path, &admin_b.access);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    let list_b: Value = app
        .authed(Method::GET, "/api/v1/users", &admin_b.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !list_b["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["id"] == new_id.as_str())
    );

    // Reset second factor: a new enrolment; the old code no longer works.
    let response = app
        .authed(
            Method::POST,
            &format!("/api/v1/users/{new_id}/second-factor/reset"),
            &admin.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reset: Value = response.json().await.unwrap();
    assert_ne!(reset["totp_uri"], created["totp_uri"]);

    // The last admin cannot demote or disable themselves.
    let response = app
        .authed(
            Method::PATCH,
            &format!("/api/v1/users/{}", admin_a.id),
            &admin.access,
        )
        .json(&json!({ "role": "supervisor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let response = app
        .authed(
            Method::POST,
            &format!("/api/v1/users/{}/disable", admin_a.id),
            &admin.access,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);

    let actions: Vec<String> = app.audit_entries().await.into_iter().map(|e| e.action).collect();
    for action in ["user_created", "users_listed", "second_factor_reset"] {
        assert!(actions.iter().any(|a| a == action), "{action}");
    }
}

async fn brute_force_is_slowed_per_account_and_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let user = app.create_user(&org, Role::Operator).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let response = app
            .post_login(
                &json!({ "email": user.email, "password": "wrong password, long enough", "totp": "123456" }),
            )
            .await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().get("retry-after").is_some());
        }
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(
        statuses[5..].contains(&429),
        "slowed after 5 failures: {statuses:?}"
    );
    // Unknown accounts are slowed the same way (no enumeration through the limiter).
    let mut unknown = Vec::new();
    for _ in 0..8 {
        let response = app
            .post_login(&json!({ "email": "ghost@example.org", "password": "wrong password, long enough", "totp": "1" }))
            .await;
        unknown.push(response.status().as_u16());
    }
    assert!(unknown[5..].contains(&429), "{unknown:?}");
}

async fn row_level_security_hides_other_organizations_in_a_scoped_transaction(backend: Backend) {
    use diesel::prelude::*;
    use komek::db::{AnyConnection, DbError};
    let app = spawn_app(backend).await;
    let org_a = app.create_org("ngo-a", None).await;
    let org_b = app.create_org("ngo-b", None).await;
    app.insert_case(&org_a, false, None).await;
    app.insert_case(&org_b, false, None).await;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let unscoped_count = |conn: &mut AnyConnection| -> Result<i64, DbError> {
        // A query that "forgets" its organization filter.
        Ok(diesel::sql_query("SELECT COUNT(*) AS n FROM cases")
            .get_result::<Count>(conn)?
            .n)
    };
    if backend == Backend::Sqlite {
        // SQLite has no row-level security: write_as works and scopes nothing; the application's own
        // filters are the wall.
        let n = app
            .db
            .write_as(&org_a, move |conn| unscoped_count(conn))
            .await
            .unwrap();
        assert_eq!(n, 2);
        let n = app
            .db
            .run_as(&org_a, move |conn| unscoped_count(conn))
            .await
            .unwrap();
        assert_eq!(n, 2);
        return;
    }
    // The test server connects as a superuser, which bypasses RLS; probe as an ordinary role, as the
    // service must run in production.
    let role = format!(
        "komek_rls_probe_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let setup = format!(
        "CREATE ROLE {role} NOLOGIN; GRANT SELECT, INSERT ON cases TO {role}; GRANT SELECT ON organizations TO {role}"
    );
    app.db
        .run(move |conn| {
            use diesel::connection::SimpleConnection as _;
            conn.batch_execute(&setup).map_err(DbError::from)
        })
        .await
        .unwrap();
    let set_role = format!("SET LOCAL ROLE {role}");
    let probe = set_role.clone();
    let scoped = app
        .db
        .write_as(&org_a, move |conn| {
            diesel::sql_query(&probe).execute(conn)?;
            unscoped_count(conn)
        })
        .await
        .unwrap();
    assert_eq!(scoped, 1, "a transaction scoped to org A sees only org A's case");
    let probe = set_role.clone();
    let read_scoped = app
        .db
        .run_as(&org_b, move |conn| {
            diesel::sql_query(&probe).execute(conn)?;
            unscoped_count(conn)
        })
        .await
        .unwrap();
    assert_eq!(read_scoped, 1, "run_as scopes a read transaction the same way");
    let probe = set_role.clone();
    let other_org = org_b.clone();
    let hidden = app
        .db
        .write_as(&org_a, move |conn| {
            diesel::sql_query(&probe).execute(conn)?;
            use komek::db::schema::cases;
            let n: i64 = cases::table
                .filter(cases::organization_id.eq(&other_org))
                .count()
                .get_result(conn)?;
            Ok::<_, DbError>(n)
        })
        .await
        .unwrap();
    assert_eq!(hidden, 0, "org B's case is invisible even when asked for by name");
    let probe = set_role.clone();
    let unscoped = app
        .db
        .write(move |conn| {
            diesel::sql_query(&probe).execute(conn)?;
            unscoped_count(conn)
        })
        .await
        .unwrap();
    assert_eq!(unscoped, 2, "workers without a tenant see every row");
    // The setting does not leak into the next transaction on a pooled connection.
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        value: Option<String>,
    }
    for _ in 0..4 {
        let leaked = app
            .db
            .run(|conn| {
                Ok::<_, DbError>(
                    diesel::sql_query("SELECT current_setting('komek.organization_id', true) AS value")
                        .get_result::<Setting>(conn)?
                        .value,
                )
            })
            .await
            .unwrap();
        assert!(
            leaked.unwrap_or_default().is_empty(),
            "SET LOCAL must not outlive its transaction"
        );
    }
    let cleanup = format!("DROP OWNED BY {role}; DROP ROLE {role}");
    app.db
        .run(move |conn| {
            use diesel::connection::SimpleConnection as _;
            conn.batch_execute(&cleanup).map_err(DbError::from)
        })
        .await
        .unwrap();
}

async fn keys_rotate_adds_a_jwt_key_and_rewraps_every_data_key(backend: Backend) {
    use diesel::prelude::*;
    use komek::db::DbError;
    use komek::db::schema::{cases, users};
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let (user, tokens) = app.staff(&org, Role::Operator).await;
    let case = app.insert_case(&org, false, None).await;
    let keys_file = app.settings.keys_file.clone();
    let old_kid = app.keys.jwt.last().unwrap().kid.clone();

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_komek"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KOMEK_") {
            command.env_remove(key);
        }
    }
    let out = command
        .current_dir(app.storage.dir.path())
        .args(["keys", "rotate", "--jwt", "--data"])
        .env("KOMEK_DATABASE_URL", app.storage.database_url())
        .env("KOMEK_DATA_DIR", app.storage.dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&keys_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    let rotated = std::sync::Arc::new(komek::keys::load(&keys_file).unwrap());
    assert_eq!(rotated.jwt.len(), 2);
    assert_eq!(rotated.data.iter().map(|k| k.version).collect::<Vec<_>>(), [1, 2]);
    let new_kid = rotated.jwt.last().unwrap().kid.clone();
    assert_ne!(new_kid, old_kid);
    // Tokens signed with the old key stay valid under the new keyset; new ones carry the new kid.
    let issuer = app.settings.public_url.as_str().trim_end_matches('/').to_owned();
    let jwt = komek::auth::jwt::JwtKeys::new(rotated.clone(), issuer);
    let claims = jwt
        .verify(&tokens.access, chrono::Utc::now().timestamp())
        .unwrap();
    assert_eq!(claims.sub, user.id);
    let fresh = jwt.sign(&claims).unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(fresh.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], new_kid.as_str());

    // Every data key is now wrapped by version 2 and still opens.
    let user_id = user.id.clone();
    let (totp_secret, totp_dek, totp_version, case_version) = app
        .db
        .run(move |conn| {
            let (secret, dek, version): (Option<Vec<u8>>, Option<Vec<u8>>, Option<i32>) = users::table
                .filter(users::id.eq(&user_id))
                .select((users::totp_secret_enc, users::totp_dek, users::totp_key_version))
                .first(conn)?;
            let case_version: i32 = cases::table
                .filter(cases::id.eq(&case))
                .select(cases::key_version)
                .first(conn)?;
            Ok::<_, DbError>((secret.unwrap(), dek.unwrap(), version.unwrap(), case_version))
        })
        .await
        .unwrap();
    assert_eq!((totp_version, case_version), (2, 2));
    let crypto = komek::crypto::Crypto::new(rotated);
    let key = crypto.unwrap_record_key(&totp_dek, 2).unwrap();
    let secret = key
        .open(komek::accounts::users::totp_place(&user.id), &totp_secret)
        .unwrap();
    assert_eq!(secret.expose().len(), 20);

    let actions: Vec<String> = app.audit_entries().await.into_iter().map(|e| e.action).collect();
    for action in ["jwt_key_added", "data_key_added", "data_keys_rewrapped"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
}

async fn unknown_accounts_take_as_long_as_wrong_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let mut users = Vec::new();
    for _ in 0..7 {
        users.push(app.create_user(&org, Role::Operator).await);
    }
    // Warm up (first queries, the dummy hash).
    app.post_login(&json!({ "email": "warm@example.org", "password": "x", "totp": "1" }))
        .await;
    let timed = |email: String| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            let response = app
                .post_login(
                    &json!({ "email": email, "password": "wrong password, long enough", "totp": "123456" }),
                )
                .await;
            let elapsed = started.elapsed();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap(), elapsed)
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for (i, user) in users.iter().enumerate() {
        // One attempt per account: the limiter stays out of the way.
        known.push(timed(user.email.clone()).await);
        unknown.push(timed(format!("ghost-{i}@example.org")).await);
    }
    for (status, body, _) in known.iter().chain(&unknown) {
        assert_eq!(*status, 401);
        assert_eq!(body, &known[0].1);
    }
    let median = |mut samples: Vec<std::time::Duration>| {
        samples.sort();
        samples[samples.len() / 2].as_secs_f64()
    };
    let known = median(known.into_iter().map(|(_, _, d)| d).collect());
    let unknown = median(unknown.into_iter().map(|(_, _, d)| d).collect());
    // Other tests run at the same time on a 2-core machine, so only a gross difference means anything:
    // skipping Argon2 for unknown accounts makes them an order of magnitude faster (a database lookup
    // against a 19 MiB hash), which this still catches; noise of a factor of two or three does not fail it.
    let ratio = unknown / known;
    assert!(
        (0.3..=3.5).contains(&ratio),
        "unknown {unknown:.3}s vs known {known:.3}s"
    );
}

async fn logs_carry_no_credentials_or_email_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let user = app.create_user(&org, Role::Admin).await;
    let code = user.totp();
    app.post_login(&json!({ "email": user.email, "password": "wrong password, long enough", "totp": code }))
        .await;
    let tokens = app.login(&user).await;
    let new_password = "amber kettle orbit meadow";
    let response = change_password(&app, &tokens.access, &user.password, new_password).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let fresh_access = body["access_token"].as_str().unwrap().to_owned();
    let fresh_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    app.authed(Method::GET, "/api/v1/users", &fresh_access)
        .send()
        .await
        .unwrap();
    refresh(&app, &fresh_refresh).await;
    refresh(&app, &fresh_refresh).await; // reuse: revokes and logs a warning
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(crate::helpers::log_file()).unwrap();
    assert!(log.contains("login succeeded"), "the log file is being written");
    for secret in [
        user.email.as_str(),
        user.password.as_str(),
        new_password,
        tokens.access.as_str(),
        tokens.refresh.as_str(),
        fresh_access.as_str(),
        fresh_refresh.as_str(),
    ] {
        let at = log
            .find(secret)
            .map(|i| &log[i.saturating_sub(200)..(i + 40).min(log.len())]);
        assert!(at.is_none(), "the log contains a secret or an address: {at:?}");
    }
    let audit = format!("{:?}", app.audit_entries().await);
    for secret in [
        user.email.as_str(),
        user.password.as_str(),
        new_password,
        "127.0.0.1",
    ] {
        assert!(
            !audit.contains(secret),
            "an audit entry contains personal data or a secret"
        );
    }
}

async fn without_require_mfa_a_login_needs_no_code_but_a_given_code_is_checked(backend: Backend) {
    let app = spawn_app_tweaked(backend, AppOptions::default(), |settings| {
        settings.require_mfa = false;
    })
    .await;
    let org = app.create_org("ngo-a", None).await;
    let user = app.create_user(&org, Role::Operator).await;
    let response = app
        .post_login(&json!({ "email": user.email, "password": user.password, "totp": "000000" }))
        .await;
    assert_eq!(
        response.status(),
        401,
        "a wrong code is refused even when codes are optional"
    );
    let response = app
        .post_login(&json!({ "email": user.email, "password": user.password }))
        .await;
    assert_eq!(response.status(), 200);
    let entries = app.audit_entries().await;
    let success = entries
        .iter()
        .rev()
        .find(|e| e.action == "login_succeeded")
        .unwrap();
    assert!(
        success
            .details
            .as_deref()
            .unwrap_or_default()
            .contains("\"mfa\":false")
    );
}

async fn user_reset_on_the_command_line_recovers_a_locked_out_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let (user, tokens) = app.staff(&org, Role::Admin).await;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_komek"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KOMEK_") {
            command.env_remove(key);
        }
    }
    let out = command
        .current_dir(app.storage.dir.path())
        .args(["user", "reset", "--email", &user.email, "--json"])
        .env("KOMEK_DATABASE_URL", app.storage.database_url())
        .env("KOMEK_DATA_DIR", app.storage.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reset: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(me_status(&app, &tokens.access).await, 401, "old sessions end");
    let renewed = crate::helpers::TestUser {
        password: reset["password"].as_str().unwrap().to_owned(),
        totp_uri: reset["totp_uri"].as_str().unwrap().to_owned(),
        ..user.clone()
    };
    let old_code = app
        .post_login(&json!({ "email": user.email, "password": renewed.password, "totp": user.totp() }))
        .await;
    assert_eq!(old_code.status(), 401, "the old second factor is gone");
    let tokens = app.login(&renewed).await;
    let me: Value = app
        .authed(Method::GET, "/api/v1/me", &tokens.access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["must_change_password"], true);
    assert!(app.audit_entries().await.iter().any(|e| e.action == "user_reset"));
}
