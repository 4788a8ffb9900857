//! Archiving preferences (XEP-0313 §6), sans IO: read from `<prefs/>`, written back, and the
//! decision for one conversation partner.

use std::collections::BTreeSet;

use tessera_plugin_api::xml::Element;

use crate::query::{bad, Refusal};
use crate::NS;

/// Most JIDs in `<always/>` and `<never/>` together.
pub const MAX_JIDS: usize = 1000;

/// What is archived for a partner in neither list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// Everything.
    Always,
    /// Nothing.
    Never,
    /// Conversations with roster contacts.
    Roster,
}

impl Default {
    fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Roster => "roster",
        }
    }
}

/// An account's preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefs {
    /// For partners in neither list.
    pub default: Default,
    /// Always archived (bare JIDs).
    pub always: BTreeSet<String>,
    /// Never archived (bare JIDs); wins over `always`.
    pub never: BTreeSet<String>,
}

impl std::default::Default for Prefs {
    /// Archive everything (XEP-0313's usual server default, Prosody's and ejabberd's).
    fn default() -> Self {
        Self {
            default: Default::Always,
            always: BTreeSet::new(),
            never: BTreeSet::new(),
        }
    }
}

impl Prefs {
    /// Reads `<prefs default=…><always><jid/>…</always><never>…</never></prefs>`; `bare`
    /// canonicalises each JID.
    ///
    /// # Errors
    /// `bad-request` for a missing or unknown `default`, a JID that is not one, or too many.
    pub fn read(prefs: &Element, bare: impl Fn(&str) -> Option<String>) -> Result<Self, Refusal> {
        let default = match prefs.attr("default") {
            Some("always") => Default::Always,
            Some("never") => Default::Never,
            Some("roster") => Default::Roster,
            Some(other) => {
                return Err(bad(format!(
                    "default='{other}' is not always, never or roster"
                )))
            }
            None => return Err(bad("<prefs/> needs a 'default'")),
        };
        let list = |name: &str| -> Result<BTreeSet<String>, Refusal> {
            let mut set = BTreeSet::new();
            for holder in prefs.children_named(name, NS) {
                for jid in holder.children_named("jid", NS) {
                    let text = jid.text();
                    let b = bare(text.trim())
                        .ok_or_else(|| bad(format!("<{name}/>: '{}' is not a JID", text.trim())))?;
                    set.insert(b);
                }
            }
            Ok(set)
        };
        let always = list("always")?;
        let never = list("never")?;
        if always.len() + never.len() > MAX_JIDS {
            return Err(bad(format!(
                "at most {MAX_JIDS} JIDs in <always/> and <never/>"
            )));
        }
        Ok(Self {
            default,
            always,
            never,
        })
    }

    /// The `<prefs/>` element.
    pub fn element(&self) -> Element {
        let list = |name: &str, jids: &BTreeSet<String>| {
            let mut holder = Element::new(name, NS);
            for j in jids {
                holder.push_child(Element::new("jid", NS).with_text(j.clone()));
            }
            holder
        };
        Element::new("prefs", NS)
            .with_attr("default", self.default.as_str())
            .with_child(list("always", &self.always))
            .with_child(list("never", &self.never))
    }

    /// Whether a conversation with `with` (a bare JID) is archived; `in_roster` is asked only
    /// when the roster decides.
    pub fn archives(&self, with: &str, in_roster: impl FnOnce() -> bool) -> bool {
        if self.never.contains(with) {
            return false;
        }
        if self.always.contains(with) {
            return true;
        }
        match self.default {
            Default::Always => true,
            Default::Never => false,
            Default::Roster => in_roster(),
        }
    }
}
