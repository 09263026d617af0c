//! The client's network address, for rate limits and throttling only (it is never stored or logged: callers
//! key their budgets by a keyed hash of it). Behind a reverse proxy the connecting address is the proxy's,
//! so `X-Forwarded-For` is believed — but only the hops that trusted proxies (setting `trusted_proxies`)
//! added: a client can put anything in that header itself.

use std::net::IpAddr;

use actix_web::HttpRequest;

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest `X-Forwarded-For`
/// hop that is not itself a trusted proxy. A client can put anything in that header, so only hops added by
/// trusted proxies are believed.
pub fn of(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in req.headers().get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return Some(peer);
        };
        for hop in value.split(',') {
            match hop.trim().parse() {
                Ok(ip) => hops.push(ip),
                Err(_) => return Some(peer),
            }
        }
    }
    Some(
        hops.into_iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() -> Result<(), Box<dyn std::error::Error>> {
        let proxy: IpAddr = "127.0.0.1".parse()?;
        let request = |peer: &str, xff: Option<&str>| {
            let mut req =
                TestRequest::default().peer_addr(peer.parse().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into()));
            if let Some(xff) = xff {
                req = req.insert_header(("X-Forwarded-For", xff));
            }
            req.to_http_request()
        };
        let spoofed = request("198.51.100.7:5000", Some("203.0.113.1"));
        assert_eq!(of(&spoofed, &[proxy]), Some("198.51.100.7".parse()?));
        let proxied = request("127.0.0.1:5000", Some("203.0.113.1, 198.51.100.9"));
        assert_eq!(of(&proxied, &[proxy]), Some("198.51.100.9".parse()?));
        let direct = request("127.0.0.1:5000", None);
        assert_eq!(of(&direct, &[proxy]), Some(proxy));
        Ok(())
    }
}
