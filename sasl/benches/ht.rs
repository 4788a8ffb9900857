//! Per-login server cost of the HT-SHA-256 mechanisms (draft-schmaus-kitten-sasl-ht-09, used by
//! FAST, XEP-0484) in `tessera-sasl`, with the token already known to the server.
//!
//! `ht_server/<mechanism>`: from the decoded initial response `authcid NUL initiator-hmac` to
//! the server final message: `parse_initial_response`, `HtMechanism::cb_data` (empty for -NONE,
//! 32 bytes of `tls-exporter` data for -EXPR), `verify_initiator` (HMAC-SHA-256 + constant-time
//! compare) and `responder_hmac`. The token has the shape mod_sasl2_fast issues
//! (`secret-token:fast-` + 43 base64url characters, 61 bytes).
//!
//! Not included: mod_sasl2_fast's per-login derivation of the token itself
//! (`HMAC-SHA-256(K, token_id, account, user-agent id, mechanism)`, done for both slots), which
//! is `pub(crate)` in that plugin and not reachable from a library API.
//!
//! Run: `cargo bench -p tessera-sasl --bench ht`
//! (short run: `cargo bench -p tessera-sasl --bench ht -- --warm-up-time 1 --measurement-time 3`)

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tessera_sasl::ht::{
    build_initial_response, parse_initial_response, responder_hmac, verify_initiator, HtMechanism,
};
use tessera_sasl::ChannelBindings;

const TOKEN: &[u8] = b"secret-token:fast-q2Vh3aK0bW9zdmVyeS1sb25nLXRva2VuLWJ5dGVzLTM";

fn ht_server(c: &mut Criterion) {
    assert_eq!(TOKEN.len(), 61);
    let bindings = ChannelBindings {
        tls_exporter: Some(vec![0xc7; 32]),
        tls_server_end_point: None,
    };
    let mut group = c.benchmark_group("ht_server");
    group.throughput(Throughput::Elements(1));
    for mechanism in [HtMechanism::Sha256None, HtMechanism::Sha256Expr] {
        let cb = mechanism.cb_data(&bindings).expect("cb-data").to_vec();
        let initial = build_initial_response("juliet", TOKEN, &cb);
        group.bench_function(mechanism.name(), |b| {
            b.iter(|| {
                let (authcid, proof) = parse_initial_response(black_box(&initial)).expect("parse");
                black_box(authcid);
                let cb_data = mechanism.cb_data(black_box(&bindings)).expect("cb-data");
                assert!(verify_initiator(black_box(TOKEN), cb_data, &proof));
                responder_hmac(TOKEN, cb_data)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, ht_server);
criterion_main!(benches);
