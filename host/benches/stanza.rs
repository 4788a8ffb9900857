//! Cost of a stanza hook: one message to a full JID run through the `ToFull` hooks of 0, 1 and
//! 5 loaded plugins (real plugin files, the real loader and chain runner); each hook reads the
//! header only and passes, as a filter does. The difference between the rows is what a hooked
//! plugin adds per stanza: the stanza is encoded once per chain, each hook costs one crossing.
//!
//! Run: `cargo bench -p tessera-host --bench stanza`

mod common;

use common::{plugin_file, registry_with};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use tessera_host::router::hooks::{self, Chain, Concern};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::StanzaPoint;

/// A 311-byte chat message, the size the framing benchmark uses.
fn message() -> Element {
    Element::new("message", "jabber:client")
        .with_attr("from", "alice@localhost/phone-1f3a")
        .with_attr("to", "bob@localhost/laptop-9c2e")
        .with_attr("type", "chat")
        .with_attr("id", "m-0001")
        .with_child(
            Element::new("body", "jabber:client")
                .with_text("Hello Bob, this is a message of ordinary length for a chat."),
        )
        .with_child(Element::new(
            "active",
            "http://jabber.org/protocol/chatstates",
        ))
        .with_child(Element::new("request", "urn:xmpp:receipts"))
        .with_child(Element::new("origin-id", "urn:xmpp:sid:0").with_attr("id", "o-0001"))
}

fn bench(c: &mut Criterion) {
    let file = plugin_file();
    let staging = tempfile::tempdir().expect("tempdir");
    let stanza = message();
    let concern = Concern {
        account: Some("bob"),
        session: Some(7),
    };
    let mut group = c.benchmark_group("stanza_hooks");
    for n in [0usize, 1, 5] {
        let registry = registry_with(n, &file, staging.path());
        let routes = registry.routes();
        group.bench_with_input(BenchmarkId::new("plugins", n), &routes, |b, routes| {
            b.iter_batched(
                || stanza.clone(),
                |stanza| match hooks::run(routes, StanzaPoint::ToFull, stanza, concern, None) {
                    Chain::Continue(out) => out,
                    Chain::Stopped { .. } => panic!("the fixture passes"),
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
