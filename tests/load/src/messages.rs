//! `messages`: one-to-one chat between pairs of accounts that have each other in their rosters,
//! as an IM server spends most of its life. Each pair is a sender A and a recipient B; before
//! the measurement (unmeasured) every session fetches its roster and sends initial presence,
//! and A and B subscribe to each other (A asks, B approves and asks back, A approves). With
//! `--carbons`, A has a second session and both enable XEP-0280 carbons, so every message A
//! sends also goes out as a `<sent/>` copy. `--offline N` of the pairs have B logged out: their
//! messages go to offline storage (10 per second per pair), and after the run B logs in and
//! must receive every one of them.
//!
//! The measurement: for `--duration` seconds, A writes to B's bare JID — as fast as B takes them
//! (at most `--window` in flight per pair), or at `--rate` messages per second over all pairs
//! (open loop: latency counts from when a message was due). Each body carries its send time;
//! B timestamps its arrival. Reported: messages per second delivered, latency percentiles,
//! server CPU per message sent (everything the server did for it: routing, the carbon copy,
//! offline storage), and every message or carbon that went missing as an error.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::accounts::{Account, Accounts};
use crate::auth::{self, Client, Mechanism};
use crate::cli::MessagesArgs;
use crate::failure::Failure;
use crate::net::{Conn, Target};
use crate::procfs::{round, CpuMeter};
use crate::sm::{enable_sm, Handled};
use crate::stats::{percentile_ms, Tally};

/// User-agent ids of this mode (FAST slots and Bind 2 resources stay apart from other modes).
const UA_BASE: u64 = 5 << 20;
/// How long a reader waits for the next stanza before it looks at the sender again.
const POLL: Duration = Duration::from_millis(250);
/// Messages per second to each offline recipient.
const OFFLINE_RATE: f64 = 10.0;

/// One pair's sessions.
struct Pair {
    a: Conn,
    a2: Option<Conn>,
    b: Option<Conn>,
    b_account: Arc<Account>,
}

/// Log in, fetch the roster and send initial presence; answers the stream and the roster.
async fn open(target: &Target, account: &Arc<Account>, n: u64) -> Result<(Conn, String), Failure> {
    let client = Client::new(account.clone(), UA_BASE + n);
    let mut conn = auth::login(target, &client, Mechanism::ScramSha256, None, None)
        .await?
        .conn;
    // What a client does after login: the roster, then the initial presence.
    conn.send("<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>")
        .await?;
    let (_, head) = conn.read_until(&["id='roster'"]).await?;
    let (_, rest) = conn.read_until(&["</iq>"]).await?;
    conn.send("<presence/>").await?;
    Ok((conn, head + &rest))
}

/// Whether a roster shows `jid` with a mutual subscription (a second run on the same accounts).
fn mutual(roster: &str, jid: &str) -> bool {
    roster.split("<item").any(|item| {
        (item.contains(&format!("jid='{jid}'")) || item.contains(&format!("jid=\"{jid}\"")))
            && item.contains("both")
    })
}

async fn carbons(conn: &mut Conn) -> Result<(), Failure> {
    conn.send("<iq type='set' id='carbons'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
        .await?;
    let (_, answer) = conn.read_until(&["id='carbons'"]).await?;
    if answer.contains("type='error'") || answer.contains("type=\"error\"") {
        return Err(Failure::Protocol("carbons refused".into()));
    }
    Ok(())
}

/// A asks B; B approves and asks back; A approves. Waits until A's roster shows `both`.
async fn befriend(a: &mut Conn, b: &mut Conn, a_jid: &str, b_jid: &str) -> Result<(), Failure> {
    a.send(&format!("<presence to='{b_jid}' type='subscribe'/>"))
        .await?;
    b.read_until(&["type='subscribe'", "type=\"subscribe\""])
        .await?;
    b.send(&format!(
        "<presence to='{a_jid}' type='subscribed'/><presence to='{a_jid}' type='subscribe'/>"
    ))
    .await?;
    a.read_until(&["type='subscribe'", "type=\"subscribe\""])
        .await?;
    a.send(&format!("<presence to='{b_jid}' type='subscribed'/>"))
        .await?;
    a.send("<iq type='get' id='check'><query xmlns='jabber:iq:roster'/></iq>")
        .await?;
    let (_, roster) = a.read_until(&["id='check'"]).await?;
    let roster = if roster.contains("</iq>") || roster.ends_with("/>") {
        roster
    } else {
        let (_, rest) = a.read_until(&["</iq>", "/>"]).await?;
        roster + &rest
    };
    if !roster.contains("both") && !roster.contains("'to'") && !roster.contains("\"to\"") {
        return Err(Failure::Protocol(format!(
            "no subscription after approval: {roster}"
        )));
    }
    Ok(())
}

/// Set up every pair (unmeasured).
async fn pairs(
    args: &MessagesArgs,
    target: &Target,
    accounts: &Accounts,
    timeout: Duration,
) -> anyhow::Result<Vec<Pair>> {
    if accounts.list.len() < 2 * args.pairs {
        bail!(
            "messages needs {} accounts (2 per pair), got {}",
            2 * args.pairs,
            accounts.list.len()
        );
    }
    let mut out = Vec::new();
    for i in 0..args.pairs {
        let a_account = accounts.list[2 * i].clone();
        let b_account = accounts.list[2 * i + 1].clone();
        let offline = i < args.offline;
        let setup = async {
            let n = 4 * i as u64;
            let (mut a, roster) = open(target, &a_account, n).await?;
            let mut a2 = match args.carbons {
                true => Some(open(target, &a_account, n + 1).await?.0),
                false => None,
            };
            let (mut b, _) = open(target, &b_account, n + 2).await?;
            if !mutual(&roster, &b_account.jid()) {
                befriend(&mut a, &mut b, &a_account.jid(), &b_account.jid()).await?;
            }
            if args.carbons {
                carbons(&mut a).await?;
                if let Some(a2) = a2.as_mut() {
                    carbons(a2).await?;
                }
            }
            if args.sm {
                for c in [Some(&mut a), a2.as_mut(), Some(&mut b)]
                    .into_iter()
                    .flatten()
                {
                    enable_sm(c).await?;
                }
            }
            let b = if offline {
                b.close().await;
                None
            } else {
                Some(b)
            };
            Ok::<_, Failure>(Pair {
                a,
                a2,
                b,
                b_account: b_account.clone(),
            })
        };
        let pair = tokio::time::timeout(timeout * 4, setup)
            .await
            .unwrap_or(Err(Failure::Timeout))
            .with_context(|| format!("setting up pair {i}"))?;
        out.push(pair);
    }
    // Let the presence and roster traffic of the setup settle, then forget it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for p in &mut out {
        drain(&mut p.a).await;
        if let Some(c) = p.a2.as_mut() {
            drain(c).await;
        }
        if let Some(c) = p.b.as_mut() {
            drain(c).await;
        }
    }
    Ok(out)
}

/// Read whatever has arrived (bounded), and drop it.
async fn drain(conn: &mut Conn) {
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(20), conn.fill()).await {
        if n == 0 {
            break;
        }
    }
    conn.clear();
}

/// The send time (µs since `start`) carried in a body.
fn stamp_of(message: &str) -> Option<u64> {
    let body = message.split("<body>").nth(1)?;
    body.split(' ').next()?.parse().ok()
}

fn micros(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

pub(crate) async fn run(
    args: &MessagesArgs,
    target: Target,
    accounts: &Accounts,
) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs_f64(args.common.timeout);
    let pairs = pairs(args, &target, accounts, timeout).await?;
    let online = pairs.iter().filter(|p| p.b.is_some()).count();
    let padding = "x".repeat(args.body_bytes.saturating_sub(24));
    let cpu = CpuMeter::start(args.common.server_pid)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    eprintln!(
        "messages: {} pairs ({} online, {} offline){}, running for {} s",
        pairs.len(),
        online,
        pairs.len() - online,
        if args.carbons { ", carbons on" } else { "" },
        args.duration
    );
    let sent = Arc::new(AtomicU64::new(0));
    let sent_offline = Arc::new(AtomicU64::new(0));
    let mut tasks: JoinSet<(Tally, u64)> = JoinSet::new();
    let mut later: Vec<(Arc<Account>, u64)> = Vec::new();
    // Open loop: each online pair's share of --rate.
    #[allow(clippy::cast_precision_loss)]
    let pair_rate = args.rate.map(|r| r / online.max(1) as f64);
    for (i, p) in pairs.into_iter().enumerate() {
        let Pair {
            mut a,
            a2,
            b,
            b_account,
        } = p;
        let to = b_account.jid();
        let padding = padding.clone();
        let window = Arc::new(Semaphore::new(args.window.max(1)));
        let pair_sent = Arc::new(AtomicU64::new(0));
        // Set once A has sent its last message: the readers then wait for exactly that many.
        let pair_done = Arc::new(AtomicBool::new(false));
        let is_online = b.is_some();
        if !is_online {
            later.push((b_account.clone(), i as u64));
        }
        {
            let (window, pair_sent, pair_done, sent, sent_offline) = (
                window.clone(),
                pair_sent.clone(),
                pair_done.clone(),
                sent.clone(),
                sent_offline.clone(),
            );
            tasks.spawn(async move {
                let mut tally = Tally::default();
                let mut n: u64 = 0;
                let interval = match (is_online, pair_rate) {
                    (false, _) => Some(Duration::from_secs_f64(1.0 / OFFLINE_RATE)),
                    (true, Some(r)) if r > 0.0 => Some(Duration::from_secs_f64(1.0 / r)),
                    _ => None,
                };
                while Instant::now() < deadline && !crate::stopped() {
                    let due = interval.map(|iv| start + iv * u32::try_from(n).unwrap_or(u32::MAX));
                    if let Some(due) = due {
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                    } else {
                        match tokio::time::timeout_at(deadline.into(), window.acquire()).await {
                            Ok(Ok(permit)) => permit.forget(),
                            _ => break,
                        }
                    }
                    // Open loop: the latency counts from when the message was due.
                    let t = due.map_or_else(|| micros(start), |d| {
                        u64::try_from(d.duration_since(start).as_micros()).unwrap_or(0)
                    });
                    let text = format!(
                        "<message to='{to}' type='chat' id='m{n}'><body>{t} {padding}</body></message>"
                    );
                    if let Err(f) = a.send(&text).await {
                        tally.error(&f);
                        break;
                    }
                    n += 1;
                    pair_sent.fetch_add(1, Ordering::Relaxed);
                    if is_online {
                        sent.fetch_add(1, Ordering::Relaxed);
                    } else {
                        sent_offline.fetch_add(1, Ordering::Relaxed);
                    }
                }
                pair_done.store(true, Ordering::Release);
                // Keep A's stream open until the copies and deliveries are drained.
                tokio::time::sleep(Duration::from_millis(200)).await;
                a.close().await;
                (tally, 0)
            });
        }
        if let Some(mut b) = b {
            let (window, pair_sent, pair_done) =
                (window.clone(), pair_sent.clone(), pair_done.clone());
            tasks.spawn(async move {
                let mut tally = Tally::default();
                let mut got: u64 = 0;
                let mut handled = Handled::default();
                loop {
                    let finished = pair_done.load(Ordering::Acquire);
                    if finished && got >= pair_sent.load(Ordering::Relaxed) {
                        break;
                    }
                    let wait = if finished { timeout } else { POLL };
                    match tokio::time::timeout(wait, b.read_until(&["</message>"])).await {
                        Ok(Ok((_, message))) => {
                            if let Some(ack) = handled.read(&message) {
                                if let Err(f) = b.send(&ack).await {
                                    tally.error(&f);
                                    break;
                                }
                            }
                            if let Some(t) = stamp_of(&message) {
                                let now = micros(start);
                                tally.ok(Duration::from_micros(now.saturating_sub(t)));
                                got += 1;
                                window.add_permits(1);
                            }
                        }
                        Ok(Err(f)) => {
                            tally.error(&f);
                            break;
                        }
                        // Quiet while A was still sending: look again.
                        Err(_) if !finished => {}
                        Err(_) => {
                            tally.error(&Failure::Protocol(format!(
                                "pair {i}: {} of {} messages arrived",
                                got,
                                pair_sent.load(Ordering::Relaxed)
                            )));
                            break;
                        }
                    }
                }
                b.close().await;
                (tally, 0)
            });
        }
        if let Some(mut a2) = a2 {
            let (pair_sent, pair_done) = (pair_sent.clone(), pair_done.clone());
            tasks.spawn(async move {
                let mut tally = Tally::default();
                let mut copies: u64 = 0;
                let mut handled = Handled::default();
                loop {
                    let finished = pair_done.load(Ordering::Acquire);
                    if finished && copies >= pair_sent.load(Ordering::Relaxed) {
                        break;
                    }
                    let wait = if finished { timeout } else { POLL };
                    match tokio::time::timeout(wait, a2.read_until(&["</sent>"])).await {
                        Ok(Ok((_, copy))) => {
                            copies += 1;
                            if let Some(ack) = handled.read(&copy) {
                                if let Err(f) = a2.send(&ack).await {
                                    tally.error(&f);
                                    break;
                                }
                            }
                        }
                        Ok(Err(f)) => {
                            tally.error(&f);
                            break;
                        }
                        // Quiet while A was still sending: look again.
                        Err(_) if !finished => {}
                        Err(_) => {
                            tally.error(&Failure::Protocol(format!(
                                "pair {i}: {copies} of {} carbons arrived",
                                pair_sent.load(Ordering::Relaxed)
                            )));
                            break;
                        }
                    }
                }
                a2.close().await;
                (tally, copies)
            });
        }
    }
    let mut tally = Tally::default();
    let mut carbons_received = 0;
    while let Some(joined) = tasks.join_next().await {
        let (t, copies) = joined.context("a task panicked")?;
        tally.merge(t);
        carbons_received += copies;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);
    let stored = sent_offline.load(Ordering::Relaxed);
    let mut report = cpu.finish(sent + stored, "message");
    // The offline recipients come back: each must get all its messages (unmeasured).
    let mut offline_delivered = 0;
    for (account, n) in later {
        match collect(&target, &account, 4 * n + 3, timeout).await {
            Ok(count) => offline_delivered += count,
            Err(f) => tally.error(&f),
        }
    }
    if offline_delivered != stored {
        tally.error(&Failure::Protocol(format!(
            "{offline_delivered} of {stored} stored messages delivered at login"
        )));
    }
    let delivered = tally.successes();
    #[allow(clippy::cast_precision_loss)]
    let per_s = delivered as f64 / elapsed.max(1e-9);
    let mut lat = tally.latencies_us.clone();
    lat.sort_unstable();
    report.insert("mode".into(), json!("messages"));
    report.insert("pairs".into(), json!(args.pairs));
    report.insert("offline_pairs".into(), json!(args.offline.min(args.pairs)));
    report.insert("carbons".into(), json!(args.carbons));
    report.insert("stream_management".into(), json!(args.sm));
    report.insert("rate".into(), json!(args.rate));
    report.insert("duration_s".into(), json!(round(elapsed)));
    report.insert("messages_sent".into(), json!(sent));
    report.insert("messages_delivered".into(), json!(delivered));
    report.insert("messages_per_s".into(), json!(round(per_s)));
    report.insert("messages_stored_offline".into(), json!(stored));
    report.insert(
        "offline_delivered_at_login".into(),
        json!(offline_delivered),
    );
    report.insert("carbons_received".into(), json!(carbons_received));
    report.insert(
        "latency_ms".into(),
        json!({
            "p50": percentile_ms(&lat, 0.50),
            "p90": percentile_ms(&lat, 0.90),
            "p99": percentile_ms(&lat, 0.99),
            "max": percentile_ms(&lat, 1.0),
        }),
    );
    report.insert("errors_total".into(), json!(tally.errors_total()));
    report.insert("errors".into(), json!(tally.errors));
    for line in tally.error_lines() {
        eprintln!("messages: {line}");
    }
    eprintln!(
        "messages: {delivered} delivered ({per_s:.0}/s), {stored} stored and {offline_delivered} \
         delivered at login, {carbons_received} carbons, p99 {} ms",
        percentile_ms(&lat, 0.99)
    );
    Ok(Value::Object(report))
}

/// Log in as an offline recipient and count its stored messages.
async fn collect(
    target: &Target,
    account: &Arc<Account>,
    n: u64,
    timeout: Duration,
) -> Result<u64, Failure> {
    let (mut conn, _) = open(target, account, n).await?;
    let mut count = 0;
    loop {
        match tokio::time::timeout(
            Duration::from_secs(2).min(timeout),
            conn.read_until(&["</message>"]),
        )
        .await
        {
            Ok(Ok((_, m))) if m.contains("<body>") => count += 1,
            Ok(Ok(_)) => {}
            Ok(Err(f)) => return Err(f),
            // Quiet for two seconds: everything stored has come.
            Err(_) => break,
        }
    }
    conn.close().await;
    Ok(count)
}
