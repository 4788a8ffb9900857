//! The module on the SDK's test host: notes taken at SASL2 logins, the list, revocation and
//! every bad request. Other modules' credentials come from a hook answered by a closure (the
//! e2e tests use the real mod_sasl2_fast).

use std::sync::{Arc, Mutex};

use tessera_plugin_api::clients::{
    client_ref, hooks as client_hooks, ClientCredential, ClientRevoke, CLIENT_REVOKED,
};
use tessera_plugin_api::events::Sasl2Success;
use tessera_plugin_api::protocol::{OptionValue, StreamInfo};
use tessera_plugin_api::testing::{Loaded, TestHost, T0};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{wire, Config, ModuleCalls, StreamCondition};

use super::*;
use crate::clients::to_forget;

const PHONE: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";
const LAPTOP: &str = "0c2b3e1a-9f4e-4a55-8f55-2f6d1c1a7b90";

struct Fixture {
    host: Arc<TestHost>,
    module: Loaded<ClientManagement>,
    /// Whether alice's phone still has its FAST token (what mod_sasl2_fast would answer).
    phone_token: Arc<Mutex<bool>>,
}

fn fixture(config: Config) -> Fixture {
    let host = TestHost::new("example.org");
    host.add_account("alice", "pw", None);
    host.add_account("bob", "pw", None);
    host.advance(1000);
    // One FAST token, of alice's phone, answered as mod_sasl2_fast would.
    let phone_token = Arc::new(Mutex::new(true));
    let alive = phone_token.clone();
    host.on_hook(client_hooks::CLIENT_CREDENTIALS, move |payload| {
        let user: String = wire::decode("t", payload).ok()?;
        let creds = if user == "alice" && *alive.lock().unwrap() {
            vec![ClientCredential {
                client: client_ref(PHONE),
                kind: "fast".into(),
                issued_at_ms: T0 + 2000,
                expires_at_ms: T0 + 86_400_000,
            }]
        } else {
            vec![]
        };
        wire::encode(&creds).ok()
    });
    let alive = phone_token.clone();
    host.on_hook(client_hooks::CLIENT_REVOKE, move |payload| {
        let revoke: ClientRevoke = wire::decode("t", payload).ok()?;
        let mut alive = alive.lock().unwrap();
        let n = u32::from(revoke.user == "alice" && revoke.client == client_ref(PHONE) && *alive);
        *alive = false;
        let answer: Result<u32, String> = Ok(n);
        wire::encode(&answer).ok()
    });
    let module = host.load::<ClientManagement>(config).unwrap();
    Fixture {
        host,
        module,
        phone_token,
    }
}

impl Fixture {
    /// A SASL2 login of `user` with `mechanism` from the client `ua`, then its session.
    fn login(&self, user: &str, mechanism: &str, ua: Option<(&str, &str, &str)>) -> u64 {
        let mut authenticate =
            Element::new("authenticate", SASL2_NS).with_attr("mechanism", mechanism);
        if let Some((id, software, device)) = ua {
            authenticate.push_child(
                Element::new("user-agent", SASL2_NS)
                    .with_attr("id", id)
                    .with_child(Element::new("software", SASL2_NS).with_text(software))
                    .with_child(Element::new("device", SASL2_NS).with_text(device)),
            );
        }
        let success = Sasl2Success {
            stream: StreamInfo::default(),
            user: user.into(),
            mechanism: mechanism.into(),
            authenticate,
            exchange_started_at_ms: self.host.now_ms(),
        };
        let payload = wire::encode(&success).unwrap();
        let reply = self
            .module
            .instance
            .hook(hooks::SASL2_SUCCESS, wire::Bytes::new(&payload))
            .unwrap();
        assert_eq!(reply, None, "noting a login adds nothing to <success/>");
        let stream = self.host.add_session(user, "r");
        if let Some((id, ..)) = ua {
            self.host.set_user_agent(stream, id);
        }
        stream
    }

    fn iq(&self, user: &str, kind: &str, payload: Element, to: Option<&str>) -> String {
        let mut iq = Element::new("iq", "jabber:client")
            .with_attr("type", kind)
            .with_attr("id", "c1")
            .with_attr("from", format!("{user}@example.org/r"))
            .with_child(payload);
        if let Some(to) = to {
            iq.set_attr("to", to);
        }
        let request = IqRequest {
            stream: StreamInfo {
                domain: "example.org".into(),
                user: Some(user.into()),
                ..StreamInfo::default()
            },
            stanza: iq,
        };
        self.module
            .instance
            .iq(request)
            .unwrap()
            .expect("answered")
            .to_xml_in("jabber:client")
    }

    fn list(&self, user: &str) -> String {
        self.iq(user, "get", Element::new("list", NS), None)
    }

    fn ids(&self, user: &str) -> Vec<String> {
        self.module
            .module()
            .views(self.module.host(), user)
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect()
    }

    fn revoke(&self, user: &str, id: &str) -> String {
        self.iq(
            user,
            "set",
            Element::new("revoke", NS).with_attr("id", id),
            None,
        )
    }
}

#[test]
fn logins_are_noted_and_listed_with_their_access() {
    let f = fixture(Config::default());
    let phone = f.login(
        "alice",
        "HT-SHA-256-NONE",
        Some((PHONE, "Conversations", "Pixel")),
    );
    f.host.advance(60_000);
    f.login(
        "alice",
        "SCRAM-SHA-256-PLUS",
        Some((LAPTOP, "Gajim", "Laptop")),
    );
    let legacy = f.host.add_session("alice", "legacy");
    let list = f.list("alice");
    let ids = f.ids("alice");
    assert_eq!(ids.len(), 3, "{list}");
    // Most recently seen first: the laptop (password), then the phone (token), then the
    // session that sent no user-agent id.
    assert_eq!(
        list,
        format!(
            "<iq type='result' id='c1' to='alice@example.org/r' from='example.org'>\
             <clients xmlns='urn:xmpp:cam:0'>\
             <client connected='true' id='{}' type='session'>\
             <first-seen>2023-11-14T22:14:21Z</first-seen><last-seen>2023-11-14T22:14:21Z</last-seen>\
             <auth><password/></auth><permission status='unrestricted'/>\
             <user-agent><software>Gajim</software><device>Laptop</device></user-agent></client>\
             <client connected='true' id='{}' type='session'>\
             <first-seen>2023-11-14T22:13:21Z</first-seen><last-seen>2023-11-14T22:13:21Z</last-seen>\
             <auth><fast/><token xmlns='urn:tessera:cam:0' kind='fast' issued='2023-11-14T22:13:22Z' \
             expires='2023-11-15T22:13:20Z'/></auth><permission status='unrestricted'/>\
             <user-agent><software>Conversations</software><device>Pixel</device></user-agent></client>\
             <client connected='true' id='{}' type='session'><auth><password/></auth>\
             <permission status='unrestricted'/><user-agent><software>unknown</software>\
             <device>legacy</device></user-agent></client>\
             </clients></iq>",
            ids[0], ids[1], ids[2]
        )
    );
    // Ids are opaque and per account: not the user-agent id or its digest.
    assert!(ids
        .iter()
        .all(|id| id.len() == 16 && !PHONE.contains(id.as_str())));
    assert_ne!(ids[1], client_ref(PHONE));
    // A session ending leaves the token client listed, not connected.
    f.host.end_session(phone);
    f.host.end_session(legacy);
    let list = f.list("alice");
    assert!(
        list.contains(&format!("<client connected='false' id='{}'", ids[1])),
        "{list}"
    );
    assert_eq!(f.ids("alice").len(), 2);
}

#[test]
fn revoking_a_token_client_kills_its_tokens_and_sessions_and_nothing_else() {
    let f = fixture(Config::default());
    let phone = f.login(
        "alice",
        "HT-SHA-256-NONE",
        Some((PHONE, "Conversations", "Pixel")),
    );
    let laptop = f.login("alice", "PLAIN", Some((LAPTOP, "Gajim", "Laptop")));
    let ids = f.ids("alice");
    let phone_id = ids[1].clone();
    let answer = f.revoke("alice", &phone_id);
    assert_eq!(
        answer,
        "<iq type='result' id='c1' to='alice@example.org/r' from='example.org'/>"
    );
    assert_eq!(
        f.host.session(phone).unwrap().closed,
        Some(StreamCondition::NotAuthorized)
    );
    assert_eq!(f.host.session(laptop).unwrap().closed, None);
    assert_eq!(
        f.host.fired_as::<ClientRevoke>(CLIENT_REVOKED),
        [ClientRevoke {
            user: "alice".into(),
            client: client_ref(PHONE)
        }]
    );
    // Gone from the list (its note too: a token client has no access left).
    assert!(!f.ids("alice").contains(&phone_id));
    let again = f.revoke("alice", &phone_id);
    assert!(again.contains("<item-not-found"), "{again}");
}

#[test]
fn a_client_that_knows_the_password_needs_a_password_change() {
    let f = fixture(Config::default());
    let laptop = f.login("alice", "SCRAM-SHA-1", Some((LAPTOP, "Gajim", "Laptop")));
    let id = f.ids("alice")[0].clone();
    let answer = f.revoke("alice", &id);
    assert!(
        answer.starts_with("<iq type='error' id='c1' to='alice@example.org/r' from='example.org'>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{answer}"
    );
    assert!(
        answer.ends_with("<password-reset-required xmlns='urn:xmpp:cam:0'/></error></iq>"),
        "{answer}"
    );
    // What could be revoked was: its session is closing.
    assert_eq!(
        f.host.session(laptop).unwrap().closed,
        Some(StreamCondition::NotAuthorized)
    );
    // After a password change (which kills every token) it has no access left and is no
    // longer listed.
    f.host.advance(1000);
    *f.phone_token.lock().unwrap() = false;
    f.module
        .host()
        .set_password("alice", "new password", None)
        .unwrap();
    assert!(f.ids("alice").is_empty(), "{}", f.list("alice"));
}

#[test]
fn a_client_that_presented_the_password_is_told_apart_even_after_token_logins() {
    let f = fixture(Config::default());
    let first = f.login(
        "alice",
        "SCRAM-SHA-256",
        Some((PHONE, "Conversations", "Pixel")),
    );
    f.host.end_session(first);
    f.host.advance(1000);
    let phone = f.login(
        "alice",
        "HT-SHA-256-NONE",
        Some((PHONE, "Conversations", "Pixel")),
    );
    let id = f.ids("alice")[0].clone();
    assert!(
        f.list("alice").contains("<auth><password/><fast/>"),
        "{}",
        f.list("alice")
    );
    // Its later token logins say nothing about whether it still holds the password.
    let answer = f.revoke("alice", &id);
    assert!(
        answer.contains("<password-reset-required xmlns='urn:xmpp:cam:0'/>"),
        "{answer}"
    );
    assert_eq!(
        f.host.session(phone).unwrap().closed,
        Some(StreamCondition::NotAuthorized)
    );
    // Its token is gone; it stays listed, by the password alone.
    let list = f.list("alice");
    assert!(list.contains(&format!(" id='{id}'")), "{list}");
    assert!(list.contains("<auth><password/></auth>"), "{list}");
}

#[test]
fn a_client_known_only_by_its_token_is_revoked_outright() {
    // A token issued before this module was loaded: no note, no password known.
    let f = fixture(Config::default());
    let id = f.ids("alice")[0].clone();
    let list = f.list("alice");
    assert!(
        list.contains(&format!(
            "<client connected='false' id='{id}' type='access'>"
        )),
        "{list}"
    );
    assert_eq!(
        f.revoke("alice", &id),
        "<iq type='result' id='c1' to='alice@example.org/r' from='example.org'/>"
    );
    assert!(f.ids("alice").is_empty(), "{}", f.list("alice"));
}

#[test]
fn a_revocation_whose_tokens_could_not_be_removed_does_nothing_else() {
    let f = fixture(Config::default());
    // A second module holding credentials, whose store fails.
    f.host.on_hook(client_hooks::CLIENT_REVOKE, |_| {
        let answer: Result<u32, String> = Err("store down".into());
        wire::encode(&answer).ok()
    });
    let laptop = f.login(
        "alice",
        "HT-SHA-256-NONE",
        Some((LAPTOP, "Gajim", "Laptop")),
    );
    let id = f.ids("alice")[0].clone();
    let answer = f.revoke("alice", &id);
    assert!(
        answer.contains(
            "<error type='wait'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        ),
        "{answer}"
    );
    assert_eq!(f.host.session(laptop).unwrap().closed, None);
    assert!(f.ids("alice").contains(&id));
    assert!(f.host.fired_as::<ClientRevoke>(CLIENT_REVOKED).is_empty());
    let outcome = f
        .module
        .module()
        .revoke(f.module.host(), "alice", &id)
        .unwrap();
    assert_eq!(outcome, RevokeOutcome::Failed("store down".into()));
}

#[test]
fn bad_requests_get_precise_errors_and_change_nothing() {
    let f = fixture(Config::default());
    let laptop = f.login(
        "alice",
        "HT-SHA-256-NONE",
        Some((LAPTOP, "Gajim", "Laptop")),
    );
    f.login("bob", "HT-SHA-256-NONE", Some((PHONE, "Dino", "Desk")));
    let bob_id = f.ids("bob")[0].clone();
    let bad = |kind: &str, payload: Element, to: Option<&str>| f.iq("alice", kind, payload, to);
    let cases = [
        (
            bad("set", Element::new("list", NS), None),
            "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>&lt;list/&gt; is sent in an IQ get</text>",
        ),
        (
            bad("get", Element::new("revoke", NS).with_attr("id", &bob_id), None),
            "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>&lt;revoke/&gt; is sent in an IQ set</text>",
        ),
        (
            bad("set", Element::new("revoke", NS).with_attr("id", " "), None),
            "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>&lt;revoke/&gt; needs the id of a listed client</text>",
        ),
        (
            bad("get", Element::new("clients", NS), None),
            "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Expected &lt;list/&gt; or &lt;revoke/&gt;</text>",
        ),
        (
            bad("get", Element::new("list", NS), Some("bob@example.org")),
            "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Only an account's owner manages its clients</text>",
        ),
        (
            // Bob's client's id, asked by alice: no such client of hers.
            bad("set", Element::new("revoke", NS).with_attr("id", &bob_id), None),
            "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>No client with that id</text>",
        ),
        (
            bad("set", Element::new("revoke", NS).with_attr("id", "AAAAAAAAAAAAAAAA"), None),
            "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>No client with that id</text>",
        ),
    ];
    for (answer, condition) in cases {
        assert!(answer.starts_with("<iq type='error'"), "{answer}");
        assert!(answer.contains(condition), "{answer}\nexpected {condition}");
    }
    assert_eq!(f.host.session(laptop).unwrap().closed, None);
    assert_eq!(f.ids("bob"), [bob_id]);
    assert!(f.host.fired_as::<ClientRevoke>(CLIENT_REVOKED).is_empty());
}

#[test]
fn names_are_not_kept_when_the_operator_says_so_and_long_ones_are_cut() {
    let mut config = Config::default();
    config.set("client_management_keep_names", OptionValue::Bool(false));
    let f = fixture(config);
    f.login("alice", "PLAIN", Some((LAPTOP, "Gajim", "Laptop")));
    let list = f.list("alice");
    assert!(
        list.contains("<user-agent><software>unknown</software></user-agent>"),
        "{list}"
    );

    let f = fixture(Config::default());
    let long = "x".repeat(500);
    f.login("alice", "PLAIN", Some((LAPTOP, &long, "d")));
    let list = f.list("alice");
    assert!(
        list.contains(&format!("<software>{}</software>", "x".repeat(128))),
        "{list}"
    );
    // A user-agent id over 128 characters is no client id (as mod_sasl2 ignores it).
    let f = fixture(Config::default());
    let stream = f.login("alice", "PLAIN", None);
    f.host.end_session(stream);
    f.login("alice", "PLAIN", Some((&"u".repeat(129), "S", "D")));
    let views = f.module.module().views(f.module.host(), "alice").unwrap();
    assert!(views.iter().all(|v| v.software.is_none()), "{views:?}");
}

#[test]
fn a_login_again_within_a_minute_writes_nothing_unless_it_matters() {
    use crate::clients::{needs_write, SEEN_RESOLUTION_MS};
    let old = ClientRecord {
        software: Some("Gajim".into()),
        first_seen_ms: 1_000,
        last_seen_ms: 100_000,
        password_ms: Some(100_000),
        token_ms: Some(90_000),
        ..ClientRecord::default()
    };
    let at = |now: u64, kind| {
        ClientRecord::seen(Some(old.clone()), now, kind, Some("Gajim".into()), None)
    };
    let (password, token) = (CredentialKind::Password, CredentialKind::Token);
    // Soon after, by the same means: nothing to write.
    assert!(!needs_write(
        Some(&old),
        &at(130_000, password),
        password,
        50_000
    ));
    assert!(!needs_write(Some(&old), &at(130_000, token), token, 50_000));
    // A minute on, a first token login, other names, a new client: written.
    let later = 100_000 + SEEN_RESOLUTION_MS;
    assert!(needs_write(
        Some(&old),
        &at(later, password),
        password,
        50_000
    ));
    let mut no_token = old.clone();
    no_token.token_ms = None;
    assert!(needs_write(
        Some(&no_token),
        &at(101_000, token),
        token,
        50_000
    ));
    let renamed = ClientRecord::seen(Some(old.clone()), 101_000, token, Some("Dino".into()), None);
    assert!(needs_write(Some(&old), &renamed, token, 50_000));
    assert!(needs_write(None, &at(101_000, token), token, 50_000));
    // The noted password login predates a password change: always written, however soon.
    assert!(needs_write(
        Some(&old),
        &at(101_000, password),
        password,
        100_500
    ));
    assert!(needs_write(
        Some(&old),
        &at(101_000, password),
        password,
        100_000
    ));
}

fn record(last_seen_ms: u64) -> ClientRecord {
    ClientRecord {
        last_seen_ms,
        first_seen_ms: last_seen_ms,
        ..ClientRecord::default()
    }
}

#[test]
fn notes_are_forgotten_after_the_retention_unless_a_credential_remains_and_bounded() {
    let records = vec![
        ("old".to_owned(), record(1_000)),
        ("old-with-token".to_owned(), record(1_000)),
        ("recent".to_owned(), record(90_000)),
        ("newer".to_owned(), record(95_000)),
    ];
    let token = vec![ClientCredential {
        client: "old-with-token".into(),
        kind: "fast".into(),
        issued_at_ms: 1_000,
        expires_at_ms: 1_000_000,
    }];
    let now = (100_000, 50_000);
    assert_eq!(to_forget(&records, &token, 0, now, 10, false), ["old"]);
    // Room for one more among three kept at most: of the three, one with no access goes
    // first, however recently seen ("recent" and "newer" have none; the token holder stays).
    assert_eq!(
        to_forget(&records, &token, 0, now, 3, true),
        ["old", "recent"]
    );
    // A client that presented the current password has access too.
    let mut with_password = records.clone();
    with_password[2].1.password_ms = Some(90_000);
    assert_eq!(
        to_forget(&with_password, &token, 0, now, 3, true),
        ["old", "newer"]
    );
}
