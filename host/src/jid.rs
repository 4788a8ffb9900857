//! JIDs: the plugin API's parser (`tessera_plugin_api::jid`), so that the host and its modules
//! prepare and compare JIDs the same way.

pub use tessera_plugin_api::jid::{prep_localpart, prep_resource, Jid, JidError};
