//! The host calls whose failure the protocol code treats the same way everywhere: a failing
//! hook contributes nothing, a failed `mechanism-end` is only logged, and PBKDF2 runs off the
//! host's I/O threads. Everything else calls [`Host`] directly.

use serde::Serialize;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Host, LogLevel};
use tessera_sasl::scram::ScramCredentials;

use crate::features::elements_from_replies;

/// The replies of a query hook; a failing hook (logged) gives none.
fn hook_replies<P: Serialize>(host: &Host, name: &str, payload: &P) -> Vec<Vec<u8>> {
    let replies = tessera_plugin_api::wire::encode(payload)
        .and_then(|payload| host.call_hook(name, tessera_plugin_api::wire::Bytes::new(&payload)));
    replies.unwrap_or_else(|e| {
        host.log(LogLevel::Warn, &format!("{name} hook failed: {e}"));
        Vec::new()
    })
}

/// Call a query hook whose replies are one `T` each; replies that do not decode are skipped
/// (and logged), a failing hook gives nothing.
pub(crate) fn hook_answers<P: Serialize, T: serde::de::DeserializeOwned>(
    host: &Host,
    name: &str,
    payload: &P,
) -> Vec<T> {
    hook_replies(host, name, payload)
        .into_iter()
        .filter_map(|r| match tessera_plugin_api::wire::decode::<T>(name, &r) {
            Ok(answer) => Some(answer),
            Err(e) => {
                host.log(
                    LogLevel::Warn,
                    &format!("{name}: a reply that does not decode: {e}"),
                );
                None
            }
        })
        .collect()
}

/// Call a query hook whose replies are `Vec<Element>`; a failing hook contributes nothing.
pub(crate) fn hook_elements<P: Serialize>(host: &Host, name: &str, payload: &P) -> Vec<Element> {
    elements_from_replies(hook_replies(host, name, payload))
}

/// Names answered by a query hook whose replies are `Vec<String>` (task names): empty and
/// overlong names are dropped, a reply that does not decode is skipped, a failing hook gives
/// nothing. One `Vec` per reply, in hook order.
pub(crate) fn hook_names<P: Serialize>(host: &Host, name: &str, payload: &P) -> Vec<Vec<String>> {
    hook_replies(host, name, payload)
        .into_iter()
        .filter_map(|r| tessera_plugin_api::wire::decode::<Vec<String>>(name, &r).ok())
        .map(|names| {
            names
                .into_iter()
                .filter(|t| !t.is_empty() && t.len() <= MAX_TASK_LEN)
                .collect::<Vec<_>>()
        })
        .filter(|names| !names.is_empty())
        .collect()
}

/// Longest accepted task name, in bytes.
pub(crate) const MAX_TASK_LEN: usize = 64;

/// End an exchange (always called once it is over); the host forgetting it is not an error
/// the client needs to hear about.
pub(crate) fn end_exchange(host: &Host, exchange: u64) {
    if let Err(e) = host.mechanism_end(exchange) {
        host.log(LogLevel::Debug, &format!("mechanism-end {exchange}: {e}"));
    }
}

/// Check a password against a stored verifier: PBKDF2, the one slow step of a login, so the
/// host runs it off its I/O threads.
pub(crate) fn verify_password(host: &Host, stored: &ScramCredentials, password: &str) -> bool {
    host.blocking(|| tessera_sasl::scram::verify_password(stored, password))
}
