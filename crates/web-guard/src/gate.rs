//! The gate every request of a server passes when it has a bearer token: the token, or the
//! web console's session cookie (set by its login form); a page asked for without either goes
//! to the login form, anything else is refused.
//!
//! The cookie holds a digest of the token, not the token: it proves the browser was given the
//! token without keeping it. A request that changes something with only the cookie must also
//! carry the console's own header, so a page of another site cannot drive the API through a
//! logged-in browser (the cookie is `SameSite=Strict` besides).

use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "stripe_sync_session";
/// The header the console's scripts send with every request that changes something.
pub const CONSOLE_HEADER: &str = "x-stripe-sync-console";

/// The cookie value for a token.
pub fn session_value(token: &str) -> String {
    hex::encode(Sha256::digest(
        format!("stripe-sync console\0{token}").as_bytes(),
    ))
}

/// Whether `given` is `expected`, comparing digests, so the time taken says nothing about how much matched.
pub fn token_matches(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// What the gate decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Gate {
    /// Let it through.
    Pass,
    /// A page asked for without credentials: send the browser to the login form.
    Login(String),
    /// Refuse, with why.
    Refuse(&'static str),
}

/// Paths anyone may fetch: the login form and the stylesheet and script.
fn is_public(path: &str) -> bool {
    path == "/login" || path == "/logout" || path.starts_with("/assets/")
}

/// Paths that are pages (HTML or their live streams) rather than API routes.
pub fn is_page(path: &str) -> bool {
    path == "/"
        || path == "/explorer"
        || path.starts_with("/explorer/")
        || path.starts_with("/console/")
}

/// Whether a request may pass, given the host's token (`None`: no token, everything passes).
pub fn gate(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    token: Option<&str>,
) -> Gate {
    let Some(token) = token else {
        return Gate::Pass;
    };
    if is_public(path) {
        return Gate::Pass;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        return if token_matches(given, token) {
            Gate::Pass
        } else {
            Gate::Refuse("the bearer token is not this server's")
        };
    }
    if cookie(headers, SESSION_COOKIE).is_some_and(|c| token_matches(c, &session_value(token))) {
        let changes = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if changes && !headers.contains_key(CONSOLE_HEADER) {
            return Gate::Refuse(
                "a request that changes something needs the bearer token or the console's header",
            );
        }
        return Gate::Pass;
    }
    if is_page(path) && *method == Method::GET {
        let wanted = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        return Gate::Login(wanted);
    }
    Gate::Refuse("a bearer token is required (Authorization: Bearer …), or log in at /login")
}

/// The redirect to the login form for a page.
pub fn to_login(wanted: &str) -> Response {
    // `next` may hold no whitespace, even encoded; in a query `+` means the same as `%20`.
    let wanted = match wanted.split_once('?') {
        Some((path, query)) => format!("{path}?{}", query.replace("%20", "+")),
        None => wanted.to_owned(),
    };
    let mut target = String::from("/login?next=");
    for b in wanted.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            target.push(b as char);
        } else {
            target.push_str(&format!("%{b:02X}"));
        }
    }
    Redirect::to(&target).into_response()
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_gate() {
        let t = Some("secret");
        let get = Method::GET;
        let none = headers(&[]);
        assert_eq!(gate(&get, "/pipelines", None, &none, None), Gate::Pass);
        assert_eq!(gate(&get, "/login", None, &none, t), Gate::Pass);
        assert_eq!(
            gate(&get, "/assets/console.css", None, &none, t),
            Gate::Pass
        );
        assert_eq!(
            gate(&get, "/explorer", Some("q=inv"), &none, t),
            Gate::Login("/explorer?q=inv".into())
        );
        assert!(matches!(
            gate(&get, "/pipelines", None, &none, t),
            Gate::Refuse(_)
        ));
        let bearer = headers(&[("authorization", "Bearer secret")]);
        assert_eq!(
            gate(&Method::POST, "/pipelines", None, &bearer, t),
            Gate::Pass
        );
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert!(matches!(gate(&get, "/", None, &wrong, t), Gate::Refuse(_)));
        let session = format!("a=b; {SESSION_COOKIE}={}", session_value("secret"));
        let cookie = headers(&[("cookie", &session)]);
        assert_eq!(gate(&get, "/", None, &cookie, t), Gate::Pass);
        assert_eq!(gate(&get, "/pipelines", None, &cookie, t), Gate::Pass);
        // A change with only the cookie needs the console's header.
        assert!(matches!(
            gate(&Method::PATCH, "/pipelines/a", None, &cookie, t),
            Gate::Refuse(_)
        ));
        let console = headers(&[("cookie", &session), (CONSOLE_HEADER, "1")]);
        assert_eq!(
            gate(&Method::PATCH, "/pipelines/a", None, &console, t),
            Gate::Pass
        );
        let stale = headers(&[("cookie", "stripe_sync_session=0000")]);
        assert_eq!(gate(&get, "/", None, &stale, t), Gate::Login("/".into()));
    }

    #[test]
    fn the_login_redirect_keeps_the_page_asked_for() {
        assert_eq!(
            to_login("/explorer?q=a b").headers()["location"],
            "/login?next=/explorer%3Fq%3Da%20b"
        );
        // A search with spaces survives the login: `+` is a space in a query.
        assert_eq!(
            to_login("/explorer?q=a%20b").headers()["location"],
            "/login?next=/explorer%3Fq%3Da%2Bb"
        );
    }
}
