//! Capability: the RecordBatch v2 codec, segment recovery and the sparse indexes hold their
//! invariants on arbitrary input.
//!
//! Method: proptest — `decode(encode(records)) == records`; decoding arbitrary or mutated bytes
//! never panics; the fuzz body never panics on arbitrary bytes; index lookups agree with a
//! linear model and survive an encode/decode round trip.

#![allow(clippy::unwrap_used, reason = "property helpers fail loudly")]

use bytes::Bytes;
use proptest::prelude::*;
use streamcache::log::{
    BatchError, Header, OffsetIndex, Record, TimeIndex, decode_batch, encode_batch,
    fuzz_log_segment,
};

fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from))
}

fn record() -> impl Strategy<Value = Record> {
    (
        opt_bytes(),
        opt_bytes(),
        proptest::collection::vec(("[a-z]{0,8}", opt_bytes()), 0..3),
        proptest::option::of(-1_000_000i64..4_000_000_000_000),
    )
        .prop_map(|(key, value, headers, timestamp_ms)| Record {
            key,
            value,
            headers: headers
                .into_iter()
                .map(|(key, value)| Header { key, value })
                .collect(),
            timestamp_ms,
        })
}

proptest! {
    #[test]
    fn batch_round_trips(records in proptest::collection::vec(record(), 1..20), base in 0u64..(1 << 40), now in 0i64..(1 << 42)) {
        let mut buf = Vec::new();
        let info = encode_batch(base, now, &records, &mut buf);
        prop_assert_eq!(info.len, buf.len());
        let mut out = Vec::new();
        let decoded = decode_batch(&Bytes::from(buf), 0, &mut out).unwrap();
        prop_assert_eq!(decoded, info);
        prop_assert_eq!(out.len(), records.len());
        for (i, (r, s)) in records.iter().zip(&out).enumerate() {
            prop_assert_eq!(s.offset, base + i as u64);
            prop_assert_eq!(&s.key, &r.key);
            prop_assert_eq!(&s.value, &r.value);
            prop_assert_eq!(&s.headers, &r.headers);
            prop_assert_eq!(s.timestamp_ms, r.timestamp_ms.unwrap_or(now));
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut out = Vec::new();
        let _ = decode_batch(&Bytes::from(data.clone()), 0, &mut out);
        fuzz_log_segment(&data);
    }

    #[test]
    fn mutated_batches_are_rejected_or_decode_without_panic(
        records in proptest::collection::vec(record(), 1..5),
        at in any::<prop::sample::Index>(),
        xor in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = Vec::new();
        encode_batch(0, 0, &records, &mut buf);
        let i = at.index(buf.len());
        buf[i] ^= xor;
        let mut out = Vec::new();
        let _ = decode_batch(&Bytes::from(buf.clone()), 0, &mut out);
        fuzz_log_segment(&buf);
        let c = cut.index(buf.len());
        let truncated = Bytes::copy_from_slice(&buf[..c]);
        let rejected = matches!(decode_batch(&truncated, 0, &mut out), Err(BatchError::Incomplete { .. } | BatchError::Invalid { .. }));
        prop_assert!(rejected, "a truncated batch never decodes");
    }

    #[test]
    fn offset_index_lookups_match_a_linear_model(steps in proptest::collection::vec((1u32..100, 1u32..5000), 0..50), probes in proptest::collection::vec(0u32..6000, 1..20)) {
        let mut index = OffsetIndex::new();
        let mut model = Vec::new();
        let (mut o, mut p) = (0u32, 0u32);
        for (i, (d_off, dp)) in steps.iter().enumerate() {
            if i > 0 { o += d_off; p += dp; }
            index.push(o, p);
            model.push((o, p));
        }
        for probe in probes {
            let expected = model.iter().rev().find(|(mo, _)| *mo <= probe).map_or(0, |(_, mp)| *mp);
            prop_assert_eq!(index.lookup(probe), expected);
            let boundary = model.iter().find(|(_, mp)| *mp >= probe).map(|(_, mp)| *mp);
            prop_assert_eq!(index.boundary_at_or_after(probe), boundary);
        }
        let decoded = OffsetIndex::decode(&index.encode(), u64::from(p) + 1).unwrap();
        prop_assert_eq!(decoded, index);
    }

    #[test]
    fn time_index_lookup_matches_a_linear_model(steps in proptest::collection::vec((1i64..100, 1u32..50), 0..50), probes in proptest::collection::vec(0i64..6000, 1..20)) {
        let mut index = TimeIndex::new();
        let mut model = Vec::new();
        let (mut t, mut o) = (0i64, 0u32);
        for (i, (dt, d_o)) in steps.iter().enumerate() {
            if i > 0 { t += dt; o += d_o; }
            index.push(t, o);
            model.push((t, o));
        }
        for probe in probes {
            let expected = model.iter().rev().find(|(mt, _)| *mt < probe).map_or(0, |(_, mo)| *mo);
            prop_assert_eq!(index.lookup(probe), expected);
        }
        prop_assert_eq!(TimeIndex::decode(&index.encode()).unwrap(), index);
    }

    #[test]
    fn index_decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), len in any::<u64>()) {
        let _ = OffsetIndex::decode(&data, len);
        let _ = TimeIndex::decode(&data);
    }
}
