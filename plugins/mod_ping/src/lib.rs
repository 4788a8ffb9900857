//! mod_ping: XEP-0199 XMPP Ping. The server answers a `<ping/>` IQ get addressed to itself (or
//! with no `to`) or to the sender's own bare JID with an empty result, and lists `urn:xmpp:ping`
//! in its disco#info. A ping to a full JID is routed to that client by the host; a ping to
//! another account's bare JID is not answered here (the host says `<service-unavailable/>`).
//! Unloading the module removes both the answer and the feature.

use tessera_plugin_api::protocol::{IqRequest, Manifest, Registrations};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Config, Host, Module, PluginError};

/// The XEP-0199 namespace.
pub const NS: &str = "urn:xmpp:ping";

/// The module (stateless).
#[derive(Debug)]
pub struct Ping;

/// The answer to a ping, or `None` when this module does not answer it.
pub fn answer(request: &IqRequest) -> Option<Element> {
    let iq = &request.stanza;
    if iq.attr("type") != Some("get") || iq.child("ping", NS).is_none() {
        return None;
    }
    let domain = request.stream.domain.as_str();
    let own_bare = request
        .stream
        .jid
        .as_deref()
        .map(|full| full.split('/').next().unwrap_or(full));
    let to = iq.attr("to");
    let for_us = match to {
        None => true,
        Some(to) => to.eq_ignore_ascii_case(domain) || Some(to) == own_bare,
    };
    if !for_us {
        return None;
    }
    let mut result = Element::new("iq", iq.ns.clone()).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        result.set_attr("id", id);
    }
    result.set_attr("from", to.unwrap_or(domain));
    if let Some(from) = iq.attr("from") {
        result.set_attr("to", from);
    }
    Some(result)
}

impl Module for Ping {
    const NAME: &'static str = "ping";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0199 XMPP Ping".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(Ping)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            iq_namespaces: vec![NS.into()],
            disco_features: vec![NS.into()],
            ..Registrations::default()
        }
    }

    fn iq(&self, _host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        Ok(answer(&request))
    }
}

tessera_plugin_api::export_module!(Ping);

#[cfg(test)]
mod tests {
    use tessera_plugin_api::protocol::StreamInfo;

    use super::*;

    fn ping(kind: &str, to: Option<&str>) -> IqRequest {
        let mut iq = Element::new("iq", "jabber:client")
            .with_attr("type", kind)
            .with_attr("id", "p1")
            .with_attr("from", "alice@example.org/phone")
            .with_child(Element::new("ping", NS));
        if let Some(to) = to {
            iq.set_attr("to", to);
        }
        IqRequest {
            stream: StreamInfo {
                domain: "example.org".into(),
                jid: Some("alice@example.org/phone".into()),
                ..StreamInfo::default()
            },
            stanza: iq,
        }
    }

    #[test]
    fn the_server_and_the_own_account_answer_with_an_empty_result() {
        for to in [None, Some("example.org"), Some("alice@example.org")] {
            let reply = answer(&ping("get", to)).expect("answered");
            assert_eq!(
                reply.to_xml_in("jabber:client"),
                format!(
                    "<iq type='result' id='p1' from='{}' to='alice@example.org/phone'/>",
                    to.unwrap_or("example.org")
                )
            );
        }
    }

    #[test]
    fn other_accounts_sets_and_other_payloads_are_left_to_the_host() {
        assert!(answer(&ping("get", Some("bob@example.org"))).is_none());
        assert!(answer(&ping("set", None)).is_none());
        let mut other = ping("get", None);
        other.stanza.children.clear();
        assert!(answer(&other).is_none());
    }
}
