//! mod_smacks (XEP-0198) against the real server: acknowledgements counted both ways, a
//! connection cut mid-conversation (through a relay the test controls) resumed with every
//! message exactly once, a session that never comes back leaving its messages in offline
//! storage and its contacts seeing it go, inline enable in Bind 2, a silent link detected by
//! the acknowledgement timeout, an overflowing queue, and every bad input with its precise
//! error while the server and everyone else live on.

use std::time::Duration;

use tessera_tests::interop::{slixmpp_driver, xmppjs_driver, ClientProcess, DRIVER_TIMEOUT_SECS};
use tessera_tests::relay::Relay;
use tessera_tests::sasl::Sasl2Extras;
use tessera_tests::{Server, ServerOptions, XmppClient};

const SM: &str = "urn:xmpp:sm:3";
const IM_SM: &[&str] = &[
    "sasl2", "ping", "disco", "presence", "roster", "offline", "smacks",
];

fn server_with(top: &str) -> Server {
    let mut opts = ServerOptions::with_modules(IM_SM);
    opts.top = top.to_owned();
    let server = Server::start(&opts);
    for user in ["alice", "bob", "carol"] {
        server.add_user(user, &format!("{user} pw"), None);
    }
    server
}

fn login_at(addr: std::net::SocketAddr, user: &str, tag: &str) -> (XmppClient, String) {
    XmppClient::login(addr, user, &format!("{user} pw"), tag)
}

fn chat(to: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat' id='{body}'><body>{body}</body></message>")
}

fn attr<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!(" {name}='"))? + name.len() + 3;
    let len = xml.get(start..)?.find('\'')?;
    xml.get(start..start + len)
}

/// The stanzas in a stretch of a client's stream (top-level message, presence and IQ; the
/// tests send nothing that nests them).
fn stanzas(text: &str) -> u32 {
    ["<message", "<presence", "<iq "]
        .iter()
        .map(|t| text.matches(t).count() as u32)
        .sum()
}

/// The message bodies in a stretch of stream, in order.
fn bodies(text: &str) -> Vec<String> {
    text.split("<body>")
        .skip(1)
        .filter_map(|b| b.split_once("</body>").map(|(body, _)| body.to_owned()))
        .collect()
}

/// `<enable resume='true'/>`; the resumption id.
fn enable(c: &mut XmppClient) -> String {
    c.send(&format!("<enable xmlns='{SM}' resume='true'/>"));
    let enabled = c.read_until_any(&["<enabled", "<failed"]);
    assert!(enabled.ends_with("<enabled"), "{enabled}");
    let rest = c.read_until("/>");
    attr(&rest, "id").expect("an id").to_owned()
}

/// Alice and Bob each see the other's presence (roster subscriptions both ways), then each
/// sends initial presence and sees the other's.
fn befriend(alice: &mut XmppClient, bob: &mut XmppClient) {
    for (c, user) in [(&mut *alice, "alice"), (&mut *bob, "bob")] {
        c.send("<presence/>");
        c.read_until(&format!("<presence from='{user}@localhost/"));
    }
    alice.send("<presence type='subscribe' to='bob@localhost'/>");
    bob.read_until("type='subscribe'");
    bob.send("<presence type='subscribed' to='alice@localhost'/><presence type='subscribe' to='alice@localhost'/>");
    alice.read_until("type='subscribe'");
    alice.send("<presence type='subscribed' to='bob@localhost'/>");
    // Approved: her presence reaches him.
    bob.read_until("<presence from='alice@localhost/");
}

/// A SASL2 login without binding, ready for `<resume/>`.
fn authenticated(addr: std::net::SocketAddr, user: &str) -> XmppClient {
    let mut c = XmppClient::direct_tls(addr);
    c.open();
    let outcome = c.sasl2_plain(user, &format!("{user} pw"), &Sasl2Extras::default());
    assert!(outcome.success, "{}", outcome.xml);
    c.read_until("</stream:features>");
    c
}

fn resume(c: &mut XmppClient, id: &str, h: u32) -> String {
    c.send(&format!("<resume xmlns='{SM}' previd='{id}' h='{h}'/>"));
    let answer = c.read_until_any(&["<resumed", "<failed"]);
    if answer.ends_with("<failed") {
        format!("<failed{}", c.read_until("</failed>"))
    } else {
        format!("<resumed{}", c.read_until("/>"))
    }
}

#[test]
fn a_connection_cut_mid_conversation_resumes_with_every_message_exactly_once() {
    let server = server_with("");
    let relay = Relay::start(server.ports.direct_tls);
    let (mut alice, alice_jid) = login_at(relay.addr, "alice", "phone");
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    let id = enable(&mut alice);
    alice.send("<presence/>");
    // Her own presence comes back (RFC 6121 §4.2.2): the first stanza she is sent.
    let mut seen = alice.read_until(&format!("<presence from='{alice_jid}'/>"));
    for n in 1..=3 {
        bob.send(&chat(&alice_jid, &format!("m{n}")));
    }
    seen.push_str(&alice.read_until("m3</body></message>"));
    assert_eq!(bodies(&seen), ["m1", "m2", "m3"]);
    // The server asks (smacks_max_unacked_stanzas = 0), one request at a time.
    if !seen.contains(&format!("<r xmlns='{SM}'/>")) {
        seen.push_str(&alice.read_until(&format!("<r xmlns='{SM}'/>")));
    }
    assert_eq!(
        seen.matches(&format!("<r xmlns='{SM}'/>")).count(),
        1,
        "{seen}"
    );
    // Alice acknowledges all but the last two, and asks for the server's count: her presence.
    let received = stanzas(&seen);
    assert_eq!(received, 4, "{seen}");
    alice.send(&format!(
        "<a xmlns='{SM}' h='{}'/><r xmlns='{SM}'/>",
        received - 2
    ));
    alice.read_until(&format!("<a xmlns='{SM}' h='"));
    assert_eq!(alice.read_until("'"), "1'", "her presence");

    relay.cut();
    server.wait_for_log("session detached");
    // While alice is away: to her full JID and to her bare JID (her session stays available).
    bob.send(&chat(&alice_jid, "m4"));
    bob.send(&chat(&alice_jid, "m5"));
    bob.send(&chat("alice@localhost", "m6"));
    bob.send("<iq type='get' id='ping-bob' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    bob.read_iq("ping-bob");

    let mut phone = authenticated(server.ports.direct_tls, "alice");
    let resumed = resume(&mut phone, &id, received - 2);
    assert_eq!(
        resumed,
        format!("<resumed xmlns='{SM}' previd='{id}' h='1'/>")
    );
    let replay = phone.read_until("m6</body>");
    assert_eq!(bodies(&replay), ["m2", "m3", "m4", "m5", "m6"], "{replay}");
    // The re-sent ones carry when they were first sent, from alice's bare JID.
    let m2 = replay.split("</message>").next().unwrap_or_default();
    assert!(
        m2.contains("<delay xmlns='urn:xmpp:delay' from='alice@localhost' stamp='"),
        "{m2}"
    );
    // The session lives on under the same JID, counting on from where it was.
    bob.send(&chat(&alice_jid, "m7"));
    let live = phone.read_until("m7</body></message>");
    assert_eq!(bodies(&live), ["m7"]);
    phone.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    phone.read_iq("p1");
    phone.send(&format!("<r xmlns='{SM}'/>"));
    phone.read_until(&format!("<a xmlns='{SM}' h='"));
    assert_eq!(phone.read_until("'"), "2'", "her presence, then the ping");
    // Nothing was bounced to bob, and nothing arrived twice.
    let rest = phone.read_for(Duration::from_millis(300));
    assert!(bodies(&rest).is_empty(), "{rest}");
    let bob_saw = bob.read_for(Duration::from_millis(300));
    assert!(!bob_saw.contains("type='error'"), "{bob_saw}");
}

#[test]
fn a_session_that_never_comes_back_leaves_its_messages_offline_and_goes_unavailable() {
    let server = server_with("smacks_hibernation_time = 2");
    let relay = Relay::start(server.ports.direct_tls);
    let (mut alice, alice_jid) = login_at(relay.addr, "alice", "phone");
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    befriend(&mut alice, &mut bob);
    enable(&mut alice);
    alice.send("<presence/>");
    bob.read_until(&format!("<presence from='{alice_jid}'"));
    bob.send(&chat(&alice_jid, "unacked"));
    alice.read_until("unacked</body>");
    relay.cut();
    server.wait_for_log("session detached");
    // Detached, she still looks available: no unavailable presence yet, and this queues.
    bob.send(&chat("alice@localhost", "queued"));
    let meanwhile = bob.read_for(Duration::from_millis(500));
    assert!(!meanwhile.contains("unavailable"), "{meanwhile}");
    // Expired after 2 s: her contacts see her go, nothing bounces.
    let gone = bob.read_until(&format!("<presence type='unavailable' from='{alice_jid}'"));
    assert!(!gone.contains("type='error'"), "{gone}");
    server.wait_for_log("detached session ended");
    // The messages she never acknowledged, and the one that queued, are offline: in order,
    // once each, delivered with her next available presence.
    let (mut again, _) = login_at(server.ports.direct_tls, "alice", "laptop");
    again.send("<presence/>");
    let offline = again.read_until("queued</body>");
    assert_eq!(bodies(&offline), ["unacked", "queued"], "{offline}");
    let rest = again.read_for(Duration::from_millis(300));
    assert!(bodies(&rest).is_empty(), "{rest}");
    let bob_saw = bob.read_for(Duration::from_millis(200));
    assert!(!bob_saw.contains("type='error'"), "{bob_saw}");
}

#[test]
fn bad_input_gets_the_precise_xep_0198_error_and_the_server_lives_on() {
    let server = server_with("");
    let (mut alice, _) = login_at(server.ports.direct_tls, "alice", "phone");
    let failed = |condition: &str| {
        format!("<failed xmlns='{SM}'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
    };
    // <r/> and <a/> before <enable/>.
    alice.send(&format!("<r xmlns='{SM}'/>"));
    assert!(alice
        .read_until("</failed>")
        .ends_with(&failed("unexpected-request")));
    alice.send(&format!("<a xmlns='{SM}' h='0'/>"));
    assert!(alice
        .read_until("</failed>")
        .ends_with(&failed("unexpected-request")));
    // A double <enable/>.
    let id = enable(&mut alice);
    alice.send(&format!("<enable xmlns='{SM}' resume='true'/>"));
    assert!(alice
        .read_until("</failed>")
        .ends_with(&failed("unexpected-request")));
    // Counting goes on: the ping and the r/a are what they should be.
    alice.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    alice.read_iq("p1");
    alice.send(&format!("<r xmlns='{SM}'/>"));
    alice.read_until(&format!("<a xmlns='{SM}' h='"));
    assert_eq!(alice.read_until("'"), "1'");
    // <resume/> after binding.
    let answer = resume(&mut alice, &id, 0);
    assert_eq!(answer, failed("unexpected-request"));
    // An h beyond what was sent (one IQ result): <undefined-condition/>, and the stream ends.
    alice.send(&format!("<a xmlns='{SM}' h='7'/>"));
    let end = alice.read_to_close();
    assert!(
        end.contains("<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            && end.contains("You acknowledged 7 stanzas, but I only sent you 1 so far."),
        "{end}"
    );
    // A malformed h: <invalid-xml/>.
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    enable(&mut bob);
    bob.send(&format!("<a xmlns='{SM}' h='-1'/>"));
    let end = bob.read_to_close();
    assert!(
        end.contains("<invalid-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            && (end.contains(
                "&apos;h&apos; must be an integer from 0 to 4294967295, not &apos;-1&apos;"
            ) || end.contains("'h' must be an integer from 0 to 4294967295, not '-1'")),
        "{end}"
    );
    // The server lives on: a fresh login works and counts from zero.
    let (mut carol, _) = login_at(server.ports.direct_tls, "carol", "tab");
    enable(&mut carol);
    carol.send(&format!("<r xmlns='{SM}'/>"));
    assert!(carol
        .read_until("/>")
        .ends_with(&format!("<a xmlns='{SM}' h='0'/>")));
}

#[test]
fn resumption_is_refused_precisely_for_unknown_foreign_stale_and_overcounted_ids() {
    let server = server_with("");
    let (mut alice, alice_jid) = login_at(server.ports.direct_tls, "alice", "phone");
    let id = enable(&mut alice);
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    bob.send(&chat(&alice_jid, "secret"));
    alice.read_until("secret</body>");
    drop(alice);
    server.wait_for_log("session detached");
    let not_found = format!(
        "<failed xmlns='{SM}'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
    );
    // Bob holds alice's id: for him it does not exist, and nothing of hers leaks.
    let mut thief = authenticated(server.ports.direct_tls, "bob");
    assert_eq!(resume(&mut thief, &id, 0), not_found);
    let leaked = thief.read_for(Duration::from_millis(300));
    assert!(!leaked.contains("secret"), "{leaked}");
    // Unknown ids.
    let mut other = authenticated(server.ports.direct_tls, "alice");
    assert_eq!(
        resume(&mut other, "00000000000000000000000000000000", 0),
        not_found
    );
    // An h beyond the one message sent: refused, and the session stays resumable.
    assert_eq!(
        resume(&mut other, &id, 5),
        format!(
            "<failed xmlns='{SM}' h='0'><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <handled-count-too-high h='5' send-count='1'/></failed>"
        )
    );
    // A malformed h.
    other.send(&format!("<resume xmlns='{SM}' previd='{id}' h='many'/>"));
    assert!(other.read_until("</failed>").ends_with(&format!(
        "<failed xmlns='{SM}'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
    )));
    // A password change ends the detached session: resuming afterwards fails.
    let out = server.cli(&["user", "passwd", "alice"], "alice pw\n");
    assert!(out.status.success(), "{out:?}");
    server.wait_for_log("detached session ended");
    let mut late = authenticated(server.ports.direct_tls, "alice");
    assert_eq!(resume(&mut late, &id, 0), not_found);
}

#[test]
fn resuming_a_session_whose_old_connection_is_still_open_closes_it_with_conflict() {
    let server = server_with("");
    let (mut old, old_jid) = login_at(server.ports.direct_tls, "alice", "phone");
    let id = enable(&mut old);
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    bob.send(&chat(&old_jid, "one"));
    old.read_until("one</body>");
    let mut new = authenticated(server.ports.direct_tls, "alice");
    assert_eq!(
        resume(&mut new, &id, 0),
        format!("<resumed xmlns='{SM}' previd='{id}' h='0'/>")
    );
    let replay = new.read_until("</message>");
    assert_eq!(bodies(&replay), ["one"]);
    let end = old.read_to_close();
    assert!(
        end.contains("<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{end}"
    );
    // The new connection serves the JID; nothing of the old one's end reaches it.
    bob.send(&chat(&old_jid, "two"));
    let live = new.read_until("two</body></message>");
    assert_eq!(bodies(&live), ["two"], "{live}");
    let rest = new.read_for(Duration::from_millis(300));
    assert!(
        !rest.contains("stream:error") && bodies(&rest).is_empty(),
        "{rest}"
    );
}

#[test]
fn bind2_enables_inline_and_counts_from_the_bound_session_on() {
    let server = server_with("");
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    c.send(&format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>{}</initial-response>\
         <bind xmlns='urn:xmpp:bind:0'><tag>phone</tag><enable xmlns='{SM}' resume='true'/></bind></authenticate>",
        tessera_tests::sasl::b64(b"\0alice\0alice pw")
    ));
    let success = c.read_until("</success>");
    let bound = success.split("<bound").nth(1).expect("bound");
    assert!(
        bound.contains(&format!("<enabled xmlns='{SM}' id='")),
        "{success}"
    );
    let id = attr(bound, "id").expect("id").to_owned();
    // Not offered again (a client would enable twice: fluux-messenger #380, xmpp.js 0.14).
    let features = c.read_until("</stream:features>");
    assert!(
        !features.contains(&format!("<sm xmlns='{SM}'/>")),
        "{features}"
    );
    c.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    c.read_iq("p1");
    c.send(&format!("<r xmlns='{SM}'/>"));
    c.read_until(&format!("<a xmlns='{SM}' h='"));
    assert_eq!(c.read_until("'"), "1'");
    drop(c);
    server.wait_for_log("session detached");
    // The IQ result was counted: acknowledging none, it comes again.
    let mut again = authenticated(server.ports.direct_tls, "alice");
    assert_eq!(
        resume(&mut again, &id, 0),
        format!("<resumed xmlns='{SM}' previd='{id}' h='1'/>")
    );
    let replay = again.read_until("id='p1'");
    let replay = format!("{replay}{}", again.read_until("/>"));
    assert!(!replay.contains("urn:xmpp:delay"), "{replay}");
}

#[test]
fn a_silent_link_is_detected_by_the_ack_timeout_and_the_session_stays_resumable() {
    let server = server_with("smacks_ack_timeout = 5");
    let relay = Relay::start(server.ports.direct_tls);
    let (mut alice, alice_jid) = login_at(relay.addr, "alice", "phone");
    let id = enable(&mut alice);
    relay.freeze(true);
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    bob.send(&chat(&alice_jid, "into the void"));
    // No answer to the server's <r/>: after 5 s the connection counts as dead.
    let log = server.wait_for_log("no acknowledgement within 5000 ms");
    assert!(log.contains("session detached"), "{log}");
    let mut phone = authenticated(server.ports.direct_tls, "alice");
    assert_eq!(
        resume(&mut phone, &id, 0),
        format!("<resumed xmlns='{SM}' previd='{id}' h='0'/>")
    );
    assert_eq!(bodies(&phone.read_until("</message>")), ["into the void"]);
}

#[test]
fn an_overflowing_queue_ends_the_detached_session_and_nothing_is_lost() {
    let server = server_with("smacks_max_queue_size = 3");
    let (mut alice, alice_jid) = login_at(server.ports.direct_tls, "alice", "phone");
    let id = enable(&mut alice);
    alice.send("<presence/>");
    alice.read_until(&format!("<presence from='{alice_jid}'/>"));
    drop(alice);
    server.wait_for_log("session detached");
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    for n in 1..=5 {
        bob.send(&chat(&alice_jid, &format!("q{n}")));
    }
    let log = server.wait_for_log("detached session ended");
    assert!(log.contains("too many unacknowledged stanzas"), "{log}");
    let mut late = authenticated(server.ports.direct_tls, "alice");
    assert!(resume(&mut late, &id, 1).contains("item-not-found"));
    let (mut again, _) = login_at(server.ports.direct_tls, "alice", "laptop");
    again.send("<presence/>");
    let offline = again.read_until("q5</body>");
    assert_eq!(
        bodies(&offline),
        ["q1", "q2", "q3", "q4", "q5"],
        "{offline}"
    );
}

#[test]
fn sasl2_resumes_inline_in_one_round_trip_instead_of_binding() {
    let server = server_with("");
    let (mut old, old_jid) = login_at(server.ports.direct_tls, "alice", "phone");
    let id = enable(&mut old);
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    bob.send(&chat(&old_jid, "while-away"));
    old.read_until("while-away</body>");
    drop(old);
    server.wait_for_log("session detached");
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    let features = c.open();
    assert!(
        features.contains(&format!("<inline><sm xmlns='{SM}'/>"))
            || features.contains(&format!("<sm xmlns='{SM}'/>")),
        "{features}"
    );
    // With a Bind 2 request too: the resumption wins, and binding is skipped.
    c.send(&format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>{}</initial-response>\
         <resume xmlns='{SM}' previd='{id}' h='0'/><bind xmlns='urn:xmpp:bind:0'><tag>phone</tag></bind></authenticate>",
        tessera_tests::sasl::b64(b"\0alice\0alice pw")
    ));
    let success = c.read_until("</success>");
    assert!(
        success.contains(&format!(
            "<authorization-identifier>{old_jid}</authorization-identifier>"
        )) && success.contains(&format!("<resumed xmlns='{SM}' previd='{id}' h='0'/>"))
            && !success.contains("<bound"),
        "{success}"
    );
    // After </success>: the unacknowledged message, and no stream features.
    let after = c.read_until("</message>");
    assert!(!after.contains("stream:features"), "{after}");
    assert_eq!(bodies(&after), ["while-away"]);
    bob.send(&chat(&old_jid, "live"));
    assert_eq!(bodies(&c.read_until("</message>")), ["live"]);
    // A refused inline resumption leaves its <failed/> in <success/>, and Bind 2 goes on.
    let mut other = XmppClient::direct_tls(server.ports.direct_tls);
    other.open();
    other.send(&format!(
        "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>{}</initial-response>\
         <resume xmlns='{SM}' previd='nope' h='0'/><bind xmlns='urn:xmpp:bind:0'><tag>tablet</tag></bind></authenticate>",
        tessera_tests::sasl::b64(b"\0alice\0alice pw")
    ));
    let success = other.read_until("</success>");
    assert!(
        success.contains(&format!(
            "<failed xmlns='{SM}'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
        )) && success.contains("<bound xmlns='urn:xmpp:bind:0'"),
        "{success}"
    );
    other.read_until("</stream:features>");
}

/// slixmpp's own XEP-0198 plugin: enabled with resumption, its connection cut through the relay
/// mid-conversation; it connects again by itself, its plugin resumes, and every message sent
/// before and meanwhile arrives exactly once.
#[test]
fn slixmpp_resumes_after_its_connection_is_cut_and_gets_every_message_once() {
    let server = server_with("");
    let relay = Relay::start(server.ports.direct_tls);
    let mut cmd = slixmpp_driver("slix_sm.py", relay.addr);
    cmd.args(["resume", "--a", "alice@localhost:alice pw", "--expect", "6"])
        .args(["--timeout", DRIVER_TIMEOUT_SECS]);
    let mut slix = ClientProcess::spawn("slixmpp sm", cmd, None);
    let online = slix.wait_event("online", &server);
    let alice_jid = online["jid"].as_str().expect("jid").to_owned();
    assert!(
        online["sm_id"].as_str().is_some_and(|id| id.len() == 32),
        "{online}"
    );
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    for n in 1..=3 {
        bob.send(&chat(&alice_jid, &format!("s{n}")));
    }
    for _ in 1..=3 {
        slix.wait_event("message", &server);
    }
    relay.cut();
    slix.wait_event("disconnected", &server);
    for n in 4..=6 {
        bob.send(&chat(&alice_jid, &format!("s{n}")));
    }
    let resumed = slix.wait_event("resumed", &server);
    assert!(resumed["h"].as_u64().is_some(), "{resumed}");
    let finished = slix.finish();
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "{}\n--- server log ---\n{}",
        finished.describe_as("slixmpp sm"),
        server.logs()
    );
    let done = finished.events("done");
    let bodies: Vec<&str> = done[0]["bodies"]
        .as_array()
        .expect("bodies")
        .iter()
        .filter_map(|b| b.as_str())
        .collect();
    assert_eq!(
        bodies,
        ["s1", "s2", "s3", "s4", "s5", "s6"],
        "{}",
        finished.describe()
    );
    assert!(
        finished.events("sm_failed").is_empty(),
        "{}",
        finished.describe()
    );
    assert!(server.logs().contains("session resumed"));
}

/// xmpp.js (@xmpp/client 0.14): stream management enabled inline in Bind 2, its connection cut
/// through the relay; its reconnect module connects again and resumes inline in SASL2, and
/// every message arrives exactly once.
///
/// The messages after the cut are sent once xmpp.js reports the resumption: when stanzas
/// follow a SASL2 `<success/>` carrying `<resumed/>` within the same moment, xmpp.js 0.14 now
/// and then fails to parse them ("stream:stream must be closed", then a null parser) although
/// the bytes it logged are well-formed and its own parser takes them in a standalone run.
/// Messages queued while a session is detached and replayed after `</success>` are shown
/// with slixmpp and on the wire above.
#[test]
fn xmppjs_enables_inline_and_resumes_inline_after_a_lost_connection() {
    let server = server_with("");
    let relay = Relay::start(server.ports.direct_tls);
    let service = format!("xmpps://{}", relay.addr);
    let mut cmd = xmppjs_driver("resume", &service, &[("alice", "alice pw")]);
    cmd.args(["--expect", "6"]);
    let mut js = ClientProcess::spawn("xmpp.js sm", cmd, None);
    let online = js.wait_event("online", &server);
    assert_eq!(online["sasl2"], true, "{online}");
    assert_eq!(online["bind2"], true, "{online}");
    assert_eq!(
        online["sm_inline"], true,
        "Bind 2's <bound/> carried <enabled/>: {online}"
    );
    let sm = js.wait_event("sm", &server);
    assert_eq!(sm["enabled"], true, "{sm}");
    let alice_jid = online["jid"].as_str().expect("jid").to_owned();
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    for n in 1..=3 {
        bob.send(&chat(&alice_jid, &format!("j{n}")));
    }
    for _ in 1..=3 {
        js.wait_event("message", &server);
    }
    relay.cut();
    js.wait_event("disconnected", &server);
    let resumed = js.wait_event("resumed", &server);
    assert_eq!(resumed["inline"], true, "resumed inside SASL2: {resumed}");
    for n in 4..=6 {
        bob.send(&chat(&alice_jid, &format!("j{n}")));
    }
    let finished = js.finish();
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "{}\n--- server log ---\n{}",
        finished.describe_as("xmpp.js sm"),
        server.logs()
    );
    let bodies: Vec<String> = finished
        .events("message")
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        bodies,
        ["j1", "j2", "j3", "j4", "j5", "j6"],
        "{}",
        finished.describe()
    );
}

/// XEP-0198 pitfall 2 (MongooseIM #2378): messages routed to a hibernated session while it is
/// being resumed arrive once each, in order — none stays behind with the old session, none is
/// sent twice.
#[test]
fn messages_sent_during_a_resumption_arrive_once_each_in_order() {
    let server = server_with("");
    let (mut old, alice_jid) = login_at(server.ports.direct_tls, "alice", "phone");
    let id = enable(&mut old);
    drop(old);
    server.wait_for_log("session detached");
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    let mut phone = authenticated(server.ports.direct_tls, "alice");
    let to = alice_jid.clone();
    let sender = std::thread::spawn(move || {
        for n in 1..=50 {
            bob.send(&chat(&to, &format!("n{n}")));
        }
        bob
    });
    assert!(resume(&mut phone, &id, 0).starts_with("<resumed"));
    let _bob = sender.join().expect("sender");
    let got = phone.read_until("n50</body>");
    let expected: Vec<String> = (1..=50).map(|n| format!("n{n}")).collect();
    assert_eq!(bodies(&got), expected);
    let rest = phone.read_for(Duration::from_millis(300));
    assert!(bodies(&rest).is_empty(), "{rest}");
}

/// Hot swap: mod_smacks reloaded with 100 resumable sessions, 30 of them detached: the state is
/// the host's, so every detached one resumes with its counters and every live one goes on
/// counting.
#[test]
fn a_reload_keeps_a_hundred_sessions_resumable_with_their_counters() {
    let server = server_with("");
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    let mut live = Vec::new();
    let mut detached = Vec::new();
    for n in 0..100 {
        let (mut c, jid) = login_at(server.ports.direct_tls, "alice", &format!("r{n}"));
        let id = enable(&mut c);
        // Each session handles n % 3 + 1 pings and is sent one message.
        for p in 0..(n % 3 + 1) {
            c.send(&format!(
                "<iq type='get' id='p{p}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
            ));
            c.read_iq(&format!("p{p}"));
        }
        bob.send(&chat(&jid, &format!("to-{n}")));
        c.read_until(&format!("to-{n}</body>"));
        if n % 10 < 3 {
            detached.push((n, id, jid));
            drop(c);
        } else {
            live.push((n, c));
        }
    }
    server.wait_for_log("session detached");
    server.cli_ok(&["module", "reload", "smacks"]);
    for (n, mut c) in live {
        c.send(&format!("<r xmlns='{SM}'/>"));
        c.read_until(&format!("<a xmlns='{SM}' h='"));
        assert_eq!(c.read_until("'"), format!("{}'", n % 3 + 1), "session {n}");
    }
    for (n, id, jid) in detached {
        let mut phone = authenticated(server.ports.direct_tls, "alice");
        // Acknowledging the pings' results only: the message comes again.
        let pings = n % 3 + 1;
        assert_eq!(
            resume(&mut phone, &id, pings),
            format!("<resumed xmlns='{SM}' previd='{id}' h='{pings}'/>"),
            "session {n}"
        );
        let again = phone.read_until("</message>");
        assert_eq!(bodies(&again), [format!("to-{n}")], "{again}");
        assert!(again.contains(&format!("to='{jid}'")), "{again}");
    }
}

/// Without offline storage, what an expired session never acknowledged bounces: with
/// `<recipient-unavailable/>` to a contact who saw it available, with `<service-unavailable/>`
/// to a stranger (no presence leak).
#[test]
fn without_offline_storage_unacknowledged_messages_bounce_precisely() {
    let mut opts = ServerOptions::with_modules(&["sasl2", "ping", "presence", "roster", "smacks"]);
    opts.top = "smacks_hibernation_time = 1".into();
    let server = Server::start(&opts);
    for user in ["alice", "bob", "carol"] {
        server.add_user(user, &format!("{user} pw"), None);
    }
    let (mut alice, alice_jid) = login_at(server.ports.direct_tls, "alice", "phone");
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    let (mut carol, _) = login_at(server.ports.direct_tls, "carol", "tab");
    befriend(&mut alice, &mut bob);
    enable(&mut alice);
    bob.send(&chat(&alice_jid, "from-bob"));
    carol.send(&chat(&alice_jid, "from-carol"));
    // From two senders: in either order.
    let first = alice.read_until_any(&["from-bob</body>", "from-carol</body>"]);
    let second = if first.ends_with("from-bob</body>") {
        "from-carol</body>"
    } else {
        "from-bob</body>"
    };
    alice.read_until(second);
    drop(alice);
    server.wait_for_log("detached session ended");
    let bounced = bob.read_until("</message>");
    assert!(
        bounced.contains("type='error'")
            && bounced
                .contains("<recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{bounced}"
    );
    let bounced = carol.read_until("</message>");
    assert!(
        bounced.contains("type='error'")
            && bounced
                .contains("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
            && !bounced.contains("recipient-unavailable"),
        "{bounced}"
    );
}

/// A client that never acknowledges cannot make the server hold what it is sent: past
/// `smacks_max_queue_size` unacknowledged stanzas (here the answers to its own pings) its
/// session ends with `<policy-violation/>`, and the server lives on.
#[test]
fn a_client_that_never_acknowledges_is_closed_at_the_queue_bound() {
    let server = server_with("smacks_max_queue_size = 5");
    let (mut alice, _) = login_at(server.ports.direct_tls, "alice", "phone");
    enable(&mut alice);
    // One at a time, each answer read (and never acknowledged).
    let mut answered = 0;
    let mut end = String::new();
    for n in 0..10 {
        alice.send(&format!(
            "<iq type='get' id='p{n}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let got = alice.read_until_any(&[&format!("id='p{n}'"), "</stream:stream>"]);
        if got.ends_with("</stream:stream>") {
            end = got;
            break;
        }
        answered += 1;
    }
    if end.is_empty() {
        end = alice.read_to_close();
    }
    assert!(
        end.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            && end.contains("Too many unacknowledged stanzas"),
        "{end}"
    );
    assert_eq!(
        answered, 6,
        "the sixth unacknowledged answer is one too many: {end}"
    );
    let (mut bob, _) = login_at(server.ports.direct_tls, "bob", "desk");
    bob.send("<iq type='get' id='alive' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    bob.read_iq("alive");
}
