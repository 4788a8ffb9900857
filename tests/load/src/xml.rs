//! Just enough XML for the load tool: building the few elements it sends and picking values
//! out of the server's answers by name. The server's XML is not validated here; the end-to-end
//! tests do that.

/// Escape text for an attribute value or character data.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The client's stream header, with `from` when given.
pub(crate) fn stream_header(domain: &str, from: Option<&str>) -> String {
    let from = from
        .map(|f| format!(" from='{}'", escape(f)))
        .unwrap_or_default();
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}'{from} version='1.0' xml:lang='en'>",
        escape(domain)
    )
}

/// Where the start tag `<tag …>` or `<tag/>` begins (not `<tagmore`).
fn start_tag(xml: &str, tag: &str) -> Option<usize> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(rel) = xml.get(from..)?.find(&open) {
        let at = from + rel;
        let next = xml.as_bytes().get(at + open.len()).copied();
        if matches!(next, Some(b' ' | b'>' | b'/' | b'\t' | b'\r' | b'\n')) {
            return Some(at);
        }
        from = at + open.len();
    }
    None
}

/// The text content of the first `<tag …>content</tag>` (empty for `<tag/>`).
pub(crate) fn inner<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let rest = xml.get(start_tag(xml, tag)?..)?;
    let open_end = rest.find('>')?;
    if rest.get(..open_end)?.ends_with('/') {
        return Some("");
    }
    let body = rest.get(open_end + 1..)?;
    let close = body.find(&format!("</{tag}>"))?;
    body.get(..close)
}

/// The value of attribute `name` on the first `<tag …>`.
pub(crate) fn attr(xml: &str, tag: &str, name: &str) -> Option<String> {
    let rest = xml.get(start_tag(xml, tag)?..)?;
    let open = rest.get(..rest.find('>')?)?;
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(at) = open.find(&key) {
            let value = open.get(at + key.len()..)?;
            let end = value.find(quote)?;
            return Some(unescape(value.get(..end)?));
        }
    }
    None
}

/// The name of the first child element of the first `<parent …>` (the condition of a SASL
/// `<failure>` or a stream error), without any prefix.
pub(crate) fn first_child(xml: &str, parent: &str) -> Option<String> {
    let rest = xml.get(start_tag(xml, parent)?..)?;
    let body = rest.get(rest.find('>')? + 1..)?;
    let child = body.get(body.find('<')? + 1..)?;
    let end = child.find([' ', '/', '>', '\t', '\r', '\n'])?;
    let name = child.get(..end)?;
    let local = name.rsplit(':').next().unwrap_or(name);
    (!local.is_empty() && !name.starts_with('/')).then(|| local.to_owned())
}

/// The condition of a stream error in `xml`, if one arrived.
pub(crate) fn stream_error(xml: &str) -> Option<String> {
    start_tag(xml, "stream:error")?;
    Some(first_child(xml, "stream:error").unwrap_or_else(|| "undefined-condition".into()))
}

/// The stanzas (top-level message, presence and IQ start tags) in a stretch of a stream the
/// server wrote (it nests them only in forwarded copies, which are not counted).
pub(crate) fn count_stanzas(text: &str) -> u64 {
    let starts: u64 = ["<message", "<presence", "<iq "]
        .iter()
        .map(|t| text.matches(t).count() as u64)
        .sum();
    // A carbon copy carries the message it copies: that one is inside, not a stanza.
    starts.saturating_sub(text.matches("forward:0'><message").count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_values_by_name() {
        let s = "<success xmlns='urn:xmpp:sasl:2'><additional-data>dj0x</additional-data>\
                 <authorization-identifier>a@b/c</authorization-identifier>\
                 <token xmlns='urn:xmpp:fast:0' expiry='2026-01-01T00:00:00Z' token='secret-token:x&amp;y'/></success>";
        assert_eq!(inner(s, "additional-data"), Some("dj0x"));
        assert_eq!(inner(s, "authorization-identifier"), Some("a@b/c"));
        assert_eq!(
            attr(s, "token", "token").as_deref(),
            Some("secret-token:x&y")
        );
        assert_eq!(attr(s, "tokens", "token"), None);
    }

    #[test]
    fn conditions() {
        let f = "<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>x</text></failure>";
        assert_eq!(first_child(f, "failure").as_deref(), Some("not-authorized"));
        let e = "<stream:error><reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        assert_eq!(stream_error(e).as_deref(), Some("reset"));
        assert_eq!(stream_error("<stream:features/>"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("a'b<&"), "a&apos;b&lt;&amp;");
        assert!(stream_header("localhost", Some("u@localhost")).contains(" from='u@localhost'"));
    }
}
