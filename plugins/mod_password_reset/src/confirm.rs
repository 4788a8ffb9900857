//! Confirming a link from the page: GET shows the form for a valid link, POST checks the
//! submission (rate limit, link, CSRF, the two passwords) and sets the password through the
//! host, burning the link. Pure logic over the host handle, like [`crate::flow`].

use std::sync::Mutex;

use tessera_plugin_api::{LogLevel, PluginErrorKind};

use crate::crypto;
use crate::flow::Ctx;
use crate::store::{self, Record, Status};
use tessera_plugin_api::sync::locked;

/// Longest password the host accepts, in bytes.
pub(crate) const MAX_PASSWORD: usize = 1024;

/// What a link's page shows on GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum View {
    /// The form, for this account, with a fresh CSRF token.
    Form {
        /// The account's bare JID.
        jid: String,
        /// The hidden CSRF value.
        csrf: String,
    },
    /// The link cannot be used.
    Dead(Status),
    /// The store failed.
    Unavailable,
}

/// The page for a link (GET): nothing changes.
pub(crate) fn view(ctx: Ctx<'_>, link_token: &str) -> View {
    let Some(id) = crypto::token_id(link_token) else {
        return View::Dead(Status::Unknown);
    };
    let now = ctx.svc.now_ms();
    match store::status_of(ctx.svc, &id, now) {
        Ok(Status::Valid(r)) => View::Form {
            jid: format!("{}@{}", r.user, ctx.domain),
            csrf: crypto::csrf_token(&ctx.keys.csrf, &id, now),
        },
        Ok(dead) => View::Dead(dead),
        Err(e) => {
            ctx.svc
                .log(LogLevel::Warn, &format!("reset link lookup failed: {e}"));
            View::Unavailable
        }
    }
}

/// The fields of a page submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Submission {
    /// The hidden CSRF value.
    pub(crate) csrf: Option<String>,
    /// The new password.
    pub(crate) password: Option<String>,
    /// The new password again.
    pub(crate) confirm: Option<String>,
}

/// Why a submission is shown the form again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A field is empty.
    Missing,
    /// The two passwords differ.
    Mismatch,
    /// Shorter than `password_reset_min_length` characters.
    TooShort(usize),
    /// Longer than [`MAX_PASSWORD`] bytes.
    TooLong,
    /// The host refused the password (its reason).
    Refused(String),
}

/// The outcome of a page submission (POST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Confirmed {
    /// The password was set and the link is used up.
    Done {
        /// The account's bare JID.
        jid: String,
    },
    /// Show the form again with a problem; nothing changed.
    Retry {
        /// The account's bare JID.
        jid: String,
        /// A fresh CSRF value.
        csrf: String,
        /// What is wrong.
        problem: Problem,
    },
    /// The link cannot be used.
    Dead(Status),
    /// The CSRF value is missing or wrong; nothing changed.
    Forbidden,
    /// Too many submissions from this address.
    RateLimited,
    /// The store or host failed; nothing changed.
    Unavailable,
}

fn problem(sub: &Submission, min: usize) -> Option<Problem> {
    let (Some(pw), Some(again)) = (sub.password.as_deref(), sub.confirm.as_deref()) else {
        return Some(Problem::Missing);
    };
    if pw.is_empty() || again.is_empty() {
        Some(Problem::Missing)
    } else if pw != again {
        Some(Problem::Mismatch)
    } else if pw.chars().count() < min {
        Some(Problem::TooShort(min))
    } else if pw.len() > MAX_PASSWORD {
        Some(Problem::TooLong)
    } else {
        None
    }
}

/// A page submission (POST). `serial` serialises confirmations so a link is used at most once.
pub(crate) fn confirm(
    ctx: Ctx<'_>,
    serial: &Mutex<()>,
    link_token: &str,
    sub: &Submission,
    peer_ip: &str,
) -> Confirmed {
    let svc = ctx.svc;
    if !locked(ctx.limits).admit_post(peer_ip, svc.now_ms()) {
        return Confirmed::RateLimited;
    }
    let Some(id) = crypto::token_id(link_token) else {
        return Confirmed::Dead(Status::Unknown);
    };
    let _serial = locked(serial);
    let now = svc.now_ms();
    let record = match store::status_of(svc, &id, now) {
        Ok(Status::Valid(r)) => r,
        Ok(dead) => return Confirmed::Dead(dead),
        Err(e) => {
            svc.log(LogLevel::Warn, &format!("reset link lookup failed: {e}"));
            return Confirmed::Unavailable;
        }
    };
    let csrf_ok = sub
        .csrf
        .as_deref()
        .is_some_and(|c| crypto::csrf_valid(&ctx.keys.csrf, &id, c, now));
    if !csrf_ok {
        return Confirmed::Forbidden;
    }
    let jid = format!("{}@{}", record.user, ctx.domain);
    let retry = |problem| Confirmed::Retry {
        jid: jid.clone(),
        csrf: crypto::csrf_token(&ctx.keys.csrf, &id, now),
        problem,
    };
    if let Some(p) = problem(sub, ctx.settings.min_length) {
        return retry(p);
    }
    // The password first: a crash before the link is marked leaves it revoked anyway (created
    // before the account's password change), so the link is never burnt for nothing.
    match svc.set_password(
        &record.user,
        sub.password.as_deref().unwrap_or_default(),
        None,
    ) {
        Ok(()) => {
            let used = Record {
                used_ms: Some(now),
                ..record
            };
            if let Err(e) = store::save(svc, &id, &used) {
                svc.log(LogLevel::Warn, &format!("cannot mark reset link used: {e}"));
            }
            svc.log(LogLevel::Info, &format!("password of {jid} reset by link"));
            Confirmed::Done { jid }
        }
        Err(e) => {
            if e.kind == PluginErrorKind::BAD_REQUEST {
                retry(Problem::Refused(e.message.to_string()))
            } else {
                svc.log(
                    LogLevel::Warn,
                    &format!("setting a reset password failed: {e}"),
                );
                Confirmed::Unavailable
            }
        }
    }
}
