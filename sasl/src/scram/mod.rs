//! SCRAM-SHA-1 and SCRAM-SHA-256, with and without `-PLUS` (RFC 5802, RFC 7677), channel binding
//! `tls-exporter` (RFC 9266) and `tls-server-end-point` (RFC 5929 §4).
//!
//! The server is a chain of states, each consumed by value:
//! [`ScramServer`] → [`ScramClientFirst`] → [`ScramServerFirst`] → [`ScramSuccess`].
//! The caller looks the account up between the first two steps with
//! [`ScramClientFirst::username`]; for an unknown account it passes [`fake_credentials`] so the
//! exchange is indistinguishable from a wrong password. Randomness (the server nonce) is a
//! parameter; nothing here reads a clock or an RNG.
//!
//! # Wire behaviour
//!
//! * Messages are the decoded SASL payloads; each is at most [`MAX_MESSAGE_LEN`] bytes of UTF-8.
//! * A leading `m=` fails with `e=extensions-not-supported`; other unknown attributes are ignored.
//! * Channel binding follows protocols.md §7.4: `-PLUS` requires `p=<type>` of a type this
//!   connection can compute; non-PLUS forbids `p=`; `y` fails when a `-PLUS` mechanism was
//!   offered (`e=server-does-support-channel-binding`). `c=` must decode to exactly the GS2
//!   header followed by the cb-data.
//! * Every error has a [`SaslCondition`](crate::SaslCondition) ([`ScramError::condition`]) and
//!   an `e=` value ([`ScramError::server_error_value`]) for the failure's `<text>`.
//!
//! # Example
//!
//! ```
//! use tessera_sasl::scram::{
//!     derive_credentials, ClientBinding, ClientSecret, ScramClient, ScramServer,
//! };
//! use tessera_sasl::{ChannelBindings, Hash};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let creds = derive_credentials(Hash::Sha256, "pencil", b"some salt, 16+ B", 4096)?;
//!
//! let client = ScramClient::new(Hash::Sha256, "user", None, ClientBinding::NotSupported, "cnonce")?;
//! let server = ScramServer::new(Hash::Sha256, false, false, ChannelBindings::none());
//!
//! let server = server.client_first(&client.client_first())?;
//! assert_eq!(server.username(), "user");
//! let (server_first, server) = server.server_first(&creds, &[42u8; 18])?;
//! let (client_final, client) = client.server_first(&server_first, ClientSecret::Password("pencil"))?;
//! let success = server.client_final(&client_final)?;
//! client.server_final(&success.server_final)?;
//! assert_eq!(success.username, "user");
//! # Ok(())
//! # }
//! ```

mod client;
mod credentials;
mod error;
mod parse;
mod server;

#[cfg(test)]
mod tests;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use client::{ClientBinding, ClientKeys, ClientSecret, ScramClient, ScramClientFinal};
pub use credentials::{
    credentials_from_salted, derive_credentials, fake_credentials, salted_password,
    verify_password, ScramCredentials,
};
pub use error::{CredentialError, ScramError, ScramSyntax};
pub use parse::nonce_from_random;
pub use server::{ScramClientFirst, ScramServer, ScramServerFirst, ScramSuccess};

pub use crate::channel_binding::{CbType, ChannelBindings};

/// Maximum size of any SCRAM message in bytes.
pub const MAX_MESSAGE_LEN: usize = 8192;

/// Minimum number of random bytes for the server nonce (≥ 16 required by protocols.md §7.1;
/// 18 bytes give 24 base64 characters without padding).
pub const MIN_NONCE_RANDOM: usize = 18;
