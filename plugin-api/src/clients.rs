//! Clients of an account across modules (XEP-0494 Client Access Management).
//!
//! A *client* is one installation of a client application, known by the SASL2 user-agent id it
//! sends (XEP-0388). Modules that hand a client a credential of its own (FAST tokens) say so
//! through [`hooks::CLIENT_CREDENTIALS`] and take it back through [`hooks::CLIENT_REVOKE`]; the
//! module that keeps the client list (mod_client_management) asks them. Every module names a
//! client by [`client_ref`], never by the user-agent id itself, so that a list of what may log
//! in never repeats what a login presents.
//!
//! The host's admin socket reaches the client list through [`hooks::CLIENTS_LIST`] and
//! [`hooks::CLIENTS_REVOKE`] (`tessera client list JID`, `tessera client revoke JID ID`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Query hooks of client access management.
pub mod hooks {
    /// Credentials modules hold for an account's clients. Payload: the account (localpart,
    /// `String`); answer: `Vec<`[`super::ClientCredential`]`>`.
    pub const CLIENT_CREDENTIALS: &str = "client-credentials";
    /// Revoke every credential a module holds for one client. Payload:
    /// [`super::ClientRevoke`]; answer: `Result<u32, String>`, how many credentials were removed
    /// (before the answer, so a revocation is done when the hook returns), or why they could not
    /// be (a failure must be answered, not raised: the host drops a hook's errors, and a
    /// revocation that silently did nothing would be reported as done).
    pub const CLIENT_REVOKE: &str = "client-revoke";
    /// The account's clients, for the admin socket. Payload: the account (`String`); answer:
    /// `Result<Vec<`[`super::ClientView`]`>, String>` from the module that keeps the list.
    pub const CLIENTS_LIST: &str = "clients-list";
    /// Revoke a client by its listed id, for the admin socket. Payload:
    /// [`super::RevokeRequest`]; answer: [`super::RevokeOutcome`].
    pub const CLIENTS_REVOKE: &str = "clients-revoke";
}

/// Fired when a client's access was revoked (after its credentials were removed and its
/// sessions asked to close). Payload: [`ClientRevoke`].
pub const CLIENT_REVOKED: &str = "client-revoked";

/// How every module names a client: the hex SHA-256 of its SASL2 user-agent id.
pub fn client_ref(user_agent_id: &str) -> String {
    Sha256::digest(user_agent_id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A credential one module holds for one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCredential {
    /// The client ([`client_ref`]).
    pub client: String,
    /// What it is, for people (`fast`: a XEP-0484 token).
    pub kind: String,
    /// When it was issued (ms since the epoch).
    pub issued_at_ms: u64,
    /// When it expires (ms since the epoch).
    pub expires_at_ms: u64,
}

/// Payload of [`hooks::CLIENT_REVOKE`] and [`CLIENT_REVOKED`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRevoke {
    /// The account (localpart).
    pub user: String,
    /// The client ([`client_ref`]).
    pub client: String,
}

/// One client as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientView {
    /// The opaque id to revoke it by.
    pub id: String,
    /// Its SASL2 user-agent id, for the operator (the XMPP list leaves it out: a FAST token is
    /// bound to it, and XEP-0494 has no place for it).
    pub user_agent_id: Option<String>,
    /// The software's name, from SASL2 `<user-agent/>`.
    pub software: Option<String>,
    /// The device's name, likewise.
    pub device: Option<String>,
    /// First authentication (ms since the epoch).
    pub first_seen_ms: u64,
    /// Last authentication (ms since the epoch).
    pub last_seen_ms: u64,
    /// It presented the current password (since the last password change).
    pub password: bool,
    /// Its credentials from other modules (FAST tokens), with their age.
    pub credentials: Vec<ClientCredential>,
    /// Sessions it has now (connected or detached).
    pub sessions: u32,
    /// It has logged in (XEP-0494 type `session`), rather than being known only by a
    /// credential it holds (type `access`).
    pub logged_in: bool,
}

/// Payload of [`hooks::CLIENTS_REVOKE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// The account (localpart).
    pub user: String,
    /// The id from the list.
    pub id: String,
}

/// What a revocation did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevokeOutcome {
    /// Its credentials are gone and its sessions closing: it has no access left.
    Revoked {
        /// Credentials removed.
        credentials: u32,
        /// Sessions closed.
        sessions: u32,
    },
    /// The same, but it has presented the current password, which it may still know: only a
    /// password change keeps it out (XEP-0494's `password-reset-required`).
    PasswordRemains {
        /// Credentials removed.
        credentials: u32,
        /// Sessions closed.
        sessions: u32,
    },
    /// The account has no client with that id (ids of other accounts included).
    NotFound,
    /// Nothing may be taken as revoked: a module could not remove the client's credentials
    /// (the text says why), and its sessions were left alone.
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_named_by_the_sha256_of_its_user_agent_id() {
        // `echo -n d4565fa7-4d72-4749-b3d3-740edbf87770 | sha256sum` (XEP-0388's example id).
        assert_eq!(
            client_ref("d4565fa7-4d72-4749-b3d3-740edbf87770"),
            "e1b3062182d29a28f76b7f032f339dbb6544f1e3af0987342e236e72be4d3d50"
        );
    }
}
