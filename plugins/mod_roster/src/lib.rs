//! mod_roster, the stub: a roster get (RFC 6121 §2.2) on the user's own account is answered
//! with an empty roster, so that clients that fetch the roster at login go on; a roster set is
//! refused with `<feature-not-implemented/>` rather than accepted and lost. The real roster
//! (items, subscriptions, versioning, pushes) replaces this module under the same name.

use tessera_plugin_api::protocol::{IqRequest, Manifest, Registrations};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{reply, Config, Host, Module, PluginError, StanzaCondition};

/// The `jabber:iq:roster` namespace.
pub const NS: &str = "jabber:iq:roster";

/// The module (stateless).
#[derive(Debug)]
pub struct Roster;

/// The answer to a roster IQ, or `None` when it is not one for the sender's own roster (the
/// host then answers `<service-unavailable/>`).
pub fn answer(request: &IqRequest) -> Option<Element> {
    let iq = &request.stanza;
    let query = iq.child("query", NS)?;
    let domain = request.stream.domain.as_str();
    let own_bare = request
        .stream
        .jid
        .as_deref()
        .map(|full| full.split('/').next().unwrap_or(full));
    // RFC 6121 §2.1.5: a roster request goes to the user's own bare JID (or carries no `to`).
    if iq.attr("to").is_some_and(|to| Some(to) != own_bare) {
        return None;
    }
    match iq.attr("type") {
        Some("get") if query.child_elements().next().is_none() => {
            let mut result = reply::iq_result(iq, domain);
            // From the user's own account, as RFC 6121 §2.1.4 shows: no `from` at all.
            result.remove_attr("from");
            Some(result.with_child(Element::new("query", NS)))
        }
        Some("get") => reply::error(iq, StanzaCondition::BadRequest, None, domain),
        _ => reply::error(
            iq,
            StanzaCondition::FeatureNotImplemented,
            Some("this server keeps no roster yet"),
            domain,
        ),
    }
}

impl Module for Roster {
    const NAME: &'static str = "roster";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "RFC 6121 roster (stub: an empty roster)".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(Roster)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            iq_namespaces: vec![NS.into()],
            ..Registrations::default()
        }
    }

    fn iq(&self, _host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        Ok(answer(&request))
    }
}

tessera_plugin_api::export_module!(Roster);

#[cfg(test)]
mod tests {
    use tessera_plugin_api::protocol::StreamInfo;

    use super::*;

    fn roster(kind: &str, to: Option<&str>, item: bool) -> IqRequest {
        let mut query = Element::new("query", NS);
        if item {
            query.push_child(Element::new("item", NS).with_attr("jid", "bob@example.org"));
        }
        let mut iq = Element::new("iq", "jabber:client")
            .with_attr("type", kind)
            .with_attr("id", "r1")
            .with_attr("from", "alice@example.org/phone")
            .with_child(query);
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
    fn a_get_on_the_own_roster_is_an_empty_roster() {
        for to in [None, Some("alice@example.org")] {
            let reply = answer(&roster("get", to, false)).expect("answered");
            assert_eq!(
                reply.to_xml_in("jabber:client"),
                "<iq type='result' id='r1' to='alice@example.org/phone'>\
                 <query xmlns='jabber:iq:roster'/></iq>"
            );
        }
    }

    #[test]
    fn sets_are_not_implemented_and_other_rosters_are_not_ours() {
        let set = answer(&roster("set", None, true))
            .expect("answered")
            .to_xml_in("jabber:client");
        assert!(set.contains("<feature-not-implemented "), "{set}");
        let bad = answer(&roster("get", None, true))
            .expect("answered")
            .to_xml_in("jabber:client");
        assert!(bad.contains("<bad-request "), "{bad}");
        assert!(answer(&roster("get", Some("bob@example.org"), false)).is_none());
    }
}
