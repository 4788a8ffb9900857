//! SCRAM tests: the official vectors (RFC 5802 §5, RFC 7677 §3), the computed -PLUS vector of
//! protocols.md §7.5, every failure rule, credentials and the client.

mod client;
mod credentials;
mod failures;

use super::*;
use crate::{decode_base64_lenient, encode_base64, Hash, SaslCondition};

/// tls-exporter cb-data from the XEP-0388 example (protocols.md §6.7, §7.5).
const EXPORTER_CB_HEX: &str = "c72842f39d04378f7783acc25980595ddd8356b55a1d6d60f4c1c1589dd74554";

fn b64(s: &str) -> Vec<u8> {
    decode_base64_lenient(s).unwrap()
}

fn exporter_cb() -> Vec<u8> {
    (0..EXPORTER_CB_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&EXPORTER_CB_HEX[i..i + 2], 16).unwrap())
        .collect()
}

fn exporter_bindings() -> ChannelBindings {
    ChannelBindings {
        tls_exporter: Some(exporter_cb()),
        tls_server_end_point: None,
    }
}

/// Credentials of the RFC vectors: user `user`, password `pencil`, i = 4096.
fn rfc_creds(hash: Hash) -> ScramCredentials {
    let salt = match hash {
        Hash::Sha1 => b64("QSXCR+Q6sek8bf92"),
        Hash::Sha256 | Hash::Sha512 => b64("W22ZaJ0SNY7soEsUEjb6gQ=="),
    };
    derive_credentials(hash, "pencil", &salt, 4096).unwrap()
}

/// Cheap credentials for the failure tests.
fn quick_creds(hash: Hash, password: &str) -> ScramCredentials {
    derive_credentials(hash, password, b"0123456789abcdef", 16).unwrap()
}

/// One recorded exchange: the four messages and the server nonce part.
struct Vector {
    hash: Hash,
    plus: bool,
    client_first: &'static str,
    server_nonce: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
}

const SHA1: Vector = Vector {
    hash: Hash::Sha1,
    plus: false,
    client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    server_nonce: "3rfcNHYJY1ZVvWVs7j",
    server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    client_final:
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

const SHA256: Vector = Vector {
    hash: Hash::Sha256,
    plus: false,
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

/// SCRAM-SHA-512 with RFC 7677's inputs (user `user`, password `pencil`, its salt, nonces and
/// 4096 iterations). Computed here, not official (no RFC has a SCRAM-SHA-512 example):
/// derived independently with Python's hashlib and hmac, and matched by this implementation.
/// StoredKey = 6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==,
/// ServerKey = jZHbYjC1aHh0/hKbxyBuGFjDrgjgKTT1esA7awWiKcRZ0o/0b1yWEebBeSVkkCFewf91nLDfKF24mvD5nmE6rA==.
const SHA512: Vector = Vector {
    hash: Hash::Sha512,
    plus: false,
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==",
    server_final: "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==",
};

const SHA256_PLUS: Vector = Vector {
    hash: Hash::Sha256,
    plus: true,
    client_first: "p=tls-exporter,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=cD10bHMtZXhwb3J0ZXIsLMcoQvOdBDePd4OswlmAWV3dg1a1Wh1tYPTBwVid10VU,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=4ZREbZFzbNred0cT33QQ4w8XIxy3Bn7L8aj+NZ8ug38=",
    server_final: "v=U54AkZWBuQWsYGDu23q0KJ23otacwebkO94Vp8I+Mq4=",
};

fn bindings_for(v: &Vector) -> ChannelBindings {
    if v.plus {
        exporter_bindings()
    } else {
        ChannelBindings::none()
    }
}

/// Drives the server through a vector and checks every byte it produces.
fn run_server_vector(v: &Vector) -> ScramSuccess {
    let creds = rfc_creds(v.hash);
    let server = ScramServer::new(v.hash, v.plus, v.plus, bindings_for(v));
    let first = server.client_first(v.client_first.as_bytes()).unwrap();
    assert_eq!(first.username(), "user");
    assert_eq!(first.authzid(), None);
    assert_eq!(first.hash(), v.hash);
    let (server_first, state) = first
        .server_first_with_nonce(&creds, v.server_nonce)
        .unwrap();
    assert_eq!(String::from_utf8(server_first).unwrap(), v.server_first);
    let success = state.client_final(v.client_final.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(success.server_final.clone()).unwrap(),
        v.server_final
    );
    assert_eq!(success.username, "user");
    assert_eq!(success.authzid, None);
    success
}

/// Drives the client through a vector and checks every byte it produces.
fn run_client_vector(v: &Vector) {
    let nonce = v.client_first.rsplit_once("r=").unwrap().1;
    let binding = if v.plus {
        ClientBinding::Bound {
            cb_type: CbType::TlsExporter,
            data: exporter_cb(),
        }
    } else {
        ClientBinding::NotSupported
    };
    let client = ScramClient::new(v.hash, "user", None, binding, nonce).unwrap();
    assert_eq!(client.client_first(), v.client_first.as_bytes());
    let (client_final, state) = client
        .server_first(v.server_first.as_bytes(), ClientSecret::Password("pencil"))
        .unwrap();
    assert_eq!(String::from_utf8(client_final).unwrap(), v.client_final);
    state.server_final(v.server_final.as_bytes()).unwrap();
}

#[test]
fn rfc5802_scram_sha1_server() {
    let success = run_server_vector(&SHA1);
    assert_eq!(success.channel_binding, None);
}

#[test]
fn rfc5802_scram_sha1_client() {
    run_client_vector(&SHA1);
}

#[test]
fn rfc5802_derived_keys() {
    let creds = rfc_creds(Hash::Sha1);
    assert_eq!(
        encode_base64(&creds.stored_key),
        "6dlGYMOdZcOPutkcNY8U2g7vK9Y="
    );
    assert_eq!(
        encode_base64(&creds.server_key),
        "D+CSWLOshSulAsxiupA+qs2/fTE="
    );
    assert_eq!(creds.iterations, 4096);
}

#[test]
fn rfc7677_scram_sha256_server() {
    let success = run_server_vector(&SHA256);
    assert_eq!(success.channel_binding, None);
}

#[test]
fn rfc7677_scram_sha256_client() {
    run_client_vector(&SHA256);
}

#[test]
fn rfc7677_derived_keys() {
    let creds = rfc_creds(Hash::Sha256);
    assert_eq!(
        encode_base64(&creds.stored_key),
        "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
    );
    assert_eq!(
        encode_base64(&creds.server_key),
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    );
}

#[test]
fn computed_scram_sha512_both_sides_and_keys() {
    run_server_vector(&SHA512);
    run_client_vector(&SHA512);
    let creds = rfc_creds(Hash::Sha512);
    assert_eq!(
        encode_base64(&creds.stored_key),
        "6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg=="
    );
    assert_eq!(Hash::Sha512.scram_mechanism(true), "SCRAM-SHA-512-PLUS");
    assert_eq!(Hash::Sha512.output_len(), creds.stored_key.len());
}

#[test]
fn computed_scram_sha256_plus_server() {
    let success = run_server_vector(&SHA256_PLUS);
    assert_eq!(success.channel_binding, Some(CbType::TlsExporter));
}

#[test]
fn computed_scram_sha256_plus_client() {
    run_client_vector(&SHA256_PLUS);
}

#[test]
fn plus_c_attribute_matches_protocols_doc() {
    let mut c = b"p=tls-exporter,,".to_vec();
    c.extend_from_slice(&exporter_cb());
    assert_eq!(
        encode_base64(&c),
        "cD10bHMtZXhwb3J0ZXIsLMcoQvOdBDePd4OswlmAWV3dg1a1Wh1tYPTBwVid10VU"
    );
}

#[test]
fn random_server_nonce_round_trip_with_authzid_and_endpoint_binding() {
    let creds = quick_creds(Hash::Sha1, "pencil");
    let bindings = ChannelBindings {
        tls_exporter: None,
        tls_server_end_point: Some(vec![9; 32]),
    };
    let binding = ClientBinding::Bound {
        cb_type: CbType::TlsServerEndPoint,
        data: vec![9; 32],
    };
    let client = ScramClient::new(
        Hash::Sha1,
        "user",
        Some("admin,x=y@example.org"),
        binding,
        "abc",
    )
    .unwrap();
    let first = ScramServer::new(Hash::Sha1, true, true, bindings)
        .client_first(&client.client_first())
        .unwrap();
    assert_eq!(first.authzid(), Some("admin,x=y@example.org"));
    assert_eq!(first.channel_binding(), Some(CbType::TlsServerEndPoint));
    let (server_first, state) = first.server_first(&creds, &[0xfe; 18]).unwrap();
    let text = String::from_utf8(server_first.clone()).unwrap();
    assert!(text.starts_with("r=abc/v7+/v7+"), "{text}");
    assert_eq!(text.split(',').next().unwrap().len(), 2 + 3 + 24);
    let (client_final, client) = client
        .server_first(&server_first, ClientSecret::Password("pencil"))
        .unwrap();
    let success = state.client_final(&client_final).unwrap();
    assert_eq!(success.authzid.as_deref(), Some("admin,x=y@example.org"));
    assert_eq!(success.channel_binding, Some(CbType::TlsServerEndPoint));
    client.server_final(&success.server_final).unwrap();
}

#[test]
fn optional_extensions_are_ignored_and_y_accepted_without_plus() {
    let creds = quick_creds(Hash::Sha256, "pencil");
    let server = ScramServer::new(Hash::Sha256, false, false, ChannelBindings::none());
    let first = server.client_first(b"y,,n=user,r=abc,x=ext").unwrap();
    assert_eq!(first.channel_binding(), None);
    let (_, state) = first.server_first_with_nonce(&creds, "def").unwrap();
    // Compute the proof with a client that sends `y` as well; `c=eSws` is b64("y,,").
    let client =
        ScramClient::new(Hash::Sha256, "user", None, ClientBinding::NotUsed, "abc").unwrap();
    let server_first = format!("r=abcdef,s={},i=16", encode_base64(&creds.salt));
    let (client_final, _) = client
        .server_first(server_first.as_bytes(), ClientSecret::Password("pencil"))
        .unwrap();
    assert!(client_final.starts_with(b"c=eSws,"));
    // The client's bare message lacks `,x=ext`; the server's AuthMessage includes it verbatim,
    // so the proof must not verify.
    let err = state.client_final(&client_final).unwrap_err();
    assert_eq!(
        err,
        ScramError::InvalidProof,
        "AuthMessage covers the extension"
    );

    let first = ScramServer::new(Hash::Sha256, false, false, ChannelBindings::none())
        .client_first(b"y,,n=user,r=abc")
        .unwrap();
    let (_, state) = first.server_first_with_nonce(&creds, "def").unwrap();
    assert_eq!(state.username(), "user");
    assert!(state.client_final(&client_final).is_ok());
}

#[test]
fn states_can_move_to_a_blocking_pool() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<ScramServer>();
    assert_send_sync::<ScramClientFirst>();
    assert_send_sync::<ScramServerFirst>();
    assert_send_sync::<ScramSuccess>();
    assert_send_sync::<ScramClient>();
    assert_send_sync::<ScramClientFinal>();
    assert_send_sync::<ScramError>();
}

#[test]
fn every_error_value_is_registered_in_rfc5802() {
    const RFC5802: [&str; 11] = [
        "invalid-encoding",
        "extensions-not-supported",
        "invalid-proof",
        "channel-bindings-dont-match",
        "server-does-support-channel-binding",
        "channel-binding-not-supported",
        "unsupported-channel-binding-type",
        "unknown-user",
        "invalid-username-encoding",
        "no-resources",
        "other-error",
    ];
    let all = [
        ScramError::Malformed(ScramSyntax::NotUtf8),
        ScramError::InvalidBase64 { attribute: 'c' },
        ScramError::ExtensionsNotSupported,
        ScramError::BadUsernameEscape,
        ScramError::InvalidUsername(crate::PrepError::Empty),
        ScramError::InvalidAuthzid,
        ScramError::ChannelBindingRequired,
        ScramError::UnexpectedChannelBinding,
        ScramError::DowngradeDetected,
        ScramError::UnsupportedChannelBindingType,
        ScramError::ChannelBindingNotSupported,
        ScramError::ChannelBindingsDontMatch,
        ScramError::NonceMismatch,
        ScramError::InvalidProof,
        ScramError::Credentials(CredentialError::KeyLength),
        ScramError::InsufficientRandomness { len: 0 },
        ScramError::InvalidServerNonce,
        ScramError::InvalidServerSignature,
    ];
    for err in all {
        assert!(RFC5802.contains(&err.server_error_value()), "{err:?}");
        // Never reveal account existence: only fake-credential proofs fail for unknown users.
        assert_ne!(err.server_error_value(), "unknown-user");
        let cond = crate::SaslError::from(err.clone()).condition();
        assert_eq!(cond, err.condition());
    }
}
