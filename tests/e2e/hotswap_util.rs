//! Helpers of the hot-swap tests (`hotswap.rs`): CLI calls, plugin folders and builds, logins.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tessera_sasl::ht::build_initial_response;
use tessera_tests::sasl::Sasl2Extras;
use tessera_tests::{https, target_dir, Server, ServerOptions, XmppClient, TIMEOUT};

pub(crate) const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

pub(crate) fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run a CLI command that must succeed; returns its stdout.
pub(crate) fn ok(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args, "");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    stdout
}

/// Run a CLI command that must fail; returns its stderr.
pub(crate) fn refused(server: &Server, args: &[&str]) -> String {
    let out = server.cli(args, "");
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{args:?} succeeded: {stdout}");
    stderr
}

pub(crate) fn get(server: &Server, path: &str) -> tessera_tests::HttpReply {
    https(server.ports.http, "GET", path, &[], b"")
}

pub(crate) fn module_list(server: &Server) -> Vec<serde_json::Value> {
    serde_json::from_str(&ok(server, &["module", "list"])).expect("module list json")
}

/// Poll `f` until it returns `Some`.
pub(crate) fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Replace a plugin file the way an operator should: copy beside it, rename over it.
pub(crate) fn replace_file(from: &Path, to: &Path) {
    let tmp = to.with_extension("so.tmp");
    std::fs::copy(from, &tmp).expect("copy plugin");
    std::fs::rename(&tmp, to).expect("rename plugin");
}

pub(crate) fn lib(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("libmod_{name}.so"))
}

/// A plugin folder with copies of these modules (so tests can replace files).
pub(crate) fn plugin_dir(modules: &[&str]) -> tempfile::TempDir {
    tessera_tests::ensure_built();
    let dir = tempfile::tempdir().expect("tempdir");
    for m in modules {
        std::fs::copy(lib(&target_dir(), m), lib(dir.path(), m)).expect("copy plugin");
    }
    dir
}

/// fixture_counter built with another `TESSERA_BUILD_ID`, in its own target folder.
pub(crate) fn counter_build(build_id: &str) -> PathBuf {
    let target = target_dir().join(format!("hotswap-{build_id}"));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "-p",
            "tessera-fixture-counter",
            "--target-dir",
        ])
        .arg(&target)
        .env("TESSERA_BUILD_ID", build_id)
        .current_dir(tessera_tests::workspace())
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "building fixture_counter {build_id} failed"
    );
    lib(&target.join("debug"), "fixture_counter")
}

pub(crate) fn counter(server: &Server) -> serde_json::Value {
    let r = get(server, "/test/counter/count");
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).expect("count json")
}

pub(crate) fn fire_count(server: &Server, n: u64) {
    for _ in 0..n {
        let r = get(server, "/test/emitter/fire?event=fixture-count&value=x");
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

pub(crate) fn chat(from: &mut XmppClient, to: &mut XmppClient, to_jid: &str, body: &str) {
    from.send(&format!(
        "<message to='{to_jid}' type='chat'><body>{body}</body></message>"
    ));
    let got = to.read_until("</message>");
    assert!(got.contains(&format!("<body>{body}</body>")), "{got}");
}

/// A password login that reports failure instead of panicking.
pub(crate) fn try_login(server: &Server, user: &str, password: &str) -> Result<(), String> {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let outcome = c.sasl2_plain(user, password, &Sasl2Extras::bind("hammer"));
    outcome.success.then_some(()).ok_or(outcome.xml)
}

pub(crate) fn obtain_token(server: &Server) -> String {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let extras = Sasl2Extras {
        user_agent_id: Some(UA.into()),
        bind_tag: None,
        raw: "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>".into(),
    };
    let out = c.sasl2_plain("alice", "alice pw", &extras);
    assert!(out.success, "{}", out.xml);
    let start = out.xml.find("token='").expect("token") + 7;
    let rest = &out.xml[start..];
    rest[..rest.find('\'').expect("quote")].to_owned()
}

pub(crate) fn fast_login(server: &Server, token: &str) -> bool {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let extras = Sasl2Extras {
        user_agent_id: Some(UA.into()),
        bind_tag: Some("fast".into()),
        raw: "<fast xmlns='urn:xmpp:fast:0'/>".into(),
    };
    let ir = build_initial_response("alice", token.as_bytes(), b"");
    c.sasl2_start("HT-SHA-256-NONE", Some(&ir), &extras);
    c.read_until_any(&["</success>", "</failure>"])
        .contains("<success")
}

pub(crate) fn fast_server() -> Server {
    let server = Server::start(&ServerOptions::with_modules(&["sasl2", "sasl2_fast"]));
    server.add_user("alice", "alice pw", None);
    server.add_user("bob", "bob pw", None);
    server
}
