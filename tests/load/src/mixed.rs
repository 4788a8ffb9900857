//! `mixed`: a steady mix of the other modes for a set duration, for soak runs and for hot-swap
//! tests. At the same time:
//!
//! * `--idle N` sessions are opened and held; each sends an XEP-0199 ping every `--ping-every`
//!   seconds and times the reply, so a session the server dropped or stalled shows up at once;
//! * `--scram N` workers log in with SCRAM-SHA-256 and `--fast N` workers with FAST
//!   (HT-SHA-256-NONE), back to back, as in `logins`;
//! * with `--password-every SECS` (needs `--tessera-config`), a separate account with
//!   `--fanout N` sessions has its password changed through `tessera user passwd`; every one of
//!   those sessions must get `<reset/>` (timed, as in `fanout`), then they log in again with the
//!   new password.
//!
//! Every failure is counted by kind in `errors`; `errors_total` is 0 on a clean run. The
//! server's CPU is charged to the SCRAM and FAST logins (`server_cpu_ms_per_login`) although it
//! also paid for the pings, the fanout sessions' logins and the password changes: it is the
//! cost per login with everything else going on, not a login's own cost (see `logins`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::accounts::{random_password, Account, Accounts, Admin};
use crate::auth::{self, Client, Mechanism};
use crate::cli::MixedArgs;
use crate::failure::Failure;
use crate::fanout::{await_reset, open_sessions};
use crate::logins::{self, Ctx};
use crate::net::{Conn, Target};
use crate::procfs::{round, CpuMeter};
use crate::stats::{percentile_ms, Tally};

/// User-agent ids of each part start at a different offset, so FAST token slots never collide.
const UA_SCRAM: u64 = 1 << 20;
const UA_FAST: u64 = 2 << 20;
const UA_FANOUT: u64 = 3 << 20;

/// The fanout account of `--password-every` (created for the run, deleted after).
pub(crate) async fn fanout_account(args: &MixedArgs) -> anyhow::Result<Option<Accounts>> {
    if args.password_every.is_none() {
        return Ok(None);
    }
    let own = Accounts::own_account(&args.common.accounts, "mixfan", "--password-every");
    Ok(Some(own.await?))
}

pub(crate) async fn run(
    args: &MixedArgs,
    target: Target,
    accounts: &Accounts,
    fanout: Option<&Accounts>,
) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs_f64(args.common.timeout);
    let client = |base: u64, i: usize| {
        Client::new(
            accounts.list[i % accounts.list.len()].clone(),
            base + i as u64,
        )
    };
    let held: Vec<Client> = (0..args.idle).map(|i| client(0, i)).collect();
    let scram: Vec<Client> = (0..args.scram).map(|i| client(UA_SCRAM, i)).collect();
    let fast: Vec<Client> = (0..args.fast).map(|i| client(UA_FAST, i)).collect();
    // Unmeasured: SCRAM keys for every account, a FAST token for every FAST worker.
    let held = logins::warm_up(&target, held, Mechanism::ScramSha256, timeout).await?;
    let scram = logins::warm_up(&target, scram, Mechanism::ScramSha256, timeout).await?;
    let fast = logins::warm_up(&target, fast, Mechanism::FastNone, timeout).await?;

    let cpu = CpuMeter::start(args.common.server_pid)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    // Scripts wait for this line before they start what the run is meant to ride out.
    eprintln!("mixed: warm-up done, running for {} s", args.duration);
    let target = Arc::new(target);

    let mut holders = JoinSet::new();
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let ping_every = Duration::from_secs_f64(args.ping_every.max(0.05));
    for c in held {
        let (target, gate) = (target.clone(), gate.clone());
        holders.spawn(async move {
            let opened = {
                let _permit = gate.acquire_owned().await;
                let login = auth::login(&target, &c, Mechanism::ScramSha256, None, None);
                tokio::time::timeout(timeout, login)
                    .await
                    .unwrap_or(Err(Failure::Timeout))
            };
            match opened {
                Ok(s) => hold(s.conn, &target.domain, ping_every, deadline, timeout).await,
                Err(f) => {
                    let mut t = Tally::default();
                    t.error(&f);
                    (t, false)
                }
            }
        });
    }

    let workers = |mechanism, clients: Vec<Client>| {
        let ctx = Arc::new(Ctx::new(
            (*target).clone(),
            mechanism,
            timeout,
            Some(deadline),
            None,
            None,
        ));
        let mut set = JoinSet::new();
        for c in clients {
            set.spawn(logins::worker(ctx.clone(), c));
        }
        set
    };
    let mut scram_workers = workers(Mechanism::ScramSha256, scram);
    let mut fast_workers = workers(Mechanism::FastNone, fast);

    let changes = match (fanout, args.password_every) {
        (Some(f), Some(every)) => {
            let admin = f.admin.clone().context("no tessera CLI")?;
            let account = f.list.first().context("no fanout account")?.clone();
            let plan = Fanout {
                target: target.clone(),
                admin,
                sessions: args.fanout,
                every: Duration::from_secs_f64(every),
                deadline,
                timeout,
            };
            Some(tokio::spawn(plan.run(account)))
        }
        _ => None,
    };

    let scram_tally = join_all(&mut scram_workers).await;
    let fast_tally = join_all(&mut fast_workers).await;
    // Login rates are over the time the login workers ran, not the time the rest took to end.
    let logins_elapsed = start.elapsed().as_secs_f64();
    let mut held_tally = Tally::default();
    let mut alive = 0;
    while let Some(r) = holders.join_next().await {
        let (t, ok) = r.unwrap_or_else(|e| panicked(&e));
        held_tally.merge(t);
        alive += usize::from(ok);
    }
    let changes = match changes {
        Some(h) => Some(h.await.unwrap_or_else(|e| ChangeResults::failed(&e))),
        None => None,
    };
    let elapsed = start.elapsed().as_secs_f64();
    Ok(report(
        args,
        Parts {
            held: held_tally,
            alive,
            scram: scram_tally,
            fast: fast_tally,
            changes,
        },
        Elapsed {
            all: elapsed,
            logins: logins_elapsed,
        },
        &cpu,
    ))
}

fn panicked(e: &tokio::task::JoinError) -> (Tally, bool) {
    let mut t = Tally::default();
    t.error(&Failure::Protocol(format!("task failed: {e}")));
    (t, false)
}

async fn join_all(set: &mut JoinSet<Tally>) -> Tally {
    let mut tally = Tally::default();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(t) => tally.merge(t),
            Err(e) => tally.error(&Failure::Protocol(format!("task failed: {e}"))),
        }
    }
    tally
}

/// Ping the server every `every` until `deadline`, timing each reply; whitespace and other
/// traffic in between are skipped. Returns the ping tally and whether the session lived to the
/// end (then it is closed politely).
async fn hold(
    mut conn: Conn,
    domain: &str,
    every: Duration,
    deadline: Instant,
    timeout: Duration,
) -> (Tally, bool) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let mut tally = Tally::default();
    conn.clear();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if Instant::now() >= deadline || crate::stopped() {
            conn.close().await;
            return (tally, true);
        }
        let id = format!("mx{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let ping = format!(
            "<iq type='get' id='{id}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
            crate::xml::escape(domain)
        );
        let sent = Instant::now();
        let single = format!("id='{id}'");
        let double = format!("id=\"{id}\"");
        let reply = async {
            conn.send(&ping).await?;
            conn.read_until(&[&single, &double]).await
        };
        match tokio::time::timeout(timeout, reply).await {
            Ok(Ok(_)) => {
                tally.ok(sent.elapsed());
                // The rest of the reply (and any whitespace) is not needed.
                conn.clear();
            }
            Ok(Err(f)) => {
                tally.error(&f);
                return (tally, false);
            }
            Err(_) => {
                tally.error(&Failure::Timeout);
                return (tally, false);
            }
        }
    }
}

/// The `--password-every` part.
struct Fanout {
    target: Arc<Target>,
    admin: Admin,
    sessions: usize,
    every: Duration,
    deadline: Instant,
    timeout: Duration,
}

#[derive(Debug, Default)]
struct ChangeResults {
    /// Milliseconds from the change until the last session got `<reset/>`, per change.
    all_reset_ms: Vec<f64>,
    /// Sessions that got something other than `<reset/>` (by kind).
    tally: Tally,
}

impl ChangeResults {
    fn failed(e: &tokio::task::JoinError) -> Self {
        let mut r = Self::default();
        r.tally.error(&Failure::Protocol(format!(
            "password-change task failed: {e}"
        )));
        r
    }
}

impl Fanout {
    async fn run(self, mut account: Arc<Account>) -> ChangeResults {
        let mut out = ChangeResults::default();
        let mut next = Instant::now() + self.every;
        loop {
            if Instant::now() >= self.deadline || crate::stopped() {
                return out;
            }
            let sessions = self.open(&account, &mut out.tally).await;
            let wake = next.min(self.deadline);
            tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
            if Instant::now() >= self.deadline || crate::stopped() {
                for (_, conn) in sessions {
                    conn.close().await;
                }
                return out;
            }
            next += self.every;
            let password = random_password();
            let t0 = Instant::now();
            let mut watchers = JoinSet::new();
            for (_, mut conn) in sessions {
                let timeout = self.timeout;
                watchers.spawn(async move { await_reset(&mut conn, t0, timeout).await });
            }
            let jid = account.jid();
            let changed = self
                .admin
                .run(&["user", "passwd", &jid], &format!("{password}\n"))
                .await;
            if let Err(e) = changed {
                // The password stays as it was: drop these sessions, open new ones next round.
                out.tally
                    .error(&Failure::Protocol(format!("passwd: {e:#}")));
                watchers.abort_all();
                continue;
            }
            let mut last = Duration::ZERO;
            let mut all_reset = true;
            while let Some(r) = watchers.join_next().await {
                match r {
                    Ok(Ok(d)) => last = last.max(d),
                    Ok(Err(f)) => {
                        all_reset = false;
                        out.tally.error(&f);
                    }
                    Err(e) => {
                        all_reset = false;
                        out.tally.error(&Failure::Protocol(e.to_string()));
                    }
                }
            }
            // A change counts once every session got its <reset/> (the failures are in errors).
            if all_reset {
                out.all_reset_ms.push(last.as_secs_f64() * 1000.0);
            }
            account = Arc::new(Account::new(&account.local, &account.domain, &password));
        }
    }

    /// Log `sessions` clients of `account` in (SCRAM-SHA-256, unmeasured).
    async fn open(&self, account: &Arc<Account>, tally: &mut Tally) -> Vec<(Client, Conn)> {
        let clients = (0..self.sessions)
            .map(|i| Client::new(account.clone(), UA_FANOUT + i as u64))
            .collect();
        let (sessions, failed) =
            open_sessions(&self.target, clients, None, self.sessions, self.timeout).await;
        tally.merge(failed);
        sessions
    }
}

struct Elapsed {
    all: f64,
    logins: f64,
}

struct Parts {
    held: Tally,
    alive: usize,
    scram: Tally,
    fast: Tally,
    changes: Option<ChangeResults>,
}

fn logins_part(tally: &mut Tally, workers: usize, elapsed: f64) -> Value {
    let n = tally.successes();
    #[allow(clippy::cast_precision_loss)]
    let rate = n as f64 / elapsed.max(1e-9);
    json!({
        "workers": workers,
        "logins": n,
        "logins_per_s": round(rate),
        "latency_ms": tally.latency_ms(),
        "tokens_rotated": tally.tokens_rotated,
        "errors": tally.errors,
    })
}

fn report(args: &MixedArgs, mut p: Parts, elapsed: Elapsed, cpu: &CpuMeter) -> Value {
    let mut errors = Map::new();
    let mut add = |part: &str, t: &Tally| {
        for (kind, n) in &t.errors {
            errors.insert(format!("{part}:{kind}"), json!(n));
        }
    };
    add("idle", &p.held);
    add("scram", &p.scram);
    add("fast", &p.fast);
    if let Some(c) = &p.changes {
        add("password", &c.tally);
    }
    let errors_total = p.held.errors_total()
        + p.scram.errors_total()
        + p.fast.errors_total()
        + p.changes.as_ref().map_or(0, |c| c.tally.errors_total());
    let pings = p.held.successes();
    let logins = p.scram.successes() + p.fast.successes();
    let changes = p.changes.as_ref().map(|c| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let mut sorted: Vec<u64> = c
            .all_reset_ms
            .iter()
            .map(|ms| (ms * 1000.0).round() as u64)
            .collect();
        sorted.sort_unstable();
        json!({
            "every_s": args.password_every,
            "sessions": args.fanout,
            "changes": c.all_reset_ms.len(),
            "all_reset_ms_max": percentile_ms(&sorted, 1.0),
            "all_reset_ms_p50": percentile_ms(&sorted, 0.5),
        })
    });
    let mut out = json!({
        "mode": "mixed",
        "duration_s": args.duration,
        "elapsed_s": round(elapsed.all),
        "idle": {
            "sessions": args.idle,
            "alive_at_end": p.alive,
            "pings": pings,
            "ping_latency_ms": p.held.latency_ms(),
        },
        "scram": logins_part(&mut p.scram, args.scram, elapsed.logins),
        "fast": logins_part(&mut p.fast, args.fast, elapsed.logins),
        "password_changes": changes,
        "errors": errors,
        "errors_total": errors_total,
    });
    if let Some(map) = out.as_object_mut() {
        map.extend(cpu.finish(logins, "login"));
    }
    eprintln!(
        "mixed: {:.1} s: {}/{} held sessions alive, {pings} pings (p99 {} ms); SCRAM {} logins, FAST {} logins (p99 {} / {} ms){}; {errors_total} errors",
        elapsed.all,
        p.alive,
        args.idle,
        out["idle"]["ping_latency_ms"]["p99"],
        out["scram"]["logins"],
        out["fast"]["logins"],
        out["scram"]["latency_ms"]["p99"],
        out["fast"]["latency_ms"]["p99"],
        out["password_changes"]
            .get("changes")
            .map(|n| format!(
                ", {n} password changes (all sessions reset within {} ms)",
                out["password_changes"]["all_reset_ms_max"]
            ))
            .unwrap_or_default(),
    );
    for (part, t) in [("idle", &p.held), ("scram", &p.scram), ("fast", &p.fast)] {
        for line in t.error_lines() {
            eprintln!("{part}: {line}");
        }
    }
    out
}
