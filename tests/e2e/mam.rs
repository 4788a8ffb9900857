//! mod_mam (XEP-0313) against the real server: history over three sessions paged by slixmpp's
//! own MAM client, `with` filters and preferences through slixmpp, stanza ids equal across
//! delivery, carbons and the archive, offline messages archived once, Bind 2 metadata only with
//! the module, the archive deleted with its account, a reload under message load, precise
//! errors on the wire.

use std::collections::HashSet;

use tessera_sasl::Hash;
use tessera_tests::interop::{slixmpp_driver, ClientProcess, Finished, DRIVER_TIMEOUT_SECS};
use tessera_tests::sasl::{Sasl2Extras, Sasl2Outcome};
use tessera_tests::{Server, ServerOptions, XmppClient};

const MAM: &str = "urn:xmpp:mam:2";
const IM_MAM: &[&str] = &[
    "sasl2", "ping", "disco", "presence", "roster", "offline", "carbons", "mam",
];

fn server_with(modules: &[&str]) -> Server {
    let server = Server::start(&ServerOptions::with_modules(modules));
    for (user, pw) in [
        ("alice", "alice pw"),
        ("bob", "bob pw"),
        ("carol", "carol pw"),
    ] {
        server.add_user(user, pw, None);
    }
    server
}

/// A SASL2 + Bind 2 login over direct TLS; the client and what the server answered.
fn login_outcome(server: &Server, user: &str, tag: &str) -> (XmppClient, Sasl2Outcome) {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let extras = Sasl2Extras::bind(tag);
    let out = c.sasl2_scram(Hash::Sha256, true, user, &format!("{user} pw"), &extras);
    (c, out)
}

/// [`login_outcome`], which must succeed; the client and its full JID.
fn login(server: &Server, user: &str, tag: &str) -> (XmppClient, String) {
    let (c, out) = login_outcome(server, user, tag);
    assert!(out.success, "{}", out.xml);
    let jid = out.jid().expect("bound");
    (c, jid)
}

fn chat(to: &str, id: &str, body: &str) -> String {
    format!("<message to='{to}' type='chat' id='{id}'><body>{body}</body></message>")
}

/// The archive query `q` (children of `<query/>`), answered: the result messages' raw text and
/// the IQ result or error.
fn query(c: &mut XmppClient, id: &str, q: &str) -> (Vec<String>, String) {
    c.send(&format!(
        "<iq type='set' id='{id}'><query xmlns='{MAM}' queryid='{id}'>{q}</query></iq>"
    ));
    let text = c.read_iq(id);
    let (before, iq) = text.rsplit_once("<iq ").expect("the IQ");
    // Each result ends where its forwarded message does.
    let results = before
        .split_inclusive("</forwarded></result></message>")
        .filter(|m| m.contains(&format!("queryid='{id}'")))
        .map(str::to_owned)
        .collect();
    (results, format!("<iq {iq}"))
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text.get(from..)?.find(end)?;
    text.get(from..from + len)
}

fn body(result: &str) -> String {
    between(result, "<body>", "</body>")
        .unwrap_or_default()
        .to_owned()
}

fn stanza_id(stanza: &str, by: &str) -> Option<String> {
    let at = stanza.find(&format!("by='{by}'"))?;
    let tag_start = stanza.get(..at)?.rfind("<stanza-id")?;
    between(stanza.get(tag_start..)?, "id='", "'").map(str::to_owned)
}

fn slix_mam(server: &Server, args: &[&str]) -> Finished {
    let mut cmd = slixmpp_driver("slix_mam.py", server.ports.direct_tls);
    cmd.args(["--timeout", DRIVER_TIMEOUT_SECS]).args(args);
    let finished = ClientProcess::spawn("slixmpp mam", cmd, None).finish();
    assert!(
        finished.status.is_some_and(|s| s.success()),
        "{}\n--- server log ---\n{}",
        finished.describe_as("slixmpp mam"),
        server.logs()
    );
    finished
}

#[test]
fn three_sessions_of_history_paged_in_order_by_slixmpp_with_filters_and_preferences() {
    let server = server_with(IM_MAM);
    let mut sent = Vec::new();
    for session in 0..3 {
        let (mut alice, alice_jid) = login(&server, "alice", "desk");
        let (mut bob, bob_jid) = login(&server, "bob", "phone");
        for i in 0..4 {
            let body = format!("s{session} m{i}");
            if i % 2 == 0 {
                alice.send(&chat(&bob_jid, &format!("a{session}{i}"), &body));
                bob.read_until(&format!("{body}</body>"));
            } else {
                bob.send(&chat(&alice_jid, &format!("b{session}{i}"), &body));
                alice.read_until(&format!("{body}</body>"));
            }
            sent.push(body);
        }
    }
    let (mut carol, _) = login(&server, "carol", "tab");
    let (mut alice, alice_jid) = login(&server, "alice", "desk");
    carol.send(&chat(&alice_jid, "c1", "from carol"));
    alice.read_until("from carol</body>");

    let history = slix_mam(
        &server,
        &[
            "history",
            "--a",
            "alice@localhost/slix:alice pw",
            "--page",
            "4",
        ],
    );
    let bodies: Vec<String> = history
        .events("result")
        .iter()
        .map(|r| r["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut expected = sent.clone();
    expected.push("from carol".into());
    assert_eq!(bodies, expected, "{}", history.describe());
    let ids: HashSet<String> = history
        .events("result")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ids.len(), expected.len(), "distinct ids");
    let with_bob = slix_mam(
        &server,
        &[
            "history",
            "--a",
            "alice@localhost/slix:alice pw",
            "--page",
            "5",
            "--with",
            "bob@localhost",
        ],
    );
    assert_eq!(with_bob.events("result").len(), sent.len());

    // Preferences through slixmpp's XEP-0441: carol is never archived from now on.
    let prefs = slix_mam(
        &server,
        &[
            "prefs",
            "--a",
            "alice@localhost/slix:alice pw",
            "--default",
            "always",
            "--never",
            "carol@localhost",
        ],
    );
    let p = &prefs.events("prefs")[0];
    assert_eq!(p["default"], "always", "{}", prefs.describe());
    assert_eq!(p["never"], serde_json::json!(["carol@localhost"]));
    carol.send(&chat(&alice_jid, "c2", "not kept"));
    alice.read_until("not kept</body>");
    let (results, fin) = query(
        &mut alice,
        "w1",
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>\
         <field var='with'><value>carol@localhost</value></field></x>",
    );
    assert_eq!(
        results.iter().map(|r| body(r)).collect::<Vec<_>>(),
        ["from carol"],
        "{fin}"
    );

    // A bad query on the wire: the precise error, and the stream lives on.
    let (_, refused) = query(
        &mut alice,
        "bad",
        "<set xmlns='http://jabber.org/protocol/rsm'><max>1000</max></set>",
    );
    assert!(
        refused.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>")
            && refused.contains("at most 250 results per page"),
        "{refused}"
    );
    let (results, _) = query(&mut alice, "ok", "");
    assert_eq!(results.len(), expected.len());
}

#[test]
fn one_stanza_id_across_delivery_carbons_and_archive_and_offline_archived_once() {
    let server = server_with(IM_MAM);
    let (mut laptop, laptop_jid) = login(&server, "alice", "laptop");
    let (mut phone, _) = login(&server, "alice", "phone");
    phone.send("<iq type='set' id='cb'><enable xmlns='urn:xmpp:carbons:2'/></iq>");
    phone.read_iq("cb");
    let (mut bob, _) = login(&server, "bob", "desk");
    // A forged id in alice's name is replaced.
    bob.send(&format!(
        "<message to='{laptop_jid}' type='chat' id='x1'><body>hello laptop</body>\
         <stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='alice@localhost'/></message>"
    ));
    let delivered = laptop.read_until("</message>");
    let carbon = phone.read_until("</message></forwarded></received></message>");
    let id = stanza_id(&delivered, "alice@localhost").expect("stamped");
    assert_ne!(id, "forged");
    assert_eq!(delivered.matches("<stanza-id").count(), 1, "{delivered}");
    assert_eq!(
        stanza_id(&carbon, "alice@localhost"),
        Some(id.clone()),
        "{carbon}"
    );
    let (results, _) = query(&mut laptop, "q", "");
    assert_eq!(results.len(), 1);
    assert!(
        results[0].contains(&format!("<result xmlns='{MAM}' id='{id}' queryid='q'>")),
        "{}",
        results[0]
    );

    // Offline: archived when it arrives, not again when replayed.
    laptop.send("</stream:stream>");
    laptop.read_to_close();
    phone.send("</stream:stream>");
    phone.read_to_close();
    bob.send(&chat("alice@localhost", "x2", "while you were away"));
    let (mut back, _) = login(&server, "alice", "back");
    back.send("<presence/>");
    let mut replayed = back.read_until("while you were away</body>");
    replayed.push_str(&back.read_until("</message>"));
    assert!(
        stanza_id(&replayed, "alice@localhost").is_some(),
        "{replayed}"
    );
    let (results, _) = query(&mut back, "q2", "");
    let bodies: Vec<String> = results.iter().map(|r| body(r)).collect();
    assert_eq!(bodies, ["hello laptop", "while you were away"]);
}

#[test]
fn bind2_bound_carries_the_archive_metadata_only_with_mod_mam() {
    let server = server_with(IM_MAM);
    let (mut bob, _) = login(&server, "bob", "desk");
    bob.send(&chat("alice@localhost", "m1", "first"));
    // Stored offline (and archived): alice has no session yet.
    let (_c, out) = login_outcome(&server, "alice", "meta");
    let metadata = between(&out.xml, "<metadata xmlns='urn:xmpp:mam:2'>", "</metadata>")
        .unwrap_or_else(|| panic!("no metadata: {}", out.xml));
    assert!(
        metadata.contains("<start id='") && metadata.contains("<end id='"),
        "{metadata}"
    );

    let without = server_with(&["sasl2", "presence", "roster", "offline"]);
    let (_c, out) = login_outcome(&without, "alice", "meta");
    assert!(out.success && !out.xml.contains("metadata"), "{}", out.xml);
    assert!(
        out.xml.contains("<bound xmlns='urn:xmpp:bind:0'/>"),
        "{}",
        out.xml
    );
}

#[test]
fn deleting_an_account_deletes_its_archive() {
    let server = server_with(IM_MAM);
    let (mut alice, alice_jid) = login(&server, "alice", "desk");
    let (mut bob, _) = login(&server, "bob", "desk");
    bob.send(&chat(&alice_jid, "m1", "remember me"));
    alice.read_until("remember me</body>");
    assert_eq!(query(&mut alice, "q", "").0.len(), 1);
    server.cli_ok(&["user", "del", "alice@localhost"]);
    server.add_user("alice", "alice pw", None);
    let (mut again, _) = login(&server, "alice", "desk");
    let (results, _) = query(&mut again, "q2", "");
    assert!(results.is_empty(), "{results:?}");
    let (_, count) = query(
        &mut again,
        "q3",
        "<set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set>",
    );
    assert!(count.contains("<count>0</count>"), "{count}");
}

#[test]
fn a_reload_under_message_load_loses_and_duplicates_no_archive_entry() {
    let server = server_with(&["sasl2", "ping", "mam"]);
    let (mut alice, alice_jid) = login(&server, "alice", "desk");
    let (mut bob, _) = login(&server, "bob", "desk");
    const N: usize = 300;
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            bob.send(&chat(&alice_jid, &format!("l{i}"), &format!("load {i}")));
        }
        bob
    });
    for _ in 0..2 {
        server.cli_ok(&["module", "reload", "mam"]);
    }
    let _bob = sender.join().expect("sender");
    alice.read_until(&format!("load {}</body>", N - 1));
    // Page the whole archive: every message once, in order.
    let mut bodies = Vec::new();
    let mut after = String::new();
    for page in 0..10 {
        let rsm = if after.is_empty() {
            "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set>".to_owned()
        } else {
            format!("<set xmlns='http://jabber.org/protocol/rsm'><max>100</max><after>{after}</after></set>")
        };
        let (results, fin) = query(&mut alice, &format!("p{page}"), &rsm);
        bodies.extend(results.iter().map(|r| body(r)));
        if fin.contains("complete='true'") {
            break;
        }
        after = between(&fin, "<last>", "</last>").expect("last").to_owned();
    }
    let expected: Vec<String> = (0..N).map(|i| format!("load {i}")).collect();
    assert_eq!(bodies, expected);
}

/// XEP-0313 §7: a client learns of the archive from its own bare JID's disco#info (answered by
/// mod_disco with what mod_mam contributes), not from the server's.
#[test]
fn the_account_bare_jid_advertises_the_archive() {
    let server = server_with(IM_MAM);
    let (mut alice, _) = login(&server, "alice", "desk");
    alice.send(
        "<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    let info = alice.read_iq("d1");
    for needle in [
        "<identity category='account' type='registered'/>",
        "<feature var='urn:xmpp:mam:2'/>",
        "<feature var='urn:xmpp:mam:2#extended'/>",
    ] {
        assert!(info.contains(needle), "{needle}: {info}");
    }
    // Not someone else's.
    alice.send(
        "<iq type='get' id='d2' to='bob@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    );
    let other = alice.read_iq("d2");
    assert!(!other.contains("urn:xmpp:mam:2"), "{other}");
    // Nor the server's: it keeps no archive of its own to query.
    alice
        .send("<iq type='get' id='d3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    let server_info = alice.read_iq("d3");
    assert!(server_info.contains("category='server'"), "{server_info}");
    assert!(!server_info.contains("urn:xmpp:mam:2"), "{server_info}");
}
