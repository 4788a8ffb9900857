//! mod_disco: XEP-0030 Service Discovery for the server itself. `disco#info` to the server (or
//! with no `to`) lists the identities and features every loaded module declared
//! (`Registrations::disco_identities` / `disco_features`, asked of the host for each query, so
//! a module loaded or unloaded is reflected at once), plus this module's own: the server
//! identity (`server`/`im`) and the two disco namespaces. `disco#items` to the server is an
//! empty list (no components or services yet). `disco#info` of an account's own bare JID, asked
//! by the account, answers the identity `account`/`registered` and the features modules give
//! through the `account-disco-features` hook (mod_mam's archive, XEP-0313 §7); other accounts'
//! bare JIDs are not answered here.

use tessera_plugin_api::im::ACCOUNT_DISCO_FEATURES;
use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::protocol::{DiscoIdentity, DiscoInfo, IqRequest, Manifest, Registrations};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Config, Host, Module, PluginError};

/// `disco#info`.
pub const INFO: &str = "http://jabber.org/protocol/disco#info";
/// `disco#items`.
pub const ITEMS: &str = "http://jabber.org/protocol/disco#items";
tessera_plugin_api::options! {
    /// The module's options.
    pub struct Settings {
        /// the server's name in its disco#info identity
        disco_name: String = "Tessera".to_owned();
    }
}

/// The module: the name it gives the server.
#[derive(Debug)]
pub struct Disco {
    name: String,
}

/// Which query a request is, if it is one this module answers.
fn query_of(request: &IqRequest) -> Option<&'static str> {
    let iq = &request.stanza;
    if iq.attr("type") != Some("get") {
        return None;
    }
    let to_server = iq
        .attr("to")
        .is_none_or(|to| to.eq_ignore_ascii_case(&request.stream.domain));
    if !to_server || iq.child_elements().count() != 1 {
        return None;
    }
    plain_query(iq)
}

fn plain_query(iq: &Element) -> Option<&'static str> {
    [INFO, ITEMS].into_iter().find(|ns| {
        iq.child("query", ns)
            .is_some_and(|q| q.attr("node").is_none())
    })
}

/// The account whose own bare JID a `disco#info` get asks about, when the account asks.
fn own_account_query(request: &IqRequest) -> Option<&str> {
    let iq = &request.stanza;
    let user = request.stream.user.as_deref()?;
    let to = Jid::parse(iq.attr("to")?).ok()?;
    let own = to.resource.is_none()
        && to.domain.eq_ignore_ascii_case(&request.stream.domain)
        && to.local.as_deref() == Some(user);
    (own && iq.attr("type") == Some("get") && plain_query(iq) == Some(INFO)).then_some(user)
}

/// The `disco#info` of an account's bare JID: `account`/`registered` and the given features.
pub fn account_info(request: &IqRequest, mut features: Vec<String>) -> Element {
    features.push(INFO.into());
    features.sort();
    features.dedup();
    info_result(
        request,
        &DiscoInfo {
            identities: vec![DiscoIdentity {
                category: "account".into(),
                kind: "registered".into(),
                name: None,
            }],
            features,
        },
    )
}

fn result_of(iq: &Element, domain: &str) -> Element {
    let mut result = Element::new("iq", iq.ns.clone()).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        result.set_attr("id", id);
    }
    result.set_attr("from", iq.attr("to").unwrap_or(domain));
    if let Some(from) = iq.attr("from") {
        result.set_attr("to", from);
    }
    result
}

/// The `disco#info` result from what the host reported.
pub fn info_result(request: &IqRequest, info: &DiscoInfo) -> Element {
    let mut query = Element::new("query", INFO);
    for id in &info.identities {
        let mut el = Element::new("identity", INFO)
            .with_attr("category", &id.category)
            .with_attr("type", &id.kind);
        if let Some(name) = &id.name {
            el.set_attr("name", name);
        }
        query.push_child(el);
    }
    for feature in &info.features {
        query.push_child(Element::new("feature", INFO).with_attr("var", feature));
    }
    result_of(&request.stanza, &request.stream.domain).with_child(query)
}

impl Module for Disco {
    const NAME: &'static str = "disco";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0030 Service Discovery for the server".into(),
            options: Settings::specs(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(Disco {
            name: Settings::from_config(config)?.disco_name,
        })
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            iq_namespaces: vec![INFO.into(), ITEMS.into()],
            disco_features: vec![INFO.into(), ITEMS.into()],
            disco_identities: vec![DiscoIdentity {
                category: "server".into(),
                kind: "im".into(),
                name: Some(self.name.clone()),
            }],
            ..Registrations::default()
        }
    }

    fn iq(&self, host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        if let Some(user) = own_account_query(&request) {
            let replies: Vec<Vec<String>> =
                host.call_hook_as(ACCOUNT_DISCO_FEATURES, &user.to_owned())?;
            let features = replies.into_iter().flatten().collect();
            return Ok(Some(account_info(&request, features)));
        }
        Ok(match query_of(&request) {
            Some(INFO) => Some(info_result(&request, &host.disco_info()?)),
            Some(_) => Some(
                result_of(&request.stanza, &request.stream.domain)
                    .with_child(Element::new("query", ITEMS)),
            ),
            None => None,
        })
    }
}

tessera_plugin_api::export_module!(Disco);

#[cfg(test)]
mod tests {
    use tessera_plugin_api::protocol::StreamInfo;

    use super::*;

    fn query(ns: &str, to: Option<&str>) -> IqRequest {
        let mut iq = Element::new("iq", "jabber:client")
            .with_attr("type", "get")
            .with_attr("id", "d1")
            .with_attr("from", "alice@example.org/phone")
            .with_child(Element::new("query", ns));
        if let Some(to) = to {
            iq.set_attr("to", to);
        }
        IqRequest {
            stream: StreamInfo {
                domain: "example.org".into(),
                ..StreamInfo::default()
            },
            stanza: iq,
        }
    }

    #[test]
    fn info_lists_what_the_host_reported() {
        let info = DiscoInfo {
            identities: vec![DiscoIdentity {
                category: "server".into(),
                kind: "im".into(),
                name: Some("Tessera".into()),
            }],
            features: vec![INFO.into(), "urn:xmpp:ping".into()],
        };
        let request = query(INFO, Some("example.org"));
        assert_eq!(query_of(&request), Some(INFO));
        assert_eq!(
            info_result(&request, &info).to_xml_in("jabber:client"),
            "<iq type='result' id='d1' from='example.org' to='alice@example.org/phone'>\
             <query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='server' type='im' name='Tessera'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='urn:xmpp:ping'/></query></iq>"
        );
    }

    #[test]
    fn an_account_asking_its_own_bare_jid_gets_the_account_features() {
        let mut request = query(INFO, Some("alice@example.org"));
        assert_eq!(own_account_query(&request), None, "not authenticated");
        request.stream.user = Some("alice".into());
        assert_eq!(own_account_query(&request), Some("alice"));
        assert_eq!(
            account_info(&request, vec!["urn:xmpp:mam:2".into()]).to_xml_in("jabber:client"),
            "<iq type='result' id='d1' from='alice@example.org' to='alice@example.org/phone'>\
             <query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='account' type='registered'/>\
             <feature var='http://jabber.org/protocol/disco#info'/>\
             <feature var='urn:xmpp:mam:2'/></query></iq>"
        );
        // Someone else's bare JID, a full JID, items: not this answer.
        let mut other = query(INFO, Some("bob@example.org"));
        other.stream.user = Some("alice".into());
        assert_eq!(own_account_query(&other), None);
        let mut full = query(INFO, Some("alice@example.org/phone"));
        full.stream.user = Some("alice".into());
        assert_eq!(own_account_query(&full), None);
        let mut items = query(ITEMS, Some("alice@example.org"));
        items.stream.user = Some("alice".into());
        assert_eq!(own_account_query(&items), None);
    }

    #[test]
    fn only_plain_gets_to_the_server_are_answered() {
        assert_eq!(query_of(&query(ITEMS, None)), Some(ITEMS));
        assert_eq!(query_of(&query(INFO, Some("bob@example.org"))), None);
        let mut set = query(INFO, None);
        set.stanza.set_attr("type", "set");
        assert_eq!(query_of(&set), None);
        let mut node = query(INFO, None);
        if let Some(q) = node.stanza.child_mut("query", INFO) {
            q.set_attr("node", "x");
        }
        assert_eq!(query_of(&node), None);
    }
}
