//! Fuzzing entry point for the SCRAM server and its message grammar (`tests/fuzz`, target
//! `scram`). Built only with the cargo feature `fuzzing`; not part of the crate's API.
//!
//! The input is the client-first message, optionally followed by `\n` and the client-final
//! message (`\n` never occurs in a valid SCRAM message). Both are run through a SCRAM-SHA-1
//! server (no channel binding, no `-PLUS` offered) and a SCRAM-SHA-256 server (`tls-exporter`
//! data, `-PLUS` offered; the input chooses `-PLUS` with a leading `p=`) holding the RFC 5802 /
//! RFC 7677 credentials and server nonces, so the RFC vectors in the seed corpus succeed. Every
//! grammar function also gets both messages. Panics are the bugs; the asserts state what must
//! hold for every input.

use std::sync::OnceLock;

use super::parse::{
    attribute, attribute_base64, escape_saslname, message_text, nonce_from_random, skip_extensions,
    split_client_first, unescape_saslname, valid_nonce,
};
use super::{derive_credentials, ScramCredentials, ScramError, ScramServer, MAX_MESSAGE_LEN};
use crate::{prepare_username, ChannelBindings, Hash};

/// `tls-exporter` cb-data of the XEP-0388 example (the `-PLUS` vector of the unit tests).
const EXPORTER_CB: [u8; 32] = [
    0xc7, 0x28, 0x42, 0xf3, 0x9d, 0x04, 0x37, 0x8f, 0x77, 0x83, 0xac, 0xc2, 0x59, 0x80, 0x59, 0x5d,
    0xdd, 0x83, 0x56, 0xb5, 0x5a, 0x1d, 0x6d, 0x60, 0xf4, 0xc1, 0xc1, 0x58, 0x9d, 0xd7, 0x45, 0x54,
];

/// The RFC credentials (user `user`, password `pencil`, 4096 iterations), derived once.
fn rfc_credentials(hash: Hash) -> &'static ScramCredentials {
    static SHA1: OnceLock<ScramCredentials> = OnceLock::new();
    static SHA256: OnceLock<ScramCredentials> = OnceLock::new();
    static SHA512: OnceLock<ScramCredentials> = OnceLock::new();
    let (cell, salt): (_, &[u8]) = match hash {
        // base64 "QSXCR+Q6sek8bf92" and "W22ZaJ0SNY7soEsUEjb6gQ==".
        Hash::Sha1 => (&SHA1, b"\x41\x25\xc2\x47\xe4\x3a\xb1\xe9\x3c\x6d\xff\x76"),
        Hash::Sha256 => (
            &SHA256,
            b"\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81",
        ),
        Hash::Sha512 => (
            &SHA512,
            b"\x5b\x6d\x99\x68\x9d\x12\x35\x8e\xec\xa0\x4b\x14\x12\x36\xfa\x81",
        ),
    };
    cell.get_or_init(|| {
        derive_credentials(hash, "pencil", salt, 4096).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Runs one input; see the module documentation.
pub fn scram(data: &[u8]) {
    let (first, last) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let (first, rest) = data.split_at(i);
            (first, rest.get(1..))
        }
        None => (data, None),
    };
    grammar(first);
    if let Some(last) = last {
        grammar(last);
    }
    let exporter = ChannelBindings {
        tls_exporter: Some(EXPORTER_CB.to_vec()),
        tls_server_end_point: None,
    };
    let servers = [
        (
            Hash::Sha1,
            false,
            ChannelBindings::none(),
            "3rfcNHYJY1ZVvWVs7j",
        ),
        (
            Hash::Sha256,
            true,
            exporter,
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        ),
        (
            Hash::Sha512,
            false,
            ChannelBindings::none(),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        ),
    ];
    for (hash, offers_plus, bindings, server_nonce) in servers {
        let plus = offers_plus && first.starts_with(b"p=");
        let server = ScramServer::new(hash, plus, offers_plus, bindings);
        let state = match server.client_first(first) {
            Ok(state) => state,
            Err(e) => {
                check_error(&e);
                continue;
            }
        };
        let username = state.username().to_owned();
        assert_eq!(
            prepare_username(&username).as_deref(),
            Ok(username.as_str())
        );
        assert_eq!(state.hash(), hash);
        let (server_first, state) = state
            .server_first_with_nonce(rfc_credentials(hash), server_nonce)
            .unwrap_or_else(|e| panic!("server-first with valid credentials failed: {e}"));
        let server_first = String::from_utf8(server_first).expect("server-first is UTF-8");
        assert!(server_first.starts_with("r=") && server_first.ends_with(",i=4096"));
        assert!(server_first.len() <= MAX_MESSAGE_LEN + 64);
        let Some(last) = last else { continue };
        match state.client_final(last) {
            Ok(success) => {
                assert_eq!(success.username, username);
                assert!(success.server_final.starts_with(b"v="));
                assert_eq!(success.channel_binding.is_some(), plus);
            }
            Err(e) => check_error(&e),
        }
    }
}

/// Every error maps to a condition and an `e=` value.
fn check_error(e: &ScramError) {
    let _ = e.condition();
    assert!(!e.server_error_value().is_empty());
    assert!(e.server_final_message().starts_with(b"e="));
}

/// The grammar functions on one message and on its `,`-separated parts.
fn grammar(msg: &[u8]) {
    let nonce = nonce_from_random(msg);
    assert_eq!(valid_nonce(&nonce), !msg.is_empty());
    let Ok(text) = message_text(msg) else {
        assert!(msg.len() > MAX_MESSAGE_LEN || std::str::from_utf8(msg).is_err());
        return;
    };
    if let Ok(parts) = split_client_first(text) {
        assert_eq!(format!("{}{}", parts.gs2_header, parts.bare), text);
        assert!(parts.gs2_header.ends_with(','));
    }
    let _ = skip_extensions(text.split(','));
    for part in text.split(',') {
        if valid_nonce(part) {
            assert!(!part.contains(','));
        }
        if let Some(name) = unescape_saslname(part) {
            // Escapes are canonical (`=2C`, `=3D` only), so unescaping loses nothing.
            assert_eq!(escape_saslname(&name), part);
            assert_eq!(unescape_saslname(&escape_saslname(&name)), Some(name));
        }
        if let Some(letter) = part.chars().next() {
            if let Ok(value) = attribute(Some(part), letter) {
                assert_eq!(part.get(letter.len_utf8() + 1..), Some(value));
                let _ = attribute_base64(value, letter);
            }
        }
    }
}
