//! XEP-0198 on the wire, without I/O: what a client's nonza asks for, and the server's answers.

use tessera_plugin_api::xml::Element;

/// The Stream Management namespace (version 3; version 2 is obsolete and not offered).
pub const NS: &str = "urn:xmpp:sm:3";
const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// A client's stream-management nonza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `<enable resume='true' max='N'/>`.
    Enable {
        /// Whether the client asks for resumption.
        resume: bool,
        /// Its preferred longest detachment, in seconds.
        max: Option<u64>,
    },
    /// `<r/>`: the client asks how many of its stanzas were handled.
    Request,
    /// `<a h='N'/>`: how many stanzas of the server's the client handled.
    Ack(Result<u32, BadH>),
    /// `<resume previd='ID' h='N'/>`.
    Resume {
        /// The id of the session to resume.
        previd: String,
        /// How many stanzas of the old stream the client handled.
        h: Result<u32, BadH>,
    },
    /// Something else in the namespace.
    Unknown(String),
}

/// An `h` that is missing or not an unsignedInt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadH(pub Option<String>);

impl std::fmt::Display for BadH {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("the 'h' attribute is missing"),
            Some(v) => write!(
                f,
                "'h' must be an integer from 0 to 4294967295, not '{}'",
                v.chars().take(32).collect::<String>()
            ),
        }
    }
}

fn h_of(el: &Element) -> Result<u32, BadH> {
    let raw = el.attr("h").ok_or(BadH(None))?;
    // xs:unsignedInt: digits only (no sign, no spaces).
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadH(Some(raw.to_owned())));
    }
    raw.parse().map_err(|_| BadH(Some(raw.to_owned())))
}

impl Request {
    /// What a nonza of [`NS`] asks.
    pub fn parse(el: &Element) -> Self {
        match el.name.as_str() {
            "enable" => Self::Enable {
                resume: matches!(el.attr("resume"), Some("true" | "1")),
                max: el.attr("max").and_then(|m| m.parse().ok()),
            },
            "r" => Self::Request,
            "a" => Self::Ack(h_of(el)),
            "resume" => Self::Resume {
                previd: el.attr("previd").unwrap_or_default().to_owned(),
                h: h_of(el),
            },
            other => Self::Unknown(other.to_owned()),
        }
    }
}

/// `<enabled/>`: with an id and `max` (seconds) when the session can be resumed.
pub fn enabled(resumable: Option<(&str, u64)>) -> Element {
    let el = Element::new("enabled", NS);
    match resumable {
        Some((id, max)) => el
            .with_attr("id", id)
            .with_attr("resume", "true")
            .with_attr("max", max.to_string()),
        None => el,
    }
}

/// `<a h='N'/>`.
pub fn answer(h: u32) -> Element {
    Element::new("a", NS).with_attr("h", h.to_string())
}

/// `<resumed previd h/>`: `h` is what the server handled of the old stream.
pub fn resumed(previd: &str, h: u32) -> Element {
    Element::new("resumed", NS)
        .with_attr("previd", previd)
        .with_attr("h", h.to_string())
}

/// Why a request failed (the stanza error condition of `<failed/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Not now: before binding, twice, before `<enable/>`, or after binding (resume).
    UnexpectedRequest,
    /// No session with that id for this account (gone, expired, another account's).
    ItemNotFound,
    /// A malformed request (`<resume/>` without a valid `h`).
    BadRequest,
    /// The client's `h` is beyond what the server sent.
    HandledCountTooHigh {
        /// The client's `h`.
        h: u32,
        /// What the server sent.
        sent: u32,
    },
}

/// `<failed/>`, with `h` (what the server handled) when it knows it.
pub fn failed(failure: Failure, handled: Option<u32>) -> Element {
    let (condition, extra) = match failure {
        Failure::UnexpectedRequest => ("unexpected-request", None),
        Failure::ItemNotFound => ("item-not-found", None),
        Failure::BadRequest => ("bad-request", None),
        Failure::HandledCountTooHigh { h, sent } => {
            ("undefined-condition", Some(too_high(h, sent)))
        }
    };
    let mut el = Element::new("failed", NS).with_child(Element::new(condition, STANZAS_NS));
    if let Some(extra) = extra {
        el.push_child(extra);
    }
    if let Some(h) = handled {
        el.set_attr("h", h.to_string());
    }
    el
}

/// XEP-0198's `<handled-count-too-high/>`.
pub fn too_high(h: u32, sent: u32) -> Element {
    Element::new("handled-count-too-high", NS)
        .with_attr("h", h.to_string())
        .with_attr("send-count", sent.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_api::xml::{parse, ParseLimits};

    fn el(xml: &str) -> Element {
        parse(xml.as_bytes(), ParseLimits::default()).unwrap()
    }

    #[test]
    fn parses_the_client_nonzas() {
        assert_eq!(
            Request::parse(&el(
                "<enable xmlns='urn:xmpp:sm:3' resume='true' max='300'/>"
            )),
            Request::Enable {
                resume: true,
                max: Some(300)
            }
        );
        assert_eq!(
            Request::parse(&el("<enable xmlns='urn:xmpp:sm:3'/>")),
            Request::Enable {
                resume: false,
                max: None
            }
        );
        assert_eq!(
            Request::parse(&el("<r xmlns='urn:xmpp:sm:3'/>")),
            Request::Request
        );
        assert_eq!(
            Request::parse(&el("<a xmlns='urn:xmpp:sm:3' h='4294967295'/>")),
            Request::Ack(Ok(u32::MAX))
        );
        assert_eq!(
            Request::parse(&el("<resume xmlns='urn:xmpp:sm:3' previd='x' h='7'/>")),
            Request::Resume {
                previd: "x".into(),
                h: Ok(7)
            }
        );
    }

    #[test]
    fn a_malformed_h_is_refused_with_what_was_wrong() {
        for bad in ["-1", "+1", " 1", "1.0", "4294967296", "", "0x10"] {
            let parsed = Request::parse(&el(&format!("<a xmlns='urn:xmpp:sm:3' h='{bad}'/>")));
            assert_eq!(parsed, Request::Ack(Err(BadH(Some(bad.into())))), "{bad}");
        }
        assert_eq!(
            Request::parse(&el("<a xmlns='urn:xmpp:sm:3'/>")),
            Request::Ack(Err(BadH(None)))
        );
        assert_eq!(
            BadH(Some("x".into())).to_string(),
            "'h' must be an integer from 0 to 4294967295, not 'x'"
        );
    }

    #[test]
    fn answers_as_xep_0198_shows_them() {
        assert_eq!(
            enabled(Some(("abc", 600))).to_xml(),
            "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true' max='600'/>"
        );
        assert_eq!(enabled(None).to_xml(), "<enabled xmlns='urn:xmpp:sm:3'/>");
        assert_eq!(answer(3).to_xml(), "<a xmlns='urn:xmpp:sm:3' h='3'/>");
        assert_eq!(
            resumed("abc", 9).to_xml(),
            "<resumed xmlns='urn:xmpp:sm:3' previd='abc' h='9'/>"
        );
        assert_eq!(
            failed(Failure::ItemNotFound, None).to_xml(),
            "<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
        );
        assert_eq!(
            failed(Failure::HandledCountTooHigh { h: 10, sent: 8 }, Some(2)).to_xml(),
            "<failed xmlns='urn:xmpp:sm:3' h='2'><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <handled-count-too-high h='10' send-count='8'/></failed>"
        );
    }
}
