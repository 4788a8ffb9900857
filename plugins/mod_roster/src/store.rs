//! Where a roster lives: the module's key-value store, in the account's scope (deleted with
//! the account). `i:<bare JID>` holds an item, `r:<bare JID>` a contact's pending subscription
//! request (the whole stanza, RFC 6121 §3.1.3: extensions included), `ver` the roster version,
//! a counter bumped by every change a client would be pushed.

use tessera_plugin_api::protocol::KvScope;
use tessera_plugin_api::{Host, PluginError};

use crate::item::Item;

const ITEM: &str = "i:";
const REQUEST: &str = "r:";
const VERSION: &str = "ver";

/// One account's roster in the store.
#[derive(Clone, Copy, Debug)]
pub struct Store<'a> {
    host: &'a Host,
    user: &'a str,
}

impl<'a> Store<'a> {
    /// The roster of `user`.
    pub fn of(host: &'a Host, user: &'a str) -> Self {
        Self { host, user }
    }

    fn scope(&self) -> KvScope<'a> {
        KvScope::Account(self.user)
    }

    /// The item for a contact.
    ///
    /// # Errors
    /// The store failed.
    pub fn item(&self, jid: &str) -> Result<Option<Item>, PluginError> {
        Ok(self
            .host
            .kv_get(self.scope(), &format!("{ITEM}{jid}"))?
            .and_then(|v| Item::decode(&v)))
    }

    /// Every item, ordered by JID.
    ///
    /// # Errors
    /// The store failed.
    pub fn items(&self) -> Result<Vec<Item>, PluginError> {
        let mut items: Vec<Item> = self
            .host
            .kv_list(self.scope(), ITEM)?
            .iter()
            .filter_map(|(_, v)| Item::decode(v))
            .collect();
        items.sort_by(|a, b| a.jid.cmp(&b.jid));
        Ok(items)
    }

    /// How many items there are.
    ///
    /// # Errors
    /// The store failed.
    pub fn count(&self) -> Result<usize, PluginError> {
        Ok(self.host.kv_list(self.scope(), ITEM)?.len())
    }

    /// Write an item.
    ///
    /// # Errors
    /// The store failed.
    pub fn put(&self, item: &Item) -> Result<(), PluginError> {
        self.host
            .kv_put(self.scope(), &format!("{ITEM}{}", item.jid), &item.encode())
    }

    /// Delete an item; whether there was one.
    ///
    /// # Errors
    /// The store failed.
    pub fn delete(&self, jid: &str) -> Result<bool, PluginError> {
        self.host.kv_delete(self.scope(), &format!("{ITEM}{jid}"))
    }

    /// A contact's pending request, as it arrived.
    ///
    /// # Errors
    /// The store failed.
    pub fn request(&self, jid: &str) -> Result<Option<String>, PluginError> {
        self.host.kv_get(self.scope(), &format!("{REQUEST}{jid}"))
    }

    /// Every pending request: (contact, stanza), ordered by contact.
    ///
    /// # Errors
    /// The store failed.
    pub fn requests(&self) -> Result<Vec<(String, String)>, PluginError> {
        let mut all: Vec<(String, String)> = self
            .host
            .kv_list(self.scope(), REQUEST)?
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(REQUEST).map(|jid| (jid.to_owned(), v)))
            .collect();
        all.sort();
        Ok(all)
    }

    /// Keep a contact's request.
    ///
    /// # Errors
    /// The store failed.
    pub fn put_request(&self, jid: &str, stanza: &str) -> Result<(), PluginError> {
        self.host
            .kv_put(self.scope(), &format!("{REQUEST}{jid}"), stanza)
    }

    /// Forget a contact's request.
    ///
    /// # Errors
    /// The store failed.
    pub fn delete_request(&self, jid: &str) -> Result<(), PluginError> {
        self.host
            .kv_delete(self.scope(), &format!("{REQUEST}{jid}"))
            .map(drop)
    }

    /// The roster version (0 for a roster never changed).
    ///
    /// # Errors
    /// The store failed.
    pub fn version(&self) -> Result<u64, PluginError> {
        Ok(self
            .host
            .kv_get(self.scope(), VERSION)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Count a change; answers the new version.
    ///
    /// # Errors
    /// The store failed.
    pub fn bump(&self) -> Result<u64, PluginError> {
        let next = self.version()? + 1;
        self.host.kv_put(self.scope(), VERSION, &next.to_string())?;
        Ok(next)
    }
}
