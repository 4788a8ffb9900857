//! Per-login server cost of SCRAM and PLAIN in `tessera-sasl`, plus (separately) the one-time
//! PBKDF2 key derivation.
//!
//! * `scram_server_exchange/*`: one whole server side of a SCRAM exchange with the account's
//!   stored keys already loaded: `ScramServer::new` → `client_first` (parse, SASLprep of the
//!   username) → `server_first` (from 18 nonce bytes) → `client_final` (proof verification) →
//!   server-final `v=`. No PBKDF2: that is what the server does per login. The client messages
//!   are precomputed (decoded payloads; the base64/XML layer is not included). Variants:
//!   SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-256-PLUS with 32 bytes of `tls-exporter` data.
//! * `plain_verify/SHA-256-10000`: PLAIN, also per login: `parse_plain` plus `verify_password`
//!   against the stored SCRAM-SHA-256 verifier, i.e. SASLprep + PBKDF2-HMAC-SHA-256 at 10 000
//!   iterations (`tessera_host::accounts::SCRAM_ITERATIONS`, what mod_sasl2 checks PLAIN with).
//! * `scram_key_derivation_4096/*`: **not a per-login server cost.** PBKDF2 at 4096 iterations
//!   (`derive_credentials`), paid once per password set/change on the server, or by a client
//!   that has no cached keys.
//!
//! Run: `cargo bench -p tessera-sasl --bench scram`
//! (short run: `cargo bench -p tessera-sasl --bench scram -- --warm-up-time 1 --measurement-time 3`)

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tessera_sasl::plain::parse_plain;
use tessera_sasl::scram::{
    derive_credentials, verify_password, ClientBinding, ClientKeys, ClientSecret, ScramClient,
    ScramCredentials, ScramServer,
};
use tessera_sasl::{CbType, ChannelBindings, Hash};

const PASSWORD: &str = "correct horse battery staple";
const SALT: &[u8] = b"0123456789abcdef";
/// Iteration count of Tessera's stored verifiers (`tessera_host::accounts::SCRAM_ITERATIONS`).
const STORED_ITERATIONS: u32 = 10_000;
/// The server nonce randomness (18 bytes, `MIN_NONCE_RANDOM`); fixed so client-final can be
/// precomputed.
const SERVER_RANDOM: [u8; 18] = [0x5a; 18];
const CLIENT_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

/// One SCRAM variant with everything the client sends precomputed.
struct Case {
    label: &'static str,
    hash: Hash,
    plus: bool,
    bindings: ChannelBindings,
    creds: ScramCredentials,
    client_first: Vec<u8>,
    client_final: Vec<u8>,
}

fn case(label: &'static str, hash: Hash, cb: Option<Vec<u8>>) -> Case {
    let creds = derive_credentials(hash, PASSWORD, SALT, STORED_ITERATIONS).expect("derive");
    let keys = ClientKeys::derive(hash, PASSWORD, SALT, STORED_ITERATIONS).expect("keys");
    let (binding, bindings) = match &cb {
        Some(data) => (
            ClientBinding::Bound {
                cb_type: CbType::TlsExporter,
                data: data.clone(),
            },
            ChannelBindings {
                tls_exporter: Some(data.clone()),
                tls_server_end_point: None,
            },
        ),
        None => (ClientBinding::NotSupported, ChannelBindings::none()),
    };
    let plus = cb.is_some();
    let client = ScramClient::new(hash, "juliet", None, binding, CLIENT_NONCE).expect("client");
    let client_first = client.client_first();
    let server = ScramServer::new(hash, plus, plus, bindings.clone())
        .client_first(&client_first)
        .expect("client-first");
    let (server_first, server) = server
        .server_first(&creds, &SERVER_RANDOM)
        .expect("server-first");
    let (client_final, client) = client
        .server_first(&server_first, ClientSecret::Keys(&keys))
        .expect("client-final");
    let success = server.client_final(&client_final).expect("verify");
    client
        .server_final(&success.server_final)
        .expect("server-final");
    Case {
        label,
        hash,
        plus,
        bindings,
        creds,
        client_first,
        client_final,
    }
}

fn scram_server_exchange(c: &mut Criterion) {
    let cases = [
        case("SCRAM-SHA-1", Hash::Sha1, None),
        case("SCRAM-SHA-256", Hash::Sha256, None),
        case("SCRAM-SHA-256-PLUS", Hash::Sha256, Some(vec![0xc7; 32])),
    ];
    let mut group = c.benchmark_group("scram_server_exchange");
    group.throughput(Throughput::Elements(1));
    for case in &cases {
        group.bench_function(case.label, |b| {
            b.iter(|| {
                let server =
                    ScramServer::new(case.hash, case.plus, case.plus, case.bindings.clone());
                let server = server
                    .client_first(black_box(&case.client_first))
                    .expect("client-first");
                let (server_first, server) = server
                    .server_first(black_box(&case.creds), black_box(&SERVER_RANDOM))
                    .expect("server-first");
                black_box(server_first);
                let success = server
                    .client_final(black_box(&case.client_final))
                    .expect("proof");
                black_box(success.server_final)
            });
        });
    }
    group.finish();
}

fn plain_verify(c: &mut Criterion) {
    let creds =
        derive_credentials(Hash::Sha256, PASSWORD, SALT, STORED_ITERATIONS).expect("derive");
    let message = format!("\0juliet\0{PASSWORD}").into_bytes();
    let mut group = c.benchmark_group("plain_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("SHA-256", STORED_ITERATIONS), |b| {
        b.iter(|| {
            let plain = parse_plain(black_box(&message)).expect("parse");
            let ok = verify_password(black_box(&creds), &plain.password);
            assert!(ok);
            ok
        });
    });
    group.finish();
}

fn scram_key_derivation(c: &mut Criterion) {
    // Not per login: PBKDF2 is paid when a password is set, or by a client without cached keys.
    let mut group = c.benchmark_group("scram_key_derivation_4096");
    group.sample_size(20);
    for hash in [Hash::Sha1, Hash::Sha256, Hash::Sha512] {
        group.bench_function(hash.name(), |b| {
            b.iter(|| {
                derive_credentials(hash, black_box(PASSWORD), black_box(SALT), 4096)
                    .expect("derive")
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    scram_server_exchange,
    plain_verify,
    scram_key_derivation
);
criterion_main!(benches);
