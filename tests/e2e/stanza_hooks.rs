//! Stanza hooks end to end (plugin API 2): the fixture module `fixture_stanza` hooks every
//! point; real clients over TLS show the priority order, rewriting, stopping, answering and
//! bouncing, the undeliverable path, session filters with per-session state, the two send
//! paths, that a panicking hook costs only its stanza, and sessions kept without a connection
//! (detached, resumed on a new stream, ended) with their lifecycle events.

use std::time::Duration;

use tessera_tests::{https, Server, ServerOptions, XmppClient};

fn server() -> Server {
    let s = Server::start(&ServerOptions::with_modules(&["sasl2", "fixture_stanza"]));
    for user in ["alice", "bob", "carol"] {
        s.add_user(user, &format!("{user} pw"), None);
    }
    s
}

fn login(server: &Server, user: &str) -> (XmppClient, String) {
    XmppClient::login(server.ports.direct_tls, user, &format!("{user} pw"), "t")
}

fn message(to: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat'><body>{body}</body></message>")
}

/// The body of the next message `client` receives.
fn next_body(client: &mut XmppClient) -> String {
    let xml = client.read_until("</message>");
    let start = xml.find("<body>").map(|i| i + 6).unwrap_or(0);
    let end = xml[start..]
        .find("</body>")
        .map_or(xml.len(), |e| start + e);
    xml[start..end].to_owned()
}

/// Send an IQ set and read its whole answer.
fn iq(client: &mut XmppClient, id: &str, child: &str) -> String {
    client.send(&format!("<iq type='set' id='{id}'>{child}</iq>"));
    client.read_iq(id)
}

#[test]
fn hooks_run_in_priority_order_and_their_rewrites_reach_the_recipient() {
    let server = server();
    let (mut alice, _) = login(&server, "alice");
    let (mut bob, bob_jid) = login(&server, "bob");
    alice.send(&message(&bob_jid, "hello"));
    assert_eq!(next_body(&mut bob), "hello [in10] [in0] [full]");
    alice.send(&message("bob@localhost", "hi"));
    assert_eq!(next_body(&mut bob), "hi [in10] [in0] [bare]");
}

#[test]
fn a_hook_can_drop_refuse_or_answer_a_stanza() {
    let server = server();
    let (mut alice, _) = login(&server, "alice");
    let (mut bob, bob_jid) = login(&server, "bob");
    alice.send(&message(&bob_jid, "drop"));
    alice.send(&message(&bob_jid, "refuse"));
    let error = alice.read_until("</message>");
    assert!(
        error.contains("type='error'")
            && error.contains("<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
            && error.contains("refused by fixture_stanza")
            && error.contains("type='modify'"),
        "{error}"
    );
    alice.send(&message(&bob_jid, "echo"));
    assert_eq!(next_body(&mut alice), "echo: echo");
    alice.send(&message(&bob_jid, "after"));
    assert_eq!(
        next_body(&mut bob),
        "after [in10] [in0] [full]",
        "dropped, refused and answered stanzas never reached bob"
    );
}

#[test]
fn a_panicking_hook_bounces_only_its_stanza_and_everyone_lives_on() {
    let server = server();
    let (mut alice, _) = login(&server, "alice");
    let (mut bob, bob_jid) = login(&server, "bob");
    let (mut carol, carol_jid) = login(&server, "carol");
    alice.send(&message(&bob_jid, "panic"));
    let bounce = alice.read_until("</message>");
    assert!(
        bounce.contains("type='error'")
            && bounce
                .contains("<internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{bounce}"
    );
    let log = server.wait_for_log("plugin panicked");
    assert!(log.contains("plugin=fixture_stanza"), "{log}");
    alice.send(&message(&bob_jid, "still here"));
    assert_eq!(next_body(&mut bob), "still here [in10] [in0] [full]");
    bob.send(&message(&carol_jid, "and here"));
    assert_eq!(next_body(&mut carol), "and here [in10] [in0] [full]");
    assert!(!alice.is_closed() && !bob.is_closed() && !carol.is_closed());
}

#[test]
fn undeliverable_messages_are_stored_by_the_module_or_bounced_by_the_host() {
    let server = server();
    let (mut alice, _) = login(&server, "alice");
    alice.send("<message to='carol@localhost' id='kept'><body>please store this</body></message>");
    alice.send("<message to='carol@localhost' id='lost'><body>nothing to keep</body></message>");
    let bounce = alice.read_until("</message>");
    assert!(
        bounce.contains("type='error'")
            && bounce
                .contains("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
            && bounce.contains("id='lost'"),
        "only the message the module did not store bounces: {bounce}"
    );
    let get = |path: &str| https(server.ports.http, "GET", path, &[], b"");
    let stored = get("/test/stanza/stored?user=carol");
    assert_eq!(stored.status, 200);
    let (alice_jid, text) = stored.body.split_once(' ').unwrap_or_default();
    assert!(alice_jid.starts_with("alice@localhost/"), "{}", stored.body);
    assert_eq!(
        text, "please store this [in10] [in0] [bare]",
        "stored once, in the module's archive, as the delivery hooks left it"
    );
    // Taking reads and deletes in one step.
    assert_eq!(get("/test/stanza/take?user=carol").body, stored.body);
    assert_eq!(get("/test/stanza/take?user=carol").body, "");
    assert_eq!(get("/test/stanza/stored?user=carol").body, "");
}

#[test]
fn session_filters_see_only_attached_sessions_and_keep_per_session_state() {
    let server = server();
    let (mut alice, alice_jid) = login(&server, "alice");
    let (mut bob, bob_jid) = login(&server, "bob");
    let reply = iq(&mut bob, "a1", "<attach xmlns='urn:tessera:test:stanza'/>");
    assert!(reply.contains("type='result'"), "{reply}");
    for n in 1..=3 {
        alice.send(&message(&bob_jid, &format!("m{n}")));
        let got = bob.read_until("</message>");
        assert!(
            got.contains(&format!("<seen xmlns='urn:tessera:test:stanza' n='{n}'/>")),
            "{got}"
        );
    }
    // Alice did not attach: her session is written to without the hook.
    bob.send(&message(&alice_jid, "back"));
    let got = alice.read_until("</message>");
    assert!(!got.contains("<seen"), "{got}");
    let state = iq(&mut bob, "s1", "<state xmlns='urn:tessera:test:stanza'/>");
    assert!(state.contains("out='3'"), "{state}");
    let reply = iq(&mut bob, "d1", "<detach xmlns='urn:tessera:test:stanza'/>");
    assert!(reply.contains("type='result'"), "{reply}");
    alice.send(&message(&bob_jid, "m4"));
    let got = bob.read_until("</message>");
    assert!(got.contains("m4") && !got.contains("<seen"), "{got}");
}

#[test]
fn modules_send_to_a_session_and_route_as_the_server() {
    let server = server();
    let (mut alice, _) = login(&server, "alice");
    let (mut bob, _) = login(&server, "bob");
    let reply = iq(&mut alice, "p1", "<poke xmlns='urn:tessera:test:stanza'/>");
    assert!(reply.contains("type='result'"), "{reply}");
    assert_eq!(next_body(&mut alice), "poked");
    let reply = iq(
        &mut alice,
        "r1",
        "<route xmlns='urn:tessera:test:stanza' to='bob@localhost'>from the server</route>",
    );
    assert!(reply.contains("type='result'"), "{reply}");
    let got = bob.read_until("</message>");
    assert!(got.contains("from='localhost'"), "{got}");
    assert!(
        got.contains("<body>from the server [bare]</body>"),
        "a routed stanza meets the recipient's hooks, not the client hooks: {got}"
    );
    // A stanza the server may not send is refused to the module (and nothing is routed).
    let reply = iq(
        &mut alice,
        "r2",
        "<route xmlns='urn:tessera:test:stanza' to='not a jid@@'>x</route>",
    );
    assert!(
        reply.contains("<internal-server-error"),
        "the module's call failed: {reply}"
    );
    assert!(bob.read_for(Duration::from_millis(300)).is_empty());
}

/// The fixture's lifecycle event log, once it holds a line starting with `prefix` (bounded
/// wait: events are delivered after the call that fired them).
fn event_log_with(server: &Server, prefix: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = https(server.ports.http, "GET", "/test/stanza/events", &[], b"").body;
        if log.lines().any(|l| l.starts_with(prefix)) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no event line `{prefix}…` in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `<keep/>` this session for `ms`; answers its session id.
fn keep(client: &mut XmppClient, ms: u64) -> String {
    let kept = iq(
        client,
        "keep",
        &format!("<keep xmlns='urn:tessera:test:stanza' ms='{ms}'/>"),
    );
    let start = kept.find("<kept ").expect("kept");
    let id = kept[start..]
        .split("id='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("id")
        .to_owned();
    assert!(id.parse::<u64>().is_ok(), "{kept}");
    id
}

/// A new stream of `user`, authenticated and not bound.
fn authenticated_only(server: &Server, user: &str) -> XmppClient {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let outcome = c.sasl2_plain(user, &format!("{user} pw"), &Default::default());
    assert!(outcome.success, "{}", outcome.xml);
    c.read_until("</stream:features>");
    c
}

/// A kept session outlives its lost connection (detached), a module holds what is sent to it,
/// and a new stream of the same account takes it over: same full JID, the held stanzas
/// replayed first, module state and filters moved, and the lifecycle events in order.
#[test]
fn a_kept_session_survives_its_connection_and_is_resumed_on_a_new_stream() {
    let server = server();
    let (mut alice, alice_jid) = login(&server, "alice");
    let (mut bob, _) = login(&server, "bob");
    let id = keep(&mut alice, 30_000);
    drop(alice);
    event_log_with(&server, &format!("session-detached {id} {alice_jid}"));
    bob.send(&message(&alice_jid, "while away"));
    assert_eq!(
        bob.read_for(Duration::from_millis(300)),
        "",
        "held by the module: no bounce"
    );

    let mut again = authenticated_only(&server, "alice");
    again.send(&format!(
        "<resume xmlns='urn:tessera:test:stanza' id='{id}'/>"
    ));
    let resumed = again.read_until("</message>");
    let at = resumed
        .find(&format!(
            "<resumed xmlns='urn:tessera:test:stanza' id='{id}'/>"
        ))
        .expect("resumed");
    let replayed = resumed
        .find("while away [in10] [in0] [full]")
        .expect("replayed");
    assert!(
        at < replayed,
        "the answer first, then the replay: {resumed}"
    );
    bob.send(&message(&alice_jid, "welcome back"));
    let got = again.read_until("</message>");
    assert!(
        got.contains("welcome back") && got.contains("<seen xmlns='urn:tessera:test:stanza' n="),
        "the full JID reaches the new stream, through the filter that moved with it: {got}"
    );
    // Resuming a session whose connection is still open closes that connection with
    // <conflict/>; the new stream has the JID.
    let (mut bob_old, bob_jid) = login(&server, "bob");
    let bob_id = keep(&mut bob_old, 30_000);
    let mut bob_new = authenticated_only(&server, "bob");
    bob_new.send(&format!(
        "<resume xmlns='urn:tessera:test:stanza' id='{bob_id}'/>"
    ));
    assert!(bob_new.read_until("/>").contains("<resumed "));
    assert!(bob_old
        .read_to_close()
        .contains("<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    again.send(&message(&bob_jid, "to the new bob"));
    assert!(bob_new.read_until("</message>").contains("to the new bob"));
    let log = event_log_with(&server, "session-resumed ");
    let alice_lines: Vec<&str> = log.lines().filter(|l| l.contains(&alice_jid)).collect();
    assert_eq!(alice_lines.len(), 3, "{log}");
    assert!(
        alice_lines[0].starts_with(&format!("session-bound {id} ")),
        "{log}"
    );
    assert!(alice_lines[1].starts_with(&format!("session-detached {id} ")));
    assert!(
        alice_lines[2].starts_with("session-resumed ")
            && alice_lines[2].ends_with(&format!("{alice_jid} from {id}")),
        "{log}"
    );
}

/// A detached session no module holds stanzas for counts as absent: a message to its full JID
/// is not written into the void but bounced (or stored) like one to an offline account.
#[test]
fn a_detached_session_nobody_holds_for_bounces_instead_of_swallowing() {
    let server = server();
    let (mut alice, alice_jid) = login(&server, "alice");
    let (mut bob, _) = login(&server, "bob");
    let kept = iq(
        &mut alice,
        "keep",
        "<keep xmlns='urn:tessera:test:stanza' ms='30000' attach='0'/>",
    );
    assert!(kept.contains("<kept "), "{kept}");
    drop(alice);
    event_log_with(&server, "session-detached ");
    bob.send(&message(&alice_jid, "into the void?"));
    let bounce = bob.read_until("</message>");
    assert!(
        bounce.contains("type='error'") && bounce.contains("<service-unavailable"),
        "{bounce}"
    );
}

/// What ends a detached session, and who may not take it: its time running out, a password
/// change, another account (refused by the module, and by the host when a module does not
/// check); `close_session` ends a connected one.
#[test]
fn detached_sessions_end_on_expiry_or_password_change_and_belong_to_their_account() {
    let server = server();
    // Expiry.
    let (mut alice, alice_jid) = login(&server, "alice");
    let id = keep(&mut alice, 300);
    drop(alice);
    let log = event_log_with(&server, &format!("session-closed {id} "));
    assert!(
        log.contains(&format!(
            "session-closed {id} {alice_jid} detached session expired"
        )),
        "{log}"
    );
    let mut late = authenticated_only(&server, "alice");
    late.send(&format!(
        "<resume xmlns='urn:tessera:test:stanza' id='{id}'/>"
    ));
    assert!(late
        .read_until("/>")
        .contains("<failed xmlns='urn:tessera:test:stanza'/>"));

    // Another account: the module refuses; a module that does not check, the host.
    let (mut carol, carol_jid) = login(&server, "carol");
    let id = keep(&mut carol, 30_000);
    drop(carol);
    event_log_with(&server, &format!("session-detached {id} {carol_jid}"));
    let mut bob = authenticated_only(&server, "bob");
    bob.send(&format!(
        "<resume xmlns='urn:tessera:test:stanza' id='{id}'/>"
    ));
    assert!(bob
        .read_until("/>")
        .contains("<failed xmlns='urn:tessera:test:stanza'/>"));
    let mut bob = authenticated_only(&server, "bob");
    bob.send(&format!(
        "<resume xmlns='urn:tessera:test:stanza' id='{id}' unchecked='1'/>"
    ));
    let refused = bob.read_to_close();
    assert!(
        refused.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            && !refused.contains("<resumed"),
        "{refused}"
    );

    // A password change ends it at once: resuming afterwards fails.
    let out = server.cli(&["user", "passwd", "carol"], "new carol pw\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = event_log_with(&server, &format!("session-closed {id} "));
    assert!(
        log.contains(&format!(
            "session-closed {id} {carol_jid} stream error: reset"
        )),
        "{log}"
    );
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    assert!(
        c.sasl2_plain("carol", "new carol pw", &Default::default())
            .success
    );
    c.read_until("</stream:features>");
    c.send(&format!(
        "<resume xmlns='urn:tessera:test:stanza' id='{id}'/>"
    ));
    assert!(c
        .read_until("/>")
        .contains("<failed xmlns='urn:tessera:test:stanza'/>"));

    // close_session closes a connected session with the module's condition.
    let (mut dave, _) = login(&server, "bob");
    dave.send("<iq type='set' id='c'><close xmlns='urn:tessera:test:stanza'/></iq>");
    assert!(dave
        .read_to_close()
        .contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    // Everyone else lives on.
    let (mut alice, _) = login(&server, "alice");
    let (mut bob, bob_jid) = login(&server, "bob");
    alice.send(&message(&bob_jid, "still here"));
    assert!(next_body(&mut bob).starts_with("still here"));
}
