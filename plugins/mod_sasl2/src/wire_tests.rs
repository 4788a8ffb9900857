use super::*;
use tessera_plugin_api::SaslCondition;

#[test]
fn classify_by_name_and_namespace() {
    let cases = [
        (Element::new("authenticate", SASL2_NS), "initiate-sasl2"),
        (Element::new("auth", SASL_NS), "initiate-legacy"),
        (Element::new("response", SASL2_NS), "response-sasl2"),
        (Element::new("response", SASL_NS), "response-legacy"),
        (Element::new("abort", SASL_NS), "abort-legacy"),
        (Element::new("next", SASL2_NS), "next"),
        (Element::new("task-data", SASL2_NS), "task-data"),
        (Element::new("auth", SASL2_NS), "other"),
        (Element::new("authenticate", SASL_NS), "other"),
        (Element::new("response", "jabber:client"), "other"),
    ];
    for (el, expected) in cases {
        let got = match classify(&el) {
            Incoming::Initiate(Profile::Sasl2, _) => "initiate-sasl2",
            Incoming::Initiate(Profile::Rfc6120, _) => "initiate-legacy",
            Incoming::Response(Profile::Sasl2, _) => "response-sasl2",
            Incoming::Response(Profile::Rfc6120, _) => "response-legacy",
            Incoming::Abort(Profile::Rfc6120) => "abort-legacy",
            Incoming::Abort(Profile::Sasl2) => "abort-sasl2",
            Incoming::Next(_) => "next",
            Incoming::TaskData(_) => "task-data",
            Incoming::Other => "other",
        };
        assert_eq!(got, expected, "{}", el.to_xml());
    }
}

#[test]
fn payload_decoding_follows_each_profile() {
    assert_eq!(decode_payload(Profile::Rfc6120, "="), Ok(Vec::new()));
    assert_eq!(decode_payload(Profile::Rfc6120, " = "), Ok(Vec::new()));
    assert_eq!(decode_payload(Profile::Sasl2, "="), Err(BadEncoding));
    assert_eq!(decode_payload(Profile::Sasl2, ""), Ok(Vec::new()));
    assert_eq!(
        decode_payload(Profile::Sasl2, " biws\n bj11\r\n\tc2Vy "),
        Ok(b"n,,n=user".to_vec())
    );
    assert_eq!(decode_payload(Profile::Rfc6120, "dXN*"), Err(BadEncoding));
}

#[test]
fn initial_response_absent_empty_and_present() {
    let sasl2 = Element::new("authenticate", SASL2_NS);
    assert_eq!(initial_response(Profile::Sasl2, &sasl2), Ok(None));
    let empty = sasl2
        .clone()
        .with_child(Element::new("initial-response", SASL2_NS));
    assert_eq!(
        initial_response(Profile::Sasl2, &empty),
        Ok(Some(Vec::new()))
    );
    let bad = sasl2.with_child(Element::new("initial-response", SASL2_NS).with_text("%%%"));
    assert_eq!(initial_response(Profile::Sasl2, &bad), Err(BadEncoding));

    let auth = Element::new("auth", SASL_NS);
    assert_eq!(initial_response(Profile::Rfc6120, &auth), Ok(None));
    assert_eq!(
        initial_response(Profile::Rfc6120, &auth.clone().with_text("  \n")),
        Ok(None)
    );
    assert_eq!(
        initial_response(Profile::Rfc6120, &auth.clone().with_text("=")),
        Ok(Some(Vec::new()))
    );
    assert_eq!(
        initial_response(Profile::Rfc6120, &auth.with_text("dXNlcg==")),
        Ok(Some(b"user".to_vec()))
    );
}

#[test]
fn user_agent_id_of_1_to_128_characters_is_accepted() {
    let with_id = |id: &str| {
        Element::new("authenticate", SASL2_NS)
            .with_child(Element::new("user-agent", SASL2_NS).with_attr("id", id))
    };
    assert_eq!(
        user_agent_id(&with_id("smack-client-instance")).as_deref(),
        Some("smack-client-instance")
    );
    let max: String = "é".repeat(MAX_USER_AGENT_ID);
    assert_eq!(user_agent_id(&with_id(&max)), Some(max.clone()));
    assert_eq!(user_agent_id(&with_id(&format!("{max}x"))), None);
    assert_eq!(user_agent_id(&with_id("")), None);
    let no_id =
        Element::new("authenticate", SASL2_NS).with_child(Element::new("user-agent", SASL2_NS));
    assert_eq!(user_agent_id(&no_id), None);
    assert_eq!(user_agent_id(&Element::new("authenticate", SASL2_NS)), None);
}

#[test]
fn challenges_encode_empty_data_per_profile() {
    assert_eq!(
        challenge(Profile::Rfc6120, b"").to_xml(),
        "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</challenge>"
    );
    assert_eq!(
        challenge(Profile::Sasl2, b"").to_xml(),
        "<challenge xmlns='urn:xmpp:sasl:2'/>"
    );
    assert_eq!(
        challenge(Profile::Sasl2, b"r=abc").to_xml(),
        "<challenge xmlns='urn:xmpp:sasl:2'>cj1hYmM=</challenge>"
    );
}

#[test]
fn failure_puts_condition_in_sasl_ns_and_text_in_profile_ns() {
    assert_eq!(
        failure(
            Profile::Sasl2,
            SaslCondition::NotAuthorized,
            Some("invalid-proof"),
            None
        )
        .to_xml(),
        "<failure xmlns='urn:xmpp:sasl:2'>\
         <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\
         <text xml:lang='en'>invalid-proof</text></failure>"
    );
    assert_eq!(
        failure(Profile::Rfc6120, SaslCondition::Aborted, None, None).to_xml(),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>"
    );
    let app = Element::new("x", "urn:example:app");
    assert_eq!(
        failure(
            Profile::Rfc6120,
            SaslCondition::NotAuthorized,
            Some(""),
            Some(app)
        )
        .to_xml(),
        "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>\
         <x xmlns='urn:example:app'/></failure>"
    );
}

#[test]
fn success_elements() {
    assert_eq!(
        legacy_success(Some(b"v=abc")).to_xml(),
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1hYmM=</success>"
    );
    assert_eq!(
        legacy_success(Some(b"")).to_xml(),
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</success>"
    );
    assert_eq!(
        legacy_success(None).to_xml(),
        "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
    );
    assert_eq!(
        sasl2_success(
            Some(b"v=abc"),
            "a@example.org/r",
            vec![Element::new("t", "urn:x")]
        )
        .to_xml(),
        "<success xmlns='urn:xmpp:sasl:2'><additional-data>dj1hYmM=</additional-data>\
         <authorization-identifier>a@example.org/r</authorization-identifier>\
         <t xmlns='urn:x'/></success>"
    );
    assert_eq!(
        sasl2_success(None, "a@example.org", Vec::new()).to_xml(),
        "<success xmlns='urn:xmpp:sasl:2'>\
         <authorization-identifier>a@example.org</authorization-identifier></success>"
    );
}

#[test]
fn continue_and_task_data_elements() {
    assert_eq!(
        continue_tasks(Some(b"v"), &["HOTP".into(), "TOTP".into()]).to_xml(),
        "<continue xmlns='urn:xmpp:sasl:2'><additional-data>dg==</additional-data>\
         <tasks><task>HOTP</task><task>TOTP</task></tasks></continue>"
    );
    assert_eq!(
        task_data(vec![Element::new("otp", "urn:x")]).to_xml(),
        "<task-data xmlns='urn:xmpp:sasl:2'><otp xmlns='urn:x'/></task-data>"
    );
}
