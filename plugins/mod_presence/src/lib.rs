//! mod_presence: a client's broadcast presence (RFC 6121 §4.2 and §4.4: no `to`, available or
//! `unavailable`) sets its session's availability and priority for delivery (RFC 6121 §8.5:
//! messages to the bare JID go to available resources) and is shown to the account's other
//! bound resources. Directed presence (with a `to`) is left to the host's delivery.
//!
//! Without this module no session is ever marked available, and a message to a bare JID goes
//! to every bound resource. The roster-based part of RFC 6121 (probes, broadcast to contacts,
//! directed presence bookkeeping) is the next step of this module.

use tessera_plugin_api::protocol::{Manifest, Registrations};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Config, Host, Module, PluginError, Stanza, Verdict};

const CLIENT_NS: &str = "jabber:client";

/// The module (stateless: availability lives in the host's session table).
#[derive(Debug)]
pub struct Presence;

/// What a broadcast presence says about its session: `Some(priority)` when available, `None`
/// when unavailable. RFC 6121 §4.7.2.3: the priority is an integer from -128 to 127, 0 when
/// absent; a value out of range or not a number is treated as absent.
pub fn availability(presence: &Element) -> Option<i8> {
    if presence.attr("type") == Some("unavailable") {
        return None;
    }
    Some(
        presence
            .child("priority", CLIENT_NS)
            .and_then(|p| p.text().trim().parse().ok())
            .unwrap_or(0),
    )
}

impl Module for Presence {
    const NAME: &'static str = "presence";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "RFC 6121 presence: availability for delivery and broadcast to the \
                          account's own resources"
                .into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(Presence)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            stanza_hooks: vec![StanzaHook::at(StanzaPoint::ClientIn)
                .kind(StanzaKind::Presence)
                .types(&["", "unavailable"])],
            ..Registrations::default()
        }
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let header = stanza.header;
        let (None, Some(session), Some(account)) = (header.to, header.session, header.account)
        else {
            // Directed presence: the host delivers it.
            return Ok(Verdict::Pass);
        };
        let presence = stanza.element()?;
        host.session_presence(session, availability(&presence))?;
        for other in host.account_sessions(account)? {
            if other.stream != session && other.full_jid.is_some() {
                host.send_to_session(other.stream, presence.clone())?;
            }
        }
        Ok(Verdict::Handled)
    }
}

tessera_plugin_api::export_module!(Presence);

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(xml_children: &[(&str, &str)], kind: Option<&str>) -> Element {
        let mut p = Element::new("presence", CLIENT_NS);
        if let Some(kind) = kind {
            p.set_attr("type", kind);
        }
        for (name, text) in xml_children {
            p.push_child(Element::new(*name, CLIENT_NS).with_text(*text));
        }
        p
    }

    #[test]
    fn priority_is_read_within_its_range_and_defaults_to_zero() {
        assert_eq!(availability(&presence(&[], None)), Some(0));
        assert_eq!(
            availability(&presence(&[("priority", " 5 ")], None)),
            Some(5)
        );
        assert_eq!(
            availability(&presence(&[("priority", "-128")], None)),
            Some(-128)
        );
        assert_eq!(
            availability(&presence(&[("priority", "128")], None)),
            Some(0)
        );
        assert_eq!(availability(&presence(&[("priority", "x")], None)), Some(0));
        assert_eq!(
            availability(&presence(&[("priority", "5")], Some("unavailable"))),
            None
        );
    }
}
