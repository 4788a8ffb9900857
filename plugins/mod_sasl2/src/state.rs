//! The hot-swap state format: the failure counters and each pre-authentication stream's profile
//! lock, failure count and phase. Half-done exchanges are not carried (their mechanism state
//! stays with the old instance, which the host keeps for them); such a stream is marked
//! interrupted, so its next `<response/>` gets `<temporary-auth-failure/>` and the client retries.
//!
//! Format: one version byte ([`STATE_VERSION`]) followed by JSON of [`Saved`]. Another version
//! byte is refused with `PluginErrorKind::BAD_STATE` (the host then keeps the old instance).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tessera_plugin_api::{PluginError, PluginErrorKind};

use crate::machine::{Phase, StreamState};
use crate::ratelimit::LimiterSnapshot;
use crate::wire::Profile;

/// The current format version.
pub(crate) const STATE_VERSION: u8 = 1;

/// Everything carried across a hot swap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Saved {
    /// Failure counters.
    pub(crate) limiter: LimiterSnapshot,
    /// Streams by id.
    pub(crate) streams: Vec<SavedStream>,
}

/// One stream's saved negotiation state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SavedStream {
    /// Stream id.
    pub(crate) id: u64,
    /// Profile lock.
    pub(crate) profile: Option<Profile>,
    /// Failures sent.
    pub(crate) failures: u32,
    /// Whether `<continue/>` was sent.
    pub(crate) continued: bool,
    /// The phase, reduced to what survives a swap.
    pub(crate) phase: SavedPhase,
}

/// A phase as saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SavedPhase {
    /// Nothing running.
    Idle,
    /// An exchange or tasks were running.
    Interrupted,
    /// Authenticated.
    Done,
}

/// Reduce stream states to their saved form.
pub(crate) fn save_streams(
    streams: &HashMap<u64, StreamState>,
    done: &std::collections::HashSet<u64>,
) -> Vec<SavedStream> {
    let done = done.iter().map(|id| SavedStream {
        id: *id,
        profile: None,
        failures: 0,
        continued: false,
        phase: SavedPhase::Done,
    });
    let mut out: Vec<_> = streams
        .iter()
        .map(|(id, st)| SavedStream {
            id: *id,
            profile: st.profile,
            failures: st.failures,
            continued: st.continued,
            phase: match st.phase {
                Phase::Idle => SavedPhase::Idle,
                Phase::Done => SavedPhase::Done,
                Phase::Exchange(_) | Phase::Tasks(_) | Phase::Interrupted => {
                    SavedPhase::Interrupted
                }
            },
        })
        .chain(done)
        .collect();
    out.sort_by_key(|s| s.id);
    out
}

/// Rebuild a stream state.
pub(crate) fn restore_stream(saved: &SavedStream) -> StreamState {
    StreamState {
        profile: saved.profile,
        failures: saved.failures,
        continued: saved.continued,
        phase: match saved.phase {
            SavedPhase::Idle => Phase::Idle,
            SavedPhase::Interrupted => Phase::Interrupted,
            SavedPhase::Done => Phase::Done,
        },
    }
}

/// Serialise.
///
/// # Errors
/// Only if serialisation fails (it cannot for these types).
pub(crate) fn encode(saved: &Saved) -> Result<Vec<u8>, PluginError> {
    let mut out = vec![STATE_VERSION];
    serde_json::to_writer(&mut out, saved)
        .map_err(|e| PluginError::internal(format!("cannot save state: {e}")))?;
    Ok(out)
}

/// Parse saved bytes.
///
/// # Errors
/// [`PluginErrorKind::BAD_STATE`] for an empty buffer, an unknown version or bad content.
pub(crate) fn decode(bytes: &[u8]) -> Result<Saved, PluginError> {
    let bad = |m: String| PluginError::new(PluginErrorKind::BAD_STATE, m);
    match bytes.split_first() {
        Some((&STATE_VERSION, body)) => serde_json::from_slice(body)
            .map_err(|e| bad(format!("mod_sasl2 state v{STATE_VERSION} unreadable: {e}"))),
        Some((version, _)) => Err(bad(format!(
            "mod_sasl2 state format {version} is not supported (expected {STATE_VERSION})"
        ))),
        None => Err(bad("mod_sasl2 state is empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_counters_and_interrupts_running_exchanges() {
        let mut streams = HashMap::new();
        streams.insert(
            7,
            StreamState {
                profile: Some(Profile::Sasl2),
                failures: 2,
                continued: false,
                phase: Phase::Exchange(crate::machine::Exchange::bare(Profile::Sasl2)),
            },
        );
        streams.insert(3, StreamState::default());
        let saved = Saved {
            limiter: LimiterSnapshot {
                users: vec![("alice".into(), vec![1, 2])],
                ips: vec![("192.0.2.1".into(), vec![2])],
                pairs: vec![("alice\u{0}192.0.2.1".into(), vec![2])],
            },
            streams: save_streams(&streams, &std::collections::HashSet::new()),
        };
        let bytes = encode(&saved).expect("encodes");
        assert_eq!(bytes.first(), Some(&STATE_VERSION));
        let back = decode(&bytes).expect("decodes");
        assert_eq!(back, saved);
        assert_eq!(back.streams[0].id, 3);
        let restored = restore_stream(&back.streams[1]);
        assert_eq!(restored.failures, 2);
        assert_eq!(restored.profile, Some(Profile::Sasl2));
        assert!(matches!(restored.phase, Phase::Interrupted));
    }

    #[test]
    fn unknown_version_and_garbage_are_refused_as_bad_state() {
        let err = decode(&[2, b'{', b'}']).expect_err("future version");
        assert_eq!(err.kind, PluginErrorKind::BAD_STATE);
        assert!(err.message.contains("format 2"), "{err}");
        let err = decode(&[STATE_VERSION, b'x']).expect_err("garbage");
        assert_eq!(err.kind, PluginErrorKind::BAD_STATE);
        assert_eq!(
            decode(&[]).map_err(|e| e.kind),
            Err(PluginErrorKind::BAD_STATE)
        );
    }
}
