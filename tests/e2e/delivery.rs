//! Delivery never loses a stanza silently: a session that stops reading is closed (nothing
//! written for `c2s.send_timeout`), a sender that fills half of its outbox has the rest of its
//! flood shed, and every stanza meant for the reader is accounted for — read by it, stored by
//! mod_offline and delivered at its next login, or bounced to its sender — to the last one.
//! The same when a password change closes a session with stanzas queued; and a client that
//! floods the server is throttled, losing nothing.
//!
//! The sender is slixmpp (`tests/interop/slix_flood.py`), which reads while it writes as
//! every real client does. The slow reader is the raw test client over a socket with a 16 KiB
//! receive buffer that simply stops reading, so that kernel buffers do not absorb megabytes
//! before the server's own bound matters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use tessera_tests::interop::{slixmpp_driver, ClientProcess};
use tessera_tests::{rss_kib, Server, ServerOptions, XmppClient};

/// What the slow reader's socket can hold on its side.
const SLOW_READER_RCVBUF: usize = 16 * 1024;
/// The default `c2s.max_send_buffer`.
const DEFAULT_SEND_BUFFER: u64 = 1 << 20;
/// The flooders must not be throttled here (the throttle has its own test); a reader that
/// writes nothing for 2 s is closed; a closing connection has a minute to get its output out
/// (the reader reads again at once, but the tests share the machine).
const UNTHROTTLED: &str = "receive_rate = 1073741824\nreceive_burst = 1073741824\n\
                           send_timeout = 2\nclose_timeout = 60\n";
/// The server's log line when it closes a session that does not read.
const CLOSING: &str = "closing the session";

/// `slix_flood.py`: alice sends `count` messages of `size` bytes to `to`, then `iqs` IQ gets
/// and `presences` directed presences; she reports every error once told "stop". Answers
/// the process once she is online, and her full JID.
fn flood(
    server: &Server,
    to: &str,
    count: usize,
    size: usize,
    iqs: usize,
    presences: usize,
) -> (ClientProcess, String) {
    let mut cmd = slixmpp_driver("slix_flood.py", server.ports.direct_tls);
    cmd.args(["--a", "alice@localhost:alice pw", "--to", to])
        .args(["--count", &count.to_string(), "--size", &size.to_string()])
        .args(["--iqs", &iqs.to_string()])
        .args(["--presences", &presences.to_string()])
        .args(["--timeout", "35"]);
    let mut alice = ClientProcess::spawn("slixmpp flood", cmd, None);
    let online = alice.wait_event("online", server);
    let jid = online["jid"].as_str().expect("jid").to_owned();
    (alice, jid)
}

fn server(modules: &[&str], c2s: &str) -> Server {
    // The floods here come from accounts outside the recipient's roster: give strangers the
    // whole quota, so that what is stored is bounded by the quota these tests are about.
    let top = if modules.contains(&"offline") {
        "offline_max_messages_from_strangers = 500\n"
    } else {
        ""
    };
    let server = Server::start(&ServerOptions {
        c2s: c2s.into(),
        top: top.into(),
        ..ServerOptions::with_modules(modules)
    });
    for user in ["alice", "bob", "carol"] {
        server.add_user(user, &format!("{user} pw"), None);
    }
    server
}

fn login(server: &Server, user: &str, resource: &str) -> (XmppClient, String) {
    XmppClient::login(
        server.ports.direct_tls,
        user,
        &format!("{user} pw"),
        resource,
    )
}

/// Bob with a small receive buffer.
fn slow_bob(server: &Server) -> (XmppClient, String) {
    let c = XmppClient::direct_tls_with_receive_buffer(server.ports.direct_tls, SLOW_READER_RCVBUF);
    XmppClient::login_on(c, "bob", "bob pw", "slow")
}

/// The `id`s of the whole `<message>` elements in a received text, in order (one cut off by
/// a closed connection was not received: a client cannot parse half a stanza).
fn message_ids(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for part in text.split("<message").skip(1) {
        if !part.contains("</message>") {
            continue;
        }
        let head = part.split('>').next().unwrap_or_default();
        for quote in ['\'', '"'] {
            if let Some(rest) = head.split(&format!(" id={quote}")).nth(1) {
                ids.push(rest.split(quote).next().unwrap_or_default().to_owned());
            }
        }
    }
    ids
}

/// Whether ids `m…` come in ascending order (what a session read is in the order sent, with
/// gaps where a flood was shed).
fn ascending(ids: &[String]) -> bool {
    let index = |id: &String| id[1..].parse::<usize>().unwrap_or(usize::MAX);
    ids.windows(2).all(|w| index(&w[0]) < index(&w[1]))
}

fn numbered(prefix: char, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Assert two id lists are equal, showing only how they differ (they hold thousands).
fn same_ids<'a>(
    got: impl IntoIterator<Item = &'a String>,
    want: impl IntoIterator<Item = &'a String>,
    what: &str,
) {
    let got: Vec<&String> = got.into_iter().collect();
    let want: Vec<&String> = want.into_iter().collect();
    if got != want {
        let first = got.iter().zip(&want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} ids, expected {}; first difference at {first:?}: got {:?}, expected {:?}",
            got.len(),
            want.len(),
            first.and_then(|i| got.get(i)),
            first.and_then(|i| want.get(i)),
        );
    }
}

/// The ids as the report's map orders them (as strings).
fn sorted(ids: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = ids.iter().collect();
    v.sort();
    v
}

/// Wait (bounded) until the server holds exactly `sessions` sessions and none is still handing
/// on its stanzas.
fn settle(server: &Server, sessions: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = server.status();
        if status["sessions"] == sessions && status["sessions_ending"] == 0 {
            return status;
        }
        assert!(Instant::now() < deadline, "never settled: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Samples a process's resident memory until stopped; answers the peak, in KiB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        Self { stop, handle }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("sampler")
    }
}

/// Tell alice's flooder to report (after everything the server handed on reached her: the
/// "stop" message queues behind it) and collect the report: id → error condition.
fn report(server: &Server, alice: &mut ClientProcess, alice_jid: &str) -> BTreeMap<String, String> {
    let (mut carol, _) = login(server, "carol", "c");
    carol.send(&format!(
        "<message to='{alice_jid}' type='chat' id='stop'><body>stop</body></message>"
    ));
    let report = alice.wait_event("report", server);
    assert_eq!(report["duplicates"], serde_json::json!([]), "{report}");
    report["bounced"]
        .as_object()
        .expect("bounced")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Read what a slow reader was sent until the server closes it; check the stream error.
fn read_to_close_with(reader: &mut XmppClient, condition: &str) -> String {
    let text = reader.read_to_close();
    assert!(
        text.contains(&format!(
            "<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        )),
        "no <{condition}/> at the end: {}",
        &text[text.len().saturating_sub(600)..]
    );
    assert!(
        text.trim_end().ends_with("</stream:stream>"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    text
}

fn still_serves(server: &Server) {
    let (mut c, _) = login(server, "carol", "after");
    c.send("<iq type='get' id='alive'><ping xmlns='urn:xmpp:ping'/></iq>");
    let answer = c.read_iq("alive");
    assert!(answer.contains("type='result'"), "{answer}");
}

/// The bounced counters of `tessera status`, over every reason.
fn bounced_total(status: &Value) -> u64 {
    let row = &status["delivery"]["bounced"];
    [
        "no-session",
        "send-buffer-full",
        "not-reading",
        "session-ended",
    ]
    .iter()
    .map(|r| row[r].as_u64().unwrap_or(0))
    .sum()
}

#[test]
fn a_reader_that_stops_is_closed_and_each_of_10000_messages_is_read_or_bounced() {
    let server = server(&["sasl2", "ping"], UNTHROTTLED);
    let (mut bob, bob_jid) = slow_bob(&server);
    let baseline = rss_kib(server.pid());
    let sampler = RssSampler::start(server.pid());
    // 2 KB bodies: 20 MB in all, so an outbox without its bound would show in memory.
    let (mut alice, alice_jid) = flood(&server, &bob_jid, 10_000, 2000, 0, 0);
    server.wait_for_log(CLOSING);
    // Bob reads again: what the server wrote before closing him, then the stream error.
    let text = read_to_close_with(&mut bob, "policy-violation");
    assert!(
        text.contains("Too much unread data"),
        "{}",
        &text[text.len().saturating_sub(400)..]
    );
    let read = message_ids(&text);
    alice.wait_event("sent", &server);
    let peak = sampler.peak();
    let status = settle(&server, 1);
    let bounced = report(&server, &mut alice, &alice_jid);
    // Bob read in order (with gaps where alice's flood was shed); everything he did not read
    // came back to alice; each message exactly once.
    assert!(ascending(&read), "bob's messages out of order");
    assert!(read.len() < 10_000, "bob was never cut off");
    let mut all: Vec<&String> = read.iter().chain(bounced.keys()).collect();
    all.sort();
    let everything = numbered('m', 0..10_000);
    same_ids(all, sorted(&everything), "read or bounced, each once");
    // The answer any message to an account without a session gets: nothing tells alice that
    // bob was online a moment ago (RFC 6120 §8.3.3.13).
    let conditions: std::collections::BTreeSet<&String> = bounced.values().collect();
    assert_eq!(
        conditions.into_iter().collect::<Vec<_>>(),
        ["service-unavailable"]
    );
    let counted = |reason: &str| status["delivery"]["bounced"][reason].as_u64().unwrap_or(0);
    assert!(
        counted("send-buffer-full") > 0,
        "alice's flood was never shed: {status}"
    );
    assert!(
        counted("not-reading") > 0,
        "nothing was queued when bob was closed: {status}"
    );
    assert_eq!(
        bounced_total(&status),
        bounced.len() as u64,
        "the server's counters agree with alice: {status}"
    );
    let growth = peak.saturating_sub(baseline);
    println!(
        "slow reader: bob read {}; {} bounced: {} shed while he was connected, {} queued when \
         he was closed, {} after; server RSS {baseline} KiB before, peak {peak} KiB \
         (+{growth} KiB) with a {DEFAULT_SEND_BUFFER}-byte send buffer",
        read.len(),
        bounced.len(),
        counted("send-buffer-full"),
        counted("not-reading") + counted("session-ended"),
        counted("no-session"),
    );
    // The bound plus a constant (the flood's own working set: alice's stream parsed, the
    // bounces on their way), far below the 20 MB sent.
    assert!(
        growth < DEFAULT_SEND_BUFFER / 1024 + 12 * 1024,
        "memory grew by {growth} KiB"
    );
    let finished = alice.finish();
    assert!(finished.success(), "{}", finished.describe());
    still_serves(&server);
}

#[test]
fn with_offline_storage_what_a_closed_reader_missed_is_stored_and_delivered_at_its_next_login() {
    let server = server(
        &["sasl2", "ping", "presence", "roster", "offline"],
        UNTHROTTLED,
    );
    let (mut bob, bob_jid) = slow_bob(&server);
    bob.send("<presence/>");
    let (mut alice, alice_jid) = flood(&server, &bob_jid, 10_000, 1000, 0, 0);
    server.wait_for_log(CLOSING);
    let read = message_ids(&read_to_close_with(&mut bob, "policy-violation"));
    alice.wait_event("sent", &server);
    settle(&server, 1);
    let bounced = report(&server, &mut alice, &alice_jid);
    assert!(ascending(&read), "bob's messages out of order");
    // Offline storage took 500 (its quota); everything else came back "full".
    assert!(
        bounced.values().all(|c| c == "resource-constraint"),
        "{:?}",
        bounced.values().collect::<std::collections::BTreeSet<_>>()
    );
    // Bob's next login gets the stored ones, once each, each with a delay. (In the order they
    // were stored: the shed ones, newer, before those queued when bob was closed, which is
    // why no order is asserted.)
    let (mut bob, _) = login(&server, "bob", "again");
    bob.send("<presence/>");
    let expected_stored = 10_000 - read.len() - bounced.len();
    assert_eq!(expected_stored, 500, "the quota: {} bounced", bounced.len());
    let mut text = String::new();
    while message_ids(&text).len() < expected_stored {
        text += &bob.read_until("</message>");
    }
    let replayed = message_ids(&text);
    assert_eq!(
        text.matches("<delay xmlns='urn:xmpp:delay' from='localhost'")
            .count(),
        replayed.len()
    );
    // Read, stored and bounced: each of the 10 000 exactly once.
    let mut all: Vec<&String> = read.iter().chain(&replayed).chain(bounced.keys()).collect();
    all.sort();
    let everything = numbered('m', 0..10_000);
    same_ids(
        all,
        sorted(&everything),
        "read, stored or bounced, each once",
    );
    println!(
        "slow reader with offline storage: read {}, stored and delivered later {}, bounced {}",
        read.len(),
        replayed.len(),
        bounced.len()
    );
    assert!(alice.finish().success());
    still_serves(&server);
}

#[test]
fn a_password_change_closing_a_session_hands_on_everything_it_had_queued() {
    // Bounds large enough that bob is neither closed nor shed for them: the password change
    // closes him.
    let c2s = "receive_rate = 1073741824\nreceive_burst = 1073741824\n\
               max_send_buffer = 16777216\nmax_send_queue = 100000\nsend_timeout = 600\n\
               close_timeout = 60\n";
    let server = server(&["sasl2", "ping"], c2s);
    let (mut bob, bob_jid) = slow_bob(&server);
    let (mut alice, alice_jid) = flood(&server, &bob_jid, 6_000, 1000, 5, 5);
    alice.wait_event("sent", &server);
    let queued = server.status()["outboxes"]["stanzas"].as_u64().unwrap_or(0);
    assert!(queued > 0, "nothing queued for bob: {}", server.status());
    let out = server.cli(&["user", "passwd", "bob"], "new bob pw\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = read_to_close_with(&mut bob, "reset");
    let read = message_ids(&text);
    let status = settle(&server, 1);
    let bounced = report(&server, &mut alice, &alice_jid);
    same_ids(
        &read,
        &numbered('m', 0..read.len()),
        "bob's messages in order",
    );
    // Messages: read or bounced. IQs: answered with an error unless bob read them (then,
    // not answering, he left them to time out). Presence: never bounced.
    let unread_messages = numbered('m', read.len()..6_000);
    for id in &unread_messages {
        assert_eq!(
            bounced.get(id).map(String::as_str),
            Some("service-unavailable"),
            "{id}"
        );
    }
    let iq_read = (0..5)
        .filter(|i| text.contains(&format!("id='q{i}'")))
        .count();
    let iq_bounced = (0..5)
        .filter(|i| {
            bounced.get(&format!("q{i}")).map(String::as_str) == Some("service-unavailable")
        })
        .count();
    assert_eq!(
        iq_read + iq_bounced,
        5,
        "IQs read {iq_read}, bounced {iq_bounced}"
    );
    assert!(
        bounced.keys().all(|k| !k.starts_with('p')),
        "presence is never bounced"
    );
    let counted = |reason: &str| status["delivery"]["bounced"][reason].as_u64().unwrap_or(0);
    assert_eq!(
        counted("session-ended"),
        (unread_messages.len() + iq_bounced) as u64,
        "{status}"
    );
    println!(
        "password change: {queued} stanzas queued; bob read {} messages and {iq_read} IQs; \
         bounced {} messages and {iq_bounced} IQs; status {}",
        read.len(),
        unread_messages.len(),
        status["delivery"]
    );
    assert!(alice.finish().success());
    still_serves(&server);
}

#[test]
fn a_flooding_client_is_slowed_to_its_receive_rate_and_loses_nothing() {
    // 64 KiB at once, then 64 KiB/s.
    let server = server(
        &["sasl2", "ping"],
        "receive_rate = 65536\nreceive_burst = 65536\n",
    );
    let (mut flooder, _) = login(&server, "alice", "flood");
    let (mut other, _) = login(&server, "carol", "other");
    let ping = |i: usize| format!("<iq type='get' id='f{i}'><ping xmlns='urn:xmpp:ping'/></iq>");
    let per_chunk = 200;
    let chunk_bytes = (0..per_chunk).map(|i| ping(i).len()).sum::<usize>();
    // About 256 KiB beyond the burst: at least 3.5 s at 64 KiB/s.
    let chunks = (64 * 1024 + 256 * 1024) / chunk_bytes + 1;
    let total = chunks * chunk_bytes;
    let start = Instant::now();
    let mut answered = 0;
    for c in 0..chunks {
        let chunk: String = (c * per_chunk..(c + 1) * per_chunk).map(ping).collect();
        flooder.send(&chunk);
        let text = flooder.read_iq(&format!("f{}", (c + 1) * per_chunk - 1));
        answered += text.matches("type='result'").count();
        // Meanwhile another client is answered: its throttle is its own.
        if c % 20 == 0 {
            other.send(&format!(
                "<iq type='get' id='o{c}'><ping xmlns='urn:xmpp:ping'/></iq>"
            ));
            let answer = other.read_iq(&format!("o{c}"));
            assert!(answer.contains("type='result'"), "{answer}");
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(answered, chunks * per_chunk, "every ping answered");
    let floor = Duration::from_secs_f64((total - 65536) as f64 / 65536.0 * 0.9);
    println!("throttle: {total} bytes of pings in {elapsed:?} (floor {floor:?})");
    assert!(
        elapsed >= floor,
        "{total} bytes went through in {elapsed:?}: not throttled to 64 KiB/s"
    );
}

#[test]
fn requests_beyond_the_send_buffer_wait_for_their_answers_to_be_written_and_none_is_lost() {
    // 2,000 pings in one write: their answers are 10 times the 16 KiB buffer, so the server
    // handles them in turns, writing answers before reading on.
    let server = server(
        &["sasl2", "ping"],
        "max_send_buffer = 16384\nmax_stanza_size = 8192\n",
    );
    let (mut client, _) = login(&server, "alice", "many");
    let pings: String = (0..2000)
        .map(|i| format!("<iq type='get' id='r{i}'><ping xmlns='urn:xmpp:ping'/></iq>"))
        .collect();
    client.send(&pings);
    let text = client.read_iq("r1999");
    let answered: Vec<usize> = text
        .split("id='r")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next()?.parse().ok())
        .collect();
    assert_eq!(
        answered,
        (0..2000).collect::<Vec<_>>(),
        "every answer, in order"
    );
    assert_eq!(text.matches("type='result'").count(), 2000);
    still_serves(&server);
}

#[test]
fn a_shutdown_stores_what_a_session_had_queued_and_it_arrives_after_the_restart() {
    // Room for all of it in offline storage; bounds large enough that only the shutdown
    // closes bob.
    let server = Server::start(&ServerOptions {
        c2s: "receive_rate = 1073741824\nreceive_burst = 1073741824\n\
              max_send_buffer = 16777216\nmax_send_queue = 100000\nsend_timeout = 600\n\
              close_timeout = 60\n"
            .into(),
        top: "offline_max_messages = 100000\noffline_max_messages_from_strangers = 100000\n\
              offline_max_bytes = 1073741824\n"
            .into(),
        ..ServerOptions::with_modules(&["sasl2", "ping", "presence", "roster", "offline"])
    });
    for user in ["alice", "bob"] {
        server.add_user(user, &format!("{user} pw"), None);
    }
    let mut server = server;
    let (mut bob, bob_jid) = slow_bob(&server);
    bob.send("<presence/>");
    let (mut alice, _) = flood(&server, &bob_jid, 6_000, 1000, 0, 0);
    alice.wait_event("sent", &server);
    let queued = server.status()["outboxes"]["stanzas"].as_u64().unwrap_or(0);
    assert!(queued > 0, "nothing queued for bob: {}", server.status());
    // SIGTERM: bob's session ends with <system-shutdown/>; what it never wrote is stored
    // before the modules stop. Bob reads again meanwhile: what was written, then the error.
    let reader = std::thread::spawn(move || bob.read_to_close());
    let status = server.stop();
    assert!(status.success(), "{status:?}");
    let text = reader.join().expect("bob's reader");
    assert!(
        text.contains("<system-shutdown"),
        "{}",
        &text[text.len().saturating_sub(300)..]
    );
    let read = message_ids(&text);
    assert!(ascending(&read), "bob's messages out of order");
    server.restart();
    let (mut bob, _) = login(&server, "bob", "after");
    bob.send("<presence/>");
    let expected = 6_000 - read.len();
    let mut text = String::new();
    while message_ids(&text).len() < expected {
        text += &bob.read_until("</message>");
    }
    let replayed = message_ids(&text);
    let mut all: Vec<&String> = read.iter().chain(&replayed).collect();
    all.sort();
    let everything = numbered('m', 0..6_000);
    same_ids(all, sorted(&everything), "read before or stored, each once");
    println!(
        "shutdown: {queued} stanzas queued for bob; he read {} before, {} stored and \
         delivered after the restart",
        read.len(),
        replayed.len()
    );
}
