//! Entry points of the fuzz targets whose code is public: each `fuzz_targets/<name>.rs` is one
//! call into the function of that name here (or, for crate internals, into a crate's
//! `fuzzing` module: `tessera_sasl::scram::fuzzing`, `mod_password_reset::fuzzing`).
//!
//! Every function takes arbitrary bytes and runs them through the code the way the server
//! does. A panic is a bug: either in the code under test or in an `assert!` here, which states
//! a property that holds for every input (nothing is asserted that only usually holds).

use std::fmt::Debug;
use std::path::Path;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_host::config::Config;
use tessera_host::stream::framer::{Frame, Framer, FramerError, Limits};
use tessera_host::stream::parse::{parse_element, parse_stream_header, StreamHeader, STREAM_NS};
use tessera_host::stream::StreamError;
use tessera_plugin_api::names::{account_key, canonical_account};
use tessera_host::runtime::services::PluginContext;
use tessera_plugin_api::calls::dispatch_host_call;
use tessera_plugin_api::protocol::{
    HttpResponse, Manifest, MechanismStep, OptionKind, OptionSpec, Registrations, StreamAction,
};
use tessera_plugin_api::wire;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::Module;
use tessera_sasl::ht::{
    build_initial_response, parse_initial_response, verify_initiator, HtMechanism, HT_SHA256_LEN,
    MAX_HT_AUTHCID_LEN,
};
use tessera_sasl::plain::{parse_plain, MAX_PLAIN_LEN};
use tessera_sasl::scram::{derive_credentials, verify_password, ScramCredentials};
use tessera_sasl::{prepare_username, ChannelBindings, Hash};

// --- stream: the c2s framer and parser -----------------------------------------------------

/// The limits the framer runs with: the defaults, and tight ones so the fuzzer reaches them.
fn stream_limits() -> [Limits; 2] {
    [
        Limits::default(),
        Limits {
            max_stanza_bytes: 512,
            max_depth: 4,
            max_header_bytes: 200,
            ..Limits::default()
        },
    ]
}

/// Frames `data` pushed in pieces of `chunk` bytes: the frames and the terminal error, if any.
fn frame(data: &[u8], limits: Limits, chunk: usize) -> (Vec<Frame>, Option<FramerError>) {
    let mut framer = Framer::new(limits);
    let mut frames = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        let pushed = framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    if let Err(p) = pushed {
                        assert_eq!(p, e, "push and next_frame report one error");
                    }
                    return (frames, Some(e));
                }
            }
        }
        assert!(pushed.is_ok(), "push failed but next_frame did not");
    }
    (frames, None)
}

/// What holds for every frame sequence: one header first, elements within the limits, the end
/// tag last.
fn check_frames(frames: &[Frame], limits: &Limits) {
    for (i, f) in frames.iter().enumerate() {
        match f {
            Frame::StreamHeader(b) => {
                assert_eq!(i, 0, "a stream header after the first frame");
                assert!(b.len() <= limits.max_header_bytes, "header over the limit");
                assert!(b.starts_with(b"<") && b.ends_with(b">"));
            }
            Frame::Element(b) => {
                assert!(i > 0, "an element before the stream header");
                assert!(b.len() <= limits.max_stanza_bytes, "element over the limit");
                assert!(b.starts_with(b"<") && b.ends_with(b">"));
                assert!(std::str::from_utf8(b).is_ok(), "a frame that is not UTF-8");
            }
            Frame::StreamEnd => assert_eq!(i + 1, frames.len(), "a frame after the end tag"),
        }
    }
}

fn depth(el: &Element) -> usize {
    1 + el.child_elements().map(depth).max().unwrap_or(0)
}

/// A parsed element: within the depth limit, and its serialisation parses to the same element
/// and is framed as one element.
fn check_element(el: &Element, header_bytes: &[u8], header: &StreamHeader, limits: &Limits) {
    assert!(
        depth(el) <= limits.max_depth,
        "element deeper than the limit"
    );
    // As the server writes it on a stream (no xmlns where the stream's default applies).
    let on_stream = el.to_xml_in(header.default_ns.as_deref().unwrap_or_default());
    let again = parse_element(on_stream.as_bytes(), header);
    assert_eq!(again.as_ref(), Ok(el), "{on_stream}");
    // Standalone, with no inherited namespace.
    let standalone = el.to_xml();
    let again = parse_element(standalone.as_bytes(), &StreamHeader::default());
    assert_eq!(again.as_ref(), Ok(el), "{standalone}");
    // The framer takes it as one element (the serialisation may be longer than the input).
    let unbounded = Limits {
        max_stanza_bytes: usize::MAX,
        ..*limits
    };
    let mut bytes = header_bytes.to_vec();
    bytes.extend_from_slice(on_stream.as_bytes());
    let (frames, err) = frame(&bytes, unbounded, bytes.len());
    assert_eq!(err, None, "{on_stream}");
    assert_eq!(
        frames.get(1),
        Some(&Frame::Element(on_stream.clone().into_bytes()))
    );
}

/// The c2s stream: the framer fed the input whole and in small chunks (the frames must not
/// depend on the split), then the header and each element through the parser, as the server
/// does until the first error.
pub fn stream(data: &[u8]) {
    for limits in stream_limits() {
        let (frames, err) = frame(data, limits, data.len());
        for chunk in [1, 7] {
            let (f, e) = frame(data, limits, chunk);
            assert_eq!(
                (&f, &e),
                (&frames, &err),
                "frames depend on the chunk size {chunk}"
            );
        }
        check_frames(&frames, &limits);
        if let Some(e) = err {
            let _ = StreamError::from(e).to_xml();
        }
        let mut frames = frames.iter();
        let Some(Frame::StreamHeader(header_bytes)) = frames.next() else {
            continue;
        };
        let header = match parse_stream_header(header_bytes) {
            Ok(h) => h,
            Err(e) => {
                let _ = StreamError::from(e).to_xml();
                continue;
            }
        };
        assert_eq!(header.ns, STREAM_NS);
        for f in frames {
            let Frame::Element(bytes) = f else { break };
            match parse_element(bytes, &header) {
                Ok(el) => check_element(&el, header_bytes, &header, &limits),
                Err(e) => {
                    let _ = StreamError::from(e).to_xml();
                    break;
                }
            }
        }
    }
}

// --- SASL: PLAIN and HT ----------------------------------------------------------------------

/// Cheap credentials (one PBKDF2 iteration) for the password `pencil`.
fn cheap_credentials() -> &'static ScramCredentials {
    static CREDS: OnceLock<ScramCredentials> = OnceLock::new();
    CREDS.get_or_init(|| {
        derive_credentials(Hash::Sha256, "pencil", b"0123456789abcdef", 1)
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// How an account name a client sent is keyed: the canonical form is stable, and the key of a
/// name no account can have never equals an account's canonical form.
fn check_account_name(name: &str) {
    match canonical_account(name) {
        Some(c) => {
            assert_eq!(canonical_account(&c).as_ref(), Some(&c), "{name:?}");
            assert_eq!(account_key(name), c);
        }
        None => {
            let key = account_key(name);
            assert_ne!(canonical_account(&key).as_ref(), Some(&key), "{name:?}");
        }
    }
}

/// PLAIN (RFC 4616): the parser, the username rules and the password check with SASLprep.
pub fn plain(data: &[u8]) {
    match parse_plain(data) {
        Ok(creds) => {
            assert!(data.len() <= MAX_PLAIN_LEN);
            assert!(!creds.password.is_empty());
            assert!(creds
                .authzid
                .as_deref()
                .is_none_or(|a| !a.is_empty() && !a.chars().any(char::is_control)));
            let prepared = prepare_username(&creds.authcid).map(|c| c.into_owned());
            assert_eq!(
                prepared.as_ref(),
                Ok(&creds.authcid),
                "username rules not stable"
            );
            check_account_name(&creds.authcid);
            let _ = verify_password(cheap_credentials(), &creds.password);
        }
        Err(e) => {
            let _ = (e.condition(), e.to_string());
        }
    }
}

/// HT-SHA-256-* (XEP-0484 FAST): the initial-response parser, and building one back.
pub fn ht(data: &[u8]) {
    match parse_initial_response(data) {
        Ok((authcid, proof)) => {
            assert_eq!(proof.len(), HT_SHA256_LEN);
            assert!((1..=MAX_HT_AUTHCID_LEN).contains(&authcid.len()));
            assert!(!authcid.contains('\0'));
            let mut rebuilt = authcid.clone().into_bytes();
            rebuilt.push(0);
            rebuilt.extend_from_slice(&proof);
            assert_eq!(rebuilt, data);
            if let Ok(user) = prepare_username(&authcid) {
                check_account_name(&user);
            }
            let bindings = ChannelBindings {
                tls_exporter: Some(vec![7; 32]),
                tls_server_end_point: None,
            };
            for mechanism in HtMechanism::ALL {
                if let Ok(cb) = mechanism.cb_data(&bindings) {
                    let _ = verify_initiator(b"token", cb, &proof);
                }
            }
        }
        Err(e) => {
            let _ = (e.condition(), e.to_string());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(m) = HtMechanism::from_name(text) {
            assert_eq!(m.name(), text);
        }
        let built = build_initial_response(text, b"token", b"");
        let parsed = parse_initial_response(&built);
        let valid = !text.is_empty() && text.len() <= MAX_HT_AUTHCID_LEN && !text.contains('\0');
        assert_eq!(parsed.is_ok(), valid);
        if let Ok((authcid, proof)) = parsed {
            assert_eq!(authcid, text);
            assert!(verify_initiator(b"token", b"", &proof));
        }
    }
}

// --- config ------------------------------------------------------------------------------------

/// The manifests the options are checked against: mod_password_reset's and one with every
/// option kind.
fn manifests() -> &'static [(String, Manifest)] {
    static MANIFESTS: OnceLock<Vec<(String, Manifest)>> = OnceLock::new();
    MANIFESTS.get_or_init(|| {
        let option = |name: &str, kind: OptionKind| OptionSpec {
            name: name.into(),
            kind,
            default: None,
            required: false,
            doc: String::new(),
        };
        let every_kind = Manifest {
            description: "every option kind".into(),
            options: vec![
                OptionSpec::integer("fuzz_integer", -5, 500, 7, "an integer"),
                OptionSpec::boolean("fuzz_bool", false, "a boolean"),
                option("fuzz_string", OptionKind::String),
                option("fuzz_list", OptionKind::StringList),
            ],
            depends: Vec::new(),
            requires: Vec::new(),
        };
        vec![
            (
                "password_reset".into(),
                <mod_password_reset::PasswordResetModule as Module>::manifest(),
            ),
            ("fuzz".into(), every_kind),
        ]
    })
}

/// `tessera.toml`: the parser and the module option checks, as `check-config` runs them.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "fuzz.toml", Path::new("/fuzz")) {
        Ok(config) => {
            if let Err(e) = config.module_configs(manifests()) {
                let _ = e.to_string();
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// --- plugin messages ---------------------------------------------------------------------------

/// Decodes `bytes` as `T`; what decodes is encoded and decoded back unchanged.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(bytes: &[u8]) {
    if let Ok(value) = wire::decode::<T>("fuzz", bytes) {
        let written = wire::encode(&value).expect("a decoded message encodes");
        let back = wire::decode::<T>("fuzz", &written).expect("an encoded message decodes");
        assert_eq!(back, value, "{written:?}");
    }
}

/// What the host decodes from a plugin: a host call (the first four bytes are its kind, little
/// endian; the rest its arguments), served by the host's own dispatcher with a context bound to
/// no server (so the arguments are decoded exactly as in production, then the call fails); and
/// the answers to the host's calls (mechanism steps, stream actions, manifest, registrations,
/// HTTP responses, stream features, IQ results, hook answers), which decode and read back
/// unchanged.
pub fn plugin_messages(data: &[u8]) {
    if let Some((kind, payload)) = data.split_first_chunk::<4>() {
        let context = PluginContext::detached("fuzz");
        match dispatch_host_call(&context, u32::from_le_bytes(*kind), payload) {
            Ok(answer) => panic!("a detached host answered {answer:?}"),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    round_trip::<MechanismStep>(data);
    round_trip::<Vec<StreamAction>>(data);
    round_trip::<Registrations>(data);
    round_trip::<HttpResponse>(data);
    round_trip::<Vec<Element>>(data);
    round_trip::<Option<Element>>(data);
    round_trip::<Manifest>(data);
    round_trip::<Option<Vec<u8>>>(data);
    if let Ok(elements) = wire::decode::<Vec<Element>>("fuzz", data) {
        for el in elements {
            let _ = el.to_xml();
        }
    }
}
