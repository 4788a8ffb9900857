//! The module's options (declared in the manifest, read in `init`) and what it registers with
//! the host: stream features, the SASL2 and RFC 6120 SASL nonzas, the mechanisms it provides and
//! the `session-closed` event.

use tessera_plugin_api::events;
use tessera_plugin_api::protocol::{
    ElementSpec, HookSpec, Manifest, MechanismSpec, Registrations, StreamPhase,
};
use tessera_plugin_api::{Config, PluginError};

use crate::wire::{SASL2_NS, SASL_NS};

tessera_plugin_api::options! {
    /// The options as declared.
    pub(crate) struct Options {
        /// failed authentication attempts allowed on one stream before it is closed
        sasl2_max_retries: u32 = 5, range 1..=100;
        /// failed attempts on one account from one address (IPv6: /64) within
        /// sasl2_failure_window before that address is refused for that account
        sasl2_max_failures_per_user: usize = 10, range 1..=1_000_000;
        /// failed attempts on one account from all addresses within sasl2_failure_window after
        /// which every address that failed on it waits between attempts (1 s, doubling)
        sasl2_account_backoff_after: usize = 10, range 1..=1_000_000;
        /// longest wait of the account backoff, in seconds
        sasl2_account_backoff_max: u64 = 60, range 1..=3_600;
        /// failed attempts per client address (IPv6: /64) within sasl2_failure_window before
        /// further attempts from it are refused
        sasl2_max_failures_per_ip: usize = 30, range 1..=1_000_000;
        /// sliding window of the failure counters, in seconds
        sasl2_failure_window: u64 = 300, range 1..=86_400;
    }
}

/// The validated options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `sasl2_max_retries`.
    pub(crate) max_retries: u32,
    /// `sasl2_max_failures_per_user`.
    pub(crate) max_failures_per_user: usize,
    /// `sasl2_max_failures_per_ip`.
    pub(crate) max_failures_per_ip: usize,
    /// `sasl2_account_backoff_after`.
    pub(crate) account_backoff_after: usize,
    /// `sasl2_account_backoff_max`, in milliseconds.
    pub(crate) account_backoff_max_ms: u64,
    /// `sasl2_failure_window`, in milliseconds.
    pub(crate) failure_window_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_retries: 5,
            max_failures_per_user: 10,
            max_failures_per_ip: 30,
            account_backoff_after: 10,
            account_backoff_max_ms: 60_000,
            failure_window_ms: 300_000,
        }
    }
}

impl Settings {
    /// Read the options; an absent key takes its default.
    ///
    /// # Errors
    /// A value that is not an integer or is out of bounds (the message names the key).
    pub(crate) fn from_config(config: &Config) -> Result<Self, PluginError> {
        let o = Options::from_config(config)?;
        Ok(Self {
            max_retries: o.sasl2_max_retries,
            max_failures_per_user: o.sasl2_max_failures_per_user,
            max_failures_per_ip: o.sasl2_max_failures_per_ip,
            account_backoff_after: o.sasl2_account_backoff_after,
            account_backoff_max_ms: o.sasl2_account_backoff_max.saturating_mul(1000),
            failure_window_ms: o.sasl2_failure_window.saturating_mul(1000),
        })
    }
}

impl Settings {
    /// The failure limits.
    pub(crate) fn limits(&self) -> crate::ratelimit::Limits {
        crate::ratelimit::Limits {
            per_user_ip: self.max_failures_per_user,
            per_ip: self.max_failures_per_ip,
            backoff_after: self.account_backoff_after,
            backoff_max_ms: self.account_backoff_max_ms,
            window_ms: self.failure_window_ms,
        }
    }
}

/// The manifest: description and options.
pub(crate) fn manifest() -> Manifest {
    Manifest {
        description:
            "XEP-0388 SASL2 with XEP-0386 Bind 2, RFC 6120 SASL, SCRAM-SHA-1/256/512(-PLUS), PLAIN"
                .into(),
        options: Options::specs(),
        depends: Vec::new(),
        requires: Vec::new(),
    }
}

/// The mechanisms this module provides, highest priority (offered first) first.
pub(crate) const MECHANISMS: [(&str, i32); 7] = [
    ("SCRAM-SHA-512-PLUS", 600),
    ("SCRAM-SHA-256-PLUS", 500),
    ("SCRAM-SHA-512", 450),
    ("SCRAM-SHA-256", 400),
    ("SCRAM-SHA-1-PLUS", 300),
    ("SCRAM-SHA-1", 200),
    ("PLAIN", 100),
];

/// The mechanism specifications sent to the host.
pub(crate) fn mechanism_specs() -> Vec<MechanismSpec> {
    MECHANISMS
        .iter()
        .map(|(name, priority)| MechanismSpec {
            name: (*name).into(),
            priority: *priority,
            tls_only: true,
            sasl2: true,
            legacy: true,
            // -PLUS works with either channel-binding type; availability is decided per stream.
            channel_binding: None,
            hidden: false,
        })
        .collect()
}

/// Everything the host routes to this module.
pub(crate) fn registrations() -> Registrations {
    let element = |name: &str, ns: &str| ElementSpec {
        name: name.into(),
        ns: ns.into(),
        phase: StreamPhase::PreAuth,
    };
    Registrations {
        // A resumed stream's old id never gets `session-closed`: forgotten on `session-resumed`.
        events: vec![
            HookSpec {
                name: events::SESSION_CLOSED.into(),
                priority: events::priority::NORMAL,
            },
            HookSpec {
                name: events::SESSION_RESUMED.into(),
                priority: events::priority::NORMAL,
            },
        ],
        stream_features: true,
        stream_elements: vec![
            element("authenticate", SASL2_NS),
            element("response", SASL2_NS),
            element("abort", SASL2_NS),
            element("next", SASL2_NS),
            element("task-data", SASL2_NS),
            element("auth", SASL_NS),
            element("response", SASL_NS),
            element("abort", SASL_NS),
        ],
        mechanisms: mechanism_specs(),
        ..Registrations::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_api::protocol::OptionValue;

    #[test]
    fn defaults_apply_when_keys_are_absent() {
        let settings = Settings::from_config(&Config::default()).expect("defaults");
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.failure_window_ms, 300_000);
    }

    #[test]
    fn values_are_read_and_bounds_enforced() {
        let mut config = Config::default();
        config.set("sasl2_max_retries", OptionValue::Integer(2));
        config.set("sasl2_failure_window", OptionValue::Integer(60));
        let settings = Settings::from_config(&config).expect("valid");
        assert_eq!(settings.max_retries, 2);
        assert_eq!(settings.failure_window_ms, 60_000);

        config.set("sasl2_max_failures_per_ip", OptionValue::Integer(0));
        let err = Settings::from_config(&config).expect_err("out of bounds");
        assert!(err.message.contains("sasl2_max_failures_per_ip"), "{err}");
        config.set(
            "sasl2_max_failures_per_ip",
            OptionValue::String("many".into()),
        );
        assert!(Settings::from_config(&config).is_err());
    }

    #[test]
    fn manifest_declares_every_option_with_its_default() {
        let manifest = manifest();
        let names: Vec<_> = manifest.options.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sasl2_max_retries",
                "sasl2_max_failures_per_user",
                "sasl2_account_backoff_after",
                "sasl2_account_backoff_max",
                "sasl2_max_failures_per_ip",
                "sasl2_failure_window"
            ]
        );
        assert!(manifest
            .options
            .iter()
            .all(|o| o.name.starts_with("sasl2_")));
        assert_eq!(manifest.options[0].default, Some(OptionValue::Integer(5)));
    }

    #[test]
    fn mechanisms_are_registered_in_offer_order() {
        let specs = mechanism_specs();
        let mut sorted = specs.clone();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.priority));
        let names: Vec<_> = sorted.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "SCRAM-SHA-512-PLUS",
                "SCRAM-SHA-256-PLUS",
                "SCRAM-SHA-512",
                "SCRAM-SHA-256",
                "SCRAM-SHA-1-PLUS",
                "SCRAM-SHA-1",
                "PLAIN"
            ]
        );
        assert!(specs
            .iter()
            .all(|s| s.tls_only && s.channel_binding.is_none() && !s.hidden));
        let reg = registrations();
        assert!(reg.stream_features);
        assert_eq!(reg.stream_elements.len(), 8);
        assert_eq!(reg.events[0].name, "session-closed");
    }
}
