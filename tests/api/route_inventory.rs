//! The route inventory: every route of the app is either public on purpose — and then on the short public
//! allowlist below — or guarded by a named permission, and the running app agrees: guarded routes answer 401
//! without a token, and no route is mounted outside the registry.
//!
//! Adding a route: register it in `src/routes/` through `Routes::guarded::<Permission, ..>` (the handler's
//! first argument must be `Authorized<Permission>`) or `Routes::public(..., why, ...)`. A new public path
//! must also match `PUBLIC_ALLOWLIST` here — a reviewer sees that change.

use komek::routes::registry::Access;
use reqwest::Method;

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

backend_tests!(
    every_route_is_public_on_purpose_or_guarded,
    every_guarded_route_follows_the_permission_matrix,
);

/// Path prefixes that may be public, and why.
const PUBLIC_ALLOWLIST: &[(&str, &str)] = &[
    ("/healthz", "liveness probe"),
    ("/readyz", "readiness probe"),
    (
        "/webhooks/",
        "provider webhooks, verified by signature or secret channel id",
    ),
    ("/report", "the public web form"),
    ("/static/", "static assets and IVR prompts"),
    ("/prompts/", "IVR prompts"),
    ("/api/v1/auth/login", "staff sign-in"),
    ("/api/v1/auth/refresh", "token renewal by refresh token"),
];

/// Files that mount routes with their own `configure(cfg)`; each such block is declared with
/// `Routes::public_routes`, and the registry middleware refuses anything it did not declare.
const OWN_CONFIGURE: &[&str] = &[
    "src/routes/health.rs",
    "src/routes/registry.rs",
    "src/routes/webhooks.rs",
    "src/ivr/prompts.rs",
    "src/webform/handlers.rs",
    // Not part of the public server at all: the private `/metrics` listener on its own bind address.
    "src/prometheus/listener.rs",
];

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "0192f5a0-0000-7000-8000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn every_route_is_public_on_purpose_or_guarded(backend: Backend) {
    let app = spawn_app(backend).await;
    let inventory = komek::routes::inventory();
    assert!(inventory.len() >= 10, "{inventory:?}");
    let mut seen = std::collections::HashSet::new();
    for route in &inventory {
        assert!(
            seen.insert((route.method.clone(), route.path)),
            "{} {} is registered twice",
            route.method,
            route.path
        );
        let method = Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete(route.path)))
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        match &route.access {
            Access::Permission(name) => {
                assert!(!name.is_empty());
                assert_eq!(
                    status, 401,
                    "{method} {} is guarded by {name}: no token → 401",
                    route.path
                );
            }
            Access::Public { why } => {
                assert!(
                    !why.trim().is_empty(),
                    "{} needs a reason to be public",
                    route.path
                );
                assert!(
                    PUBLIC_ALLOWLIST
                        .iter()
                        .any(|(prefix, _)| route.path.starts_with(prefix)),
                    "{method} {} is public but not on the public allowlist",
                    route.path
                );
                // Reachable without credentials (what it answers to an empty body is its own business).
                assert!(
                    status != 401 && status != 500,
                    "{method} {} answered {status}",
                    route.path
                );
            }
        }
    }
    // Paths that exist for no method answer 404; a registered path with another method is refused too.
    for (method, path) in [
        (Method::GET, "/api/v1/nothing-here"),
        (Method::DELETE, "/api/v1/users"),
        (Method::GET, "/api/v1/auth/login"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 404 | 405),
            "{method} {path}: {}",
            response.status()
        );
    }
}

#[test]
fn routes_are_mounted_only_through_the_registry() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    crate::helpers::rust_files(&root.join("src"), &mut files);
    let mounting = [
        ".route(",
        ".service(",
        "web::resource(",
        "web::scope(",
        "#[get(",
        "#[post(",
        "#[put(",
        "#[patch(",
        "#[delete(",
        "#[route(",
    ];
    let mut offenders = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if OWN_CONFIGURE.contains(&relative.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if mounting.iter().any(|m| code.contains(m)) {
                offenders.push(format!("{relative}:{}: {}", number + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "mount routes through routes::registry::Routes (or declare a configure block with public_routes and \
         list its file in OWN_CONFIGURE):\n{}",
        offenders.join("\n")
    );
    // Every public block's file is actually registered in the route table.
    let table = std::fs::read_to_string(root.join("src/routes/mod.rs")).unwrap();
    assert!(table.contains("health::configure"));
}

/// The authorization matrix, run: every guarded route, called by every role, answers 403 exactly when the
/// role lacks the route's permission (`permissions::ALL` is the matrix).
async fn every_guarded_route_follows_the_permission_matrix(backend: Backend) {
    use komek::domain::Role;
    let app = spawn_app(backend).await;
    let org = app.create_org("ngo-a", None).await;
    let mut callers = Vec::new();
    for role in Role::ALL {
        let (_, tokens) = app.staff(&org, role).await;
        callers.push((role, tokens.access));
    }
    let mut routes: Vec<_> = komek::routes::inventory()
        .into_iter()
        .filter_map(|r| match r.access {
            Access::Permission(name) => Some((r.method, r.path, name)),
            Access::Public { .. } => None,
        })
        .collect();
    // Logging out ends the caller's session: do it last.
    routes.sort_by_key(|(_, path, _)| path.ends_with("/logout"));
    for (method, path, permission) in routes {
        let granted = komek::auth::permissions::ALL
            .iter()
            .find(|(name, _)| *name == permission)
            .map(|(_, granted)| *granted)
            .unwrap_or_else(|| panic!("{path} names the unknown permission {permission}"));
        for (role, token) in &callers {
            let method = Method::from_bytes(method.as_str().as_bytes()).unwrap();
            let response = app
                .authed(method.clone(), &concrete(path), token)
                .header("Content-Type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            if granted(*role) {
                assert!(
                    status != 401 && status != 403,
                    "{role} holds {permission}: {method} {path} answered {status}"
                );
            } else {
                assert_eq!(status, 403, "{role} lacks {permission}: {method} {path}");
            }
        }
    }
}
