//! Capability: appending records to topics and reading them back — offsets, routing (explicit
//! partition, Kafka's murmur2 key partitioner, sticky unkeyed), flush policies with group commit,
//! segment roll, tailing without polling, timestamps, limits at max and max + 1, and Kafka
//! compatibility of the segment bytes.
//!
//! Method: drive the public `Log` API on a temporary directory with a manual clock; check
//! murmur2 against the Java client's `UtilsTest.testMurmur2` vectors; decode a written segment
//! file with the `kafka-protocol` crate's `RecordBatchDecoder`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly on setup errors"
)]

mod log_common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use log_common::{TestLog, keyed, value, values};
use streamcache::log::{
    self, Error, FlushPolicy, Header, LogConfig, Record, Routing, TopicPartition, murmur2,
    partition_for_key,
};

#[test]
fn append_then_read_returns_records_in_order_with_offsets() {
    let t = TestLog::new(LogConfig::default());
    let placed = t
        .log
        .append(
            "orders",
            Routing::Partition(1),
            vec![value("a"), value("b")],
        )
        .unwrap();
    assert_eq!(
        placed
            .iter()
            .map(|p| (p.partition, p.offset))
            .collect::<Vec<_>>(),
        vec![(1, 0), (1, 1)]
    );
    let placed = t
        .log
        .append("orders", Routing::Partition(1), vec![value("c")])
        .unwrap();
    assert_eq!(placed[0].offset, 2);
    let read = t.log.read("orders", 1, 0, 1 << 20).unwrap();
    assert_eq!(values(&read), ["a", "b", "c"]);
    assert_eq!(
        read.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let from_middle = t.log.read("orders", 1, 1, 1 << 20).unwrap();
    assert_eq!(values(&from_middle), ["b", "c"]);
    assert_eq!(t.log.earliest_offset("orders", 1).unwrap(), 0);
    assert_eq!(t.log.latest_offset("orders", 1).unwrap(), 3);
    assert_eq!(
        t.log.topic("orders").unwrap().partitions,
        3,
        "auto-created with the default 3 partitions"
    );
}

#[test]
fn keys_headers_timestamps_and_nulls_survive() {
    let t = TestLog::new(LogConfig::default());
    let record = Record {
        key: Some(Bytes::from_static(b"k\x00\xff")),
        value: None,
        headers: vec![
            Header {
                key: "trace".into(),
                value: Some(Bytes::from_static(b"abc")),
            },
            Header {
                key: "empty".into(),
                value: None,
            },
        ],
        timestamp_ms: Some(1_234),
    };
    t.log
        .append("t", Routing::Partition(0), vec![record.clone(), value("x")])
        .unwrap();
    let read = t.log.read("t", 0, 0, 1 << 20).unwrap();
    assert_eq!(read[0].key, record.key);
    assert_eq!(read[0].value, None);
    assert_eq!(read[0].headers, record.headers);
    assert_eq!(read[0].timestamp_ms, 1_234);
    assert_eq!(
        read[1].timestamp_ms,
        i64::try_from(log_common::START_MS).unwrap(),
        "default is the clock's now"
    );
}

#[test]
fn read_at_end_is_empty_and_outside_the_log_is_out_of_range() {
    let t = TestLog::new(LogConfig::default());
    t.log
        .append("t", Routing::Partition(0), vec![value("a")])
        .unwrap();
    assert!(t.log.read("t", 0, 1, 1 << 20).unwrap().is_empty());
    match t.log.read("t", 0, 2, 1 << 20) {
        Err(Error::OffsetOutOfRange {
            offset: 2,
            earliest: 0,
            latest: 1,
            ..
        }) => {}
        other => panic!("expected out of range, got {other:?}"),
    }
    assert!(matches!(
        t.log.read("t", 7, 0, 1),
        Err(Error::PartitionNotFound { partition: 7, .. })
    ));
    assert!(matches!(
        t.log.read("nope", 0, 0, 1),
        Err(Error::TopicNotFound { .. })
    ));
}

#[test]
fn max_bytes_limits_a_read_but_returns_at_least_one_batch() {
    let t = TestLog::new(LogConfig::default());
    for i in 0..10 {
        t.log
            .append(
                "t",
                Routing::Partition(0),
                vec![value(&format!("{i:0100}"))],
            )
            .unwrap();
    }
    let one = t.log.read("t", 0, 0, 1).unwrap();
    assert_eq!(one.len(), 1);
    let some = t.log.read("t", 0, 0, 400).unwrap();
    assert!(some.len() >= 2 && some.len() < 10, "got {}", some.len());
}

/// Kafka's `UtilsTest.testMurmur2` (clients/src/test/java/org/apache/kafka/common/utils).
const JAVA_MURMUR2: [(&str, i32); 6] = [
    ("21", -973_932_308),
    ("foobar", -790_332_482),
    ("a-little-bit-long-string", -985_981_536),
    ("a-little-bit-longer-string", -1_486_304_829),
    (
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
        -58_897_971,
    ),
    ("abc", 479_470_107),
];

#[test]
fn murmur2_matches_the_java_client() {
    for (key, hash) in JAVA_MURMUR2 {
        assert_eq!(murmur2(key.as_bytes()), hash, "{key}");
    }
    // toPositive(h) % n, as the Java client's BuiltInPartitioner.partitionForKey computes it.
    for (key, hash) in JAVA_MURMUR2 {
        for n in [1u32, 3, 6, 12, 50] {
            let expected = u32::try_from(hash & 0x7fff_ffff).unwrap() % n;
            assert_eq!(
                partition_for_key(key.as_bytes(), n),
                expected,
                "{key} over {n}"
            );
        }
    }
    // Spelled out: toPositive(-790332482) = 1357151166, and 1357151166 % 10 = 6.
    assert_eq!(partition_for_key(b"foobar", 10), 6);
}

#[test]
fn keyed_records_land_on_their_murmur2_partition_and_unkeyed_stick_together() {
    let t = TestLog::new(LogConfig::default());
    let placed = t
        .log
        .append(
            "t",
            Routing::Auto,
            vec![
                keyed("foobar", "1"),
                keyed("abc", "2"),
                value("3"),
                value("4"),
            ],
        )
        .unwrap();
    assert_eq!(placed[0].partition, partition_for_key(b"foobar", 3));
    assert_eq!(placed[1].partition, partition_for_key(b"abc", 3));
    assert_eq!(
        placed[2].partition, placed[3].partition,
        "unkeyed records of one append share a partition"
    );
    let next = t.log.append("t", Routing::Auto, vec![value("5")]).unwrap();
    assert_ne!(
        next[0].partition, placed[2].partition,
        "the sticky partition moves on per append"
    );
    let by_key = t
        .log
        .append(
            "t",
            Routing::Key(Bytes::from_static(b"21")),
            vec![value("6"), value("7")],
        )
        .unwrap();
    assert!(
        by_key
            .iter()
            .all(|p| p.partition == partition_for_key(b"21", 3))
    );
}

#[test]
fn append_under_always_is_group_committed_across_threads() {
    let config = LogConfig {
        flush_policy: FlushPolicy::Always,
        ..LogConfig::default()
    };
    let t = TestLog::new(config);
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    let log = Arc::new(t.log);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..20)
                    .map(|j| {
                        log.append("t", Routing::Partition(0), vec![value(&format!("{i}-{j}"))])
                            .unwrap()[0]
                            .offset
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut offsets: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..160).collect::<Vec<_>>());
    assert_eq!(log.read("t", 0, 0, 1 << 20).unwrap().len(), 160);
}

#[test]
fn every_flush_policy_parses_and_round_trips() {
    for (text, policy) in [
        ("always", FlushPolicy::Always),
        ("never", FlushPolicy::Never),
        ("interval_ms(10)", FlushPolicy::IntervalMs(10)),
    ] {
        assert_eq!(text.parse::<FlushPolicy>().unwrap(), policy);
        assert_eq!(policy.to_string(), text);
    }
    let max = log::FLUSH_INTERVAL_MS_MAX;
    assert!(format!("interval_ms({max})").parse::<FlushPolicy>().is_ok());
    assert!(
        format!("interval_ms({})", max + 1)
            .parse::<FlushPolicy>()
            .is_err()
    );
    assert!("interval_ms(0)".parse::<FlushPolicy>().is_err());
    assert!("sometimes".parse::<FlushPolicy>().is_err());
}

#[test]
fn per_topic_policies_apply() {
    let t = TestLog::new(LogConfig::default());
    for policy in ["always", "never", "interval_ms(5)"] {
        let name = format!("p-{}", policy.replace(['(', ')'], ""));
        let info = t
            .log
            .create_topic(
                &name,
                Some(1),
                &[("flush.policy".into(), policy.into())],
                false,
            )
            .unwrap();
        assert_eq!(info.config.flush_policy.to_string(), policy);
        t.log
            .append(&name, Routing::Partition(0), vec![value("x")])
            .unwrap();
        assert_eq!(t.log.read(&name, 0, 0, 100).unwrap().len(), 1);
    }
}

#[test]
fn segments_roll_by_size_and_reads_cross_them() {
    let t = TestLog::new(LogConfig::default());
    log_common::fill_small_segments(&t, 100, 50);
    let p = t.log.partition("t", 0).unwrap();
    assert!(
        p.segment_count().unwrap() > 5,
        "rolled into {} segments",
        p.segment_count().unwrap()
    );
    let all = t.log.read("t", 0, 0, 1 << 20).unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(
        all.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..100).collect::<Vec<_>>()
    );
    let tail = t.log.read("t", 0, 57, 1 << 20).unwrap();
    assert_eq!(tail.first().unwrap().offset, 57);
    // Reopen: sealed segments load their index files, the active one is scanned.
    let t = t.reopen();
    assert_eq!(
        t.log
            .read("t", 0, 33, 1 << 20)
            .unwrap()
            .first()
            .unwrap()
            .offset,
        33
    );
    assert_eq!(t.log.latest_offset("t", 0).unwrap(), 100);
}

#[test]
fn offsets_by_timestamp_use_the_time_index() {
    let t = TestLog::new(LogConfig::default());
    t.log
        .create_topic(
            "t",
            Some(1),
            &[("segment.bytes".into(), "1024".into())],
            false,
        )
        .unwrap();
    for i in 0..50i64 {
        let r = Record {
            timestamp_ms: Some(1_000 + i * 10),
            ..value(&format!("{i:040}"))
        };
        t.log.append("t", Routing::Partition(0), vec![r]).unwrap();
    }
    assert_eq!(t.log.offset_for_timestamp("t", 0, 0).unwrap(), Some(0));
    assert_eq!(t.log.offset_for_timestamp("t", 0, 1_205).unwrap(), Some(21));
    assert_eq!(t.log.offset_for_timestamp("t", 0, 1_210).unwrap(), Some(21));
    assert_eq!(t.log.offset_for_timestamp("t", 0, 1_490).unwrap(), Some(49));
    assert_eq!(t.log.offset_for_timestamp("t", 0, 1_491).unwrap(), None);
}

#[tokio::test]
async fn a_tailing_reader_wakes_on_append_without_polling() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    let mut rx = t.log.subscribe("t", 0).unwrap();
    assert_eq!(*rx.borrow_and_update(), 0);
    let log = Arc::new(t.log);
    let writer = log.clone();
    let handle = tokio::task::spawn_blocking(move || {
        writer.append("t", Routing::Partition(0), vec![value("hi")])
    });
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*rx.borrow(), 1);
    handle.await.unwrap().unwrap();
    assert_eq!(values(&log.read("t", 0, 0, 100).unwrap()), ["hi"]);
}

#[test]
fn record_bytes_limit_at_max_and_max_plus_one() {
    let t = TestLog::new(LogConfig::default());
    let max = usize::try_from(log::MAX_MESSAGE_BYTES_DEFAULT).unwrap();
    let at_max = Record {
        value: Some(vec![7u8; max].into()),
        ..Record::default()
    };
    t.log
        .append("t", Routing::Partition(0), vec![at_max])
        .unwrap();
    let over = Record {
        value: Some(vec![7u8; max + 1].into()),
        ..Record::default()
    };
    match t.log.append("t", Routing::Partition(0), vec![over]) {
        Err(Error::RecordTooLarge { len, max: m }) => {
            assert_eq!((len, m), (max as u64 + 1, max as u64))
        }
        other => panic!("{other:?}"),
    }
    // The topic setting itself is capped by RECORD_BYTES_MAX.
    let cap = log::RECORD_BYTES_MAX.to_string();
    t.log
        .create_topic("big", Some(1), &[("max.message.bytes".into(), cap)], false)
        .unwrap();
    let over_cap = (log::RECORD_BYTES_MAX + 1).to_string();
    assert!(matches!(
        t.log.create_topic(
            "bigger",
            Some(1),
            &[("max.message.bytes".into(), over_cap)],
            false
        ),
        Err(Error::ConfigInvalid { .. })
    ));
}

#[test]
fn records_per_append_limit_at_max_and_max_plus_one() {
    let t = TestLog::new(LogConfig::default());
    let max = log::RECORDS_PER_APPEND_MAX;
    let placed = t
        .log
        .append("t", Routing::Partition(0), vec![value("x"); max])
        .unwrap();
    assert_eq!(placed.last().unwrap().offset, max as u64 - 1);
    assert!(matches!(
        t.log.append("t", Routing::Partition(0), vec![value("x"); max + 1]),
        Err(Error::TooManyRecords { len, max: m }) if len == max + 1 && m == max
    ));
}

#[test]
fn append_bytes_limit_at_max_and_max_plus_one() {
    let t = TestLog::new(LogConfig::default());
    let cap = log::RECORD_BYTES_MAX.to_string();
    t.log
        .create_topic("t", Some(1), &[("max.message.bytes".into(), cap)], false)
        .unwrap();
    let per = usize::try_from(log::RECORD_BYTES_MAX).unwrap();
    let n = usize::try_from(log::APPEND_BYTES_MAX).unwrap() / per;
    let full = vec![
        Record {
            value: Some(vec![1u8; per].into()),
            ..Record::default()
        };
        n
    ];
    t.log.append("t", Routing::Partition(0), full).unwrap();
    let mut over = vec![
        Record {
            value: Some(vec![1u8; per].into()),
            ..Record::default()
        };
        n
    ];
    over.push(value("x"));
    assert!(matches!(
        t.log.append("t", Routing::Partition(0), over),
        Err(Error::AppendTooLarge { .. })
    ));
}

#[test]
fn topic_name_and_partition_limits_at_max_and_max_plus_one() {
    let t = TestLog::new(LogConfig::default());
    let name = "a".repeat(log::TOPIC_NAME_BYTES_MAX);
    t.log.create_topic(&name, Some(1), &[], false).unwrap();
    let too_long = "a".repeat(log::TOPIC_NAME_BYTES_MAX + 1);
    assert!(matches!(
        t.log.create_topic(&too_long, Some(1), &[], false),
        Err(Error::TopicNameInvalid { .. })
    ));
    for bad in ["", ".", "..", "a/b", "a b", "ü"] {
        assert!(
            matches!(
                t.log.create_topic(bad, Some(1), &[], false),
                Err(Error::TopicNameInvalid { .. })
            ),
            "{bad:?}"
        );
    }
    t.log
        .create_topic("many", Some(log::PARTITIONS_PER_TOPIC_MAX), &[], true)
        .unwrap();
    assert!(matches!(
        t.log.create_topic(
            "too-many",
            Some(log::PARTITIONS_PER_TOPIC_MAX + 1),
            &[],
            false
        ),
        Err(Error::PartitionCountInvalid { .. })
    ));
    assert!(matches!(
        t.log.create_topic("zero", Some(0), &[], false),
        Err(Error::PartitionCountInvalid { .. })
    ));
    assert!(matches!(
        t.log.create_topic(&name, Some(1), &[], false),
        Err(Error::TopicExists { .. })
    ));
}

#[test]
fn segment_bytes_config_at_max_and_max_plus_one() {
    let t = TestLog::new(LogConfig::default());
    let max = log::SEGMENT_BYTES_MAX.to_string();
    t.log
        .create_topic("a", Some(1), &[("segment.bytes".into(), max)], true)
        .unwrap();
    let over = (log::SEGMENT_BYTES_MAX + 1).to_string();
    assert!(matches!(
        t.log
            .create_topic("a", Some(1), &[("segment.bytes".into(), over)], true),
        Err(Error::ConfigInvalid { .. })
    ));
    assert!(matches!(
        t.log
            .create_topic("a", Some(1), &[("no.such.config".into(), "1".into())], true),
        Err(Error::ConfigInvalid { .. })
    ));
}

#[test]
fn topics_list_describe_and_delete() {
    let t = TestLog::new(LogConfig {
        auto_create_topics: false,
        ..LogConfig::default()
    });
    assert!(matches!(
        t.log.append("t", Routing::Auto, vec![value("x")]),
        Err(Error::TopicNotFound { .. })
    ));
    t.log
        .create_topic(
            "b",
            Some(2),
            &[("retention.ms".into(), "1000".into())],
            false,
        )
        .unwrap();
    t.log.create_topic("a", None, &[], false).unwrap();
    assert_eq!(t.log.topics().unwrap(), ["a", "b"]);
    let b = t.log.topic("b").unwrap();
    assert_eq!((b.partitions, b.config.retention_ms), (2, 1000));
    t.log
        .append("b", Routing::Partition(1), vec![value("x")])
        .unwrap();
    t.log.delete_topic("b").unwrap();
    assert_eq!(t.log.topics().unwrap(), ["a"]);
    assert!(!t.partition_dir("b", 1).exists());
    let t = t.reopen();
    assert_eq!(t.log.topics().unwrap(), ["a"]);
    assert!(matches!(
        t.log.delete_topic("b"),
        Err(Error::TopicNotFound { .. })
    ));
}

#[test]
fn a_written_segment_decodes_with_kafka_protocols_record_batch_decoder() {
    use kafka_protocol::records::RecordBatchDecoder;
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    let rec = Record {
        key: Some(Bytes::from_static(b"key")),
        value: Some(Bytes::from_static(b"value")),
        headers: vec![Header {
            key: "h".into(),
            value: Some(Bytes::from_static(b"v")),
        }],
        timestamp_ms: Some(42),
    };
    t.log
        .append("t", Routing::Partition(0), vec![rec, value("second")])
        .unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("third")])
        .unwrap();
    t.log.flush().unwrap();
    let path = t.partition_dir("t", 0).join("00000000000000000000.log");
    let mut bytes = Bytes::from(std::fs::read(path).unwrap());
    let sets = RecordBatchDecoder::decode_all(&mut bytes).unwrap();
    assert_eq!(sets.len(), 2, "one batch per append");
    let records: Vec<_> = sets.into_iter().flat_map(|s| s.records).collect();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(records[0].key.as_deref(), Some(&b"key"[..]));
    assert_eq!(records[0].value.as_deref(), Some(&b"value"[..]));
    assert_eq!(records[0].timestamp, 42);
    let (hk, hv) = records[0].headers.iter().next().unwrap();
    assert_eq!((hk.as_str(), hv.as_deref()), ("h", Some(&b"v"[..])));
    assert_eq!(records[2].value.as_deref(), Some(&b"third"[..]));
}

#[test]
fn committed_offsets_round_trip_through_reopen() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(2), &[], false).unwrap();
    let tp = TopicPartition {
        topic: "t".into(),
        partition: 1,
    };
    assert_eq!(t.log.committed_offset("g", &tp).unwrap(), None);
    let c = log::CommittedOffset {
        offset: 17,
        metadata: "m".into(),
    };
    t.log
        .commit_offsets("g", &[(tp.clone(), c.clone())])
        .unwrap();
    let t = t.reopen();
    assert_eq!(t.log.committed_offset("g", &tp).unwrap(), Some(c));
}

#[test]
fn the_default_toml_log_section_parses_to_the_default_config() {
    let text = streamcache::config::default_toml();
    assert!(text.contains("[log]"));
    let parsed =
        streamcache::config::parse_toml(&text, std::path::Path::new("default.toml")).unwrap();
    assert_eq!(parsed, streamcache::config::Config::default());
    let custom = "[log]\nflush_policy = \"always\"\ndefault_partitions = 1\n";
    let parsed = streamcache::config::parse_toml(custom, std::path::Path::new("c.toml")).unwrap();
    assert_eq!(parsed.log.flush_policy, FlushPolicy::Always);
    let bad = "[log]\nflush_policy = \"sometimes\"\n";
    assert!(streamcache::config::parse_toml(bad, std::path::Path::new("c.toml")).is_err());
}

#[test]
fn raw_batches_are_kafka_fetch_bytes() {
    use kafka_protocol::records::RecordBatchDecoder;
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    for i in 0..5 {
        t.log
            .append(
                "t",
                Routing::Partition(0),
                vec![value(&format!("{i}a")), value(&format!("{i}b"))],
            )
            .unwrap();
    }
    // The batch holding offset 3 starts at offset 2.
    let batches = t.log.read_batches("t", 0, 3, 1 << 20).unwrap();
    assert_eq!(batches.len(), 4);
    let first = log::decode_batch_frame(&batches[0]).unwrap();
    assert_eq!((first.base_offset, first.last_offset), (2, 3));
    let mut joined = Bytes::from(batches.concat());
    let sets = RecordBatchDecoder::decode_all(&mut joined).unwrap();
    assert_eq!(sets.iter().map(|s| s.records.len()).sum::<usize>(), 8);
    assert_eq!(
        t.log.read_batches("t", 0, 9, 1).unwrap().len(),
        1,
        "at least one batch"
    );
    assert!(t.log.read_batches("t", 0, 10, 1 << 20).unwrap().is_empty());
}

/// Appends batches of mixed sizes — tiny, around a read chunk, and larger than a chunk
/// (`READ_CHUNK_BYTES` = 1 MiB) — across several segments; returns every value in offset order.
fn mixed_batches(t: &TestLog) -> Vec<Vec<u8>> {
    mixed_batches_in(t, "m", &[])
}

/// [`mixed_batches`] into topic `topic`, created with `config` on top of 3 MiB segments.
fn mixed_batches_in(t: &TestLog, topic: &str, config: &[(String, String)]) -> Vec<Vec<u8>> {
    let mut configs = vec![("segment.bytes".to_owned(), (3 << 20).to_string())];
    configs.extend_from_slice(config);
    t.log.create_topic(topic, Some(1), &configs, false).unwrap();
    let mut all = Vec::new();
    for (round, (records, size)) in [(1, 10), (7, 150_000), (3, 1), (15, 100_000), (2, 600_000)]
        .into_iter()
        .cycle()
        .take(12)
        .enumerate()
    {
        let batch: Vec<Record> = (0..records)
            .map(|i| {
                let mut v = format!("{round}-{i}-").into_bytes();
                v.resize(size.max(v.len()), b'a' + (round % 26) as u8);
                all.push(v.clone());
                Record {
                    value: Some(v.into()),
                    ..Record::default()
                }
            })
            .collect();
        t.log.append(topic, Routing::Partition(0), batch).unwrap();
    }
    all
}

/// Runs `test` on a log with the parallel read helper and on one without it.
fn with_and_without_the_read_helper(test: fn(LogConfig)) {
    for parallel_read in [true, false] {
        test(LogConfig {
            parallel_read,
            ..LogConfig::default()
        });
    }
}

#[test]
fn fetch_crosses_chunks_and_segments_at_every_budget() {
    with_and_without_the_read_helper(fetch_crosses_chunks_and_segments);
}

fn fetch_crosses_chunks_and_segments(config: LogConfig) {
    let t = TestLog::new(config);
    let all = mixed_batches(&t);
    assert!(t.log.partition("m", 0).unwrap().segment_count().unwrap() > 2);
    let end = all.len() as u64;
    for budget in [1, 4096, 1 << 20, 3 << 20, 64 << 20] {
        // Batches, lazily decoded views, and owned records agree with what was appended.
        let mut offset = 0;
        let mut seen = Vec::new();
        while offset < end {
            let batches = t.log.fetch("m", 0, offset, budget).unwrap();
            assert!(!batches.is_empty(), "at least one batch (budget {budget})");
            for b in &batches {
                log::decode_batch_info(b.bytes()).expect("a whole verified batch");
                for r in b.records() {
                    let r = r.unwrap();
                    if r.offset >= offset {
                        assert_eq!(r.offset, seen.len() as u64);
                        seen.push(r.value.unwrap().to_vec());
                    }
                }
            }
            offset = batches.last().unwrap().info().last_offset + 1;
        }
        assert!(seen == all, "views at budget {budget}");
        let mut offset = 0;
        let mut owned = Vec::new();
        while offset < end {
            let got = t.log.read("m", 0, offset, budget).unwrap();
            offset = got.last().unwrap().offset + 1;
            owned.extend(got.into_iter().map(|r| r.value.unwrap().to_vec()));
        }
        assert!(owned == all, "owned records at budget {budget}");
    }
    // From the middle of a batch: the batch holding the offset comes first.
    let batches = t.log.fetch("m", 0, 3, 1).unwrap();
    assert_eq!(batches[0].info().base_offset, 1);
    assert_eq!(t.log.read("m", 0, 3, 1).unwrap()[0].offset, 3);
}

#[test]
fn batches_held_by_a_reader_do_not_change_while_later_reads_reuse_buffers() {
    let t = TestLog::new(LogConfig::default());
    let all = mixed_batches(&t);
    let held = t.log.fetch("m", 0, 0, 1 << 20).unwrap();
    let copies: Vec<Vec<u8>> = held.iter().map(|b| b.bytes().to_vec()).collect();
    let held_records = t.log.read("m", 0, 0, 1 << 20).unwrap();
    for _ in 0..3 {
        let mut offset = 0;
        while offset < all.len() as u64 {
            let got = t.log.fetch("m", 0, offset, 1 << 20).unwrap();
            offset = got.last().unwrap().info().last_offset + 1;
        }
    }
    for (b, copy) in held.iter().zip(&copies) {
        assert!(b.bytes()[..] == copy[..]);
    }
    for r in &held_records {
        assert!(r.value.as_deref() == Some(&all[r.offset as usize][..]));
    }
}

#[test]
fn a_byte_changed_under_a_stored_batch_is_reported_on_read() {
    use std::os::unix::fs::FileExt as _;
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("c", Some(1), &[], false).unwrap();
    t.log
        .append("c", Routing::Partition(0), vec![value("first")])
        .unwrap();
    t.log
        .append("c", Routing::Partition(0), vec![value("second")])
        .unwrap();
    let first_len = t.log.read_batches("c", 0, 0, 1).unwrap()[0].len() as u64;
    let path = t.partition_dir("c", 0).join(format!("{:020}.log", 0));
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // The last byte of the second batch: inside its value, covered by its CRC.
    let end = std::fs::metadata(&path).unwrap().len();
    file.write_all_at(b"X", end - 1).unwrap();
    assert_eq!(values(&t.log.read("c", 0, 0, 1).unwrap()), ["first"]);
    for result in [
        t.log.fetch("c", 0, 1, 1 << 20).map(|_| ()),
        t.log.read("c", 0, 0, 1 << 20).map(|_| ()),
        t.log.read_batches("c", 0, 1, 1 << 20).map(|_| ()),
    ] {
        match result {
            Err(Error::Corrupt {
                position, reason, ..
            }) => {
                assert_eq!(position, first_len, "names the bad batch's position");
                assert!(reason.contains("CRC"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

/// Every fetch of a scan of `topic` from offset 0 with `budget`: the `(base, last)` offsets of
/// the batches it returned, after checking each is a whole verified batch.
fn fetch_shapes(t: &TestLog, topic: &str, budget: usize) -> Vec<Vec<(u64, u64)>> {
    let end = t.log.latest_offset(topic, 0).unwrap();
    let (mut offset, mut shapes) = (0, Vec::new());
    while offset < end {
        let batches = t.log.fetch(topic, 0, offset, budget).unwrap();
        for b in &batches {
            log::decode_batch_info(b.bytes()).expect("a whole verified batch");
        }
        offset = batches.last().unwrap().info().last_offset + 1;
        shapes.push(
            batches
                .iter()
                .map(|b| (b.info().base_offset, b.info().last_offset))
                .collect(),
        );
    }
    shapes
}

#[test]
fn fetch_returns_the_same_batches_whether_or_not_the_index_places_chunk_ends() {
    with_and_without_the_read_helper(same_batches_with_a_dense_and_a_sparse_index);
}

fn same_batches_with_a_dense_and_a_sparse_index(config: LogConfig) {
    // A dense index lets every chunk end on a batch boundary (and cuts large chunks in two for
    // the read helper); with one entry per segment the batch that straddles a chunk is carried
    // into the next buffer instead. Both return the same batches for every budget, straddling
    // or not.
    let t = TestLog::new(config);
    let dense = mixed_batches_in(&t, "dense", &[]);
    let sparse = mixed_batches_in(
        &t,
        "sparse",
        &[("index.interval.bytes".into(), (1u64 << 30).to_string())],
    );
    assert!(dense == sparse);
    for budget in [
        1,
        100_000,
        700_000,
        1 << 20,
        (1 << 20) + 1,
        3 << 20,
        64 << 20,
    ] {
        let shapes = fetch_shapes(&t, "dense", budget);
        assert_eq!(
            shapes,
            fetch_shapes(&t, "sparse", budget),
            "budget {budget}"
        );
        assert_eq!(shapes.concat().last().unwrap().1 + 1, dense.len() as u64);
    }
}

#[test]
fn a_batch_larger_than_a_read_buffer_is_returned_whole_at_any_budget() {
    // 3 records of 1 MB: one batch above `READ_BUFFER_BYTES_MAX` (2 MiB), between small ones.
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("big", Some(1), &[], false).unwrap();
    let small = || vec![value("before"), value("after")];
    let big: Vec<Record> = (0..3)
        .map(|i| Record {
            value: Some(vec![b'0' + i; 1_000_000].into()),
            ..Record::default()
        })
        .collect();
    for records in [small(), big, small()] {
        t.log.append("big", Routing::Partition(0), records).unwrap();
    }
    const { assert!(log::READ_BUFFER_BYTES_MAX < 3_000_000) };
    for budget in [1, 4096, 1 << 20, 64 << 20] {
        let got = t.log.fetch("big", 0, 2, budget).unwrap();
        assert_eq!(got[0].info().base_offset, 2, "budget {budget}");
        assert!(got[0].bytes().len() > 3_000_000);
        log::decode_batch_info(got[0].bytes()).expect("a whole verified batch");
        let values: Vec<_> = got[0].records().map(|r| r.unwrap().value).collect();
        assert_eq!(values.len(), 3);
        // From the batch before it, with room for both.
        let got = t.log.fetch("big", 0, 0, budget.max(4 << 20)).unwrap();
        assert_eq!(got.len(), 3, "budget {budget}");
    }
}

#[test]
fn corruption_in_the_middle_of_a_long_scan_names_the_segment_and_the_batch() {
    with_and_without_the_read_helper(corruption_mid_scan);
}

fn corruption_mid_scan(config: LogConfig) {
    use std::os::unix::fs::FileExt as _;
    // 40 batches of about 110 KB (four read chunks); one byte changed in the value of batch 17
    // (inside a chunk, past its first read piece; with the read helper, in the part after the
    // cut). Scans reach the batches before it and then fail naming that batch, at every
    // budget; nothing after it is handed out.
    let t = TestLog::new(config);
    t.log.create_topic("c", Some(1), &[], false).unwrap();
    let batch: Vec<Record> = (0..1000)
        .map(|_| Record {
            value: Some(vec![b'v'; 100].into()),
            ..Record::default()
        })
        .collect();
    for _ in 0..40 {
        t.log
            .append("c", Routing::Partition(0), batch.clone())
            .unwrap();
    }
    let sizes: Vec<u64> = t
        .log
        .fetch("c", 0, 0, 64 << 20)
        .unwrap()
        .iter()
        .map(|b| b.bytes().len() as u64)
        .collect();
    assert_eq!(sizes.len(), 40);
    let bad_position: u64 = sizes[..17].iter().sum();
    let path = t.partition_dir("c", 0).join(format!("{:020}.log", 0));
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(b"X", bad_position + sizes[17] / 2)
        .unwrap();
    for budget in [1, 100_000, 1 << 20, 64 << 20] {
        let mut offset = 0;
        let err = loop {
            match t.log.fetch("c", 0, offset, budget) {
                Ok(got) => offset = got.last().unwrap().info().last_offset + 1,
                Err(e) => break e,
            }
            assert!(
                offset <= 17_000,
                "batch 17 was handed out (budget {budget})"
            );
        };
        assert!(
            matches!(
                &err,
                Error::Corrupt { segment, position, reason }
                    if *segment == path && *position == bad_position && reason.contains("CRC")
            ),
            "budget {budget}: expected Corrupt at {bad_position} in {path:?}, got {err:?}"
        );
    }
}

#[test]
fn a_damaged_base_offset_is_corruption_not_a_gap() {
    with_and_without_the_read_helper(damaged_base_offset);
}

fn damaged_base_offset(config: LogConfig) {
    use std::os::unix::fs::FileExt as _;
    // The base offset (the batch's first 8 bytes) lies outside the batch's CRC: changed, the
    // batch still verifies. Lowered, a reader used to leave the batch out as already read
    // (its records skipped); raised past the end, a reader found nothing (a stalled consumer).
    for new_base in [0_u64, 1_000_000] {
        let t = TestLog::new(config.clone());
        t.log.create_topic("o", Some(1), &[], false).unwrap();
        for i in 0..4 {
            t.log
                .append("o", Routing::Partition(0), vec![value(&i.to_string()); 10])
                .unwrap();
        }
        let sizes: Vec<u64> = t
            .log
            .fetch("o", 0, 0, 1 << 20)
            .unwrap()
            .iter()
            .map(|b| b.bytes().len() as u64)
            .collect();
        let position: u64 = sizes[..2].iter().sum();
        let path = t.partition_dir("o", 0).join(format!("{:020}.log", 0));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&new_base.to_be_bytes(), position)
            .unwrap();
        for from in [0, 15, 20] {
            let err = t.log.fetch("o", 0, from, 1 << 20).unwrap_err();
            assert!(
                matches!(
                    &err,
                    Error::Corrupt { segment, position: at, .. } if *segment == path && *at == position
                ),
                "base {new_base}, from {from}: {err:?}"
            );
        }
        // What lies before the damage still reads.
        assert_eq!(t.log.fetch("o", 0, 0, 1).unwrap().len(), 1);
    }
}

#[test]
fn a_record_that_does_not_parse_in_a_verified_batch_names_its_segment_and_position() {
    use std::os::unix::fs::FileExt as _;
    // The second batch's first record length is made negative and the batch's CRC-32C
    // recomputed, so the batch verifies and only record decoding finds the fault.
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("r", Some(1), &[], false).unwrap();
    for v in ["first", "second"] {
        t.log
            .append("r", Routing::Partition(0), vec![value(v), value(v)])
            .unwrap();
    }
    let batches = t.log.fetch("r", 0, 0, 1 << 20).unwrap();
    assert_eq!(batches[1].location(), (0, batches[0].bytes().len() as u64));
    let (_, at) = batches[1].location();
    let mut bad = batches[1].bytes().to_vec();
    bad[61] = 0x7f; // zigzag varint -64: a negative record length
    let crc = log::crc32c(&bad[21..]);
    bad[17..21].copy_from_slice(&crc.to_be_bytes());
    let path = t.partition_dir("r", 0).join(format!("{:020}.log", 0));
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&bad, at).unwrap();
    // The batch itself verifies; its records do not decode.
    let got = t.log.fetch("r", 0, 2, 1 << 20).unwrap();
    assert!(got[0].records().any(|r| r.is_err()));
    match t.log.read("r", 0, 0, 1 << 20) {
        Err(Error::Corrupt {
            segment, position, ..
        }) => {
            assert_eq!(segment, path);
            assert_eq!(position, at);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        values(&t.log.read("r", 0, 0, 1).unwrap()),
        ["first", "first"]
    );
}

#[test]
fn topic_ids_survive_reopen_and_differ_per_creation() {
    let t = TestLog::new(LogConfig::default());
    let first = t.log.create_topic("t", Some(1), &[], false).unwrap().id;
    assert_eq!(first.len(), 32);
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
    let t = t.reopen();
    assert_eq!(t.log.topic_id("t").unwrap(), first);
    assert_eq!(t.log.topic("t").unwrap().id, first);
    t.log.delete_topic("t").unwrap();
    let second = t.log.create_topic("t", Some(1), &[], false).unwrap().id;
    assert_ne!(second, first);
    let t = t.reopen();
    assert_eq!(t.log.topic_id("t").unwrap(), second);
}
