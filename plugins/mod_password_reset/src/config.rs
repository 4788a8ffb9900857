//! The module's options (declared in the manifest, read in `init`) and what it registers with
//! the host: the `PASSWORD-RESET` mechanism, the `/password-reset` HTTP route and the events
//! that revoke links (`user-password-changed`, `user-deleted`).

use tessera_plugin_api::events;
use tessera_plugin_api::protocol::{HookSpec, Manifest, MechanismSpec, Registrations};
use tessera_plugin_api::{Config, PluginError};

/// The mechanism's name.
pub(crate) const MECHANISM: &str = "PASSWORD-RESET";
/// The HTTP route prefix of the reset page.
pub(crate) const ROUTE: &str = "/password-reset";

tessera_plugin_api::options! {
    /// The options as declared.
    pub(crate) struct Options {
        /// lifetime of a reset link, in seconds
        password_reset_token_ttl: u64 = 3600, range 1..=604_800;
        /// shortest accepted new password, in characters
        password_reset_min_length: usize = 8, range 1..=1024;
        /// reset mails per account within password_reset_rate_window
        password_reset_max_requests_per_user: usize = 3, range 1..=1_000_000;
        /// reset requests per client IP address within password_reset_rate_window
        password_reset_max_requests_per_ip: usize = 10, range 1..=1_000_000;
        /// reset page submissions per client IP address within password_reset_rate_window
        password_reset_max_page_posts_per_ip: usize = 30, range 1..=1_000_000;
        /// sliding window of the rate limits, in seconds
        password_reset_rate_window: u64 = 3600, range 1..=86_400;
        /// also offer PASSWORD-RESET in the RFC 6120 <mechanisms/> list (on by default, so
        /// that both profiles list the same mechanisms: XEP-0474 clients that hash the wrong
        /// list still agree)
        password_reset_legacy_sasl: bool = true;
    }
}

/// The validated options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// `password_reset_token_ttl`, in milliseconds.
    pub(crate) token_ttl_ms: u64,
    /// `password_reset_min_length`.
    pub(crate) min_length: usize,
    /// `password_reset_max_requests_per_user`.
    pub(crate) max_per_user: usize,
    /// `password_reset_max_requests_per_ip`.
    pub(crate) max_per_ip: usize,
    /// `password_reset_max_page_posts_per_ip`.
    pub(crate) max_posts_per_ip: usize,
    /// `password_reset_rate_window`, in milliseconds.
    pub(crate) window_ms: u64,
    /// `password_reset_legacy_sasl`.
    pub(crate) legacy: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_ttl_ms: 3_600_000,
            min_length: 8,
            max_per_user: 3,
            max_per_ip: 10,
            max_posts_per_ip: 30,
            window_ms: 3_600_000,
            legacy: true,
        }
    }
}

impl Settings {
    /// Read the options; an absent key takes its default.
    ///
    /// # Errors
    /// A value of the wrong type or out of bounds (the message names the key).
    pub(crate) fn from_config(config: &Config) -> Result<Self, PluginError> {
        let o = Options::from_config(config)?;
        Ok(Self {
            token_ttl_ms: o.password_reset_token_ttl.saturating_mul(1000),
            min_length: o.password_reset_min_length,
            max_per_user: o.password_reset_max_requests_per_user,
            max_per_ip: o.password_reset_max_requests_per_ip,
            max_posts_per_ip: o.password_reset_max_page_posts_per_ip,
            window_ms: o.password_reset_rate_window.saturating_mul(1000),
            legacy: o.password_reset_legacy_sasl,
        })
    }
}

/// The manifest: description, options, and the dependency on mod_sasl2 (which negotiates).
pub(crate) fn manifest() -> Manifest {
    Manifest {
        description: "PASSWORD-RESET SASL mechanism, reset mail and reset web page".into(),
        options: Options::specs(),
        depends: vec!["sasl2".into()],
        requires: vec!["http.public_url".into()],
    }
}

/// The mechanism as the host's registry sees it.
pub(crate) fn mechanism_spec(settings: &Settings) -> MechanismSpec {
    MechanismSpec {
        name: MECHANISM.into(),
        // Listed after every credential mechanism.
        priority: -1000,
        tls_only: true,
        sasl2: true,
        legacy: settings.legacy,
        channel_binding: None,
        hidden: false,
    }
}

/// Everything the host routes to this module.
pub(crate) fn registrations(settings: &Settings) -> Registrations {
    let hook = |name: &str| HookSpec {
        name: name.into(),
        priority: events::priority::NORMAL,
    };
    Registrations {
        events: vec![
            hook(events::USER_PASSWORD_CHANGED),
            hook(events::USER_DELETED),
        ],
        mechanisms: vec![mechanism_spec(settings)],
        http_routes: vec![ROUTE.into()],
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
    }

    #[test]
    fn values_are_read_and_bounds_enforced() {
        let mut config = Config::default();
        config.set("password_reset_token_ttl", OptionValue::Integer(2));
        config.set("password_reset_legacy_sasl", OptionValue::Bool(false));
        let settings = Settings::from_config(&config).expect("valid");
        assert_eq!(settings.token_ttl_ms, 2000);
        assert!(!settings.legacy);
        assert!(!registrations(&settings).mechanisms[0].legacy);
        assert!(
            Settings::default().legacy,
            "listed in both profiles by default"
        );

        config.set("password_reset_min_length", OptionValue::Integer(0));
        let err = Settings::from_config(&config).expect_err("out of bounds");
        assert!(err.message.contains("password_reset_min_length"), "{err}");
        config.set("password_reset_min_length", OptionValue::Integer(8));
        config.set(
            "password_reset_legacy_sasl",
            OptionValue::String("yes".into()),
        );
        let err = Settings::from_config(&config).expect_err("not a bool");
        assert!(err.message.contains("password_reset_legacy_sasl"), "{err}");
    }

    #[test]
    fn manifest_declares_every_option_under_the_prefix_and_depends_on_sasl2() {
        let manifest = manifest();
        assert_eq!(manifest.options.len(), 7);
        assert!(manifest
            .options
            .iter()
            .all(|o| o.name.starts_with("password_reset_") && o.default.is_some()));
        assert_eq!(manifest.depends, ["sasl2"]);
    }

    #[test]
    fn the_mechanism_is_tls_only_and_listed_in_both_profiles_by_default() {
        let spec = mechanism_spec(&Settings::default());
        assert!(spec.tls_only && spec.sasl2 && spec.legacy);
        assert!(!spec.hidden);
        let reg = registrations(&Settings::default());
        assert_eq!(reg.http_routes, [ROUTE]);
        let names: Vec<_> = reg.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["user-password-changed", "user-deleted"]);
    }
}
