//! The XML element model shared by the host and plugins (RFC 6120 §11, XML Namespaces).
//!
//! An [`Element`] is a namespace-resolved tree: every element carries its local
//! name and its namespace URI, never a prefix. Namespace declarations
//! (`xmlns`, `xmlns:p`) are not attributes in this model; the serialiser
//! re-creates a default-namespace declaration wherever an element's namespace
//! differs from its parent's. The only prefixed attribute names kept are those
//! in the reserved `xml:` namespace (for example `xml:lang`).
//!
//! The model is plain data (serde-serialisable) so that it can cross the plugin
//! boundary ([`crate::wire`]). Serialisation ([`Element::to_xml`], [`Element::write_xml`])
//! always produces well-formed XML: characters that XML 1.0 cannot carry are
//! replaced with U+FFFD and namespace-declaration attributes are skipped.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One XML element: local name, namespace URI, attributes and children.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    /// The local name (no prefix), e.g. `message`.
    pub name: String,
    /// The resolved namespace URI, e.g. `jabber:client`; empty for no namespace.
    pub ns: String,
    /// Attributes in document order. Names are unprefixed, except `xml:`-prefixed
    /// ones such as `xml:lang`. Namespace declarations are never stored here.
    pub attrs: Vec<(String, String)>,
    /// Child nodes in document order.
    pub children: Vec<Node>,
}

/// A child of an [`Element`]: either an element or character data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped (CDATA sections are folded into text).
    Text(String),
}

impl Element {
    /// Creates an element with no attributes and no children.
    pub fn new(name: impl Into<String>, ns: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder form of [`Element::set_attr`].
    #[must_use]
    pub fn with_attr(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder form of [`Element::push_child`].
    #[must_use]
    pub fn with_child(mut self, child: Element) -> Self {
        self.push_child(child);
        self
    }

    /// Builder form of [`Element::push_text`].
    #[must_use]
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.push_text(text);
        self
    }

    /// Sets an attribute, replacing the value of an existing attribute with the
    /// same name (keeping its position) or appending a new one.
    pub fn set_attr(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    /// Removes an attribute and returns its value, if it was present.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let index = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(index).1)
    }

    /// Appends a child element.
    pub fn push_child(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Appends character data. Text directly following a text node is merged
    /// into it, and empty text is ignored, so adjacent text is always one node.
    pub fn push_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(last)) => last.push_str(&text),
            _ => self.children.push(Node::Text(text)),
        }
    }

    /// The value of the first attribute called `name`, if any.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this element has local name `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The first child element with local name `name` in namespace `ns`.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.child_elements().find(|e| e.is(name, ns))
    }

    /// Mutable access to the first child element named `name` in namespace `ns`.
    pub fn child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    /// All direct child elements, in document order (text is skipped).
    pub fn child_elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// All direct child elements with local name `name` in namespace `ns`.
    pub fn children_named<'a>(
        &'a self,
        name: &'a str,
        ns: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.child_elements().filter(move |e| e.is(name, ns))
    }

    /// The concatenation of the direct text children (descendants' text is not included).
    pub fn text(&self) -> String {
        self.children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect()
    }

    /// Serialise as a child of an element in namespace `parent_ns`: no `xmlns` is emitted when
    /// this element's namespace equals it (stanzas on a `jabber:client` stream).
    pub fn to_xml_in(&self, parent_ns: &str) -> String {
        let mut out = String::new();
        self.write_xml(&mut out, parent_ns);
        out
    }

    /// Serialises the element as a standalone fragment: the top element always
    /// carries an `xmlns` declaration unless its namespace is empty.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_xml(&mut out, "");
        out
    }

    /// Appends the serialisation of this element to `out`, as if it were a child
    /// of an element in namespace `parent_ns`: `xmlns='…'` is written only where
    /// an element's namespace differs from its parent's. Attribute values use
    /// single quotes; childless elements are self-closing.
    ///
    /// Attributes named `xmlns` or `xmlns:*` are skipped (declarations are
    /// derived from `ns`). Attribute names other than unprefixed ones and `xml:*`
    /// are written as given, so callers must not invent other prefixes.
    pub fn write_xml(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns != parent_ns {
            out.push_str(" xmlns='");
            out.push_str(&escape_attr(&self.ns));
            out.push('\'');
        }
        for (name, value) in &self.attrs {
            if name == "xmlns" || name.starts_with("xmlns:") {
                continue;
            }
            out.push(' ');
            out.push_str(name);
            out.push_str("='");
            out.push_str(&escape_attr(value));
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for child in &self.children {
            match child {
                Node::Element(e) => e.write_xml(out, &self.ns),
                Node::Text(t) => out.push_str(&escape_text(t)),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Whether `c` is an XML 1.0 `Char` (what may appear in a document at all).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Whether `s` is an `NCName`: an XML `Name` without colons (XML 1.0 fifth edition ranges),
/// what element and attribute local names and namespace prefixes must be.
pub fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Escapes with `replace`, which returns `Some(replacement)` for characters that
/// must change; borrows when nothing changes.
fn escape_with(s: &str, replace: fn(char) -> Option<&'static str>) -> Cow<'_, str> {
    let Some(first) = s.find(|c| replace(c).is_some()) else {
        return Cow::Borrowed(s);
    };
    let (clean, rest) = s.split_at(first);
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(clean);
    for c in rest.chars() {
        match replace(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes character data: `&`, `<` and `>` become entity references and `\r`
/// becomes `&#13;` (so it survives end-of-line normalisation). Characters
/// that XML 1.0 cannot represent are replaced with U+FFFD.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\r' => Some("&#13;"),
        c if !is_xml_char(c) => Some("\u{FFFD}"),
        _ => None,
    })
}

/// Escapes an attribute value for either quote style: `&`, `<`, `>`, `'` and
/// `"` become entity references, and tab, line feed and carriage return become
/// character references (so they survive attribute-value normalisation).
/// Characters that XML 1.0 cannot represent are replaced with U+FFFD.
pub fn escape_attr(s: &str) -> Cow<'_, str> {
    escape_with(s, |c| match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '\'' => Some("&apos;"),
        '"' => Some("&quot;"),
        '\t' => Some("&#9;"),
        '\n' => Some("&#10;"),
        '\r' => Some("&#13;"),
        c if !is_xml_char(c) => Some("\u{FFFD}"),
        _ => None,
    })
}

#[path = "xml_parse.rs"]
mod parse;
pub use parse::{parse, ParseError, ParseLimits};

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "jabber:client";

    fn message() -> Element {
        Element::new("message", CLIENT)
            .with_attr("to", "juliet@example.com")
            .with_attr("type", "chat")
            .with_child(Element::new("body", CLIENT).with_text("Hi & <bye>"))
            .with_child(Element::new(
                "active",
                "http://jabber.org/protocol/chatstates",
            ))
    }

    #[test]
    fn to_xml_declares_namespace_on_top_element_only_where_it_changes() {
        assert_eq!(
            message().to_xml(),
            "<message xmlns='jabber:client' to='juliet@example.com' type='chat'>\
             <body>Hi &amp; &lt;bye&gt;</body>\
             <active xmlns='http://jabber.org/protocol/chatstates'/></message>"
        );
    }

    #[test]
    fn write_xml_omits_namespace_inherited_from_parent() {
        let mut out = String::from("prefix:");
        message().write_xml(&mut out, CLIENT);
        assert!(out.starts_with("prefix:<message to="), "{out}");
        assert!(out.contains("<body>"), "{out}");
    }

    #[test]
    fn nested_namespace_switch_and_back_is_declared_each_time() {
        let el = Element::new("a", "urn:a").with_child(
            Element::new("b", "urn:b")
                .with_child(Element::new("c", "urn:a"))
                .with_child(Element::new("d", "urn:b")),
        );
        assert_eq!(
            el.to_xml(),
            "<a xmlns='urn:a'><b xmlns='urn:b'><c xmlns='urn:a'/><d/></b></a>"
        );
    }

    #[test]
    fn child_in_no_namespace_undeclares_default() {
        let el = Element::new("a", "urn:a").with_child(Element::new("b", ""));
        assert_eq!(el.to_xml(), "<a xmlns='urn:a'><b xmlns=''/></a>");
        assert_eq!(Element::new("x", "").to_xml(), "<x/>");
    }

    #[test]
    fn escaping_text_and_attributes() {
        assert_eq!(escape_text("a&b<c>d'e\"f"), "a&amp;b&lt;c&gt;d'e\"f");
        assert_eq!(
            escape_attr("a&b<c>d'e\"f"),
            "a&amp;b&lt;c&gt;d&apos;e&quot;f"
        );
        assert_eq!(escape_attr("x\ty\nz\r"), "x&#9;y&#10;z&#13;");
        assert_eq!(escape_text("nul\0here\u{FFFF}"), "nul\u{FFFD}here\u{FFFD}");
        assert!(matches!(escape_text("plain ünïcode"), Cow::Borrowed(_)));
        assert!(matches!(escape_attr("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn attribute_values_use_single_quotes_and_are_escaped() {
        let el = Element::new("x", "urn:x").with_attr("v", "it's \"<&>\"");
        assert_eq!(
            el.to_xml(),
            "<x xmlns='urn:x' v='it&apos;s &quot;&lt;&amp;&gt;&quot;'/>"
        );
    }

    #[test]
    fn namespace_declaration_attributes_are_never_written() {
        let el = Element::new("x", "urn:x")
            .with_attr("xmlns", "urn:evil")
            .with_attr("xmlns:p", "urn:p")
            .with_attr("xml:lang", "en");
        assert_eq!(el.to_xml(), "<x xmlns='urn:x' xml:lang='en'/>");
    }

    #[test]
    fn set_attr_replaces_in_place_and_remove_attr_removes() {
        let mut el = Element::new("iq", CLIENT)
            .with_attr("id", "1")
            .with_attr("type", "get");
        el.set_attr("id", "2");
        assert_eq!(
            el.attrs,
            vec![("id".into(), "2".into()), ("type".into(), "get".into())]
        );
        assert_eq!(el.remove_attr("id").as_deref(), Some("2"));
        assert_eq!(el.attr("id"), None);
        assert_eq!(el.remove_attr("id"), None);
    }

    #[test]
    fn getters_find_children_by_name_and_namespace() {
        let el = Element::new("iq", CLIENT)
            .with_text("a")
            .with_child(Element::new("query", "urn:q").with_attr("n", "1"))
            .with_text("b")
            .with_child(Element::new("query", "urn:other"))
            .with_child(Element::new("query", "urn:q").with_attr("n", "2"));
        assert!(el.is("iq", CLIENT));
        assert!(!el.is("iq", "jabber:server"));
        assert_eq!(
            el.child("query", "urn:q").and_then(|c| c.attr("n")),
            Some("1")
        );
        assert!(el.child("query", "urn:none").is_none());
        assert_eq!(el.child_elements().count(), 3);
        let named: Vec<_> = el
            .children_named("query", "urn:q")
            .filter_map(|c| c.attr("n"))
            .collect();
        assert_eq!(named, ["1", "2"]);
        assert_eq!(el.text(), "ab");
    }

    #[test]
    fn push_text_merges_adjacent_text_and_ignores_empty() {
        let mut el = Element::new("body", CLIENT);
        el.push_text("a");
        el.push_text("");
        el.push_text("b");
        assert_eq!(el.children, vec![Node::Text("ab".into())]);
        el.push_child(Element::new("x", CLIENT));
        el.push_text("c");
        assert_eq!(el.children.len(), 3);
    }

    #[test]
    fn child_mut_allows_editing_in_place() {
        let mut el = message();
        if let Some(body) = el.child_mut("body", CLIENT) {
            body.children.clear();
            body.push_text("new");
        }
        assert_eq!(
            el.child("body", CLIENT).map(Element::text).as_deref(),
            Some("new")
        );
    }

    #[test]
    fn wire_round_trip() {
        let el = message().with_attr("xml:lang", "en");
        let bytes = crate::wire::encode(&el).expect("encodable");
        let back: Element = crate::wire::decode("element", &bytes).expect("decodable");
        assert_eq!(back, el);
    }

    #[test]
    fn clone_equality_round_trip_through_builders() {
        let a = message();
        let mut b = Element::new("message", CLIENT);
        b.set_attr("to", "juliet@example.com");
        b.set_attr("type", "chat");
        let mut body = Element::new("body", CLIENT);
        body.push_text("Hi & ");
        body.push_text("<bye>");
        b.push_child(body);
        b.push_child(Element::new(
            "active",
            "http://jabber.org/protocol/chatstates",
        ));
        assert_eq!(a, b);
        assert_eq!(a.to_xml(), b.clone().to_xml());
    }
}
