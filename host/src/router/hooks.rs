//! Running a stanza through the hooks of one point (see `tessera_plugin_api::stanza`): the
//! selectors are matched here, before anything crosses the ABI; the stanza is encoded once per
//! chain (again only after a module replaced it); the verdicts are applied in priority order.
//! A point nobody hooks costs one slice-length check.

use tessera_plugin_api::stanza::{StanzaHeader, StanzaKind, StanzaPoint, Verdict};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{wire, ModuleCalls, StanzaCondition};

use super::CLIENT_NS;
use crate::runtime::effects;
use crate::runtime::modules::Routes;

/// Whom a stanza concerns, for the hooks' header.
#[derive(Debug, Clone, Copy, Default)]
pub struct Concern<'a> {
    /// The local account (sender at `ClientIn`, recipient at the delivery points).
    pub account: Option<&'a str>,
    /// The session (sending, addressed or written to).
    pub session: Option<u64>,
}

/// How a chain ended.
#[derive(Debug)]
pub enum Chain {
    /// Every hook passed: go on with this stanza (as the last hook left it).
    Continue(Element),
    /// A hook stopped it.
    Stopped {
        /// The stanza as it was when it was stopped (errors are built from it).
        stanza: Element,
        /// What the hook decided.
        stop: Stop,
    },
}

/// Why a chain stopped.
#[derive(Debug)]
pub enum Stop {
    /// Handled by the module: nothing more to do.
    Handled,
    /// Dropped by the module on purpose: nothing more to do.
    Dropped,
    /// Stored by the module (an undeliverable message): no bounce.
    Stored,
    /// Answer the sender with this stanza.
    Reply(Element),
    /// Bounce the stanza to its sender with this condition.
    Error(StanzaCondition, Option<String>),
    /// The hook failed or panicked (already logged with the module's name): the sender gets
    /// `<internal-server-error/>`.
    Failed,
}

/// Run `stanza` through the hooks at `point`; with `only`, just those of these modules
/// (`SessionOut`: the modules attached to the session).
pub fn run(
    routes: &Routes,
    point: StanzaPoint,
    stanza: Element,
    concern: Concern<'_>,
    only: Option<&[String]>,
) -> Chain {
    let hooks = routes.stanza_hooks(point);
    if hooks.is_empty() {
        return Chain::Continue(stanza);
    }
    let Some(kind) = StanzaKind::of(&stanza.name) else {
        return Chain::Continue(stanza);
    };
    // Stanzas the hooks send go out after the whole chain.
    let _effects = effects::scope();
    let mut stanza = stanza;
    let mut body: Option<Vec<u8>> = None;
    for entry in hooks {
        if only.is_some_and(|modules| !modules.iter().any(|m| *m == entry.module.name)) {
            continue;
        }
        let children = stanza.child_elements().map(|c| c.ns.as_str());
        if !entry.spec.selects(kind, stanza.attr("type"), children) {
            continue;
        }
        let bytes = match &mut body {
            Some(bytes) => bytes,
            None => match wire::encode(&stanza) {
                Ok(bytes) => body.insert(bytes),
                Err(_) => return stopped(stanza, Stop::Failed),
            },
        };
        let header = StanzaHeader {
            hook: entry.id,
            point,
            kind,
            stanza_type: stanza.attr("type"),
            from: stanza.attr("from"),
            to: stanza.attr("to"),
            id: stanza.attr("id"),
            account: concern.account,
            session: concern.session,
        };
        match entry.module.stanza(header, wire::Bytes::new(bytes)) {
            Ok(Verdict::Pass) => {}
            Ok(Verdict::Replace(new)) => {
                if new.ns != CLIENT_NS || StanzaKind::of(&new.name) != Some(kind) {
                    tracing::warn!(plugin = %entry.module.name, point = point.as_str(), name = %new.name, "a hook replaced a stanza with something else; stanza stopped");
                    return stopped(stanza, Stop::Failed);
                }
                stanza = new;
                body = None;
            }
            Ok(Verdict::Handled) => return stopped(stanza, Stop::Handled),
            Ok(Verdict::Drop) => return stopped(stanza, Stop::Dropped),
            Ok(Verdict::Stored) => return stopped(stanza, Stop::Stored),
            Ok(Verdict::Reply(reply)) => return stopped(stanza, Stop::Reply(reply)),
            Ok(Verdict::Error { condition, text }) => {
                return stopped(stanza, Stop::Error(condition, text))
            }
            Err(_) => return stopped(stanza, Stop::Failed),
        }
    }
    Chain::Continue(stanza)
}

fn stopped(stanza: Element, stop: Stop) -> Chain {
    Chain::Stopped { stanza, stop }
}
