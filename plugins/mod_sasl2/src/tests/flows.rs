//! Successful exchanges through the whole module: features, SASL2 + Bind 2, legacy, PLAIN,
//! -PLUS with channel binding, other modules' mechanisms and hooks.

use tessera_plugin_api::events::{hooks, InlineResume, Sasl2Success};
use tessera_plugin_api::protocol::StreamAction;
use tessera_plugin_api::xml::Element;
use tessera_sasl::scram::{ClientBinding, ClientSecret, ScramClient};
use tessera_sasl::{CbType, Hash};

use super::*;
use crate::api::{Bind2Bound, BIND2_BOUND};
use crate::bind2;
use crate::wire::BIND2_NS;

const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

fn user_agent(id: &str) -> Element {
    Element::new("user-agent", SASL2_NS)
        .with_attr("id", id)
        .with_child(Element::new("software", SASL2_NS).with_text("AwesomeXMPP"))
}

fn bind(tag: &str) -> Element {
    Element::new("bind", BIND2_NS).with_child(Element::new("tag", BIND2_NS).with_text(tag))
}

/// Run a SCRAM exchange to the end; returns the last actions and the client's verdict on the
/// server's final message (if it was a success).
pub(crate) fn scram(
    fake: &Fake,
    s: &StreamInfo,
    sasl2: bool,
    (hash, binding): (Hash, ClientBinding),
    (user, password): (&str, &str),
    extra: Vec<Element>,
) -> (Vec<StreamAction>, Option<bool>) {
    let plus = matches!(binding, ClientBinding::Bound { .. });
    let name = hash.scram_mechanism(plus);
    let client = ScramClient::new(hash, user, None, binding, "fyko+d2lbbFgONRv9qkxdawL")
        .unwrap_or_else(|e| panic!("client: {e}"));
    let first = client.client_first();
    let (ns, start) = if sasl2 {
        (SASL2_NS, authenticate(name, Some(&first), extra))
    } else {
        (SASL_NS, auth(name, Some(&first)))
    };
    let challenge = only_send(&fake.send(s, start));
    assert!(challenge.starts_with("<challenge"), "{challenge}");
    let server_first = payload_of(&challenge, "challenge");
    let (client_final, verifier) = client
        .server_first(&server_first, ClientSecret::Password(password))
        .unwrap_or_else(|e| panic!("client-final: {e}"));
    let actions = fake.send(s, response(ns, &client_final));
    let success = sent(&actions)
        .into_iter()
        .find(|x| x.starts_with("<success"));
    let verdict = success.map(|xml| {
        let data = if sasl2 {
            payload_of(&xml, "additional-data")
        } else {
            payload_of(&xml, "success")
        };
        verifier.server_final(&data).is_ok()
    });
    (actions, verdict)
}

#[test]
fn features_offer_both_profiles_bind2_inline_and_channel_binding() {
    let fake = Fake::new()
        .with_hidden("HT-SHA-256-NONE")
        .hook(hooks::BIND2_INLINE_FEATURES, |_: StreamInfo| {
            Some(vec![
                Element::new("feature", BIND2_NS).with_attr("var", "urn:xmpp:csi:0")
            ])
        })
        .hook(hooks::SASL2_INLINE_FEATURES, |_: StreamInfo| {
            Some(vec![Element::new("fast", "urn:xmpp:fast:0")])
        });
    let s = stream(true);
    let xml: String = fake.features(&s).iter().map(Element::to_xml).collect();
    assert!(xml.starts_with("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-256-PLUS</mechanism>"), "{xml}");
    assert!(xml.contains("<feature var='urn:xmpp:csi:0'/></inline></bind><fast xmlns='urn:xmpp:fast:0'/></inline>"), "{xml}");
    assert!(
        xml.ends_with("<channel-binding type='tls-exporter'/></sasl-channel-binding>"),
        "{xml}"
    );
    assert!(
        !xml.contains("HT-SHA-256-NONE"),
        "hidden mechanisms are never listed: {xml}"
    );

    // Not before TLS, not after authentication.
    let mut insecure = stream(true);
    insecure.secure = false;
    assert!(fake.features(&insecure).is_empty());
    let mut authed = stream(true);
    authed.user = Some("alice".into());
    assert!(fake.features(&authed).is_empty());
}

#[test]
fn features_without_from_still_offer_sasl2() {
    let fake = Fake::new();
    let mut s = stream(false);
    s.from = None;
    let xml: String = fake.features(&s).iter().map(Element::to_xml).collect();
    assert!(
        xml.contains(
            "<authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-256</mechanism>"
        ),
        "{xml}"
    );
    assert!(
        !xml.contains("PLUS") && !xml.contains("sasl-channel-binding"),
        "{xml}"
    );
}

#[test]
fn sasl2_scram_sha256_with_bind2_binds_a_stable_tagged_resource() {
    let fake = Fake::new();
    let s = stream(false);
    let extra = vec![user_agent(UA), bind("AwesomeXMPP")];
    let (actions, verdict) = scram(
        &fake,
        &s,
        true,
        (Hash::Sha256, ClientBinding::NotSupported),
        ("alice", "pencil"),
        extra,
    );
    assert_eq!(verdict, Some(true), "server signature verifies");
    // The module's key, as the host derives it for it.
    let key = fake
        .module_host()
        .derive_secret("bind2-resource")
        .unwrap_or_else(|e| panic!("{e}"));
    let suffix = bind2::stable_suffix(&key, "alice", UA).unwrap_or_default();
    let resource = format!("AwesomeXMPP/{suffix}");
    let xml = sent(&actions).pop().unwrap_or_default();
    assert_eq!(
        actions,
        vec![
            StreamAction::Authenticated {
                user: "alice".into(),
                user_agent_id: Some(UA.into())
            },
            StreamAction::Bind {
                resource: resource.clone()
            },
            StreamAction::Send { xml: xml.clone() },
            StreamAction::SendFeatures,
        ]
    );
    let after_data = xml.split("</additional-data>").nth(1).unwrap_or_default();
    assert_eq!(
        after_data,
        format!(
            "<authorization-identifier>alice@example.org/{resource}</authorization-identifier>\
             <bound xmlns='urn:xmpp:bind:0'/></success>"
        )
    );
    assert_eq!(
        fake.outcomes(),
        vec![("authentication-success".to_owned(), None)]
    );
    let event = &fake.outcome_events()[0];
    assert_eq!(
        (event.mechanism.as_str(), event.user_agent_id.as_deref()),
        ("SCRAM-SHA-256", Some(UA))
    );
    assert!(fake.calls_since(0).contains(&"mechanism_end"));
    assert_eq!(fake.core().tracked().1, 0, "exchange state dropped");

    // Any further SASL element on this stream is a policy violation.
    let again = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]));
    assert!(is_policy_close(again.first()), "{again:?}");
}

#[test]
fn sasl2_plus_with_tls_exporter_and_no_bind_gives_bare_jid() {
    let fake = Fake::new();
    let s = stream(true);
    let binding = ClientBinding::Bound {
        cb_type: CbType::TlsExporter,
        data: EXPORTER.to_vec(),
    };
    let (actions, verdict) = scram(
        &fake,
        &s,
        true,
        (Hash::Sha256, binding),
        ("alice", "pencil"),
        vec![],
    );
    assert_eq!(verdict, Some(true));
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(!actions
        .iter()
        .any(|a| matches!(a, StreamAction::Bind { .. })));
    let xml = sent(&actions).pop().unwrap_or_default();
    assert!(
        xml.ends_with(
            "<authorization-identifier>alice@example.org</authorization-identifier></success>"
        ),
        "{xml}"
    );
}

#[test]
fn legacy_scram_sha1_plus_restarts_the_stream() {
    let fake = Fake::new();
    let s = stream(true);
    let binding = ClientBinding::Bound {
        cb_type: CbType::TlsExporter,
        data: EXPORTER.to_vec(),
    };
    let (actions, verdict) = scram(
        &fake,
        &s,
        false,
        (Hash::Sha1, binding),
        ("alice", "pencil"),
        vec![],
    );
    assert_eq!(verdict, Some(true));
    assert!(
        matches!(actions.first(), Some(StreamAction::Authenticated { user, user_agent_id: None }) if user == "alice")
    );
    assert!(sent(&actions)[0].starts_with("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1"));
    assert_eq!(actions.last(), Some(&StreamAction::ExpectRestart));
}

#[test]
fn legacy_without_initial_response_gets_an_empty_challenge_first() {
    let fake = Fake::new();
    let s = stream(false);
    let first = only_send(&fake.send(&s, auth("SCRAM-SHA-1", None)));
    assert_eq!(
        first,
        "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</challenge>"
    );
    let client = ScramClient::new(
        Hash::Sha1,
        "alice",
        None,
        ClientBinding::NotSupported,
        "abcdefghijklmnop",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let challenge = only_send(&fake.send(&s, response(SASL_NS, &client.client_first())));
    let (client_final, verifier) = client
        .server_first(
            &payload_of(&challenge, "challenge"),
            ClientSecret::Password("pencil"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let actions = fake.send(&s, response(SASL_NS, &client_final));
    assert!(verifier
        .server_final(&payload_of(&sent(&actions)[0], "success"))
        .is_ok());
}

#[test]
fn plain_succeeds_case_insensitively_without_additional_data() {
    let fake = Fake::new();
    let s = stream(false);
    let actions = fake.send(&s, authenticate("PLAIN", Some(b"\0ALICE\0pencil"), vec![]));
    assert_eq!(
        actions.first(),
        Some(&StreamAction::Authenticated {
            user: "alice".into(),
            user_agent_id: None
        })
    );
    assert_eq!(
        sent(&actions),
        ["<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@example.org</authorization-identifier></success>"]
    );
    // Legacy PLAIN with the bare JID as authzid.
    let other = Fake::new();
    let mut s2 = stream(false);
    s2.id = 43;
    let actions = other.send(
        &s2,
        auth("PLAIN", Some(b"alice@EXAMPLE.org\0alice\0pencil")),
    );
    assert_eq!(
        sent(&actions),
        ["<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]
    );
}

#[test]
fn response_ignores_mechanism_attribute_and_whitespace_in_base64() {
    let fake = Fake::new();
    let s = stream(false);
    let challenge = only_send(&fake.send(&s, authenticate("PLAIN", None, vec![])));
    assert_eq!(challenge, "<challenge xmlns='urn:xmpp:sasl:2'/>");
    let b64 = encode_base64(b"\0alice\0pencil");
    let (a, b) = b64.split_at(6);
    let reply = Element::new("response", SASL2_NS)
        .with_attr("mechanism", "SCRAM-SHA-1")
        .with_text(format!(" {a}\r\n\t{b} "));
    let actions = fake.send(&s, reply);
    assert!(
        matches!(actions.first(), Some(StreamAction::Authenticated { .. })),
        "{actions:?}"
    );
}

#[test]
fn other_modules_hidden_mechanism_runs_in_sasl2_with_hooks() {
    let fake = Fake::new()
        .with_hidden("HT-SHA-256-NONE")
        .hook(hooks::SASL2_SUCCESS, |p: Sasl2Success| {
            assert_eq!(p.user, "alice");
            assert_eq!(p.mechanism, "HT-SHA-256-NONE");
            Some(vec![
                Element::new("token", "urn:xmpp:fast:0").with_attr("token", "t")
            ])
        })
        .hook(BIND2_BOUND, |p: Bind2Bound| {
            assert_eq!(p.bind.name, "bind");
            Some(vec![Element::new("enabled", "urn:xmpp:sm:3")])
        });
    let s = stream(false);
    let el = authenticate(
        "HT-SHA-256-NONE",
        Some(b"alice"),
        vec![user_agent(UA), bind("T")],
    );
    let xml = sent(&fake.send(&s, el)).pop().unwrap_or_default();
    assert!(
        xml.starts_with(
            "<success xmlns='urn:xmpp:sasl:2'><additional-data>cmVzcG9uZGVy</additional-data>"
        ),
        "{xml}"
    );
    assert!(
        xml.ends_with(
            "<bound xmlns='urn:xmpp:bind:0'><enabled xmlns='urn:xmpp:sm:3'/></bound>\
         <token xmlns='urn:xmpp:fast:0' token='t'/></success>"
        ),
        "{xml}"
    );
    // Legacy SASL never accepts hidden mechanisms.
    let mut s2 = stream(false);
    s2.id = 7;
    let xml = only_send(&fake.send(&s2, auth("HT-SHA-256-NONE", Some(b"alice"))));
    assert_eq!(xml, legacy_failure("invalid-mechanism", None));
}

/// XEP-0198 inline (pitfall 6 of the stanza-modules notes): a resumption answered by the
/// `sasl2-resume` hook runs before Bind 2 and replaces it: `<success/>` carries `<resumed/>` and
/// the resumed JID, no `<bound/>`, no features, and the take-over comes after `<success/>`.
/// A refused one leaves its `<failed/>` in `<success/>` and Bind 2 goes on.
#[test]
fn an_inline_resume_replaces_bind2_and_the_features() {
    let resume = || Element::new("resume", "urn:xmpp:sm:3").with_attr("previd", "x");
    let resuming = Fake::new().hook(hooks::SASL2_RESUME, |p: Sasl2Success| {
        assert!(p.authenticate.child("resume", "urn:xmpp:sm:3").is_some());
        Some(InlineResume {
            element: Element::new("resumed", "urn:xmpp:sm:3").with_attr("h", "3"),
            session: Some(42),
            jid: Some("alice@example.org/phone".into()),
            acked: Some(7),
        })
    });
    let el = authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![bind("T"), resume()]);
    let actions = resuming.send(&stream(false), el);
    let xml = sent(&actions).pop().unwrap_or_default();
    assert!(
        xml.contains(
            "<authorization-identifier>alice@example.org/phone</authorization-identifier>"
        ) && xml.contains("<resumed xmlns='urn:xmpp:sm:3' h='3'/>")
            && !xml.contains("<bound"),
        "{xml}"
    );
    assert!(
        matches!(
            actions.as_slice(),
            [
                StreamAction::Authenticated { .. },
                StreamAction::Send { .. },
                StreamAction::Resume {
                    session: 42,
                    acked: Some(7),
                    ..
                }
            ]
        ),
        "{actions:?}"
    );
    let refused = Fake::new().hook(hooks::SASL2_RESUME, |_: Sasl2Success| {
        Some(InlineResume {
            element: Element::new("failed", "urn:xmpp:sm:3"),
            session: None,
            jid: None,
            acked: None,
        })
    });
    let el = authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![bind("T"), resume()]);
    let actions = refused.send(&stream(false), el);
    let xml = sent(&actions).pop().unwrap_or_default();
    assert!(
        xml.contains("<failed xmlns='urn:xmpp:sm:3'/><bound xmlns='urn:xmpp:bind:0'"),
        "{xml}"
    );
    assert!(
        matches!(actions.last(), Some(StreamAction::SendFeatures)),
        "{actions:?}"
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, StreamAction::Bind { .. })));
}

/// The mechanism list is the host's (`MechanismSpec::offered_on`): another module's mechanism
/// that needs tls-exporter is invalid on a connection without it, and never reaches its module;
/// with it, the exchange starts.
#[test]
fn another_modules_channel_binding_mechanism_needs_the_binding_on_the_connection() {
    let fake = Fake::new().with_hidden_bound("HT-SHA-256-EXPR", "tls-exporter");
    let el = || authenticate("HT-SHA-256-EXPR", Some(b"alice"), vec![]);
    let xml = only_send(&fake.send(&stream(false), el()));
    assert_eq!(xml, sasl2_failure("invalid-mechanism", None));
    assert!(fake.responder_starts().is_empty());
    let mut bound = stream(true);
    bound.id = 8;
    let xml = sent(&fake.send(&bound, el())).pop().unwrap_or_default();
    assert!(
        xml.starts_with("<success xmlns='urn:xmpp:sasl:2'>"),
        "{xml}"
    );
    assert_eq!(fake.responder_starts(), ["HT-SHA-256-EXPR"]);
}

#[test]
fn resource_is_random_without_user_agent_and_stable_with_it() {
    let resource_of = |fake: &Fake, id: u64, extra: Vec<Element>| {
        let mut s = stream(false);
        s.id = id;
        let actions = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), extra));
        actions.iter().find_map(|a| match a {
            StreamAction::Bind { resource } => Some(resource.clone()),
            _ => None,
        })
    };
    let fake = Fake::new();
    let r1 = resource_of(&fake, 1, vec![Element::new("bind", BIND2_NS)]);
    let r2 = resource_of(&fake, 2, vec![Element::new("bind", BIND2_NS)]);
    assert!(r1.as_ref().is_some_and(|r| r.len() == 12), "{r1:?}");
    assert_ne!(r1, r2);
    let s1 = resource_of(&fake, 3, vec![user_agent(UA), bind("Tag")]);
    let s2 = resource_of(&fake, 4, vec![user_agent(UA), bind("Tag")]);
    assert_eq!(s1, s2);
    assert!(
        s1.as_ref()
            .is_some_and(|r| r.starts_with("Tag/") && !r.contains(UA)),
        "{s1:?}"
    );
}

/// What a client hashes for XEP-0474: the `<mechanism/>`s of the feature of the profile it
/// uses and the `<channel-binding/>` types, read from the features it was sent.
fn client_view(features: &[Element], sasl2: bool) -> (Vec<String>, Vec<String>) {
    let (name, ns) = if sasl2 {
        ("authentication", SASL2_NS)
    } else {
        ("mechanisms", SASL_NS)
    };
    let mechanisms = features
        .iter()
        .filter(|f| f.name == name && f.ns == ns)
        .flat_map(|f| f.child_elements().filter(|c| c.name == "mechanism"))
        .map(Element::text)
        .collect();
    let types = features
        .iter()
        .filter(|f| f.name == "sasl-channel-binding")
        .flat_map(|f| f.child_elements().filter_map(|c| c.attr("type")))
        .map(str::to_owned)
        .collect();
    (mechanisms, types)
}

/// XEP-0474: server-first's `h=` is the hash of exactly what the features offered, for either
/// profile, with channel binding or without, hidden mechanisms left out, and a client that
/// checks it (the project's own) completes the login.
#[test]
fn server_first_carries_the_hash_of_what_the_features_offered() {
    // A hidden mechanism (never hashed) and one listed in SASL2 only (so the profiles differ).
    let fake = Fake::new()
        .with_hidden("HT-SHA-256-NONE")
        .with_hidden("X-SASL2-ONLY listed");
    for exporter in [true, false] {
        let s = stream(exporter);
        let features = fake.features(&s);
        let (sasl2_list, _) = client_view(&features, true);
        let (legacy_list, _) = client_view(&features, false);
        assert!(
            sasl2_list.iter().any(|m| m == "X-SASL2-ONLY")
                && !legacy_list.iter().any(|m| m == "X-SASL2-ONLY"),
            "{sasl2_list:?} / {legacy_list:?}"
        );
        for sasl2 in [true, false] {
            for hash in [Hash::Sha256, Hash::Sha1] {
                let (mechanisms, types) = client_view(&features, sasl2);
                assert!(
                    !mechanisms.iter().any(|m| m.starts_with("HT-")),
                    "{mechanisms:?}"
                );
                assert_eq!(types.is_empty(), !exporter, "{types:?}");
                let m: Vec<&str> = mechanisms.iter().map(String::as_str).collect();
                let t: Vec<&str> = types.iter().map(String::as_str).collect();
                let expected = tessera_sasl::ssdp::downgrade_hash(hash, &m, &t);
                let client =
                    ScramClient::new(hash, "alice", None, ClientBinding::NotSupported, "cnonce1")
                        .unwrap_or_else(|e| panic!("client: {e}"))
                        .expect_downgrade_hash(expected.clone());
                let name = hash.scram_mechanism(false);
                let (ns, start) = if sasl2 {
                    (
                        SASL2_NS,
                        authenticate(name, Some(&client.client_first()), Vec::new()),
                    )
                } else {
                    (SASL_NS, auth(name, Some(&client.client_first())))
                };
                let mut s = s.clone();
                s.id +=
                    u64::from(sasl2) * 10 + u64::from(exporter) * 100 + hash.output_len() as u64;
                let server_first = payload_of(&only_send(&fake.send(&s, start)), "challenge");
                let text = String::from_utf8_lossy(&server_first).into_owned();
                assert!(
                    text.ends_with(&format!(",h={expected}")),
                    "{text} ({mechanisms:?} {types:?})"
                );
                let (client_final, verifier) = client
                    .server_first(&server_first, ClientSecret::Password("pencil"))
                    .unwrap_or_else(|e| panic!("the hash matches: {e}"));
                let outcome = sent(&fake.send(&s, response(ns, &client_final)));
                let success = outcome
                    .iter()
                    .find(|x| x.starts_with("<success"))
                    .expect("success");
                let data = payload_of(success, if sasl2 { "additional-data" } else { "success" });
                verifier.server_final(&data).expect("server signature");
            }
        }
    }
}
