//! RFC 6120/6121 "just enough": authentication through mod_sasl2, resource binding (Bind 2 and
//! RFC 6120), routing between local sessions by full and bare JID, ping, disco, XEP-0077, and
//! the host closing sessions on password change (`<reset/>`) and account deletion.

use std::time::Duration;

use tessera_tests::sasl::{inner, Sasl2Extras};
use tessera_tests::{Server, ServerOptions, XmppClient};

/// The modules a client finds on a default server, once logged in.
const IM_MODULES: &[&str] = &[
    "sasl2", "ping", "disco", "register", "presence", "roster", "offline",
];

fn server() -> Server {
    let s = Server::start(&ServerOptions::with_modules(IM_MODULES));
    s.add_user("alice", "alice pw", Some("alice@example.org"));
    s.add_user("bob", "bob pw", None);
    s
}

#[test]
fn tls_streams_offer_sasl2_bind2_legacy_sasl_and_channel_binding() {
    let server = server();
    let mut direct = XmppClient::direct_tls(server.ports.direct_tls);
    let mut starttls = XmppClient::starttls(server.ports.c2s);
    for features in [direct.open(), starttls.open()] {
        let sasl2 = inner(&features, "authentication").expect("SASL2 offered");
        assert!(
            sasl2.contains("<mechanism>SCRAM-SHA-256-PLUS</mechanism>"),
            "{features}"
        );
        assert!(
            sasl2.contains("<mechanism>SCRAM-SHA-1</mechanism>")
                && sasl2.contains("<mechanism>PLAIN</mechanism>"),
            "{features}"
        );
        assert!(
            sasl2.contains("<bind xmlns='urn:xmpp:bind:0'>"),
            "{features}"
        );
        let legacy = inner(&features, "mechanisms").expect("RFC 6120 SASL offered");
        assert!(
            legacy.contains("<mechanism>SCRAM-SHA-1-PLUS</mechanism>"),
            "{features}"
        );
        let cb = inner(&features, "sasl-channel-binding").expect("XEP-0440 list with -PLUS");
        assert!(
            cb.contains("tls-exporter") && cb.contains("tls-server-end-point"),
            "{features}"
        );
    }
}

#[test]
fn messages_route_by_full_and_bare_jid_and_unknown_targets_bounce() {
    let server = server();
    let (mut alice, alice_jid) =
        XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "phone");
    let (mut bob, bob_jid) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "laptop");
    assert!(
        alice_jid.starts_with("alice@localhost/phone/"),
        "Bind 2 resource is tag/…: {alice_jid}"
    );
    bob.send(&format!(
        "<message to='{alice_jid}' type='chat' id='m1'><body>to full</body></message>"
    ));
    let got = alice.read_until("</message>");
    assert!(
        got.contains(&format!("from='{bob_jid}'")) && got.contains("<body>to full</body>"),
        "{got}"
    );
    // To the bare JID: only an available resource takes it (RFC 6121 §8.5.2.1).
    alice.send("<presence/>");
    alice.read_until("/>");
    bob.send("<message to='alice@localhost' type='chat' id='m2'><body>to bare</body></message>");
    assert!(alice
        .read_until("</message>")
        .contains("<body>to bare</body>"));
    // The server stamps `from`: a forged one is replaced.
    bob.send("<message to='alice@localhost' from='mallory@localhost/x' id='m3'><body>forged</body></message>");
    let got = alice.read_until("</message>");
    assert!(
        got.contains(&format!("from='{bob_jid}'")) && !got.contains("mallory"),
        "{got}"
    );
    bob.send("<message to='nobody@localhost' id='m4'><body>?</body></message>");
    let bounce = bob.read_until("</message>");
    assert!(
        bounce.contains("type='error'")
            && bounce
                .contains("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{bounce}"
    );
    bob.send("<message to='carol@elsewhere.example' id='m5'><body>?</body></message>");
    assert!(bob
        .read_until("</message>")
        .contains("remote-server-not-found"));
}

#[test]
fn ping_disco_roster_and_unknown_iqs_get_the_right_answers() {
    let server = server();
    let (mut alice, alice_jid) =
        XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    let (mut bob, _) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    alice.send("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    let pong = alice.read_until("/>");
    assert!(
        pong.contains("type='result'") && pong.contains("id='p1'"),
        "{pong}"
    );
    alice.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    let disco = alice.read_until("</iq>");
    assert!(
        disco.contains("category='server'")
            && disco.contains("type='im'")
            && disco.contains("var='urn:xmpp:ping'"),
        "{disco}"
    );
    alice.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    let roster = alice.read_until("</iq>");
    assert!(
        roster.contains("id='r1'") && roster.contains("<query xmlns='jabber:iq:roster' ver='0'/>"),
        "{roster}"
    );
    alice.send("<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:unknown'/></iq>");
    let unknown = alice.read_until("</iq>");
    assert!(
        unknown.contains("type='error'") && unknown.contains("<service-unavailable"),
        "{unknown}"
    );
    alice.send("<iq type='get' id='bad'/>");
    assert!(alice.read_until("</iq>").contains("bad-request"));
    bob.send(&format!(
        "<iq type='get' id='x1' to='{alice_jid}'><query xmlns='urn:example:peer'/></iq>"
    ));
    let routed = alice.read_until("</iq>");
    assert!(
        routed.contains("id='x1'") && routed.contains("urn:example:peer"),
        "IQs to full JIDs are routed: {routed}"
    );
}

#[test]
fn legacy_sasl_then_rfc6120_bind_and_session() {
    let server = server();
    let mut c = XmppClient::starttls(server.ports.c2s);
    c.open();
    let jid = c.legacy_login("alice", "alice pw", "desk");
    assert_eq!(jid, "alice@localhost/desk");
    c.send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    assert!(c.read_until("/>").contains("type='result'"));
    let (mut bob, _) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    bob.send("<message to='alice@localhost/desk'><body>legacy works</body></message>");
    assert!(c.read_until("</message>").contains("legacy works"));
}

#[test]
fn password_change_resets_other_sessions_and_spares_the_changing_one() {
    let server = server();
    let (mut one, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "one");
    let (mut two, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "two");
    one.send("<iq type='set' id='pw1'><query xmlns='jabber:iq:register'><username>alice</username><password>changed pw</password></query></iq>");
    assert!(one.read_until("/>").contains("type='result'"));
    let closed = two.read_to_close();
    assert!(
        closed.contains("<reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{closed}"
    );
    one.send("<iq type='get' id='p2' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert!(
        one.read_until("/>").contains("id='p2'"),
        "the changing session stays up"
    );
    let mut old = XmppClient::direct_tls(server.ports.direct_tls);
    old.open();
    assert!(
        !old.sasl2_plain("alice", "alice pw", &Sasl2Extras::default())
            .success,
        "old password refused"
    );
    let (_new, _) = XmppClient::login(server.ports.direct_tls, "alice", "changed pw", "new");
    // An operator's change through the CLI (admin socket) resets every session.
    let out = server.cli(&["user", "passwd", "alice@localhost"], "third pw\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(one
        .read_to_close()
        .contains("<reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
}

#[test]
fn deleting_an_account_closes_its_sessions_with_not_authorized() {
    let server = server();
    let (mut bob, _) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    let out = server.cli(&["user", "del", "bob"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(bob
        .read_to_close()
        .contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    let mut again = XmppClient::direct_tls(server.ports.direct_tls);
    again.open();
    assert!(
        !again
            .sasl2_plain("bob", "bob pw", &Sasl2Extras::default())
            .success
    );
}

#[test]
fn same_client_and_tag_get_the_same_resource_and_replace_the_old_session() {
    let server = server();
    let extras = Sasl2Extras {
        user_agent_id: Some("d4565fa7-4d72-4749-b3d3-740edbf87770".into()),
        bind_tag: Some("Phone".into()),
        raw: String::new(),
    };
    let mut first = XmppClient::direct_tls(server.ports.direct_tls);
    first.open();
    let a = first.sasl2_plain("alice", "alice pw", &extras);
    let mut second = XmppClient::direct_tls(server.ports.direct_tls);
    second.open();
    let b = second.sasl2_plain("alice", "alice pw", &extras);
    assert_eq!(a.jid(), b.jid(), "stable resource for the same user agent");
    assert!(first
        .read_to_close()
        .contains("<conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
}

#[test]
fn presence_reaches_the_accounts_other_resources() {
    let server = server();
    let (mut one, one_jid) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "one");
    let (mut two, two_jid) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "two");
    // Only available resources get presence (RFC 6121 §4.2.2): two becomes available first.
    two.send("<presence/>");
    assert!(two.read_until("/>").contains(&format!("from='{two_jid}'")));
    one.send("<presence><show>away</show></presence>");
    let got = two.read_until("</presence>");
    assert!(
        got.contains(&format!("from='{one_jid}'")) && got.contains("<show>away</show>"),
        "{got}"
    );
    // The sender gets its own presence back (an entity is subscribed to itself), then its
    // new sibling's.
    let echo = one.read_until("</presence>");
    assert!(echo.contains(&format!("from='{one_jid}'")), "{echo}");
    let sibling = one.read_until("/>");
    assert!(sibling.contains(&format!("from='{two_jid}'")), "{sibling}");
}

#[test]
fn in_band_registration_is_off_by_default_and_works_when_enabled() {
    let server = server();
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    let features = c.open();
    assert!(!features.contains("iq-register"), "{features}");
    c.send("<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>eve</username><password>pw</password></query></iq>");
    assert!(c
        .read_to_close()
        .contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));

    let open = Server::start(&ServerOptions {
        top: "allow_registration = true\nregistration_throttle_max = 4".into(),
        ..ServerOptions::with_modules(&["sasl2", "register"])
    });
    let mut c = XmppClient::direct_tls(open.ports.direct_tls);
    assert!(c
        .open()
        .contains("<register xmlns='http://jabber.org/features/iq-register'/>"));
    c.send("<iq type='get' id='form'><query xmlns='jabber:iq:register'/></iq>");
    let form = c.read_iq("form");
    assert!(
        form.contains("<username/><password/>") && !form.contains("<registered/>"),
        "{form}"
    );
    c.send("<iq type='set' id='reg1' from='mallory@localhost'><query xmlns='jabber:iq:register'><username>eve</username><password>eve pw</password></query></iq>");
    let created = c.read_iq("reg1");
    assert!(
        created.contains("type='result'") && !created.contains("mallory"),
        "a claimed sender is ignored: {created}"
    );
    c.send("<iq type='set' id='reg2'><query xmlns='jabber:iq:register'><username>eve</username><password>other</password></query></iq>");
    assert!(c.read_iq("reg2").contains("<conflict"));
    c.send("<iq type='set' id='reg3'><query xmlns='jabber:iq:register'><username>bad@name</username><password>pw</password></query></iq>");
    let bad = c.read_iq("reg3");
    assert!(
        bad.contains("<not-acceptable") && bad.contains("type='modify'"),
        "{bad}"
    );
    c.send("<iq type='set' id='reg4'><query xmlns='jabber:iq:register'><username>frank</username></query></iq>");
    assert!(c.read_iq("reg4").contains("<not-acceptable"));
    // Every creation attempt counts (a conflict or a refused name probes the account space
    // as much as a success); an incomplete form is refused before that. The fifth attempt
    // from this address within the hour is throttled.
    c.send("<iq type='set' id='reg5'><query xmlns='jabber:iq:register'><username>gina</username><password>gina pw</password></query></iq>");
    assert!(c.read_iq("reg5").contains("type='result'"));
    c.send("<iq type='set' id='reg6'><query xmlns='jabber:iq:register'><username>ivan</username><password>ivan pw</password></query></iq>");
    let throttled = c.read_iq("reg6");
    assert!(
        throttled.contains("<policy-violation")
            && throttled.contains("type='wait'")
            && throttled.contains("Too many registrations from this address; retry in "),
        "{throttled}"
    );
    let (mut eve, jid) = XmppClient::login(open.ports.direct_tls, "eve", "eve pw", "x");
    assert!(jid.starts_with("eve@localhost/"));
    assert!(
        !XmppClient::try_login(open.ports.direct_tls, "ivan", "ivan pw"),
        "the throttled account was not created"
    );
    // Signed in: the form says registered; removal answers, then closes every session.
    eve.send("<iq type='get' id='f2'><query xmlns='jabber:iq:register'/></iq>");
    let form = eve.read_iq("f2");
    assert!(
        form.contains("<registered/>") && form.contains("<username>eve</username>"),
        "{form}"
    );
    eve.send("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>");
    let removed = eve.read_to_close();
    let result = removed
        .find("id='rm'")
        .expect("the removal is answered first");
    let closed = removed
        .find("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
        .expect("then the stream is closed");
    assert!(result < closed, "{removed}");
    assert!(!XmppClient::try_login(
        open.ports.direct_tls,
        "eve",
        "eve pw"
    ));
}

/// Registration, presence and the roster are modules: unloaded, their answers go (the
/// host says `<service-unavailable/>`, presence reaches no one), loaded back, they return.
#[test]
fn register_presence_and_roster_are_modules_that_can_be_unloaded() {
    let server = server();
    let (mut one, one_jid) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "one");
    let (mut two, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "two");
    let cli = |args: &[&str]| {
        server.cli_ok(args);
    };
    for m in ["register", "presence", "roster"] {
        cli(&["module", "unload", m]);
    }
    one.send("<iq type='set' id='pw'><query xmlns='jabber:iq:register'><username>alice</username><password>new pw</password></query></iq>");
    assert!(one.read_iq("pw").contains("<service-unavailable"));
    one.send("<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>");
    assert!(one.read_iq("r").contains("<service-unavailable"));
    one.send("<presence/>");
    assert_eq!(two.read_for(Duration::from_millis(300)), "", "no broadcast");
    one.send("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert!(!one.read_iq("d").contains("jabber:iq:register"));

    for m in ["register", "presence", "roster"] {
        cli(&["module", "load", m]);
    }
    one.send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>");
    assert!(one
        .read_iq("r2")
        .contains("<query xmlns='jabber:iq:roster' ver='0'/>"));
    one.send("<iq type='set' id='r3'><query xmlns='jabber:iq:roster'><item jid='bob@localhost'/></query></iq>");
    assert!(one.read_iq("r3").contains("type='result'"));
    two.send("<presence/>");
    two.read_until("/>");
    one.send("<presence><priority>5</priority></presence>");
    let got = two.read_until("</presence>");
    assert!(got.contains(&format!("from='{one_jid}'")), "{got}");
    one.send("<iq type='get' id='d2' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert!(one.read_iq("d2").contains("var='jabber:iq:register'"));
}

/// RFC 6121 §8.5.2.1: a message to the bare JID goes to the available resource with the
/// highest priority; a bound resource that sent no presence (or went unavailable) gets none.
#[test]
fn bare_jid_messages_go_to_the_available_resource_with_the_highest_priority() {
    let server = server();
    let (mut low, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "low");
    let (mut high, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "high");
    let (mut silent, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "quiet");
    let (mut bob, _) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    // Each broadcast reaches the other resources: seeing it means the server has taken it.
    high.send("<presence><priority>7</priority></presence>");
    high.read_until("<priority>7</priority>");
    low.send("<presence><priority>1</priority></presence>");
    high.read_until("<priority>1</priority>");
    low.read_until("<priority>7</priority>");
    bob.send("<message to='alice@localhost' type='chat' id='m1'><body>to the top</body></message>");
    assert!(high.read_until("</message>").contains("to the top"));
    assert!(!low
        .read_for(Duration::from_millis(300))
        .contains("to the top"));
    assert!(!silent
        .read_for(Duration::from_millis(50))
        .contains("to the top"));
    // RFC 6121 §8.5.2.1.1: to a bare JID, a groupchat is refused and an error ignored.
    bob.send("<message to='alice@localhost' type='groupchat' id='g1'><body>gc</body></message>");
    let refused = bob.read_until("</message>");
    assert!(
        refused.contains("id='g1'") && refused.contains("<service-unavailable"),
        "{refused}"
    );
    bob.send("<message to='alice@localhost' type='error' id='e1'><body>err</body></message>");
    assert!(!high
        .read_for(Duration::from_millis(300))
        .contains("id='e1'"));
    high.send("<presence type='unavailable'/>");
    low.read_until("type='unavailable'");
    bob.send("<message to='alice@localhost' type='chat' id='m2'><body>next best</body></message>");
    assert!(low.read_until("</message>").contains("next best"));
    assert!(!high
        .read_for(Duration::from_millis(300))
        .contains("next best"));
}

/// Ping and disco are modules: unloading one removes exactly its answers and its feature,
/// loading it back restores them, and the connected clients notice nothing else.
#[test]
fn unloading_ping_or_disco_removes_exactly_its_answers_and_features() {
    let server = server();
    let (mut alice, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    let (mut bob, bob_jid) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    let ping = |c: &mut XmppClient, id: &str| {
        c.send(&format!(
            "<iq type='get' id='{id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        c.read_iq(id)
    };
    let disco = |c: &mut XmppClient, id: &str| {
        c.send(&format!("<iq type='get' id='{id}' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
        c.read_until("</iq>")
    };
    let cli = |args: &[&str]| {
        server.cli_ok(args);
    };
    assert!(ping(&mut alice, "p1").contains("type='result'"));
    assert!(disco(&mut alice, "d1").contains("var='urn:xmpp:ping'"));

    cli(&["module", "unload", "ping"]);
    let refused = ping(&mut alice, "p2");
    assert!(
        refused.contains("type='error'") && refused.contains("<service-unavailable"),
        "{refused}"
    );
    let info = disco(&mut alice, "d2");
    assert!(
        !info.contains("urn:xmpp:ping")
            && info.contains("category='server'")
            && info.contains("var='http://jabber.org/protocol/disco#info'"),
        "only ping's feature is gone: {info}"
    );

    cli(&["module", "unload", "disco"]);
    let refused = disco(&mut alice, "d3");
    assert!(
        refused.contains("type='error'") && refused.contains("<service-unavailable"),
        "{refused}"
    );

    cli(&["module", "load", "ping"]);
    cli(&["module", "load", "disco"]);
    assert!(ping(&mut alice, "p3").contains("type='result'"));
    let info = disco(&mut alice, "d4");
    assert!(
        info.contains("var='urn:xmpp:ping'") && info.contains("category='server'"),
        "{info}"
    );
    // The sessions lived through it all.
    alice.send(&format!(
        "<message to='{bob_jid}' type='chat'><body>still here</body></message>"
    ));
    assert!(bob.read_until("</message>").contains("still here"));
}

/// With no module that answers IQs, every IQ still gets the right stanza error.
#[test]
fn without_modules_every_iq_gets_the_right_error() {
    let server = Server::start(&ServerOptions::with_modules(&["sasl2"]));
    server.add_user("alice", "alice pw", None);
    let (mut alice, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    for (id, payload) in [
        ("p", "<ping xmlns='urn:xmpp:ping'/>"),
        (
            "i",
            "<query xmlns='http://jabber.org/protocol/disco#info'/>",
        ),
        (
            "t",
            "<query xmlns='http://jabber.org/protocol/disco#items'/>",
        ),
        ("v", "<query xmlns='jabber:iq:version'/>"),
    ] {
        alice.send(&format!(
            "<iq type='get' id='{id}' to='localhost'>{payload}</iq>"
        ));
        let got = alice.read_until("</iq>");
        assert!(
            got.contains(&format!("id='{id}'"))
                && got.contains("type='error'")
                && got
                    .contains("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
            "{got}"
        );
    }
    alice.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert!(alice.read_until("</iq>").contains("<not-allowed"));
}
