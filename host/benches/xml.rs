//! XML stream parsing of typical client traffic: the c2s path from received bytes to the element
//! tree, i.e. `stream::framer::Framer::push` + `next_frame` (framing, limits, UTF-8 and
//! restricted-XML checks) followed by `stream::parse::parse_element` (quick-xml events,
//! namespace resolution, the `Element` tree), on a framer that has already consumed the stream
//! header, as in `c2s::conn` after negotiation. Throughput is in input bytes.
//!
//! Inputs: `message` (a ~300-byte chat `<message>` with a body, chat state, receipt request and
//! origin-id), `sasl2_authenticate` (SASL2 `<authenticate>` with an initial response,
//! `<user-agent>` and `<fast/>`), `burst_10` (10 messages arriving in one buffer).
//! `xml_stream/*` is framing + parsing; `xml_frame_only/*` and `xml_parse_only/*` split it.
//!
//! Run: `cargo bench -p tessera-host --bench xml`
//! (short run: `cargo bench -p tessera-host --bench xml -- --warm-up-time 1 --measurement-time 3`)

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tessera_host::stream::framer::{Frame, Framer, Limits};
use tessera_host::stream::parse::{parse_element, parse_stream_header, StreamHeader};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

fn message(id: usize) -> String {
    format!(
        "<message to='romeo@example.net/orchard' id='ktx72v49-{id:04}' type='chat' xml:lang='en'>\
         <body>Art thou not Romeo, and a Montague?</body>\
         <active xmlns='http://jabber.org/protocol/chatstates'/>\
         <request xmlns='urn:xmpp:receipts'/>\
         <origin-id xmlns='urn:xmpp:sid:0' id='de5dcde5-27b8-4c58-9a5f-{id:012}'/>\
         </message>"
    )
}

const AUTHENTICATE: &str = "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256-PLUS'>\
    <initial-response>cD10bHMtZXhwb3J0ZXIsLG49anVsaWV0LHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM</initial-response>\
    <user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'>\
    <software>AwesomeXMPP</software><device>Kiva&apos;s Phone</device></user-agent>\
    <fast xmlns='urn:xmpp:fast:0'/>\
    </authenticate>";

/// A framer that has consumed the stream header, and the parsed header.
fn open_stream() -> (Framer, StreamHeader) {
    let mut framer = Framer::new(Limits::default());
    framer.push(HEADER.as_bytes()).expect("header");
    let Some(Frame::StreamHeader(raw)) = framer.next_frame().expect("frame") else {
        panic!("no stream header");
    };
    let header = parse_stream_header(&raw).expect("parse header");
    (framer, header)
}

fn inputs() -> Vec<(&'static str, Vec<u8>, usize)> {
    let burst: String = (0..10).map(message).collect();
    vec![
        ("message", message(1).into_bytes(), 1),
        ("sasl2_authenticate", AUTHENTICATE.as_bytes().to_vec(), 1),
        ("burst_10", burst.into_bytes(), 10),
    ]
}

fn xml_stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("xml_stream");
    for (name, bytes, stanzas) in inputs() {
        let (mut framer, header) = open_stream();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                framer.push(black_box(&bytes)).expect("push");
                let mut n = 0;
                while let Some(Frame::Element(raw)) = framer.next_frame().expect("frame") {
                    black_box(parse_element(&raw, &header).expect("parse"));
                    n += 1;
                }
                assert_eq!(n, stanzas);
            });
        });
    }
    group.finish();
}

fn xml_frame_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("xml_frame_only");
    for (name, bytes, stanzas) in inputs() {
        let (mut framer, _) = open_stream();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                framer.push(black_box(&bytes)).expect("push");
                let mut n = 0;
                while let Some(Frame::Element(raw)) = framer.next_frame().expect("frame") {
                    black_box(raw);
                    n += 1;
                }
                assert_eq!(n, stanzas);
            });
        });
    }
    group.finish();
}

fn xml_parse_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("xml_parse_only");
    for (name, bytes, _) in inputs() {
        let (mut framer, header) = open_stream();
        framer.push(&bytes).expect("push");
        let mut frames = Vec::new();
        while let Some(Frame::Element(raw)) = framer.next_frame().expect("frame") {
            frames.push(raw);
        }
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for raw in &frames {
                    black_box(parse_element(black_box(raw), &header).expect("parse"));
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, xml_stream, xml_frame_only, xml_parse_only);
criterion_main!(benches);
