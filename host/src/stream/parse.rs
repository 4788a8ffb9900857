//! Parsing framed stream bytes into the element model (RFC 6120 §4.7, §4.8, §11;
//! Namespaces in XML 1.0).
//!
//! The framer (`framer.rs`) delivers the stream header start tag and each
//! complete top-level element as bytes. This module turns them into a
//! [`StreamHeader`] and [`Element`]s using quick-xml's event reader. Namespace
//! resolution is done here, not by quick-xml: the header's default namespace
//! and prefix declarations form the inherited context of every element, and
//! declaration values are unescaped like any attribute value.
//!
//! Beyond quick-xml's own checks this module enforces: the five predefined
//! entities and character references only (anything else is
//! `not-well-formed`); no comments, processing instructions or DTDs
//! (`restricted-xml`); XML 1.0 `Char` validity of decoded text and attribute
//! values; `Name` syntax of element and attribute names; end-of-line and
//! attribute-value whitespace normalisation; and the namespace constraints on
//! the reserved `xml` and `xmlns` prefixes.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use tessera_plugin_api::StreamCondition;

use quick_xml::escape::{resolve_xml_entity, unescape_with, EscapeError};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use tessera_plugin_api::xml::{is_ncname, is_xml_char, Element};

/// The namespace of the stream element, `http://etherx.jabber.org/streams`.
pub const STREAM_NS: &str = "http://etherx.jabber.org/streams";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// The parsed stream header (RFC 6120 §4.7). The caller checks `name`
/// (`"stream"`), `default_ns` and `version`; this module only guarantees `ns`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    /// The local name of the header element (expected: `"stream"`).
    pub name: String,
    /// The header element's namespace; always [`STREAM_NS`] once parsed.
    pub ns: String,
    /// The default namespace declared on the header (`"jabber:client"` for c2s).
    pub default_ns: Option<String>,
    /// The `to` attribute.
    pub to: Option<String>,
    /// The `from` attribute.
    pub from: Option<String>,
    /// The `version` attribute.
    pub version: Option<String>,
    /// The `xml:lang` attribute.
    pub lang: Option<String>,
    /// The `id` attribute.
    pub id: Option<String>,
    /// All `xmlns:prefix` declarations on the header, as `(prefix, uri)`.
    pub prefixes: Vec<(String, String)>,
}

/// Why framed bytes could not be turned into a header or an element.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The XML is not well-formed (syntax, undefined entity, invalid character).
    #[error("not well-formed: {0}")]
    NotWellFormed(String),
    /// Markup forbidden by RFC 6120 §11.1: comment, processing instruction or DTD.
    #[error("restricted XML: {0}")]
    RestrictedXml(&'static str),
    /// An undeclared prefix, or an illegal use of the `xml`/`xmlns` prefixes.
    #[error("bad namespace prefix {0:?}")]
    BadNamespacePrefix(String),
    /// The stream header is not qualified by [`STREAM_NS`].
    #[error("stream header is not in the {STREAM_NS} namespace")]
    InvalidNamespace,
}

impl ParseError {
    /// The RFC 6120 §4.9.3 stream error condition to send to the peer.
    pub fn stream_condition(&self) -> StreamCondition {
        match self {
            Self::NotWellFormed(_) => StreamCondition::NotWellFormed,
            Self::RestrictedXml(_) => StreamCondition::RestrictedXml,
            Self::BadNamespacePrefix(_) => StreamCondition::BadNamespacePrefix,
            Self::InvalidNamespace => StreamCondition::InvalidNamespace,
        }
    }
}

fn nwf(reason: impl std::fmt::Display) -> ParseError {
    ParseError::NotWellFormed(reason.to_string())
}

/// Parses the stream header start tag (an XML declaration before it is tolerated).
///
/// # Errors
///
/// [`ParseError::InvalidNamespace`] if the element is not in [`STREAM_NS`],
/// [`ParseError::BadNamespacePrefix`] for an undeclared or illegal prefix, and
/// `NotWellFormed`/`RestrictedXml` for malformed or forbidden markup.
pub fn parse_stream_header(bytes: &[u8]) -> Result<StreamHeader, ParseError> {
    let mut reader = Reader::from_reader(bytes);
    let mut first = true;
    loop {
        match reader.read_event().map_err(nwf)? {
            Event::Decl(_) if first => {}
            Event::Text(t) if t.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) => {}
            Event::Start(start) => return header_from(&start),
            Event::Empty(_) => return Err(nwf("self-closing stream header")),
            Event::Eof => return Err(nwf("missing stream header")),
            other => return Err(misc_error(&other)),
        }
        first = false;
    }
}

fn header_from(start: &BytesStart<'_>) -> Result<StreamHeader, ParseError> {
    let tag = read_tag(start)?;
    let mut scopes = Scopes::default();
    scopes.enter();
    for (prefix, uri) in &tag.decls {
        scopes.declare(prefix, uri)?;
    }
    let ns = scopes.resolve(tag.prefix.as_deref())?;
    if ns != STREAM_NS {
        return Err(ParseError::InvalidNamespace);
    }
    let attrs = resolve_attrs(tag.attrs, &scopes)?;
    let get = |key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    Ok(StreamHeader {
        to: get("to"),
        from: get("from"),
        version: get("version"),
        lang: get("xml:lang"),
        id: get("id"),
        default_ns: tag
            .decls
            .iter()
            .find(|(p, _)| p.is_empty())
            .map(|(_, uri)| uri.clone()),
        prefixes: tag
            .decls
            .into_iter()
            .filter(|(p, _)| !p.is_empty())
            .collect(),
        name: tag.local,
        ns,
    })
}

/// Parses one complete element, resolving namespaces with the header's
/// default namespace and prefixes as the inherited context.
///
/// # Errors
///
/// `NotWellFormed` for syntax errors, undefined entities or invalid
/// characters, `RestrictedXml` for comments, processing instructions or DTDs,
/// and `BadNamespacePrefix` for undeclared or illegal prefixes.
pub fn parse_element(bytes: &[u8], header: &StreamHeader) -> Result<Element, ParseError> {
    let mut reader = Reader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_dangling_amp = false;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;
    let mut tree = Tree::new(header)?;
    loop {
        match reader.read_event().map_err(nwf)? {
            Event::Start(start) => tree.start(&start, false)?,
            Event::Empty(start) => tree.start(&start, true)?,
            Event::End(_) => tree.end()?,
            Event::Text(t) => {
                if t.windows(3).any(|w| w == b"]]>") {
                    return Err(nwf("']]>' in character data"));
                }
                tree.text(&t.xml10_content().map_err(nwf)?, true)?;
            }
            Event::CData(c) => tree.text(&c.xml10_content().map_err(nwf)?, false)?,
            Event::GeneralRef(r) => tree.text(&resolve_ref(&r)?, false)?,
            Event::Eof => return tree.finish(),
            other => return Err(misc_error(&other)),
        }
    }
}

/// Maps the events that restricted XML forbids.
fn misc_error(event: &Event<'_>) -> ParseError {
    match event {
        Event::Comment(_) => ParseError::RestrictedXml("comment"),
        Event::Decl(_) | Event::PI(_) => ParseError::RestrictedXml("processing instruction"),
        Event::DocType(_) => ParseError::RestrictedXml("DTD"),
        _ => nwf("unexpected markup"),
    }
}

/// Resolves `&name;` (predefined entities only) or a character reference.
fn resolve_ref(r: &BytesRef<'_>) -> Result<Cow<'static, str>, ParseError> {
    if let Some(c) = r.resolve_char_ref().map_err(nwf)? {
        if !is_xml_char(c) {
            return Err(nwf("character reference to an invalid character"));
        }
        return Ok(Cow::Owned(c.to_string()));
    }
    let name = r.decode().map_err(nwf)?;
    resolve_xml_entity(&name)
        .map(Cow::Borrowed)
        .ok_or_else(|| nwf(format_args!("undefined entity &{name};")))
}

/// Builds the element tree from events, with an explicit stack (no recursion).
struct Tree {
    scopes: Scopes,
    stack: Vec<Element>,
    root: Option<Element>,
}

impl Tree {
    fn new(header: &StreamHeader) -> Result<Self, ParseError> {
        let mut scopes = Scopes::default();
        if let Some(uri) = &header.default_ns {
            scopes.declare("", uri)?;
        }
        for (prefix, uri) in &header.prefixes {
            scopes.declare(prefix, uri)?;
        }
        Ok(Self {
            scopes,
            stack: Vec::new(),
            root: None,
        })
    }

    fn start(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<(), ParseError> {
        if self.root.is_some() {
            return Err(nwf("content after the root element"));
        }
        let tag = read_tag(start)?;
        if tag.prefix.as_deref() == Some("xml") {
            // The `xml` namespace is for `xml:*` attributes. An element in it could only be
            // written back with a default-namespace declaration of that namespace, which
            // Namespaces in XML forbids (a recipient's parser would refuse the stanza).
            return Err(ParseError::BadNamespacePrefix("xml".into()));
        }
        self.scopes.enter();
        for (prefix, uri) in &tag.decls {
            self.scopes.declare(prefix, uri)?;
        }
        let mut element = Element::new(tag.local, self.scopes.resolve(tag.prefix.as_deref())?);
        element.attrs = resolve_attrs(tag.attrs, &self.scopes)?;
        self.stack.push(element);
        if empty {
            self.end()?;
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), ParseError> {
        self.scopes.leave();
        let element = self.stack.pop().ok_or_else(|| nwf("unmatched end tag"))?;
        match self.stack.last_mut() {
            Some(parent) => parent.push_child(element),
            None => self.root = Some(element),
        }
        Ok(())
    }

    /// Appends character data; outside the root only literal whitespace is allowed.
    fn text(&mut self, text: &str, literal: bool) -> Result<(), ParseError> {
        check_chars(text)?;
        match self.stack.last_mut() {
            Some(parent) => parent.push_text(text),
            None if literal && text.chars().all(|c| matches!(c, ' ' | '\t' | '\n')) => {}
            None => return Err(nwf("character data outside the root element")),
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Element, ParseError> {
        match (self.root.take(), self.stack.is_empty()) {
            (Some(root), true) => Ok(root),
            _ => Err(nwf("incomplete element")),
        }
    }
}

/// In-scope namespace declarations; the prefix `""` is the default namespace.
/// Lookups are O(1) so that many declarations cannot make resolution quadratic.
#[derive(Debug, Default)]
struct Scopes {
    /// Prefix to the URIs bound to it, innermost last.
    bound: HashMap<String, Vec<String>>,
    /// `(level, prefix)` of every declaration, in declaration order.
    declared: Vec<(usize, String)>,
    level: usize,
}

impl Scopes {
    fn enter(&mut self) {
        self.level += 1;
    }

    fn leave(&mut self) {
        while let Some((level, prefix)) = self.declared.pop() {
            if level < self.level {
                self.declared.push((level, prefix));
                break;
            }
            if let Some(uris) = self.bound.get_mut(&prefix) {
                uris.pop();
            }
        }
        self.level = self.level.saturating_sub(1);
    }

    /// Adds a declaration after checking the Namespaces in XML constraints.
    fn declare(&mut self, prefix: &str, uri: &str) -> Result<(), ParseError> {
        let bad = || Err(ParseError::BadNamespacePrefix(prefix.to_owned()));
        match prefix {
            "xml" if uri == XML_NS => return Ok(()),
            "xml" | "xmlns" => return bad(),
            _ if uri == XML_NS || uri == XMLNS_NS => return bad(),
            p if !p.is_empty() && uri.is_empty() => return bad(),
            _ => {}
        }
        self.bound
            .entry(prefix.to_owned())
            .or_default()
            .push(uri.to_owned());
        self.declared.push((self.level, prefix.to_owned()));
        Ok(())
    }

    fn lookup(&self, prefix: &str) -> Option<&str> {
        self.bound
            .get(prefix)
            .and_then(|uris| uris.last())
            .map(String::as_str)
    }

    /// The namespace of an element name with this prefix (`None`: unprefixed).
    fn resolve(&self, prefix: Option<&str>) -> Result<String, ParseError> {
        match prefix {
            None => Ok(self.lookup("").unwrap_or_default().to_owned()),
            Some("xml") => Ok(XML_NS.to_owned()),
            Some(p) => self
                .lookup(p)
                .map(str::to_owned)
                .ok_or_else(|| ParseError::BadNamespacePrefix(p.to_owned())),
        }
    }
}

/// A start tag split into name, namespace declarations and other attributes.
struct RawTag {
    prefix: Option<String>,
    local: String,
    /// `(prefix, uri)`; prefix `""` for `xmlns='…'`.
    decls: Vec<(String, String)>,
    /// `(prefix, local name, unescaped value)`.
    attrs: Vec<(Option<String>, String, String)>,
}

fn read_tag(start: &BytesStart<'_>) -> Result<RawTag, ParseError> {
    let (prefix, local) = split_qname(start.name().as_ref())?;
    let mut tag = RawTag {
        prefix,
        local,
        decls: Vec::new(),
        attrs: Vec::new(),
    };
    // quick-xml's own duplicate check is quadratic; use a set instead.
    let mut seen = HashSet::new();
    for attr in start.attributes().with_checks(false) {
        let attr = attr.map_err(nwf)?;
        if !seen.insert(attr.key.0) {
            return Err(nwf("duplicate attribute"));
        }
        let (prefix, local) = split_qname(attr.key.as_ref())?;
        let value = attr_value(&attr.value)?;
        match prefix.as_deref() {
            None if local == "xmlns" => tag.decls.push((String::new(), value)),
            Some("xmlns") => tag.decls.push((local, value)),
            _ => tag.attrs.push((prefix, local, value)),
        }
    }
    Ok(tag)
}

/// Names attributes as the model wants them: unprefixed names and `xml:*` as
/// written; other prefixes (which must be declared) are dropped, and such an
/// attribute is skipped if its local name is already taken, so an unprefixed
/// attribute always wins.
fn resolve_attrs(
    raw: Vec<(Option<String>, String, String)>,
    scopes: &Scopes,
) -> Result<Vec<(String, String)>, ParseError> {
    let mut attrs = Vec::with_capacity(raw.len());
    let mut foreign = Vec::new();
    for (prefix, local, value) in raw {
        match prefix {
            None => attrs.push((local, value)),
            Some(p) if p == "xml" => attrs.push((format!("xml:{local}"), value)),
            Some(p) => {
                scopes.resolve(Some(&p))?;
                foreign.push((local, value));
            }
        }
    }
    if !foreign.is_empty() {
        let mut taken: HashSet<String> = attrs.iter().map(|(k, _)| k.clone()).collect();
        for (local, value) in foreign {
            if taken.insert(local.clone()) {
                attrs.push((local, value));
            }
        }
    }
    Ok(attrs)
}

/// Normalises (XML 1.0 §3.3.3) and unescapes a raw attribute value.
fn attr_value(raw: &[u8]) -> Result<String, ParseError> {
    let raw = std::str::from_utf8(raw).map_err(nwf)?;
    if raw.contains('<') {
        return Err(nwf("'<' in an attribute value"));
    }
    let normalised = raw.replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
    let value = unescape_with(&normalised, resolve_xml_entity).map_err(|e| match e {
        EscapeError::UnrecognizedEntity(_, name) => nwf(format_args!("undefined entity &{name};")),
        other => nwf(other),
    })?;
    check_chars(&value)?;
    Ok(value.into_owned())
}

/// Splits a qualified name into prefix and local name, checking both are NCNames.
fn split_qname(raw: &[u8]) -> Result<(Option<String>, String), ParseError> {
    let name = std::str::from_utf8(raw).map_err(nwf)?;
    let (prefix, local) = match name.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, name),
    };
    if !is_ncname(local) || prefix.is_some_and(|p| !is_ncname(p)) {
        return Err(nwf(format_args!("invalid name {name:?}")));
    }
    Ok((prefix.map(str::to_owned), local.to_owned()))
}

fn check_chars(s: &str) -> Result<(), ParseError> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(nwf(format_args!(
            "invalid character U+{:04X}",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_api::xml::Node;

    const CLIENT: &str = "jabber:client";
    const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' to='example.com' \
        from='juliet@example.com' version='1.0' xml:lang='en' id='s1'>";

    fn header() -> StreamHeader {
        parse_stream_header(HEADER).expect("valid header")
    }

    fn parse(xml: &str) -> Result<Element, ParseError> {
        parse_element(xml.as_bytes(), &header())
    }

    fn ok(xml: &str) -> Element {
        parse(xml).expect("valid element")
    }

    #[test]
    fn stream_header_with_stream_prefix() {
        let h = header();
        assert_eq!(
            h,
            StreamHeader {
                name: "stream".into(),
                ns: STREAM_NS.into(),
                default_ns: Some(CLIENT.into()),
                to: Some("example.com".into()),
                from: Some("juliet@example.com".into()),
                version: Some("1.0".into()),
                lang: Some("en".into()),
                id: Some("s1".into()),
                prefixes: vec![("stream".into(), STREAM_NS.into())],
            }
        );
    }

    #[test]
    fn stream_header_variants() {
        let unprefixed = parse_stream_header(
            b"<?xml version='1.0'?>\n<stream xmlns='http://etherx.jabber.org/streams'>",
        );
        assert_eq!(
            unprefixed.map(|h| (h.name, h.default_ns)),
            Ok(("stream".into(), Some(STREAM_NS.into())))
        );
        let wrong = parse_stream_header(b"<stream:stream xmlns:stream='urn:wrong'>");
        assert_eq!(
            wrong.map_err(|e| e.stream_condition().as_str()),
            Err("invalid-namespace")
        );
        let undeclared = parse_stream_header(b"<stream:stream xmlns='jabber:client'>");
        assert_eq!(
            undeclared,
            Err(ParseError::BadNamespacePrefix("stream".into()))
        );
        let empty = parse_stream_header(b"<stream xmlns='http://etherx.jabber.org/streams'/>");
        assert!(matches!(empty, Err(ParseError::NotWellFormed(_))));
        let pi = parse_stream_header(b"<?php x?><stream:stream>");
        assert_eq!(pi, Err(ParseError::RestrictedXml("processing instruction")));
        assert!(matches!(
            parse_stream_header(b""),
            Err(ParseError::NotWellFormed(_))
        ));
    }

    #[test]
    fn message_with_nested_namespaces_inherits_default_from_header() {
        let el = ok("<message to='romeo@example.net' type='chat' xml:lang='en'>\
            <body>Hi</body><active xmlns='http://jabber.org/protocol/chatstates'/>\
            <x xmlns='jabber:x:data' type='form'><field var='a'><value>1</value></field></x>\
            </message>");
        assert!(el.is("message", CLIENT));
        assert_eq!(el.attrs.len(), 3);
        assert_eq!(el.attr("xml:lang"), Some("en"));
        assert_eq!(
            el.child("body", CLIENT).map(Element::text).as_deref(),
            Some("Hi")
        );
        assert!(el
            .child("active", "http://jabber.org/protocol/chatstates")
            .is_some());
        let value = el
            .child("x", "jabber:x:data")
            .and_then(|x| x.child("field", "jabber:x:data"))
            .and_then(|f| f.child("value", "jabber:x:data"));
        assert_eq!(value.map(Element::text).as_deref(), Some("1"));
        assert!(el
            .child("x", "jabber:x:data")
            .is_some_and(|x| x.attr("xmlns").is_none()));
    }

    #[test]
    fn prefixed_elements_resolve_through_header_and_local_declarations() {
        let features = ok(
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        );
        assert!(features.is("features", STREAM_NS));
        assert!(features
            .child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .is_some());
        let el = ok("<p:a xmlns:p='urn:p'><p:b/><c/><p:d xmlns:p='urn:q'/></p:a>");
        assert!(el.is("a", "urn:p"));
        let kids: Vec<_> = el
            .child_elements()
            .map(|e| (e.name.as_str(), e.ns.as_str()))
            .collect();
        assert_eq!(kids, [("b", "urn:p"), ("c", CLIENT), ("d", "urn:q")]);
        assert!(ok("<a xmlns=''><b/></a>").child("b", "").is_some());
    }

    #[test]
    fn bad_namespace_prefixes_are_rejected() {
        assert_eq!(
            parse("<q:a/>"),
            Err(ParseError::BadNamespacePrefix("q".into()))
        );
        assert_eq!(
            parse("<a q:x='1'/>"),
            Err(ParseError::BadNamespacePrefix("q".into()))
        );
        assert_eq!(
            parse("<a xmlns:p=''/>"),
            Err(ParseError::BadNamespacePrefix("p".into()))
        );
        assert_eq!(
            parse("<a xmlns:xml='urn:x'/>"),
            Err(ParseError::BadNamespacePrefix("xml".into()))
        );
        assert_eq!(
            parse("<xmlns:a/>").map_err(|e| e.stream_condition().as_str()),
            Err("bad-namespace-prefix")
        );
        // A prefix declared on a sibling is out of scope.
        assert!(parse("<a><b xmlns:p='urn:p'/><p:c/></a>").is_err());
    }

    /// Found with the `stream` fuzz target's round-trip check: `<xml:foo/>` parsed into an
    /// element in the XML namespace, which serialises as `<foo xmlns='…/XML/1998/namespace'/>`,
    /// a declaration every namespace-aware parser (this one included) refuses, so one client
    /// could have the server send another a stanza its parser rejects.
    #[test]
    fn fuzz_regression_elements_in_the_xml_namespace_are_refused() {
        for xml in ["<message><xml:foo/></message>", "<xml:message/>"] {
            assert_eq!(
                parse(xml),
                Err(ParseError::BadNamespacePrefix("xml".into())),
                "{xml}"
            );
        }
        let lang = ok("<message xml:lang='en'><body xml:lang='de'>x</body></message>");
        assert_eq!(lang.attr("xml:lang"), Some("en"));
    }

    #[test]
    fn predefined_entities_in_text_and_attributes() {
        let el = ok("<body a='&lt;&amp;&quot;&apos;&gt;'>1 &lt; 2 &amp;&amp; 3 &gt; 2</body>");
        assert_eq!(el.attr("a"), Some("<&\"'>"));
        assert_eq!(el.text(), "1 < 2 && 3 > 2");
        assert_eq!(el.children.len(), 1, "adjacent text merged");
    }

    #[test]
    fn undefined_entities_are_not_well_formed() {
        for xml in [
            "<a>&nbsp;</a>",
            "<a x='&nbsp;'/>",
            "<a>&amp</a>",
            "<a>&</a>",
        ] {
            assert_eq!(
                parse(xml).map_err(|e| e.stream_condition().as_str()),
                Err("not-well-formed"),
                "{xml}"
            );
        }
    }

    #[test]
    fn character_references() {
        let el = ok("<a x='&#65;&#x42;'>&#65;&#x42;&#x1F600;&#10;</a>");
        assert_eq!(el.attr("x"), Some("AB"));
        assert_eq!(el.text(), "AB\u{1F600}\n");
        for bad in [
            "<a>&#0;</a>",
            "<a>&#1;</a>",
            "<a>&#xD800;</a>",
            "<a>&#xFFFE;</a>",
            "<a x='&#2;'/>",
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::NotWellFormed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cdata_becomes_text() {
        let el = ok("<a>x<![CDATA[<b>&amp;</b>]]>y</a>");
        assert_eq!(el.children, vec![Node::Text("x<b>&amp;</b>y".into())]);
    }

    #[test]
    fn attributes_keep_xml_prefix_and_drop_declarations_and_foreign_prefixes() {
        let el = ok("<a xml:lang='de' xmlns:p='urn:p' p:id='evil' id='real' p:extra='e'/>");
        let expected = [("xml:lang", "de"), ("id", "real"), ("extra", "e")];
        let attrs: Vec<_> = el
            .attrs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(attrs, expected);
    }

    #[test]
    fn whitespace_normalisation() {
        let el = ok("<a x='1\t2\r\n3&#10;4'>l1\r\nl2\rl3</a>");
        assert_eq!(el.attr("x"), Some("1 2 3\n4"));
        assert_eq!(el.text(), "l1\nl2\nl3");
    }

    #[test]
    fn restricted_markup_inside_elements() {
        assert_eq!(
            parse("<a><!-- c --></a>"),
            Err(ParseError::RestrictedXml("comment"))
        );
        assert_eq!(
            parse("<a><?pi x?></a>"),
            Err(ParseError::RestrictedXml("processing instruction"))
        );
        assert_eq!(
            parse("<!DOCTYPE a><a/>"),
            Err(ParseError::RestrictedXml("DTD"))
        );
    }

    #[test]
    fn not_well_formed_elements() {
        for xml in [
            "<a><b></a>",
            "<a/><b/>",
            "text<a/>",
            "<a>",
            "<a>]]></a>",
            "<1a/>",
            "<a x='1' x='2'/>",
            "<a>\u{FFFF}</a>",
            "",
            "<a x='<'/>",
            "<a:b:c xmlns:a='u'/>",
        ] {
            let err = parse(xml).expect_err(xml);
            assert_eq!(
                err.stream_condition().as_str(),
                "not-well-formed",
                "{xml}: {err:?}"
            );
        }
    }

    #[test]
    fn parse_serialise_parse_round_trip() {
        let xml = "<iq type='result' id='x&amp;y'>\
            <query xmlns='jabber:iq:roster' ver='1'><item jid='a@b' name='&lt;A&gt; &apos;B&apos;'>\
            <group>Friends &amp; family</group></item></query><e:x xmlns:e='urn:e' xml:lang='en'>\n \r</e:x></iq>";
        let first = ok(xml);
        let mut out = String::new();
        first.write_xml(&mut out, CLIENT);
        assert!(out.starts_with("<iq type="), "{out}");
        let second = ok(&out);
        assert_eq!(second, first);
        assert_eq!(
            parse_element(first.to_xml().as_bytes(), &StreamHeader::default()),
            Ok(first)
        );
    }

    #[test]
    fn many_attributes_and_declarations_stay_correct() {
        let n = 5000;
        let mut xml = String::from("<a");
        for i in 0..n {
            xml.push_str(&format!(" xmlns:p{i}='urn:{i}' p{i}:x{i}='{i}'"));
        }
        xml.push('>');
        for i in 0..n {
            xml.push_str(&format!("<p{i}:b/>"));
        }
        xml.push_str("</a>");
        let el = ok(&xml);
        assert_eq!(el.attrs.len(), n);
        assert_eq!(el.attr("x4999"), Some("4999"));
        assert_eq!(
            el.child_elements().nth(1234).map(|e| e.ns.as_str()),
            Some("urn:1234")
        );
        let dup = xml.replacen("<a", "<a p0:x0='again'", 1);
        assert!(matches!(parse(&dup), Err(ParseError::NotWellFormed(_))));
    }

    #[test]
    fn stream_conditions() {
        assert_eq!(nwf("x").stream_condition().as_str(), "not-well-formed");
        assert_eq!(
            ParseError::RestrictedXml("DTD").stream_condition().as_str(),
            "restricted-xml"
        );
        assert_eq!(
            ParseError::InvalidNamespace.stream_condition().as_str(),
            "invalid-namespace"
        );
        assert_eq!(
            ParseError::BadNamespacePrefix("p".into())
                .stream_condition()
                .as_str(),
            "bad-namespace-prefix"
        );
    }
}
