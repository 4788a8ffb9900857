//! `fanout`: N sessions of one account (created for the run) are online; the password is changed
//! through `tessera user passwd` (the admin socket), and the tool times until every session has
//! received the `<reset/>` stream error and, with `--tokens`, until every session's FAST token
//! is refused.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tessera_sasl::ht::HtMechanism;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::accounts::{random_password, Accounts};
use crate::auth::{self, Client, Mechanism};
use crate::cli::FanoutArgs;
use crate::failure::Failure;
use crate::net::{Conn, Target};
use crate::procfs::round;
use crate::stats::{percentile_ms, Tally};

const TOKEN_MECH: HtMechanism = HtMechanism::Sha256None;

/// Fanout always creates its own account (`<prefix>fan0`): its password gets changed.
pub(crate) async fn accounts(args: &FanoutArgs) -> anyhow::Result<Accounts> {
    Accounts::own_account(&args.common.accounts, "fan", "fanout").await
}

pub(crate) async fn run(
    args: &FanoutArgs,
    target: Target,
    accounts: &Accounts,
) -> anyhow::Result<Value> {
    let admin = accounts.admin.clone().context("no tessera CLI")?;
    let account = accounts.list.first().context("no account")?.clone();
    let timeout = Duration::from_secs_f64(args.common.timeout);
    let clients: Vec<Client> = (0..args.count)
        .map(|i| Client::new(account.clone(), i as u64))
        .collect();
    let clients = crate::logins::warm_up(&target, clients, Mechanism::ScramSha256, timeout).await?;
    let target = Arc::new(target);
    let request = args.tokens.then_some(TOKEN_MECH);
    let (sessions, mut tally) =
        open_sessions(&target, clients, request, args.concurrency, timeout).await;
    if sessions.is_empty() {
        bail!("no session could be opened");
    }
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let t0 = Instant::now();
    let mut watchers = JoinSet::new();
    for (client, conn) in sessions {
        watchers.spawn(watch(
            conn,
            client,
            target.clone(),
            gate.clone(),
            t0,
            timeout,
        ));
    }
    let jid = account.jid();
    admin
        .run(
            &["user", "passwd", &jid],
            &format!("{}\n", random_password()),
        )
        .await?;
    let cli_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut ends = Vec::new();
    while let Some(r) = watchers.join_next().await {
        match r {
            Ok(end) => ends.push(end),
            Err(e) => tally.error(&Failure::Protocol(e.to_string())),
        }
    }
    Ok(report(args, &tally, &ends, cli_ms))
}

/// Log every client in (SCRAM-SHA-256, `concurrency` at a time, unmeasured), asking for a
/// FAST token when `request` says so; the open sessions with each client's token, and the
/// failures.
pub(crate) async fn open_sessions(
    target: &Arc<Target>,
    clients: Vec<Client>,
    request: Option<HtMechanism>,
    concurrency: usize,
    timeout: Duration,
) -> (Vec<(Client, Conn)>, Tally) {
    let gate = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for mut client in clients {
        let (target, gate) = (target.clone(), gate.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let login = auth::login(&target, &client, Mechanism::ScramSha256, request, None);
            let r = tokio::time::timeout(timeout, login)
                .await
                .unwrap_or(Err(Failure::Timeout));
            r.map(|s| {
                client.token = s.token;
                (client, s.conn)
            })
        });
    }
    let mut tally = Tally::default();
    let mut sessions = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(s)) => sessions.push(s),
            Ok(Err(f)) => tally.error(&f),
            Err(e) => tally.error(&Failure::Protocol(e.to_string())),
        }
    }
    (sessions, tally)
}

/// Wait (at most `timeout`) for the stream error that ends `conn`: the time since `t0` when it
/// is `<reset/>`, else what came instead.
pub(crate) async fn await_reset(
    conn: &mut Conn,
    t0: Instant,
    timeout: Duration,
) -> Result<Duration, Failure> {
    match tokio::time::timeout(timeout, conn.read_until(&["</stream:error>"])).await {
        Ok(Ok((_, text))) => match crate::xml::stream_error(&text) {
            Some(c) if c == "reset" => Ok(t0.elapsed()),
            c => Err(Failure::StreamError(c.unwrap_or_default())),
        },
        Ok(Err(f)) => Err(f),
        Err(_) => Err(Failure::Timeout),
    }
}

/// How one session ended.
#[derive(Debug)]
struct End {
    /// Milliseconds from the start of the change to the `<reset/>` (None: something else).
    reset_ms: Option<f64>,
    /// What arrived instead of `<reset/>`.
    other: Option<String>,
    /// Milliseconds until the old FAST token was refused (with `--tokens`).
    token_refused_ms: Option<f64>,
}

async fn watch(
    mut conn: Conn,
    client: Client,
    target: Arc<Target>,
    gate: Arc<Semaphore>,
    t0: Instant,
    timeout: Duration,
) -> End {
    let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1000.0;
    let (reset_ms, other) = match await_reset(&mut conn, t0, timeout).await {
        Ok(after) => (Some(after.as_secs_f64() * 1000.0), None),
        Err(f) => (None, Some(f.kind())),
    };
    drop(conn);
    let mut token_refused_ms = None;
    if client.token.is_some() {
        let deadline = t0 + timeout;
        while Instant::now() < deadline {
            let _permit = gate.acquire().await;
            let login = auth::login(&target, &client, Mechanism::FastNone, None, None);
            match tokio::time::timeout(timeout, login).await {
                Ok(Err(Failure::Auth(_))) => {
                    token_refused_ms = Some(ms(Instant::now()));
                    break;
                }
                Ok(Ok(s)) => s.conn.close().await,
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    End {
        reset_ms,
        other,
        token_refused_ms,
    }
}

fn report(args: &FanoutArgs, tally: &Tally, ends: &[End], cli_ms: f64) -> Value {
    let mut resets: Vec<u64> = ends.iter().filter_map(|e| e.reset_ms).map(us).collect();
    resets.sort_unstable();
    let mut refused: Vec<u64> = ends
        .iter()
        .filter_map(|e| e.token_refused_ms)
        .map(us)
        .collect();
    refused.sort_unstable();
    let mut others = std::collections::BTreeMap::<String, u64>::new();
    for o in ends.iter().filter_map(|e| e.other.clone()) {
        *others.entry(o).or_default() += 1;
    }
    let first = percentile_ms(&resets, 0.0);
    let all = percentile_ms(&resets, 1.0);
    let out = json!({
        "mode": "fanout",
        "sessions_requested": args.count,
        "sessions": ends.len(),
        "cli_ms": round(cli_ms),
        "resets": resets.len(),
        "first_reset_ms": first,
        "p50_reset_ms": percentile_ms(&resets, 0.5),
        "all_reset_ms": all,
        "reset_spread_ms": round(all - first),
        "not_reset": others,
        "tokens": args.tokens,
        "tokens_refused": refused.len(),
        "all_tokens_refused_ms": args.tokens.then(|| percentile_ms(&refused, 1.0)),
        "open_errors": tally.errors,
    });
    eprintln!(
        "fanout: {}/{} sessions got <reset/>; first after {first} ms, all after {all} ms (spread {} ms); tessera user passwd took {:.1} ms{}",
        resets.len(), ends.len(), round(all - first), cli_ms,
        if args.tokens { format!("; {} tokens refused, all after {} ms", refused.len(), percentile_ms(&refused, 1.0)) } else { String::new() }
    );
    for line in tally.error_lines() {
        eprintln!("{line}");
    }
    out
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn us(ms: f64) -> u64 {
    (ms * 1000.0) as u64
}
