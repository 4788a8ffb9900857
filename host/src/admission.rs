//! Connection admission: how many client (c2s) and HTTPS connections the server takes, in all
//! and per client address, derived from the process's descriptor limit so that connections can
//! never use the descriptors the store, the plugins, the mailer and the admin socket need.
//!
//! The budget is the soft `RLIMIT_NOFILE` (raised to the hard limit at start) less
//! [`RESERVED_DESCRIPTORS`]. HTTPS gets its own share (its cap, at most an eighth of the budget),
//! c2s the rest; a configured cap above its share is lowered, and the start-up log says so.
//! Each address (IPv6 by /64) may hold at most `max_connections_per_ip` of each kind. A refused
//! connection is closed at once, which frees its descriptor and tells the peer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept out of the connection budget: stdio, listeners, the admin socket and its
/// clients, the store (database, WAL, shared memory), plugin files and their staged copies, the
/// runtime's epoll and event descriptors, outgoing mail.
pub const RESERVED_DESCRIPTORS: usize = 128;

/// Which listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An XMPP client connection (STARTTLS or direct TLS).
    C2s,
    /// An HTTPS connection.
    Https,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The listener's cap is reached.
    #[error("connection limit of {0} reached")]
    Full(usize),
    /// The address holds its cap already.
    #[error("address holds {0} connections already")]
    PerAddress(usize),
}

/// The caps in force (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Client connections.
    pub c2s: usize,
    /// HTTPS connections.
    pub https: usize,
    /// Connections of each kind per address.
    pub per_ip: usize,
    /// The descriptor limit they were derived from.
    pub descriptors: usize,
}

/// The caps for a descriptor limit and the configured values (pure, for tests).
pub fn caps(descriptors: usize, c2s: usize, https: usize, per_ip: usize) -> Caps {
    let budget = descriptors.saturating_sub(RESERVED_DESCRIPTORS).max(2);
    let https = https.min(budget / 8).max(1);
    let c2s = c2s.min(budget - https).max(1);
    Caps {
        c2s,
        https,
        per_ip: per_ip.max(1),
        descriptors,
    }
}

/// Both listeners' counters.
#[derive(Debug)]
pub struct Admission {
    caps: Caps,
    c2s: Arc<Semaphore>,
    https: Arc<Semaphore>,
    per_ip: Arc<DashMap<(Kind, String), usize>>,
}

/// An admitted connection: holds its place until dropped.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
    per_ip: Arc<DashMap<(Kind, String), usize>>,
    key: (Kind, String),
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(mut n) = self.per_ip.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        self.per_ip.remove_if(&self.key, |_, n| *n == 0);
    }
}

impl Admission {
    /// Counters for these caps.
    pub fn new(caps: Caps) -> Self {
        Self {
            caps,
            c2s: Arc::new(Semaphore::new(caps.c2s)),
            https: Arc::new(Semaphore::new(caps.https)),
            per_ip: Arc::default(),
        }
    }

    /// The caps in force.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// Admit a connection from `ip`, or say why not.
    ///
    /// # Errors
    /// [`Refusal`] when a cap is reached.
    pub fn admit(&self, kind: Kind, ip: IpAddr) -> Result<Ticket, Refusal> {
        let (semaphore, cap) = match kind {
            Kind::C2s => (&self.c2s, self.caps.c2s),
            Kind::Https => (&self.https, self.caps.https),
        };
        let permit = semaphore
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Full(cap))?;
        let key = (kind, tessera_plugin_api::names::ip_key(ip));
        {
            let mut n = self.per_ip.entry(key.clone()).or_insert(0);
            if *n >= self.caps.per_ip {
                return Err(Refusal::PerAddress(*n));
            }
            *n += 1;
        }
        Ok(Ticket {
            _permit: permit,
            per_ip: self.per_ip.clone(),
            key,
        })
    }

    /// The next admitted connection on `listener`, with the ticket that holds its place. Accept
    /// errors (descriptor exhaustion above all) wait as `backoff` says instead of spinning; a
    /// connection over a cap is closed at once, which frees its descriptor and tells the peer.
    pub async fn accept(
        &self,
        listener: &TcpListener,
        kind: Kind,
        backoff: &mut AcceptBackoff,
    ) -> (TcpStream, SocketAddr, Ticket) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => {
                    backoff.reset();
                    x
                }
                Err(e) => {
                    let wait = backoff.failed();
                    let wait_ms = wait.as_millis() as u64;
                    tracing::warn!(?kind, error = %e, wait_ms, "accept failed");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            };
            match self.admit(kind, peer.ip()) {
                Ok(ticket) => return (tcp, peer, ticket),
                Err(refusal) => tracing::debug!(?kind, %peer, %refusal, "connection refused"),
            }
        }
    }

    /// Connections held now (c2s, HTTPS).
    pub fn in_use(&self) -> (usize, usize) {
        (
            self.caps.c2s - self.c2s.available_permits(),
            self.caps.https - self.https.available_permits(),
        )
    }
}

/// Raise the soft descriptor limit to the hard one; returns the limit now in force.
pub fn raise_descriptor_limit() -> usize {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the descriptor limit; assuming 1024");
            1024
        }
    }
}

/// How long an accept loop waits after an accept error: descriptor exhaustion (EMFILE,
/// ENFILE) and memory shortage repeat at once if retried at once, so the wait doubles from
/// 10 ms up to 1 s while errors go on; a successful accept resets it.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    next_ms: u64,
}

impl AcceptBackoff {
    /// The wait after one more error.
    pub fn failed(&mut self) -> std::time::Duration {
        self.next_ms = (self.next_ms * 2).clamp(10, 1_000);
        std::time::Duration::from_millis(self.next_ms)
    }

    /// An accept succeeded.
    pub fn reset(&mut self) {
        self.next_ms = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_come_from_the_descriptor_limit_with_a_reserve() {
        // The finding: 100,000 connections allowed under a 1,100-descriptor limit.
        let c = caps(1_100, 100_000, 512, 256);
        assert_eq!(c.https, (1_100 - RESERVED_DESCRIPTORS) / 8);
        assert_eq!(c.c2s + c.https, 1_100 - RESERVED_DESCRIPTORS);
        // A configured cap below the budget is kept.
        let c = caps(1 << 20, 5_000, 100, 8);
        assert_eq!((c.c2s, c.https, c.per_ip), (5_000, 100, 8));
        // A tiny limit still admits something.
        let c = caps(10, 100, 100, 0);
        assert!(c.c2s >= 1 && c.https >= 1 && c.per_ip == 1);
    }

    #[test]
    fn one_address_cannot_take_every_place_and_places_come_back() {
        let admission = Admission::new(caps(1 << 20, 10, 10, 3));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let b2: IpAddr = "2001:db8::ffff".parse().unwrap();
        let held: Vec<_> = (0..3)
            .map(|_| admission.admit(Kind::C2s, a).unwrap())
            .collect();
        assert_eq!(
            admission.admit(Kind::C2s, a).unwrap_err(),
            Refusal::PerAddress(3)
        );
        // Other kinds and other addresses are separate; a /64 is one address.
        let _h = admission.admit(Kind::Https, a).unwrap();
        let _b: Vec<_> = (0..3)
            .map(|_| admission.admit(Kind::C2s, b).unwrap())
            .collect();
        assert_eq!(
            admission.admit(Kind::C2s, b2).unwrap_err(),
            Refusal::PerAddress(3)
        );
        assert_eq!(admission.in_use(), (6, 1));
        drop(held);
        assert_eq!(admission.in_use(), (3, 1));
        assert!(admission.admit(Kind::C2s, a).is_ok());
    }

    #[test]
    fn the_global_cap_refuses_when_full() {
        let admission = Admission::new(caps(1 << 20, 2, 2, 100));
        let ip = |n: u8| IpAddr::from([192, 0, 2, n]);
        let _one = admission.admit(Kind::C2s, ip(1)).unwrap();
        let _two = admission.admit(Kind::C2s, ip(2)).unwrap();
        assert_eq!(
            admission.admit(Kind::C2s, ip(3)).unwrap_err(),
            Refusal::Full(2)
        );
    }

    #[test]
    fn accept_errors_back_off_up_to_a_second() {
        let mut b = AcceptBackoff::default();
        let waits: Vec<u64> = (0..9).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.failed().as_millis(), 10);
    }
}
