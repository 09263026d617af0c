//! The provider-neutral view of one webhook HTTP request.
//!
//! The service builds a [`WebhookRequest`] from whatever its web framework gives it; every
//! verifier and parser in this crate reads only this. The public URL is configured, never taken
//! from `Host` or `X-Forwarded-*` headers (a provider signs the URL it was given, and those
//! headers are attacker-controlled). The current time is injected so freshness checks are
//! deterministic in tests.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

/// Request headers with case-insensitive lookup. Non-UTF-8 values should be skipped by the caller.
#[derive(Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Adds a header (repeated names are kept in order).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Header names (for logging; values are never printed).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(n, v)| (n.into(), v.into())).collect())
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// One webhook request as the provider sent it.
///
/// * `method`: the HTTP method (`GET`, `POST`), any case.
/// * `url`: the full public URL the provider called: the configured public base URL
///   (`KOMEK_PUBLIC_URL`) + the request path + `?` + the raw query string, exactly as received.
/// * `headers`: all request headers.
/// * `body`: the raw body bytes, unmodified.
/// * `remote_ip`: the peer address (after the service's trusted-proxy handling), for allowlists.
/// * `now`: the current time, for timestamp windows. Verification never reads the clock.
#[derive(Clone)]
pub struct WebhookRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Full public URL including the query string.
    pub url: &'a str,
    /// Request headers.
    pub headers: Headers,
    /// Raw body.
    pub body: &'a [u8],
    /// Peer IP address, when known.
    pub remote_ip: Option<IpAddr>,
    /// Current time.
    pub now: DateTime<Utc>,
}

impl<'a> WebhookRequest<'a> {
    /// A request without headers or remote address.
    pub fn new(method: &'a str, url: &'a str, body: &'a [u8], now: DateTime<Utc>) -> Self {
        Self {
            method,
            url,
            headers: Headers::new(),
            body,
            remote_ip: None,
            now,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Sets the remote address.
    pub fn with_remote_ip(mut self, ip: IpAddr) -> Self {
        self.remote_ip = Some(ip);
        self
    }

    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The raw query string (without `?`, without fragment), empty when there is none.
    pub fn query(&self) -> &'a str {
        let no_fragment = self.url.split('#').next().unwrap_or("");
        match no_fragment.split_once('?') {
            Some((_, q)) => q,
            None => "",
        }
    }

    /// True for `GET` (and `HEAD`).
    pub fn is_get(&self) -> bool {
        self.method.eq_ignore_ascii_case("GET") || self.method.eq_ignore_ascii_case("HEAD")
    }

    /// The media type of the body, lowercased, without parameters.
    pub(crate) fn content_type(&self) -> String {
        self.header("content-type")
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default()
    }

    pub(crate) fn is_json(&self) -> bool {
        let ct = self.content_type();
        ct == "application/json" || ct.ends_with("+json")
    }
}

impl fmt::Debug for WebhookRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL query and the body carry personal data (Vonage GET inbound SMS, every form
        // body): print only their sizes.
        let path = self.url.split(['?', '#']).next().unwrap_or("");
        f.debug_struct("WebhookRequest")
            .field("method", &self.method)
            .field("path", &path)
            .field("query_len", &self.query().len())
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("now", &self.now)
            .finish()
    }
}

/// Decoded `application/x-www-form-urlencoded` pairs (also used for query strings), keeping the
/// raw bytes of each value for providers that send non-UTF-8 content (Jasmin).
#[derive(Clone, Default)]
pub(crate) struct Form {
    pairs: Vec<(String, String, Vec<u8>)>,
}

impl Form {
    pub(crate) fn parse(input: &[u8]) -> Self {
        let mut pairs = Vec::new();
        for piece in input.split(|b| *b == b'&') {
            if piece.is_empty() {
                continue;
            }
            let (k, v) = match piece.iter().position(|b| *b == b'=') {
                Some(i) => (&piece[..i], &piece[i + 1..]),
                None => (piece, &[][..]),
            };
            let key = String::from_utf8_lossy(&percent_decode(k)).into_owned();
            let raw = percent_decode(v);
            let value = String::from_utf8_lossy(&raw).into_owned();
            pairs.push((key, value, raw));
        }
        Self { pairs }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, v, _)| v.as_str())
    }

    /// The value, or `None` when absent or empty.
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub(crate) fn get_raw(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, _, r)| r.as_slice())
    }

    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v, _)| (k.as_str(), v.as_str()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub(crate) fn push(&mut self, key: String, value: String) {
        let raw = value.as_bytes().to_vec();
        self.pairs.push((key, value, raw));
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Form decoding: `+` is a space, `%XX` a byte, a malformed escape is kept literally.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_val);
                let lo = input.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 3;
                    }
                    _ => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A file part of a `multipart/form-data` body.
#[derive(Clone)]
pub(crate) struct FilePart {
    pub(crate) content_type: Option<String>,
    pub(crate) data: Vec<u8>,
}

/// A minimal `multipart/form-data` reader: text fields go into a [`Form`], file parts are kept.
/// Returns `None` when the body is not valid multipart for `boundary`.
pub(crate) fn parse_multipart(body: &[u8], boundary: &str) -> Option<(Form, Vec<FilePart>)> {
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut form = Form::default();
    let mut files = Vec::new();
    let mut pos = find(body, delim, 0)? + delim.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some((form, files));
        }
        if body.get(pos..pos + 2) == Some(b"\r\n") {
            pos += 2;
        }
        let header_end = find(body, b"\r\n\r\n", pos)?;
        let headers = String::from_utf8_lossy(&body[pos..header_end]).into_owned();
        let data_start = header_end + 4;
        let next = find(body, delim, data_start)?;
        let mut data_end = next;
        if data_end >= 2 && body.get(data_end - 2..data_end) == Some(b"\r\n") {
            data_end -= 2;
        }
        let data = body.get(data_start..data_end)?.to_vec();
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in headers.split("\r\n") {
            let Some((hname, hvalue)) = line.split_once(':') else {
                continue;
            };
            if hname.trim().eq_ignore_ascii_case("content-disposition") {
                for param in hvalue.split(';').skip(1) {
                    if let Some((k, v)) = param.split_once('=') {
                        let v = v.trim().trim_matches('"').to_owned();
                        match k.trim() {
                            "name" => name = Some(v),
                            "filename" => filename = Some(v),
                            _ => {}
                        }
                    }
                }
            } else if hname.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(hvalue.trim().to_owned());
            }
        }
        if filename.is_some() {
            files.push(FilePart { content_type, data });
        } else {
            form.push(
                name.unwrap_or_default(),
                String::from_utf8_lossy(&data).into_owned(),
            );
        }
        pos = next + delim.len();
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The `boundary` parameter of a `multipart/form-data` content type.
pub(crate) fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let media = parts.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn form_decoding() {
        let f = Form::parse(b"a=1&b=x+y%21&c&d=%ZZ&e=%05v");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("x y!"));
        assert_eq!(f.get("c"), Some(""));
        assert_eq!(f.get("d"), Some("%ZZ"));
        assert_eq!(f.get_raw("e"), Some(&[5u8, b'v'][..]));
        assert!(f.non_empty("c").is_none());
    }

    #[test]
    fn query_and_headers() {
        let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
        let r = WebhookRequest::new("get", "https://x.org/a?b=1#frag", b"", now).with_header("X-Sig", "v");
        assert_eq!(r.query(), "b=1");
        assert_eq!(r.header("x-sig"), Some("v"));
        assert!(r.is_get());
        let dbg = format!("{r:?}");
        assert!(!dbg.contains("b=1"));
    }

    #[test]
    fn multipart() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"session_id\"\r\n\r\nabc\r\n--XX\r\nContent-Disposition: form-data; name=\"recording\"; filename=\"r.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\x00\x01\r\n--XX--\r\n";
        let (form, files) = parse_multipart(body, "XX").unwrap();
        assert_eq!(form.get("session_id"), Some("abc"));
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].data, b"RIFF\x00\x01");
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"XX\"").as_deref(),
            Some("XX")
        );
    }
}
