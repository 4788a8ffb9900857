//! The plugin runtime: everything that loads, calls and replaces modules, and the only place in
//! the host that names abi_stable types.
//!
//! * [`loader`] — two gates (magic symbol, abi_stable layout) and instantiation;
//! * [`services`] — the host services table a plugin calls, with its context pointer;
//! * [`modules`] — live instances and the routing tables built from their registrations;
//! * [`bus`] — the event bus;
//! * [`effects`] — stanzas modules send, applied after the call that sent them;
//! * [`swap`] — load, unload and hot reload on a running server;
//! * [`handover`] — the gate that pauses a generation while a reload takes its state;
//! * [`exchanges`] — SASL exchanges pinned to the module generation that started them.

pub mod bus;
pub mod effects;
pub mod exchanges;
pub mod handover;
pub mod loader;
pub mod modules;
pub mod services;
pub mod swap;
