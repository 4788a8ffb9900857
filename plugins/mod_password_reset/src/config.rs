//! The module's options (declared in the manifest, read in `init`) and what it registers with
//! the host: the `PASSWORD-RESET` mechanism, the `/password-reset` HTTP route and the events
//! that revoke links (`user-password-changed`, `user-deleted`).

use tessera_plugin_api::events;
use tessera_plugin_api::protocol::{HookSpec, Manifest, MechanismSpec, OptionSpec, Registrations};
use tessera_plugin_api::{Config, PluginError};

/// The mechanism's name.
pub(crate) const MECHANISM: &str = "PASSWORD-RESET";
/// The HTTP route prefix of the reset page.
pub(crate) const ROUTE: &str = "/password-reset";

/// Option: lifetime of a reset link, in seconds.
pub(crate) const OPT_TOKEN_TTL: &str = "password_reset_token_ttl";
/// Option: shortest accepted new password, in characters.
pub(crate) const OPT_MIN_LENGTH: &str = "password_reset_min_length";
/// Option: reset mails per account within the window.
pub(crate) const OPT_MAX_PER_USER: &str = "password_reset_max_requests_per_user";
/// Option: reset requests per client IP address within the window.
pub(crate) const OPT_MAX_PER_IP: &str = "password_reset_max_requests_per_ip";
/// Option: reset page submissions per client IP address within the window.
pub(crate) const OPT_MAX_POSTS_PER_IP: &str = "password_reset_max_page_posts_per_ip";
/// Option: the sliding window of the three limits, in seconds.
pub(crate) const OPT_RATE_WINDOW: &str = "password_reset_rate_window";
/// Option: also list the mechanism in RFC 6120 `<mechanisms/>`.
pub(crate) const OPT_LEGACY: &str = "password_reset_legacy_sasl";

/// (name, min, max, default, doc) of every integer option.
const INTEGERS: [(&str, i64, i64, i64, &str); 6] = [
    (
        OPT_TOKEN_TTL,
        1,
        604_800,
        3600,
        "lifetime of a reset link, in seconds",
    ),
    (
        OPT_MIN_LENGTH,
        1,
        1024,
        8,
        "shortest accepted new password, in characters",
    ),
    (
        OPT_MAX_PER_USER,
        1,
        1_000_000,
        3,
        "reset mails per account within password_reset_rate_window",
    ),
    (
        OPT_MAX_PER_IP,
        1,
        1_000_000,
        10,
        "reset requests per client IP address within password_reset_rate_window",
    ),
    (
        OPT_MAX_POSTS_PER_IP,
        1,
        1_000_000,
        30,
        "reset page submissions per client IP address within password_reset_rate_window",
    ),
    (
        OPT_RATE_WINDOW,
        1,
        86_400,
        3600,
        "sliding window of the rate limits, in seconds",
    ),
];

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
            legacy: false,
        }
    }
}

impl Settings {
    /// Read the options; an absent key takes its default.
    ///
    /// # Errors
    /// A value of the wrong type or out of bounds (the message names the key).
    pub(crate) fn from_config(config: &Config) -> Result<Self, PluginError> {
        let get = |name: &str| -> Result<u64, PluginError> {
            let (_, min, max, default, _) = INTEGERS
                .iter()
                .find(|o| o.0 == name)
                .copied()
                .ok_or_else(|| PluginError::internal(format!("undeclared option {name}")))?;
            let value = match config.get(name) {
                None => default,
                Some(_) => config.integer(name)?,
            };
            if !(min..=max).contains(&value) {
                return Err(PluginError::config(format!(
                    "option `{name}` must be between {min} and {max}"
                )));
            }
            Ok(u64::try_from(value).unwrap_or(0))
        };
        let count = |name: &str| get(name).map(|v| usize::try_from(v).unwrap_or(usize::MAX));
        let legacy = match config.get(OPT_LEGACY) {
            None => false,
            Some(_) => config.boolean(OPT_LEGACY)?,
        };
        Ok(Self {
            token_ttl_ms: get(OPT_TOKEN_TTL)?.saturating_mul(1000),
            min_length: count(OPT_MIN_LENGTH)?,
            max_per_user: count(OPT_MAX_PER_USER)?,
            max_per_ip: count(OPT_MAX_PER_IP)?,
            max_posts_per_ip: count(OPT_MAX_POSTS_PER_IP)?,
            window_ms: get(OPT_RATE_WINDOW)?.saturating_mul(1000),
            legacy,
        })
    }
}

/// The manifest: description, options, and the dependency on mod_sasl2 (which negotiates).
pub(crate) fn manifest() -> Manifest {
    let mut options: Vec<OptionSpec> = INTEGERS
        .iter()
        .map(|(name, min, max, default, doc)| OptionSpec::integer(name, *min, *max, *default, doc))
        .collect();
    options.push(OptionSpec::boolean(
        OPT_LEGACY,
        false,
        "also offer PASSWORD-RESET in the RFC 6120 <mechanisms/> list",
    ));
    Manifest {
        description: "PASSWORD-RESET SASL mechanism, reset mail and reset web page".into(),
        options,
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
        // Never part of a downgrade-protection hash: it may come and go with the module.
        volatile: true,
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
        config.set(OPT_TOKEN_TTL, OptionValue::Integer(2));
        config.set(OPT_LEGACY, OptionValue::Bool(true));
        let settings = Settings::from_config(&config).expect("valid");
        assert_eq!(settings.token_ttl_ms, 2000);
        assert!(settings.legacy);
        assert!(registrations(&settings).mechanisms[0].legacy);

        config.set(OPT_MIN_LENGTH, OptionValue::Integer(0));
        let err = Settings::from_config(&config).expect_err("out of bounds");
        assert!(err.message.contains(OPT_MIN_LENGTH), "{err}");
        config.set(OPT_MIN_LENGTH, OptionValue::Integer(8));
        config.set(OPT_LEGACY, OptionValue::String("yes".into()));
        let err = Settings::from_config(&config).expect_err("not a bool");
        assert!(err.message.contains(OPT_LEGACY), "{err}");
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
    fn the_mechanism_is_tls_only_volatile_listed_and_legacy_only_on_request() {
        let spec = mechanism_spec(&Settings::default());
        assert!(spec.tls_only && spec.sasl2 && spec.volatile);
        assert!(!spec.hidden && !spec.legacy);
        let reg = registrations(&Settings::default());
        assert_eq!(reg.http_routes, [ROUTE]);
        let names: Vec<_> = reg.events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["user-password-changed", "user-deleted"]);
    }
}
