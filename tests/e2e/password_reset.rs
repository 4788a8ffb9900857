//! mod_password_reset end to end, with real parts: the real server and plugin files, a real SMTP
//! server on loopback (aiosmtpd) that receives the reset mail, and Debian's headless chromium
//! (driven by playwright-core) that opens the link, fills in the form and submits it, leaving
//! screenshots in `target/test-artifacts/`. The SASL side is run by the reference client
//! (`tessera_tests::reset`), in both profiles. The session that the reset must end is an xmpp.js
//! (@xmpp/client 0.14.0) one, run by `tests/interop/fast.mjs --stay` over direct TLS: it logs in
//! with the old password, obtains a FAST token (HT-SHA-256-NONE) kept in its state file, and stays
//! online until the server closes its stream; afterwards the same script, given only that state
//! file, shows the token refused.
//!
//! Needs `tests/web/install.sh` (chromium, playwright-core, aiosmtpd) and the interop clients of
//! `tests/run.sh --install-only` (@xmpp/client).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use tessera_sasl::ht::build_initial_response;
use tessera_tests::reset::{
    artifacts_dir, browse_reset_page, mail_body, mail_header, reset_link, submit_form, Profile,
    SmtpSink, RESET_NS,
};
use tessera_tests::sasl::{inner, Sasl2Extras};
use tessera_tests::{https, workspace, HttpReply, Server, ServerOptions, XmppClient};

const PUBLIC: &str = "https://chat.example.test";
const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const OLD: &str = "old password 1";
const NEW: &str = "brand new passphrase";
const EMAIL: &str = "alice@Example.net";
const FINAL_TEXT: &str = "If the account exists and this is the email address stored for it, \
                          a link to choose a new password has been sent to that address.";
const PAIR: &str = "password=long+enough+1&confirm=long+enough+1";

/// A server with alice (password [`OLD`], address [`EMAIL`]).
fn start(modules: &[&str], top: &str, smtp: Option<&SmtpSink>) -> Server {
    let smtp = smtp.map(SmtpSink::smtp_table).unwrap_or_default();
    let s = Server::start(&ServerOptions {
        top: top.into(),
        http: format!("public_url = \"{PUBLIC}\""),
        tables: smtp,
        ..ServerOptions::with_modules(modules)
    });
    s.add_user("alice", OLD, Some(EMAIL));
    s
}

fn fresh(server: &Server) -> XmppClient {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    c
}

fn login_works(server: &Server, password: &str) -> bool {
    let extras = Sasl2Extras::default();
    fresh(server)
        .sasl2_plain("alice", password, &extras)
        .success
}

#[track_caller]
fn has(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not in:\n{text}");
}

#[track_caller]
fn page(reply: &HttpReply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    has(&reply.body, needle);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

fn text_of(failure: &str) -> String {
    inner(failure, "text").unwrap_or_default().to_owned()
}

/// The reset link of a mail and its path (to open on the test server's real port).
fn link_of(mail: &str) -> (String, String) {
    let link = reset_link(&mail_body(mail), PUBLIC).expect("a reset link in the mail");
    let path = link.strip_prefix(PUBLIC).unwrap_or_default().to_owned();
    (link, path)
}

fn get(server: &Server, path: &str) -> HttpReply {
    https(server.ports.http, "GET", path, &[], b"")
}

fn post(server: &Server, path: &str, form: &str) -> HttpReply {
    let headers = [("Content-Type", "application/x-www-form-urlencoded")];
    https(server.ports.http, "POST", path, &headers, form.as_bytes())
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..].split('"').next().unwrap_or_default().to_owned()
}

/// A FAST login (HT-SHA-256-NONE, `<fast/>`) by the reference client with `token`, bound to the
/// user-agent id `ua`; returns the SASL2 `<success>` or `<failure>`.
fn fast_login(server: &Server, token: &str, ua: &str) -> String {
    let mut c = fresh(server);
    let ir = build_initial_response("alice", token.as_bytes(), b"");
    let extras = Sasl2Extras {
        user_agent_id: Some(ua.into()),
        bind_tag: None,
        raw: "<fast xmlns='urn:xmpp:fast:0'/>".into(),
    };
    c.sasl2_start("HT-SHA-256-NONE", Some(&ir), &extras);
    c.read_until_any(&["</success>", "</failure>"])
}

// ---------------------------------------------------------------------------------------------
// xmpp.js (tests/interop/fast.mjs; see its header for its options and its JSON lines)

/// Upper bound for one xmpp.js run, and for the background session's whole life.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// What the driver is told to bound itself to (less than [`CLIENT_TIMEOUT`]).
const DRIVER_TIMEOUT_SECS: &str = "110";

/// `node tests/interop/fast.mjs --service xmpps://DIRECT_TLS --domain localhost --user alice
/// --state STATE [--password PW] [extra…]`, stdin closed, stdout and stderr piped.
fn xmppjs(server: &Server, state: &Path, password: Option<&str>, extra: &[&str]) -> Command {
    let dir = workspace().join("tests").join("interop");
    assert!(
        dir.join("node_modules/@xmpp/client").is_dir(),
        "@xmpp/client is not installed in {}: run `./tests/run.sh --install-only`",
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("fast.mjs"))
        .args(["--service", &format!("xmpps://{}", server.ports.direct_tls)])
        .args(["--domain", "localhost", "--user", "alice"])
        .arg("--state")
        .arg(state)
        .args(["--timeout", DRIVER_TIMEOUT_SECS])
        .args(extra)
        .current_dir(&dir)
        // The server's certificate is self-signed; NODE_NO_WARNINGS hides Node's note about it.
        .env("NODE_TLS_REJECT_UNAUTHORIZED", "0")
        .env("NODE_NO_WARNINGS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        cmd.args(["--password", password]);
    }
    cmd
}

/// A running (or finished) fast.mjs: its stdout lines arrive on a channel as it prints them.
struct Xmppjs {
    name: &'static str,
    child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<JoinHandle<String>>,
    started: Instant,
}

impl Xmppjs {
    fn spawn(name: &'static str, mut cmd: Command) -> Self {
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot start {name} (node): {e}; run `./tests/run.sh --install-only`")
        });
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = err.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        });
        Xmppjs {
            name,
            child,
            lines,
            stdout: Vec::new(),
            stderr: Some(stderr),
            started: Instant::now(),
        }
    }

    fn deadline(&self) -> Instant {
        self.started + CLIENT_TIMEOUT
    }

    /// The JSON lines `{"event": EVENT, …}` printed so far.
    fn events(&self, event: &str) -> Vec<Value> {
        self.stdout
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// Read stdout until every one of `events` has been printed (panics at the deadline or if
    /// stdout ends first).
    fn wait_for(&mut self, events: &[&str]) {
        while events.iter().any(|e| self.events(e).is_empty()) {
            let left = self.deadline().saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.stdout.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    let context = self.describe(None);
                    panic!("{} did not print {events:?} in time\n{context}", self.name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    let context = self.describe(status);
                    panic!("{} ended before printing {events:?}\n{context}", self.name)
                }
            }
        }
    }

    /// Wait for the process to end (killed at the deadline: `None`), with all its output.
    fn finish(&mut self) -> Option<ExitStatus> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < self.deadline() => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        // The reader ends with the pipe: the process and its pipes are gone now.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stdout.push(line);
        }
        status
    }

    /// stdout so far and (once the process has ended) stderr, the raw XML trace.
    fn describe(&mut self, status: Option<ExitStatus>) -> String {
        let stderr = match &self.stderr {
            Some(h) if h.is_finished() => self
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default(),
            _ => "(still running)".to_owned(),
        };
        format!(
            "{name}: exit status {status:?}\n--- {name} stdout ---\n{}\n--- {name} stderr ---\n{stderr}",
            self.stdout.join("\n"),
            name = self.name
        )
    }
}

impl Drop for Xmppjs {
    fn drop(&mut self) {
        // A failed assertion must not leave the client running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The xmpp.js state file: (user-agent id, token, token mechanism).
fn xmppjs_state(path: &Path) -> (String, Option<String>, Option<String>) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()));
    let field = |v: &Value| v.as_str().map(str::to_owned);
    (
        field(&v["user_agent_id"]).unwrap_or_default(),
        field(&v["token"]["token"]),
        field(&v["token"]["mechanism"]),
    )
}

#[test]
fn a_mailed_link_opened_in_a_browser_replaces_the_password_and_ends_every_session() {
    let smtp = SmtpSink::start();
    let server = start(&["sasl2", "sasl2_fast", "password_reset"], "", Some(&smtp));
    // An xmpp.js session: password login asking for a FAST token, then online until the server
    // ends it.
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("xmppjs-state.json");
    let mut session = Xmppjs::spawn(
        "xmpp.js (session)",
        xmppjs(&server, &state, Some(OLD), &["--stay"]),
    );
    session.wait_for(&["online", "token-saved"]);
    let (ua, token, mechanism) = xmppjs_state(&state);
    let token = token.expect("xmpp.js stored its FAST token");
    assert_eq!(mechanism.as_deref(), Some("HT-SHA-256-NONE"));
    assert_eq!(session.events("token-saved")[0]["token"], token.as_str());
    // The token it holds is good before the reset (checked by the reference client, which binds
    // no resource, so the xmpp.js session is left alone).
    has(&fast_login(&server, &token, &ua), "<success");

    let features = XmppClient::direct_tls(server.ports.direct_tls).open();
    let sasl2 = inner(&features, "authentication").expect("SASL2");
    has(
        sasl2,
        "<mechanism>PLAIN</mechanism><mechanism>PASSWORD-RESET</mechanism>",
    );
    // And in RFC 6120 SASL by default, so that the two lists are equal (XEP-0474).
    let legacy = inner(&features, "mechanisms").unwrap_or_default();
    has(
        legacy,
        "<mechanism>PLAIN</mechanism><mechanism>PASSWORD-RESET</mechanism>",
    );

    let failure = fresh(&server).password_reset(Profile::Sasl2, "alice", "alice@EXAMPLE.NET");
    let expected = format!("<failure xmlns='urn:xmpp:sasl:2'><aborted xmlns='{SASL_NS}'/><text xml:lang='en'>{FINAL_TEXT}</text><reset-requested xmlns='{RESET_NS}'/></failure>");
    assert_eq!(failure, expected);

    let mail = smtp.wait_for(1).remove(0);
    assert_eq!(mail_header(&mail, "To").as_deref(), Some(EMAIL));
    let subject = mail_header(&mail, "Subject");
    assert_eq!(
        subject.as_deref(),
        Some("Password reset for alice@localhost")
    );
    let body = mail_body(&mail);
    for needle in [
        "    alice@localhost\n",
        "from the IP address 127.0.0.1 on ",
        " UTC (in 60 minutes)",
        "ever asks for your current",
    ] {
        has(&body, needle);
    }
    let (link, path) = link_of(&mail);
    assert_eq!(path.len(), "/password-reset/".len() + 43, "{link}");

    let form = get(&server, &path);
    page(&form, 200, "<h1>Choose a new password</h1>");
    for (name, value) in [
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(form.header(name), Some(value), "{name}");
    }
    let csp = form.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    has(csp, "form-action 'self'; frame-ancestors 'none'");
    assert!(!form.body.contains("<script"));
    let stale_csrf = csrf_of(&form.body);

    let local = format!("https://127.0.0.1:{}{path}", server.ports.http.port());
    let result = browse_reset_page(&local, NEW, "password-reset");
    assert_eq!(result["formStatus"], 200, "{result}");
    assert_eq!(result["formTitle"], "Choose a new password", "{result}");
    assert_eq!(
        result["background"], "rgb(246, 247, 249)",
        "style allowed by the CSP: {result}"
    );
    assert_eq!(result["resultStatus"], 200, "{result}");
    assert_eq!(result["resultHeading"], "Password changed", "{result}");
    assert_eq!(result["consoleErrors"], serde_json::json!([]), "{result}");
    assert!(artifacts_dir().join("password-reset-done.png").is_file());

    // The xmpp.js session was closed with <reset/>, and ended cleanly on its side.
    let status = session.finish();
    let context = session.describe(status);
    assert!(status.is_some_and(|s| s.success()), "{context}");
    assert_eq!(
        session.events("stream-error"),
        [serde_json::json!({"event": "stream-error", "condition": "reset"})],
        "{context}"
    );
    assert_eq!(session.events("offline").len(), 1, "{context}");
    drop(session);

    // Its token is refused: the same installation (state file), given no password, cannot log in.
    let mut token_only = Xmppjs::spawn("xmpp.js (token only)", xmppjs(&server, &state, None, &[]));
    let status = token_only.finish();
    let context = format!(
        "{}\n--- server log ---\n{}",
        token_only.describe(status),
        server.logs()
    );
    assert!(!status.is_some_and(|s| s.success()), "{context}");
    assert!(status.is_some(), "killed at the deadline\n{context}");
    let auths = token_only.events("authenticate");
    assert!(
        auths
            .first()
            .is_some_and(|a| a["mechanism"] == "HT-SHA-256-NONE"
                && a["fast"] == true
                && a["user_agent_id"] == ua.as_str()),
        "the first <authenticate> is not the FAST one: {auths:?}\n{context}"
    );
    assert!(
        !token_only.events("failure").is_empty(),
        "no SASL2 <failure>\n{context}"
    );
    assert!(token_only.events("success").is_empty(), "{context}");
    assert!(token_only.events("online").is_empty(), "{context}");

    assert!(!login_works(&server, OLD), "the old password is refused");
    assert!(login_works(&server, NEW), "the new password works");

    page(&get(&server, &path), 410, "This link has already been used");
    let replay = post(&server, &path, &format!("csrf={stale_csrf}&{PAIR}"));
    page(&replay, 410, "This link has already been used");
    assert!(login_works(&server, NEW));
    let secret = path.trim_start_matches("/password-reset/");
    assert!(
        !server.logs().contains(secret),
        "the link's token is never logged"
    );
}

#[test]
fn the_rfc6120_profile_and_the_form_only_path_work_and_can_be_turned_off() {
    let smtp = SmtpSink::start();
    let top = "password_reset_legacy_sasl = true";
    let server = start(&["sasl2", "password_reset"], top, Some(&smtp));
    let mut legacy = XmppClient::starttls(server.ports.c2s);
    let features = legacy.open();
    has(
        inner(&features, "mechanisms").unwrap_or_default(),
        "<mechanism>PASSWORD-RESET</mechanism>",
    );
    let failure = legacy.password_reset(Profile::Legacy, "alice", EMAIL);
    let expected = format!("<failure xmlns='{SASL_NS}'><aborted/><text xml:lang='en'>{FINAL_TEXT}</text><reset-requested xmlns='{RESET_NS}'/></failure>");
    assert_eq!(failure, expected);
    let by_form = fresh(&server).password_reset_by_form(Profile::Sasl2, "alice@localhost", EMAIL);
    assert_eq!(text_of(&by_form), FINAL_TEXT);
    let mails = smtp.wait_for(2);
    assert_ne!(
        link_of(&mails[0]).0,
        link_of(&mails[1]).0,
        "one link per request"
    );
    // The operator's view (/metrics, counted by the module): two requests, two mails; an
    // unknown address is counted apart, though its requester got the same answer.
    let unknown =
        fresh(&server).password_reset_by_form(Profile::Sasl2, "alice@localhost", "x@example.org");
    assert_eq!(text_of(&unknown), FINAL_TEXT);
    let metrics = get(&server, "/metrics").body;
    for line in [
        "tessera_mod_password_reset_requests_total{outcome=\"link_sent\"} 2",
        "tessera_mod_password_reset_requests_total{outcome=\"no_link\"} 1",
        "tessera_mod_password_reset_mails_total{kind=\"reset_link\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }

    // With the option off, RFC 6120 clients neither see nor may use it.
    let default = start(
        &["sasl2", "password_reset"],
        "password_reset_legacy_sasl = false",
        None,
    );
    let mut c = XmppClient::direct_tls(default.ports.direct_tls);
    assert!(!inner(&c.open(), "mechanisms")
        .unwrap_or_default()
        .contains("PASSWORD-RESET"));
    has(
        c.reset_start(Profile::Legacy, Some(b"alice")).failure(),
        "<invalid-mechanism/>",
    );
}

#[test]
fn bad_requests_get_precise_failures_and_change_nothing() {
    let smtp = SmtpSink::start();
    let server = start(&["sasl2", "password_reset"], "", Some(&smtp));
    let form = |form_type: &str, email: &str| {
        format!("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{form_type}</value></field><field var='email'><value>{email}</value></field></x>")
    };
    let long = format!("{}@example.net", "a".repeat(300));
    let cases = [
        (
            form(RESET_NS, EMAIL).replace("</x>", ""),
            "The response is not a data form: ",
        ),
        (
            String::new(),
            "The response must be the submitted data form; it was empty",
        ),
        (
            "<query xmlns='jabber:iq:register'/>".into(),
            "The response must be an &lt;x xmlns='jabber:x:data'/&gt; data form",
        ),
        (
            form("urn:xmpp:register:0", EMAIL),
            "FORM_TYPE must be urn:tessera:password-reset:0",
        ),
        (
            form(RESET_NS, &long),
            "Field 'email' is longer than 254 bytes",
        ),
    ];
    for (response, expected) in cases {
        let mut c = fresh(&server);
        c.reset_start(Profile::Sasl2, Some(b"alice"))
            .challenge_text();
        let answer = c.reset_respond(Profile::Sasl2, response.as_bytes());
        let failure = answer.failure();
        has(failure, &format!("<malformed-request xmlns='{SASL_NS}'/>"));
        assert!(text_of(failure).starts_with(expected), "{failure}");
        assert!(!failure.contains("reset-requested"));
    }
    let too_long = fresh(&server).reset_start(Profile::Sasl2, Some(&[b'a'; 2000]));
    assert_eq!(
        text_of(too_long.failure()),
        "The account name is longer than 1023 bytes"
    );

    // Before TLS the mechanism is not offered and the host refuses any authentication.
    let mut plain = XmppClient::plain(server.ports.c2s);
    assert!(!plain.open().contains("PASSWORD-RESET"));
    let refused = plain.reset_start(Profile::Sasl2, Some(b"alice"));
    has(
        refused.failure(),
        &format!("<encryption-required xmlns='{SASL_NS}'/>"),
    );

    std::thread::sleep(Duration::from_millis(500));
    assert!(smtp.mails().is_empty(), "no mail for bad requests");
    assert!(login_works(&server, OLD), "the password is unchanged");
}

#[test]
fn forged_expired_and_csrf_less_submissions_are_refused_by_the_page() {
    let smtp = SmtpSink::start();
    let top = "password_reset_token_ttl = 2";
    let server = start(&["sasl2", "password_reset"], top, Some(&smtp));
    let issued = Instant::now();
    fresh(&server).password_reset(Profile::Sasl2, "alice", EMAIL);
    let (_, path) = link_of(&smtp.wait_for(1).remove(0));
    let form = get(&server, &path);
    page(&form, 200, "name=\"csrf\"");
    let csrf = csrf_of(&form.body);

    let forged = format!("/password-reset/{}", "A".repeat(43));
    page(&get(&server, &forged), 404, "<h1>Unknown link</h1>");
    page(
        &post(&server, &forged, &format!("csrf={csrf}&{PAIR}")),
        404,
        "<h1>Unknown link</h1>",
    );
    page(
        &post(&server, &path, PAIR),
        403,
        "This form cannot be accepted",
    );
    let mismatch = format!("csrf={csrf}&password=long+enough+1&confirm=long+enough+2");
    page(
        &post(&server, &path, &mismatch),
        400,
        "The two passwords are not the same",
    );

    let ttl = Duration::from_secs(2) + Duration::from_millis(300);
    std::thread::sleep(ttl.saturating_sub(issued.elapsed()));
    page(&get(&server, &path), 410, "<h1>This link has expired</h1>");
    page(
        &post(&server, &path, &format!("csrf={csrf}&{PAIR}")),
        410,
        "expired",
    );
    assert!(login_works(&server, OLD), "nothing changed");
    assert!(!server
        .logs()
        .contains(path.trim_start_matches("/password-reset/")));
}

#[test]
fn answers_and_timing_do_not_tell_accounts_or_addresses_apart() {
    let top =
        "password_reset_max_requests_per_user = 1000\npassword_reset_max_requests_per_ip = 1000";
    let server = start(&["sasl2", "password_reset"], top, None);
    let cases = [
        ("alice", EMAIL),
        ("alice", "mallory@example.net"),
        ("nobody", EMAIL),
    ];
    let mut answers: Vec<String> = Vec::new();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for round in 0..13 {
        for (i, (account, email)) in cases.iter().enumerate() {
            let mut c = fresh(&server);
            let form = c
                .reset_start(Profile::Sasl2, Some(account.as_bytes()))
                .challenge_text();
            let submitted = submit_form(&form, None, email);
            let t = Instant::now();
            let answer = c.reset_respond(Profile::Sasl2, submitted.as_bytes());
            if round > 0 {
                times[i].push(t.elapsed());
            }
            answers.push(answer.failure().to_owned());
        }
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "byte-identical: {answers:?}"
    );
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    eprintln!("median answer times (right address, wrong address, unknown account): {medians:?}");
    let min = medians.iter().min().copied().unwrap_or_default();
    let max = medians.iter().max().copied().unwrap_or_default();
    assert!(
        max <= min * 3 + Duration::from_millis(2),
        "medians: {medians:?}"
    );
}

#[test]
fn enabling_the_module_without_a_public_url_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ServerOptions::with_modules(&["sasl2", "password_reset"]);
    let config = tessera_tests::write_config(dir.path(), &options);
    for command in ["check-config", "run"] {
        let out = tessera_tests::run_cli(&config, &[command], "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        has(
            &stderr,
            "`http.public_url`: must be set: module `password_reset` needs it",
        );
    }
}
