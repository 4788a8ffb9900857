//! XMPP over WebSocket (RFC 7395), the sans-IO part: the opening handshake's checks, the
//! `Origin` policy, XEP-0156 discovery documents, and the conversion between WebSocket
//! messages and the byte stream the c2s connection speaks.
//!
//! A WebSocket connection is served by the same connection task as TCP ([`crate::c2s`]): what
//! the client sends is rewritten into the TCP form (`<open/>` becomes a stream header,
//! `<close/>` its end tag) by [`inbound`], and what the server writes is cut back into one
//! message per element by [`Encoder`]. Stream limits, timeouts, modules and sessions are
//! therefore the TCP ones, unchanged; only the framing differs.

use base64::Engine as _;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::Method;
use quick_xml::events::Event;
use sha1::{Digest, Sha1};
use tessera_plugin_api::xml::escape_attr;
use tessera_plugin_api::StreamCondition;

use crate::stream::framer::{Frame, Framer, Limits};
use crate::stream::parse::{parse_element, parse_stream_header, StreamHeader, STREAM_NS};
use crate::stream::StreamError;

/// The endpoint's path (Prosody's default).
pub const PATH: &str = "/xmpp-websocket";
/// The framing namespace of `<open/>` and `<close/>` (RFC 7395 §3.3.2).
pub const FRAMING_NS: &str = "urn:ietf:params:xml:ns:xmpp-framing";
/// The subprotocol a client must ask for (RFC 7395 §3.2).
pub const SUBPROTOCOL: &str = "xmpp";
/// The link relation of the WebSocket endpoint in host-meta (XEP-0156).
pub const ALT_CONNECTIONS_WEBSOCKET: &str = "urn:xmpp:alt-connections:websocket";
const HANDSHAKE_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why an upgrade request is refused, with the HTTP status it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a GET.
    Method,
    /// No `Upgrade: websocket` / `Connection: upgrade`: a plain HTTP request.
    NotWebSocket,
    /// `Sec-WebSocket-Version` is not 13.
    Version,
    /// `Sec-WebSocket-Key` missing or not 16 bytes in base64.
    Key,
    /// `xmpp` is not among the requested subprotocols.
    Subprotocol,
    /// The page's `Origin` is not allowed.
    Origin,
}

impl Refusal {
    /// The HTTP status code.
    pub fn status(self) -> u16 {
        match self {
            Self::Method => 405,
            Self::NotWebSocket | Self::Version => 426,
            Self::Key | Self::Subprotocol => 400,
            Self::Origin => 403,
        }
    }

    /// The plain-text body: what the client did wrong.
    pub fn text(self) -> &'static str {
        match self {
            Self::Method => "the WebSocket handshake is a GET request",
            Self::NotWebSocket => {
                "this endpoint speaks XMPP over WebSocket (RFC 7395) only: upgrade to websocket"
            }
            Self::Version => "WebSocket version 13 is required (RFC 6455)",
            Self::Key => "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 §4.1)",
            Self::Subprotocol => {
                "the WebSocket subprotocol `xmpp` is required (Sec-WebSocket-Protocol: xmpp, RFC 7395 §3.2)"
            }
            Self::Origin => "this page's origin may not connect (see [websocket] allowed_origins)",
        }
    }
}

/// Which page origins may open a connection.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    any: bool,
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// The server's own origins (`https://{domain}`, the origin of `public_url`) and the
    /// configured ones; `"*"` among them allows every page.
    pub fn new(domain: &str, public_url: Option<&str>, configured: &[String]) -> Self {
        let mut allowed: Vec<String> = configured
            .iter()
            .filter(|o| o.as_str() != "*")
            .map(|o| o.to_ascii_lowercase())
            .collect();
        allowed.push(format!("https://{}", domain.to_ascii_lowercase()));
        allowed.extend(public_url.and_then(origin_of));
        let allowed = allowed.iter().filter_map(|o| origin_of(o)).collect();
        Self {
            any: configured.iter().any(|o| o == "*"),
            allowed,
        }
    }

    /// Whether a request with this `Origin` header may connect. Browsers always send one on a
    /// WebSocket handshake; other clients need not, and no page's script is behind them.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(_) if self.any => true,
            Some(o) => origin_of(o.trim()).is_some_and(|o| self.allowed.contains(&o)),
        }
    }
}

/// The origin (`scheme://host[:port]`, lowercase, without the scheme's default port, as
/// browsers send it) of a URL, or `None` if it is not one.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme || authority.is_empty() || authority.contains('@') {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" | "wss" => Some(":443"),
        "http" | "ws" => Some(":80"),
        _ => None,
    };
    let authority = default_port
        .and_then(|p| authority.strip_suffix(p))
        .unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn has_token(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks an opening handshake (RFC 6455 §4.2.1, RFC 7395 §3.2); answers the
/// `Sec-WebSocket-Accept` value.
///
/// # Errors
/// The first [`Refusal`] that applies, in the order of the enum.
pub fn check_handshake(
    method: &Method,
    headers: &HeaderMap,
    origins: &OriginPolicy,
) -> Result<HeaderValue, Refusal> {
    if method != Method::GET {
        return Err(Refusal::Method);
    }
    if !has_token(headers, "upgrade", "websocket") || !has_token(headers, "connection", "upgrade") {
        return Err(Refusal::NotWebSocket);
    }
    if header(headers, "sec-websocket-version").map(str::trim) != Some("13") {
        return Err(Refusal::Version);
    }
    let key = header(headers, "sec-websocket-key")
        .map(str::trim)
        .filter(|k| {
            base64::engine::general_purpose::STANDARD
                .decode(k)
                .is_ok_and(|raw| raw.len() == 16)
        })
        .ok_or(Refusal::Key)?;
    // Subprotocol names are case-sensitive (RFC 6455 §4.1).
    let xmpp = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if !xmpp {
        return Err(Refusal::Subprotocol);
    }
    let origin = match headers.get("origin") {
        None => None,
        // Present but not text: no browser sends that, and it is not an allowed origin.
        Some(v) => Some(v.to_str().map_err(|_| Refusal::Origin)?),
    };
    if !origins.allows(origin) {
        return Err(Refusal::Origin);
    }
    HeaderValue::from_str(&accept_key(key)).map_err(|_| Refusal::Key)
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(HANDSHAKE_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// XEP-0156's host-meta in XRD (`/.well-known/host-meta`).
pub fn host_meta_xrd(url: &str) -> String {
    format!(
        "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  <Link rel='{ALT_CONNECTIONS_WEBSOCKET}' href='{}'/>\n</XRD>\n",
        escape_attr(url)
    )
}

/// XEP-0156's host-meta in JSON (`/.well-known/host-meta.json`).
pub fn host_meta_json(url: &str) -> String {
    serde_json::json!({
        "links": [{ "rel": ALT_CONNECTIONS_WEBSOCKET, "href": url }]
    })
    .to_string()
}

/// What one text message from the client means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// `<open/>`: a stream (re)start, as the TCP stream header that says the same.
    Open(String),
    /// `<close/>`: the client ends the stream.
    Close,
    /// Any other element, as it came.
    Element(String),
    /// Only whitespace (RFC 7395 §3.4 prefers WebSocket pings; tolerated, ignored).
    Keepalive,
}

fn not_one_element() -> StreamError {
    StreamError::with_text(
        StreamCondition::NotWellFormed,
        "each WebSocket message must hold one complete XML element (RFC 7395 §3.3.3)",
    )
}

/// Reads one text message: it must hold exactly one complete element (RFC 7395 §3.3.3),
/// within `limits`.
///
/// # Errors
/// `not-well-formed` for anything but one complete element, `policy-violation` over a limit,
/// `restricted-xml` and `invalid-namespace` as on TCP.
pub fn inbound(text: String, limits: Limits) -> Result<Inbound, StreamError> {
    let mut framer = Framer::fragments(limits);
    framer.push(text.as_bytes())?;
    if !framer.at_boundary() || framer.frames_ready() > 1 {
        return Err(not_one_element());
    }
    let Some(Frame::Element(raw)) = framer.next_frame()? else {
        return Ok(Inbound::Keepalive);
    };
    let trimmed = text.trim();
    if !(trimmed.starts_with("<open") || trimmed.starts_with("<close")) {
        return Ok(Inbound::Element(text));
    }
    let element = parse_element(&raw, &StreamHeader::default())?;
    if element.is("close", FRAMING_NS) {
        return Ok(Inbound::Close);
    }
    if !element.is("open", FRAMING_NS) {
        return Ok(Inbound::Element(text));
    }
    let mut header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='{STREAM_NS}'"
    );
    for name in ["to", "from", "id", "version", "xml:lang"] {
        if let Some(value) = element.attr(name) {
            header.push_str(&format!(" {name}='{}'", escape_attr(value)));
        }
    }
    header.push('>');
    Ok(Inbound::Open(header))
}

/// Cuts the server's output, written as for TCP (stream header, elements, end tag), into
/// WebSocket messages: `<open/>`, one message per element with its namespace made explicit,
/// `<close/>`.
#[derive(Debug)]
pub struct Encoder {
    framer: Framer,
    closed: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// An encoder at the start of a stream.
    pub fn new() -> Self {
        // The server's own output: its size is bounded where it is produced.
        let limits = Limits {
            max_stanza_bytes: usize::MAX,
            max_depth: usize::MAX,
            max_header_bytes: 64 * 1024,
            max_elements: usize::MAX,
        };
        Self {
            framer: Framer::new(limits),
            closed: false,
        }
    }

    /// A new stream begins (a restart after authentication): the next output is a stream
    /// header, a document of its own.
    pub fn restart(&mut self) {
        if self.framer.at_boundary() {
            self.framer.reset();
        }
    }

    /// Whether `<close/>` was produced.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Feeds output bytes; complete messages are appended to `out`.
    ///
    /// # Errors
    /// Output that is not a well-formed stream (a bug in the server).
    pub fn encode(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamError> {
        self.framer.push(bytes)?;
        while let Some(frame) = self.framer.next_frame()? {
            match frame {
                Frame::StreamHeader(raw) => out.push(open_element(&parse_stream_header(&raw)?)),
                Frame::Element(raw) => out.push(with_namespace(&raw)),
                Frame::StreamEnd => {
                    self.closed = true;
                    out.push(close_element());
                }
            }
        }
        Ok(())
    }
}

/// `<close/>`.
pub fn close_element() -> String {
    format!("<close xmlns='{FRAMING_NS}'/>")
}

fn open_element(h: &StreamHeader) -> String {
    let mut open = format!("<open xmlns='{FRAMING_NS}'");
    for (name, value) in [
        ("id", &h.id),
        ("from", &h.from),
        ("to", &h.to),
        ("version", &h.version),
        ("xml:lang", &h.lang),
    ] {
        if let Some(v) = value {
            open.push_str(&format!(" {name}='{}'", escape_attr(v)));
        }
    }
    open.push_str("/>");
    open
}

/// The element with the namespace it inherited from the stream header declared on itself
/// (RFC 7395 §3.3.3: every message is a document of its own): `xmlns='jabber:client'` on an
/// unprefixed element without one, `xmlns:stream` on a `stream:` one.
fn with_namespace(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut reader = quick_xml::Reader::from_reader(raw);
    let start = match reader.read_event() {
        Ok(Event::Start(s) | Event::Empty(s)) => s,
        _ => return text.into_owned(),
    };
    let name = start.name();
    let (declaration, wanted): (&[u8], String) = match name.prefix() {
        None => (b"xmlns", " xmlns='jabber:client'".to_owned()),
        Some(p) if p.as_ref() == b"stream" => {
            (b"xmlns:stream", format!(" xmlns:stream='{STREAM_NS}'"))
        }
        Some(_) => return text.into_owned(),
    };
    let declared = start
        .attributes()
        .flatten()
        .any(|a| a.key.as_ref() == declaration);
    if declared {
        return text.into_owned();
    }
    let at = 1 + name.as_ref().len();
    let mut s = String::with_capacity(text.len() + wanted.len());
    s.push_str(text.get(..at).unwrap_or_default());
    s.push_str(&wanted);
    s.push_str(text.get(at..).unwrap_or_default());
    s
}

#[cfg(test)]
mod tests;
