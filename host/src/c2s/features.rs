//! Stream headers and `<stream:features/>` (RFC 6120 §4.3, §4.7).

use tessera_plugin_api::protocol::{Request, StreamInfo};
use tessera_plugin_api::xml::{escape_attr, Element};

use crate::stream::parse::StreamHeader;
use crate::stream::StreamError;
use crate::Shared;

/// Which features a stream is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeatureSet {
    /// After TLS, before authentication.
    PreAuth,
    /// Authenticated, no resource bound yet.
    Authenticated,
    /// Bound (SASL2 with Bind 2): only module features.
    Bound,
}

/// Validate the client's stream header and render ours (with a fresh stream id).
///
/// # Errors
/// `invalid-namespace`, `host-unknown`, `unsupported-version`, `invalid-from`.
pub fn stream_header(shared: &Shared, h: &StreamHeader) -> Result<String, StreamError> {
    if h.name != "stream" {
        return Err(StreamError::with_text(
            "invalid-namespace",
            "expected <stream:stream>",
        ));
    }
    if h.default_ns.as_deref() != Some("jabber:client") {
        return Err(StreamError::with_text(
            "invalid-namespace",
            "the default namespace must be jabber:client",
        ));
    }
    let domain = &shared.config.domain;
    match h.to.as_deref() {
        Some(to) if to.eq_ignore_ascii_case(domain) => {}
        Some(_) => return Err(StreamError::new("host-unknown")),
        None => {
            return Err(StreamError::with_text(
                "host-unknown",
                "the stream header needs a 'to' attribute",
            ))
        }
    }
    match h.version.as_deref() {
        Some(v) if v.starts_with("1.") => {}
        _ => {
            return Err(StreamError::with_text(
                "unsupported-version",
                "version='1.0' is required",
            ))
        }
    }
    let mut to_attr = String::new();
    if let Some(from) = h.from.as_deref() {
        let from_domain = from.rsplit_once('@').map_or(from, |(_, d)| d);
        let from_domain = from_domain.split('/').next().unwrap_or_default();
        if !from_domain.eq_ignore_ascii_case(domain) {
            return Err(StreamError::with_text(
                "invalid-from",
                "the 'from' domain is not this server",
            ));
        }
        to_attr = format!(" to='{}'", escape_attr(from));
    }
    Ok(format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='{}' from='{}'{to_attr} version='1.0' xml:lang='en'>",
        stream_id(),
        escape_attr(domain)
    ))
}

/// A header to send before a stream error when the client's header was unusable.
pub(super) fn error_header(shared: &Shared) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='{}' from='{}' version='1.0'>",
        stream_id(),
        escape_attr(&shared.config.domain)
    )
}

fn stream_id() -> String {
    let mut raw = [0u8; 12];
    crate::secret::random_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<stream:features>…</stream:features>` for a stream in the given state.
pub(crate) fn features(shared: &Shared, info: &StreamInfo, set: FeatureSet) -> String {
    let mut out = String::from("<stream:features>");
    let routes = shared.registry.routes();
    let request = Request::StreamFeatures(info.clone());
    for module in &routes.stream_features {
        if let Ok(elements) = module.request::<Vec<Element>>(&request) {
            for e in elements {
                e.write_xml(&mut out, "jabber:client");
            }
        }
    }
    match set {
        FeatureSet::PreAuth => {
            if shared.config.allow_registration {
                out.push_str("<register xmlns='http://jabber.org/features/iq-register'/>");
            }
        }
        FeatureSet::Authenticated => {
            out.push_str("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
            out.push_str(
                "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>",
            );
        }
        FeatureSet::Bound => {}
    }
    out.push_str("</stream:features>");
    out
}
