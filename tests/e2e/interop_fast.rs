//! FAST (XEP-0484, mod_sasl2_fast on mod_sasl2) with real clients that none of us wrote, against
//! the real `tessera` binary. Each test starts its own server (modules `sasl2` and `sasl2_fast`,
//! OS-chosen loopback ports), creates the account through the CLI, runs every client as a
//! subprocess bounded by a timeout, and checks what the clients sent and received (their raw XML)
//! and what the server logged: mod_sasl2's one line per outcome,
//! `authentication succeeded user=… mechanism=… profile=…` /
//! `authentication failed user=… mechanism=… condition=… profile=…`.
//!
//! What each test proves:
//! - `go_sendxmpp_fast_ht_sha_256_expr_then_refused_after_password_change`: go-sendxmpp 0.14
//!   (STARTTLS, one HOME for all runs) logs in with its password over SCRAM-*-PLUS
//!   (`p=tls-exporter`) asking `<request-token mechanism='HT-SHA-256-EXPR'/>` and gets a
//!   `<token/>`; its second run, with the same cached token and client id, authenticates with
//!   HT-SHA-256-EXPR and `<fast/>` in one round trip (initial response `alice\0` + 32-byte HMAC
//!   over the tls-exporter binding; the server's additional data is the 32-byte responder HMAC).
//!   After `tessera user passwd alice` its cached token is refused (`not-authorized` or
//!   `credentials-expired`, as logged for HT-SHA-256-EXPR) and go-sendxmpp exits 1 without
//!   trying its password.
//! - `xmppjs_token_alone_in_a_fresh_process_with_ht_sha_256_none`: xmpp.js (@xmpp/client 0.14.0)
//!   logs in with its password (SCRAM-SHA-1) and `<request-token mechanism='HT-SHA-256-NONE'/>`
//!   and stores the token in a state file; a fresh node process that is given no password reads
//!   the token (and the user-agent id the token is bound to) from that file and logs in with
//!   HT-SHA-256-NONE alone. With the default `sasl2_fast_token_min_ttl` no new token comes back.
//! - `xmppjs_rotation_returns_new_token_and_old_one_still_works`: with
//!   `sasl2_fast_token_min_ttl = 1`, a FAST login with a token older than a second returns a new
//!   `<token/>`, which xmpp.js stores in place of the old one; a third process holding a saved
//!   copy of the old token still logs in with it (the new one has not been used yet).
//! - `xmppjs_old_token_refused_once_rotated_token_was_used`: after the rotated token has been used
//!   once, the old one is refused (`not-authorized` for HT-SHA-256-NONE) and xmpp.js drops it.
//!
//! Client behaviour these tests rely on (observed with the installed versions, not server
//! behaviour):
//! - go-sendxmpp keeps its client id and FAST token under `$HOME/.local/share/go-sendxmpp/`, and
//!   uses the cached token only when run with the password the token was obtained with; given
//!   another password it ignores the cache and logs in with that password (asking for a new
//!   token). So its last run here passes the old password: the one its token cache belongs to.
//! - xmpp.js keeps tokens in memory only (`client.fast.fetchToken/saveToken/deleteToken`) and
//!   makes up a random user-agent id per client object; tests/interop/fast.mjs persists both in a
//!   state file (see the script's header). xmpp.js implements HT-SHA-256-NONE only.
//!
//! The clients are installed by `tests/run.sh` (CI runs it); a missing client fails the test with
//! a hint to run `./tests/run.sh --install-only`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tessera_tests::interop::{node_driver, ClientProcess, Finished, DRIVER_TIMEOUT_SECS};
use tessera_tests::{Server, ServerOptions, TIMEOUT};

const FAST_NS: &str = "urn:xmpp:fast:0";

/// A server with mod_sasl2 and mod_sasl2_fast, `top` as extra top-level config, and alice.
fn fast_server(top: &str, password: &str) -> Server {
    let server = Server::start(&ServerOptions {
        top: top.into(),
        ..ServerOptions::with_modules(&[
            "sasl2",
            "sasl2_fast",
            "ping",
            "disco",
            "presence",
            "roster",
        ])
    });
    assert!(
        server.modules.iter().any(|m| m.starts_with("sasl2_fast ")),
        "mod_sasl2_fast is not loaded: {:?}\n{}",
        server.modules,
        server.logs()
    );
    server.add_user("alice", password, None);
    server
}

// ---------------------------------------------------------------------------------------------
// Server log

/// One of mod_sasl2's outcome lines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthLine {
    succeeded: bool,
    user: String,
    mechanism: String,
    condition: Option<String>,
    profile: String,
}

fn auth_lines(logs: &str) -> Vec<AuthLine> {
    logs.lines()
        .filter_map(|line| {
            let (succeeded, rest) = if let Some(i) = line.find("authentication succeeded ") {
                (true, &line[i + "authentication succeeded ".len()..])
            } else if let Some(i) = line.find("authentication failed ") {
                (false, &line[i + "authentication failed ".len()..])
            } else {
                return None;
            };
            let field = |key: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .map(str::to_owned)
            };
            Some(AuthLine {
                succeeded,
                user: field("user")?,
                mechanism: field("mechanism")?,
                condition: field("condition"),
                profile: field("profile")?,
            })
        })
        .collect()
}

/// The outcome lines for `user`, once there are at least `n` of them.
fn wait_auth_lines(server: &Server, user: &str, n: usize) -> Vec<AuthLine> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let lines: Vec<AuthLine> = auth_lines(&server.logs())
            .into_iter()
            .filter(|l| l.user == user)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "the server logged {} authentication outcome(s) for {user}, expected {n}:\n{}",
            lines.len(),
            server.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_fast_success(line: &AuthLine, mechanism: &str, context: &str) {
    assert!(
        line.succeeded && line.mechanism == mechanism && line.profile == "sasl2",
        "expected a SASL2 {mechanism} success, the server logged {line:?}\n{context}"
    );
}

// ---------------------------------------------------------------------------------------------
// go-sendxmpp

/// `go-sendxmpp --debug -n -u alice@localhost -p PW -j ADDR alice@localhost` with a body on stdin
/// and `home` as HOME (its FAST token and client id cache live there).
fn go_sendxmpp(home: &Path, addr: SocketAddr, password: &str, body: &str) -> Finished {
    let mut cmd = Command::new("go-sendxmpp");
    cmd.args([
        "--debug",
        "-n",
        "--suppress-root-warning",
        "--timeout",
        "20",
    ])
    .args(["-u", "alice@localhost", "-p", password])
    .args(["-j", &addr.to_string()])
    .arg("alice@localhost")
    .env("HOME", home)
    .env("XDG_CONFIG_HOME", home.join(".config"))
    .env("XDG_DATA_HOME", home.join(".local/share"))
    .env("XDG_CACHE_HOME", home.join(".cache"))
    .current_dir(home);
    ClientProcess::spawn("go-sendxmpp", cmd, Some(&format!("{body}\n"))).finish()
}

/// The value of attribute `name` in the start tag at the beginning of `element` (either quote).
fn attr(element: &str, name: &str) -> Option<String> {
    let tag = &element[..element.find('>').unwrap_or(element.len())];
    let at = tag.find(&format!(" {name}="))? + name.len() + 2;
    let quote = tag[at..].chars().next()?;
    let value = &tag[at + 1..];
    Some(value[..value.find(quote)?].to_owned())
}

/// What one SASL2 `<authenticate>` in a go-sendxmpp trace says.
#[derive(Debug)]
struct GoAuthenticate {
    mechanism: String,
    initial_response: Vec<u8>,
    user_agent_id: Option<String>,
    fast: bool,
    request_token: Option<String>,
}

/// Every SASL2 `<authenticate>` go-sendxmpp sent (its --debug trace: `SEND: …` lines).
fn go_authenticates(trace: &str) -> Vec<GoAuthenticate> {
    trace
        .lines()
        .filter_map(|l| l.strip_prefix("SEND: "))
        .filter_map(|l| {
            let start = l.find("<authenticate xmlns='urn:xmpp:sasl:2'")?;
            let element = &l[start..];
            let element = &element[..element.find("</authenticate>").unwrap_or(element.len())];
            let initial = element
                .split("<initial-response>")
                .nth(1)
                .and_then(|rest| rest.split("</initial-response>").next())
                .unwrap_or_default();
            let initial_response = base64::engine::general_purpose::STANDARD
                .decode(initial.trim())
                .unwrap_or_else(|e| panic!("initial response {initial:?} is not base64: {e}"));
            let request_token = element
                .find("<request-token ")
                .and_then(|i| attr(&element[i..], "mechanism"));
            Some(GoAuthenticate {
                mechanism: attr(element, "mechanism").unwrap_or_default(),
                initial_response,
                user_agent_id: element
                    .find("<user-agent ")
                    .and_then(|i| attr(&element[i..], "id")),
                fast: element.contains(&format!("<fast xmlns='{FAST_NS}'")),
                request_token,
            })
        })
        .collect()
}

/// The RECV lines of a go-sendxmpp trace.
fn go_received(trace: &str) -> String {
    trace
        .lines()
        .filter_map(|l| l.strip_prefix("RECV: "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `<additional-data>` of the SASL2 `<success>` in received XML, decoded.
fn success_additional_data(received: &str) -> Option<Vec<u8>> {
    let success = &received[received.find("<success xmlns='urn:xmpp:sasl:2'>")?..];
    let data = success.split("<additional-data>").nth(1)?;
    let data = data.split("</additional-data>").next()?;
    base64::engine::general_purpose::STANDARD.decode(data).ok()
}

#[test]
fn go_sendxmpp_fast_ht_sha_256_expr_then_refused_after_password_change() {
    const PASSWORD: &str = "alice-pass-1";
    let server = fast_server("", PASSWORD);
    let home = tempfile::tempdir().expect("tempdir");
    let addr = server.ports.c2s;

    // 1. Password login: SCRAM-*-PLUS with tls-exporter, asking for an HT-SHA-256-EXPR token.
    let first = go_sendxmpp(home.path(), addr, PASSWORD, "first, with the password");
    let context = format!(
        "{}\n--- server log ---\n{}",
        first.describe(),
        server.logs()
    );
    assert!(first.success(), "{context}");
    let trace = format!("{}\n{}", first.stdout(), first.stderr);
    let auths = go_authenticates(&trace);
    assert_eq!(auths.len(), 1, "one <authenticate> expected\n{context}");
    let password_auth = &auths[0];
    assert!(
        password_auth.mechanism.starts_with("SCRAM-SHA-")
            && password_auth.mechanism.ends_with("-PLUS"),
        "the first run did not use SCRAM-*-PLUS: {password_auth:?}\n{context}"
    );
    assert!(
        password_auth
            .initial_response
            .starts_with(b"p=tls-exporter,"),
        "not tls-exporter channel binding: {password_auth:?}\n{context}"
    );
    assert!(!password_auth.fast, "{password_auth:?}\n{context}");
    assert_eq!(
        password_auth.request_token.as_deref(),
        Some("HT-SHA-256-EXPR"),
        "go-sendxmpp did not ask for an HT-SHA-256-EXPR token\n{context}"
    );
    let received = go_received(&trace);
    assert!(
        received.contains("<success xmlns='urn:xmpp:sasl:2'>")
            && received.contains(&format!("<token xmlns='{FAST_NS}' token='secret-token:")),
        "no <token/> in the SASL2 <success>\n{context}"
    );
    let cache = home.path().join(".local/share/go-sendxmpp");
    assert!(
        std::fs::read_dir(&cache).is_ok_and(|mut d| d.next().is_some()),
        "go-sendxmpp cached nothing in {}\n{context}",
        cache.display()
    );
    let lines = wait_auth_lines(&server, "alice", 1);
    assert!(
        lines[0].succeeded && lines[0].mechanism == password_auth.mechanism,
        "server log: {lines:?}\n{context}"
    );

    // 2. Same HOME: FAST with the cached token, HT-SHA-256-EXPR, no password exchange.
    let second = go_sendxmpp(home.path(), addr, PASSWORD, "second, with the token");
    let context = format!(
        "{}\n--- server log ---\n{}",
        second.describe(),
        server.logs()
    );
    assert!(second.success(), "{context}");
    let trace = format!("{}\n{}", second.stdout(), second.stderr);
    let auths = go_authenticates(&trace);
    assert_eq!(
        auths.len(),
        1,
        "one <authenticate> expected (no password retry)\n{context}"
    );
    let fast_auth = &auths[0];
    assert_eq!(fast_auth.mechanism, "HT-SHA-256-EXPR", "{context}");
    assert!(
        fast_auth.fast,
        "no <fast/> in the FAST <authenticate>\n{context}"
    );
    assert_eq!(
        fast_auth.user_agent_id, password_auth.user_agent_id,
        "go-sendxmpp changed its client id between runs\n{context}"
    );
    assert!(fast_auth.user_agent_id.is_some(), "{context}");
    // draft-schmaus-kitten-sasl-ht-09: authcid NUL initiator-HMAC (32 bytes for SHA-256).
    assert!(
        fast_auth.initial_response.starts_with(b"alice\0")
            && fast_auth.initial_response.len() == 6 + 32,
        "HT initial response is not `alice\\0` + 32 bytes: {:?}\n{context}",
        fast_auth.initial_response
    );
    let received = go_received(&trace);
    assert_eq!(
        success_additional_data(&received).map(|d| d.len()),
        Some(32),
        "the SASL2 <success> does not carry the 32-byte responder HMAC\n{context}"
    );
    assert!(
        !received.contains("<challenge"),
        "FAST took more than one round trip\n{context}"
    );
    let lines = wait_auth_lines(&server, "alice", 2);
    assert_fast_success(&lines[1], "HT-SHA-256-EXPR", &context);

    // 3. Password change through the host: the cached token dies.
    let out = server.cli(&["user", "passwd", "alice"], "new pw\n");
    assert!(
        out.status.success(),
        "user passwd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.wait_for_log("password changed user=alice");

    // go-sendxmpp uses its cached token only with the password the cache was made with, so it is
    // given that one (which no longer works either: only the token can be at play).
    let third = go_sendxmpp(home.path(), addr, PASSWORD, "third, with the revoked token");
    let context = format!(
        "{}\n--- server log ---\n{}",
        third.describe(),
        server.logs()
    );
    assert_eq!(
        third.exit_code(),
        Some(1),
        "go-sendxmpp should exit 1 when its token is refused\n{context}"
    );
    let trace = format!("{}\n{}", third.stdout(), third.stderr);
    let auths = go_authenticates(&trace);
    assert_eq!(
        auths.len(),
        1,
        "go-sendxmpp should try the token only (no password fallback)\n{context}"
    );
    assert_eq!(auths[0].mechanism, "HT-SHA-256-EXPR", "{context}");
    assert!(auths[0].fast, "{context}");
    assert_eq!(
        auths[0].user_agent_id, password_auth.user_agent_id,
        "{context}"
    );
    let received = go_received(&trace);
    let refused = ["not-authorized", "credentials-expired"].iter().any(|c| {
        received.contains(&format!(
            "<failure xmlns='urn:xmpp:sasl:2'><{c} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
        ))
    });
    assert!(
        refused,
        "no SASL2 <failure> with not-authorized/credentials-expired\n{context}"
    );
    assert!(!received.contains("<success"), "{context}");
    let lines = wait_auth_lines(&server, "alice", 3);
    let last = &lines[2];
    assert!(
        !last.succeeded
            && last.mechanism == "HT-SHA-256-EXPR"
            && matches!(
                last.condition.as_deref(),
                Some("not-authorized" | "credentials-expired")
            ),
        "expected an HT-SHA-256-EXPR refusal, the server logged {last:?}\n{context}"
    );
    std::thread::sleep(Duration::from_millis(200));
    let lines = wait_auth_lines(&server, "alice", 3);
    assert_eq!(
        lines.len(),
        3,
        "unexpected authentications: {lines:?}\n{context}"
    );
}

// ---------------------------------------------------------------------------------------------
// xmpp.js

/// `node tests/interop/fast.mjs --service xmpp://C2S --domain localhost --user alice
/// [--password PW] --state STATE`: one login (STARTTLS), then logout.
fn xmppjs_fast(server: &Server, state: &Path, password: Option<&str>) -> Finished {
    let mut cmd = node_driver("fast.mjs");
    cmd.args(["--service", &format!("xmpp://{}", server.ports.c2s)])
        .args(["--domain", "localhost", "--user", "alice"])
        .arg("--state")
        .arg(state)
        .args(["--timeout", DRIVER_TIMEOUT_SECS]);
    if let Some(password) = password {
        cmd.args(["--password", password]);
    }
    let name = if password.is_some() {
        "xmpp.js (password)"
    } else {
        "xmpp.js (token only)"
    };
    ClientProcess::spawn(name, cmd, None).finish()
}

/// The xmpp.js state file: user-agent id and stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    user_agent_id: String,
    token: Option<String>,
    mechanism: Option<String>,
}

fn read_state(path: &Path) -> State {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()));
    State {
        user_agent_id: v["user_agent_id"].as_str().unwrap_or_default().to_owned(),
        token: v["token"]["token"].as_str().map(str::to_owned),
        mechanism: v["token"]["mechanism"].as_str().map(str::to_owned),
    }
}

/// The one SASL2 `<authenticate>` of a run that went online.
fn single_authenticate(run: &Finished, context: &str) -> Value {
    let auths = run.events("authenticate");
    assert_eq!(
        auths.len(),
        1,
        "one <authenticate> expected: {auths:?}\n{context}"
    );
    assert_eq!(
        run.events("online").len(),
        1,
        "{} did not go online\n{context}",
        run.name
    );
    auths[0].clone()
}

/// Password login with request-token into a new state file; returns the state.
fn xmppjs_obtain_token(server: &Server, state_path: &Path, password: &str) -> State {
    let first = xmppjs_fast(server, state_path, Some(password));
    let context = format!(
        "{}\n--- server log ---\n{}",
        first.describe(),
        server.logs()
    );
    assert!(first.success(), "{context}");
    let auth = single_authenticate(&first, &context);
    assert_eq!(auth["mechanism"], "SCRAM-SHA-1", "{context}");
    assert_eq!(auth["fast"], false, "{context}");
    assert_eq!(
        auth["request_token"], "HT-SHA-256-NONE",
        "xmpp.js did not ask for a token\n{context}"
    );
    let success = first.events("success");
    let token = success
        .first()
        .and_then(|s| s["token"].as_str())
        .unwrap_or_else(|| panic!("no <token/> in the SASL2 <success>\n{context}"));
    assert!(token.starts_with("secret-token:"), "{token}\n{context}");
    let state = read_state(state_path);
    assert_eq!(state.token.as_deref(), Some(token), "{context}");
    assert_eq!(
        state.mechanism.as_deref(),
        Some("HT-SHA-256-NONE"),
        "{context}"
    );
    assert_eq!(
        auth["user_agent_id"],
        state.user_agent_id.as_str(),
        "{context}"
    );
    let lines = wait_auth_lines(server, "alice", 1);
    assert!(
        lines[0].succeeded && lines[0].mechanism == "SCRAM-SHA-1",
        "server log: {lines:?}\n{context}"
    );
    state
}

/// A token-only login (no password given to xmpp.js) that must succeed with HT-SHA-256-NONE; `n`
/// is how many outcomes for alice the server has logged with this one. Returns the run.
fn xmppjs_fast_ok(server: &Server, state_path: &Path, n: usize) -> Finished {
    let before = read_state(state_path);
    let run = xmppjs_fast(server, state_path, None);
    let context = format!(
        "state before: {before:?}\n{}\n--- server log ---\n{}",
        run.describe(),
        server.logs()
    );
    assert!(run.success(), "{context}");
    let auth = single_authenticate(&run, &context);
    assert_eq!(auth["mechanism"], "HT-SHA-256-NONE", "{context}");
    assert_eq!(auth["fast"], true, "no <fast/>\n{context}");
    assert_eq!(auth["request_token"], Value::Null, "{context}");
    assert_eq!(
        auth["user_agent_id"],
        before.user_agent_id.as_str(),
        "{context}"
    );
    assert!(
        run.stderr.contains("mechanism=\"HT-SHA-256-NONE\""),
        "no HT-SHA-256-NONE <authenticate> in the XML trace\n{context}"
    );
    let lines = wait_auth_lines(server, "alice", n);
    assert_fast_success(&lines[n - 1], "HT-SHA-256-NONE", &context);
    run
}

#[test]
fn xmppjs_token_alone_in_a_fresh_process_with_ht_sha_256_none() {
    const PASSWORD: &str = "alice-pass-1";
    let server = fast_server("", PASSWORD);
    let dir = tempfile::tempdir().expect("tempdir");
    let state_path = dir.path().join("xmppjs-state.json");

    let obtained = xmppjs_obtain_token(&server, &state_path, PASSWORD);

    let second = xmppjs_fast_ok(&server, &state_path, 2);
    let context = format!(
        "{}\n--- server log ---\n{}",
        second.describe(),
        server.logs()
    );
    // Default sasl2_fast_token_min_ttl (a day): no rotation, the token stays as it was.
    assert_eq!(
        second.events("success").first().map(|s| s["token"].clone()),
        Some(Value::Null),
        "unexpected <token/> in the FAST <success>\n{context}"
    );
    assert_eq!(read_state(&state_path), obtained, "{context}");
    let online = &second.events("online")[0];
    assert!(
        online["jid"]
            .as_str()
            .is_some_and(|j| j.starts_with("alice@localhost/")),
        "{context}"
    );
    assert_eq!(online["tls"], "TLSv1.3", "{context}");
    let lines = wait_auth_lines(&server, "alice", 2);
    assert_eq!(lines.len(), 2, "{lines:?}\n{context}");
}

/// Rotation setup shared by the two rotation tests: token T1 by password, wait until it is due,
/// a FAST login with it that returns T2. Returns (server, dir, state path, state with T1, state
/// with T2).
fn rotate_once() -> (Server, tempfile::TempDir, PathBuf, State, State) {
    const PASSWORD: &str = "alice-pass-1";
    let server = fast_server("sasl2_fast_token_min_ttl = 1\n", PASSWORD);
    let dir = tempfile::tempdir().expect("tempdir");
    let state_path = dir.path().join("xmppjs-state.json");
    let old = xmppjs_obtain_token(&server, &state_path, PASSWORD);
    // Keep a copy of the state with T1, as a second installation sharing the user-agent id.
    std::fs::copy(&state_path, dir.path().join("old-state.json")).expect("copy state");

    // Rotation is due once the token is older than min_ttl (1 s).
    std::thread::sleep(Duration::from_millis(1500));
    let rotating = xmppjs_fast_ok(&server, &state_path, 2);
    let context = format!(
        "{}\n--- server log ---\n{}",
        rotating.describe(),
        server.logs()
    );
    let rotated = rotating
        .events("success")
        .first()
        .and_then(|s| s["token"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no rotated <token/> in the FAST <success>\n{context}"));
    assert_ne!(Some(&rotated), old.token.as_ref(), "{context}");
    let new = read_state(&state_path);
    assert_eq!(
        new.token.as_ref(),
        Some(&rotated),
        "xmpp.js did not store the rotated token\n{context}"
    );
    assert_eq!(new.user_agent_id, old.user_agent_id, "{context}");
    assert_eq!(
        new.mechanism.as_deref(),
        Some("HT-SHA-256-NONE"),
        "{context}"
    );
    (server, dir, state_path, old, new)
}

#[test]
fn xmppjs_rotation_returns_new_token_and_old_one_still_works() {
    let (server, dir, _state_path, old, new) = rotate_once();
    let old_path = dir.path().join("old-state.json");
    assert_eq!(read_state(&old_path), old);

    // The new token has not been used: the old one still logs in.
    let third = xmppjs_fast_ok(&server, &old_path, 3);
    let context = format!(
        "{}\n--- server log ---\n{}",
        third.describe(),
        server.logs()
    );
    // The old token is still older than min_ttl, so this login rotates as well.
    let again = third
        .events("success")
        .first()
        .and_then(|s| s["token"].as_str().map(str::to_owned));
    assert!(
        again
            .as_ref()
            .is_some_and(|t| Some(t) != old.token.as_ref() && Some(t) != new.token.as_ref()),
        "expected yet another token for the still-due old one, got {again:?}\n{context}"
    );
}

#[test]
fn xmppjs_old_token_refused_once_rotated_token_was_used() {
    let (server, dir, state_path, old, _new) = rotate_once();
    let old_path = dir.path().join("old-state.json");

    // Use the rotated token once (it may rotate again if it is already a second old).
    xmppjs_fast_ok(&server, &state_path, 3);

    // Now the old token is refused, and xmpp.js drops it.
    let refused = xmppjs_fast(&server, &old_path, None);
    let context = format!(
        "{}\n--- server log ---\n{}",
        refused.describe(),
        server.logs()
    );
    assert!(!refused.success(), "{context}");
    let auths = refused.events("authenticate");
    assert!(
        auths
            .first()
            .is_some_and(|a| a["mechanism"] == "HT-SHA-256-NONE"
                && a["fast"] == true
                && a["user_agent_id"] == old.user_agent_id.as_str()),
        "the first <authenticate> is not the FAST one: {auths:?}\n{context}"
    );
    assert_eq!(
        refused
            .events("failure")
            .first()
            .map(|f| f["condition"].clone()),
        Some(Value::from("not-authorized")),
        "{context}"
    );
    assert!(refused.events("success").is_empty(), "{context}");
    assert!(
        !refused.events("token-deleted").is_empty(),
        "xmpp.js kept the refused token\n{context}"
    );
    let lines = wait_auth_lines(&server, "alice", 4);
    let last = &lines[3];
    assert!(
        !last.succeeded
            && last.mechanism == "HT-SHA-256-NONE"
            && last.condition.as_deref() == Some("not-authorized"),
        "expected an HT-SHA-256-NONE not-authorized, the server logged {last:?}\n{context}"
    );
    // xmpp.js then falls back to its password mechanism, but it was given none: it gives up
    // before completing SCRAM, so the server never logs a success.
    assert!(
        !lines.iter().skip(3).any(|l| l.succeeded),
        "{lines:?}\n{context}"
    );
}
