//! Hot swap under load (issue 8, "Shown under load"): mod_sasl2_fast is reloaded 20 times,
//! alternating two builds, while 50 authenticated sessions sit idle and password and FAST logins
//! run continuously; mod_password_reset is unloaded and loaded once in the middle. Nobody is
//! dropped, no login fails, a token issued before the reloads is accepted after each of them.

#[allow(dead_code)] // the helpers of hotswap.rs; this test uses a few of them
mod hotswap_util;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hotswap_util::{lib, module_list, ok, plugin_dir, replace_file, UA};
use tessera_sasl::ht::build_initial_response;
use tessera_sasl::Hash;
use tessera_tests::sasl::Sasl2Extras;
use tessera_tests::{target_dir, Server, ServerOptions, XmppClient};

/// Idle sessions held through the reloads.
const IDLE: usize = 50;
/// Accounts the idle sessions are spread over.
const IDLE_ACCOUNTS: usize = 5;
/// Reloads of sasl2_fast.
const RELOADS: usize = 20;
/// The FAST worker's user agent (the token checked across reloads uses [`UA`]).
const WORKER_UA: &str = "6f1c2b3a-9d8e-4f70-8a1b-2c3d4e5f6a7b";
/// Logins each worker makes at least, however quickly the reloads go.
const MIN_LOGINS: u64 = 10;
/// Safety bound on the login workers if the main thread panics.
const WORKER_LIMIT: Duration = Duration::from_secs(50);

/// mod_sasl2_fast built with `TESSERA_BUILD_ID=build-2` in its own target folder (shared with
/// the fixture_counter build of hotswap.rs, so dependencies are compiled once).
fn fast_build_2() -> PathBuf {
    let target = target_dir().join("hotswap-build-2");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "-p",
            "tessera-mod-sasl2-fast",
            "--target-dir",
        ])
        .arg(&target)
        .env("TESSERA_BUILD_ID", "build-2")
        .current_dir(tessera_tests::workspace())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building mod_sasl2_fast build-2 failed");
    lib(&target.join("debug"), "sasl2_fast")
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn token_attr(xml: &str) -> Option<String> {
    let start = xml.find("<token xmlns='urn:xmpp:fast:0'")?;
    let rest = xml.get(start..)?;
    let t = rest.find("token='")? + 7;
    let end = rest.get(t..)?.find('\'')?;
    rest.get(t..t + end).map(str::to_owned)
}

/// Password login (SCRAM-SHA-256) asking for a HT-SHA-256-NONE token for `ua`.
fn obtain_token(server: &Server, user: &str, password: &str, ua: &str) -> String {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let extras = Sasl2Extras {
        user_agent_id: Some(ua.into()),
        bind_tag: None,
        raw: "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>".into(),
    };
    let out = c.sasl2_scram(Hash::Sha256, false, user, password, &extras);
    assert!(out.success, "{}", out.xml);
    token_attr(&out.xml).unwrap_or_else(|| panic!("no token in {}", out.xml))
}

/// A complete FAST login up to the post-auth features; `Ok(Some(new))` when the token rotated.
fn fast_login(
    server: &Server,
    user: &str,
    token: &str,
    ua: &str,
) -> Result<Option<String>, String> {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let extras = Sasl2Extras {
        user_agent_id: Some(ua.into()),
        bind_tag: Some("fast".into()),
        raw: "<fast xmlns='urn:xmpp:fast:0'/>".into(),
    };
    let ir = build_initial_response(user, token.as_bytes(), b"");
    c.sasl2_start("HT-SHA-256-NONE", Some(&ir), &extras);
    let xml = c.read_until_any(&["</success>", "</failure>"]);
    if !xml.contains("<success") {
        return Err(xml);
    }
    c.read_until("</stream:features>");
    Ok(token_attr(&xml))
}

/// A complete SCRAM-SHA-256 login with Bind 2 up to the post-auth features.
fn password_login(server: &Server, user: &str, password: &str) -> Result<(), String> {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let out = c.sasl2_scram(
        Hash::Sha256,
        false,
        user,
        password,
        &Sasl2Extras::bind("load"),
    );
    if !out.success {
        return Err(out.xml);
    }
    c.read_until("</stream:features>");
    Ok(())
}

/// What one login worker saw.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: Vec<String>,
    rotated: u64,
    longest: Duration,
}

impl Tally {
    /// Until told to stop, but at least [`MIN_LOGINS`] attempts (bounded by `deadline`).
    fn keep_going(&self, stop: &AtomicBool, deadline: Instant) -> bool {
        let tried = self.ok + self.failed.len() as u64;
        (tried < MIN_LOGINS || !stop.load(Ordering::Relaxed)) && Instant::now() < deadline
    }

    /// Run `login` once (panics — timeouts, closed connections — count as failures).
    fn run(&mut self, login: impl FnOnce() -> Result<(), String>) {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(login)).unwrap_or_else(|p| {
            Err(p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".into()))
        });
        self.longest = self.longest.max(started.elapsed());
        match outcome {
            Ok(()) => self.ok += 1,
            Err(e) => self.failed.push(e),
        }
    }
}

fn password_worker(server: &Server, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let deadline = Instant::now() + WORKER_LIMIT;
    while tally.keep_going(stop, deadline) {
        tally.run(|| password_login(server, "bob", "bob pw"));
    }
    tally
}

fn fast_worker(server: &Server, stop: &AtomicBool, mut token: String) -> Tally {
    let mut tally = Tally::default();
    let deadline = Instant::now() + WORKER_LIMIT;
    while tally.keep_going(stop, deadline) {
        let mut rotated = None;
        tally.run(|| {
            rotated = fast_login(server, "carol", &token, WORKER_UA)?;
            Ok(())
        });
        if let Some(new) = rotated {
            token = new;
            tally.rotated += 1;
        }
    }
    tally
}

/// Ping every idle session; each must answer with a result.
fn ping_all(sessions: &mut [XmppClient]) {
    for (i, c) in sessions.iter_mut().enumerate() {
        assert!(!c.is_closed(), "idle session {i} was dropped");
        let id = format!("hl-ping-{i}");
        c.send(&format!(
            "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let mut got = String::new();
        while !got.contains(&format!("id='{id}'")) {
            got = c.read_until_any(&["</iq>", "/>"]);
        }
        assert!(got.contains("type='result'"), "ping {i}: {got}");
    }
}

fn running_build(server: &Server, name: &str) -> String {
    let list = module_list(server);
    let running: Vec<_> = list
        .iter()
        .filter(|g| g["name"] == name && g["state"] == "running")
        .collect();
    assert_eq!(running.len(), 1, "one running {name}: {list:?}");
    running[0]["build"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn twenty_fast_reloads_under_load_drop_no_one_and_fail_no_login() {
    let build_2 = fast_build_2();
    let build_1 = lib(&target_dir(), "sasl2_fast");
    let plugins = plugin_dir(&["sasl2", "sasl2_fast", "password_reset", "ping"]);
    let server = Server::start(&ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        // Tokens older than a second rotate on use, so the FAST worker sees rotations.
        top: "sasl2_fast_token_min_ttl = 1".into(),
        http: "public_url = \"https://localhost:5281\"".into(),
        ..ServerOptions::with_modules(&["sasl2", "sasl2_fast", "password_reset", "ping"])
    });
    for (user, pw) in [
        ("alice", "alice pw"),
        ("bob", "bob pw"),
        ("carol", "carol pw"),
    ] {
        server.add_user(user, pw, None);
    }
    for a in 0..IDLE_ACCOUNTS {
        server.add_user(&format!("idle{a}"), &format!("idle{a} pw"), None);
    }
    let build_1_id = running_build(&server, "sasl2_fast");
    assert_ne!(build_1_id, "build-2", "the two builds must differ");
    let fast_file = lib(plugins.path(), "sasl2_fast");

    let started = Instant::now();
    let mut idle: Vec<XmppClient> = (0..IDLE)
        .map(|i| {
            let a = i % IDLE_ACCOUNTS;
            XmppClient::login(
                server.ports.direct_tls,
                &format!("idle{a}"),
                &format!("idle{a} pw"),
                &format!("idle-{i}"),
            )
            .0
        })
        .collect();
    let before_token = obtain_token(&server, "alice", "alice pw", UA);
    let worker_token = obtain_token(&server, "carol", "carol pw", WORKER_UA);
    let rss_before = vm_rss_kib(server.pid());
    eprintln!(
        "hotswap_load: {IDLE} idle sessions up in {:?}; server VmRSS before reloads: {rss_before} KiB",
        started.elapsed()
    );

    let stop = AtomicBool::new(false);
    let reloads_started = Instant::now();
    let (password, fast, reload_times) = std::thread::scope(|s| {
        let (srv, stop_ref) = (&server, &stop);
        let password = s.spawn(move || password_worker(srv, stop_ref));
        let fast = s.spawn(move || fast_worker(srv, stop_ref, worker_token));
        // Stop the workers even if an assertion below fails, so the scope can end.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let guard = StopOnDrop(&stop);
        std::thread::sleep(Duration::from_millis(200));
        let mut reload_times = Vec::with_capacity(RELOADS);
        for n in 1..=RELOADS {
            let (file, expected) = if n % 2 == 1 {
                (&build_2, "build-2")
            } else {
                (&build_1, build_1_id.as_str())
            };
            replace_file(file, &fast_file);
            let t = Instant::now();
            let out = ok(&server, &["module", "reload", "sasl2_fast"]);
            reload_times.push(t.elapsed());
            assert!(
                out.contains("reloaded sasl2_fast") && out.contains(&format!("(build {expected})")),
                "reload {n}: {out}"
            );
            assert_eq!(
                running_build(&server, "sasl2_fast"),
                expected,
                "after reload {n}"
            );
            // Issued before the reloads, still accepted (the rotated tokens it gets are never
            // used, so it stays valid).
            fast_login(&server, "alice", &before_token, UA)
                .unwrap_or_else(|e| panic!("the earlier token after reload {n}: {e}"));
            if n == RELOADS / 2 {
                let out = ok(&server, &["module", "unload", "password_reset"]);
                assert!(out.contains("unloaded password_reset"), "{out}");
                password_login(&server, "alice", "alice pw")
                    .expect("a login with password_reset unloaded");
                let out = ok(&server, &["module", "load", "password_reset"]);
                assert!(out.contains("loaded password_reset"), "{out}");
                password_login(&server, "alice", "alice pw")
                    .expect("a login with password_reset loaded again");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(200));
        drop(guard);
        (
            password.join().expect("password worker"),
            fast.join().expect("fast worker"),
            reload_times,
        )
    });
    let run = reloads_started.elapsed();

    for (what, t) in [("password", &password), ("FAST", &fast)] {
        assert!(
            t.ok >= 10,
            "{what}: only {} logins during the reloads",
            t.ok
        );
        assert!(
            t.failed.is_empty(),
            "{what}: {} of {} logins failed: {:?}",
            t.failed.len(),
            t.ok + t.failed.len() as u64,
            t.failed
        );
    }
    ping_all(&mut idle);
    fast_login(&server, "alice", &before_token, UA).expect("the earlier token at the end");
    running_build(&server, "password_reset"); // loaded again and running

    let rss_after = vm_rss_kib(server.pid());
    let list = module_list(&server);
    let fast_gens: Vec<_> = list.iter().filter(|g| g["name"] == "sasl2_fast").collect();
    let fast_mapped: u64 = fast_gens
        .iter()
        .filter_map(|g| g["mapped_bytes"].as_u64())
        .sum();
    let all_mapped: u64 = list.iter().filter_map(|g| g["mapped_bytes"].as_u64()).sum();
    let states = |s: &str| fast_gens.iter().filter(|g| g["state"] == s).count();
    assert_eq!(fast_gens.len(), RELOADS + 1, "{list:?}");
    let longest_reload = reload_times.iter().max().copied().unwrap_or_default();
    let longest_login = password.longest.max(fast.longest);
    eprintln!(
        "hotswap_load: {RELOADS} reloads of sasl2_fast in {run:?} (longest `module reload` {longest_reload:?}); \
         password logins {} (longest {:?}), FAST logins {} (longest {:?}, {} rotations), 0 failed; \
         {IDLE} idle sessions all answered a ping",
        password.ok, password.longest, fast.ok, fast.longest, fast.rotated
    );
    eprintln!("hotswap_load: longest login latency during the reloads: {longest_login:?}");
    eprintln!(
        "hotswap_load: server VmRSS {rss_before} KiB before, {rss_after} KiB after ({:+} KiB, {:+.1} KiB per reload)",
        rss_after as i64 - rss_before as i64,
        (rss_after as f64 - rss_before as f64) / RELOADS as f64
    );
    eprintln!(
        "hotswap_load: sasl2_fast generations retained: {} ({} running, {} draining, {} retired), \
         {fast_mapped} bytes mapped; all modules: {} generations, {all_mapped} bytes mapped",
        fast_gens.len(),
        states("running"),
        states("draining"),
        states("retired"),
        list.len()
    );
}
