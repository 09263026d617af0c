//! The route registry: every route is mounted through [`Routes`], which records for each one whether it is
//! public on purpose (with the reason) or guarded by a named permission — so the whole HTTP surface and its
//! access rules can be listed ([`super::inventory`]) and checked by the route-inventory test.
//!
//! Three walls keep a route from being added without an access decision:
//! 1. [`Routes::guarded`] only accepts a handler whose **first argument is `Authorized<P>`** for the
//!    permission `P` it declares (checked by the compiler through [`GuardedBy`]), and mounts it behind
//!    [`crate::auth::require`], which authenticates and authorizes before any other extractor runs — so a
//!    caller without the permission gets 401/403, never a 400 about a body they may not send.
//! 2. [`enforce_registry`], a middleware, answers 404 for any request that matched a route the registry does
//!    not know (a route mounted with plain `cfg.route(...)` somewhere is dead, not open), and logs it.
//! 3. `tests/api/route_inventory.rs` calls every registered route without a token (guarded ones must answer
//!    401) and scans the sources for route mounting outside this registry.
//!
//! Modules that mount their own routes (`configure(cfg)`, e.g. webhooks) register as a block with
//! [`Routes::public_routes`]: each route of the block is declared, and the middleware refuses any other.

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, Handler, Responder, ResponseError as _, guard, web};

use crate::auth::{Authorized, Permission};
use crate::error::ApiError;

/// Who may call a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, on purpose; `why` says what makes that safe (e.g. "webhook, verified by signature").
    Public { why: &'static str },
    /// Staff whose role holds this permission.
    Permission(&'static str),
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// The HTTP method.
    pub method: Method,
    /// The actix path pattern, exactly as mounted (`/api/v1/users/{id}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// Proof that a handler's arguments start with `Authorized<P>`.
pub trait GuardedBy<P: Permission> {}

macro_rules! guarded_by {
    ($($rest:ident),*) => {
        impl<P: Permission, $($rest),*> GuardedBy<P> for (Authorized<P>, $($rest,)*) {}
    };
}
guarded_by!();
guarded_by!(A);
guarded_by!(A, B);
guarded_by!(A, B, C);
guarded_by!(A, B, C, D);
guarded_by!(A, B, C, D, E);
guarded_by!(A, B, C, D, E, F);

/// Mounts routes (or only records them, for the inventory).
pub struct Routes<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    specs: Vec<RouteSpec>,
}

impl<'a> Routes<'a> {
    /// Mounts into `cfg` and records.
    pub fn mount(cfg: &'a mut web::ServiceConfig) -> Self {
        Routes {
            cfg: Some(cfg),
            specs: Vec::new(),
        }
    }

    /// Only records (for [`super::inventory`]).
    pub fn record() -> Routes<'static> {
        Routes {
            cfg: None,
            specs: Vec::new(),
        }
    }

    /// The routes recorded so far.
    pub fn into_specs(self) -> Vec<RouteSpec> {
        self.specs
    }

    fn push(&mut self, method: &Method, path: &'static str, access: Access) {
        self.specs.push(RouteSpec {
            method: method.clone(),
            path,
            access,
        });
    }

    /// A route anyone may call, on purpose. Say why in `why`.
    pub fn public<F, Args>(
        &mut self,
        method: Method,
        path: &'static str,
        why: &'static str,
        handler: F,
    ) -> &mut Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.push(&method, path, Access::Public { why });
        if let Some(cfg) = self.cfg.as_deref_mut() {
            cfg.route(path, web::method(method).to(handler));
        }
        self
    }

    /// A route for staff holding permission `P`; the handler's first argument must be `Authorized<P>`.
    pub fn guarded<P, F, Args>(&mut self, method: Method, path: &'static str, handler: F) -> &mut Self
    where
        P: Permission,
        F: Handler<Args>,
        Args: FromRequest + GuardedBy<P> + 'static,
        F::Output: Responder + 'static,
    {
        self.push(&method, path, Access::Permission(P::NAME));
        if let Some(cfg) = self.cfg.as_deref_mut() {
            // Authorization runs as this resource's middleware, before any extractor reads the body.
            cfg.service(
                web::resource(path)
                    .guard(guard::Method(method))
                    .wrap(from_fn(crate::auth::require::<P, _>))
                    .route(web::route().to(handler)),
            );
        }
        self
    }

    /// A block of public routes mounted by a module's own `configure`; every route it mounts must be listed.
    pub fn public_routes(
        &mut self,
        routes: &[(Method, &'static str)],
        why: &'static str,
        configure: impl FnOnce(&mut web::ServiceConfig),
    ) -> &mut Self {
        for (method, path) in routes {
            self.push(method, path, Access::Public { why });
        }
        if let Some(cfg) = self.cfg.as_deref_mut() {
            cfg.configure(configure);
        }
        self
    }
}

/// The registered `(method, pattern)` pairs, shared with [`enforce_registry`].
#[derive(Debug, Clone)]
pub struct Registered(Arc<HashSet<(Method, String)>>);

impl Registered {
    /// From the inventory.
    pub fn new(specs: &[RouteSpec]) -> Self {
        Registered(Arc::new(
            specs
                .iter()
                .map(|s| (s.method.clone(), s.path.to_owned()))
                .collect(),
        ))
    }

    /// True when the pair is registered.
    pub fn contains(&self, method: &Method, pattern: &str) -> bool {
        self.0.contains(&(method.clone(), pattern.to_owned()))
    }
}

/// Refuses (404) any request that matched a route the registry does not know.
pub async fn enforce_registry(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let registered = req.app_data::<web::Data<Registered>>().cloned();
    if let (Some(pattern), Some(registered)) = (req.match_pattern(), registered)
        && !registered.contains(req.method(), &pattern)
    {
        let route_is_known_for_another_method = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ]
        .iter()
        .any(|m| registered.contains(m, &pattern));
        if !route_is_known_for_another_method {
            tracing::error!(route = %pattern, "a mounted route is not in the route registry; refused");
        }
        let response = ApiError::not_found("route").error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test as atest;
    use actix_web::{App, HttpResponse};

    use super::*;

    #[actix_web::test]
    async fn a_route_mounted_outside_the_registry_is_refused() {
        let declared = [RouteSpec {
            method: Method::GET,
            path: "/declared",
            access: Access::Public { why: "test" },
        }];
        let app = atest::init_service(
            App::new()
                .app_data(web::Data::new(Registered::new(&declared)))
                .route("/declared", web::get().to(HttpResponse::Ok))
                .route("/sneaked-in", web::get().to(HttpResponse::Ok))
                .route("/declared", web::post().to(HttpResponse::Ok))
                .wrap(from_fn(enforce_registry)),
        )
        .await;
        let ok = atest::call_service(&app, atest::TestRequest::get().uri("/declared").to_request()).await;
        assert_eq!(ok.status(), 200);
        let sneaked =
            atest::call_service(&app, atest::TestRequest::get().uri("/sneaked-in").to_request()).await;
        assert_eq!(sneaked.status(), 404);
        let other_method =
            atest::call_service(&app, atest::TestRequest::post().uri("/declared").to_request()).await;
        assert_eq!(other_method.status(), 404);
    }

    #[test]
    fn the_inventory_lists_every_staff_route_with_its_permission() {
        let inventory = super::super::inventory();
        let find = |method: Method, path: &str| {
            inventory
                .iter()
                .find(|r| r.method == method && r.path == path)
                .map(|r| r.access.clone())
        };
        assert_eq!(
            find(Method::GET, "/api/v1/users"),
            Some(Access::Permission("manage_users"))
        );
        assert_eq!(
            find(Method::GET, "/api/v1/cases/{id}/access-log"),
            Some(Access::Permission("read_access_log"))
        );
        assert!(matches!(
            find(Method::POST, "/api/v1/auth/login"),
            Some(Access::Public { .. })
        ));
    }
}
