//! The module's options (declared in the manifest, read and cross-checked in `init`) and what it
//! registers with the host: the three hidden HT mechanisms, the two SASL2 query hooks and the
//! account and session events.

use tessera_plugin_api::clients;
use tessera_plugin_api::events::{self, hooks};
use tessera_plugin_api::protocol::{HookSpec, Manifest, MechanismSpec, Registrations};
use tessera_plugin_api::{Config, PluginError};
use tessera_sasl::ht::HtMechanism;

/// Option: seconds a token stays valid after it is issued.
pub(crate) const OPT_TOKEN_TTL: &str = "sasl2_fast_token_ttl";
/// Option: age in seconds after which a token used for FAST is rotated.
pub(crate) const OPT_TOKEN_MIN_TTL: &str = "sasl2_fast_token_min_ttl";

tessera_plugin_api::options! {
    /// The options as declared (seconds; one non-leap year at most).
    pub(crate) struct Options {
        /// seconds a FAST token stays valid after it is issued (default 21 days)
        sasl2_fast_token_ttl: u64 = 1_814_400, range 1..=31_536_000;
        /// age in seconds after which a FAST login returns a fresh token (must be below
        /// sasl2_fast_token_ttl)
        sasl2_fast_token_min_ttl: u64 = 86_400, range 0..=31_535_999;
    }
}

/// The validated options, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `sasl2_fast_token_ttl`.
    pub(crate) ttl_ms: u64,
    /// `sasl2_fast_token_min_ttl`.
    pub(crate) min_ttl_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ttl_ms: 1_814_400_000,
            min_ttl_ms: 86_400_000,
        }
    }
}

impl Settings {
    /// Read the options; an absent key takes its default.
    ///
    /// # Errors
    /// A value that is not an integer or is out of bounds (the message names the key), or
    /// `sasl2_fast_token_min_ttl >= sasl2_fast_token_ttl` (the message names both).
    pub(crate) fn from_config(config: &Config) -> Result<Self, PluginError> {
        let options = Options::from_config(config)?;
        let (ttl, min_ttl) = (
            options.sasl2_fast_token_ttl,
            options.sasl2_fast_token_min_ttl,
        );
        if min_ttl >= ttl {
            return Err(PluginError::config(format!(
                "{OPT_TOKEN_MIN_TTL} ({min_ttl}) must be smaller than {OPT_TOKEN_TTL} ({ttl})"
            )));
        }
        Ok(Self {
            ttl_ms: ttl.saturating_mul(1000),
            min_ttl_ms: min_ttl.saturating_mul(1000),
        })
    }
}

/// The manifest: description, options and the dependency on mod_sasl2.
pub(crate) fn manifest() -> Manifest {
    Manifest {
        description: "XEP-0484 FAST tokens with HT-SHA-256-{EXPR,ENDP,NONE} for SASL2".into(),
        options: Options::specs(),
        depends: vec!["sasl2".into()],
        requires: Vec::new(),
    }
}

/// The mechanism specifications: hidden (listed only in `<fast>`, so never in XEP-0474's
/// hash), SASL2 only, TLS only, each requiring its channel-binding type.
pub(crate) fn mechanism_specs() -> Vec<MechanismSpec> {
    HtMechanism::ALL
        .iter()
        .zip([300, 200, 100])
        .map(|(m, priority)| MechanismSpec {
            name: m.name().into(),
            priority,
            tls_only: true,
            sasl2: true,
            legacy: false,
            channel_binding: m.cb_type().map(|t| t.name().to_owned()),
            hidden: true,
        })
        .collect()
}

/// Everything the host routes to this module.
pub(crate) fn registrations() -> Registrations {
    let hook = |name: &str, priority| HookSpec {
        name: name.into(),
        priority,
    };
    Registrations {
        hooks: vec![
            hook(hooks::SASL2_INLINE_FEATURES, events::priority::NORMAL),
            // Late: the token comes after the other extensions of `<success/>` (protocols §2.3).
            hook(hooks::SASL2_SUCCESS, events::priority::LATE),
            // XEP-0494: the tokens are credentials of clients, listed and revoked by client.
            hook(clients::hooks::CLIENT_CREDENTIALS, events::priority::NORMAL),
            hook(clients::hooks::CLIENT_REVOKE, events::priority::NORMAL),
        ],
        events: vec![
            hook(events::USER_PASSWORD_CHANGED, events::priority::NORMAL),
            hook(events::USER_DELETED, events::priority::NORMAL),
            hook(events::SESSION_CLOSED, events::priority::NORMAL),
        ],
        mechanisms: mechanism_specs(),
        ..Registrations::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_api::protocol::OptionValue;

    fn config(pairs: &[(&str, OptionValue)]) -> Config {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(k, v.clone());
        }
        c
    }

    #[test]
    fn defaults_are_prosodys() {
        let s = Settings::from_config(&Config::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s, Settings::default());
        assert_eq!(s.ttl_ms, 21 * 86_400 * 1000);
        assert_eq!(s.min_ttl_ms, 86_400 * 1000);
    }

    #[test]
    fn values_are_read_in_seconds() {
        let c = config(&[
            (OPT_TOKEN_TTL, OptionValue::Integer(3600)),
            (OPT_TOKEN_MIN_TTL, OptionValue::Integer(0)),
        ]);
        let s = Settings::from_config(&c).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.ttl_ms, s.min_ttl_ms), (3_600_000, 0));
    }

    #[test]
    fn min_ttl_not_below_ttl_is_an_error_naming_both_keys() {
        for (ttl, min) in [(3600, 3600), (60, 86_400)] {
            let c = config(&[
                (OPT_TOKEN_TTL, OptionValue::Integer(ttl)),
                (OPT_TOKEN_MIN_TTL, OptionValue::Integer(min)),
            ]);
            let err = Settings::from_config(&c).expect_err("min_ttl >= ttl");
            assert_eq!(err.kind, tessera_plugin_api::PluginErrorKind::CONFIG);
            assert!(err.message.contains(OPT_TOKEN_TTL), "{err}");
            assert!(err.message.contains(OPT_TOKEN_MIN_TTL), "{err}");
            assert!(err.message.contains(&ttl.to_string()), "{err}");
        }
        // The default min_ttl (1 day) against a short ttl is the same error.
        let c = config(&[(OPT_TOKEN_TTL, OptionValue::Integer(3600))]);
        assert!(Settings::from_config(&c).is_err());
    }

    #[test]
    fn bounds_and_types_are_enforced() {
        let c = config(&[(OPT_TOKEN_TTL, OptionValue::Integer(0))]);
        let err = Settings::from_config(&c).expect_err("ttl 0");
        assert!(err.message.contains(OPT_TOKEN_TTL), "{err}");
        let c = config(&[(OPT_TOKEN_MIN_TTL, OptionValue::Integer(-1))]);
        assert!(Settings::from_config(&c).is_err());
        let c = config(&[(OPT_TOKEN_TTL, OptionValue::String("long".into()))]);
        assert!(Settings::from_config(&c).is_err());
    }

    #[test]
    fn manifest_and_registrations() {
        let m = manifest();
        assert_eq!(m.depends, ["sasl2"]);
        let names: Vec<_> = m.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, [OPT_TOKEN_TTL, OPT_TOKEN_MIN_TTL]);
        assert_eq!(m.options[0].default, Some(OptionValue::Integer(1_814_400)));
        assert_eq!(m.options[1].default, Some(OptionValue::Integer(86_400)));

        let specs = mechanism_specs();
        let pairs: Vec<_> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.channel_binding.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("HT-SHA-256-EXPR", Some("tls-exporter")),
                ("HT-SHA-256-ENDP", Some("tls-server-end-point")),
                ("HT-SHA-256-NONE", None),
            ]
        );
        assert!(specs
            .iter()
            .all(|s| s.hidden && s.sasl2 && !s.legacy && s.tls_only));
        let reg = registrations();
        let hooks: Vec<_> = reg.hooks.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            hooks,
            [
                "sasl2-inline-features",
                "sasl2-success",
                "client-credentials",
                "client-revoke"
            ]
        );
        let events: Vec<_> = reg.events.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            events,
            ["user-password-changed", "user-deleted", "session-closed"]
        );
        assert!(!reg.stream_features && reg.stream_elements.is_empty());
    }
}
