//! SASL exchanges in progress and the logins the host has verified.
//!
//! A mechanism module decides whether a proof is right; the host decides whether that proof
//! still counts. Every exchange records when it began (its *basis*: the credentials it loaded
//! are at most that old). A mechanism's `Success` is accepted only if, when it arrives, the
//! account still exists and its password last changed strictly before the basis; a stream is
//! authenticated only as the account of such a verified success, and the account is checked
//! again when the session is registered (see `c2s::conn`). So a login begun before a password
//! change or an account deletion cannot finish after it, whichever mechanism ran it, and the
//! basis, not the time of issue, is what a token minted by that login is dated from.
//!
//! Exchanges are pinned to the module generation that started them (a hot swap does not move a
//! running exchange) and are dropped with their stream, so an abandoned exchange holds nothing
//! once its connection has gone.

use std::sync::Arc;

use dashmap::DashMap;
use tessera_plugin_api::protocol::CredentialKind;

use crate::runtime::modules::Module;
use crate::store::AccountRecord;

/// One exchange in progress.
#[derive(Debug, Clone)]
struct Running {
    provider: Arc<Module>,
    basis: Basis,
    mechanism: Arc<str>,
}

/// Where an exchange runs, since when, and what kind of credential it checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Basis {
    /// Its stream.
    pub stream: u64,
    /// When it began (ms since the epoch).
    pub basis_ms: u64,
    /// Its mechanism's family.
    pub kind: CredentialKind,
}

/// A success the host accepted for a stream and has not yet turned into a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The account (prepared localpart).
    pub user: String,
    /// When the exchange that proved it began.
    pub basis_ms: u64,
    /// What it proved: only a password login may add a verifier (XEP-0480).
    pub kind: CredentialKind,
    /// An acknowledgement queue a module asked for inline (XEP-0386 Bind 2 `<enable/>`), to be
    /// turned on when the login's resource is bound.
    pub acks_on_bind: Option<tessera_plugin_api::acks::AckSettings>,
}

/// Why a proof no longer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Stale {
    /// The account was deleted (or never existed) by the time the outcome was decided.
    #[error("the account no longer exists")]
    NoAccount,
    /// The password changed after the exchange began.
    #[error("the password changed during authentication")]
    PasswordChanged,
}

/// Whether a proof obtained by an exchange that began at `basis_ms` still counts for `account`
/// as it is now. A change in the same millisecond as the basis counts as after it.
///
/// # Errors
/// [`Stale`] when it does not.
pub fn still_valid(account: Option<&AccountRecord>, basis_ms: u64) -> Result<(), Stale> {
    let account = account.ok_or(Stale::NoAccount)?;
    if account.password_changed_at_ms >= basis_ms {
        return Err(Stale::PasswordChanged);
    }
    Ok(())
}

/// Exchanges by id, and what each stream has running or verified.
#[derive(Debug, Default)]
pub struct Exchanges {
    running: DashMap<u64, Running>,
    /// Stream id → its running exchange ids (one in practice: mod_sasl2 runs one at a time).
    by_stream: DashMap<u64, Vec<u64>>,
    verified: DashMap<u64, Verified>,
}

impl Exchanges {
    /// Record a new exchange pinned to `provider`. Returns exchanges of the same id that were
    /// still running (a module that reuses ids); the caller ends them.
    pub fn begin(
        &self,
        exchange: u64,
        provider: Arc<Module>,
        basis: Basis,
        mechanism: &str,
    ) -> Option<Arc<Module>> {
        let stream = basis.stream;
        self.verified.remove(&stream);
        let running = Running {
            provider,
            basis,
            mechanism: mechanism.into(),
        };
        let old = self.running.insert(exchange, running);
        let mut ids = self.by_stream.entry(stream).or_default();
        if !ids.contains(&exchange) {
            ids.push(exchange);
        }
        old.map(|r| r.provider)
    }

    /// Pin a running exchange to another generation: the one that served its first step when
    /// a hot swap handed the call over.
    pub fn repin(&self, exchange: u64, provider: Arc<Module>) {
        if let Some(mut running) = self.running.get_mut(&exchange) {
            running.provider = provider;
        }
    }

    /// The module a running exchange is pinned to, and its mechanism.
    pub fn provider_and_mechanism(&self, exchange: u64) -> Option<(Arc<Module>, Arc<str>)> {
        self.running
            .get(&exchange)
            .map(|r| (r.provider.clone(), r.mechanism.clone()))
    }

    /// The stream and basis of a running exchange.
    pub fn basis(&self, exchange: u64) -> Option<Basis> {
        self.running.get(&exchange).map(|r| r.basis)
    }

    /// Forget an exchange; returns the module it was pinned to.
    pub fn end(&self, exchange: u64) -> Option<Arc<Module>> {
        let (_, running) = self.running.remove(&exchange)?;
        let stream = running.basis.stream;
        if let Some(mut ids) = self.by_stream.get_mut(&stream) {
            ids.retain(|id| *id != exchange);
        }
        self.by_stream.remove_if(&stream, |_, ids| ids.is_empty());
        Some(running.provider)
    }

    /// Note an accepted success for a stream.
    pub fn verify(&self, stream: u64, verified: Verified) {
        self.verified.insert(stream, verified);
    }

    /// The verified success of a stream, left in place (a task of the login reads it).
    pub fn verified(&self, stream: u64) -> Option<Verified> {
        self.verified.get(&stream).map(|v| v.clone())
    }

    /// Turn on an acknowledgement queue when the verified login of `stream` binds its
    /// resource; `false` when the stream has no verified login.
    pub fn acks_on_bind(
        &self,
        stream: u64,
        settings: tessera_plugin_api::acks::AckSettings,
    ) -> bool {
        match self.verified.get_mut(&stream) {
            Some(mut verified) => {
                verified.acks_on_bind = Some(settings);
                true
            }
            None => false,
        }
    }

    /// The verified success of a stream, consumed.
    pub fn take_verified(&self, stream: u64) -> Option<Verified> {
        self.verified.remove(&stream).map(|(_, v)| v)
    }

    /// The stream ended: forget everything of it; returns its exchanges still running, with
    /// the modules to tell.
    pub fn stream_closed(&self, stream: u64) -> Vec<(u64, Arc<Module>)> {
        self.verified.remove(&stream);
        let ids = self
            .by_stream
            .remove(&stream)
            .map(|(_, ids)| ids)
            .unwrap_or_default();
        ids.into_iter()
            .filter_map(|id| self.running.remove(&id).map(|(id, r)| (id, r.provider)))
            .collect()
    }

    /// Drop every exchange pinned to `module` (a retired generation); returns how many.
    pub fn drop_pinned_to(&self, module: &Arc<Module>) -> usize {
        let ids: Vec<u64> = self
            .running
            .iter()
            .filter(|r| Arc::ptr_eq(&r.provider, module))
            .map(|r| *r.key())
            .collect();
        ids.into_iter().filter(|id| self.end(*id).is_some()).count()
    }

    /// Exchanges running.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// No exchange running.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Streams with a verified success not yet consumed.
    pub fn verified_len(&self) -> usize {
        self.verified.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_api::protocol::ScramSecret;

    fn account(changed_at: u64) -> AccountRecord {
        let secret = ScramSecret {
            salt: vec![1],
            iterations: 4096,
            stored_key: vec![2],
            server_key: vec![3],
        };
        AccountRecord {
            user: "alice".into(),
            scram_sha1: secret.clone(),
            scram_sha256: secret,
            scram_sha512: None,
            email: None,
            created_at_ms: 1,
            password_changed_at_ms: changed_at,
        }
    }

    #[test]
    fn a_proof_counts_only_if_the_password_changed_strictly_before_the_exchange_began() {
        assert_eq!(still_valid(Some(&account(99)), 100), Ok(()));
        assert_eq!(
            still_valid(Some(&account(100)), 100),
            Err(Stale::PasswordChanged)
        );
        assert_eq!(
            still_valid(Some(&account(101)), 100),
            Err(Stale::PasswordChanged)
        );
        assert_eq!(still_valid(None, 100), Err(Stale::NoAccount));
    }
}
