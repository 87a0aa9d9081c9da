//! The console's side of the API's bearer token: a login form that sets the session cookie
//! `sync_web_guard::gate` accepts (`HttpOnly`, `SameSite=Strict`), and the logout that drops it.

use axum::Form;
use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sync_web_guard::gate::{SESSION_COOKIE, session_value, token_matches};

use crate::frame::{Chrome, render};
use crate::link;

/// Only a path of this site, so the form cannot send a browser elsewhere: a single `/` then
/// neither `/` nor `\` (browsers read `\` as `/`, so `/\host` is `//host`), and no control
/// character or whitespace anywhere (browsers drop tab, CR and LF inside a URL, so `/\t/host`
/// is `//host` too); the same of the value decoded once more, for whatever decodes it again.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if is_local_path(n) && is_local_path(&link::decoded(n)) => n,
        _ => "/",
    }
}

fn is_local_path(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The login form's query.
#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// The login form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    next: Option<String>,
}

#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    chrome: &'a Chrome,
    current: &'static str,
    title: &'static str,
    next: &'a str,
    problem: Option<&'a str>,
}

/// `GET /login`.
pub(crate) fn login_form(chrome: &Chrome, query: Query<LoginQuery>) -> Response {
    let next = safe_next(query.next.as_deref());
    if chrome.token.is_none() {
        return Redirect::to(next).into_response();
    }
    render(&LoginPage {
        chrome,
        current: "login",
        title: "Log in",
        next,
        problem: None,
    })
}

/// `POST /login`: a session cookie when the token is right, the form again when not.
pub(crate) fn login(chrome: &Chrome, form: Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(token) = chrome.token.as_deref() else {
        return Redirect::to(next).into_response();
    };
    if !token_matches(form.token.trim(), token) {
        let page = render(&LoginPage {
            chrome,
            current: "login",
            title: "Log in",
            next,
            problem: Some("That is not this server's token."),
        });
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        session_value(token)
    );
    let mut response = Redirect::to(next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /logout`: the cookie is dropped.
pub(crate) fn logout() -> Response {
    let mut response = Redirect::to("/login").into_response();
    let dropped = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&dropped) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/explorer?q=a")), "/explorer?q=a");
        assert_eq!(safe_next(Some("/")), "/");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "\\\\evil",
            "x",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "\t//evil.example",
            "/ /evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/explorer\u{0}",
            "/explorer\u{a0}x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(
            safe_next(Some("/explorer/tables/a%2Fb")),
            "/explorer/tables/a%2Fb"
        );
        assert_eq!(safe_next(Some("/explorer?q=a+b")), "/explorer?q=a+b");
    }
}
