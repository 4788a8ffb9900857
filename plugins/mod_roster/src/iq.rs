//! Roster IQs (RFC 6121 §2.1.3–§2.5), parsed and checked without I/O: a get, a set of one
//! item, or a removal, or the stanza error the request earns.

use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::StanzaCondition;

use crate::item::Item;
use crate::NS;

/// The size limits of roster items (the module's options).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemLimits {
    /// Longest `name`, in bytes.
    pub name_bytes: usize,
    /// Longest `<group/>`, in bytes.
    pub group_bytes: usize,
    /// Most groups on one item.
    pub groups: usize,
}

/// A roster request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The roster, or nothing if the client's version `ver` is current (RFC 6121 §2.6).
    Get {
        /// The version the client has (`None`: it does not use versioning).
        ver: Option<String>,
    },
    /// Add or replace an item: its JID, name and groups (subscription state is the server's).
    Set(Item),
    /// Remove the item with this bare JID.
    Remove(String),
}

/// Why a request is refused: the condition and a text for the client.
pub type Refusal = (StanzaCondition, &'static str);

/// Parse a roster IQ from `own_bare` (the sender's bare JID).
///
/// # Errors
/// The stanza error the request gets (RFC 6121 §2.1.5, §2.3.3, §2.5.3).
pub fn parse(iq: &Element, own_bare: &str, limits: ItemLimits) -> Result<Request, Refusal> {
    // §2.1.5: only the account itself reads and writes its roster.
    if iq
        .attr("to")
        .is_some_and(|to| Jid::parse(to).map(|j| j.to_string()).as_deref() != Ok(own_bare))
    {
        return Err((StanzaCondition::Forbidden, "only your own roster"));
    }
    let Some(query) = iq.child("query", NS) else {
        return Err((StanzaCondition::BadRequest, "no roster query"));
    };
    let mut items = query.child_elements().filter(|c| c.ns == NS);
    match iq.attr("type") {
        Some("get") => {
            if items.next().is_some() {
                return Err((StanzaCondition::BadRequest, "a roster get carries no items"));
            }
            Ok(Request::Get {
                ver: query.attr("ver").map(str::to_owned),
            })
        }
        Some("set") => {
            let (Some(item), None) = (items.next(), items.next()) else {
                return Err((
                    StanzaCondition::BadRequest,
                    "a roster set carries exactly one item",
                ));
            };
            set(item, own_bare, limits)
        }
        _ => Err((StanzaCondition::BadRequest, "a roster IQ is a get or a set")),
    }
}

fn set(item: &Element, own_bare: &str, limits: ItemLimits) -> Result<Request, Refusal> {
    let jid = item
        .attr("jid")
        .ok_or((StanzaCondition::BadRequest, "the item has no jid"))?;
    let jid = Jid::parse(jid).map_err(|_| (StanzaCondition::JidMalformed, "not a valid JID"))?;
    if jid.resource.is_some() {
        return Err((StanzaCondition::JidMalformed, "a roster item is a bare JID"));
    }
    let jid = jid.bare();
    if item.attr("subscription") == Some("remove") {
        return Ok(Request::Remove(jid));
    }
    if jid == own_bare {
        // Interop note of RFC 6121 §2.3.3: an account is always subscribed to itself.
        return Err((StanzaCondition::NotAllowed, "you cannot add yourself"));
    }
    let name = item.attr("name").map(str::to_owned);
    if name.as_ref().is_some_and(|n| n.len() > limits.name_bytes) {
        return Err((StanzaCondition::NotAcceptable, "the name is too long"));
    }
    let mut groups: Vec<String> = Vec::new();
    for group in item.children_named("group", NS) {
        let text = group.text();
        if text.is_empty() {
            return Err((StanzaCondition::NotAcceptable, "a group name is empty"));
        }
        if text.len() > limits.group_bytes {
            return Err((StanzaCondition::NotAcceptable, "a group name is too long"));
        }
        if groups.contains(&text) {
            return Err((StanzaCondition::BadRequest, "a group is listed twice"));
        }
        groups.push(text);
    }
    if groups.len() > limits.groups {
        return Err((
            StanzaCondition::NotAcceptable,
            "too many groups on one item",
        ));
    }
    // `subscription` other than remove, `ask` and `approved` are the server's: ignored.
    Ok(Request::Set(Item {
        jid,
        name,
        groups,
        ..Item::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "romeo@example.net";
    const LIMITS: ItemLimits = ItemLimits {
        name_bytes: 10,
        group_bytes: 8,
        groups: 2,
    };

    fn iq(kind: &str, items: &[Element]) -> Element {
        let mut query = Element::new("query", NS);
        for item in items {
            query.push_child(item.clone());
        }
        Element::new("iq", "jabber:client")
            .with_attr("type", kind)
            .with_attr("id", "1")
            .with_child(query)
    }

    fn item(jid: &str) -> Element {
        Element::new("item", NS).with_attr("jid", jid)
    }

    fn group(name: &str) -> Element {
        Element::new("group", NS).with_text(name)
    }

    #[test]
    fn gets_carry_the_version_and_no_items() {
        let get = iq("get", &[]);
        assert_eq!(parse(&get, ME, LIMITS), Ok(Request::Get { ver: None }));
        let mut versioned = get.clone();
        if let Some(q) = versioned.children.iter_mut().find_map(|c| match c {
            tessera_plugin_api::xml::Node::Element(e) => Some(e),
            _ => None,
        }) {
            q.set_attr("ver", "7");
        }
        assert_eq!(
            parse(&versioned, ME, LIMITS),
            Ok(Request::Get {
                ver: Some("7".into())
            })
        );
        assert_eq!(
            parse(&iq("get", &[item("a@b")]), ME, LIMITS).unwrap_err().0,
            StanzaCondition::BadRequest
        );
    }

    #[test]
    fn a_set_is_one_item_with_a_valid_bare_jid_within_the_limits() {
        let ok = item("Juliet@Example.com")
            .with_attr("name", "Juliet")
            .with_attr("subscription", "both")
            .with_attr("ask", "subscribe")
            .with_child(group("Friends"));
        assert_eq!(
            parse(&iq("set", &[ok]), ME, LIMITS),
            Ok(Request::Set(Item {
                jid: "juliet@example.com".into(),
                name: Some("Juliet".into()),
                groups: vec!["Friends".into()],
                ..Item::default()
            })),
            "prepared JID; subscription and ask ignored"
        );
        let cases: Vec<(Vec<Element>, StanzaCondition, &str)> = vec![
            (vec![], StanzaCondition::BadRequest, "exactly one"),
            (
                vec![item("a@b"), item("c@d")],
                StanzaCondition::BadRequest,
                "exactly one",
            ),
            (
                vec![Element::new("item", NS)],
                StanzaCondition::BadRequest,
                "no jid",
            ),
            (
                vec![item("a b@example.com")],
                StanzaCondition::JidMalformed,
                "valid JID",
            ),
            (
                vec![item("a@example.com/r")],
                StanzaCondition::JidMalformed,
                "bare JID",
            ),
            (
                vec![item("Romeo@example.net")],
                StanzaCondition::NotAllowed,
                "yourself",
            ),
            (
                vec![item("a@b").with_attr("name", "eleven char")],
                StanzaCondition::NotAcceptable,
                "name is too long",
            ),
            (
                vec![item("a@b").with_child(group(""))],
                StanzaCondition::NotAcceptable,
                "empty",
            ),
            (
                vec![item("a@b").with_child(group("ninechars"))],
                StanzaCondition::NotAcceptable,
                "group name is too long",
            ),
            (
                vec![item("a@b").with_child(group("x")).with_child(group("x"))],
                StanzaCondition::BadRequest,
                "twice",
            ),
            (
                vec![item("a@b")
                    .with_child(group("x"))
                    .with_child(group("y"))
                    .with_child(group("z"))],
                StanzaCondition::NotAcceptable,
                "too many groups",
            ),
        ];
        for (items, condition, text) in cases {
            let (c, t) = parse(&iq("set", &items), ME, LIMITS).unwrap_err();
            assert_eq!((c, t.contains(text)), (condition, true), "{items:?}: {t}");
        }
    }

    #[test]
    fn removal_needs_only_the_jid_and_other_rosters_are_forbidden() {
        let remove = item("juliet@example.com").with_attr("subscription", "remove");
        assert_eq!(
            parse(&iq("set", &[remove]), ME, LIMITS),
            Ok(Request::Remove("juliet@example.com".into()))
        );
        let foreign = iq("get", &[]).with_attr("to", "juliet@example.com");
        assert_eq!(
            parse(&foreign, ME, LIMITS).unwrap_err().0,
            StanzaCondition::Forbidden
        );
        let own = iq("get", &[]).with_attr("to", "ROMEO@example.net");
        assert!(parse(&own, ME, LIMITS).is_ok());
    }
}
