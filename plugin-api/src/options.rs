//! Typed module options declared once: [`options!`](crate::options!) turns one struct
//! declaration into the option specifications of the manifest (which the host validates: type,
//! bounds, unknown keys with a "did you mean"), the defaults, and the typed reading in `init`.
//! The field name is the key in `tessera.toml`, so the three cannot drift apart.
//!
//! ```
//! tessera_plugin_api::options! {
//!     /// What `mod_example` reads from the config.
//!     pub struct Settings {
//!         /// Whether the example greets.
//!         example_greet: bool = true;
//!         /// Greetings per minute (1 to 600).
//!         example_rate: u32 = 10, range 1..=600;
//!         /// Where greetings go, if anywhere.
//!         example_target: Option<String> = None;
//!     }
//! }
//!
//! let specs = Settings::specs();
//! assert_eq!(specs[1].name, "example_rate");
//! assert_eq!(specs[1].doc, "Greetings per minute (1 to 600).");
//! let mut config = tessera_plugin_api::Config::default();
//! config.set("example_rate", tessera_plugin_api::protocol::OptionValue::Integer(30));
//! let s = Settings::from_config(&config).unwrap();
//! assert_eq!((s.example_greet, s.example_rate, s.example_target), (true, 30, None));
//! config.set("example_rate", tessera_plugin_api::protocol::OptionValue::Integer(0));
//! assert_eq!(
//!     Settings::from_config(&config).unwrap_err().message,
//!     "option `example_rate` must be between 1 and 600"
//! );
//! ```

use crate::error::PluginError;
use crate::protocol::{OptionKind, OptionSpec, OptionValue};
use crate::sdk::Config;

/// A Rust type an option can have.
pub trait OptionType: Sized {
    /// The kind the host checks, with the declared bounds for integers.
    fn kind(range: Option<(i64, i64)>) -> OptionKind;
    /// The value as the host and the manifest carry it (`None`: unset).
    fn to_value(&self) -> Option<OptionValue>;
    /// The typed value, if `value` is of this type.
    fn from_value(value: &OptionValue) -> Option<Self>;
}

impl OptionType for bool {
    fn kind(_: Option<(i64, i64)>) -> OptionKind {
        OptionKind::Bool
    }
    fn to_value(&self) -> Option<OptionValue> {
        Some(OptionValue::Bool(*self))
    }
    fn from_value(value: &OptionValue) -> Option<Self> {
        match value {
            OptionValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

macro_rules! integer_option {
    ($($t:ty),*) => {$(
        impl OptionType for $t {
            fn kind(range: Option<(i64, i64)>) -> OptionKind {
                let (min, max) = range.unwrap_or((
                    i64::try_from(<$t>::MIN).unwrap_or(i64::MIN),
                    i64::try_from(<$t>::MAX).unwrap_or(i64::MAX),
                ));
                OptionKind::Integer { min, max }
            }
            fn to_value(&self) -> Option<OptionValue> {
                i64::try_from(*self).ok().map(OptionValue::Integer)
            }
            fn from_value(value: &OptionValue) -> Option<Self> {
                match value {
                    OptionValue::Integer(n) => <$t>::try_from(*n).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
integer_option!(i64, u64, u32, usize);

impl OptionType for String {
    fn kind(_: Option<(i64, i64)>) -> OptionKind {
        OptionKind::String
    }
    fn to_value(&self) -> Option<OptionValue> {
        Some(OptionValue::String(self.clone()))
    }
    fn from_value(value: &OptionValue) -> Option<Self> {
        match value {
            OptionValue::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl OptionType for Vec<String> {
    fn kind(_: Option<(i64, i64)>) -> OptionKind {
        OptionKind::StringList
    }
    fn to_value(&self) -> Option<OptionValue> {
        Some(OptionValue::StringList(self.clone()))
    }
    fn from_value(value: &OptionValue) -> Option<Self> {
        match value {
            OptionValue::StringList(l) => Some(l.clone()),
            _ => None,
        }
    }
}

/// An option that may be unset (no default).
impl<T: OptionType> OptionType for Option<T> {
    fn kind(range: Option<(i64, i64)>) -> OptionKind {
        T::kind(range)
    }
    fn to_value(&self) -> Option<OptionValue> {
        self.as_ref().and_then(T::to_value)
    }
    fn from_value(value: &OptionValue) -> Option<Self> {
        T::from_value(value).map(Some)
    }
}

/// The specification of one declared option (used by [`options!`](crate::options!)).
pub fn spec<T: OptionType>(
    name: &str,
    default: &T,
    range: Option<(i64, i64)>,
    doc: &str,
) -> OptionSpec {
    OptionSpec {
        name: name.to_owned(),
        kind: T::kind(range),
        default: default.to_value(),
        required: false,
        // Doc comment lines, joined: one space between words.
        doc: doc.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Read one declared option: its value, or the default when the key is absent (used by
/// [`options!`](crate::options!)). The host has checked type and bounds already; they are
/// checked again so that a module driven without the host gets the same answer.
///
/// # Errors
/// [`crate::PluginErrorKind::CONFIG`] naming the key: a value of another type, or out of
/// bounds.
pub fn read<T: OptionType>(
    config: &Config,
    name: &str,
    default: T,
    range: Option<(i64, i64)>,
) -> Result<T, PluginError> {
    let Some(value) = config.get(name) else {
        return Ok(default);
    };
    let kind = T::kind(range);
    let typed = T::from_value(value);
    match (&kind, value) {
        (OptionKind::Integer { min, max }, OptionValue::Integer(n))
            if !(min..=max).contains(&n) =>
        {
            Err(PluginError::config(format!(
                "option `{name}` must be between {min} and {max}"
            )))
        }
        _ => typed.ok_or_else(|| {
            PluginError::config(format!("option `{name}` must be {}", kind_name(&kind)))
        }),
    }
}

fn kind_name(kind: &OptionKind) -> &'static str {
    match kind {
        OptionKind::Bool => "true or false",
        OptionKind::Integer { .. } => "an integer",
        OptionKind::String => "a string",
        OptionKind::StringList => "a list of strings",
    }
}

/// Declare a module's options as a struct: each field is an option (its name the key in
/// `tessera.toml`), with a default, optional integer bounds (`range MIN..=MAX`) and its doc
/// comment as the description. Generates the struct with `specs()` (for
/// [`crate::protocol::Manifest::options`]), `from_config(&Config)` and `Default`. See the
/// [module docs](crate::options) for an example.
#[macro_export]
macro_rules! options {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr $(, range $min:literal ..= $max:literal)? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        $vis struct $name {
            $(
                $(#[doc = $doc])*
                $vis $field: $ty,
            )*
        }

        impl $name {
            /// The option specifications, for the manifest.
            $vis fn specs() -> ::std::vec::Vec<$crate::protocol::OptionSpec> {
                ::std::vec![$(
                    $crate::options::spec::<$ty>(
                        ::std::stringify!($field),
                        &$default,
                        $crate::options!(@range $($min, $max)?),
                        ::std::concat!($($doc, " ",)* ""),
                    ),
                )*]
            }

            /// The options as configured, defaults for absent keys.
            ///
            /// # Errors
            /// A value of the wrong type or out of bounds (the message names the key).
            $vis fn from_config(
                config: &$crate::Config,
            ) -> ::std::result::Result<Self, $crate::PluginError> {
                ::std::result::Result::Ok(Self {
                    $(
                        $field: $crate::options::read::<$ty>(
                            config,
                            ::std::stringify!($field),
                            $default,
                            $crate::options!(@range $($min, $max)?),
                        )?,
                    )*
                })
            }
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }
    };
    (@range $min:literal, $max:literal) => { ::std::option::Option::Some(($min, $max)) };
    (@range) => { ::std::option::Option::None };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::options! {
        /// Test options.
        struct Opts {
            /// A flag.
            t_flag: bool = false;
            /// A count,
            /// on two lines.
            t_count: usize = 3, range 1..=9;
            /// A list.
            t_list: Vec<String> = Vec::new();
            /// Unset by default.
            t_name: Option<String> = None;
        }
    }

    #[test]
    fn specs_carry_names_kinds_defaults_bounds_and_docs() {
        let specs = Opts::specs();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["t_flag", "t_count", "t_list", "t_name"]);
        assert_eq!(specs[1].kind, OptionKind::Integer { min: 1, max: 9 });
        assert_eq!(specs[1].default, Some(OptionValue::Integer(3)));
        assert_eq!(specs[1].doc, "A count, on two lines.");
        assert_eq!(specs[3].kind, OptionKind::String);
        assert_eq!(specs[3].default, None);
        assert!(specs.iter().all(|s| !s.required));
        assert_eq!(Opts::default().t_count, 3);
    }

    #[test]
    fn reading_takes_values_defaults_and_refuses_bad_ones() {
        let mut config = Config::default();
        assert_eq!(Opts::from_config(&config), Ok(Opts::default()));
        config.set("t_name", OptionValue::String("x".into()));
        config.set("t_list", OptionValue::StringList(vec!["a".into()]));
        let o = Opts::from_config(&config).expect("valid");
        assert_eq!((o.t_name.as_deref(), o.t_list.len()), (Some("x"), 1));
        config.set("t_count", OptionValue::Integer(10));
        assert_eq!(
            Opts::from_config(&config).unwrap_err().message,
            "option `t_count` must be between 1 and 9"
        );
        config.set("t_count", OptionValue::Bool(true));
        assert_eq!(
            Opts::from_config(&config).unwrap_err().message,
            "option `t_count` must be an integer"
        );
    }
}
