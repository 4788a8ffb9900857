//! Every synchronous call across the boundary, declared once.
//!
//! Each declaration below generates, for its direction:
//! * a trait with one method per call (what the callee implements: [`HostCalls`] is implemented
//!   by the host and by test hosts; [`ModuleCalls`] by the SDK glue of every module);
//! * the kind constants ([`host_call`], [`module_call`]) and their names for logs;
//! * the callee's dispatcher ([`dispatch_host_call`], [`dispatch_module_call`]): kind and
//!   payload bytes in, answer bytes out, unknown kinds refused as
//!   [`crate::PluginErrorKind::UNSUPPORTED`];
//! * the caller's side, for anything that can carry bytes ([`HostTransport`],
//!   [`ModuleTransport`]): the same trait, each method encoding its arguments and decoding the
//!   answer. So [`crate::Host`] has a typed method per host call (inherent, so no trait import
//!   is needed), and the host has one per module call, and neither can drift from the other.
//!
//! Arguments travel as a postcard tuple ([`crate::wire`]); `&str` and [`Bytes`] arguments are
//! decoded without copying (byte arguments are `&Bytes`, serde's byte-string type: a `&[u8]`
//! would be encoded one byte at a time; `Bytes::new(slice)` makes one, and it derefs to `[u8]`). Kinds are never reused; a new call takes a new kind (see the
//! evolution rule in [`crate::wire`]).

use crate::acks::{AckOutcome, AckSettings, AckStatus};
use crate::conditions::StreamCondition;
use crate::error::PluginError;
use crate::protocol::*;
use crate::stanza::{SessionView, StanzaHeader, Verdict};
use crate::wire::{self, Bytes};
use crate::xml::Element;

/// Declares one direction of calls; see the module documentation for what it generates.
macro_rules! declare_calls {
    (
        $(#[$tmeta:meta])*
        pub trait $trait:ident;
        $(#[$xmeta:meta])*
        pub trait $transport:ident;
        $(#[$kmeta:meta])*
        pub mod $kinds:ident;
        $(#[$dmeta:meta])*
        pub fn $dispatch:ident;
        $(inherent $ity:ty;)?
        calls $calls:tt
    ) => {
        declare_calls!(@trait [$(#[$tmeta])*] $trait $calls);
        declare_calls!(@kinds [$(#[$kmeta])*] $kinds $calls);
        declare_calls!(@client [$(#[$xmeta])*] $trait $transport $calls);
        declare_calls!(@dispatch [$(#[$dmeta])*] $trait $dispatch $calls);
        $(declare_calls!(@inherent $ity, $trait $calls);)?
    };

    (@trait [$($tmeta:tt)*] $trait:ident {
        $($(#[$meta:meta])* $kind:literal => fn $method:ident($($arg:ident : $ty:ty),* $(,)?) -> $ans:ty;)+
    }) => {
        $($tmeta)*
        pub trait $trait {
            $(
                $(#[$meta])*
                ///
                /// # Errors
                /// The callee's refusal or failure; a peer too old for the call answers
                /// [`crate::PluginErrorKind::UNSUPPORTED`].
                fn $method(&self, $($arg: $ty),*) -> Result<$ans, PluginError>;
            )+
        }
    };

    (@kinds [$($kmeta:tt)*] $kinds:ident {
        $($(#[$meta:meta])* $kind:literal => fn $method:ident($($arg:ident : $ty:ty),* $(,)?) -> $ans:ty;)+
    }) => {
        $($kmeta)*
        #[allow(non_upper_case_globals)]
        pub mod $kinds {
            $(
                #[doc = concat!("Kind of `", stringify!($method), "`.")]
                pub const $method: u32 = $kind;
            )+

            /// The call's name, for logs (`unknown` for a kind this build does not know).
            pub fn name(kind: u32) -> &'static str {
                match kind {
                    $($kind => stringify!($method),)+
                    _ => "unknown",
                }
            }
        }
    };

    (@client [$($xmeta:tt)*] $trait:ident $transport:ident {
        $($(#[$meta:meta])* $kind:literal => fn $method:ident($($arg:ident : $ty:ty),* $(,)?) -> $ans:ty;)+
    }) => {
        $($xmeta)*
        pub trait $transport {
            /// Carry one encoded call to the callee and bring back its encoded answer.
            ///
            /// # Errors
            /// The callee's error, or a transport failure.
            fn call_raw(&self, kind: u32, payload: Vec<u8>) -> Result<Vec<u8>, PluginError>;

            /// The callee answered, but its answer does not decode (a bug on its side): the
            /// caller gets the error too; a transport may log or count it.
            fn answer_failed(&self, _kind: u32, _error: &PluginError) {}
        }

        impl<C: $transport + ?Sized> $trait for C {
            $(
                fn $method(&self, $($arg: $ty),*) -> Result<$ans, PluginError> {
                    let payload = wire::encode(&($($arg,)*))?;
                    let answer = self.call_raw($kind, payload)?;
                    wire::decode(concat!("answer to ", stringify!($method)), &answer)
                        .inspect_err(|e| self.answer_failed($kind, e))
                }
            )+
        }
    };

    (@dispatch [$($dmeta:tt)*] $trait:ident $dispatch:ident {
        $($(#[$meta:meta])* $kind:literal => fn $method:ident($($arg:ident : $ty:ty),* $(,)?) -> $ans:ty;)+
    }) => {
        $($dmeta)*
        ///
        /// # Errors
        /// An unknown kind ([`crate::PluginErrorKind::UNSUPPORTED`]), arguments that do not
        /// decode ([`crate::PluginErrorKind::BAD_REQUEST`]), or the callee's own error.
        pub fn $dispatch<T: $trait + ?Sized>(
            callee: &T,
            kind: u32,
            payload: &[u8],
        ) -> Result<Vec<u8>, PluginError> {
            match kind {
                $(
                    $kind => {
                        let ($($arg,)*): ($($ty,)*) = wire::decode(stringify!($method), payload)?;
                        wire::encode(&callee.$method($($arg),*)?)
                    }
                )+
                _ => Err(PluginError::unsupported(format!("call kind {kind}"))),
            }
        }
    };

    (@inherent $ity:ty, $trait:ident {
        $($(#[$meta:meta])* $kind:literal => fn $method:ident($($arg:ident : $ty:ty),* $(,)?) -> $ans:ty;)+
    }) => {
        /// The typed calls, as inherent methods (no trait import needed).
        impl $ity {
            $(
                $(#[$meta])*
                ///
                /// # Errors
                /// The callee's refusal or failure.
                pub fn $method(&self, $($arg: $ty),*) -> Result<$ans, PluginError> {
                    <Self as $trait>::$method(self, $($arg),*)
                }
            )+
        }
    };
}

declare_calls! {
    /// What a module can ask of the host. [`crate::Host`] implements it (through
    /// [`HostTransport`]), so every method here is a method of the module's `host`.
    pub trait HostCalls;
    /// Anything that carries encoded host calls: the ABI in a plugin, the in-memory host in
    /// tests. Implementing it gives [`HostCalls`].
    pub trait HostTransport;
    /// Kinds of [`HostCalls`].
    pub mod host_call;
    /// The host's side of [`HostCalls`]: decode, call, encode.
    pub fn dispatch_host_call;
    inherent crate::sdk::Host;
    calls {
        /// Facts about the server.
        1 => fn host_info() -> HostInfo;
        /// Whether an account exists.
        2 => fn user_exists(user: &str) -> bool;
        /// An account's SCRAM verifiers (never the password).
        3 => fn get_credentials(user: &str) -> Option<AccountCredentials>;
        /// Set a password: the one way a password changes. The host fires
        /// `user-password-changed`; `origin_stream` is spared from `<reset/>`.
        4 => fn set_password(user: &str, password: &str, origin_stream: Option<u64>) -> ();
        /// The account's stored email address.
        5 => fn get_email(user: &str) -> Option<String>;
        /// Read a key of this module's store.
        6 => fn kv_get(scope: KvScope<'_>, key: &str) -> Option<String>;
        /// Write a key of this module's store.
        7 => fn kv_put(scope: KvScope<'_>, key: &str, value: &str) -> ();
        /// Delete a key; answers whether it existed.
        8 => fn kv_delete(scope: KvScope<'_>, key: &str) -> bool;
        /// The (key, value) pairs whose key starts with `prefix`.
        9 => fn kv_list(scope: KvScope<'_>, prefix: &str) -> Vec<(String, String)>;
        /// An account's connected sessions.
        10 => fn list_sessions(user: &str) -> Vec<SessionInfo>;
        /// Close an account's sessions with a stream error, except `except_stream`; answers
        /// how many were closed.
        11 => fn close_sessions(
            user: &str,
            condition: StreamCondition,
            except_stream: Option<u64>,
        ) -> u64;
        /// Queue a mail; the outcome arrives as the `mail-result` event with the answered id.
        12 => fn send_mail(mail: Mail) -> u64;
        /// Be called back with `timer` after `delay_ms`; answers the timer id.
        13 => fn set_timer(delay_ms: u64, tag: &str) -> u64;
        /// Call a synchronous query hook on every module that registered it, in priority
        /// order; answers the replies of the modules that contributed one (each encoded as the
        /// hook documents).
        14 => fn call_hook(name: &str, payload: &Bytes) -> Vec<Vec<u8>>;
        /// The mechanisms available on a stream for a SASL profile, in offer order.
        15 => fn mechanisms(stream: StreamInfo, profile: SaslProfile) -> Vec<MechanismSpec>;
        /// Start an exchange with whichever module implements the mechanism.
        16 => fn mechanism_start(start: MechanismStart) -> MechanismStep;
        /// Continue an exchange.
        17 => fn mechanism_step(response: MechanismResponse) -> MechanismStep;
        /// End an exchange.
        18 => fn mechanism_end(exchange: u64) -> ();
        /// A 32-byte key derived from the server secret (kept outside the store) for `label`.
        19 => fn derive_secret(label: &str) -> Vec<u8>;
        /// Route a stanza as the server does, after the current call (see
        /// [`crate::stanza`]): its `from` must be the server or a local JID; the delivery
        /// hooks of local recipients run, the client hooks of no one.
        20 => fn route(stanza: Element) -> ();
        /// Write a stanza to one session (after the current call, through that session's
        /// filters); answers whether the session exists.
        21 => fn send_to_session(stream: u64, stanza: Element) -> bool;
        /// This module's value under `key` for a session, if any (dropped with the session).
        22 => fn session_get(stream: u64, key: &str) -> Option<Vec<u8>>;
        /// Set (`Some`) or remove (`None`) this module's value under `key` for a session;
        /// answers whether the session exists.
        23 => fn session_set(stream: u64, key: &str, value: Option<&Bytes>) -> bool;
        /// Attach this module to (or detach it from) a session's
        /// [`crate::StanzaPoint::SessionOut`] hooks; answers whether the session exists.
        24 => fn session_attach(stream: u64, attached: bool) -> bool;
        /// An account's sessions.
        25 => fn account_sessions(user: &str) -> Vec<SessionView>;
        /// The server's XEP-0030 identities and features, as the loaded modules declared them.
        26 => fn disco_info() -> DiscoInfo;
        /// Append an entry to this module's archive `archive` of an account; answers its id
        /// (unique, in append order). The account's archives go when the account is deleted.
        27 => fn archive_append(
            archive: &str,
            user: &str,
            with: &str,
            at_ms: u64,
            data: &Bytes,
        ) -> String;
        /// Read a page of an account's archive.
        28 => fn archive_query(archive: &str, user: &str, query: ArchiveQuery) -> ArchivePage;
        /// Delete an account's entries (all of them, or those older than `before_ms`); answers
        /// how many.
        29 => fn archive_delete(archive: &str, user: &str, before_ms: Option<u64>) -> u64;
        /// Read and delete, in one step, up to `limit` of an account's oldest entries (offline
        /// delivery: two sessions taking at once never both get an entry).
        30 => fn archive_take(archive: &str, user: &str, limit: u32) -> Vec<ArchiveItem>;
        /// How many entries an account's archive holds (quotas).
        31 => fn archive_count(archive: &str, user: &str) -> u64;
        /// Create an account (XEP-0077 registration); answers its canonical username.
        /// [`crate::PluginErrorKind::CONFLICT`] when it exists,
        /// [`crate::PluginErrorKind::BAD_REQUEST`] for a bad username, password or address
        /// (the message says which).
        32 => fn create_account(user: &str, password: &str, email: Option<&str>) -> String;
        /// Delete an account: its data, tokens and archives go, every session of it is closed
        /// with `<not-authorized/>`, and `user-deleted` is fired.
        /// [`crate::PluginErrorKind::NOT_FOUND`] when there is no such account.
        33 => fn delete_account(user: &str) -> ();
        /// Set a session's presence for delivery (RFC 6121 §8.5): available with this
        /// priority (`Some`), or unavailable (`None`); answers whether the session exists.
        /// Messages to the bare JID go to available sessions only.
        34 => fn session_presence(stream: u64, priority: Option<i8>) -> bool;
        /// Keep a bound session for `keep_ms` after its connection is lost (`None`: end it with
        /// the connection, the default): it stays detached, with its JID, presence and module
        /// state, until a stream takes it over ([`crate::protocol::StreamAction::Resume`]), the
        /// time runs out, or the host closes it (password change, deletion, shutdown,
        /// [`crate::HostCalls::close_session`]). The host fires `session-detached`, and
        /// `session-closed` when it ends. A connection closed cleanly (`</stream:stream>`) or
        /// by a stream error is never kept; at most one day is kept. While detached, stanzas
        /// for it reach its `SessionOut` hooks if a module is attached, else it counts as
        /// absent for delivery. Answers whether the session exists.
        35 => fn session_keep(stream: u64, keep_ms: Option<u64>) -> bool;
        /// Close one session (detached or connected) with a stream error; answers whether it
        /// existed.
        36 => fn close_session(stream: u64, condition: StreamCondition) -> bool;
        /// Append an entry to this module's archive `archive` of an account if the archive
        /// stays within `bounds`; counted and appended in one step, so two appends at once
        /// cannot both take the last place (quotas).
        37 => fn archive_append_within(
            archive: &str,
            user: &str,
            with: &str,
            at_ms: u64,
            data: &Bytes,
            bounds: ArchiveBounds,
        ) -> ArchiveAppend;
        /// Apply several writes of this module's store in one step: all of them or none
        /// (and one commit to disk instead of one each).
        38 => fn kv_write(scope: KvScope<'_>, writes: Vec<KvWrite>) -> ();
        /// Add a SCRAM verifier the account of `stream` lacks, from a SaltedPassword the client
        /// computed during its login (XEP-0480). Only while the stream's login is verified and
        /// not yet a session, only after a password mechanism, only if the password has not
        /// changed since that login began, and never over an existing verifier: checked and
        /// written in one step.
        39 => fn add_scram_verifier(stream: u64, upgrade: ScramUpgrade) -> VerifierAdded;
        /// Add `by` to this module's counter `counter`, with one optional `(name, value)`
        /// label: `/metrics` shows it as `tessera_mod_<module>_<counter>_total`. Names are
        /// `[a-z][a-z0-9_]*` (at most 48 bytes, not ending in `_total`), values at most 64
        /// printable characters; a module has at most 32 counters of 16 label values each.
        /// Metrics are best effort: a module should ignore a refusal (an older host answers
        /// `UNSUPPORTED`).
        40 => fn count(counter: &str, label: Option<(&str, &str)>, by: u64) -> ();
        /// Turn on the host's XEP-0198 acknowledgement queue for a bound session (see
        /// [`crate::acks`]): from now on stanzas are counted both ways and each written one
        /// is kept until acknowledged, and the session is kept `settings.keep_ms` after its
        /// connection is lost. Called for a stream that is being bound in this very call
        /// (Bind 2's `sasl2-bind2-bound` hook), it takes effect when the resource is bound.
        /// Answers `false` when there is no such stream or its queue is on already.
        41 => fn acks_enable(stream: u64, settings: AckSettings) -> bool;
        /// A session's acknowledgement counters (`None`: no such session, or no queue).
        42 => fn acks_status(stream: u64) -> Option<AckStatus>;
        /// The client's `<a h/>`: release what it acknowledges.
        43 => fn acks_ack(stream: u64, h: u32) -> AckOutcome;
    }
}

declare_calls! {
    /// What the host can ask of a module. The SDK implements it for every [`crate::Module`];
    /// the host calls it through [`ModuleTransport`].
    pub trait ModuleCalls;
    /// Anything that carries encoded module calls (the host's handle on a loaded module).
    pub trait ModuleTransport;
    /// Kinds of [`ModuleCalls`].
    pub mod module_call;
    /// The module's side of [`ModuleCalls`]: decode, call, encode.
    pub fn dispatch_module_call;
    calls {
        /// What the host should route to the module; asked once after instantiation.
        1 => fn registrations() -> Registrations;
        /// Children for `<stream:features/>`.
        2 => fn stream_features(stream: StreamInfo) -> Vec<Element>;
        /// A registered top-level stream element.
        3 => fn stream_element(request: StreamElement) -> Vec<StreamAction>;
        /// An IQ in a registered namespace; `None` lets the host answer
        /// `<service-unavailable/>`.
        4 => fn iq(request: IqRequest) -> Option<Element>;
        /// Start a SASL exchange of a registered mechanism.
        5 => fn mechanism_start(start: MechanismStart) -> MechanismStep;
        /// Continue a SASL exchange.
        6 => fn mechanism_step(response: MechanismResponse) -> MechanismStep;
        /// An exchange ended (success, failure, abort or disconnect).
        7 => fn mechanism_end(exchange: u64) -> ();
        /// A request on a registered HTTP route.
        8 => fn http(request: HttpRequest) -> HttpResponse;
        /// A registered synchronous query hook; `None` contributes nothing.
        9 => fn hook(name: &str, payload: &Bytes) -> Option<Vec<u8>>;
        /// A timer the module set fired.
        10 => fn timer(timer: TimerFired) -> ();
        /// A stanza at one of the module's [`crate::StanzaHook`]s.
        11 => fn stanza(header: StanzaHeader<'_>, body: &Bytes) -> Verdict;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A callee that records what it was asked.
    #[derive(Default)]
    struct Recorder {
        seen: RefCell<Vec<String>>,
    }

    impl ModuleCalls for Recorder {
        fn registrations(&self) -> Result<Registrations, PluginError> {
            Ok(Registrations::default())
        }
        fn stream_features(&self, stream: StreamInfo) -> Result<Vec<Element>, PluginError> {
            self.seen
                .borrow_mut()
                .push(format!("features {}", stream.id));
            Ok(vec![Element::new("x", "urn:x")])
        }
        fn stream_element(&self, _: StreamElement) -> Result<Vec<StreamAction>, PluginError> {
            Err(PluginError::unsupported("stream-element"))
        }
        fn iq(&self, _: IqRequest) -> Result<Option<Element>, PluginError> {
            Ok(None)
        }
        fn mechanism_start(&self, _: MechanismStart) -> Result<MechanismStep, PluginError> {
            Err(PluginError::unsupported("mechanism-start"))
        }
        fn mechanism_step(&self, _: MechanismResponse) -> Result<MechanismStep, PluginError> {
            Err(PluginError::unsupported("mechanism-step"))
        }
        fn mechanism_end(&self, exchange: u64) -> Result<(), PluginError> {
            self.seen.borrow_mut().push(format!("end {exchange}"));
            Ok(())
        }
        fn http(&self, _: HttpRequest) -> Result<HttpResponse, PluginError> {
            Err(PluginError::unsupported("http"))
        }
        fn hook(&self, name: &str, payload: &Bytes) -> Result<Option<Vec<u8>>, PluginError> {
            self.seen
                .borrow_mut()
                .push(format!("hook {name} {payload:?}"));
            Ok(Some(payload.iter().rev().copied().collect()))
        }
        fn timer(&self, _: TimerFired) -> Result<(), PluginError> {
            Ok(())
        }
        fn stanza(&self, header: StanzaHeader<'_>, body: &Bytes) -> Result<Verdict, PluginError> {
            self.seen
                .borrow_mut()
                .push(format!("stanza {} {}", header.hook, body.len()));
            Ok(Verdict::Drop)
        }
    }

    /// A caller whose transport is the callee's dispatcher, as across the ABI.
    struct Loopback<'a>(&'a Recorder);

    impl ModuleTransport for Loopback<'_> {
        fn call_raw(&self, kind: u32, payload: Vec<u8>) -> Result<Vec<u8>, PluginError> {
            dispatch_module_call(self.0, kind, &payload)
        }
    }

    #[test]
    fn a_call_reaches_the_callee_typed_and_its_answer_comes_back() {
        let callee = Recorder::default();
        let caller = Loopback(&callee);
        let info = StreamInfo {
            id: 42,
            ..StreamInfo::default()
        };
        let features = caller.stream_features(info).unwrap();
        assert_eq!(features, vec![Element::new("x", "urn:x")]);
        caller.mechanism_end(7).unwrap();
        let echoed = caller
            .hook("sasl2-success", Bytes::new(&[1, 2, 3]))
            .unwrap();
        assert_eq!(echoed, Some(vec![3, 2, 1]));
        assert_eq!(
            *callee.seen.borrow(),
            ["features 42", "end 7", "hook sasl2-success [1, 2, 3]"]
        );
    }

    #[test]
    fn an_unknown_kind_is_unsupported_and_bad_arguments_are_bad_requests() {
        let callee = Recorder::default();
        let err = dispatch_module_call(&callee, 9999, &[]).unwrap_err();
        assert!(err.is_unsupported(), "{err}");
        assert_eq!(err.message, "call kind 9999");
        let err = dispatch_module_call(&callee, module_call::mechanism_end, &[0xff]).unwrap_err();
        assert_eq!(err.kind, crate::PluginErrorKind::BAD_REQUEST, "{err}");
        assert!(err.message.starts_with("mechanism_end: "), "{err}");
        assert!(
            callee.seen.borrow().is_empty(),
            "nothing reached the callee"
        );
        assert_eq!(module_call::name(module_call::hook), "hook");
        assert_eq!(host_call::name(host_call::kv_get), "kv_get");
        assert_eq!(host_call::name(77_777), "unknown");
    }
}
