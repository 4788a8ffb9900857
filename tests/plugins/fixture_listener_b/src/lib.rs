//! Test fixture `fixture_listener_b`: a bus listener at priority 0 that records every event it
//! is delivered and always lets it continue.
//!
//! Used by the host's event-bus end-to-end tests together with `fixture_emitter` (which fires
//! the events) and `fixture_listener_a` (priority 10, stops on `value = "stop"`): an event that
//! `fixture_listener_a` stopped must be missing here, and every other event must appear here
//! after it appeared there (priority order). Also shows host events (`user-password-changed`)
//! reach modules, and (with `fixture_panicker`) that a panicking handler does not stop delivery.
//!
//! Hooks `fixture-ping` and `user-password-changed`. Each delivery is stored in the module's
//! global kv as `seen:<counter>` = `{"name": NAME, "payload": PAYLOAD}`;
//! `GET /test/listener_b/seen` answers 200 with a JSON array of them in delivery order.

#[path = "../../fixture_listener_a/src/listener.rs"]
pub mod listener;

/// Priority 0; never stops an event.
#[derive(Debug)]
pub struct B;

impl listener::Behaviour for B {
    const NAME: &'static str = "fixture_listener_b";
    const ROUTE: &'static str = "/test/listener_b";
    const PRIORITY: i32 = 0;
    const STOPS: bool = false;
}

tessera_plugin_api::export_module!(listener::Listener<B>);
