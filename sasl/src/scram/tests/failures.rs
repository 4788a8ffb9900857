//! Every server-side failure rule, each with its exact variant, `e=` value and condition.

use super::*;

/// Asserts the variant, the RFC 5802 `e=` text and the RFC 6120 condition.
fn assert_failure(err: ScramError, expected: ScramError, e_value: &str, cond: SaslCondition) {
    assert_eq!(err, expected);
    assert_eq!(err.server_error_value(), e_value, "{err}");
    assert_eq!(err.condition(), cond, "{err}");
    assert_eq!(
        err.server_final_message(),
        format!("e={e_value}").into_bytes()
    );
}

fn server(plus: bool, offers_plus: bool, bindings: ChannelBindings) -> ScramServer {
    ScramServer::new(Hash::Sha256, plus, offers_plus, bindings)
}

fn first_err(server: ScramServer, msg: &str) -> ScramError {
    server.client_first(msg.as_bytes()).unwrap_err()
}

/// Server state after a valid SHA-256 client-first (`n,,n=user,r=abc`) and server nonce `def`.
fn awaiting_final(password: &str) -> ScramServerFirst {
    let creds = quick_creds(Hash::Sha256, password);
    let first = server(false, false, ChannelBindings::none())
        .client_first(b"n,,n=user,r=abc")
        .unwrap();
    first.server_first_with_nonce(&creds, "def").unwrap().1
}

/// A correct client-final for [`awaiting_final`] with password "pencil".
fn good_final() -> String {
    let creds = quick_creds(Hash::Sha256, "pencil");
    let client = ScramClient::new(
        Hash::Sha256,
        "user",
        None,
        ClientBinding::NotSupported,
        "abc",
    )
    .unwrap();
    let server_first = format!("r=abcdef,s={},i=16", encode_base64(&creds.salt));
    let (msg, _) = client
        .server_first(server_first.as_bytes(), ClientSecret::Password("pencil"))
        .unwrap();
    String::from_utf8(msg).unwrap()
}

fn final_err(msg: &str) -> ScramError {
    awaiting_final("pencil")
        .client_final(msg.as_bytes())
        .unwrap_err()
}

#[test]
fn good_final_is_accepted() {
    assert!(awaiting_final("pencil")
        .client_final(good_final().as_bytes())
        .is_ok());
}

#[test]
fn wrong_proof() {
    let err = awaiting_final("not-pencil")
        .client_final(good_final().as_bytes())
        .unwrap_err();
    assert_failure(
        err,
        ScramError::InvalidProof,
        "invalid-proof",
        SaslCondition::NotAuthorized,
    );
    // A flipped proof bit with the right password fails too.
    let msg = good_final();
    let (head, proof) = msg.rsplit_once(",p=").unwrap();
    let mut proof = b64(proof);
    proof[0] ^= 1;
    let tampered = format!("{head},p={}", encode_base64(&proof));
    assert_eq!(final_err(&tampered), ScramError::InvalidProof);
}

#[test]
fn wrong_nonce() {
    for nonce in ["abcdeX", "abc", "abcdefg", "abcDEF"] {
        let msg = good_final().replace("r=abcdef", &format!("r={nonce}"));
        let err = final_err(&msg);
        assert_failure(
            err,
            ScramError::NonceMismatch,
            "other-error",
            SaslCondition::NotAuthorized,
        );
    }
}

#[test]
fn bad_channel_binding_attribute() {
    // b64("y,,"), b64("n,a=x,") and b64("n,,x"): not exactly the GS2 header the client sent.
    for c in ["eSws", "bixhPXgs", "biwseA=="] {
        let msg = good_final().replace("c=biws", &format!("c={c}"));
        let err = final_err(&msg);
        assert_failure(
            err,
            ScramError::ChannelBindingsDontMatch,
            "channel-bindings-dont-match",
            SaslCondition::NotAuthorized,
        );
    }
}

#[test]
fn plus_with_other_cb_data_does_not_match() {
    let creds = quick_creds(Hash::Sha256, "pencil");
    let binding = ClientBinding::Bound {
        cb_type: CbType::TlsExporter,
        data: vec![0; 32],
    };
    let client = ScramClient::new(Hash::Sha256, "user", None, binding, "abc").unwrap();
    let first = server(true, true, exporter_bindings())
        .client_first(&client.client_first())
        .unwrap();
    let (server_first, state) = first.server_first(&creds, &[1; 32]).unwrap();
    let (msg, _) = client
        .server_first(&server_first, ClientSecret::Password("pencil"))
        .unwrap();
    let err = state.client_final(&msg).unwrap_err();
    assert_failure(
        err,
        ScramError::ChannelBindingsDontMatch,
        "channel-bindings-dont-match",
        SaslCondition::NotAuthorized,
    );
}

#[test]
fn y_downgrade_detected() {
    let err = first_err(server(false, true, exporter_bindings()), "y,,n=user,r=abc");
    assert_failure(
        err,
        ScramError::DowngradeDetected,
        "server-does-support-channel-binding",
        SaslCondition::NotAuthorized,
    );
    // Without a -PLUS offer, `y` is fine; `n` is always fine.
    assert!(server(false, false, exporter_bindings())
        .client_first(b"y,,n=user,r=abc")
        .is_ok());
    assert!(server(false, true, exporter_bindings())
        .client_first(b"n,,n=user,r=abc")
        .is_ok());
}

#[test]
fn mandatory_extension_rejected() {
    let err = first_err(
        server(false, false, ChannelBindings::none()),
        "n,,m=foo,n=user,r=abc",
    );
    assert_failure(
        err,
        ScramError::ExtensionsNotSupported,
        "extensions-not-supported",
        SaslCondition::MalformedRequest,
    );
}

#[test]
fn plus_without_p_rejected() {
    for msg in ["n,,n=user,r=abc", "y,,n=user,r=abc"] {
        let err = first_err(server(true, true, exporter_bindings()), msg);
        assert_failure(
            err,
            ScramError::ChannelBindingRequired,
            "other-error",
            SaslCondition::MalformedRequest,
        );
    }
}

#[test]
fn p_on_non_plus_rejected() {
    let err = first_err(
        server(false, true, exporter_bindings()),
        "p=tls-exporter,,n=user,r=abc",
    );
    assert_failure(
        err,
        ScramError::UnexpectedChannelBinding,
        "other-error",
        SaslCondition::MalformedRequest,
    );
}

#[test]
fn unsupported_cb_type_rejected() {
    for ty in ["tls-server-end-point", "tls-unique", "made-up"] {
        let msg = format!("p={ty},,n=user,r=abc");
        let err = first_err(server(true, true, exporter_bindings()), &msg);
        assert_failure(
            err,
            ScramError::UnsupportedChannelBindingType,
            "unsupported-channel-binding-type",
            SaslCondition::MalformedRequest,
        );
    }
    let err = first_err(
        server(true, true, ChannelBindings::none()),
        "p=tls-exporter,,n=user,r=abc",
    );
    assert_failure(
        err,
        ScramError::ChannelBindingNotSupported,
        "channel-binding-not-supported",
        SaslCondition::MalformedRequest,
    );
}

#[test]
fn bad_saslname_escape_rejected() {
    for name in ["us=3Xer", "user=", "us=2cer", "=41"] {
        let msg = format!("n,,n={name},r=abc");
        let err = first_err(server(false, false, ChannelBindings::none()), &msg);
        assert_failure(
            err,
            ScramError::BadUsernameEscape,
            "invalid-username-encoding",
            SaslCondition::MalformedRequest,
        );
    }
    let err = first_err(
        server(false, false, ChannelBindings::none()),
        "n,,n=user@host,r=abc",
    );
    assert_failure(
        err,
        ScramError::InvalidUsername(crate::PrepError::NotALocalpart),
        "invalid-username-encoding",
        SaslCondition::MalformedRequest,
    );
    let err = first_err(
        server(false, false, ChannelBindings::none()),
        "n,,n=us\u{7}er,r=abc",
    );
    assert_eq!(
        err,
        ScramError::InvalidUsername(crate::PrepError::Prohibited)
    );
    let err = first_err(
        server(false, false, ChannelBindings::none()),
        "n,a=ad=mn,n=user,r=abc",
    );
    assert_failure(
        err,
        ScramError::InvalidAuthzid,
        "invalid-encoding",
        SaslCondition::InvalidAuthzid,
    );
}

#[test]
fn bad_base64_in_c_and_p() {
    let msg = good_final().replace("c=biws", "c=bi*s");
    let err = final_err(&msg);
    assert_failure(
        err,
        ScramError::InvalidBase64 { attribute: 'c' },
        "invalid-encoding",
        SaslCondition::IncorrectEncoding,
    );
    let (head, _) = good_final()
        .rsplit_once(",p=")
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();
    let err = final_err(&format!("{head},p=!!!!"));
    assert_eq!(err, ScramError::InvalidBase64 { attribute: 'p' });
}

#[test]
fn malformed_client_first() {
    let cases: &[(&[u8], ScramSyntax)] = &[
        (b"n,,r=abc,n=user", ScramSyntax::MissingAttribute('n')),
        (b"n,,n=user", ScramSyntax::MissingAttribute('r')),
        (b"n,,n=user,x=1,r=abc", ScramSyntax::MissingAttribute('r')),
        (b"n,,n=user,r=", ScramSyntax::InvalidNonce),
        (b"n,,n=user,r=a\x7fb", ScramSyntax::InvalidNonce),
        (b"n,,n=user,r=abc,xx", ScramSyntax::BadAttribute),
        (b"n,,n=us\xffer,r=abc", ScramSyntax::NotUtf8),
        (b"q,,n=user,r=abc", ScramSyntax::Gs2Header),
        (b"", ScramSyntax::Gs2Header),
    ];
    for (msg, syntax) in cases {
        let err = server(false, false, ChannelBindings::none())
            .client_first(msg)
            .unwrap_err();
        assert_failure(
            err,
            ScramError::Malformed(*syntax),
            "invalid-encoding",
            SaslCondition::MalformedRequest,
        );
    }
    let long = format!("n,,n=user,r={}", "a".repeat(MAX_MESSAGE_LEN));
    let err = first_err(server(false, false, ChannelBindings::none()), &long);
    assert_eq!(
        err,
        ScramError::Malformed(ScramSyntax::TooLong { len: long.len() })
    );
}

#[test]
fn malformed_client_final() {
    let good = good_final();
    let (head, proof) = good.rsplit_once(",p=").unwrap();
    let cases = [
        (head.to_owned(), ScramSyntax::MissingAttribute('p')),
        (format!("{head},p={proof},x=1"), ScramSyntax::BadAttribute),
        (
            format!("r=abcdef,c=biws,p={proof}"),
            ScramSyntax::MissingAttribute('c'),
        ),
        (
            format!("c=biws,p={proof}"),
            ScramSyntax::MissingAttribute('r'),
        ),
        (
            format!("{head},p=AAAA"),
            ScramSyntax::ProofLength { len: 3 },
        ),
        (format!("{head},7=x,p={proof}"), ScramSyntax::BadAttribute),
    ];
    for (msg, syntax) in cases {
        assert_eq!(final_err(&msg), ScramError::Malformed(syntax), "{msg}");
    }
    // Optional extensions before the proof are accepted syntactically but are covered by the
    // AuthMessage, so the client's proof (computed without them) fails.
    assert_eq!(
        final_err(&format!("{head},x=1,p={proof}")),
        ScramError::InvalidProof
    );
}

#[test]
fn credentials_must_match_hash() {
    let creds = quick_creds(Hash::Sha1, "pencil");
    let first = server(false, false, ChannelBindings::none())
        .client_first(b"n,,n=user,r=abc")
        .unwrap();
    let err = first.server_first(&creds, &[0; 18]).unwrap_err();
    assert_failure(
        err,
        ScramError::Credentials(CredentialError::HashMismatch {
            mechanism: Hash::Sha256,
            credentials: Hash::Sha1,
        }),
        "other-error",
        SaslCondition::TemporaryAuthFailure,
    );
    let mut broken = quick_creds(Hash::Sha256, "pencil");
    broken.stored_key.pop();
    let first = server(false, false, ChannelBindings::none())
        .client_first(b"n,,n=user,r=abc")
        .unwrap();
    let err = first.server_first(&broken, &[0; 18]).unwrap_err();
    assert_eq!(err, ScramError::Credentials(CredentialError::KeyLength));
}

#[test]
fn server_nonce_requirements() {
    let creds = quick_creds(Hash::Sha256, "pencil");
    let first = || {
        server(false, false, ChannelBindings::none())
            .client_first(b"n,,n=u,r=abc")
            .unwrap()
    };
    let err = first().server_first(&creds, &[0; 17]).unwrap_err();
    assert_failure(
        err,
        ScramError::InsufficientRandomness { len: 17 },
        "other-error",
        SaslCondition::TemporaryAuthFailure,
    );
    for bad in ["", "a,b", "a b"] {
        let err = first().server_first_with_nonce(&creds, bad).unwrap_err();
        assert_eq!(err, ScramError::InvalidServerNonce, "{bad:?}");
    }
    let (msg, _) = first().server_first(&creds, &[0; 18]).unwrap();
    assert!(msg.starts_with(b"r=abcAAAAAAAAAAAAAAAAAAAAAAAA,s="));
}
