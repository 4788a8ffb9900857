//! mod_register: XEP-0077 In-Band Registration.
//!
//! * **New accounts**, before authentication, only with `allow_registration = true` (off by
//!   default, as in Prosody): the `<register/>` stream feature, the form (get) and account
//!   creation (set). The host passes such IQs only on TLS streams, without a `from`. Each client
//!   address (IPv6 by /64) may try `registration_throttle_max` creations per
//!   `registration_throttle_period` seconds (Prosody's option names); past that the answer is a
//!   `wait` `<policy-violation/>` saying when to retry.
//! * **The own account**, after authentication, always: the form with `<registered/>`, password
//!   change (§3.3; the other sessions are reset by the host, this one is spared) and account
//!   removal (§3.2; the result is written, then every session of the account is closed with
//!   `<not-authorized/>`).
//!
//! Errors follow XEP-0077 §3: missing fields `<not-acceptable/>` (creation) or
//! `<bad-request/>` (change), a taken name `<conflict/>`, a name or password the server refuses
//! `<not-acceptable/>` with the reason, a username that is not the session's
//! `<not-authorized/>`, a store failure a `wait` `<internal-server-error/>`.

use std::sync::Mutex;

use tessera_plugin_api::names::canonical_account;
use tessera_plugin_api::protocol::{IqRequest, Manifest, Registrations, StreamInfo};
use tessera_plugin_api::ratelimit::{address_key, Window};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{
    reply, wire, Config, ErrorType, Host, Module, PluginError, PluginErrorKind, StanzaCondition,
};

/// The `jabber:iq:register` namespace.
pub const NS: &str = "jabber:iq:register";
/// The stream feature's namespace.
pub const FEATURE_NS: &str = "http://jabber.org/features/iq-register";
tessera_plugin_api::options! {
    /// The module's options (Prosody's names).
    pub struct Settings {
        /// XEP-0077 registration of new accounts (password change and removal are always
        /// allowed).
        allow_registration: bool = false;
        /// Account creation attempts per client address (IPv6: per /64) per period.
        registration_throttle_max: usize = 5, range 1..=1_000_000;
        /// The registration throttle's period, in seconds.
        registration_throttle_period: u64 = 3_600, range 1..=2_592_000;
    }
}
/// Format version of the saved throttle.
const STATE_VERSION: u32 = 1;

/// The module: whether creation is open, and the per-address throttle.
#[derive(Debug)]
pub struct Register {
    allow: bool,
    throttle: Mutex<Window>,
}

/// What one registration IQ asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Form,
    Create {
        user: String,
        password: String,
        email: Option<String>,
    },
    ChangePassword {
        user: Option<String>,
        password: String,
    },
    Remove,
    /// A set without the fields its action needs.
    Incomplete,
}

fn field(query: &Element, name: &str) -> Option<String> {
    query.child(name, NS).map(Element::text)
}

/// Read a registration IQ (`authenticated`: whether it came from a bound session).
fn parse(iq: &Element, authenticated: bool) -> Option<Request> {
    let query = iq.child("query", NS)?;
    Some(match iq.attr("type")? {
        "get" => Request::Form,
        "set" if query.child("remove", NS).is_some() => {
            if authenticated {
                Request::Remove
            } else {
                Request::Incomplete
            }
        }
        "set" => match (field(query, "username"), field(query, "password")) {
            (user, Some(password)) if authenticated => Request::ChangePassword { user, password },
            (Some(user), Some(password)) => Request::Create {
                user,
                password,
                email: field(query, "email").filter(|e| !e.is_empty()),
            },
            _ => Request::Incomplete,
        },
        _ => return None,
    })
}

/// The registration form: for a new account, or for the signed-in `user`.
fn form(iq: &Element, domain: &str, user: Option<&str>) -> Element {
    let mut query = Element::new("query", NS);
    match user {
        Some(user) => {
            query.push_child(Element::new("registered", NS));
            query.push_child(Element::new("username", NS).with_text(user));
        }
        None => {
            query.push_child(
                Element::new("instructions", NS).with_text("Choose a username and password."),
            );
            query.push_child(Element::new("username", NS));
        }
    }
    query.push_child(Element::new("password", NS));
    reply::iq_result(iq, domain).with_child(query)
}

fn error(iq: &Element, condition: StanzaCondition, text: Option<&str>, domain: &str) -> Element {
    reply::error(iq, condition, text, domain).unwrap_or_else(|| reply::iq_result(iq, domain))
}

/// The answer to a host refusal: a name or password the server will not take is the client's
/// to fix (`<not-acceptable/>` with the reason); anything else is the server's (`wait`).
fn refusal(iq: &Element, e: &PluginError, domain: &str) -> Element {
    match e.kind {
        PluginErrorKind::CONFLICT => error(iq, StanzaCondition::Conflict, None, domain),
        PluginErrorKind::BAD_REQUEST => {
            error(iq, StanzaCondition::NotAcceptable, Some(&e.message), domain)
        }
        _ => reply::error_typed(
            iq,
            ErrorType::Wait,
            StanzaCondition::InternalServerError,
            None,
            domain,
        )
        .unwrap_or_else(|| reply::iq_result(iq, domain)),
    }
}

impl Register {
    /// Before authentication: the form, or a new account.
    fn unauthenticated(&self, host: &Host, stream: &StreamInfo, iq: &Element) -> Option<Element> {
        // The host routes these only when the module registered them (registration allowed);
        // checked again here so a host bug cannot open it.
        if !self.allow {
            return None;
        }
        let domain = stream.domain.as_str();
        Some(match parse(iq, false)? {
            Request::Form => form(iq, domain, None),
            Request::Create {
                user,
                password,
                email,
            } => {
                let now = host.now_ms();
                // Strict: an attacker who filled the table does not open registration to
                // everyone else (nobody is locked out of an account by this).
                let admitted =
                    locked(&self.throttle).admit_strict(&address_key(&stream.peer_ip), now);
                if let Err(wait_ms) = admitted {
                    let text = format!(
                        "Too many registrations from this address; retry in {} s",
                        wait_ms.div_ceil(1000)
                    );
                    return reply::error_typed(
                        iq,
                        ErrorType::Wait,
                        StanzaCondition::PolicyViolation,
                        Some(&text),
                        domain,
                    );
                }
                match host.create_account(&user, &password, email.as_deref()) {
                    Ok(user) => {
                        host.log(
                            tessera_plugin_api::LogLevel::Info,
                            &format!("account {user} registered in-band"),
                        );
                        reply::iq_result(iq, domain)
                    }
                    Err(e) => refusal(iq, &e, domain),
                }
            }
            _ => error(iq, StanzaCondition::NotAcceptable, None, domain),
        })
    }

    /// From a bound session of `user`: the form, a new password, or removal.
    fn authenticated(&self, host: &Host, stream: &StreamInfo, iq: &Element) -> Option<Element> {
        let domain = stream.domain.as_str();
        let user = stream.user.as_deref()?;
        let own_bare = format!("{user}@{domain}");
        // To the server or to the own account; another account's registration is not ours.
        if iq.attr("to").is_some_and(|to| {
            !to.eq_ignore_ascii_case(domain) && !to.eq_ignore_ascii_case(&own_bare)
        }) {
            return None;
        }
        Some(match parse(iq, true)? {
            Request::Form => form(iq, domain, Some(user)),
            Request::Remove => match host.delete_account(user) {
                Ok(()) => reply::iq_result(iq, domain),
                Err(e) => refusal(iq, &e, domain),
            },
            Request::ChangePassword {
                user: named,
                password,
            } => {
                if named.is_some_and(|n| canonical_account(&n).as_deref() != Some(user)) {
                    return Some(error(iq, StanzaCondition::NotAuthorized, None, domain));
                }
                match host.set_password(user, &password, Some(stream.id)) {
                    Ok(()) => reply::iq_result(iq, domain),
                    Err(e) => refusal(iq, &e, domain),
                }
            }
            Request::Create { .. } | Request::Incomplete => {
                error(iq, StanzaCondition::BadRequest, None, domain)
            }
        })
    }
}

impl Module for Register {
    const NAME: &'static str = "register";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0077 in-band registration, password change and account removal"
                .into(),
            options: Settings::specs(),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let settings = Settings::from_config(config)?;
        let mut throttle = Window::new(
            settings.registration_throttle_max,
            settings.registration_throttle_period.saturating_mul(1000),
        );
        if let Some(saved) = restore.filter(|s| !s.is_empty()) {
            let (version, keys): (u32, Vec<(String, Vec<u64>)>) =
                wire::decode("register state", saved)?;
            if version != STATE_VERSION {
                return Err(PluginError::new(
                    PluginErrorKind::BAD_STATE,
                    format!("unknown state version {version}"),
                ));
            }
            throttle.restore(keys, host.now_ms());
        }
        Ok(Register {
            allow: settings.allow_registration,
            throttle: Mutex::new(throttle),
        })
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            iq_namespaces: vec![NS.into()],
            pre_auth_iq_namespaces: if self.allow {
                vec![NS.into()]
            } else {
                Vec::new()
            },
            stream_features: self.allow,
            disco_features: vec![NS.into()],
            ..Registrations::default()
        }
    }

    fn stream_features(
        &self,
        _host: &Host,
        stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        Ok(if self.allow && stream.user.is_none() {
            vec![Element::new("register", FEATURE_NS)]
        } else {
            Vec::new()
        })
    }

    fn iq(&self, host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        let IqRequest { stream, stanza } = request;
        Ok(if stream.user.is_none() {
            self.unauthenticated(host, &stream, &stanza)
        } else {
            self.authenticated(host, &stream, &stanza)
        })
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        let keys = locked(&self.throttle).snapshot();
        wire::encode(&(STATE_VERSION, keys))
    }
}

tessera_plugin_api::export_module!(Register);

#[cfg(test)]
mod tests {
    use super::*;

    fn iq(kind: &str, children: &[Element]) -> Element {
        let mut query = Element::new("query", NS);
        for c in children {
            query.push_child(c.clone());
        }
        Element::new("iq", "jabber:client")
            .with_attr("type", kind)
            .with_attr("id", "r1")
            .with_child(query)
    }

    fn text(name: &str, value: &str) -> Element {
        Element::new(name, NS).with_text(value)
    }

    #[test]
    fn requests_are_read_by_phase() {
        let create = iq("set", &[text("username", "eve"), text("password", "pw")]);
        assert_eq!(
            parse(&create, false),
            Some(Request::Create {
                user: "eve".into(),
                password: "pw".into(),
                email: None
            })
        );
        assert_eq!(
            parse(&create, true),
            Some(Request::ChangePassword {
                user: Some("eve".into()),
                password: "pw".into()
            })
        );
        let remove = iq("set", &[Element::new("remove", NS)]);
        assert_eq!(parse(&remove, true), Some(Request::Remove));
        assert_eq!(
            parse(&remove, false),
            Some(Request::Incomplete),
            "nobody to remove before authentication"
        );
        assert_eq!(
            parse(&iq("set", &[text("username", "eve")]), false),
            Some(Request::Incomplete)
        );
        assert_eq!(parse(&iq("get", &[]), false), Some(Request::Form));
        assert_eq!(parse(&iq("result", &[]), false), None);
        let with_email = iq(
            "set",
            &[
                text("username", "eve"),
                text("password", "pw"),
                text("email", "eve@example.org"),
            ],
        );
        assert!(matches!(
            parse(&with_email, false),
            Some(Request::Create { email: Some(e), .. }) if e == "eve@example.org"
        ));
    }

    #[test]
    fn the_forms_differ_before_and_after_authentication() {
        let get = iq("get", &[]);
        assert_eq!(
            form(&get, "example.org", None).to_xml_in("jabber:client"),
            "<iq type='result' id='r1' from='example.org'><query xmlns='jabber:iq:register'>\
             <instructions>Choose a username and password.</instructions><username/><password/>\
             </query></iq>"
        );
        assert_eq!(
            form(&get, "example.org", Some("alice")).to_xml_in("jabber:client"),
            "<iq type='result' id='r1' from='example.org'><query xmlns='jabber:iq:register'>\
             <registered/><username>alice</username><password/></query></iq>"
        );
    }

    #[test]
    fn host_refusals_become_the_xep_conditions() {
        let set = iq("set", &[]);
        let answer = |kind, msg: &str| {
            refusal(&set, &PluginError::new(kind, msg), "example.org").to_xml_in("jabber:client")
        };
        assert!(answer(PluginErrorKind::CONFLICT, "exists").contains("<conflict "));
        let bad = answer(
            PluginErrorKind::BAD_REQUEST,
            "unusable password: must be 1 to 1024 bytes",
        );
        assert!(
            bad.contains("<not-acceptable ")
                && bad.contains(">unusable password: must be 1 to 1024 bytes</text>"),
            "{bad}"
        );
        let store = answer(PluginErrorKind::HOST, "store failure");
        assert!(
            store.contains("type='wait'") && store.contains("<internal-server-error "),
            "{store}"
        );
    }
}
