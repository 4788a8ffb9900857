//! A small, strict parser for the one XML document a client sends this module: the submitted
//! data form inside a SASL `<response/>`. It builds the plugin API's namespace-resolved
//! [`Element`] and accepts only what a data form needs: one root element, an optional XML
//! declaration, the predefined entities and character references. DTDs, processing
//! instructions, comments, undeclared prefixes and nesting deeper than [`MAX_DEPTH`] are refused
//! (no entity expansion attacks, bounded work).

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use tessera_plugin_api::xml::Element;

/// Deepest element nesting accepted (a data form needs 3: `x`, `field`, `value`).
pub(crate) const MAX_DEPTH: usize = 8;
/// Most elements accepted in one document.
pub(crate) const MAX_ELEMENTS: usize = 256;

/// Why a document was refused, as text for the client.
pub(crate) type XmlError = String;

fn namespace(resolved: &ResolveResult<'_>) -> Result<String, XmlError> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(String::from_utf8_lossy(ns.as_ref()).into_owned()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(format!(
            "undeclared namespace prefix '{}'",
            String::from_utf8_lossy(p)
        )),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: String,
) -> Result<Element, XmlError> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut el = Element::new(name, ns);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| format!("bad attribute: {e}"))?;
        let key = attr.key;
        if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
            continue;
        }
        let (resolved, local) = reader.resolve_attribute(key);
        let local = String::from_utf8_lossy(local.as_ref()).into_owned();
        let name = match resolved {
            ResolveResult::Unbound => local,
            ResolveResult::Bound(ns) if ns.as_ref() == b"http://www.w3.org/XML/1998/namespace" => {
                format!("xml:{local}")
            }
            // Attributes in other namespaces mean nothing to a data form: skip them.
            ResolveResult::Bound(_) => continue,
            ResolveResult::Unknown(p) => {
                return Err(format!(
                    "undeclared namespace prefix '{}'",
                    String::from_utf8_lossy(&p)
                ))
            }
        };
        let value = attr
            .unescape_value()
            .map_err(|e| format!("bad attribute value: {e}"))?;
        el.set_attr(name, value.into_owned());
    }
    Ok(el)
}

fn reference(r: &BytesRef<'_>) -> Result<String, XmlError> {
    if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
        return Ok(c.to_string());
    }
    let name = r.decode().map_err(|e| e.to_string())?;
    match quick_xml::escape::resolve_xml_entity(&name) {
        Some(text) => Ok(text.to_owned()),
        None => Err(format!("undefined entity '&{name};'")),
    }
}

/// Parse one document into its root element.
///
/// # Errors
/// A short reason, meant for the client's `<text/>`.
pub(crate) fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
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
            .map_err(|e| format!("not well-formed: {e}"))?;
        let ns = namespace(&resolved);
        match event {
            Event::Decl(_) if !seen_anything => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err("more than one root element".into());
            }
            Event::Start(start) => {
                let el = open(&reader, &start, ns?, &mut count, stack.len())?;
                stack.push(el);
            }
            Event::Empty(start) => {
                let el = open(&reader, &start, ns?, &mut count, stack.len())?;
                close(&mut stack, &mut root, el);
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unexpected end tag")?;
                close(&mut stack, &mut root, el);
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(|e| e.to_string())?;
                push_text(&mut stack, &text)?;
            }
            Event::CData(c) => {
                let text = c.xml10_content().map_err(|e| e.to_string())?;
                push_text(&mut stack, &text)?;
            }
            Event::GeneralRef(r) => push_text(&mut stack, &reference(&r)?)?,
            Event::Eof => break,
            Event::DocType(_) => return Err("DTDs are not allowed".into()),
            Event::Comment(_) => return Err("comments are not allowed".into()),
            Event::Decl(_) | Event::PI(_) => {
                return Err("processing instructions are not allowed".into())
            }
        }
        seen_anything = true;
    }
    if !stack.is_empty() {
        return Err("not well-formed: unclosed element".into());
    }
    root.ok_or_else(|| "no element".into())
}

fn open(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    ns: String,
    count: &mut usize,
    depth: usize,
) -> Result<Element, XmlError> {
    *count += 1;
    if *count > MAX_ELEMENTS {
        return Err(format!("more than {MAX_ELEMENTS} elements"));
    }
    if depth >= MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} elements"));
    }
    element(reader, start, ns)
}

fn close(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.push_child(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => {
            el.push_text(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element".into()),
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
        let el = parse(doc).expect("valid");
        assert!(el.is("x", "jabber:x:data"));
        assert_eq!(el.attr("type"), Some("submit"));
        let field = el.child("field", "jabber:x:data").expect("field");
        assert_eq!(field.attr("var"), Some("a&b"));
        let value = field.child("value", "jabber:x:data").expect("value");
        assert_eq!(value.text(), "1 < 2 \u{263A}");
        let y = el.child("y", "urn:p").expect("y");
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
            (
                b"<a><a><a><a><a><a><a><a><a/></a></a></a></a></a></a></a></a>",
                "deeper",
            ),
        ] {
            let err = parse(doc).expect_err(&String::from_utf8_lossy(doc));
            assert!(
                err.contains(needle),
                "{err} for {}",
                String::from_utf8_lossy(doc)
            );
        }
    }
}
