//! A roster item (RFC 6121 §2.1.2): what the account sees of one contact, how it is stored,
//! and how it is written in results and pushes.

use serde::{Deserialize, Serialize};
use tessera_plugin_api::xml::Element;

use crate::subscription::{Relation, Subscription};
use crate::NS;

/// One contact of a roster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The contact's bare JID.
    #[serde(rename = "j")]
    pub jid: String,
    /// The account's name for it (`None`: no `name` attribute).
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The account's groups for it, in the order the client gave them.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The established subscriptions.
    #[serde(rename = "s", default)]
    pub subscription: Subscription,
    /// The account's subscription request is pending (`ask='subscribe'`).
    #[serde(rename = "o", default, skip_serializing_if = "is_false")]
    pub pending_out: bool,
    /// The account pre-approved the contact (`approved='true'`).
    #[serde(rename = "a", default, skip_serializing_if = "is_false")]
    pub approved: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
fn is_false(b: &bool) -> bool {
    !*b
}

impl Item {
    /// A new item with no name, groups or subscription.
    pub fn new(jid: &str) -> Self {
        Self {
            jid: jid.to_owned(),
            ..Self::default()
        }
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An item from its stored form (`None` when it is not one: a damaged entry is skipped
    /// rather than failing the whole roster).
    pub fn decode(stored: &str) -> Option<Self> {
        serde_json::from_str(stored).ok()
    }

    /// The relation this item records (pending-in is stored apart: it is never shown).
    pub fn relation(&self, pending_in: bool) -> Relation {
        Relation {
            subscription: self.subscription,
            pending_out: self.pending_out,
            pending_in,
            approved: self.approved,
        }
    }

    /// Take the visible part of a relation.
    pub fn set_relation(&mut self, r: &Relation) {
        self.subscription = r.subscription;
        self.pending_out = r.pending_out;
        self.approved = r.approved;
    }

    /// `<item/>` as results and pushes carry it.
    pub fn to_element(&self) -> Element {
        let mut item = Element::new("item", NS).with_attr("jid", &self.jid);
        if let Some(name) = &self.name {
            item.set_attr("name", name);
        }
        item.set_attr("subscription", self.subscription.as_str());
        if self.pending_out {
            item.set_attr("ask", "subscribe");
        }
        if self.approved {
            item.set_attr("approved", "true");
        }
        for group in &self.groups {
            item.push_child(Element::new("group", NS).with_text(group));
        }
        item
    }
}

/// `<item subscription='remove'/>` for a push after a removal.
pub fn removed(jid: &str) -> Element {
    Element::new("item", NS)
        .with_attr("jid", jid)
        .with_attr("subscription", "remove")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_storage_and_render_every_attribute() {
        let item = Item {
            jid: "juliet@example.com".into(),
            name: Some("Juliet <3".into()),
            groups: vec!["Friends".into(), "Capulets".into()],
            subscription: Subscription::From,
            pending_out: true,
            approved: false,
        };
        assert_eq!(Item::decode(&item.encode()), Some(item.clone()));
        assert_eq!(
            item.to_element().to_xml_in(NS),
            "<item jid='juliet@example.com' name='Juliet &lt;3' subscription='from' \
             ask='subscribe'><group>Friends</group><group>Capulets</group></item>"
        );
        let bare = Item::new("nurse@example.com");
        assert_eq!(bare.encode(), r#"{"j":"nurse@example.com","s":"None"}"#);
        assert_eq!(Item::decode("not json"), None);
    }
}
