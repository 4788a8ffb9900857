//! The HTTP side of the reset page: `GET /password-reset/<token>` shows the form,
//! `POST /password-reset/<token>` (an `application/x-www-form-urlencoded` body with `csrf`,
//! `password`, `confirm`) sets the password. Every outcome is a complete HTML page with a fitting
//! status: 200, 400 (form shown again), 403 (CSRF), 404 (unknown link), 405, 410 (expired, used
//! or revoked link), 413, 429 (too many submissions), 503 (store failure). Nothing here logs a
//! path, a query, a token or a password.

use std::sync::Mutex;

use tessera_plugin_api::protocol::{HttpRequest, HttpResponse};

use crate::config::ROUTE;
use crate::confirm::{self, Confirmed, Problem, Submission, View};
use crate::flow::Ctx;
use crate::page;
use crate::store::Status;

/// Largest form body read, in bytes (two passwords of 1024 bytes, percent-encoded, plus CSRF).
const MAX_FORM_BODY: usize = 8 * 1024;

fn respond(status: u16, body: String) -> HttpResponse {
    HttpResponse {
        status,
        headers: page::headers(),
        body: body.into_bytes(),
    }
}

fn dead(status: &Status) -> HttpResponse {
    let (code, title, text): (u16, &str, &str) = match status {
        Status::Expired => (
            410,
            "This link has expired",
            "Reset links work for a limited time. Ask for a new one from your chat app.",
        ),
        Status::Used => (
            410,
            "This link has already been used",
            "Each reset link works once. If you did not change your password yourself, \
             ask for a new link from your chat app.",
        ),
        Status::Revoked => (
            410,
            "This link is no longer valid",
            "The account's password was changed (or the account removed) after this link \
             was sent, which cancels every earlier link.",
        ),
        Status::Valid(_) | Status::Unknown => (
            404,
            "Unknown link",
            "This reset link does not exist. Check that you opened the whole link from the \
             mail, or ask for a new one from your chat app.",
        ),
    };
    respond(code, page::message(title, &[text]))
}

fn unavailable() -> HttpResponse {
    respond(
        503,
        page::message(
            "Please try again later",
            &["The server could not handle the request just now. Nothing was changed."],
        ),
    )
}

/// The link token of a request path, if the path is `/password-reset/<token>`.
pub(crate) fn link_token(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(ROUTE)?.strip_prefix('/')?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decode one `application/x-www-form-urlencoded` component (`+` is a space).
fn decode_component(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The page's fields from a form body; `None` when it is not valid form encoding.
pub(crate) fn parse_submission(body: &[u8]) -> Option<Submission> {
    let text = std::str::from_utf8(body).ok()?;
    let mut sub = Submission::default();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let value = Some(decode_component(v)?);
        match decode_component(k)?.as_str() {
            "csrf" => sub.csrf = value,
            "password" => sub.password = value,
            "confirm" => sub.confirm = value,
            _ => {}
        }
    }
    Some(sub)
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn problem_text(problem: &Problem) -> String {
    match problem {
        Problem::Missing => "Please enter the new password in both fields.".into(),
        Problem::Mismatch => "The two passwords are not the same. Please type them again.".into(),
        Problem::TooShort(min) => format!("The password must have at least {min} characters."),
        Problem::TooLong => format!(
            "The password must not be longer than {} bytes.",
            confirm::MAX_PASSWORD
        ),
        Problem::Refused(reason) => format!("The server cannot use this password ({reason})."),
    }
}

fn post(ctx: Ctx<'_>, serial: &Mutex<()>, token: &str, req: &HttpRequest) -> HttpResponse {
    // A browser tells where a submission comes from; only this site's own page may submit.
    if header(req, "sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return forbidden();
    }
    if req.body.len() > MAX_FORM_BODY {
        return respond(
            413,
            page::message("Request too large", &["Nothing was changed."]),
        );
    }
    let Some(sub) = parse_submission(&req.body) else {
        return respond(
            400,
            page::message(
                "Bad request",
                &["The form data could not be read. Nothing was changed."],
            ),
        );
    };
    match confirm::confirm(ctx, serial, token, &sub, &req.peer_ip) {
        Confirmed::Done { jid } => {
            let text = format!(
                "The password of {jid} has been changed. Every device that was signed in with \
                 the old password has been signed out: sign in again with the new one."
            );
            respond(200, page::message("Password changed", &[&text]))
        }
        Confirmed::Retry { jid, csrf, problem } => respond(
            400,
            page::form(
                &jid,
                &csrf,
                ctx.settings.min_length,
                Some(&problem_text(&problem)),
            ),
        ),
        Confirmed::Dead(status) => dead(&status),
        Confirmed::Forbidden => forbidden(),
        Confirmed::RateLimited => respond(
            429,
            page::message(
                "Too many attempts",
                &[
                    "Too many password changes were tried from your network. Please wait a \
                   while and open the link again. Nothing was changed.",
                ],
            ),
        ),
        Confirmed::Unavailable => unavailable(),
    }
}

fn forbidden() -> HttpResponse {
    respond(
        403,
        page::message(
            "This form cannot be accepted",
            &[
                "The form was not sent from this page, or it is too old. Open the link from the \
               mail again and submit the new form. Nothing was changed.",
            ],
        ),
    )
}

/// Serve one request on the route.
pub(crate) fn handle(ctx: Ctx<'_>, serial: &Mutex<()>, req: &HttpRequest) -> HttpResponse {
    let Some(token) = link_token(&req.path) else {
        return dead(&Status::Unknown);
    };
    match req.method.as_str() {
        "GET" | "HEAD" => match confirm::view(ctx, token) {
            View::Form { jid, csrf } => {
                respond(200, page::form(&jid, &csrf, ctx.settings.min_length, None))
            }
            View::Dead(status) => dead(&status),
            View::Unavailable => unavailable(),
        },
        "POST" => post(ctx, serial, token, req),
        _ => {
            let mut r = respond(405, page::message("Method not allowed", &[]));
            r.headers.push(("allow".into(), "GET, HEAD, POST".into()));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_form_bodies_are_parsed_strictly() {
        assert_eq!(link_token("/password-reset/abc"), Some("abc"));
        assert_eq!(link_token("/password-reset/"), None);
        assert_eq!(link_token("/password-reset"), None);
        assert_eq!(link_token("/password-reset/a/b"), None);
        assert_eq!(link_token("/password-resetx/a"), None);
        let sub = parse_submission(b"csrf=1.a-b&password=p%C3%A4ss+word&confirm=x%26y&other=1")
            .expect("valid");
        assert_eq!(sub.csrf.as_deref(), Some("1.a-b"));
        assert_eq!(sub.password.as_deref(), Some("p\u{e4}ss word"));
        assert_eq!(sub.confirm.as_deref(), Some("x&y"));
        assert_eq!(
            parse_submission(b"password"),
            Some(Submission {
                password: Some(String::new()),
                ..Submission::default()
            })
        );
        assert_eq!(parse_submission(b"password=%zz"), None);
        assert_eq!(parse_submission(b"password=%C3"), None);
        assert_eq!(parse_submission(b"password=%4"), None);
    }
}
