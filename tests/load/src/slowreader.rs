//! `slow-reader`: what one session that stops reading costs everyone else. A recipient B logs
//! in over a socket with a small receive buffer and never reads again; a sender A writes
//! `--flood` messages to B's full JID as fast as it can (reading what comes back between
//! batches, as a client does, on a thread of its own); meanwhile `--pingers` other sessions each
//! ping the server every `--ping-interval-ms`. The same pingers ping for `--idle` seconds with
//! nothing else going on before and after: that is the baseline.
//!
//! Reported: the pingers' latency percentiles idle and while B is filled (and their p99
//! ratio), A's messages sent and errors received, whether B was closed with
//! `<policy-violation/>`, and with `--server-pid` the server's RSS before and at its peak and
//! its CPU time over the flood.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::accounts::{Account, Accounts};
use crate::auth::{self, Client, Mechanism};
use crate::cli::SlowReaderArgs;
use crate::failure::Failure;
use crate::net::{Conn, Target};
use crate::procfs::{round, rss_kib, CpuMeter};
use crate::stats::Tally;

/// User-agent ids of this mode (FAST slots and Bind 2 resources stay apart from other modes).
const UA_BASE: u64 = 6 << 20;
/// Messages A writes at once before it reads what came back.
const BATCH: usize = 50;

async fn login(target: &Target, account: &Arc<Account>, n: u64) -> Result<Conn, Failure> {
    auth::scram_session(target, account, UA_BASE + n).await
}

/// One ping to the server; answers its round trip.
async fn ping(conn: &mut Conn, domain: &str, id: &str) -> Result<Duration, Failure> {
    let start = Instant::now();
    conn.send(&format!(
        "<iq type='get' id='{id}' to='{domain}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await?;
    conn.read_until(&[&format!("id='{id}'"), &format!("id=\"{id}\"")])
        .await?;
    Ok(start.elapsed())
}

/// Each pinger pings every `interval` until `stop`; answers the latencies of all of them.
async fn pingers(
    conns: Vec<Conn>,
    domain: &str,
    interval: Duration,
    stop: Arc<AtomicBool>,
    phase: &str,
) -> (Vec<Conn>, Tally) {
    let mut tasks: JoinSet<(Conn, Tally)> = JoinSet::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let (domain, stop, phase) = (domain.to_owned(), stop.clone(), phase.to_owned());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) && !crate::stopped() {
                let next = Instant::now() + interval;
                match ping(&mut conn, &domain, &format!("{phase}-{i}-{n}")).await {
                    Ok(rtt) => tally.ok(rtt),
                    Err(f) => {
                        tally.error(&f);
                        break;
                    }
                }
                n += 1;
                tokio::time::sleep_until(next.into()).await;
            }
            (conn, tally)
        });
    }
    let mut conns = Vec::new();
    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((conn, t)) = joined {
            conns.push(conn);
            tally.merge(t);
        }
    }
    (conns, tally)
}

/// A writes `count` messages to `to` in batches, reading back errors between batches; then
/// pings the server (everything it sent is routed) and waits for the errors still coming.
async fn flood(
    mut a: Conn,
    domain: &str,
    to: &str,
    count: usize,
    body_bytes: usize,
) -> Result<(u64, u64), Failure> {
    let body = "x".repeat(body_bytes);
    let mut errors = 0u64;
    let mut sent = 0u64;
    // Errors are counted in whole stanzas; a partial one waits in the buffer.
    let count_errors = |a: &mut Conn| {
        let text = a.take_complete();
        (text.matches("type='error'").count() + text.matches("type=\"error\"").count()) as u64
    };
    let mut batch = String::new();
    for i in 0..count {
        batch.push_str(&format!(
            "<message to='{to}' type='chat' id='f{i}'><body>{body}</body></message>"
        ));
        if batch.len() >= BATCH * body_bytes || i + 1 == count {
            a.send(&batch).await?;
            sent = (i + 1) as u64;
            batch.clear();
            while let Ok(Ok(n)) = tokio::time::timeout(Duration::ZERO, a.fill()).await {
                if n == 0 {
                    return Err(Failure::Io("the sender was disconnected".into()));
                }
            }
            errors += count_errors(&mut a);
        }
    }
    ping(&mut a, domain, "flood-done").await?;
    // The bounces of what B never read come from B's end: wait for quiet.
    loop {
        match tokio::time::timeout(Duration::from_millis(500), a.fill()).await {
            Ok(Ok(n)) if n > 0 => errors += count_errors(&mut a),
            _ => break,
        }
    }
    a.close().await;
    Ok((sent, errors))
}

/// [`pingers`] for a set time.
async fn timed_pingers(
    conns: Vec<Conn>,
    domain: &str,
    interval: Duration,
    phase: Duration,
    name: &str,
) -> (Vec<Conn>, Tally) {
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(phase).await;
            stop.store(true, Ordering::Release);
        })
    };
    let out = pingers(conns, domain, interval, stop, name).await;
    let _ = timer.await;
    out
}

fn latency(tally: &mut Tally) -> Value {
    let mut v = tally.latency_ms();
    if let Some(map) = v.as_object_mut() {
        map.insert("samples".into(), json!(tally.successes()));
    }
    v
}

pub(crate) async fn run(
    args: &SlowReaderArgs,
    target: Target,
    accounts: &Accounts,
) -> anyhow::Result<Value> {
    if accounts.list.len() < 2 + args.pingers {
        bail!(
            "slow-reader needs {} accounts (sender, reader, pingers), got {}",
            2 + args.pingers,
            accounts.list.len()
        );
    }
    let timeout = Duration::from_secs_f64(args.common.timeout);
    let client = Client::new(accounts.list[1].clone(), UA_BASE + 1);
    let slow = target
        .connect_with(None, Some(args.reader_rcvbuf))
        .await
        .context("reader connect")?;
    let mut b = auth::login_on(slow, &target, &client, Mechanism::ScramSha256, None)
        .await
        .context("reader login")?
        .conn;
    // B's full JID: the `to` of the server's answer to a ping.
    b.send(&format!(
        "<iq type='get' id='whoami' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>",
        target.domain
    ))
    .await?;
    let (_, answer) = b.read_until(&["id='whoami'"]).await?;
    let (_, rest) = b.read_until(&[">"]).await?;
    let b_jid = crate::xml::attr(&(answer + &rest), "iq", "to")
        .context("no 'to' on the answer to the reader's ping")?;
    let mut idle_conns = Vec::new();
    for (i, account) in accounts.list.iter().skip(2).take(args.pingers).enumerate() {
        idle_conns.push(
            login(&target, account, 2 + i as u64)
                .await
                .with_context(|| format!("pinger {i} login"))?,
        );
    }
    let interval = Duration::from_millis(args.ping_interval_ms.max(1));
    let phase = Duration::from_secs_f64(args.idle);
    // The sender runs on a thread and runtime of its own, so that writing its flood does not
    // hold up the pingers' tasks in this process: the latency measured is the server's.
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    let sender = {
        let (target, account) = (target.clone(), accounts.list[0].clone());
        let (to, count, body) = (b_jid.clone(), args.flood, args.body_bytes);
        std::thread::spawn(move || -> anyhow::Result<(u64, u64, f64)> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let a = tokio::time::timeout(timeout, login(&target, &account, 0))
                    .await
                    .unwrap_or(Err(Failure::Timeout))
                    .context("sender login")?;
                let _ = ready_tx.send(());
                go_rx.await.context("never told to go")?;
                let started = Instant::now();
                let (sent, errors) = flood(a, &target.domain, &to, count, body)
                    .await
                    .context("flood")?;
                Ok((sent, errors, started.elapsed().as_secs_f64()))
            })
        })
    };
    ready_rx.await.context("the sender did not log in")?;
    // Idle before: the pingers alone.
    let (conns, mut idle) =
        timed_pingers(idle_conns, &target.domain, interval, phase, "idle").await;
    // Loaded: the pingers while A fills B.
    let rss_before = args.common.server_pid.and_then(|p| rss_kib(p).ok());
    let peak = Arc::new(AtomicU64::new(rss_before.unwrap_or(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = args.common.server_pid.map(|pid| {
        let (peak, stop) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                if let Ok(kib) = rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    });
    let cpu = CpuMeter::start(args.common.server_pid)?;
    let loaded = {
        let (domain, stop) = (target.domain.clone(), stop.clone());
        tokio::spawn(async move { pingers(conns, &domain, interval, stop, "loaded").await })
    };
    let _ = go_tx.send(());
    let flooded = tokio::task::spawn_blocking(move || sender.join())
        .await
        .context("sender thread")?
        .map_err(|_| anyhow::anyhow!("the sender thread panicked"))?;
    stop.store(true, Ordering::Release);
    let (conns, mut during) = loaded.await.context("pingers")?;
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let mut report = cpu.finish(args.flood as u64, "message");
    let (sent, errors, flood_s) = flooded?;
    // B reads again: what was written before it was closed, then the stream error.
    let mut read_bytes = 0usize;
    let mut b_text = String::new();
    while let Ok(Ok(n)) = tokio::time::timeout(timeout, b.fill()).await {
        if n == 0 {
            break;
        }
        read_bytes += n;
        let text = b.buffered();
        b_text = text
            .get(text.len().saturating_sub(512)..)
            .unwrap_or_default()
            .to_owned();
        b.clear();
    }
    let closed_for_not_reading = b_text.contains("policy-violation");
    // Idle after (the reader's leftovers handed on): pooled with before as the baseline, so a
    // drift of the machine over the run shows in both.
    let (conns, after) = timed_pingers(conns, &target.domain, interval, phase, "after").await;
    idle.merge(after);
    for c in conns {
        c.close().await;
    }
    let idle_p99 = idle.latency_ms()["p99"].as_f64().unwrap_or(0.0);
    let during_p99 = during.latency_ms()["p99"].as_f64().unwrap_or(0.0);
    let errors_total = idle.errors_total() + during.errors_total();
    report.insert("mode".into(), json!("slow-reader"));
    report.insert("pingers".into(), json!(args.pingers));
    report.insert("ping_interval_ms".into(), json!(args.ping_interval_ms));
    report.insert("idle_ping_ms".into(), latency(&mut idle));
    report.insert("loaded_ping_ms".into(), latency(&mut during));
    report.insert(
        "p99_ratio".into(),
        json!(round(during_p99 / idle_p99.max(1e-6))),
    );
    report.insert("flood_s".into(), json!(round(flood_s)));
    report.insert("messages_sent".into(), json!(sent));
    report.insert("errors_received".into(), json!(errors));
    report.insert("reader_bytes_read_after".into(), json!(read_bytes));
    report.insert(
        "reader_closed_with_policy_violation".into(),
        json!(closed_for_not_reading),
    );
    if let Some(before) = rss_before {
        let peak = peak.load(Ordering::Relaxed);
        report.insert(
            "server_rss_kib".into(),
            json!({ "before": before, "peak": peak, "growth": peak.saturating_sub(before) }),
        );
    }
    report.insert("errors_total".into(), json!(errors_total));
    for line in idle.error_lines().into_iter().chain(during.error_lines()) {
        eprintln!("slow-reader: {line}");
    }
    eprintln!(
        "slow-reader: ping p99 {idle_p99} ms idle, {during_p99} ms while {sent} messages filled \
         a reader that does not read ({flood_s:.1} s; reader closed: {closed_for_not_reading}; \
         {errors} errors back to the sender)"
    );
    Ok(Value::Object(report))
}
