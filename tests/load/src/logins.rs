//! `logins`: N workers, each repeatedly connecting, negotiating TLS, logging in with SASL2 +
//! Bind 2, waiting for the post-auth features and closing the stream. Latency is from the TCP
//! connect to the post-auth features; the close is not part of it (but of the rate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::accounts::Accounts;
use crate::auth::{self, Client, Mechanism, Sm};
use crate::cli::{LoginsArgs, OnOff, SmLogin};
use crate::failure::Failure;
use crate::net::Target;
use crate::procfs::{round, CpuMeter};
use crate::stats::Tally;

/// When workers stop starting new logins, and (with a rate) when each one starts.
#[derive(Debug)]
struct Limits {
    deadline: Option<Instant>,
    count: Option<u64>,
    claimed: AtomicU64,
    /// Open-loop pacing: login n is due at `start + n / rate`.
    pace: Option<(Instant, f64)>,
}

impl Limits {
    /// Claim the next login: when it is due (now, without a rate), or `None` once the run is
    /// over.
    fn claim(&self) -> Option<Instant> {
        if crate::stopped() || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let n = self.claimed.fetch_add(1, Ordering::Relaxed);
        if self.count.is_some_and(|c| n >= c) {
            return None;
        }
        let Some((start, rate)) = self.pace else {
            return Some(Instant::now());
        };
        #[allow(clippy::cast_precision_loss)]
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        // A login due after the end is not started.
        self.deadline.is_none_or(|d| due < d).then_some(due)
    }
}

/// What every worker of one run shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    target: Target,
    mechanism: Mechanism,
    timeout: Duration,
    limits: Limits,
    sm: SmLogin,
}

impl Ctx {
    /// Workers log in with `mechanism` until `deadline` and/or `count` logins, back to back
    /// or, with `rate`, paced to that many logins per second in all.
    pub(crate) fn new(
        target: Target,
        mechanism: Mechanism,
        timeout: Duration,
        deadline: Option<Instant>,
        count: Option<u64>,
        rate: Option<f64>,
    ) -> Self {
        Self {
            target,
            mechanism,
            timeout,
            limits: Limits {
                deadline,
                count,
                claimed: AtomicU64::new(0),
                pace: rate.filter(|r| *r > 0.0).map(|r| (Instant::now(), r)),
            },
            sm: SmLogin::Off,
        }
    }
}

pub(crate) async fn run(
    args: &LoginsArgs,
    target: Target,
    accounts: &Accounts,
) -> anyhow::Result<Value> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r >= 0.01)) {
        bail!("--rate must be a number of logins per second, at least 0.01");
    }
    let timeout = Duration::from_secs_f64(args.common.timeout);
    let clients: Vec<Client> = (0..args.concurrency)
        .map(|w| {
            let account = accounts.list[w % accounts.list.len()].clone();
            Client::new(account, w as u64)
        })
        .collect();
    let clients = warm_up(&target, clients, args.mechanism, timeout).await?;
    let duration = match (args.duration, args.count) {
        (None, None) => Some(10.0),
        (d, _) => d,
    };
    let mut ctx = Ctx::new(
        target,
        args.mechanism,
        timeout,
        duration.map(|d| Instant::now() + Duration::from_secs_f64(d)),
        args.count,
        args.rate,
    );
    ctx.sm = args.sm;
    let ctx = Arc::new(ctx);
    let cpu = CpuMeter::start(args.common.server_pid)?;
    let start = Instant::now();
    let mut set = JoinSet::new();
    for client in clients {
        if ctx.sm == SmLogin::Resume {
            set.spawn(resumer(ctx.clone(), client));
        } else {
            set.spawn(worker(ctx.clone(), client));
        }
    }
    let mut tally = Tally::default();
    while let Some(t) = set.join_next().await {
        tally.merge(t?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(report(args, &ctx, accounts, tally, elapsed, &cpu))
}

/// One password login per account in use (derives and caches the SCRAM keys, checks the
/// credentials), then for FAST one token per client. Not measured.
pub(crate) async fn warm_up(
    target: &Target,
    mut clients: Vec<Client>,
    mechanism: Mechanism,
    timeout: Duration,
) -> anyhow::Result<Vec<Client>> {
    let password_mech = if mechanism.fast().is_some() {
        Mechanism::ScramSha256
    } else {
        mechanism
    };
    let mut seen = std::collections::BTreeSet::new();
    for client in clients.iter().filter(|c| seen.insert(c.account.jid())) {
        let login = auth::login(target, client, password_mech, None, None);
        match tokio::time::timeout(timeout, login)
            .await
            .unwrap_or(Err(Failure::Timeout))
        {
            Ok(s) => s.conn.close().await,
            Err(f) => bail!("warm-up login of {} failed: {f}", client.account.jid()),
        }
    }
    if let Some(ht) = mechanism.fast() {
        for client in &mut clients {
            client.token = Some(
                acquire_token(target, client, ht, timeout)
                    .await
                    .map_err(|f| {
                        anyhow::anyhow!("getting a FAST token for {}: {f}", client.account.jid())
                    })?,
            );
        }
    }
    Ok(clients)
}

/// A password login with `<request-token/>`; returns the token.
pub(crate) async fn acquire_token(
    target: &Target,
    client: &Client,
    ht: tessera_sasl::ht::HtMechanism,
    timeout: Duration,
) -> Result<String, Failure> {
    let login = auth::login(target, client, Mechanism::ScramSha256, Some(ht), None);
    let session = tokio::time::timeout(timeout, login)
        .await
        .unwrap_or(Err(Failure::Timeout))?;
    let token = session.token.clone();
    session.conn.close().await;
    token.ok_or_else(|| Failure::Protocol("no token".into()))
}

/// One client logging in back to back until the run is over; a refused FAST token is replaced
/// (unmeasured) with a password login.
pub(crate) async fn worker(ctx: Arc<Ctx>, mut client: Client) -> Tally {
    let mut tally = Tally::default();
    while let Some(due) = ctx.limits.claim() {
        let mut due = due;
        if let (Some(ht), None) = (ctx.mechanism.fast(), &client.token) {
            // The last token was refused: get a new one (not measured).
            match acquire_token(&ctx.target, &client, ht, ctx.timeout).await {
                Ok(t) => {
                    client.token = Some(t);
                    due = due.max(Instant::now());
                }
                Err(f) => {
                    tally.error(&f);
                    continue;
                }
            }
        }
        // Open loop: latency counts from when the login was due, so a server that falls
        // behind the rate shows it (no coordinated omission); an unmeasured token fetch
        // above moved that to when it ended.
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let start = if ctx.limits.pace.is_some() {
            due
        } else {
            Instant::now()
        };
        let one = tokio::time::timeout(ctx.timeout, one_login(&ctx, &client, start)).await;
        match one.unwrap_or(Err(Failure::Timeout)) {
            Ok(done) => {
                tally.ok(done.latency);
                tally.resumed += u64::from(done.resumed);
                tally.tls_version = Some(done.tls_version);
                if let Some(t) = done.token.filter(|t| client.token.as_ref() != Some(t)) {
                    client.token = Some(t);
                    tally.tokens_rotated += 1;
                }
            }
            Err(f) => {
                if matches!(f, Failure::Auth(_)) && ctx.mechanism.fast().is_some() {
                    client.token = None;
                }
                tally.error(&f);
            }
        }
    }
    tally
}

/// One client coming back again and again: its last connection is dropped without a word (the
/// server detaches the session) and the next login resumes it inline in SASL2. The first
/// session is set up unmeasured.
async fn resumer(ctx: Arc<Ctx>, client: Client) -> Tally {
    let mut tally = Tally::default();
    let first = auth::login_sm(&ctx.target, &client, ctx.mechanism, Sm::Enable);
    let (mut held, mut id) = match tokio::time::timeout(ctx.timeout, first).await {
        Ok(Ok((conn, Some(id), _))) => (Some(conn), id),
        Ok(Ok((_, None, _))) => {
            tally.error(&Failure::Protocol("no resumption id".into()));
            return tally;
        }
        Ok(Err(f)) => {
            tally.error(&f);
            return tally;
        }
        Err(_) => {
            tally.error(&Failure::Timeout);
            return tally;
        }
    };
    while let Some(due) = ctx.limits.claim() {
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        // The connection is lost (no </stream:stream>, no close_notify).
        drop(held.take());
        let start = if ctx.limits.pace.is_some() {
            due
        } else {
            Instant::now()
        };
        let again = auth::login_sm(&ctx.target, &client, ctx.mechanism, Sm::Resume(&id));
        match tokio::time::timeout(ctx.timeout, again)
            .await
            .unwrap_or(Err(Failure::Timeout))
        {
            Ok((conn, resumed_id, _)) => {
                tally.ok(start.elapsed());
                tally.tls_version = Some(conn.tls_version());
                id = resumed_id.unwrap_or(id);
                held = Some(conn);
            }
            Err(f) => {
                tally.error(&f);
                // Start over with a new session (unmeasured).
                let fresh = auth::login_sm(&ctx.target, &client, ctx.mechanism, Sm::Enable);
                match tokio::time::timeout(ctx.timeout, fresh).await {
                    Ok(Ok((conn, Some(new_id), _))) => {
                        held = Some(conn);
                        id = new_id;
                    }
                    _ => break,
                }
            }
        }
    }
    if let Some(conn) = held {
        conn.close().await;
    }
    tally
}

struct Done {
    latency: Duration,
    resumed: bool,
    tls_version: String,
    token: Option<String>,
}

async fn one_login(ctx: &Ctx, client: &Client, start: Instant) -> Result<Done, Failure> {
    if ctx.sm == SmLogin::Enable {
        let (conn, _, _) = auth::login_sm(&ctx.target, client, ctx.mechanism, Sm::Enable).await?;
        let done = Done {
            latency: start.elapsed(),
            resumed: conn.resumed(),
            tls_version: conn.tls_version(),
            token: None,
        };
        conn.close().await;
        return Ok(done);
    }
    let session = auth::login(&ctx.target, client, ctx.mechanism, None, None).await?;
    let done = Done {
        latency: start.elapsed(),
        resumed: session.conn.resumed(),
        tls_version: session.conn.tls_version(),
        token: session.token.clone(),
    };
    session.conn.close().await;
    Ok(done)
}

fn report(
    args: &LoginsArgs,
    ctx: &Ctx,
    accounts: &Accounts,
    mut tally: Tally,
    elapsed: f64,
    cpu: &CpuMeter,
) -> Value {
    let logins = tally.successes();
    #[allow(clippy::cast_precision_loss)]
    let rate = logins as f64 / elapsed.max(1e-9);
    let latency = tally.latency_ms();
    let mut out = json!({
        "mode": "logins",
        "server": ctx.target.addr.to_string(),
        "mechanism": args.mechanism.name(),
        "stream_management": args.sm.name(),
        "tls": ctx.target.mode.name(),
        "tls_version": tally.tls_version.clone().unwrap_or_default(),
        "resumption": if args.common.resumption == OnOff::On { "on" } else { "off" },
        "resumed_handshakes": tally.resumed,
        "send_from": ctx.target.send_from,
        "concurrency": args.concurrency,
        "target_rate_per_s": args.rate,
        "accounts": accounts.list.len().min(args.concurrency),
        "elapsed_s": round(elapsed),
        "logins": logins,
        "logins_per_s": round(rate),
        "latency_ms": latency,
        "errors": tally.errors,
        "errors_total": tally.errors_total(),
        "tokens_rotated": tally.tokens_rotated,
    });
    if let Some(map) = out.as_object_mut() {
        map.extend(cpu.finish(logins, "login"));
    }
    eprintln!(
        "logins: {} {} x{} over {:.1} s: {logins} ok ({rate:.0}/s), p50 {} ms, p99 {} ms, max {} ms, {} errors{}",
        args.mechanism.name(),
        out["tls"].as_str().unwrap_or_default(),
        args.concurrency,
        elapsed,
        out["latency_ms"]["p50"],
        out["latency_ms"]["p99"],
        out["latency_ms"]["max"],
        tally.errors_total(),
        out.get("server_cpu_ms_per_login")
            .map(|c| format!(", server CPU {c} ms/login"))
            .unwrap_or_default(),
    );
    for line in tally.error_lines() {
        eprintln!("{line}");
    }
    out
}
