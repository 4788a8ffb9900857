//! Crash safety (issue #12): the server is killed with SIGKILL in a loop while three clients
//! change state through it at once, and after every restart on the same data directory each
//! change the server acknowledged is there and nothing is half-applied.
//!
//! The three workers, each on its own account, record what the server acknowledged, in order,
//! and what was in flight when the connection died:
//! * `pw`: XEP-0077 password changes from a logged-in session (ack: the iq result);
//! * `tok`: FAST logins (HT-SHA-256-NONE) with the last token, each asking for a new one (ack:
//!   the `<token/>` in `<success/>`);
//! * `rst`: password resets: a `PASSWORD-RESET` request over SASL2, the link read from the mail
//!   in `data_dir/outbox`, the page fetched for its CSRF value, the new password posted (ack: the
//!   page's "Password changed").
//!
//! After a random 200–1500 ms of load the server is killed, the workers end, the server starts
//! again and the test checks: `pw`'s last acknowledged password (or the one in flight) works
//! with SCRAM-SHA-1, SCRAM-SHA-256 and PLAIN alike, and no other does; `tok`'s last token logs in
//! and the one before its predecessor does not; `rst`'s last acknowledged password (or the one in
//! flight) works and no other does, every used link answers 410, and the link in flight is used
//! if and only if its password took effect.
//!
//! `TESSERA_CRASH_ITERATIONS` (default 5) sets the number of kills, `TESSERA_CRASH_SEED` the
//! random delays. The summary line (`crash summary: …`) shows with `-- --nocapture`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tessera_sasl::ht::build_initial_response;
use tessera_tests::reset::{mail_body, reset_link, Profile};
use tessera_tests::sasl::{
    password_login_works as login_works, PasswordMechanism as Mech, Sasl2Extras,
};
use tessera_tests::{https, outbox_mails, Server, ServerOptions, XmppClient};

const PW: &str = "pw";
const TOK: &str = "tok";
const RST: &str = "rst";
const RST_EMAIL: &str = "rst@example.net";
const PUBLIC: &str = "https://chat.example.test";
const UA: &str = "5f1b8c2e-7d4a-4e9b-8c3f-2a6d9e0b1c4d";
const FAST_NS: &str = "urn:xmpp:fast:0";
/// Most operations one worker runs between two kills.
const MAX_OPS: usize = 10_000;
/// A worker stops by itself after this long even if the kill never comes.
const WORKER_LIMIT: Duration = Duration::from_secs(30);
/// Kill delay range, in milliseconds.
const KILL_AFTER_MS: (u64, u64) = (200, 1500);

/// Set just before the kill: workers start nothing new, and a failure from then on is the kill.
static KILLING: AtomicBool = AtomicBool::new(false);

fn killing() -> bool {
    KILLING.load(Ordering::SeqCst)
}

// ---------------------------------------------------------------------------------------------
// What the workers record

/// One worker's record of one run between two kills.
#[derive(Debug)]
struct Record<T> {
    /// What the server acknowledged, in order.
    acked: Vec<T>,
    /// The change that was sent and not answered when the connection died.
    in_flight: Option<T>,
    /// A failure before the kill (a real error: the test fails on it).
    error: Option<String>,
}

impl<T> Record<T> {
    /// A wrong answer: an error, unless it is the kill (a cut-off HTTP reply, say).
    fn fail(&mut self, what: String) {
        if !killing() {
            self.error = Some(what);
        }
    }

    /// Run `op`, a step whose failure (a panic in the harness client: closed connection,
    /// refused connect) is the kill when [`KILLING`] is set, and an error otherwise. `None`
    /// when the worker must stop.
    fn step<R>(&mut self, what: &str, op: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(op)) {
            Ok(r) => Some(r),
            Err(panic) => {
                if !killing() {
                    let text = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    self.error = Some(format!("{what} failed before the kill: {text}"));
                }
                None
            }
        }
    }
}

/// A worker's thread; panics in it after the kill are expected and not printed.
fn worker<T: Send + 'static>(
    name: &str,
    run: impl FnOnce(&mut Record<T>) + Send + 'static,
) -> JoinHandle<Record<T>> {
    std::thread::Builder::new()
        .name(format!("crash-worker-{name}"))
        .spawn(move || {
            let mut record = Record {
                acked: Vec::new(),
                in_flight: None,
                error: None,
            };
            run(&mut record);
            record
        })
        .expect("spawn worker")
}

fn quiet_worker_panics_after_the_kill() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("crash-worker-"));
        if !(worker && killing()) {
            default(info);
        }
    }));
}

/// Whether a worker should start another step.
fn go_on(started: Instant, ops: usize) -> bool {
    !killing() && ops < MAX_OPS && started.elapsed() < WORKER_LIMIT
}

// ---------------------------------------------------------------------------------------------
// Clients

fn fresh(addr: SocketAddr) -> XmppClient {
    let mut c = XmppClient::direct_tls(addr);
    c.open();
    c
}

const MECHS: [Mech; 3] = [Mech::ScramSha1, Mech::ScramSha256, Mech::Plain];

/// The `token` attribute of FAST's `<token/>` in a `<success/>`.
fn token_of(xml: &str) -> Option<String> {
    let start = xml.find(&format!("<token xmlns='{FAST_NS}'"))?;
    let rest = xml.get(start..)?;
    let at = rest.find("token='")? + 7;
    let end = rest.get(at..)?.find('\'')?;
    rest.get(at..at + end).map(str::to_owned)
}

fn request_token() -> String {
    format!("<request-token xmlns='{FAST_NS}' mechanism='HT-SHA-256-NONE'/>")
}

/// `tok`'s first token, from a password login.
fn first_token(addr: SocketAddr) -> String {
    let extras = Sasl2Extras {
        user_agent_id: Some(UA.into()),
        bind_tag: None,
        raw: request_token(),
    };
    let out = fresh(addr).sasl2_plain(TOK, "tok password", &extras);
    assert!(out.success, "{}", out.xml);
    token_of(&out.xml).unwrap_or_else(|| panic!("no token in {}", out.xml))
}

/// A FAST login with `token` asking for a new one: `Ok(new token)` or `Err(the answer)`.
fn fast_rotate(addr: SocketAddr, token: &str) -> Result<String, String> {
    let mut c = fresh(addr);
    let ir = build_initial_response(TOK, token.as_bytes(), b"");
    let extras = Sasl2Extras {
        user_agent_id: Some(UA.into()),
        bind_tag: None,
        raw: format!("<fast xmlns='{FAST_NS}'/>{}", request_token()),
    };
    c.sasl2_start("HT-SHA-256-NONE", Some(&ir), &extras);
    let xml = c.read_until_any(&["</success>", "</failure>"]);
    match (xml.contains("<success"), token_of(&xml)) {
        (true, Some(new)) => Ok(new),
        _ => Err(xml),
    }
}

fn get(addr: SocketAddr, path: &str) -> tessera_tests::HttpReply {
    https(addr, "GET", path, &[], b"")
}

fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + 19;
    html.get(at..)?.split('"').next().map(str::to_owned)
}

/// `rst`'s new password `password` through the page of `path`: the POST's reply.
fn post_password(addr: SocketAddr, path: &str, csrf: &str, password: &str) -> (u16, String) {
    let pw = password.replace(' ', "+");
    let form = format!("csrf={csrf}&password={pw}&confirm={pw}");
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    let reply = https(addr, "POST", path, &headers, form.as_bytes());
    (reply.status, reply.body)
}

// ---------------------------------------------------------------------------------------------
// The workers

/// Where one run's workers connect.
#[derive(Debug, Clone, Copy)]
struct Addrs {
    xmpp: SocketAddr,
    http: SocketAddr,
}

/// Password changes of `pw` from one session, starting at `current`.
fn pw_worker(addrs: Addrs, current: String, round: usize) -> JoinHandle<Record<String>> {
    worker("pw", move |rec| {
        let started = Instant::now();
        let Some((mut session, _)) = rec.step("pw login", || {
            XmppClient::login(addrs.xmpp, PW, &current, "crash")
        }) else {
            return;
        };
        let mut n = 0;
        while go_on(started, n) {
            let next = format!("pw {round}.{n}");
            let iq = format!("<iq type='set' id='pw{n}'><query xmlns='jabber:iq:register'><username>{PW}</username><password>{next}</password></query></iq>");
            rec.in_flight = Some(next.clone());
            let Some(reply) = rec.step("password change", || {
                session.send(&iq);
                session.read_until_any(&["</iq>", "/>"])
            }) else {
                return;
            };
            if !reply.contains("type='result'") {
                rec.fail(format!("password change refused: {reply}"));
                return;
            }
            rec.in_flight = None;
            rec.acked.push(next);
            n += 1;
        }
    })
}

/// FAST logins of `tok`, each with the last token and asking for the next.
fn tok_worker(addrs: Addrs, token: String) -> JoinHandle<Record<String>> {
    worker("tok", move |rec| {
        let started = Instant::now();
        let mut token = token;
        let mut n = 0;
        while go_on(started, n) {
            rec.in_flight = Some(token.clone());
            let Some(answer) = rec.step("FAST login", || fast_rotate(addrs.xmpp, &token)) else {
                return;
            };
            match answer {
                Ok(new) => {
                    rec.in_flight = None;
                    rec.acked.push(new.clone());
                    token = new;
                }
                Err(xml) => {
                    rec.fail(format!("FAST login refused: {xml}"));
                    return;
                }
            }
            n += 1;
        }
    })
}

/// A confirmed (or attempted) reset: the link's path and the password posted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reset {
    path: String,
    password: String,
}

/// Password resets of `rst`: request, mail, page, confirmation.
fn rst_worker(addrs: Addrs, outbox: PathBuf, round: usize) -> JoinHandle<Record<Reset>> {
    worker("rst", move |rec| {
        let started = Instant::now();
        let mut seen: HashSet<PathBuf> = outbox_mails(&outbox).into_iter().collect();
        let mut n = 0;
        while go_on(started, n) {
            let Some(answer) = rec.step("reset request", || {
                fresh(addrs.xmpp).password_reset(Profile::Sasl2, RST, RST_EMAIL)
            }) else {
                return;
            };
            if !answer.contains("<reset-requested") {
                rec.fail(format!("reset request refused: {answer}"));
                return;
            }
            // The mail lands in the outbox (written after the answer, maybe in pieces).
            let waited = Instant::now();
            let path = loop {
                if killing() {
                    return;
                }
                let link = outbox_mails(&outbox)
                    .into_iter()
                    .filter(|m| !seen.contains(m))
                    .find_map(|m| {
                        let body = mail_body(&std::fs::read_to_string(&m).ok()?);
                        let link = reset_link(&body, PUBLIC)?;
                        Some((m, link))
                    });
                if let Some((mail, link)) = link {
                    seen.insert(mail);
                    break link.strip_prefix(PUBLIC).unwrap_or_default().to_owned();
                }
                if waited.elapsed() > tessera_tests::TIMEOUT {
                    rec.fail("no reset mail in the outbox".into());
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            if killing() {
                return;
            }
            let Some(form) = rec.step("reset page", || get(addrs.http, &path)) else {
                return;
            };
            let Some(csrf) = csrf_of(&form.body).filter(|_| form.status == 200) else {
                rec.fail(format!("reset page {}: {}", form.status, form.body));
                return;
            };
            if killing() {
                return;
            }
            let reset = Reset {
                path: path.clone(),
                password: format!("rst {round}.{n} long enough"),
            };
            rec.in_flight = Some(reset.clone());
            let Some((status, body)) = rec.step("reset confirmation", || {
                post_password(addrs.http, &path, &csrf, &reset.password)
            }) else {
                return;
            };
            if status != 200 || !body.contains("Password changed") {
                rec.fail(format!("reset confirmation answered {status}: {body}"));
                return;
            }
            rec.in_flight = None;
            rec.acked.push(reset);
            n += 1;
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The checks after a restart

/// What the accounts hold, as the test knows it, carried from one kill to the next.
#[derive(Debug)]
struct Known {
    /// `pw`'s password and the ones it had before (newest last).
    pw: Vec<String>,
    /// `tok`'s token chain (newest last): the last is valid.
    tok: Vec<String>,
    /// `rst`'s password and the ones it had before (newest last).
    rst: Vec<String>,
    /// Every link used to set a password.
    used_links: Vec<String>,
}

/// Counts for the summary.
#[derive(Debug, Default)]
struct Tally {
    acked_pw: usize,
    acked_tok: usize,
    acked_rst: usize,
    pw_in_flight: [usize; 2],
    tok_in_flight: usize,
    rst_in_flight: [usize; 2],
    idle: [usize; 3],
    /// Half-applied states found (reported together at the end).
    half_applied: Vec<String>,
}

/// The older passwords that must fail: at most the two before `current` in `history`.
fn older<'a>(history: &'a [String], current: &str) -> Vec<&'a String> {
    history
        .iter()
        .rev()
        .filter(|p| *p != current)
        .take(2)
        .collect()
}

#[track_caller]
fn check_pw(server: &Server, known: &mut Known, rec: Record<String>, tally: &mut Tally) {
    let addr = server.ports.direct_tls;
    tally.acked_pw += rec.acked.len();
    known.pw.extend(rec.acked);
    let last = known.pw.last().cloned().expect("a password");
    let current = match rec.in_flight {
        Some(next) => {
            // Either all three verifiers are the new password's or none is.
            let works: Vec<bool> = MECHS
                .iter()
                .map(|m| login_works(addr, PW, &next, *m))
                .collect();
            assert!(
                works.iter().all(|w| *w) || works.iter().all(|w| !*w),
                "pw: the password in flight half-applied (SCRAM-SHA-1, SCRAM-SHA-256, PLAIN): {works:?}"
            );
            tally.pw_in_flight[usize::from(works[0])] += 1;
            if works[0] {
                known.pw.push(next.clone());
                next
            } else {
                last
            }
        }
        None => {
            tally.idle[0] += 1;
            last
        }
    };
    assert_current_password(server, PW, &current);
    for old in older(&known.pw, &current) {
        for m in MECHS {
            assert!(
                !login_works(addr, PW, old, m),
                "pw: {m:?} still accepts the superseded password {old:?}"
            );
        }
    }
}

/// The account's last acknowledged password works with every mechanism (all verifiers were
/// written together).
#[track_caller]
fn assert_current_password(server: &Server, user: &str, current: &str) {
    for m in MECHS {
        assert!(
            login_works(server.ports.direct_tls, user, current, m),
            "{user}: {m:?} refuses the last acknowledged password {current:?}; log:\n{}",
            server.logs()
        );
    }
}

#[track_caller]
fn check_tok(server: &Server, known: &mut Known, rec: Record<String>, tally: &mut Tally) {
    let addr = server.ports.direct_tls;
    tally.acked_tok += rec.acked.len();
    known.tok.extend(rec.acked);
    if rec.in_flight.is_some() {
        tally.tok_in_flight += 1;
    } else {
        tally.idle[1] += 1;
    }
    // After token N was acknowledged, N-1 is `current` and N `new`; the login in flight with N
    // at most moved N to `current`. N-2 was dropped when N-1 was first used.
    if let Some(stale) = known.tok.iter().rev().nth(2) {
        assert!(
            fast_rotate(addr, stale).is_err(),
            "tok: a token two rotations old still logs in"
        );
    }
    let last = known.tok.last().cloned().expect("a token");
    match fast_rotate(addr, &last) {
        Ok(new) => known.tok.push(new),
        Err(xml) => panic!(
            "tok: the last acknowledged token is refused: {xml}; log:\n{}",
            server.logs()
        ),
    }
}

#[track_caller]
fn check_rst(
    server: &Server,
    known: &mut Known,
    rec: Record<Reset>,
    tally: &mut Tally,
    round: usize,
) {
    let addr = server.ports.direct_tls;
    tally.acked_rst += rec.acked.len();
    for reset in rec.acked {
        known.rst.push(reset.password);
        known.used_links.push(reset.path);
    }
    let last = known.rst.last().cloned().expect("a password");
    let current = match rec.in_flight {
        Some(reset) => {
            let link = get(server.ports.http, &reset.path).status;
            let works = login_works(addr, RST, &reset.password, Mech::ScramSha256);
            // Used if and only if the password took effect.
            if (link == 410) != works {
                tally.half_applied.push(format!(
                    "round {round}: the reset confirmation in flight was half-applied: its link answers {link} and its password {}",
                    if works { "works" } else { "does not work" }
                ));
            }
            tally.rst_in_flight[usize::from(works)] += 1;
            if works {
                known.rst.push(reset.password.clone());
                known.used_links.push(reset.path);
                reset.password
            } else {
                last
            }
        }
        None => {
            tally.idle[2] += 1;
            last
        }
    };
    assert_current_password(server, RST, &current);
    for old in older(&known.rst, &current) {
        assert!(
            !login_works(addr, RST, old, Mech::Plain),
            "rst: the superseded password {old:?} still works"
        );
    }
}

#[track_caller]
fn check_links(server: &Server, links: &[String]) {
    for path in links {
        let status = get(server.ports.http, path).status;
        assert_eq!(status, 410, "rst: the used link {path} answers {status}");
    }
}

// ---------------------------------------------------------------------------------------------

/// xorshift64*: enough to spread the kills.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[test]
fn acknowledged_changes_survive_kill_9_and_nothing_is_half_applied() {
    let iterations = env_number("TESSERA_CRASH_ITERATIONS", 5);
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let seed = env_number("TESSERA_CRASH_SEED", clock).max(1);
    let mut rng = Rng(seed);
    quiet_worker_panics_after_the_kill();

    // Limits high enough for a test that fails on purpose and resets every few milliseconds.
    let top = [
        "sasl2_max_failures_per_user = 1000000",
        "sasl2_account_backoff_after = 1000000",
        "sasl2_max_failures_per_ip = 1000000",
        "password_reset_max_requests_per_user = 1000000",
        "password_reset_max_requests_per_ip = 1000000",
        "password_reset_max_page_posts_per_ip = 1000000",
    ]
    .join("\n");
    let mut server = Server::start(&ServerOptions {
        top,
        http: format!("public_url = \"{PUBLIC}\""),
        ..ServerOptions::with_modules(&["sasl2", "sasl2_fast", "password_reset", "register"])
    });
    server.add_user(PW, "pw password", None);
    server.add_user(TOK, "tok password", None);
    server.add_user(RST, "rst password", Some(RST_EMAIL));
    let outbox = server.dir.path().join("data/outbox");
    let mut known = Known {
        pw: vec!["pw password".into()],
        tok: vec![first_token(server.ports.direct_tls)],
        rst: vec!["rst password".into()],
        used_links: Vec::new(),
    };
    let mut tally = Tally::default();
    let started = Instant::now();

    for round in 0..iterations as usize {
        KILLING.store(false, Ordering::SeqCst);
        let addrs = Addrs {
            xmpp: server.ports.direct_tls,
            http: server.ports.http,
        };
        let current_pw = known.pw.last().cloned().unwrap_or_default();
        let current_tok = known.tok.last().cloned().unwrap_or_default();
        let workers = (
            pw_worker(addrs, current_pw, round),
            tok_worker(addrs, current_tok),
            rst_worker(addrs, outbox.clone(), round),
        );
        let delay = rng.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1);
        std::thread::sleep(Duration::from_millis(delay));
        KILLING.store(true, Ordering::SeqCst);
        server.kill9();
        let pw = workers.0.join().expect("pw worker");
        let tok = workers.1.join().expect("tok worker");
        let rst = workers.2.join().expect("rst worker");
        let errors = [&pw.error, &tok.error, &rst.error];
        if let Some(error) = errors.into_iter().flatten().next() {
            panic!("round {round}: {error}; server log:\n{}", server.logs());
        }
        let acked = [pw.acked.len(), tok.acked.len(), rst.acked.len()];
        let restarting = Instant::now();
        server.restart();
        let restarted = restarting.elapsed();
        let checking = Instant::now();
        let used_before = known.used_links.len();
        check_pw(&server, &mut known, pw, &mut tally);
        check_tok(&server, &mut known, tok, &mut tally);
        check_rst(&server, &mut known, rst, &mut tally, round);
        check_links(&server, &known.used_links[used_before..]);
        println!(
            "round {round}: killed after {delay} ms, acknowledged (pw, tok, rst) {acked:?}, restart {} ms, checks {} ms",
            restarted.as_millis(),
            checking.elapsed().as_millis()
        );
    }
    check_links(&server, &known.used_links);

    println!(
        "crash summary: {iterations} kills (seed {seed}) in {:.1} s; acknowledged: {} password changes, {} token issues, {} reset confirmations; in flight when killed: password change {} applied / {} not, token login {}, reset confirmation {} applied / {} not; idle when killed: pw {}, tok {}, rst {}; 0 acknowledged changes lost, {} half-applied",
        started.elapsed().as_secs_f64(),
        tally.acked_pw,
        tally.acked_tok,
        tally.acked_rst,
        tally.pw_in_flight[1],
        tally.pw_in_flight[0],
        tally.tok_in_flight,
        tally.rst_in_flight[1],
        tally.rst_in_flight[0],
        tally.idle[0],
        tally.idle[1],
        tally.idle[2],
        tally.half_applied.len(),
    );
    assert!(
        tally.half_applied.is_empty(),
        "half-applied changes:\n{}",
        tally.half_applied.join("\n")
    );
}
