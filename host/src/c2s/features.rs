//! Stream headers and `<stream:features/>` (RFC 6120 §4.3, §4.7).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tessera_plugin_api::StreamCondition;

use tessera_plugin_api::protocol::{ChannelBindings, NamedAccount, ScramHash, StreamInfo};
use tessera_plugin_api::xml::escape_attr;
use tessera_plugin_api::ModuleCalls;

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
            StreamCondition::InvalidNamespace,
            "expected <stream:stream>",
        ));
    }
    if h.default_ns.as_deref() != Some("jabber:client") {
        return Err(StreamError::with_text(
            StreamCondition::InvalidNamespace,
            "the default namespace must be jabber:client",
        ));
    }
    let domain = &shared.config.domain;
    match h.to.as_deref() {
        Some(to) if to.eq_ignore_ascii_case(domain) => {}
        Some(_) => return Err(StreamError::new(StreamCondition::HostUnknown)),
        None => {
            return Err(StreamError::with_text(
                StreamCondition::HostUnknown,
                "the stream header needs a 'to' attribute",
            ))
        }
    }
    match h.version.as_deref() {
        Some(v) if v.starts_with("1.") => {}
        _ => {
            return Err(StreamError::with_text(
                StreamCondition::UnsupportedVersion,
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
                StreamCondition::InvalidFrom,
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

/// What pre-auth features may know of the account a header's `from` names: the hashes of its
/// SCRAM verifiers (`None` without a `from` of this domain, or if the store cannot say). A name
/// with no account, or that cannot be one, reports what an account whose password was set
/// today has, so nothing tells a name that exists from one that does not.
pub(crate) fn named_account(shared: &Shared, from: Option<&str>) -> Option<NamedAccount> {
    let bare = from?.split('/').next()?;
    let (local, domain) = bare.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(&shared.config.domain) {
        return None;
    }
    let current = || vec![ScramHash::Sha1, ScramHash::Sha256, ScramHash::Sha512];
    let scram_hashes = match crate::jid::prep_localpart(local) {
        Err(_) => current(),
        Ok(user) => match shared.store.get_account(&user) {
            Ok(None) => current(),
            Ok(Some(account)) => {
                let mut hashes = vec![ScramHash::Sha1, ScramHash::Sha256];
                if account.scram_sha512.is_some() {
                    hashes.push(ScramHash::Sha512);
                }
                hashes
            }
            Err(e) => {
                tracing::warn!(error = %e, "store failure reading the account a stream names");
                return None;
            }
        },
    };
    Some(NamedAccount { scram_hashes })
}

fn stream_id() -> String {
    crate::secret::random_hex(12)
}

/// What pre-auth stream features may depend on: the transport and the verifiers of the account
/// the header names, never the particular stream (its id, peer address, `from` or
/// channel-binding values). The plugin API documents this
/// contract on `Module::stream_features` and the inline-feature hooks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamClass {
    secure: bool,
    direct_tls: bool,
    tls_version: Option<String>,
    tls_exporter: bool,
    tls_server_end_point: bool,
    named_account: Option<NamedAccount>,
}

impl StreamClass {
    fn of(info: &StreamInfo) -> Self {
        Self {
            secure: info.secure,
            direct_tls: info.direct_tls,
            tls_version: info.tls_version.clone(),
            tls_exporter: info.channel_bindings.tls_exporter.is_some(),
            tls_server_end_point: info.channel_bindings.tls_server_end_point.is_some(),
            named_account: info.named_account.clone(),
        }
    }

    /// The stream the modules are asked about: this class and nothing else (so a module
    /// cannot put one stream's details into features another stream is sent).
    fn representative(&self, domain: &str) -> StreamInfo {
        StreamInfo {
            domain: domain.to_owned(),
            secure: self.secure,
            direct_tls: self.direct_tls,
            tls_version: self.tls_version.clone(),
            channel_bindings: ChannelBindings {
                tls_exporter: self.tls_exporter.then(Vec::new),
                tls_server_end_point: self.tls_server_end_point.then(Vec::new),
            },
            named_account: self.named_account.clone(),
            ..StreamInfo::default()
        }
    }
}

/// Rendered pre-auth features by stream class; a handful of classes exist (TLS version ×
/// direct or STARTTLS × channel bindings × three kinds of named account), so it needs no bound.
#[derive(Debug, Default)]
pub struct FeatureCache(Mutex<HashMap<StreamClass, Arc<str>>>);

/// Append `<stream:features>…</stream:features>` for a stream in the given state to `out`.
/// Pre-auth features are built through the modules once per stream class and routing
/// generation (they cost a dozen ABI calls, about a tenth of a FAST login); after
/// authentication they may depend on the account, so they are built for each stream.
pub(crate) fn features(shared: &Shared, info: &StreamInfo, set: FeatureSet, out: &mut String) {
    let routes = shared.registry.routes();
    if set != FeatureSet::PreAuth {
        build(&routes, info, set, out);
        return;
    }
    let class = StreamClass::of(info);
    let cache = &routes.pre_auth_features.0;
    if let Some(hit) = cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&class)
    {
        out.push_str(hit);
        return;
    }
    // Built without the lock held: the modules may call back into the host.
    let failures = crate::runtime::modules::failures_on_this_thread();
    let start = out.len();
    build(&routes, &class.representative(&info.domain), set, out);
    // A module or hook that failed left its part out: serve this once, build again next time.
    if crate::runtime::modules::failures_on_this_thread() == failures {
        let built: Arc<str> = out.get(start..).unwrap_or_default().into();
        cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(class, built);
    }
}

fn build(
    routes: &crate::runtime::modules::Routes,
    info: &StreamInfo,
    set: FeatureSet,
    out: &mut String,
) {
    out.push_str("<stream:features>");
    for module in &routes.stream_features {
        if let Ok(elements) = module.stream_features(info.clone()) {
            for e in elements {
                e.write_xml(out, "jabber:client");
            }
        }
    }
    match set {
        FeatureSet::PreAuth => {}
        FeatureSet::Authenticated => {
            out.push_str("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
            out.push_str(
                "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>",
            );
        }
        FeatureSet::Bound => {}
    }
    out.push_str("</stream:features>");
}
