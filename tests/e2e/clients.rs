//! XEP-0494 Client Access Management (mod_client_management with mod_sasl2_fast) with real
//! clients, against the real `tessera` binary: two xmpp.js installations of alice
//! (tests/interop/fast.mjs, each with its own SASL2 user-agent id and FAST token) are listed and
//! one is revoked by slixmpp's own xep_0494 plugin (tests/interop/slix_cam.py), then by the
//! operator through the admin socket (`tessera client list|revoke`).
//!
//! What it proves:
//! - The list holds each client with what it sent (`<software/>`), how it can log in (password
//!   and/or FAST token), whether it is connected, and the listing session itself (slixmpp sends
//!   no user-agent id: it is its own entry).
//! - slixmpp 1.17's `revoke()` sends `<revoke/>` in an IQ get (the XEP says set): the server
//!   answers `<bad-request/>` with the reason and revokes nothing; the same `<revoke/>` in a set
//!   revokes. The revoked client gets `<not-authorized/>` as a stream error at once, its token no
//!   longer logs in, and the other client stays connected. It once logged in with the password,
//!   so the answer is XEP-0494's `<service-unavailable/>` + `<password-reset-required/>`, and it
//!   stays listed by the password alone.
//! - `tessera client revoke` does the same for the other client and says a password change is
//!   needed to keep it out; an unknown id, an unknown account and another account's client id
//!   get precise errors.

use std::path::Path;

use serde_json::Value;
use tessera_tests::interop::{node_driver, slixmpp_driver, ClientProcess, Finished};
use tessera_tests::{Server, ServerOptions};

const ALICE: (&str, &str) = ("alice", "alice-pass-1");
const BOB: (&str, &str) = ("bob", "bob-pass-2");

fn server() -> Server {
    let server = Server::start(&ServerOptions::with_modules(&[
        "sasl2",
        "sasl2_fast",
        "client_management",
        "ping",
        "disco",
        "presence",
        "roster",
    ]));
    for (user, password) in [ALICE, BOB] {
        server.add_user(user, password, None);
    }
    server
}

/// One xmpp.js installation of alice: `fast.mjs` with its state file and `<software/>`.
fn xmppjs(
    server: &Server,
    state: &Path,
    software: &str,
    password: bool,
    stay: bool,
) -> ClientProcess {
    let mut cmd = node_driver("fast.mjs");
    cmd.args(["--service", &format!("xmpp://{}", server.ports.c2s)])
        .args(["--domain", "localhost", "--user", ALICE.0])
        .arg("--state")
        .arg(state)
        .args(["--software", software])
        .args(["--timeout", "90"]);
    if password {
        cmd.args(["--password", ALICE.1]);
    }
    if stay {
        cmd.arg("--stay");
    }
    ClientProcess::spawn(&format!("xmpp.js {software}"), cmd, None)
}

/// `slix_cam.py` as `user`, revoking by software name or id.
fn slixmpp(server: &Server, (user, password): (&str, &str), revoke: &[&str]) -> Finished {
    let mut cmd = slixmpp_driver("slix_cam.py", server.ports.c2s);
    cmd.args(["--jid", &format!("{user}@localhost/cam")])
        .args(["--password", password])
        .args(revoke);
    ClientProcess::spawn("slixmpp xep_0494", cmd, None).finish()
}

fn by_software<'a>(clients: &'a Value, software: &str) -> Option<&'a Value> {
    clients
        .as_array()?
        .iter()
        .find(|c| c["software"] == software)
}

fn auth(client: &Value) -> Vec<&str> {
    client["auth"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The first `{"event": EVENT}` line of a finished client carries `condition`.
fn assert_first_condition(run: &Finished, event: &str, condition: &str) {
    assert_eq!(
        run.events(event).first().map(|e| e["condition"].clone()),
        Some(Value::from(condition)),
        "{}",
        run.describe()
    );
}

#[test]
fn two_real_clients_are_listed_and_revoked_one_by_one_by_slixmpp_and_the_operator() {
    let server = server();
    let dir = tempfile::tempdir().expect("tempdir");
    let (phone_state, laptop_state) = (
        dir.path().join("phone.json"),
        dir.path().join("laptop.json"),
    );

    // The phone logs in once with its password (and gets a token), then with its token only,
    // and stays; the laptop logs in with its password (and gets a token) and stays.
    let first = xmppjs(&server, &phone_state, "phone-app", true, false).finish();
    assert!(first.success(), "{}", first.describe());
    let mut phone = xmppjs(&server, &phone_state, "phone-app", false, true);
    phone.wait_event("online", &server);
    let mut laptop = xmppjs(&server, &laptop_state, "laptop-app", true, true);
    laptop.wait_event("online", &server);

    let run = slixmpp(&server, ALICE, &["--revoke-software", "phone-app"]);
    let context = format!("{}\n--- server log ---\n{}", run.describe(), server.logs());
    assert!(run.success(), "{context}");
    let lists = run.events("clients");
    assert_eq!(lists.len(), 2, "{context}");
    let before = &lists[0]["clients"];
    assert_eq!(before.as_array().map(Vec::len), Some(3), "{context}");
    let phone_entry = by_software(before, "phone-app").unwrap_or_else(|| panic!("{context}"));
    assert_eq!(phone_entry["connected"], true, "{context}");
    assert_eq!(phone_entry["type"], "session", "{context}");
    assert_eq!(phone_entry["permission"], "unrestricted", "{context}");
    assert_eq!(
        auth(phone_entry),
        ["password", "fast", "token"],
        "{context}"
    );
    assert!(
        phone_entry["first_seen"].is_string() && phone_entry["last_seen"].is_string(),
        "{phone_entry}\n{context}"
    );
    let laptop_entry = by_software(before, "laptop-app").unwrap_or_else(|| panic!("{context}"));
    assert_eq!(laptop_entry["connected"], true, "{context}");
    assert_eq!(
        auth(laptop_entry),
        ["password", "fast", "token"],
        "{context}"
    );
    // The listing session itself: no user-agent id, its resource as the device.
    let own = by_software(before, "unknown").unwrap_or_else(|| panic!("{context}"));
    assert_eq!(
        (&own["device"], &own["connected"]),
        (&Value::from("cam"), &Value::from(true))
    );

    let revokes = run.events("revoke");
    assert_eq!(revokes.len(), 2, "{context}");
    assert_eq!(revokes[0]["via"], "plugin");
    assert_eq!(revokes[0]["ok"], false, "{context}");
    assert_eq!(revokes[0]["condition"], "bad-request", "{context}");
    assert_eq!(
        revokes[0]["text"], "<revoke/> is sent in an IQ set",
        "{context}"
    );
    assert_eq!(revokes[1]["via"], "set");
    assert_eq!(revokes[1]["ok"], false, "{context}");
    assert_eq!(revokes[1]["condition"], "service-unavailable", "{context}");
    assert_eq!(
        revokes[1]["app"],
        serde_json::json!(["{urn:xmpp:cam:0}password-reset-required"]),
        "{context}"
    );
    let after = &lists[1]["clients"];
    let phone_after = by_software(after, "phone-app").unwrap_or_else(|| panic!("{context}"));
    assert_eq!(
        auth(phone_after),
        ["password"],
        "its token is gone\n{context}"
    );
    assert_eq!(phone_after["connected"], false, "{context}");
    assert_eq!(
        by_software(after, "laptop-app").map(|c| c["connected"].clone()),
        Some(Value::from(true)),
        "the other client is untouched\n{context}"
    );

    // The phone was told at once, and its token no longer logs in.
    let phone = phone.finish();
    assert_first_condition(&phone, "stream-error", "not-authorized");
    let again = xmppjs(&server, &phone_state, "phone-app", false, false).finish();
    assert!(!again.success(), "{}", again.describe());
    assert_first_condition(&again, "failure", "not-authorized");

    // The operator: the list, then the laptop (its last login used the password).
    let listed = server.cli_ok(&["client", "list", "alice@localhost"]);
    let row = listed
        .lines()
        .find(|l| l.contains("laptop-app"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains("password+fast"), "{listed}");
    // The operator sees each client's user-agent id (the XMPP list does not carry it).
    let laptop_ua: Value =
        serde_json::from_str(&std::fs::read_to_string(&laptop_state).expect("laptop state"))
            .expect("laptop state is JSON");
    let laptop_ua = laptop_ua["user_agent_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !laptop_ua.is_empty() && row.contains(&laptop_ua),
        "{listed}"
    );
    assert!(
        !run.stdout().contains(&laptop_ua) && !run.stderr.contains(&laptop_ua),
        "the XMPP list carries no user-agent id\n{context}"
    );
    let phone_row = listed
        .lines()
        .find(|l| l.contains("phone-app"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        phone_row.contains(" password ") && phone_row.contains(" 0 "),
        "{listed}"
    );
    let laptop_id = row.split_whitespace().next().unwrap_or_default().to_owned();

    // Bob cannot revoke alice's client, even knowing its id.
    let bob = slixmpp(&server, BOB, &["--revoke-id", &laptop_id]);
    let revokes = bob.events("revoke");
    assert_eq!(
        revokes.get(1).map(|r| r["condition"].clone()),
        Some(Value::from("item-not-found")),
        "{}",
        bob.describe()
    );

    let revoked = server.cli_ok(&["client", "revoke", "alice", &laptop_id]);
    assert!(
        revoked.contains(&format!(
            "revoked {laptop_id}: 1 token(s) removed, 1 session(s) closed"
        )) && revoked.contains("change the password (tessera user passwd alice)"),
        "{revoked}"
    );
    let laptop = laptop.finish();
    assert_first_condition(&laptop, "stream-error", "not-authorized");
    // Still listed: it knows the password. Bad requests, each with its error.
    let listed = server.cli_ok(&["client", "list", "alice"]);
    assert!(listed.contains("laptop-app"), "{listed}");
    for (args, expected) in [
        (
            vec!["client", "revoke", "alice", "nope"],
            "tessera: alice has no client `nope`",
        ),
        (
            vec!["client", "list", "nobody"],
            "tessera: no such account `nobody`",
        ),
        (
            vec!["client", "list", "alice@example.org"],
            "tessera: alice@example.org: this server serves localhost, not example.org",
        ),
    ] {
        let out = server.cli(&args, "");
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            expected,
            "{args:?}"
        );
    }
}
