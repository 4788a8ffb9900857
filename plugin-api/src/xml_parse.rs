//! A small, strict parser for XML documents a module receives whole (a data form inside a SASL
//! response, a payload a client put in an attribute): namespace-resolved [`Element`]s, and only
//! what such documents need: one root element, an optional XML declaration, the predefined
//! entities and character references. DTDs, processing instructions, comments, undeclared
//! prefixes, characters XML 1.0 does not allow (control characters, literal or as references)
//! and documents deeper or larger than the caller's [`ParseLimits`] are refused (no entity
//! expansion attacks, bounded work). Stanzas never need it: the host parses them and hands them
//! over already built.
//!
//! ```
//! use tessera_plugin_api::xml::{parse, ParseError, ParseLimits};
//!
//! let form = parse(b"<x xmlns='jabber:x:data' type='submit'/>", ParseLimits::default()).unwrap();
//! assert!(form.is("x", "jabber:x:data"));
//! assert_eq!(
//!     parse(b"<x><!-- hi --></x>", ParseLimits::default()),
//!     Err(ParseError::Forbidden("comments"))
//! );
//! ```

use std::fmt;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::{is_ncname, is_xml_char, Element};

/// How big a document may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Deepest element nesting accepted (the root is depth 1).
    pub max_depth: usize,
    /// Most elements accepted in one document.
    pub max_elements: usize,
}

impl Default for ParseLimits {
    /// 8 deep, 256 elements: ample for a data form (`x`, `field`, `value`).
    fn default() -> Self {
        Self {
            max_depth: 8,
            max_elements: 256,
        }
    }
}

/// Why a document was refused; its `Display` is a short reason meant for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not well-formed (the parser's reason).
    NotWellFormed(String),
    /// A character XML 1.0 does not allow (its code point).
    Char(u32),
    /// Something used as a name that is not an XML name.
    Name(String),
    /// A prefix with no namespace declaration.
    UndeclaredPrefix(String),
    /// A namespace name that is not UTF-8 or not properly escaped.
    Namespace(String),
    /// An entity other than the five predefined ones.
    UndefinedEntity(String),
    /// A construct these documents never need: `"DTDs"`, `"comments"` or
    /// `"processing instructions"`.
    Forbidden(&'static str),
    /// Deeper than the limit.
    TooDeep(usize),
    /// More elements than the limit.
    TooManyElements(usize),
    /// No root element, a second one, or text outside it (which, as text).
    NotOneRoot(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotWellFormed(why) => write!(f, "not well-formed: {why}"),
            Self::Char(c) => write!(f, "not well-formed: character U+{c:04X} is not allowed"),
            Self::Name(name) => write!(f, "not well-formed: invalid name {name:?}"),
            Self::UndeclaredPrefix(p) => write!(f, "undeclared namespace prefix '{p}'"),
            Self::Namespace(why) => write!(f, "bad namespace name: {why}"),
            Self::UndefinedEntity(name) => write!(f, "undefined entity '&{name};'"),
            Self::Forbidden(what) => write!(f, "{what} are not allowed"),
            Self::TooDeep(max) => write!(f, "nested deeper than {max} elements"),
            Self::TooManyElements(max) => write!(f, "more than {max} elements"),
            Self::NotOneRoot(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ParseError {}

/// Refuses characters outside XML 1.0 `Char` (quick-xml passes them through).
fn check_chars(text: &str) -> Result<String, ParseError> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(ParseError::Char(u32::from(c))),
        None => Ok(text.to_owned()),
    }
}

/// A local name as XML allows it (`NCName`, XML 1.0 fifth edition; U+FFFD, what bytes that are
/// not UTF-8 decode to, is refused too). quick-xml takes any bytes up to whitespace, `=`, `/` or
/// `>` as a name, `< />` included.
fn local_name(raw: &[u8]) -> Result<String, ParseError> {
    let name = String::from_utf8_lossy(raw);
    if is_ncname(&name) && !name.contains('\u{FFFD}') {
        Ok(name.into_owned())
    } else {
        Err(ParseError::Name(name.into_owned()))
    }
}

/// The namespace an element is in. quick-xml hands a declaration's value over as written:
/// it is unescaped and checked here like any attribute value.
fn namespace(resolved: &ResolveResult<'_>) -> Result<String, ParseError> {
    match resolved {
        ResolveResult::Bound(ns) => {
            let raw = std::str::from_utf8(ns.as_ref())
                .map_err(|_| ParseError::Namespace("not UTF-8".into()))?;
            let uri = quick_xml::escape::unescape(raw)
                .map_err(|e| ParseError::Namespace(e.to_string()))?;
            check_chars(&uri)
        }
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(ParseError::UndeclaredPrefix(
            String::from_utf8_lossy(p).into_owned(),
        )),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: String,
) -> Result<Element, ParseError> {
    let name = local_name(start.local_name().as_ref())?;
    let mut el = Element::new(name, ns);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| ParseError::NotWellFormed(format!("bad attribute: {e}")))?;
        let key = attr.key;
        if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(key);
        let local = local_name(local.as_ref())?;
        let name = match resolved {
            ResolveResult::Unbound => local,
            ResolveResult::Bound(ns) if ns.as_ref() == b"http://www.w3.org/XML/1998/namespace" => {
                format!("xml:{local}")
            }
            // Attributes in other namespaces mean nothing to a data form: skip them.
            ResolveResult::Bound(_) => continue,
            ResolveResult::Unknown(p) => {
                return Err(ParseError::UndeclaredPrefix(
                    String::from_utf8_lossy(&p).into_owned(),
                ))
            }
        };
        let value = attr
            .unescape_value()
            .map_err(|e| ParseError::NotWellFormed(format!("bad attribute value: {e}")))?;
        el.set_attr(name, check_chars(&value)?);
    }
    Ok(el)
}

fn reference(r: &BytesRef<'_>) -> Result<String, ParseError> {
    let bad = |e: &dyn fmt::Display| ParseError::NotWellFormed(e.to_string());
    if let Some(c) = r.resolve_char_ref().map_err(|e| bad(&e))? {
        return check_chars(&c.to_string());
    }
    let name = r.decode().map_err(|e| bad(&e))?;
    match quick_xml::escape::resolve_xml_entity(&name) {
        Some(text) => Ok(text.to_owned()),
        None => Err(ParseError::UndefinedEntity(name.into_owned())),
    }
}

/// Parse one document into its root element.
///
/// # Errors
/// Why it was refused ([`ParseError`]'s `Display` is meant for the client's `<text/>`).
pub fn parse(bytes: &[u8], limits: ParseLimits) -> Result<Element, ParseError> {
    let mut reader = NsReader::from_reader(bytes);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut seen_anything = false;
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| ParseError::NotWellFormed(e.to_string()))?;
        let ns = namespace(&resolved);
        match event {
            Event::Decl(_) if !seen_anything => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(ParseError::NotOneRoot("more than one root element"));
            }
            Event::Start(start) => {
                let el = open(&reader, &start, ns?, &mut count, stack.len(), limits)?;
                stack.push(el);
            }
            Event::Empty(start) => {
                let el = open(&reader, &start, ns?, &mut count, stack.len(), limits)?;
                close(&mut stack, &mut root, el);
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| ParseError::NotWellFormed("unexpected end tag".into()))?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let text = t
                    .xml10_content()
                    .map_err(|e| ParseError::NotWellFormed(e.to_string()))?;
                push_text(&mut stack, &text)?;
            }
            Event::CData(c) => {
                let text = c
                    .xml10_content()
                    .map_err(|e| ParseError::NotWellFormed(e.to_string()))?;
                push_text(&mut stack, &text)?;
            }
            Event::GeneralRef(r) => push_text(&mut stack, &reference(&r)?)?,
            Event::Eof => break,
            Event::DocType(_) => return Err(ParseError::Forbidden("DTDs")),
            Event::Comment(_) => return Err(ParseError::Forbidden("comments")),
            Event::Decl(_) | Event::PI(_) => {
                return Err(ParseError::Forbidden("processing instructions"))
            }
        }
        seen_anything = true;
    }
    if !stack.is_empty() {
        return Err(ParseError::NotWellFormed("unclosed element".into()));
    }
    root.ok_or(ParseError::NotOneRoot("no element"))
}

fn open(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: String,
    count: &mut usize,
    depth: usize,
    limits: ParseLimits,
) -> Result<Element, ParseError> {
    *count += 1;
    if *count > limits.max_elements {
        return Err(ParseError::TooManyElements(limits.max_elements));
    }
    if depth >= limits.max_depth {
        return Err(ParseError::TooDeep(limits.max_depth));
    }
    element(reader, start, ns)
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.push_child(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), ParseError> {
    match stack.last_mut() {
        Some(el) => {
            el.push_text(check_chars(text)?);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(ParseError::NotOneRoot("text outside the root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_attributes_text_and_entities() {
        let doc = b"<?xml version='1.0'?><x xmlns='jabber:x:data' type='submit'>\
            <field var='a&amp;b'><value>1 &lt; 2 &#x263A;</value></field>\
            <p:y xmlns:p='urn:p' xml:lang='en' p:skip='1'/></x>";
        let el = parse(doc, ParseLimits::default()).expect("valid");
        assert!(el.is("x", "jabber:x:data"));
        assert_eq!(el.attr("type"), Some("submit"));
        let field = el.child("field", "jabber:x:data").expect("field");
        assert_eq!(field.attr("var"), Some("a&b"));
        let value = field.child("value", "jabber:x:data").expect("value");
        assert_eq!(value.text(), "1 < 2 \u{263A}");
        let y = el.child("y", "urn:p").expect("y");
        let escaped = parse(
            b"<x xmlns='jabber:x:d&#97;ta&amp;&quot;'/>",
            ParseLimits::default(),
        )
        .expect("valid");
        assert_eq!(escaped.ns, "jabber:x:data&\"");
        assert_eq!(y.attrs, vec![("xml:lang".to_owned(), "en".to_owned())]);
    }

    #[test]
    fn refuses_what_a_form_never_needs() {
        for (doc, needle) in [
            (&b"<!DOCTYPE x [<!ENTITY a 'b'>]><x/>"[..], "DTD"),
            (b"<x><!-- c --></x>", "comments"),
            (b"<x><?pi x?></x>", "processing"),
            (b"<x>&bogus;</x>", "undefined entity"),
            (b"<p:x/>", "undeclared"),
            (b"<x><y></x>", "well-formed"),
            (b"<x/><y/>", "more than one root"),
            (b"hello", "outside"),
            (b"", "no element"),
            (b"<x>a\x0f\0b</x>", "U+000F"),
            (b"<x>&#0;</x>", "character"),
            (b"<x>&#x1;</x>", "U+0001"),
            (b"<x><![CDATA[\x01]]></x>", "U+0001"),
            (b"<x a='&#x1B;'/>", "U+001B"),
            (b"<x>\xEF\xBF\xBE</x>", "U+FFFE"),
            (b"<x xmlns='urn:\0'/>", "U+0000"),
            (b"<x xmlns='urn:&bogus;'/>", "bad namespace name"),
            // Found by the `data_form` fuzz target (the crashing input).
            (b"< />", "invalid name"),
            (b"<x><></></x>", "invalid name"),
            (b"<x a\x01='1'/>", "invalid name"),
            (b"<1x/>", "invalid name"),
            (b"<x \xff='1'/>", "invalid name"),
            (b"<p:x xmlns:p='urn:\xff'/>", "not UTF-8"),
            (
                b"<a><a><a><a><a><a><a><a><a/></a></a></a></a></a></a></a></a>",
                "deeper",
            ),
        ] {
            let err = parse(doc, ParseLimits::default())
                .expect_err(&String::from_utf8_lossy(doc))
                .to_string();
            assert!(
                err.contains(needle),
                "{err} for {}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    /// Found by the `data_form` fuzz target: control characters in a form value were taken
    /// as text (quick-xml does not check XML `Char`), so the parsed form held characters no XML
    /// document can carry. The input is the crashing one, verbatim.
    #[test]
    fn fuzz_regression_control_characters_in_text_are_refused() {
        let crash = b"<?xml version='1.0'?><x xmlns='jabber:x:data' type='submit'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:tessera:password-reset:0</value>\
            </field><field var='username'><value> alice </value></field><field var='email'>\
            <value>alice@exam\x0f\0\0\0ple.org</value></field><field var='later'/></x>";
        let err = parse(crash, ParseLimits::default())
            .expect_err("control characters")
            .to_string();
        assert!(err.contains("U+000F"), "{err}");
        let clean = String::from_utf8_lossy(crash).replace("\u{f}\0\0\0", "");
        assert!(parse(clean.as_bytes(), ParseLimits::default()).is_ok());
    }

    /// Found by the `data_form` fuzz target: a namespace declaration's value was used as
    /// written, control characters included. The input is the crashing one, verbatim.
    #[test]
    fn fuzz_regression_control_characters_in_a_namespace_are_refused() {
        let mut crash = b"<?xml version='1.0'?><x xmlns='jabber:x:dat".to_vec();
        crash.extend_from_slice(&[0; 29]);
        crash.extend_from_slice(
            b"a' type='submit'><field var='FORM_TYPE' type='hidden'><value>\
            urn:tessera:password-reset:0</value></field><field var='username'><value> alice \
            </value></field><field var='email'><value>alice@example.org</value></field>\
            <field var='later'/></x>",
        );
        let err = parse(&crash, ParseLimits::default())
            .expect_err("control characters")
            .to_string();
        assert!(err.contains("U+0000"), "{err}");
    }

    /// Found by the `data_form` fuzz target: attribute names holding quotes, control
    /// characters and bytes that are not UTF-8 were taken as names. The crashing input.
    #[test]
    fn fuzz_regression_attribute_names_must_be_names() {
        let crash =
            b"<x xmUUUUU\x01lnsmls=\";'\"\"n\"\xdd'\"\x02\"xrnmln=\"s'\"\"\"xnmln=\"s'\"\"\xff\0\
            tls=\";'\"\"n\"\xdd'\"e\"xrnmln=\"s'\"\"\"xrnmn=\"s'\"\"='submit'>:y xmlns:p='urn:p' \
            xml:lang='en' p:skip='1'/><![CDATA[<b>]]></x>";
        let err = parse(crash, ParseLimits::default())
            .expect_err("not names")
            .to_string();
        assert!(err.contains("invalid name"), "{err}");
    }
}
