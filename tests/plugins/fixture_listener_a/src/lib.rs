//! Test fixture `fixture_listener_a`: a bus listener at priority 10 that records every event it
//! is delivered and stops propagation when the payload's `value` is `"stop"`.
//!
//! Used by the host's event-bus end-to-end tests together with `fixture_emitter` (which fires
//! the events) and `fixture_listener_b` (priority 0): they check delivery in priority order, that
//! `EventFlow::Stop` hides an event from `fixture_listener_b`, and that host events
//! (`user-password-changed`) reach modules.
//!
//! Hooks `fixture-ping` and `user-password-changed`. Each delivery is stored in the module's
//! global kv as `seen:<counter>` = `{"name": NAME, "payload": PAYLOAD}`;
//! `GET /test/listener_a/seen` answers 200 with a JSON array of them in delivery order.

pub mod listener;

/// Priority 10; stops `value = "stop"`.
#[derive(Debug)]
pub struct A;

impl listener::Behaviour for A {
    const NAME: &'static str = "fixture_listener_a";
    const ROUTE: &'static str = "/test/listener_a";
    const PRIORITY: i32 = 10;
    const STOPS: bool = true;
}

tessera_plugin_api::export_module!(listener::Listener<A>);
