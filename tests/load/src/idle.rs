//! `idle`: open N authenticated, bound sessions, hold them (a whitespace keepalive every 30 s),
//! and report the server's resident memory (VmRSS of `--server-pid`) before, at checkpoints,
//! and while holding them all, as KiB per session.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::accounts::Accounts;
use crate::auth::{self, Client, Mechanism};
use crate::cli::IdleArgs;
use crate::failure::Failure;
use crate::net::{Conn, Target};
use crate::procfs::{self, round};
use crate::stats::Tally;

/// Sessions per loopback source address (the ephemeral port range is about 28k wide).
const PER_SOURCE: usize = 20_000;
const KEEPALIVE: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    args: &IdleArgs,
    target: Target,
    accounts: &Accounts,
) -> anyhow::Result<Value> {
    let pid = args.common.server_pid;
    let (nofile, server_nofile) = fd_limits(args)?;
    let timeout = Duration::from_secs_f64(args.common.timeout);
    let clients: Vec<Client> = (0..args.count)
        .map(|i| Client::new(accounts.list[i % accounts.list.len()].clone(), i as u64))
        .collect();
    let clients = crate::logins::warm_up(&target, clients, args.mechanism, timeout).await?;
    let rss = |pid: Option<u32>| pid.and_then(|p| procfs::rss_kib(p).ok());
    let before = rss(pid);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut opener = Opener::new(target, args, stop_rx);
    let start = Instant::now();
    let mut checkpoints = Vec::new();
    for stage in stages(args) {
        opener.open_until(&clients, stage).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        checkpoints.push(checkpoint(stage, opener.holders.len(), before, rss(pid)));
    }
    let open_s = start.elapsed().as_secs_f64();
    let hold_until = Instant::now() + Duration::from_secs_f64(args.duration);
    while Instant::now() < hold_until && !crate::stopped() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = rss(pid);
    let _ = stop_tx.send(true);
    let alive = opener.finish().await;
    Ok(report(
        args,
        opener.tally,
        Stats {
            before,
            held,
            alive,
            open_s,
            nofile,
            server_nofile,
            checkpoints,
        },
    ))
}

/// Raise this process's file limit for `--count` sessions; warn when the server's is lower.
/// Returns both limits.
fn fd_limits(args: &IdleArgs) -> anyhow::Result<(u64, Option<u64>)> {
    let want = u64::try_from(args.count)?.saturating_add(256);
    let nofile = procfs::raise_nofile(want);
    if nofile < want {
        bail!(
            "RLIMIT_NOFILE reached only {nofile}; {} sessions need about {want}",
            args.count
        );
    }
    let server = args.common.server_pid.and_then(procfs::max_open_files);
    if let Some(limit) = server.filter(|l| *l < want) {
        eprintln!(
            "idle: warning: the server's open-file limit is {limit}; raise it (prlimit --pid PID \
             --nofile=N) for {} sessions",
            args.count
        );
    }
    Ok((nofile, server))
}

/// The session counts to measure at: the checkpoints below `--count`, then `--count`.
fn stages(args: &IdleArgs) -> Vec<usize> {
    let mut stages: Vec<usize> = args
        .checkpoints
        .iter()
        .copied()
        .filter(|c| *c < args.count)
        .collect();
    stages.push(args.count);
    stages.sort_unstable();
    stages.dedup();
    stages
}

fn checkpoint(stage: usize, open: usize, before: Option<u64>, now: Option<u64>) -> Value {
    let per = match (before, now) {
        (Some(b), Some(n)) if open > 0 => Some(kib_per(n.saturating_sub(b), open)),
        _ => None,
    };
    eprintln!(
        "idle: {open} sessions open (checkpoint {stage}): server RSS {} KiB{}",
        now.map_or("?".into(), |n| n.to_string()),
        per.map(|p| format!(", {p} KiB/session"))
            .unwrap_or_default()
    );
    json!({ "sessions": open, "server_rss_kib": now, "kib_per_session": per })
}

#[allow(clippy::cast_precision_loss)]
fn kib_per(kib: u64, sessions: usize) -> f64 {
    round(kib as f64 / sessions.max(1) as f64)
}

/// Opens sessions with bounded concurrency and spawns a holder for each.
struct Opener {
    target: Arc<Target>,
    mechanism: Mechanism,
    sm: bool,
    timeout: Duration,
    gate: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    next: usize,
    holders: JoinSet<bool>,
    tally: Tally,
}

impl Opener {
    fn new(target: Target, args: &IdleArgs, stop: watch::Receiver<bool>) -> Self {
        Self {
            target: Arc::new(target),
            mechanism: args.mechanism,
            sm: args.sm,
            timeout: Duration::from_secs_f64(args.common.timeout),
            gate: Arc::new(Semaphore::new(args.concurrency.max(1))),
            stop,
            next: 0,
            holders: JoinSet::new(),
            tally: Tally::default(),
        }
    }

    /// Open sessions `next..until`; wait for all of them.
    async fn open_until(&mut self, clients: &[Client], until: usize) {
        let mut opening = JoinSet::new();
        while self.next < until && !crate::stopped() {
            let Some(client) = clients.get(self.next).cloned() else {
                break;
            };
            let source = source_ip(&self.target, self.next);
            let (target, gate, mech, timeout, sm) = (
                self.target.clone(),
                self.gate.clone(),
                self.mechanism,
                self.timeout,
                self.sm,
            );
            opening.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let start = Instant::now();
                let login = async {
                    let mut session = auth::login(&target, &client, mech, None, source).await?;
                    if sm {
                        enable_sm(&mut session.conn).await?;
                    }
                    Ok(session)
                };
                let r = tokio::time::timeout(timeout, login)
                    .await
                    .unwrap_or(Err(Failure::Timeout));
                (r, start.elapsed())
            });
            self.next += 1;
        }
        while let Some(done) = opening.join_next().await {
            match done {
                Ok((Ok(session), latency)) => {
                    self.tally.ok(latency);
                    self.holders.spawn(hold(session.conn, self.stop.clone()));
                }
                Ok((Err(f), _)) => self.tally.error(&f),
                Err(e) => self.tally.error(&Failure::Protocol(e.to_string())),
            }
        }
    }

    /// Wait for every holder to close; the number still open when told to stop.
    async fn finish(&mut self) -> usize {
        let mut alive = 0;
        while let Some(r) = self.holders.join_next().await {
            alive += usize::from(r.unwrap_or(false));
        }
        alive
    }
}

/// 127.0.0.1 for the first [`PER_SOURCE`] sessions, then 127.0.0.2, … (IPv4 loopback only).
fn source_ip(target: &Target, n: usize) -> Option<IpAddr> {
    let block = n / PER_SOURCE;
    if block == 0 || !target.addr.is_ipv4() {
        return None;
    }
    let last = u8::try_from(block + 1).ok()?;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
}

use crate::sm::{enable_sm, Handled};

/// Hold a session until told to stop (then close it: `true`) or the server closes it (`false`).
/// The server's `<r/>` is answered with the stanzas received so far.
async fn hold(mut conn: Conn, mut stop: watch::Receiver<bool>) -> bool {
    let mut handled = Handled::default();
    conn.clear();
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    loop {
        tokio::select! {
            _ = stop.changed() => {
                conn.close().await;
                return true;
            }
            _ = keepalive.tick() => {
                if conn.send(" ").await.is_err() {
                    return false;
                }
            }
            r = conn.fill() => {
                if !matches!(r, Ok(n) if n > 0) || conn.buffered().contains("</stream:stream>") {
                    return false;
                }
                if let Some(ack) = handled.read(&conn.take_complete()) {
                    if conn.send(&ack).await.is_err() {
                        return false;
                    }
                }
                conn.clear();
            }
        }
    }
}

struct Stats {
    before: Option<u64>,
    held: Option<u64>,
    alive: usize,
    open_s: f64,
    nofile: u64,
    server_nofile: Option<u64>,
    checkpoints: Vec<Value>,
}

fn report(args: &IdleArgs, mut tally: Tally, s: Stats) -> Value {
    let opened = tally.successes();
    let per = match (s.before, s.held) {
        (Some(b), Some(h)) if s.alive > 0 => Some(kib_per(h.saturating_sub(b), s.alive)),
        _ => None,
    };
    let out = json!({
        "mode": "idle",
        "mechanism": args.mechanism.name(),
        "sessions_requested": args.count,
        "sessions_opened": opened,
        "sessions_alive_at_end": s.alive,
        "open_s": round(s.open_s),
        "open_latency_ms": tally.latency_ms(),
        "rlimit_nofile": s.nofile,
        "server_max_open_files": s.server_nofile,
        "server_pid": args.common.server_pid,
        "server_rss_kib_before": s.before,
        "server_rss_kib_held": s.held,
        "kib_per_session": per,
        "checkpoints": s.checkpoints,
        "errors": tally.errors,
        "errors_total": tally.errors_total(),
    });
    eprintln!(
        "idle: {opened}/{} sessions opened in {:.1} s, {} alive after holding {} s; server RSS {} -> {} KiB{}; RLIMIT_NOFILE {}",
        args.count, s.open_s, s.alive, args.duration,
        s.before.map_or("?".into(), |v| v.to_string()),
        s.held.map_or("?".into(), |v| v.to_string()),
        per.map(|p| format!(" = {p} KiB/session")).unwrap_or_default(),
        s.nofile
    );
    for line in tally.error_lines() {
        eprintln!("{line}");
    }
    out
}
