//! The IM core as modules (mod_roster, mod_presence, mod_offline) against the real binary.
//!
//! - `slixmpp_two_accounts_befriend_then_offline_messages_survive_a_restart`: slixmpp 1.17,
//!   with its own roster handling (auto-authorize, auto-subscribe), logs in alice and bob; alice
//!   asks bob; bob's client approves and asks back; both rosters end in `both` and each client
//!   sees the other's presence. Alice goes away; bob sends 3 messages; the server restarts;
//!   alice logs in again in a fresh process: her roster still shows bob (`both`), and the 3
//!   messages arrive in order, each with a XEP-0203 delay from the server.
//! - `slixmpp_carbons_mirror_the_conversation_on_the_second_device`: two slixmpp resources of
//!   alice enable XEP-0280 carbons; bob writes to her bare JID (both get it), then to the first
//!   resource (the second gets a `<received/>` copy); the first answers (the second gets a
//!   `<sent/>` copy).
//! - The raw-XML tests pin down the bad inputs of the issue, each with its precise stanza error
//!   and with the stream and everything else going on.

use std::time::Duration;

use tessera_tests::interop::{
    slixmpp_driver, xmppjs_driver, ClientProcess, Finished, DRIVER_TIMEOUT_SECS,
};
use tessera_tests::sasl::Sasl2Extras;
use tessera_tests::XmppClient;
use tessera_tests::{Server, ServerOptions};

const IM: &[&str] = &[
    "sasl2", "ping", "disco", "presence", "roster", "offline", "carbons", "csi",
];

fn server() -> Server {
    let server = Server::start(&ServerOptions::with_modules(IM));
    server.add_user("alice", "alice pw", None);
    server.add_user("bob", "bob pw", None);
    server
}

/// `tests/interop/.venv/bin/python tests/interop/slix_im.py --host … --port … MODE ARGS…`.
fn slix_im(mode: &str, server: &Server, args: &[&str]) -> ClientProcess {
    let mut cmd = slixmpp_driver("slix_im.py", server.ports.direct_tls);
    cmd.arg(mode)
        .args(["--timeout", DRIVER_TIMEOUT_SECS])
        .args(args);
    ClientProcess::spawn(&format!("slixmpp {mode}"), cmd, None)
}

/// `node tests/interop/xmppjs.mjs MODE --service xmpps://… --domain localhost --user … EXTRA…`.
fn xmppjs(mode: &str, server: &Server, users: &[(&str, &str)], extra: &[&str]) -> ClientProcess {
    let service = format!("xmpp://{}", server.ports.c2s);
    let mut cmd = xmppjs_driver(mode, &service, users);
    cmd.args(extra);
    ClientProcess::spawn(&format!("xmpp.js {mode}"), cmd, None)
}

fn ok(finished: &Finished, name: &str, server: &Server) {
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "{}\n--- server log ---\n{}",
        finished.describe_as(name),
        server.logs()
    );
}

/// slixmpp's befriend mode for alice and bob ("slix" resources), checked to have succeeded.
fn befriend_with_slixmpp(server: &Server) -> Finished {
    let friends = slix_im(
        "befriend",
        server,
        &[
            "--a",
            "alice@localhost/slix:alice pw",
            "--b",
            "bob@localhost/slix:bob pw",
        ],
    )
    .finish();
    ok(&friends, "slixmpp befriend", server);
    friends
}

fn roster_of(finished: &Finished, who: &str) -> Vec<(String, String)> {
    let mut last: Vec<(String, String)> = Vec::new();
    for r in finished.events("roster") {
        if r["who"] != who {
            continue;
        }
        let contact = r["contact"].as_str().unwrap_or_default().to_owned();
        let sub = r["subscription"].as_str().unwrap_or_default().to_owned();
        last.retain(|(c, _)| *c != contact);
        last.push((contact, sub));
    }
    last
}

#[test]
fn slixmpp_two_accounts_befriend_then_offline_messages_survive_a_restart() {
    let mut server = server();
    let friends = befriend_with_slixmpp(&server);
    assert_eq!(
        roster_of(&friends, "alice@localhost"),
        [("bob@localhost".to_owned(), "both".to_owned())]
    );
    assert_eq!(
        roster_of(&friends, "bob@localhost"),
        [("alice@localhost".to_owned(), "both".to_owned())]
    );
    for (who, from) in [
        ("alice@localhost", "bob@localhost/slix"),
        ("bob@localhost", "alice@localhost/slix"),
    ] {
        assert!(
            friends
                .events("presence")
                .iter()
                .any(|p| p["who"] == who && p["from"] == from),
            "{who} did not see {from}\n{}",
            friends.describe_as("befriend")
        );
    }

    // Alice is gone; bob writes three times.
    let sent = slix_im(
        "send",
        &server,
        &[
            "--a",
            "bob@localhost/slix:bob pw",
            "--to",
            "alice@localhost",
            "--body",
            "one",
            "--body",
            "two",
            "--body",
            "three",
        ],
    )
    .finish();
    ok(&sent, "slixmpp send", &server);
    // Everything is on disk: a restart loses nothing.
    server.stop_and_restart();
    let alice = slix_im(
        "receive",
        &server,
        &["--a", "alice@localhost/again:alice pw", "--expect", "3"],
    )
    .finish();
    ok(&alice, "slixmpp receive", &server);
    assert_eq!(
        roster_of(&alice, "alice@localhost"),
        [("bob@localhost".to_owned(), "both".to_owned())],
        "the roster survived the restart"
    );
    let messages = alice.events("message");
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(
        bodies,
        ["one", "two", "three"],
        "{}",
        alice.describe_as("alice")
    );
    for m in &messages {
        assert_eq!(m["from"], "bob@localhost/slix");
        assert_eq!(m["delay_from"], "localhost", "{m}");
        assert!(
            m["delay"].as_str().is_some_and(|s| s.starts_with("20")),
            "{m}"
        );
    }
    let stamps: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["delay"].as_str())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort_unstable();
    assert_eq!(stamps, sorted, "delays in order");
}

#[test]
fn slixmpp_carbons_mirror_the_conversation_on_the_second_device() {
    let server = server();
    let run = slix_im(
        "carbons",
        &server,
        &[
            "--a",
            "alice@localhost/one:alice pw",
            "--a2",
            "alice@localhost/two:alice pw",
            "--b",
            "bob@localhost/desk:bob pw",
        ],
    )
    .finish();
    ok(&run, "slixmpp carbons", &server);
    let carbons = run.events("carbon");
    let seen: Vec<(&str, &str, &str, &str)> = carbons
        .iter()
        .map(|c| {
            (
                c["who"].as_str().unwrap_or_default(),
                c["kind"].as_str().unwrap_or_default(),
                c["from"].as_str().unwrap_or_default(),
                c["body"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        seen.contains(&(
            "alice@localhost/two",
            "received",
            "bob@localhost/desk",
            "to one"
        )),
        "{seen:?}"
    );
    assert!(
        seen.contains(&(
            "alice@localhost/two",
            "sent",
            "alice@localhost/one",
            "answer from one"
        )),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|(who, ..)| *who == "alice@localhost/one"),
        "the first resource got originals only: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(_, _, _, body)| *body == "to the bare JID"),
        "both resources took the bare message itself, so no copies: {seen:?}"
    );
}

/// XEP-0352 with slixmpp: while alice is inactive, bob's two presence updates are held; his
/// message brings the latest of them, then itself, in that order.
#[test]
fn slixmpp_csi_holds_presence_until_a_message_then_delivers_latest_presence_and_message() {
    let server = server();
    let run = slix_im(
        "csi",
        &server,
        &[
            "--a",
            "alice@localhost/phone:alice pw",
            "--b",
            "bob@localhost/desk:bob pw",
        ],
    )
    .finish();
    ok(&run, "slixmpp csi", &server);
    let held = run.events("held");
    assert_eq!(held.len(), 1, "{}", run.describe_as("csi"));
    assert_eq!(
        held[0]["received"],
        0,
        "nothing while inactive\n{}",
        run.describe_as("csi")
    );
    let after: Vec<(String, String)> = run
        .events("after-inactive")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["what"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        after,
        [
            ("presence".to_owned(), "xa".to_owned()),
            ("message".to_owned(), "wake up".to_owned())
        ],
        "{}",
        run.describe_as("csi")
    );
}

/// The same with xmpp.js (SASL2, Bind 2, raw RFC 6121 stanzas): two accounts befriend; bob
/// writes three times while alice is away; alice, in a fresh process, gets all three in order
/// with the server's delay, and her roster (versioned) shows bob with `both`.
#[test]
fn xmppjs_two_accounts_befriend_then_offline_messages_arrive_in_order() {
    let server = server();
    let users = [("alice", "alice pw"), ("bob", "bob pw")];
    let friends = xmppjs("befriend", &server, &users, &[]).finish();
    ok(&friends, "xmpp.js befriend", &server);
    let rosters = friends.events("roster");
    let last_of = |user: &str| {
        rosters
            .iter()
            .rev()
            .find(|r| r["user"] == user)
            .cloned()
            .unwrap_or_default()
    };
    let alice_roster = last_of("alice");
    assert_eq!(
        alice_roster["items"],
        serde_json::json!([["bob@localhost", "both", null]]),
        "{}",
        friends.describe_as("befriend")
    );
    assert!(alice_roster["ver"].as_str().is_some_and(|v| !v.is_empty()));
    assert_eq!(
        last_of("bob")["items"],
        serde_json::json!([["alice@localhost", "both", null]])
    );
    let sent = slix_im(
        "send",
        &server,
        &[
            "--a",
            "bob@localhost/slix:bob pw",
            "--to",
            "alice@localhost",
            "--body",
            "uno",
            "--body",
            "dos",
            "--body",
            "tres",
        ],
    )
    .finish();
    ok(&sent, "slixmpp send", &server);
    let alice = xmppjs("collect", &server, &users[..1], &["--expect", "3"]).finish();
    ok(&alice, "xmpp.js collect", &server);
    let messages = alice.events("message");
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(
        bodies,
        ["uno", "dos", "tres"],
        "{}",
        alice.describe_as("collect")
    );
    for m in &messages {
        assert_eq!(m["from"], "bob@localhost/slix");
        assert_eq!(m["delay_from"], "localhost", "{m}");
    }
}

fn error_condition(xml: &str) -> &str {
    let Some(start) = xml.find("xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'") else {
        return "";
    };
    let head = &xml[..start];
    let open = head.rfind('<').map_or(0, |i| i + 1);
    head[open..].trim()
}

fn login(server: &Server, user: &str, resource: &str) -> XmppClient {
    XmppClient::login(
        server.ports.direct_tls,
        user,
        &format!("{user} pw"),
        resource,
    )
    .0
}

#[test]
fn bad_roster_and_subscription_input_gets_its_precise_error_and_loses_nothing() {
    let server = Server::start(&ServerOptions {
        top: "roster_max_items = 2\n".into(),
        ..ServerOptions::with_modules(IM)
    });
    server.add_user("alice", "alice pw", None);
    server.add_user("bob", "bob pw", None);
    let (mut alice, alice_jid) =
        XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    alice.send("<iq type='get' id='g'><query xmlns='jabber:iq:roster'/></iq>");
    alice.read_iq("g");
    alice.send("<iq type='set' id='ok'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' name='Carol'/></query></iq>");
    assert!(alice.read_iq("ok").contains("type='result'"));
    let cases = [
        (
            "<item jid='x@localhost'/><item jid='y@localhost'/>",
            "bad-request",
        ),
        ("<item jid='a b@localhost'/>", "jid-malformed"),
        ("<item jid='alice@localhost'/>", "not-allowed"),
        ("<item jid='x@localhost'><group/></item>", "not-acceptable"),
    ];
    for (i, (items, condition)) in cases.iter().enumerate() {
        alice.send(&format!(
            "<iq type='set' id='bad{i}'><query xmlns='jabber:iq:roster'>{items}</query></iq>"
        ));
        let answer = alice.read_iq(&format!("bad{i}"));
        assert!(answer.contains("type='error'"), "{answer}");
        assert_eq!(error_condition(&answer), *condition, "{items}: {answer}");
    }
    // Up to the limit, then one more.
    alice.send("<iq type='set' id='two'><query xmlns='jabber:iq:roster'><item jid='dave@localhost'/></query></iq>");
    assert!(alice.read_iq("two").contains("type='result'"));
    alice.send("<iq type='set' id='three'><query xmlns='jabber:iq:roster'><item jid='erin@localhost'/></query></iq>");
    let full = alice.read_iq("three");
    assert_eq!(error_condition(&full), "policy-violation", "{full}");
    assert!(full.contains("the roster is full (2 items)"), "{full}");
    // A subscription to oneself; presence with a bad `to`.
    alice.send("<presence type='subscribe' to='alice@localhost' id='self'/>");
    let own = alice.read_until("</presence>");
    assert!(
        own.contains("id='self'") && own.contains("type='error'"),
        "{own}"
    );
    assert_eq!(error_condition(&own), "not-allowed", "{own}");
    alice.send("<presence to='bad@@localhost' id='badto'/>");
    let bad = alice.read_until("</presence>");
    assert_eq!(error_condition(&bad), "jid-malformed", "{bad}");
    // The roster is what it was, and the stream is fine.
    alice.send("<iq type='get' id='after'><query xmlns='jabber:iq:roster'/></iq>");
    let roster = alice.read_iq("after");
    assert!(
        roster.contains("<item jid='carol@localhost' name='Carol' subscription='none'/>")
            && roster.contains("<item jid='dave@localhost' subscription='none'/>")
            && !roster.contains("erin@")
            && !roster.contains("x@localhost"),
        "{roster}"
    );
    let mut bob = login(&server, "bob", "b");
    bob.send(&format!(
        "<message to='{alice_jid}' type='chat' id='m'><body>still here?</body></message>"
    ));
    assert!(alice.read_until("</message>").contains("still here?"));
    let _ = bob.read_for(Duration::from_millis(50));
}

#[test]
fn offline_quota_bounces_with_resource_constraint_and_unloading_offline_bounces() {
    let mut server = Server::start(&ServerOptions {
        top: "offline_max_messages = 2\n".into(),
        ..ServerOptions::with_modules(IM)
    });
    server.add_user("alice", "alice pw", None);
    server.add_user("bob", "bob pw", None);
    let mut bob = login(&server, "bob", "b");
    for i in 0..2 {
        bob.send(&format!(
            "<message to='alice@localhost' type='chat' id='k{i}'><body>kept {i}</body></message>"
        ));
    }
    bob.send("<message to='alice@localhost' type='chat' id='over'><body>over</body></message>");
    let bounce = bob.read_until("</message>");
    assert!(
        bounce.contains("id='over'") && bounce.contains("type='error'"),
        "{bounce}"
    );
    assert_eq!(error_condition(&bounce), "resource-constraint", "{bounce}");
    assert!(
        bounce.contains("type='wait'") || bounce.contains("type=\"wait\""),
        "{bounce}"
    );
    // Without mod_offline, a message to an offline account bounces service-unavailable …
    server.cli_ok(&["module", "unload", "offline"]);
    bob.send("<message to='alice@localhost' type='chat' id='gone'><body>x</body></message>");
    let unavailable = bob.read_until("</message>");
    assert!(unavailable.contains("id='gone'"), "{unavailable}");
    assert_eq!(
        error_condition(&unavailable),
        "service-unavailable",
        "{unavailable}"
    );
    // … loaded back, it is stored again (the quota has room after the two are read).
    server.cli_ok(&["module", "load", "offline"]);
    let mut alice = login(&server, "alice", "a");
    alice.send("<presence/>");
    let got = alice.read_until("kept 1");
    assert!(
        got.contains("kept 0") && got.contains("urn:xmpp:delay"),
        "{got}"
    );
    alice.send("<presence type='unavailable'/>");
    let _ = alice.read_for(Duration::from_millis(200));
    bob.send("<message to='alice@localhost' type='chat' id='back'><body>back</body></message>");
    assert_eq!(
        bob.read_for(Duration::from_millis(300)),
        "",
        "stored, not bounced"
    );
    server.stop_and_restart();
    let mut alice = login(&server, "alice", "a2");
    alice.send("<presence/>");
    assert!(alice.read_until("</message>").contains("back"));
}

/// mod_offline's share for strangers, with the real roster module telling contacts apart:
/// a sender outside alice's roster gets `<resource-constraint/>` with its own text once the
/// share is used, while a contact's messages are still stored, and everything stored arrives.
#[test]
fn strangers_cannot_fill_the_offline_mailbox_of_an_account() {
    let server = Server::start(&ServerOptions {
        top: "offline_max_messages_from_strangers = 1\n".into(),
        ..ServerOptions::with_modules(IM)
    });
    for user in ["alice", "bob", "eve"] {
        server.add_user(user, &format!("{user} pw"), None);
    }
    let mut alice = login(&server, "alice", "a");
    alice.send("<iq type='set' id='add'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>");
    assert!(alice.read_iq("add").contains("type='result'"));
    drop(alice);
    let (mut eve, mut bob) = (login(&server, "eve", "e"), login(&server, "bob", "b"));
    let send = |c: &mut XmppClient, id: &str| {
        c.send(&format!(
            "<message to='alice@localhost' type='chat' id='{id}'><body>{id}</body></message>"
        ));
    };
    send(&mut eve, "eve1");
    assert_eq!(eve.read_for(Duration::from_millis(300)), "", "stored");
    send(&mut eve, "eve2");
    let bounce = eve.read_until("</message>");
    assert!(bounce.contains("id='eve2'"), "{bounce}");
    assert_eq!(error_condition(&bounce), "resource-constraint", "{bounce}");
    assert!(
        bounce.contains("no more offline messages from senders outside their contacts"),
        "{bounce}"
    );
    for id in ["bob1", "bob2"] {
        send(&mut bob, id);
    }
    assert_eq!(
        bob.read_for(Duration::from_millis(300)),
        "",
        "a contact's are stored"
    );
    let mut alice = login(&server, "alice", "a2");
    alice.send("<presence/>");
    let got = alice.read_until("bob2</body>");
    for id in ["eve1", "bob1"] {
        assert!(got.contains(&format!("<body>{id}</body>")), "{got}");
    }
    assert!(!got.contains("eve2"), "{got}");
}

/// Carbons on a stream with no bound resource: RFC 6120 §7.1 — the stanza is not processed and
/// the stream is closed with `<not-authorized/>`; every other session goes on.
#[test]
fn carbons_enabled_before_binding_close_that_stream_only() {
    let server = server();
    let (mut bob, bob_jid) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    let mut early = XmppClient::direct_tls(server.ports.direct_tls);
    early.open();
    let outcome = early.sasl2_plain("alice", "alice pw", &Sasl2Extras::default());
    assert!(outcome.success, "{}", outcome.xml);
    early.read_until("</stream:features>");
    early.send("<iq type='set' id='c'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    let closed = early.read_to_close();
    assert!(
        closed.contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            && closed.contains("bind a resource first")
            && !closed.contains("id='c'"),
        "{closed}"
    );
    let (mut alice, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    alice.send(&format!(
        "<message to='{bob_jid}' type='chat' id='m'><body>fine</body></message>"
    ));
    assert!(bob.read_until("</message>").contains("fine"));
}

/// mod_roster and mod_offline reloaded 10 times each while alice writes 300 messages to bob,
/// who is offline, 300 to carol, who is online, and sends subscription requests: carol gets
/// every message live, bob every message once, in order, from offline storage at login, the
/// roster holds both requests, and bob is asked.
#[test]
fn roster_and_offline_reloaded_under_traffic_lose_nothing() {
    const MESSAGES: usize = 300;
    const RELOADS: usize = 10;
    // Alice is not in bob's roster: lift mod_offline's share for strangers (100), which
    // `strangers_cannot_fill_the_offline_mailbox_of_an_account` covers.
    let server = Server::start(&ServerOptions {
        top: "offline_max_messages_from_strangers = 500\n".into(),
        ..ServerOptions::with_modules(IM)
    });
    server.add_user("alice", "alice pw", None);
    server.add_user("bob", "bob pw", None);
    server.add_user("carol", "carol pw", None);
    let (mut alice, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    let (mut carol, carol_jid) =
        XmppClient::login(server.ports.direct_tls, "carol", "carol pw", "c");
    alice.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
    alice.read_iq("r0");
    // Carol reads as the messages come.
    let live = std::thread::spawn(move || {
        let mut seen = 0;
        while seen < MESSAGES {
            let chunk = carol.read_until("</message>");
            for m in chunk.split("</message>").filter(|m| m.contains("<body>")) {
                let body = m.split("<body>").nth(1).and_then(|b| b.split('<').next());
                assert_eq!(body, Some(seen.to_string().as_str()), "carol: in order");
                seen += 1;
            }
        }
        carol
    });
    let sender = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            alice.send(&format!(
                "<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message>\
                 <message to='{carol_jid}' type='chat' id='c{i}'><body>{i}</body></message>"
            ));
            match i {
                100 => alice.send("<presence type='subscribe' to='carol@localhost'/>"),
                200 => alice.send("<presence type='subscribe' to='bob@localhost'/>"),
                _ => {}
            }
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Everything before this ping has been routed when its answer comes.
        alice.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
        let seen = alice.read_until("id='sync'");
        (alice, seen)
    });
    for _ in 0..RELOADS {
        for module in ["roster", "offline"] {
            let out = server.cli_ok(&["module", "reload", module]);
            assert!(out.contains(&format!("reloaded {module}")), "{out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut alice, seen) = sender.join().expect("sender");
    let _carol = live.join().expect("carol got every message, in order");
    assert!(!seen.contains("type='error'"), "no bounce: {seen}");
    // Bob comes online: every message once, in order, then alice's request.
    let (mut bob, _) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    bob.send("<presence/>");
    let mut got: Vec<usize> = Vec::new();
    let mut text = String::new();
    while got.len() < MESSAGES {
        let chunk = bob.read_for(Duration::from_secs(3));
        assert!(
            !chunk.is_empty(),
            "bob got {} of {MESSAGES}: {text}\n--- server log ---\n{}",
            got.len(),
            server.logs()
        );
        text.push_str(&chunk);
        for m in chunk.split("</message>") {
            if let Some(body) = m.split("<body>").nth(1).and_then(|b| b.split('<').next()) {
                got.push(body.parse().expect("a number"));
            }
        }
    }
    assert_eq!(
        got,
        (0..MESSAGES).collect::<Vec<_>>(),
        "every message once, in order"
    );
    // The request may come before, between or after the stored messages.
    if !text.contains("type='subscribe'") {
        text.push_str(&bob.read_until("type='subscribe'"));
        text.push_str(&bob.read_until(">"));
    }
    assert!(
        text.contains("<presence type='subscribe' to='bob@localhost' from='alice@localhost'"),
        "{text}"
    );
    alice.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    let roster = alice.read_iq("r1");
    for contact in ["bob@localhost", "carol@localhost"] {
        assert!(
            roster.contains(&format!(
                "<item jid='{contact}' subscription='none' ask='subscribe'/>"
            )),
            "{roster}"
        );
    }
}

/// Deleting an account ends its subscriptions with every contact first (`account-deleting`):
/// someone who registers the name again does not get the contacts' presence, and the contact's
/// roster no longer shares with the name.
#[test]
fn a_name_registered_again_after_deletion_inherits_no_subscription() {
    let server = server();
    befriend_with_slixmpp(&server);
    let (mut bob, _) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    bob.send("<iq type='get' id='r0'><query xmlns='jabber:iq:roster'/></iq>");
    assert!(bob.read_iq("r0").contains("subscription='both'"));
    bob.send("<presence/>");
    bob.read_until("/>");
    server.cli_ok(&["user", "del", "alice@localhost"]);
    // Bob is told, and pushed the change.
    let told = bob.read_until("type='unsubscribed'");
    assert!(told.contains("type='unsubscribe'"), "{told}");
    bob.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    let roster = bob.read_iq("r1");
    assert!(
        roster.contains("<item jid='alice@localhost' subscription='none'/>"),
        "{roster}"
    );
    // Someone registers the name again: bob's presence does not reach them.
    server.add_user("alice", "another pw", None);
    let (mut heir, _) = XmppClient::login(server.ports.direct_tls, "alice", "another pw", "h");
    heir.send("<presence/>");
    bob.send("<presence><show>away</show></presence>");
    let seen = heir.read_for(Duration::from_millis(500));
    assert!(!seen.contains("from='bob@localhost"), "{seen}");
}
