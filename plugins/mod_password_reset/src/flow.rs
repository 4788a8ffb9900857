//! The reset flow as pure logic over the host handle (clock, RNG, store, mail injected): the SASL
//! exchange (account name → form challenge → submitted form → one uniform failure), issuing a
//! link; the page side is `confirm`.
//!
//! # Wire behaviour of the mechanism
//! * Client-first (RFC 4422 §5): without an initial response the server sends an empty
//!   challenge and the client's first response is the account name. The name may be empty.
//! * The second challenge is the data form of [`crate::form`]; the client's second response is
//!   the submitted form.
//! * Every well-formed submission ends in the same [`final_failure`]: condition `aborted`, one
//!   fixed text and `<reset-requested xmlns='urn:tessera:password-reset:0'/>`, whether a mail
//!   went out or not (unknown account, no stored address, wrong address, rate limited). Both
//!   paths make the same host calls before answering (address lookup, a token drawn, one
//!   zero-delay timer) and compare digests of the address; storing and mailing the link (or two
//!   decoy writes) happen in the timer, after the answer.
//! * Malformed input is `malformed-request` with a precise text and changes nothing; a form of
//!   type `cancel` is `aborted` with the text [`CANCELLED`]; a store failure is
//!   `temporary-auth-failure`.

use std::collections::HashMap;
use std::sync::Mutex;
use tessera_plugin_api::SaslCondition;

use tessera_plugin_api::protocol::{MechanismStart, MechanismStep};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Host, LogLevel};

use crate::config::Settings;
use crate::crypto;
use crate::form::{self, Answer, NS};
use crate::mail::ResetMail;
use crate::ratelimit::Limits;
use crate::store::{self, Record};
use tessera_plugin_api::sync::locked;

/// The text of the final failure (the same on every path).
pub(crate) const FINAL_TEXT: &str = "If the account exists and this is the email address stored \
     for it, a link to choose a new password has been sent to that address.";
/// The text of the failure that answers a cancelled form.
pub(crate) const CANCELLED: &str = "Password reset cancelled";

/// Secrets derived from the server secret at start.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// Key of the page's CSRF tokens (`csrf`).
    pub(crate) csrf: Vec<u8>,
    /// What an address is compared with when there is none (`decoy-address`).
    pub(crate) decoy: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// Everything the flow works with besides the request.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// Host services.
    pub(crate) svc: &'a Host,
    /// Options.
    pub(crate) settings: &'a Settings,
    /// Derived secrets.
    pub(crate) keys: &'a Keys,
    /// The served domain.
    pub(crate) domain: &'a str,
    /// `[http] public_url`, without a trailing `/`.
    pub(crate) public_url: &'a str,
    /// Rate limits.
    pub(crate) limits: &'a Mutex<Limits>,
    /// Deferred work.
    pub(crate) jobs: &'a Mutex<Jobs>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// State of an exchange between two steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// The empty challenge was sent; the account name comes next.
    AwaitName {
        /// The client's IP address.
        peer_ip: String,
    },
    /// The form was sent.
    AwaitForm {
        /// The account named in the initial response (`None`: the form asks for it).
        name: Option<String>,
        /// The client's IP address.
        peer_ip: String,
    },
}

/// A step and the state to keep (`None`: the exchange is over).
pub(crate) type Stepped = (MechanismStep, Option<Pending>);

fn failure(condition: SaslCondition, text: &str, application: Option<Element>) -> MechanismStep {
    MechanismStep::Failure {
        condition,
        text: Some(text.into()),
        // No `user`: mod_sasl2 would apply its password-failure limits to it, and a reset
        // request must neither reveal nor depend on them.
        user: None,
        application,
    }
}

/// The one answer to every well-formed request.
pub(crate) fn final_failure() -> MechanismStep {
    failure(
        SaslCondition::Aborted,
        FINAL_TEXT,
        Some(Element::new("reset-requested", NS)),
    )
}

fn malformed(text: &str) -> Stepped {
    (failure(SaslCondition::MalformedRequest, text, None), None)
}

/// Start an exchange.
pub(crate) fn start(start: &MechanismStart) -> Stepped {
    if !start.stream.secure {
        return (
            failure(
                SaslCondition::EncryptionRequired,
                "PASSWORD-RESET needs TLS",
                None,
            ),
            None,
        );
    }
    let peer_ip = start.stream.peer_ip.clone();
    match &start.initial_response {
        None => (
            MechanismStep::Challenge { data: Vec::new() },
            Some(Pending::AwaitName { peer_ip }),
        ),
        Some(name) => named(name, peer_ip),
    }
}

/// Continue an exchange with the client's response.
pub(crate) fn step(ctx: Ctx<'_>, pending: Pending, response: &[u8]) -> Stepped {
    match pending {
        Pending::AwaitName { peer_ip } => named(response, peer_ip),
        Pending::AwaitForm { name, peer_ip } => {
            match form::parse_response(response, name.is_none()) {
                Err(text) => malformed(&text),
                Ok(Answer::Cancelled) => (failure(SaslCondition::Aborted, CANCELLED, None), None),
                Ok(Answer::Submitted { username, email }) => {
                    let name = name.or(username).unwrap_or_default();
                    (request_reset(ctx, &name, &email, &peer_ip), None)
                }
            }
        }
    }
}

/// The account name arrived: send the form.
fn named(name: &[u8], peer_ip: String) -> Stepped {
    if name.len() > form::MAX_USERNAME {
        return malformed(&format!(
            "The account name is longer than {} bytes",
            form::MAX_USERNAME
        ));
    }
    let Ok(name) = std::str::from_utf8(name) else {
        return malformed("The account name is not UTF-8");
    };
    let name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
    let data = form::challenge(name.is_none()).to_xml().into_bytes();
    (
        MechanismStep::Challenge { data },
        Some(Pending::AwaitForm { name, peer_ip }),
    )
}

/// The account a name designates on this server: the localpart of `user` or `user@domain`, in
/// the host's canonical form (`tessera_plugin_api::names`), so that every spelling of one
/// account shares its mail limit and its links. A JID of another domain (or with a resource)
/// is kept whole (lower-cased), which no account matches.
pub(crate) fn account_name(name: &str, domain: &str) -> String {
    let name = name.trim();
    match name.split_once('@') {
        Some((local, d)) if d.eq_ignore_ascii_case(domain) => {
            tessera_plugin_api::names::account_key(local)
        }
        _ => tessera_plugin_api::names::account_key(name),
    }
}

/// Handle a well-formed request; always [`final_failure`] unless the store fails.
fn request_reset(ctx: Ctx<'_>, name: &str, email: &str, peer_ip: &str) -> MechanismStep {
    let svc = ctx.svc;
    let now = svc.now_ms();
    let user = account_name(name, ctx.domain);
    let ip_ok = locked(ctx.limits).admit_request(peer_ip, now);
    let stored = match svc.get_email(&user) {
        Ok(stored) => stored,
        Err(e) => {
            svc.log(LogLevel::Warn, &format!("email lookup failed: {e}"));
            return failure(
                SaslCondition::TemporaryAuthFailure,
                "Please try again later",
                None,
            );
        }
    };
    let matched = crypto::email_matches(stored.as_deref(), email, &ctx.keys.decoy);
    let send = {
        let mut limits = locked(ctx.limits);
        let send = matched && ip_ok && limits.allows_mail(&user, now);
        if send {
            limits.record_mail(&user, now);
        }
        send
    };
    // For the operator only (/metrics): the requester gets the same answer in every case.
    let outcome = match (ip_ok, send) {
        (false, _) => "rate_limited",
        (true, true) => "link_sent",
        (true, false) => "no_link",
    };
    svc.count_one("requests", "outcome", outcome);
    let raw = svc.random_bytes(crypto::TOKEN_BYTES);
    let record = Record {
        user: user.clone(),
        created_ms: now,
        expires_ms: now.saturating_add(ctx.settings.token_ttl_ms),
        requester_ip: peer_ip.to_owned(),
        used_ms: None,
        revoked_ms: None,
    };
    let job = match (send, stored) {
        (true, Some(address)) => Job::Issue {
            raw,
            record,
            address,
        },
        _ => Job::Decoy { record },
    };
    defer(ctx, job);
    final_failure()
}

/// Work decided during an exchange and done once its answer has gone out (a zero-delay host
/// timer), so that the answer's timing cannot depend on it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Job {
    /// Store the link and mail it.
    Issue {
        /// The token's 32 random bytes (only ever in memory).
        raw: Vec<u8>,
        /// The link's record.
        record: Record,
        /// The stored address to mail.
        address: String,
    },
    /// The same two store writes, to keys that mean nothing.
    Decoy {
        /// A record of the same size.
        record: Record,
    },
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Issue { record, .. } => write!(f, "Job::Issue({})", record.user),
            Job::Decoy { .. } => f.write_str("Job::Decoy"),
        }
    }
}

/// Jobs waiting for their timer.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    next: u64,
    waiting: HashMap<u64, Job>,
}

/// Tag prefix of job timers (`job:<n>`).
pub(crate) const JOB_TAG: &str = "job:";
/// Most jobs waiting at once; past it a job runs at once.
const MAX_JOBS: usize = 10_000;

fn defer(ctx: Ctx<'_>, job: Job) {
    let queued = {
        let mut jobs = locked(ctx.jobs);
        if jobs.waiting.len() >= MAX_JOBS {
            Err(job)
        } else {
            jobs.next += 1;
            let n = jobs.next;
            jobs.waiting.insert(n, job);
            Ok(n)
        }
    };
    let job = match queued {
        Ok(n) => match ctx.svc.set_timer(0, &format!("{JOB_TAG}{n}")) {
            Ok(_) => return,
            Err(e) => {
                ctx.svc
                    .log(LogLevel::Warn, &format!("cannot defer a reset job: {e}"));
                locked(ctx.jobs).waiting.remove(&n)
            }
        },
        Err(job) => Some(job),
    };
    if let Some(job) = job {
        run(ctx, job);
    }
}

/// Run the job of a `job:<n>` timer, if it is still waiting.
pub(crate) fn run_job(ctx: Ctx<'_>, tag: &str) {
    let job = tag
        .strip_prefix(JOB_TAG)
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|n| locked(ctx.jobs).waiting.remove(&n));
    if let Some(job) = job {
        run(ctx, job);
    }
}

fn run(ctx: Ctx<'_>, job: Job) {
    let done = match job {
        Job::Issue {
            raw,
            record,
            address,
        } => issue(ctx, &raw, &record, &address),
        Job::Decoy { record } => store::decoy(ctx.svc, &record),
    };
    if let Err(e) = done {
        ctx.svc.log(
            LogLevel::Warn,
            &format!("password reset request not completed: {e}"),
        );
    }
}

/// Store the link and mail it (the mail's operation id goes to the log).
fn issue(
    ctx: Ctx<'_>,
    raw: &[u8],
    record: &Record,
    address: &str,
) -> Result<(), tessera_plugin_api::PluginError> {
    store::insert(ctx.svc, &crypto::id_of_raw(raw), record)?;
    let link = format!(
        "{}/password-reset/{}",
        ctx.public_url,
        crypto::encode_token(raw)
    );
    let jid = format!("{}@{}", record.user, ctx.domain);
    let mail = ResetMail {
        to: address,
        jid: &jid,
        link: &link,
        public_url: ctx.public_url,
        requested_ms: record.created_ms,
        expires_ms: record.expires_ms,
        requester_ip: &record.requester_ip,
    }
    .render();
    let op = ctx.svc.send_mail(mail)?;
    ctx.svc.count_one("mails", "kind", "reset_link");
    ctx.svc.log(
        LogLevel::Info,
        &format!("password reset link for {jid} queued as mail {op}"),
    );
    Ok(())
}

/// Revoke the outstanding links of an account created at or before `created_until_ms` (its
/// password changed then, or it was deleted).
pub(crate) fn revoke(ctx: Ctx<'_>, user: &str, created_until_ms: u64) {
    match store::revoke_user(ctx.svc, user, created_until_ms, ctx.svc.now_ms()) {
        Ok(0) => {}
        Ok(n) => ctx.svc.log(
            LogLevel::Info,
            &format!("revoked {n} outstanding password reset link(s) of {user}"),
        ),
        Err(e) => ctx.svc.log(
            LogLevel::Warn,
            &format!("cannot revoke the reset links of {user}: {e}"),
        ),
    }
}
