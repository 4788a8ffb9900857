//! The SCRAM client: precomputed keys and rejection of bad server messages.

use super::*;

fn client(nonce: &str) -> ScramClient {
    ScramClient::new(Hash::Sha1, "user", None, ClientBinding::NotSupported, nonce).unwrap()
}

fn client_first_err(server_first: &str) -> ScramError {
    client("abc")
        .server_first(server_first.as_bytes(), ClientSecret::Password("pencil"))
        .unwrap_err()
}

#[test]
fn precomputed_keys_reproduce_rfc5802_exchange() {
    let salt = b64("QSXCR+Q6sek8bf92");
    let keys = ClientKeys::derive(Hash::Sha1, "pencil", &salt, 4096).unwrap();
    assert_eq!(
        (keys.hash(), keys.salt(), keys.iterations()),
        (Hash::Sha1, &salt[..], 4096)
    );
    let (msg, state) = client(SHA1.client_first.rsplit_once("r=").unwrap().1)
        .server_first(SHA1.server_first.as_bytes(), ClientSecret::Keys(&keys))
        .unwrap();
    assert_eq!(String::from_utf8(msg).unwrap(), SHA1.client_final);
    assert_eq!(state.keys(), &keys);
    state.server_final(SHA1.server_final.as_bytes()).unwrap();
    assert!(!format!("{keys:?}").contains(&format!("{:?}", keys.salt())));
}

#[test]
fn keys_from_salted_password() {
    let salt = b64("QSXCR+Q6sek8bf92");
    let salted = Hash::Sha1.hi(b"pencil", &salt, 4096);
    let keys = ClientKeys::from_salted_password(Hash::Sha1, &salted, &salt, 4096).unwrap();
    assert_eq!(
        keys,
        ClientKeys::derive(Hash::Sha1, "pencil", &salt, 4096).unwrap()
    );
    assert_eq!(
        ClientKeys::from_salted_password(Hash::Sha256, &salted, &salt, 4096),
        Err(CredentialError::KeyLength)
    );
}

#[test]
fn stale_or_foreign_keys_rejected() {
    let keys = ClientKeys::derive(Hash::Sha1, "pencil", b"salt", 16).unwrap();
    let stale = client("abc")
        .server_first(b"r=abcdef,s=c2FsdA==,i=17", ClientSecret::Keys(&keys))
        .unwrap_err();
    assert_eq!(stale, ScramError::Credentials(CredentialError::StaleKeys));
    let other_salt = client("abc")
        .server_first(b"r=abcdef,s=c2FsdDI=,i=16", ClientSecret::Keys(&keys))
        .unwrap_err();
    assert_eq!(
        other_salt,
        ScramError::Credentials(CredentialError::StaleKeys)
    );
    let sha256 = ClientKeys::derive(Hash::Sha256, "pencil", b"salt", 16).unwrap();
    let err = client("abc")
        .server_first(b"r=abcdef,s=c2FsdA==,i=16", ClientSecret::Keys(&sha256))
        .unwrap_err();
    assert_eq!(
        err,
        ScramError::Credentials(CredentialError::HashMismatch {
            mechanism: Hash::Sha1,
            credentials: Hash::Sha256
        })
    );
}

#[test]
fn client_rejects_bad_server_first() {
    assert_eq!(
        client_first_err("r=abc,s=c2FsdA==,i=16"),
        ScramError::NonceMismatch
    );
    assert_eq!(
        client_first_err("r=xbcdef,s=c2FsdA==,i=16"),
        ScramError::NonceMismatch
    );
    assert_eq!(
        client_first_err("m=x,r=abcdef,s=c2FsdA==,i=16"),
        ScramError::ExtensionsNotSupported
    );
    assert_eq!(
        client_first_err("r=abcdef,s=c2F*dA==,i=16"),
        ScramError::InvalidBase64 { attribute: 's' }
    );
    let malformed = [
        ("r=abcdef,s=,i=16", ScramSyntax::EmptySalt),
        ("r=abcdef,s=c2FsdA==,i=0", ScramSyntax::InvalidIterations),
        ("r=abcdef,s=c2FsdA==,i=+16", ScramSyntax::InvalidIterations),
        ("r=abcdef,s=c2FsdA==,i=", ScramSyntax::InvalidIterations),
        (
            "r=abcdef,s=c2FsdA==,i=99999999999",
            ScramSyntax::InvalidIterations,
        ),
        ("r=abcdef,i=16", ScramSyntax::MissingAttribute('s')),
        ("r=abcdef,s=c2FsdA==", ScramSyntax::MissingAttribute('i')),
        ("r=abc de,s=c2FsdA==,i=16", ScramSyntax::InvalidNonce),
    ];
    for (msg, syntax) in malformed {
        assert_eq!(
            client_first_err(msg),
            ScramError::Malformed(syntax),
            "{msg}"
        );
    }
    // Extensions after i= are ignored.
    assert!(client("abc")
        .server_first(
            b"r=abcdef,s=c2FsdA==,i=16,h=xyz",
            ClientSecret::Password("pencil")
        )
        .is_ok());
}

#[test]
fn client_checks_server_final() {
    let creds = quick_creds(Hash::Sha1, "pencil");
    let server_first = format!("r=abcdef,s={},i=16", encode_base64(&creds.salt));
    let run = |server_final: &str| {
        let (_, state) = client("abc")
            .server_first(server_first.as_bytes(), ClientSecret::Password("pencil"))
            .unwrap();
        state.server_final(server_final.as_bytes())
    };
    let err = run("e=invalid-proof").unwrap_err();
    assert_eq!(
        err,
        ScramError::ServerRejected {
            value: "invalid-proof".to_owned()
        }
    );
    assert_eq!(err.server_error_value(), "invalid-proof");
    assert_eq!(err.condition(), SaslCondition::NotAuthorized);
    assert_eq!(
        run("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap_err(),
        ScramError::InvalidServerSignature
    );
    assert_eq!(
        run("v=AA*A").unwrap_err(),
        ScramError::InvalidBase64 { attribute: 'v' }
    );
    assert_eq!(
        run("x=1").unwrap_err(),
        ScramError::Malformed(ScramSyntax::MissingAttribute('v'))
    );

    // The genuine signature from a server with the same credentials is accepted.
    let first = ScramServer::new(Hash::Sha1, false, false, ChannelBindings::none())
        .client_first(b"n,,n=user,r=abc")
        .unwrap();
    let (_, state) = first.server_first_with_nonce(&creds, "def").unwrap();
    let (msg, client_state) = client("abc")
        .server_first(server_first.as_bytes(), ClientSecret::Password("pencil"))
        .unwrap();
    let success = state.client_final(&msg).unwrap();
    client_state.server_final(&success.server_final).unwrap();
}

#[test]
fn client_construction_validates_and_escapes() {
    let c = ScramClient::new(
        Hash::Sha256,
        "a,b=c",
        Some("x=y"),
        ClientBinding::NotUsed,
        "n0nce",
    )
    .unwrap();
    assert_eq!(c.client_first(), b"y,a=x=3Dy,n=a=2Cb=3Dc,r=n0nce");
    let err = ScramClient::new(Hash::Sha256, "u", None, ClientBinding::NotSupported, "a,b");
    assert_eq!(
        err.unwrap_err(),
        ScramError::Malformed(ScramSyntax::InvalidNonce)
    );
    let err = ScramClient::new(
        Hash::Sha256,
        "u\u{7}",
        None,
        ClientBinding::NotSupported,
        "ab",
    );
    assert_eq!(
        err.unwrap_err(),
        ScramError::InvalidUsername(crate::PrepError::Prohibited)
    );
    assert!(!format!("{:?}", ClientSecret::Password("hunter2")).contains("hunter2"));
}

/// XEP-0474: the server's `h=` rides in server-first and is covered by both proofs; a client
/// that expects the hash of what it was offered accepts it, one that was offered a list with
/// a mechanism stripped detects the downgrade before it sends a proof, and a client that does
/// not check ignores it.
#[test]
fn a_downgrade_hash_in_server_first_is_checked_by_the_client() {
    use crate::ssdp::downgrade_hash;
    let advertised = ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"];
    let cb = ["tls-exporter"];
    let h = downgrade_hash(Hash::Sha256, &advertised, &cb);
    let creds = quick_creds(Hash::Sha256, "pw");
    let run = |expect: Option<String>| {
        let mut client = ScramClient::new(
            Hash::Sha256,
            "user",
            None,
            ClientBinding::NotSupported,
            "cnonce",
        )
        .unwrap();
        if let Some(expect) = expect {
            client = client.expect_downgrade_hash(expect);
        }
        let server = ScramServer::new(Hash::Sha256, false, false, ChannelBindings::none())
            .with_downgrade_hash(h.clone());
        let first = server.client_first(&client.client_first()).unwrap();
        let (server_first, server) = first.server_first(&creds, &[7u8; 18]).unwrap();
        assert!(
            String::from_utf8_lossy(&server_first).ends_with(&format!(",h={h}")),
            "{}",
            String::from_utf8_lossy(&server_first)
        );
        let (client_final, client) =
            client.server_first(&server_first, ClientSecret::Password("pw"))?;
        let success = server.client_final(&client_final).expect("proof covers h=");
        client
            .server_final(&success.server_final)
            .expect("signature covers h=");
        Ok::<(), ScramError>(())
    };
    run(Some(h.clone())).expect("matching hash");
    run(None).expect("a client that does not check");
    // What a client sees after a man in the middle removed the -PLUS mechanism and the
    // channel-binding list.
    let stripped = downgrade_hash(Hash::Sha256, &["SCRAM-SHA-256", "PLAIN"], &[]);
    let err = run(Some(stripped.clone())).unwrap_err();
    assert_eq!(
        err,
        ScramError::DowngradeHashMismatch {
            expected: stripped,
            received: h.clone()
        }
    );
    assert_eq!(err.condition(), SaslCondition::NotAuthorized);
    // A server-first with two h= (one right, one wrong) is malformed, not half-checked.
    let client = ScramClient::new(
        Hash::Sha256,
        "user",
        None,
        ClientBinding::NotSupported,
        "cn",
    )
    .unwrap()
    .expect_downgrade_hash(h.clone());
    let twice = format!("r=cnXYZ,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=16,h={h},h=AAAA");
    assert!(matches!(
        client.server_first(twice.as_bytes(), ClientSecret::Password("pw")),
        Err(ScramError::Malformed(_))
    ));
}
