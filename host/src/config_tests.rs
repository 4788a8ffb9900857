use super::*;
use tessera_plugin_api::protocol::{Manifest, OptionKind, OptionSpec, OptionValue};

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "t.toml", Path::new("/base"))
}

fn key_of(e: &ConfigError) -> (String, Option<usize>, String) {
    match e {
        ConfigError::Key {
            key, line, message, ..
        } => (key.clone(), *line, message.clone()),
        other => panic!("expected a key error, got {other}"),
    }
}

#[test]
fn embedded_default_parses_with_documented_defaults() {
    let c = Config::parse(EMBEDDED_DEFAULT, "<embedded default>", Path::new(".")).unwrap();
    assert_eq!(c.domain, "localhost");
    assert_eq!(c.c2s.listen, vec!["127.0.0.1:5222".parse().unwrap()]);
    assert_eq!(c.c2s.direct_tls, vec!["127.0.0.1:5223".parse().unwrap()]);
    assert_eq!(c.http.listen, vec!["127.0.0.1:5281".parse().unwrap()]);
    assert_eq!(c.c2s.max_stanza_size, 256 * 1024);
    assert_eq!(c.c2s.negotiation_timeout, Duration::from_secs(30));
    assert!(c.smtp.is_none());
    assert_eq!(c.scram_iterations, 10_000);
    assert_eq!(c.log_format, crate::config::LogFormat::Text);
    // WebSocket and host-meta are on; only the server's own pages may connect; the endpoint
    // published is the public URL's.
    assert!(c.websocket.enabled && c.websocket.channel_binding);
    assert!(c.websocket.allowed_origins.is_empty());
    assert_eq!(
        crate::http::websocket_url(&c, 5281),
        "wss://localhost:5281/xmpp-websocket"
    );
    assert_eq!(
        parse("[websocket]\nallowed_origins = [\"https://chat.example.org/app\"]\n")
            .unwrap_err()
            .to_string(),
        "t.toml:2: `websocket.allowed_origins`: `https://chat.example.org/app` is not an origin (scheme://host[:port], no path), nor \"*\""
    );
    assert_eq!(
        parse("[websocket]\nenabled = 1\n").unwrap_err().to_string(),
        "t.toml:2: `websocket.enabled`: expected true or false, found integer"
    );
    assert_eq!(
        parse("log_format = \"json\"\n").unwrap().log_format,
        crate::config::LogFormat::Json
    );
    // Every shipped module of the authentication and IM work is on.
    assert_eq!(
        c.modules_enabled,
        [
            "sasl2",
            "sasl2_fast",
            "scram_upgrade",
            "client_management",
            "password_reset",
            "ping",
            "disco",
            "register",
            "presence",
            "roster",
            "offline",
            "carbons",
            "csi",
            "mam",
            "smacks"
        ]
    );
}

#[test]
fn the_scram_iteration_count_is_bounded_by_the_rfcs_and_by_cost() {
    assert_eq!(
        parse("scram_iteration_count = 4096\n")
            .unwrap()
            .scram_iterations,
        4096
    );
    for (value, line) in [("4095", 1), ("10000001", 1), ("\"many\"", 1)] {
        let e = parse(&format!("scram_iteration_count = {value}\n")).unwrap_err();
        let (key, l, msg) = key_of(&e);
        assert_eq!(
            (key.as_str(), l),
            ("scram_iteration_count", Some(line)),
            "{msg}"
        );
        assert!(
            msg.contains("out of range 4096..=10000000") || msg.contains("expected an integer"),
            "{msg}"
        );
    }
    // A host key, not a module option: no module has to claim it.
    assert!(!parse("scram_iteration_count = 20000\n")
        .unwrap()
        .module_options
        .contains_key("scram_iteration_count"));
}

#[test]
fn errors_name_the_key_and_line() {
    let e = parse("domain = \"example.org\"\n[c2s]\nlisten = [\"not-an-address\"]\n").unwrap_err();
    let (key, line, msg) = key_of(&e);
    assert_eq!((key.as_str(), line), ("c2s.listen", Some(3)));
    assert!(msg.contains("not-an-address"), "{msg}");
    assert!(e.to_string().starts_with("t.toml:3: `c2s.listen`"), "{e}");

    let (key, line, _) = key_of(&parse("\n\nmodules_enabled = \"yes\"\n").unwrap_err());
    assert_eq!((key.as_str(), line), ("modules_enabled", Some(3)));

    let (key, _, msg) = key_of(&parse("[c2s]\nlisen = []\n").unwrap_err());
    assert_eq!(key, "c2s.lisen");
    assert!(msg.contains("unknown key"), "{msg}");

    let (key, _, msg) = key_of(&parse("[c2s]\nmax_stanza_size = 10\n").unwrap_err());
    assert_eq!(key, "c2s.max_stanza_size");
    assert!(msg.contains("out of range"), "{msg}");

    let (key, line, msg) =
        key_of(&parse("[c2s]\nmax_stanza_size = 65536\nmax_send_buffer = 100000\n").unwrap_err());
    assert_eq!((key.as_str(), line), ("c2s.max_send_buffer", Some(3)));
    assert!(msg.contains("twice c2s.max_stanza_size"), "{msg}");
    let ok = parse("[c2s]\nmax_stanza_size = 65536\nmax_send_buffer = 131072\nsend_timeout = 5\n");
    let c2s = ok.expect("twice is enough").c2s;
    assert_eq!(c2s.send_timeout, std::time::Duration::from_secs(5));

    let (key, _, _) = key_of(&parse("domain = \"bad domain\"\n").unwrap_err());
    assert_eq!(key, "domain");
    let (key, _, _) = key_of(&parse("[smtp]\nurl = \"http://x\"\nfrom = \"a@b\"\n").unwrap_err());
    assert_eq!(key, "smtp.url");
    assert!(matches!(
        parse("domain = "),
        Err(ConfigError::Syntax { .. })
    ));
}

fn manifest() -> Vec<(String, Manifest)> {
    vec![(
        "sasl2_fast".to_owned(),
        Manifest {
            options: vec![
                OptionSpec {
                    name: "sasl2_fast_token_ttl".into(),
                    kind: OptionKind::Integer {
                        min: 60,
                        max: 10_000_000,
                    },
                    default: Some(OptionValue::Integer(1_814_400)),
                    required: false,
                    doc: String::new(),
                },
                OptionSpec {
                    name: "sasl2_fast_label".into(),
                    kind: OptionKind::String,
                    default: None,
                    required: false,
                    doc: String::new(),
                },
            ],
            ..Manifest::default()
        },
    )]
}

#[test]
fn module_options_are_checked_against_manifests() {
    let c = parse("sasl2_fast_token_ttl = 3600\n").unwrap();
    let m = c.module_configs(&manifest()).unwrap();
    assert_eq!(
        m["sasl2_fast"].get("sasl2_fast_token_ttl"),
        Some(&OptionValue::Integer(3600))
    );
    assert!(
        m["sasl2_fast"].get("sasl2_fast_label").is_none(),
        "unset option without default stays unset"
    );

    let c = parse("").unwrap();
    assert_eq!(
        c.module_configs(&manifest()).unwrap()["sasl2_fast"].get("sasl2_fast_token_ttl"),
        Some(&OptionValue::Integer(1_814_400))
    );

    let c = parse("\nsasl2_fast_token_tll = 3600\n").unwrap();
    let (key, line, msg) = key_of(&c.module_configs(&manifest()).unwrap_err());
    assert_eq!((key.as_str(), line), ("sasl2_fast_token_tll", Some(2)));
    assert!(
        msg.ends_with("did you mean sasl2_fast_token_ttl?)"),
        "{msg}"
    );
    // A former host option now belonging to a module that is not enabled says which.
    let c = parse("allow_registration = true\n").unwrap();
    let (key, _, msg) = key_of(&c.module_configs(&manifest()).unwrap_err());
    assert_eq!(key, "allow_registration");
    assert_eq!(
        msg,
        "an option of the `register` module, which is not enabled: add \"register\" to \
         modules_enabled (or remove this key)"
    );
    assert_eq!(super::edit_distance("kitten", "sitting"), 3);
    assert_eq!(super::edit_distance("", "abc"), 3);

    let mut needs_url = manifest();
    needs_url[0].1.requires = vec!["http.public_url".into()];
    let (key, _, msg) = key_of(&parse("").unwrap().module_configs(&needs_url).unwrap_err());
    assert_eq!(key, "http.public_url");
    assert_eq!(msg, "must be set: module `sasl2_fast` needs it");
    let with_url = parse("[http]\npublic_url = \"https://xmpp.example.org\"\n").unwrap();
    assert!(with_url.module_configs(&needs_url).is_ok());

    let c = parse("sasl2_fast_token_ttl = \"long\"\n").unwrap();
    let (_, _, msg) = key_of(&c.module_configs(&manifest()).unwrap_err());
    assert_eq!(msg, "expected an integer");
    let c = parse("sasl2_fast_token_ttl = 5\n").unwrap();
    let (_, _, msg) = key_of(&c.module_configs(&manifest()).unwrap_err());
    assert!(msg.contains("out of range 60..=10000000"), "{msg}");
}

#[test]
fn metrics_allow_takes_addresses_and_ranges_and_names_a_bad_one() {
    let c = parse("[http]\nmetrics_allow = [\"10.0.0.0/8\", \"2001:db8::1\"]\n").unwrap();
    assert_eq!(c.http.metrics_allow.len(), 2);
    assert!(parse("").unwrap().http.metrics_allow.is_empty());
    let err = parse("[http]\nmetrics_allow = [\"10.0.0.0/33\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`http.metrics_allow`: `10.0.0.0/33`: a prefix length is 0 to 32"),
        "{err}"
    );
}
