//! XEP-0494 on the wire: the request an IQ carries and the `<clients/>` answer.

use tessera_plugin_api::clients::ClientView;
use tessera_plugin_api::datetime::format_utc;
use tessera_plugin_api::xml::Element;

/// XEP-0494's namespace.
pub const NS: &str = "urn:xmpp:cam:0";
/// Tessera's details of a credential inside `<auth/>` (XEP-0494 lets `<auth/>` carry elements
/// of other namespaces): its kind, issue and expiry time.
pub const TOKEN_NS: &str = "urn:tessera:cam:0";

/// What an IQ in the namespace asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `<list/>` in a get.
    List,
    /// `<revoke id=…/>` in a set.
    Revoke(String),
}

/// Why an IQ in the namespace is not a request (the text of its `<bad-request/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// `<list/>` in a set.
    ListIsAGet,
    /// `<revoke/>` in a get.
    RevokeIsASet,
    /// `<revoke/>` without an id.
    NoId,
    /// Another payload.
    Unknown,
}

impl BadRequest {
    /// The error text.
    pub fn text(self) -> &'static str {
        match self {
            BadRequest::ListIsAGet => "<list/> is sent in an IQ get",
            BadRequest::RevokeIsASet => "<revoke/> is sent in an IQ set",
            BadRequest::NoId => "<revoke/> needs the id of a listed client",
            BadRequest::Unknown => "Expected <list/> or <revoke/>",
        }
    }
}

/// Read the request of an IQ (its type and first child).
///
/// # Errors
/// [`BadRequest`].
pub fn request(iq: &Element) -> Result<Request, BadRequest> {
    let payload = iq.child_elements().next().ok_or(BadRequest::Unknown)?;
    match (iq.attr("type"), payload.name.as_str()) {
        (Some("get"), "list") if payload.ns == NS => Ok(Request::List),
        (_, "list") if payload.ns == NS => Err(BadRequest::ListIsAGet),
        (Some("set"), "revoke") if payload.ns == NS => match payload.attr("id") {
            Some(id) if !id.trim().is_empty() => Ok(Request::Revoke(id.trim().to_owned())),
            _ => Err(BadRequest::NoId),
        },
        (_, "revoke") if payload.ns == NS => Err(BadRequest::RevokeIsASet),
        _ => Err(BadRequest::Unknown),
    }
}

/// The `<clients/>` answer.
pub fn clients(views: &[ClientView]) -> Element {
    let mut el = Element::new("clients", NS);
    for view in views {
        el.push_child(client(view));
    }
    el
}

fn text(name: &str, value: &str) -> Element {
    Element::new(name, NS).with_text(value)
}

fn client(view: &ClientView) -> Element {
    // "session": it has logged in (every client this module records, every session); "access":
    // known only by a credential it holds.
    let kind = if view.logged_in { "session" } else { "access" };
    let mut el = Element::new("client", NS)
        .with_attr(
            "connected",
            if view.sessions > 0 { "true" } else { "false" },
        )
        .with_attr("id", view.id.as_str())
        .with_attr("type", kind);
    if view.first_seen_ms > 0 {
        el.push_child(text("first-seen", &format_utc(view.first_seen_ms)));
    }
    if view.last_seen_ms > 0 {
        el.push_child(text("last-seen", &format_utc(view.last_seen_ms)));
    }
    let mut auth = Element::new("auth", NS);
    if view.password {
        auth.push_child(Element::new("password", NS));
    }
    if !view.credentials.is_empty() {
        auth.push_child(Element::new("fast", NS));
    }
    for c in &view.credentials {
        auth.push_child(
            Element::new("token", TOKEN_NS)
                .with_attr("kind", c.kind.as_str())
                .with_attr("issued", format_utc(c.issued_at_ms))
                .with_attr("expires", format_utc(c.expires_at_ms)),
        );
    }
    el.push_child(auth);
    el.push_child(Element::new("permission", NS).with_attr("status", "unrestricted"));
    let mut ua = Element::new("user-agent", NS);
    ua.push_child(text(
        "software",
        view.software.as_deref().unwrap_or("unknown"),
    ));
    if let Some(device) = &view.device {
        ua.push_child(text("device", device));
    }
    el.push_child(ua);
    el
}
