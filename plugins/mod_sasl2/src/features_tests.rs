use tessera_plugin_api::protocol::ChannelBindings as ApiBindings;

use super::*;

use crate::config::mechanism_specs;

fn stream(exporter: bool, endpoint: bool) -> StreamInfo {
    StreamInfo {
        id: 1,
        domain: "example.org".into(),
        secure: true,
        channel_bindings: ApiBindings {
            tls_exporter: exporter.then(|| vec![1; 32]),
            tls_server_end_point: endpoint.then(|| vec![2; 32]),
        },
        ..StreamInfo::default()
    }
}

fn ht(name: &str, cb: Option<&str>) -> MechanismSpec {
    MechanismSpec {
        name: name.into(),
        priority: 0,
        tls_only: true,
        sasl2: true,
        legacy: false,
        channel_binding: cb.map(str::to_owned),
        hidden: true,
    }
}

fn names(list: &[MechanismSpec]) -> Vec<&str> {
    list.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn plus_mechanisms_need_channel_binding_data() {
    let without = usable(mechanism_specs(), &stream(false, false), Profile::Sasl2);
    assert_eq!(
        names(&without),
        ["SCRAM-SHA-512", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
    );
    let with = usable(mechanism_specs(), &stream(true, false), Profile::Sasl2);
    assert_eq!(with.len(), 7);
    // An unencrypted stream has no channel binding even if data were present.
    let mut plain = stream(true, true);
    plain.secure = false;
    assert!(!offers_plus(&plain));
    assert!(cb_types(&plain).is_empty());
}

#[test]
fn declared_channel_binding_types_and_hidden_mechanisms_are_filtered() {
    let list = vec![
        ht("HT-SHA-256-EXPR", Some("tls-exporter")),
        ht("HT-SHA-256-ENDP", Some("tls-server-end-point")),
        ht("HT-SHA-256-UNIQ", Some("tls-unique")),
        ht("HT-SHA-256-NONE", None),
    ];
    // Ed25519 certificate: no tls-server-end-point.
    let s = stream(true, false);
    assert_eq!(
        names(&usable(list.clone(), &s, Profile::Sasl2)),
        ["HT-SHA-256-EXPR", "HT-SHA-256-NONE"]
    );
    assert!(usable(list, &s, Profile::Rfc6120).is_empty());
}

#[test]
fn full_advertisement_with_channel_binding() {
    let s = stream(true, true);
    let mut sasl2 = usable(mechanism_specs(), &s, Profile::Sasl2);
    sasl2.push(ht("HT-SHA-256-NONE", None));
    let out = build(Advertisement {
        legacy: usable(mechanism_specs(), &s, Profile::Rfc6120),
        sasl2,
        cb_types: cb_types(&s),
        bind2_inline: vec![Element::new("feature", BIND2_NS).with_attr("var", "urn:xmpp:carbons:2")],
        sasl2_inline: vec![Element::new("fast", "urn:xmpp:fast:0")],
        // Listed once each, after <inline/>, whatever the replies repeat.
        upgrades: vec![
            "UPGR-SCRAM-SHA-512".into(),
            "UPGR-EXAMPLE".into(),
            "UPGR-SCRAM-SHA-512".into(),
        ],
    });
    let xml: Vec<String> = out.iter().map(Element::to_xml).collect();
    let list = "<mechanism>SCRAM-SHA-512-PLUS</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism>\
                <mechanism>SCRAM-SHA-512</mechanism><mechanism>SCRAM-SHA-256</mechanism>\
                <mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism>\
                <mechanism>PLAIN</mechanism>";
    assert_eq!(
        xml,
        [
            format!("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{list}</mechanisms>"),
            format!(
                "<authentication xmlns='urn:xmpp:sasl:2'>{list}<inline>\
                 <bind xmlns='urn:xmpp:bind:0'><inline>\
                 <feature var='urn:xmpp:carbons:2'/></inline></bind>\
                 <fast xmlns='urn:xmpp:fast:0'/></inline>\
                 <upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-512</upgrade>\
                 <upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-EXAMPLE</upgrade>\
                 </authentication>"
            ),
            "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>\
             <channel-binding type='tls-server-end-point'/>\
             <channel-binding type='tls-exporter'/></sasl-channel-binding>"
                .to_owned(),
        ]
    );
}

#[test]
fn no_channel_binding_means_no_plus_and_no_cb_list() {
    let s = stream(false, false);
    let out = build(Advertisement {
        legacy: usable(mechanism_specs(), &s, Profile::Rfc6120),
        sasl2: usable(mechanism_specs(), &s, Profile::Sasl2),
        cb_types: cb_types(&s),
        ..Advertisement::default()
    });
    assert_eq!(out.len(), 2);
    let all: String = out.iter().map(Element::to_xml).collect();
    assert!(!all.contains("-PLUS"), "{all}");
    assert!(!all.contains("sasl-channel-binding"), "{all}");
    // The Bind 2 advertisement is there even without inline features.
    assert!(
        all.contains("<inline><bind xmlns='urn:xmpp:bind:0'><inline/></bind></inline>"),
        "{all}"
    );
}

#[test]
fn exporter_only_lists_only_exporter() {
    let s = stream(true, false);
    let out = build(Advertisement {
        legacy: usable(mechanism_specs(), &s, Profile::Rfc6120),
        sasl2: usable(mechanism_specs(), &s, Profile::Sasl2),
        cb_types: cb_types(&s),
        ..Advertisement::default()
    });
    assert_eq!(
        out.last().map(Element::to_xml).as_deref(),
        Some(
            "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>\
             <channel-binding type='tls-exporter'/></sasl-channel-binding>"
        )
    );
}

#[test]
fn empty_or_hidden_only_lists_are_not_advertised() {
    let out = build(Advertisement {
        sasl2: vec![ht("HT-SHA-256-NONE", None)],
        cb_types: vec![CbType::TlsExporter],
        ..Advertisement::default()
    });
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn hook_replies_are_element_lists_and_garbage_is_skipped() {
    let a = Element::new("a", "urn:a");
    let b = Element::new("b", "urn:b");
    let encode = |v: &Vec<Element>| tessera_plugin_api::wire::encode(v).unwrap_or_default();
    let replies = vec![
        encode(&vec![a.clone()]),
        b"\xff\x01nonsense".to_vec(),
        encode(&vec![]),
        encode(&vec![b.clone()]),
    ];
    assert_eq!(elements_from_replies(replies), vec![a, b]);
}

#[test]
fn sha512_is_offered_only_where_the_named_account_has_the_verifier() {
    use tessera_plugin_api::protocol::NamedAccount;
    let with = |hashes: &[ScramHash]| StreamInfo {
        named_account: Some(NamedAccount {
            scram_hashes: hashes.to_vec(),
        }),
        ..stream(true, true)
    };
    assert!(!sha512_offered(&stream(true, true)));
    assert!(!sha512_offered(&with(&[
        ScramHash::Sha1,
        ScramHash::Sha256
    ])));
    assert!(sha512_offered(&with(&[
        ScramHash::Sha1,
        ScramHash::Sha256,
        ScramHash::Sha512
    ])));
}
