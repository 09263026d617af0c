//! Per-request metrics, recorded by the request middleware: a counter and a latency histogram by method,
//! route pattern and status, and for provider webhooks a counter by provider and outcome.

use std::time::Duration;

use actix_web::dev::ServiceRequest;
use komek_gateways::Provider;

/// `komek_http_requests_total{method, route, status}`
pub const REQUESTS: &str = "komek_http_requests_total";
/// `komek_http_request_duration_seconds{method, route, status}`
pub const DURATION: &str = "komek_http_request_duration_seconds";
/// `komek_webhooks_total{provider, outcome}`
pub const WEBHOOKS: &str = "komek_webhooks_total";

/// The labels of one request, taken before it is handled.
pub struct RequestLabels {
    method: &'static str,
    route: String,
    provider: Option<&'static str>,
}

impl RequestLabels {
    /// Reads the method, the matched route pattern (`unmatched` when none) and, for a webhook, the
    /// provider — only a name from Komek's own list, never text from the path.
    pub fn of(req: &ServiceRequest) -> RequestLabels {
        let route = req.match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let provider = route.starts_with("/webhooks/{provider}/").then(|| {
            req.path()
                .split('/')
                .nth(2)
                .and_then(|name| name.parse::<Provider>().ok())
                .map_or("unknown", Provider::slug)
        });
        RequestLabels {
            method: method_label(req.method()),
            route,
            provider,
        }
    }

    /// Records the answered request.
    pub fn finish(self, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [
            ("method", self.method.to_owned()),
            ("route", self.route),
            ("status", status),
        ];
        metrics::counter!(REQUESTS, &labels).increment(1);
        metrics::histogram!(DURATION, &labels).record(elapsed.as_secs_f64());
        if let Some(provider) = self.provider {
            let accepted = labels[2].1.starts_with('2') || labels[2].1.starts_with('3');
            metrics::counter!(
                WEBHOOKS,
                "provider" => provider,
                "outcome" => if accepted { "accepted" } else { "refused" }
            )
            .increment(1);
        }
    }
}

/// Standard methods by name; anything else (a client can send any token) is `other`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
