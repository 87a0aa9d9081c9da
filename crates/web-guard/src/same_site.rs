//! Keeps pages of other sites from driving a server through a visitor's browser, and from
//! reading it by DNS rebinding. Both servers (sync-engine and sync-service) put it in front of
//! every route, console included:
//!
//! - A tokenless server answers only requests whose `Host` is one of its names: the loopback
//!   names with its port when it listens on loopback, its address, and the names the operator
//!   allows (`--allowed-host`). A page whose own name was rebound to 127.0.0.1 sends its own
//!   name as `Host`, so it reads nothing. With a token, the token guards every name.
//! - A request that changes something (any method but GET, HEAD, OPTIONS) must come from this
//!   server's own origin when it carries an `Origin` (browsers always send one then).
//! - Its body must be JSON (NDJSON where a route reads it; the login and logout forms post
//!   form fields): a page of another site can post `text/plain`, form fields or a blob of no
//!   type without asking first, but not JSON.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// A name the operator allows as `Host`: a host name or address, with or without a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Lowercase; an IPv6 address in brackets.
    name: String,
    /// `None`: any port.
    port: Option<u16>,
}

/// Reads an `--allowed-host` value: `NAME` or `NAME:PORT` (`[v6]:PORT` for IPv6).
pub fn allowed_host(text: &str) -> Result<AllowedHost, String> {
    let refused = || {
        format!(
            "{text:?} is not a host name (give a name such as sync.example.com, optionally with :PORT)"
        )
    };
    let (name, port) = split_host(text).ok_or_else(refused)?;
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
    let is_name = !name.is_empty() && name.chars().all(plain);
    let is_v6 = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok());
    if !(is_name || is_v6) {
        return Err(refused());
    }
    Ok(AllowedHost { name, port })
}

/// `name[:port]` → lowercase name and port; `None` when the port is not a number.
fn split_host(text: &str) -> Option<(String, Option<u16>)> {
    let text = text.trim().to_ascii_lowercase();
    let (name, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => (&text[..=end], text[end + 1..].strip_prefix(':')),
            None => return None,
        }
    } else {
        match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text.as_str(), None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((name.to_owned(), port))
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 for a foreign `Host` or `Origin`, 415 for a body that is not the route's type.
    pub status: StatusCode,
    /// What was wrong, and what is taken.
    pub message: String,
}

fn refuse(status: StatusCode, message: String) -> Result<(), Refusal> {
    Err(Refusal { status, message })
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// The guard of one server.
#[derive(Debug)]
pub struct SameSite {
    bound: SocketAddr,
    allowed: Vec<AllowedHost>,
    /// A token guards every route, so any `Host` may ask.
    any_host: bool,
    ndjson_routes: Vec<&'static str>,
    exempt: Vec<&'static str>,
    answer: fn(StatusCode, &str) -> Response,
}

/// The routes that take form fields: the console's login and logout forms.
const FORM_ROUTES: [&str; 2] = ["/login", "/logout"];
const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
const FORM: &str = "application/x-www-form-urlencoded";

impl SameSite {
    /// The guard of a server listening on `bound`; `token_set`: a token guards every route, so
    /// any `Host` may ask. `answer` writes a refusal as the server writes its errors.
    pub fn new(
        bound: SocketAddr,
        allowed: &[AllowedHost],
        token_set: bool,
        answer: fn(StatusCode, &str) -> Response,
    ) -> SameSite {
        SameSite {
            bound,
            allowed: allowed.to_vec(),
            any_host: token_set,
            ndjson_routes: Vec::new(),
            exempt: Vec::new(),
            answer,
        }
    }

    /// Routes whose bodies may also be NDJSON.
    pub fn ndjson_routes(mut self, paths: &[&'static str]) -> SameSite {
        self.ndjson_routes.extend_from_slice(paths);
        self
    }

    /// Paths outside the guard (one ending in `/`: every path under it): liveness probes,
    /// and webhooks, which Stripe signs.
    pub fn exempt(mut self, paths: &[&'static str]) -> SameSite {
        self.exempt.extend_from_slice(paths);
        self
    }

    fn is_exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|e| {
            if e.ends_with('/') {
                path.starts_with(e)
            } else {
                path == *e
            }
        })
    }

    /// Whether a request may go on.
    pub fn check(&self, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.is_exempt(path) {
            return Ok(());
        }
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if !self.any_host && !host.is_some_and(|h| self.is_own_name(h)) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {:?} is not a name of this server (without a token it answers to {}); give another name with --allowed-host NAME",
                    host.unwrap_or(""),
                    self.own_names()
                ),
            );
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        self.check_origin(headers, host)?;
        self.check_body_type(path, headers)
    }

    fn check_origin(&self, headers: &HeaderMap, host: Option<&str>) -> Result<(), Refusal> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("");
        if !self.is_own_origin(origin, host) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "Origin {origin:?} is not this server's: a page of another site changes nothing here"
                ),
            );
        }
        Ok(())
    }

    fn is_own_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let authority = authority.to_ascii_lowercase();
        let default_port = match scheme {
            "http" => ":80",
            "https" => ":443",
            _ => return false,
        };
        let same_as_host = host.is_some_and(|h| {
            let h = h.to_ascii_lowercase();
            h == authority || h.strip_suffix(default_port) == Some(authority.as_str())
        });
        // Behind a proxy that rewrites Host, the public name is one the operator allowed.
        same_as_host || self.is_allowed(&authority)
    }

    /// Whether `host` is a name the operator allowed.
    fn is_allowed(&self, host: &str) -> bool {
        split_host(host).is_some_and(|(name, port)| {
            self.allowed
                .iter()
                .any(|a| a.name == name && a.port.is_none_or(|p| Some(p) == port))
        })
    }

    /// Whether `host` names this server: an allowed name, or with its port a loopback name
    /// (listening on loopback) or its address.
    fn is_own_name(&self, host: &str) -> bool {
        if self.is_allowed(host) {
            return true;
        }
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        // A Host without a port means the scheme's default, 80 for plain HTTP.
        if port.unwrap_or(80) != self.bound.port() {
            return false;
        }
        let ip = self.bound.ip();
        let literal = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let local = ip.is_loopback() || ip.is_unspecified();
        (local && LOOPBACK_NAMES.contains(&name.as_str()))
            || literal == Some(ip)
            // Listening on every address, any address of the machine is a name of it (an
            // address cannot be rebound to another machine).
            || (ip.is_unspecified() && literal.is_some())
    }

    /// The names `is_own_name` takes, for the refusal.
    fn own_names(&self) -> String {
        let port = self.bound.port();
        let ip = self.bound.ip();
        let mut names: Vec<String> = Vec::new();
        if ip.is_loopback() || ip.is_unspecified() {
            names.extend(LOOPBACK_NAMES.iter().map(|n| format!("{n}:{port}")));
        }
        if ip.is_unspecified() {
            names.push(format!("this machine's addresses with :{port}"));
        } else if !names.contains(&self.bound.to_string()) {
            names.push(self.bound.to_string());
        }
        names.extend(self.allowed.iter().map(|a| match a.port {
            Some(p) => format!("{}:{p}", a.name),
            None => a.name.clone(),
        }));
        names.join(", ")
    }

    fn check_body_type(&self, path: &str, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut taken = vec![JSON];
        if self.ndjson_routes.contains(&path) {
            taken.push(NDJSON);
        }
        if FORM_ROUTES.contains(&path) {
            taken.push(FORM);
        }
        let media = headers.get(header::CONTENT_TYPE).map(|v| {
            v.to_str()
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let has_body = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|n| n.trim() != "0")
            || headers.contains_key(header::TRANSFER_ENCODING);
        match media {
            Some(m) if taken.contains(&m.as_str()) => Ok(()),
            None if !has_body => Ok(()),
            found => refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {}: {path} takes {}",
                    found.map_or_else(|| "missing".to_owned(), |m| format!("{m:?}")),
                    taken.join(" or ")
                ),
            ),
        }
    }
}

/// The middleware: `router.layer(axum::middleware::from_fn_with_state(Arc::new(guard), enforce))`.
pub async fn enforce(State(site): State<Arc<SameSite>>, request: Request, next: Next) -> Response {
    match site.check(request.method(), request.uri().path(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            tracing::debug!(
                "{} {}: {}",
                request.method(),
                request.uri().path(),
                refusal.message
            );
            (site.answer)(refusal.status, &refusal.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use axum::response::IntoResponse;

    fn answer(status: StatusCode, message: &str) -> Response {
        (status, message.to_owned()).into_response()
    }

    fn site(bound: &str, allowed: &[&str], token_set: bool) -> SameSite {
        let allowed: Vec<AllowedHost> = allowed.iter().map(|a| allowed_host(a).unwrap()).collect();
        SameSite::new(bound.parse().unwrap(), &allowed, token_set, answer)
            .ndjson_routes(&["/pipeline_sync"])
            .exempt(&["/health", "/webhooks/"])
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn status(site: &SameSite, method: Method, path: &str, pairs: &[(&'static str, &str)]) -> u16 {
        match site.check(&method, path, &headers(pairs)) {
            Ok(()) => 200,
            Err(r) => r.status.as_u16(),
        }
    }

    #[test]
    fn a_tokenless_loopback_server_answers_its_loopback_names_with_its_port() {
        let s = site("127.0.0.1:3000", &[], false);
        for host in [
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "LocalHost:3000",
        ] {
            assert_eq!(
                status(&s, Method::GET, "/x", &[("host", host)]),
                200,
                "{host}"
            );
        }
        for host in [
            "evil.example:3000",
            "localhost:3001",
            "localhost",
            "10.0.0.1:3000",
            "",
        ] {
            assert_eq!(
                status(&s, Method::GET, "/x", &[("host", host)]),
                403,
                "{host}"
            );
        }
        assert_eq!(status(&s, Method::GET, "/x", &[]), 403, "no Host");
        assert_eq!(
            status(&s, Method::GET, "/health", &[("host", "probe")]),
            200
        );
        assert_eq!(
            status(&s, Method::POST, "/webhooks/a", &[("host", "x")]),
            200
        );
    }

    #[test]
    fn other_binds_answer_their_address_and_the_allowed_names() {
        let s = site("10.1.2.3:80", &["sync.example.com", "other:8080"], false);
        for host in [
            "10.1.2.3",
            "10.1.2.3:80",
            "sync.example.com",
            "sync.example.com:9",
            "other:8080",
        ] {
            assert_eq!(
                status(&s, Method::GET, "/x", &[("host", host)]),
                200,
                "{host}"
            );
        }
        for host in ["localhost:80", "other:8081", "10.1.2.4:80"] {
            assert_eq!(
                status(&s, Method::GET, "/x", &[("host", host)]),
                403,
                "{host}"
            );
        }
        let every = site("0.0.0.0:3000", &[], false);
        for host in ["localhost:3000", "192.168.1.9:3000", "[fe80::1]:3000"] {
            assert_eq!(
                status(&every, Method::GET, "/x", &[("host", host)]),
                200,
                "{host}"
            );
        }
        assert_eq!(
            status(
                &every,
                Method::GET,
                "/x",
                &[("host", "rebound.example:3000")]
            ),
            403
        );
        let tokened = site("0.0.0.0:3000", &[], true);
        assert_eq!(
            status(&tokened, Method::GET, "/x", &[("host", "any.example")]),
            200
        );
    }

    #[test]
    fn changes_come_as_json_from_this_origin() {
        let s = site("127.0.0.1:3000", &["public.example"], false);
        let host = ("host", "127.0.0.1:3000");
        let json = ("content-type", "application/json; charset=utf-8");
        let some = ("content-length", "2");
        assert_eq!(status(&s, Method::POST, "/x", &[host, json, some]), 200);
        assert_eq!(status(&s, Method::POST, "/x", &[host]), 200, "no body");
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=a",
        ] {
            let ct = ("content-type", bad);
            assert_eq!(
                status(&s, Method::POST, "/x", &[host, ct, some]),
                415,
                "{bad}"
            );
        }
        assert_eq!(
            status(&s, Method::POST, "/x", &[host, some]),
            415,
            "a body of no type"
        );
        let nd = ("content-type", "application/x-ndjson");
        assert_eq!(
            status(&s, Method::POST, "/pipeline_sync", &[host, nd, some]),
            200
        );
        assert_eq!(status(&s, Method::POST, "/x", &[host, nd, some]), 415);
        let form = ("content-type", "application/x-www-form-urlencoded");
        assert_eq!(status(&s, Method::POST, "/login", &[host, form, some]), 200);
        for (origin, want) in [
            ("http://127.0.0.1:3000", 200),
            ("https://public.example", 200),
            ("http://evil.example", 403),
            ("http://127.0.0.1:3001", 403),
            ("null", 403),
        ] {
            let o = ("origin", origin);
            assert_eq!(
                status(&s, Method::DELETE, "/x", &[host, o]),
                want,
                "{origin}"
            );
        }
        // Reading needs no Origin check: another origin cannot read the answer.
        let o = ("origin", "http://evil.example");
        assert_eq!(status(&s, Method::GET, "/x", &[host, o]), 200);
    }

    #[test]
    fn an_allowed_host_is_a_name_with_an_optional_port() {
        assert_eq!(
            allowed_host("Sync.Example.com:8080"),
            Ok(AllowedHost {
                name: "sync.example.com".into(),
                port: Some(8080)
            })
        );
        assert!(allowed_host("[::1]:3000").is_ok());
        for bad in ["", "http://x/", "*", "a b", "x:port", "x:99999", "[::1"] {
            assert!(allowed_host(bad).is_err(), "{bad}");
        }
    }
}
