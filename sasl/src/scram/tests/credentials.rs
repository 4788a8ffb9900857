//! Credential derivation, PLAIN verification and fake credentials.

use super::*;

#[test]
fn derive_rejects_bad_parameters() {
    assert_eq!(
        derive_credentials(Hash::Sha256, "pencil", b"salt", 0),
        Err(CredentialError::ZeroIterations)
    );
    assert_eq!(
        derive_credentials(Hash::Sha256, "pencil", b"", 16),
        Err(CredentialError::EmptySalt)
    );
    let err = derive_credentials(Hash::Sha256, "pen\u{7}cil", b"salt", 16).unwrap_err();
    assert_eq!(err, CredentialError::Password(crate::PrepError::Prohibited));
    assert_eq!(err.condition(), SaslCondition::NotAuthorized);
    assert_eq!(
        CredentialError::ZeroIterations.condition(),
        SaslCondition::TemporaryAuthFailure
    );
}

#[test]
fn derive_applies_saslprep_to_password() {
    // SOFT HYPHEN maps to nothing and U+2168 (ROMAN NUMERAL NINE) to "IX" (RFC 4013 §3).
    let a = derive_credentials(Hash::Sha1, "pencil", b"salt", 16).unwrap();
    let b = derive_credentials(Hash::Sha1, "pen\u{00AD}cil", b"salt", 16).unwrap();
    assert_eq!(a, b);
    let c = derive_credentials(Hash::Sha1, "\u{2168}", b"salt", 16).unwrap();
    let d = derive_credentials(Hash::Sha1, "IX", b"salt", 16).unwrap();
    assert_eq!(c.stored_key, d.stored_key);
    assert_ne!(a.stored_key, c.stored_key);
}

#[test]
fn verify_password_checks_stored_key() {
    let creds = rfc_creds(Hash::Sha1);
    assert!(verify_password(&creds, "pencil"));
    assert!(verify_password(&creds, "pen\u{00AD}cil"));
    assert!(!verify_password(&creds, "Pencil"));
    assert!(!verify_password(&creds, ""));
    assert!(!verify_password(&creds, "pen\u{7}cil"));
    let quick = quick_creds(Hash::Sha256, "pencil");
    assert!(verify_password(&quick, "pencil"));
    assert!(!verify_password(&quick, "pencil "));
}

#[test]
fn verify_password_rejects_unusable_credentials() {
    let mut creds = quick_creds(Hash::Sha256, "pencil");
    creds.iterations = 0;
    assert!(!verify_password(&creds, "pencil"));
    let mut creds = quick_creds(Hash::Sha256, "pencil");
    creds.hash = Hash::Sha1; // keys now have the wrong length for the hash
    assert!(!verify_password(&creds, "pencil"));
}

#[test]
fn credentials_debug_hides_keys() {
    let creds = quick_creds(Hash::Sha256, "pencil");
    let shown = format!("{creds:?}");
    assert!(shown.contains("redacted"));
    assert!(!shown.contains(&format!("{:?}", creds.stored_key)));
}

#[test]
fn fake_credentials_are_deterministic_and_well_formed() {
    let secret = b"server secret";
    let a = fake_credentials(secret, "ghost", Hash::Sha256, 4096);
    assert_eq!(a, fake_credentials(secret, "ghost", Hash::Sha256, 4096));
    assert_eq!(a.salt.len(), 16);
    assert_eq!(a.stored_key.len(), 32);
    assert_eq!(a.server_key.len(), 32);
    assert_eq!(a.iterations, 4096);
    assert_ne!(a.stored_key, a.server_key);
    assert!(a.check_for(Hash::Sha256).is_ok());

    let sha1 = fake_credentials(secret, "ghost", Hash::Sha1, 4096);
    assert_eq!(sha1.stored_key.len(), 20);
    assert!(sha1.check_for(Hash::Sha1).is_ok());
    // SHA-512 keys are 64 bytes: two blocks, the second not a copy of the first.
    let sha512 = fake_credentials(secret, "ghost", Hash::Sha512, 4096);
    assert_eq!((sha512.salt.len(), sha512.stored_key.len()), (16, 64));
    assert!(sha512.check_for(Hash::Sha512).is_ok());
    assert_ne!(sha512.stored_key[..32], sha512.stored_key[32..]);
    // The first block is what it always was (no counter), so SHA-256 fakes did not change.
    assert_eq!(
        crate::encode_base64(&a.salt),
        "pbNBI8XtQt6X2mss4unq8g==" // HMAC-SHA-256("fake-saltSHA-256\0ghost"), by Python
    );
    assert_ne!(sha1.salt, a.salt, "hash name is part of the salt input");
    assert_ne!(
        fake_credentials(secret, "ghost2", Hash::Sha256, 4096).salt,
        a.salt
    );
    assert_ne!(
        fake_credentials(b"other", "ghost", Hash::Sha256, 4096).salt,
        a.salt
    );
}

#[test]
fn fake_salt_follows_documented_formula() {
    let creds = fake_credentials(b"k", "ghost", Hash::Sha256, 1);
    let full = crate::crypto::hmac_sha256(b"k", &[b"fake-salt", b"SHA-256", &[0], b"ghost"]);
    assert_eq!(creds.salt, full[..16].to_vec());
}

#[test]
fn fake_credentials_fail_like_a_wrong_password() {
    let fake = fake_credentials(b"server secret", "ghost", Hash::Sha256, 16);
    assert!(!verify_password(&fake, ""));
    assert!(!verify_password(&fake, "server secret"));

    let client = ScramClient::new(
        Hash::Sha256,
        "ghost",
        None,
        ClientBinding::NotSupported,
        "abc",
    )
    .unwrap();
    let first = ScramServer::new(Hash::Sha256, false, false, ChannelBindings::none())
        .client_first(&client.client_first())
        .unwrap();
    assert_eq!(first.username(), "ghost");
    let (server_first, state) = first.server_first(&fake, &[3; 18]).unwrap();
    let text = String::from_utf8(server_first.clone()).unwrap();
    assert!(
        text.contains(&format!(",s={},i=16", encode_base64(&fake.salt))),
        "{text}"
    );
    let (msg, _) = client
        .server_first(&server_first, ClientSecret::Password("pencil"))
        .unwrap();
    let err = state.client_final(&msg).unwrap_err();
    assert_eq!(err, ScramError::InvalidProof);
    assert_eq!(err.server_error_value(), "invalid-proof");
}

/// XEP-0480: a client sends `SaltedPassword`; the server keeps only what derivation from the
/// password would have given. RFC 7677's inputs with SHA-512 (the SaltedPassword computed with
/// Python's `hashlib.pbkdf2_hmac`, the keys as in the SHA-512 vector).
#[test]
fn credentials_from_a_salted_password_equal_those_from_the_password() {
    let salt = b64("W22ZaJ0SNY7soEsUEjb6gQ==");
    let salted = salted_password(Hash::Sha512, "pencil", &salt, 4096).unwrap();
    assert_eq!(
        salted,
        b64("8W7+G+Z/HQlQLr1e2SYv3f+6Wjd6tPC2h+XtW6D1Boa4pK4WZHbairO5UdL6kji2OZj0VGG8M6RkgUlJzsljHQ==")
    );
    let from_salted = credentials_from_salted(Hash::Sha512, &salted, &salt, 4096).unwrap();
    assert_eq!(from_salted, rfc_creds(Hash::Sha512));
    assert_eq!(
        from_salted.stored_key,
        b64("6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==")
    );
    assert!(verify_password(&from_salted, "pencil"));
    // A SaltedPassword of another hash's length, or bad parameters, is refused.
    assert_eq!(
        credentials_from_salted(Hash::Sha512, &salted[..32], &salt, 4096),
        Err(CredentialError::KeyLength)
    );
    assert_eq!(
        credentials_from_salted(Hash::Sha512, &salted, b"", 4096),
        Err(CredentialError::EmptySalt)
    );
    assert_eq!(
        credentials_from_salted(Hash::Sha512, &salted, &salt, 0),
        Err(CredentialError::ZeroIterations)
    );
}
