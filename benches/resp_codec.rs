//! RESP codec throughput: request decoding (one command and a 16-command pipeline) and reply
//! encoding/decoding, on fixed inputs.

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamcache::cache::{DecodeLimits, Frame, decode_frame, decode_request};

const LIMITS: DecodeLimits = DecodeLimits {
    bulk_bytes_max: 512 << 20,
    multibulk_len_max: 1 << 20,
    inline_bytes_max: 64 << 10,
};

fn set_request() -> Vec<u8> {
    let value = "x".repeat(100);
    format!("*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$100\r\n{value}\r\n").into_bytes()
}

fn codec(c: &mut Criterion) {
    let one = set_request();
    let pipeline: Vec<u8> = (0..16).flat_map(|_| set_request()).collect();
    let mut g = c.benchmark_group("resp_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("set_100B", |b| {
        b.iter(|| decode_request(std::hint::black_box(&one), &LIMITS))
    });
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipeline_16_set_100B", |b| {
        b.iter(|| {
            let mut pos = 0;
            while let Ok(Some((_, used))) = decode_request(&pipeline[pos..], &LIMITS) {
                pos += used;
            }
            pos
        });
    });
    g.finish();

    let reply = Frame::Array(
        (0..10)
            .map(|i| Frame::Bulk(Bytes::from(format!("value-{i:04}"))))
            .collect(),
    );
    let mut g = c.benchmark_group("resp_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bulk_100B", |b| {
        let f = Frame::Bulk(Bytes::from(vec![b'x'; 100]));
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            f.encode(2, &mut out);
            out.len()
        });
    });
    g.bench_function("array_10_bulk", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            reply.encode(3, &mut out);
            out.len()
        });
    });
    let mut wire = Vec::new();
    reply.encode(3, &mut wire);
    g.bench_function("decode_array_10_bulk", |b| {
        b.iter(|| decode_frame(std::hint::black_box(&wire), &LIMITS))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
