//! Capability: consumer groups — committed offsets (atomic, persisted), REST consumer instances
//! with subscription or manual assignment, positions and seeks, range assignment across a
//! group's instances, commit of fetched positions, and idle-instance expiry.
//!
//! Method: the public `Log` consumer API with a manual clock for expiry; no sleeping.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail loudly on setup errors"
)]

mod log_common;

use std::time::Duration;

use log_common::{TestLog, value};
use streamcache::log::{
    CommittedOffset, ConsumerSettings, Error, LogConfig, OffsetReset, Routing, Subscription,
    TopicPartition,
};

fn earliest() -> ConsumerSettings {
    ConsumerSettings {
        format: "binary".into(),
        offset_reset: OffsetReset::Earliest,
        auto_commit: false,
        request_timeout_ms: 1000,
    }
}

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

#[test]
fn a_single_member_gets_every_partition_at_once_and_reads_from_committed_offsets() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(3), &[], false).unwrap();
    for p in 0..3 {
        t.log
            .append(
                "t",
                Routing::Partition(p),
                vec![value(&format!("{p}-a")), value(&format!("{p}-b"))],
            )
            .unwrap();
    }
    t.log
        .commit_offsets(
            "g",
            &[(
                tp("t", 1),
                CommittedOffset {
                    offset: 1,
                    metadata: String::new(),
                },
            )],
        )
        .unwrap();
    let id = t.log.create_consumer("g", None, earliest()).unwrap();
    assert!(id.starts_with("rest-consumer-"));
    t.log
        .subscribe_consumer("g", &id, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    assert_eq!(t.log.consumer_subscription("g", &id).unwrap(), ["t"]);
    assert_eq!(
        t.log.consumer_assignment("g", &id).unwrap(),
        [tp("t", 0), tp("t", 1), tp("t", 2)]
    );
    let got = t.log.poll_consumer("g", &id, 1 << 20).unwrap();
    let mut seen: Vec<_> = got.iter().map(|r| (r.partition, r.record.offset)).collect();
    seen.sort_unstable();
    assert_eq!(seen, vec![(0, 0), (0, 1), (1, 1), (2, 0), (2, 1)]);
    assert!(t.log.poll_consumer("g", &id, 1 << 20).unwrap().is_empty());
    // Commit everything fetched, then a new instance starts after it.
    t.log.commit_consumer("g", &id, None).unwrap();
    let committed = t
        .log
        .consumer_committed("g", &id, &[tp("t", 0), tp("t", 2)])
        .unwrap();
    assert!(
        committed
            .iter()
            .all(|(_, c)| c.as_ref().unwrap().offset == 2)
    );
    t.log.delete_consumer("g", &id).unwrap();
    assert!(matches!(
        t.log.poll_consumer("g", &id, 1),
        Err(Error::InstanceNotFound { .. })
    ));
}

#[test]
fn range_assignment_splits_partitions_across_instances() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(5), &[], false).unwrap();
    let a = t.log.create_consumer("g", Some("a"), earliest()).unwrap();
    let b = t.log.create_consumer("g", Some("b"), earliest()).unwrap();
    for id in [&a, &b] {
        t.log
            .subscribe_consumer("g", id, Subscription::Pattern("t.*".into()))
            .unwrap();
    }
    assert_eq!(
        t.log.consumer_assignment("g", &a).unwrap(),
        [tp("t", 0), tp("t", 1), tp("t", 2)]
    );
    assert_eq!(
        t.log.consumer_assignment("g", &b).unwrap(),
        [tp("t", 3), tp("t", 4)]
    );
    t.log.delete_consumer("g", &a).unwrap();
    assert_eq!(
        t.log.consumer_assignment("g", &b).unwrap().len(),
        5,
        "the survivor takes over"
    );
    assert!(matches!(
        t.log.create_consumer("g", Some("b"), earliest()),
        Err(Error::InstanceExists { .. })
    ));
}

#[test]
fn manual_assignment_seeks_and_explicit_commits() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(2), &[], false).unwrap();
    t.log
        .append(
            "t",
            Routing::Partition(1),
            (0..5).map(|i| value(&i.to_string())).collect(),
        )
        .unwrap();
    let id = t.log.create_consumer("g", Some("m"), earliest()).unwrap();
    t.log.assign_consumer("g", &id, vec![tp("t", 1)]).unwrap();
    assert!(matches!(
        t.log
            .subscribe_consumer("g", &id, Subscription::Topics(vec!["t".into()])),
        Err(Error::IllegalState { .. })
    ));
    t.log.seek_consumer("g", &id, &[(tp("t", 1), 3)]).unwrap();
    let got = t.log.poll_consumer("g", &id, 1 << 20).unwrap();
    assert_eq!(
        got.iter().map(|r| r.record.offset).collect::<Vec<_>>(),
        vec![3, 4]
    );
    t.log
        .seek_consumer_to("g", &id, &[tp("t", 1)], true)
        .unwrap();
    assert_eq!(t.log.poll_consumer("g", &id, 1 << 20).unwrap().len(), 5);
    t.log
        .seek_consumer_to("g", &id, &[tp("t", 1)], false)
        .unwrap();
    assert!(t.log.poll_consumer("g", &id, 1 << 20).unwrap().is_empty());
    assert!(matches!(
        t.log.seek_consumer("g", &id, &[(tp("t", 0), 0)]),
        Err(Error::IllegalState { .. })
    ));
    t.log
        .commit_consumer("g", &id, Some(vec![(tp("t", 1), 3, "meta".into())]))
        .unwrap();
    let c = t.log.committed_offset("g", &tp("t", 1)).unwrap().unwrap();
    assert_eq!(
        (c.offset, c.metadata.as_str()),
        (3, "meta"),
        "commits the next offset as given"
    );
}

#[test]
fn unsubscribing_or_assigning_nothing_ends_a_manual_assignment() {
    // As KafkaConsumer's: `unsubscribe()` also clears partitions given by `assign()`, and
    // `assign()` of no partitions is `unsubscribe()`; either way the instance may subscribe.
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(2), &[], false).unwrap();
    let a = t.log.create_consumer("g", Some("a"), earliest()).unwrap();
    t.log.assign_consumer("g", &a, vec![tp("t", 0)]).unwrap();
    t.log.unsubscribe_consumer("g", &a).unwrap();
    assert!(t.log.consumer_assignment("g", &a).unwrap().is_empty());
    t.log
        .subscribe_consumer("g", &a, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    assert_eq!(
        t.log.consumer_assignment("g", &a).unwrap(),
        [tp("t", 0), tp("t", 1)]
    );
    let b = t.log.create_consumer("g", Some("b"), earliest()).unwrap();
    t.log.assign_consumer("g", &b, vec![tp("t", 1)]).unwrap();
    t.log.assign_consumer("g", &b, Vec::new()).unwrap();
    t.log
        .subscribe_consumer("g", &b, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    assert_eq!(t.log.consumer_assignment("g", &a).unwrap(), [tp("t", 0)]);
    assert_eq!(t.log.consumer_assignment("g", &b).unwrap(), [tp("t", 1)]);
    // Assigning nothing to a subscribed instance unsubscribes it too.
    t.log.assign_consumer("g", &b, Vec::new()).unwrap();
    assert!(t.log.consumer_subscription("g", &b).unwrap().is_empty());
    assert_eq!(
        t.log.consumer_assignment("g", &a).unwrap(),
        [tp("t", 0), tp("t", 1)]
    );
}

#[test]
fn auto_commit_commits_delivered_positions_on_the_next_poll() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("a"), value("b")])
        .unwrap();
    let settings = ConsumerSettings {
        auto_commit: true,
        ..earliest()
    };
    let id = t.log.create_consumer("g", None, settings).unwrap();
    t.log
        .subscribe_consumer("g", &id, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    assert_eq!(t.log.poll_consumer("g", &id, 1 << 20).unwrap().len(), 2);
    assert_eq!(t.log.committed_offset("g", &tp("t", 0)).unwrap(), None);
    t.log.poll_consumer("g", &id, 1 << 20).unwrap();
    assert_eq!(
        t.log
            .committed_offset("g", &tp("t", 0))
            .unwrap()
            .unwrap()
            .offset,
        2
    );
}

#[test]
fn auto_commit_works_for_more_partitions_than_a_commit_request_may_name() {
    use streamcache::log::{PARTITIONS_PER_TOPIC_MAX, SUBSCRIPTION_TOPICS_MAX};
    let t = TestLog::new(LogConfig::default());
    let per_topic = PARTITIONS_PER_TOPIC_MAX as usize;
    let topics: Vec<String> = (0..SUBSCRIPTION_TOPICS_MAX / per_topic + 1)
        .map(|i| format!("t{i}"))
        .collect();
    for name in &topics {
        t.log
            .create_topic(name, Some(PARTITIONS_PER_TOPIC_MAX), &[], false)
            .unwrap();
        for p in 0..PARTITIONS_PER_TOPIC_MAX {
            t.log
                .append(name, Routing::Partition(p), vec![value("a")])
                .unwrap();
        }
    }
    let partitions = topics.len() * per_topic;
    assert!(partitions > SUBSCRIPTION_TOPICS_MAX);
    let settings = ConsumerSettings {
        auto_commit: true,
        ..earliest()
    };
    let id = t.log.create_consumer("g", None, settings).unwrap();
    t.log
        .subscribe_consumer("g", &id, Subscription::Topics(topics.clone()))
        .unwrap();
    assert_eq!(
        t.log.poll_consumer("g", &id, 1 << 24).unwrap().len(),
        partitions
    );
    // The next poll commits every delivered position.
    assert!(t.log.poll_consumer("g", &id, 1 << 24).unwrap().is_empty());
    let last = tp(topics.last().unwrap(), PARTITIONS_PER_TOPIC_MAX - 1);
    assert_eq!(
        t.log.committed_offset("g", &last).unwrap().unwrap().offset,
        1
    );
}

#[test]
fn closing_every_instance_commits_what_auto_commit_instances_delivered() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("a"), value("b")])
        .unwrap();
    for (group, auto_commit) in [("auto", true), ("manual", false)] {
        let settings = ConsumerSettings {
            auto_commit,
            ..earliest()
        };
        let id = t.log.create_consumer(group, Some("c"), settings).unwrap();
        t.log
            .subscribe_consumer(group, &id, Subscription::Topics(vec!["t".into()]))
            .unwrap();
        assert_eq!(t.log.poll_consumer(group, &id, 1 << 20).unwrap().len(), 2);
    }
    assert_eq!(t.log.close_consumers().unwrap(), 2);
    let committed = |g: &str| t.log.committed_offset(g, &tp("t", 0)).unwrap();
    assert_eq!(committed("auto").map(|c| c.offset), Some(2));
    assert_eq!(
        committed("manual"),
        None,
        "no auto-commit, nothing committed"
    );
    assert!(t.log.poll_consumer("auto", "c", 1 << 20).is_err(), "closed");
    assert_eq!(t.log.close_consumers().unwrap(), 0);
}

#[test]
fn idle_instances_expire_by_the_clock() {
    let t = TestLog::new(LogConfig {
        consumer_instance_timeout_ms: 1000,
        ..LogConfig::default()
    });
    let idle = t
        .log
        .create_consumer("g", Some("idle"), earliest())
        .unwrap();
    let busy = t
        .log
        .create_consumer("g", Some("busy"), earliest())
        .unwrap();
    t.clock.advance(Duration::from_millis(600));
    t.log.consumer_assignment("g", &busy).unwrap();
    t.clock.advance(Duration::from_millis(400));
    assert_eq!(t.log.expire_idle_consumers().unwrap(), 1);
    assert!(matches!(
        t.log.consumer_settings("g", &idle),
        Err(Error::InstanceNotFound { .. })
    ));
    assert_eq!(
        t.log.consumer_settings("g", &busy).unwrap().format,
        "binary"
    );
}

#[test]
fn offsets_commit_atomically_and_validate() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    let ok = (
        tp("t", 0),
        CommittedOffset {
            offset: 5,
            metadata: String::new(),
        },
    );
    let bad = (
        tp("t", 9),
        CommittedOffset {
            offset: 5,
            metadata: String::new(),
        },
    );
    assert!(matches!(
        t.log.commit_offsets("g", &[ok.clone(), bad]),
        Err(Error::PartitionNotFound { .. })
    ));
    assert_eq!(
        t.log.committed_offset("g", &tp("t", 0)).unwrap(),
        None,
        "all or nothing"
    );
    let max = streamcache::log::COMMIT_METADATA_BYTES_MAX;
    let at_max = (
        tp("t", 0),
        CommittedOffset {
            offset: 1,
            metadata: "m".repeat(max),
        },
    );
    t.log.commit_offsets("g", &[at_max]).unwrap();
    let over = (
        tp("t", 0),
        CommittedOffset {
            offset: 1,
            metadata: "m".repeat(max + 1),
        },
    );
    let refused = t.log.commit_offsets("g", &[over]).unwrap_err();
    assert!(
        matches!(refused, Error::MetadataTooLarge { len, max: m } if len == max + 1 && m == max),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        format!("offset metadata of {} bytes exceeds {max} bytes", max + 1)
    );
    let group_max = "g".repeat(streamcache::log::GROUP_NAME_BYTES_MAX);
    t.log
        .commit_offsets(&group_max, std::slice::from_ref(&ok))
        .unwrap();
    let group_over = "g".repeat(streamcache::log::GROUP_NAME_BYTES_MAX + 1);
    assert!(matches!(
        t.log.commit_offsets(&group_over, &[ok]),
        Err(Error::GroupNameInvalid { .. })
    ));
}

#[test]
fn consumer_instance_limit_at_max_and_max_plus_one() {
    let t = TestLog::new(LogConfig::default());
    let max = streamcache::log::CONSUMER_INSTANCES_MAX;
    for i in 0..max {
        t.log
            .create_consumer("g", Some(&format!("c{i}")), earliest())
            .unwrap();
    }
    assert!(matches!(
        t.log.create_consumer("g", None, earliest()),
        Err(Error::TooManyInstances { len, max: m }) if len == max + 1 && m == max
    ));
}

#[test]
fn subscription_list_limit_over_max_is_rejected_before_any_work() {
    let t = TestLog::new(LogConfig::default());
    let id = t.log.create_consumer("g", None, earliest()).unwrap();
    let max = streamcache::log::SUBSCRIPTION_TOPICS_MAX;
    let too_many: Vec<String> = (0..=max).map(|i| format!("t{i}")).collect();
    assert!(matches!(
        t.log.subscribe_consumer("g", &id, Subscription::Topics(too_many)),
        Err(Error::TooManyTopicsInSubscription { len, max: m }) if len == max + 1 && m == max
    ));
    assert!(
        t.log.topics().unwrap().is_empty(),
        "no topic was auto-created"
    );
    let parts: Vec<TopicPartition> = (0..=max)
        .map(|i| tp("t", u32::try_from(i).unwrap()))
        .collect();
    assert!(matches!(
        t.log.assign_consumer("g", &id, parts),
        Err(Error::TooManyTopicsInSubscription { .. })
    ));
    // At the maximum: 1024 partitions of four 256-partition topics.
    let mut parts = Vec::new();
    for topic in ["a", "b", "c", "d"] {
        t.log
            .create_topic(
                topic,
                Some(streamcache::log::PARTITIONS_PER_TOPIC_MAX),
                &[],
                false,
            )
            .unwrap();
        parts.extend((0..streamcache::log::PARTITIONS_PER_TOPIC_MAX).map(|p| tp(topic, p)));
    }
    assert_eq!(parts.len(), max);
    t.log.assign_consumer("g", &id, parts).unwrap();
    assert_eq!(t.log.consumer_assignment("g", &id).unwrap().len(), max);
}

#[test]
fn deleting_a_topic_forgets_its_committed_offsets_and_positions() {
    let t = TestLog::new(LogConfig::default());
    for topic in ["t", "tt"] {
        t.log.create_topic(topic, Some(1), &[], false).unwrap();
        t.log
            .append(topic, Routing::Partition(0), vec![value("old")])
            .unwrap();
    }
    let commit = |topic: &str| {
        (
            tp(topic, 0),
            CommittedOffset {
                offset: 1,
                metadata: String::new(),
            },
        )
    };
    for group in ["g", "other"] {
        t.log
            .commit_offsets(group, &[commit("t"), commit("tt")])
            .unwrap();
    }
    // A live instance that has fetched "t" up to its end.
    let live = t
        .log
        .create_consumer("g", Some("live"), earliest())
        .unwrap();
    t.log
        .subscribe_consumer("g", &live, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    assert!(t.log.poll_consumer("g", &live, 1 << 20).unwrap().is_empty());

    t.log.delete_topic("t").unwrap();
    for group in ["g", "other"] {
        assert_eq!(t.log.committed_offset(group, &tp("t", 0)).unwrap(), None);
        assert_eq!(
            t.log.committed_offset(group, &tp("tt", 0)).unwrap(),
            Some(commit("tt").1),
            "another topic's offsets stay"
        );
    }
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    t.log
        .append(
            "t",
            Routing::Partition(0),
            vec![value("new-0"), value("new-1")],
        )
        .unwrap();
    let offsets = |got: Vec<streamcache::log::ConsumedRecord>| -> Vec<u64> {
        got.iter().map(|r| r.record.offset).collect()
    };
    assert_eq!(
        offsets(t.log.poll_consumer("g", &live, 1 << 20).unwrap()),
        [0, 1],
        "the live instance starts the new topic from its reset policy"
    );
    let fresh = t
        .log
        .create_consumer("g", Some("fresh"), earliest())
        .unwrap();
    t.log
        .assign_consumer("g", &fresh, vec![tp("t", 0)])
        .unwrap();
    assert_eq!(
        t.log
            .consumer_committed("g", &fresh, &[tp("t", 0)])
            .unwrap(),
        [(tp("t", 0), None)]
    );
    assert_eq!(
        offsets(t.log.poll_consumer("g", &fresh, 1 << 20).unwrap()),
        [0, 1],
        "a new instance of the group reads the new topic from offset 0"
    );

    // The removal is durable.
    let t = t.reopen();
    assert_eq!(t.log.committed_offset("other", &tp("t", 0)).unwrap(), None);
    assert_eq!(
        t.log.committed_offset("other", &tp("tt", 0)).unwrap(),
        Some(commit("tt").1)
    );
}

#[test]
fn concurrent_polls_of_one_instance_deliver_each_record_once() {
    const RECORDS: u64 = 200;
    const POLLERS: usize = 6;
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    // One batch per record, so a poll of one byte returns one record.
    for i in 0..RECORDS {
        t.log
            .append("t", Routing::Partition(0), vec![value(&i.to_string())])
            .unwrap();
    }
    let id = t.log.create_consumer("g", None, earliest()).unwrap();
    t.log.assign_consumer("g", &id, vec![tp("t", 0)]).unwrap();
    let start = std::sync::Barrier::new(POLLERS);
    let mut delivered: Vec<u64> = std::thread::scope(|s| {
        let pollers: Vec<_> = (0..POLLERS)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    let mut got = Vec::new();
                    loop {
                        let records = t.log.poll_consumer("g", &id, 1).unwrap();
                        if records.is_empty() {
                            return got;
                        }
                        got.extend(records.iter().map(|r| r.record.offset));
                    }
                })
            })
            .collect();
        pollers
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect()
    });
    delivered.sort_unstable();
    let repeats = delivered.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(repeats, 0, "{repeats} deliveries repeated an offset");
    assert_eq!(delivered, (0..RECORDS).collect::<Vec<_>>());
}

#[test]
fn a_poll_stops_at_max_bytes_inside_a_batch_but_returns_at_least_one_record() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    // One batch of eight 10-byte records.
    let records: Vec<_> = (0..8).map(|i| value(&format!("record-{i:03}"))).collect();
    t.log.append("t", Routing::Partition(0), records).unwrap();
    let id = t.log.create_consumer("g", None, earliest()).unwrap();
    t.log.assign_consumer("g", &id, vec![tp("t", 0)]).unwrap();
    let poll = |max_bytes: usize| -> Vec<u64> {
        t.log
            .poll_consumer("g", &id, max_bytes)
            .unwrap()
            .iter()
            .map(|r| r.record.offset)
            .collect()
    };
    assert_eq!(poll(20), [0, 1], "two records fill 20 bytes exactly");
    assert_eq!(poll(19), [2], "a third would pass 29 bytes");
    assert_eq!(
        poll(1),
        [3],
        "a record larger than max_bytes still comes alone"
    );
    assert_eq!(poll(1 << 20), [4, 5, 6, 7], "nothing was skipped");
}

/// A log under `config` whose topic `t` has two partitions of two records each.
fn two_partitions_of_two_records(config: LogConfig) -> TestLog {
    let t = TestLog::new(config);
    t.log.create_topic("t", Some(2), &[], false).unwrap();
    for p in 0..2 {
        t.log
            .append("t", Routing::Partition(p), vec![value("a"), value("b")])
            .unwrap();
    }
    t
}

#[test]
fn deleting_an_auto_commit_instance_commits_its_positions() {
    let t = two_partitions_of_two_records(LogConfig::default());
    for (group, auto_commit) in [("auto", true), ("manual", false)] {
        let settings = ConsumerSettings {
            auto_commit,
            ..earliest()
        };
        let id = t.log.create_consumer(group, None, settings).unwrap();
        t.log
            .assign_consumer(group, &id, vec![tp("t", 0), tp("t", 1)])
            .unwrap();
        assert_eq!(t.log.poll_consumer(group, &id, 1 << 20).unwrap().len(), 4);
        t.log.delete_consumer(group, &id).unwrap();
    }
    for p in 0..2 {
        assert_eq!(
            t.log
                .committed_offset("auto", &tp("t", p))
                .unwrap()
                .map(|c| c.offset),
            Some(2),
            "auto.commit.enable commits the delivered positions on close"
        );
        assert_eq!(t.log.committed_offset("manual", &tp("t", p)).unwrap(), None);
    }
}

/// A new instance `name` of `group` subscribed to `t`.
fn join_t(t: &TestLog, group: &str, name: &str, auto_commit: bool) -> String {
    let id = t
        .log
        .create_consumer(group, Some(name), settings_of(auto_commit))
        .unwrap();
    t.log
        .subscribe_consumer(group, &id, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    id
}

#[test]
fn a_rebalance_commits_what_auto_commit_instances_delivered_on_the_partitions_it_moves() {
    // Kafka's consumer commits its consumed positions before it rejoins a rebalancing group
    // under `enable.auto.commit` (`ConsumerCoordinator.onJoinPrepare`), so the member a
    // partition moves to does not deliver its records again.
    let t = two_partitions_of_two_records(LogConfig::default());
    for (group, auto_commit) in [("auto", true), ("manual", false)] {
        let join = |name: &str| join_t(&t, group, name, auto_commit);
        let a = join("a");
        assert_eq!(t.log.poll_consumer(group, &a, 1 << 20).unwrap().len(), 4);
        let b = join("b");
        assert_eq!(t.log.consumer_assignment(group, &b).unwrap(), [tp("t", 1)]);
        let again = t.log.poll_consumer(group, &b, 1 << 20).unwrap().len();
        assert_eq!(again, if auto_commit { 0 } else { 2 }, "{group}");
    }
    assert_eq!(
        t.log
            .committed_offset("auto", &tp("t", 1))
            .unwrap()
            .map(|c| c.offset),
        Some(2)
    );
}

/// Members a, b, c of a group over two partitions: a holds 0, b holds 1, c nothing. When a
/// leaves (deleted, unsubscribed or expired), the ranges shift: b takes 0 and c takes 1, which
/// b had delivered. Under auto-commit b's delivered position on 1 is committed before c reads.
#[test]
fn a_member_leaving_commits_what_auto_commit_members_delivered_on_the_partitions_that_shift() {
    for leave in ["delete", "unsubscribe", "expire"] {
        for (group, auto_commit) in [("auto", true), ("manual", false)] {
            let t = two_partitions_of_two_records(LogConfig {
                consumer_instance_timeout_ms: 1000,
                ..LogConfig::default()
            });
            let join = |name: &str| join_t(&t, group, name, auto_commit);
            let (a, b) = (join("a"), join("b"));
            assert_eq!(t.log.poll_consumer(group, &a, 1 << 20).unwrap().len(), 2);
            assert_eq!(t.log.poll_consumer(group, &b, 1 << 20).unwrap().len(), 2);
            let c = join("c");
            assert_eq!(t.log.consumer_assignment(group, &b).unwrap(), [tp("t", 1)]);
            assert!(t.log.consumer_assignment(group, &c).unwrap().is_empty());
            match leave {
                "delete" => t.log.delete_consumer(group, &a).unwrap(),
                "unsubscribe" => t.log.unsubscribe_consumer(group, &a).unwrap(),
                _ => {
                    // b and c stay active; a alone is idle past the timeout.
                    t.clock.advance(Duration::from_millis(600));
                    t.log.consumer_assignment(group, &b).unwrap();
                    t.log.consumer_assignment(group, &c).unwrap();
                    t.clock.advance(Duration::from_millis(600));
                    assert_eq!(t.log.expire_idle_consumers().unwrap(), 1);
                }
            }
            assert_eq!(t.log.consumer_assignment(group, &c).unwrap(), [tp("t", 1)]);
            let committed = t
                .log
                .committed_offset(group, &tp("t", 1))
                .unwrap()
                .map(|c| c.offset);
            assert_eq!(committed, auto_commit.then_some(2), "{leave}, {group}");
            let again = t.log.poll_consumer(group, &c, 1 << 20).unwrap().len();
            assert_eq!(again, if auto_commit { 0 } else { 2 }, "{leave}, {group}");
        }
    }
}

#[test]
fn an_expired_auto_commit_instance_commits_its_positions() {
    let t = two_partitions_of_two_records(LogConfig {
        consumer_instance_timeout_ms: 1000,
        ..LogConfig::default()
    });
    for (group, auto_commit) in [("auto", true), ("manual", false), ("other", true)] {
        let id = t
            .log
            .create_consumer(group, None, settings_of(auto_commit))
            .unwrap();
        t.log
            .assign_consumer(group, &id, vec![tp("t", 0), tp("t", 1)])
            .unwrap();
        assert_eq!(t.log.poll_consumer(group, &id, 1 << 20).unwrap().len(), 4);
    }
    t.clock.advance(Duration::from_millis(1000));
    // Expiry closes an instance as the REST Proxy's expiration thread does, and
    // KafkaConsumer.close() commits the consumed positions under enable.auto.commit.
    assert_eq!(t.log.expire_idle_consumers().unwrap(), 3);
    for (group, expected) in [("auto", Some(2)), ("manual", None), ("other", Some(2))] {
        for p in 0..2 {
            assert_eq!(
                t.log
                    .committed_offset(group, &tp("t", p))
                    .unwrap()
                    .map(|c| c.offset),
                expected,
                "group {group}: idle expiry commits only under auto.commit.enable"
            );
        }
    }
}

#[test]
fn an_instance_expired_by_another_consumer_call_commits_its_positions() {
    let t = TestLog::new(LogConfig {
        consumer_instance_timeout_ms: 1000,
        ..LogConfig::default()
    });
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("a"), value("b")])
        .unwrap();
    let id = t.log.create_consumer("g", None, settings_of(true)).unwrap();
    t.log
        .subscribe_consumer("g", &id, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    assert_eq!(t.log.poll_consumer("g", &id, 1 << 20).unwrap().len(), 2);
    t.clock.advance(Duration::from_millis(1000));
    // A new member of the group expires the idle one first, so it resumes at the committed
    // position instead of reading the delivered records again.
    let next = t.log.create_consumer("g", None, settings_of(true)).unwrap();
    assert!(matches!(
        t.log.consumer_settings("g", &id),
        Err(Error::InstanceNotFound { .. })
    ));
    t.log
        .subscribe_consumer("g", &next, Subscription::Topics(vec!["t".into()]))
        .unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("c")])
        .unwrap();
    let got = t.log.poll_consumer("g", &next, 1 << 20).unwrap();
    assert_eq!(
        got.iter().map(|r| r.record.offset).collect::<Vec<_>>(),
        vec![2],
        "the expired instance's delivered positions were committed"
    );
}

fn settings_of(auto_commit: bool) -> ConsumerSettings {
    ConsumerSettings {
        auto_commit,
        ..earliest()
    }
}

#[test]
fn committed_offsets_are_kept_for_at_most_consumer_groups_max_groups() {
    use streamcache::log::CONSUMER_GROUPS_MAX;
    let at = |offset| {
        [(
            tp("t", 0),
            CommittedOffset {
                offset,
                metadata: String::new(),
            },
        )]
    };
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    for i in 0..CONSUMER_GROUPS_MAX {
        t.log.commit_offsets(&format!("g{i}"), &at(1)).unwrap();
    }
    // One group more is refused and writes nothing; the groups there keep committing.
    let refused = t.log.commit_offsets("one-more", &at(1)).unwrap_err();
    assert!(
        matches!(refused, Error::TooManyGroups { len, max } if len == CONSUMER_GROUPS_MAX + 1 && max == CONSUMER_GROUPS_MAX),
        "{refused:?}"
    );
    assert_eq!(
        t.log.committed_offset("one-more", &tp("t", 0)).unwrap(),
        None
    );
    t.log.commit_offsets("g0", &at(7)).unwrap();
    assert_eq!(
        t.log
            .committed_offset("g0", &tp("t", 0))
            .unwrap()
            .unwrap()
            .offset,
        7
    );
    // An empty commit creates no group, so it is not refused.
    t.log.commit_offsets("one-more", &[]).unwrap();

    // The groups are counted again from the stored offsets on open.
    let t = t.reopen();
    assert!(matches!(
        t.log.commit_offsets("one-more", &at(1)),
        Err(Error::TooManyGroups { .. })
    ));
    assert_eq!(t.log.consumer_groups().unwrap().len(), CONSUMER_GROUPS_MAX);

    // Deleting the topic deletes every group's offsets on it, and with them the groups.
    t.log.delete_topic("t").unwrap();
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    t.log.commit_offsets("one-more", &at(1)).unwrap();
    assert_eq!(t.log.consumer_groups().unwrap().len(), 1);
}

#[test]
fn a_partition_with_more_than_one_poll_can_take_does_not_keep_the_others_waiting() {
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("f", Some(2), &[], false).unwrap();
    for i in 0..10 {
        t.log
            .append("f", Routing::Partition(0), vec![value(&format!("0-{i}"))])
            .unwrap();
    }
    t.log
        .append("f", Routing::Partition(1), vec![value("1-0")])
        .unwrap();
    let id = t.log.create_consumer("g", Some("m"), earliest()).unwrap();
    t.log
        .assign_consumer("g", &id, vec![tp("f", 0), tp("f", 1)])
        .unwrap();
    // A one-byte budget takes one record per poll. The poll after one that skipped partition
    // 1 starts with it, though partition 0 still has nine records waiting.
    let first = t.log.poll_consumer("g", &id, 1).unwrap();
    let second = t.log.poll_consumer("g", &id, 1).unwrap();
    let third = t.log.poll_consumer("g", &id, 1).unwrap();
    let read = |polled: &[streamcache::log::ConsumedRecord]| {
        polled
            .iter()
            .map(|r| (r.partition, r.record.offset))
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&first), [(0, 0)]);
    assert_eq!(read(&second), [(1, 0)]);
    // Nothing left on partition 1: partition 0 goes on where it stopped.
    assert_eq!(read(&third), [(0, 1)]);
}

#[test]
fn topic_pattern_at_max_and_past_it_and_anchored() {
    use streamcache::log::{TOPIC_PATTERN_BYTES_MAX, TOPIC_PATTERN_COMPILED_BYTES_MAX};
    let t = TestLog::new(LogConfig::default());
    t.log.create_topic("orders", Some(1), &[], false).unwrap();
    t.log.create_topic("other", Some(1), &[], false).unwrap();
    let id = t.log.create_consumer("g", Some("a"), earliest()).unwrap();
    let subscribe = |p: String| t.log.subscribe_consumer("g", &id, Subscription::Pattern(p));
    // `orders` followed by optional `x`s, exactly at the limit.
    let at_max = format!(
        "orders{}",
        "x?".repeat((TOPIC_PATTERN_BYTES_MAX - "orders".len()) / 2)
    );
    assert_eq!(at_max.len(), TOPIC_PATTERN_BYTES_MAX);
    subscribe(at_max.clone()).unwrap();
    assert_eq!(t.log.consumer_subscription("g", &id).unwrap(), ["orders"]);
    assert!(matches!(
        subscribe(format!("{at_max}x")),
        Err(Error::PatternInvalid { .. })
    ));
    // A short pattern that compiles past the size limit.
    let huge = format!("[a-z]{{{}}}", TOPIC_PATTERN_COMPILED_BYTES_MAX);
    assert!(huge.len() < TOPIC_PATTERN_BYTES_MAX);
    assert!(matches!(subscribe(huge), Err(Error::PatternInvalid { .. })));
    // A pattern that closes a group it did not open cannot escape the anchors.
    assert!(matches!(
        subscribe("ord)|(?:.*".into()),
        Err(Error::PatternInvalid { .. })
    ));
}

/// A manually assigned partition whose topic is deleted is skipped by polls (and by the wait
/// for appends), as a Kafka consumer logs an unknown partition and fetches the rest; it had
/// failed every poll with TopicNotFound until the instance was assigned again.
#[test]
fn a_poll_skips_a_manually_assigned_partition_whose_topic_is_gone() {
    let t = TestLog::new(LogConfig::default());
    for topic in ["t", "u"] {
        t.log.create_topic(topic, Some(1), &[], false).unwrap();
        t.log
            .append(topic, Routing::Partition(0), vec![value("a")])
            .unwrap();
    }
    let id = t.log.create_consumer("g", None, earliest()).unwrap();
    t.log
        .assign_consumer("g", &id, vec![tp("t", 0), tp("u", 0)])
        .unwrap();
    t.log.delete_topic("t").unwrap();
    assert_eq!(t.log.consumer_watch("g", &id).unwrap().len(), 1, "u's only");
    let got = t.log.poll_consumer("g", &id, 1 << 20).unwrap();
    let topics: Vec<&str> = got.iter().map(|r| r.topic.as_str()).collect();
    assert_eq!(topics, ["u"]);
    assert!(t.log.poll_consumer("g", &id, 1 << 20).unwrap().is_empty());
    // The topic created again under its name is read from its start.
    t.log.create_topic("t", Some(1), &[], false).unwrap();
    t.log
        .append("t", Routing::Partition(0), vec![value("new")])
        .unwrap();
    let got = t.log.poll_consumer("g", &id, 1 << 20).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].topic.as_str(), got[0].record.offset), ("t", 0));
}

/// An instance may seek a partition still in its assignment after its topic was deleted (a
/// manual assignment keeps it; a subscription until the next rebalance). Auto-commit skips
/// that position, as closing an instance does: written in one batch with the rest, it had
/// failed every later poll of a manual instance with TopicNotFound, and a rebalance had
/// handed the instance's other lost partitions over uncommitted.
#[test]
fn auto_commit_skips_a_position_on_a_deleted_topic() {
    let t = two_partitions_of_two_records(LogConfig::default());
    for topic in ["gone", "u"] {
        t.log.create_topic(topic, Some(1), &[], false).unwrap();
        t.log
            .append(topic, Routing::Partition(0), vec![value("a")])
            .unwrap();
    }
    let manual = t.log.create_consumer("m", None, settings_of(true)).unwrap();
    t.log
        .assign_consumer("m", &manual, vec![tp("gone", 0), tp("u", 0)])
        .unwrap();
    let a = t
        .log
        .create_consumer("s", Some("a"), settings_of(true))
        .unwrap();
    t.log
        .subscribe_consumer(
            "s",
            &a,
            Subscription::Topics(vec!["gone".into(), "t".into()]),
        )
        .unwrap();
    assert_eq!(t.log.poll_consumer("s", &a, 1 << 20).unwrap().len(), 5);
    t.log.delete_topic("gone").unwrap();
    for (group, id) in [("m", &manual), ("s", &a)] {
        t.log
            .seek_consumer(group, id, &[(tp("gone", 0), 0)])
            .unwrap();
    }

    for _ in 0..2 {
        t.log.poll_consumer("m", &manual, 1 << 20).unwrap();
    }
    assert_eq!(
        t.log
            .committed_offset("m", &tp("u", 0))
            .unwrap()
            .map(|c| c.offset),
        Some(1)
    );

    let b = join_t(&t, "s", "b", true);
    assert_eq!(t.log.consumer_assignment("s", &b).unwrap(), [tp("t", 1)]);
    assert_eq!(
        t.log
            .committed_offset("s", &tp("t", 1))
            .unwrap()
            .map(|c| c.offset),
        Some(2)
    );
    assert!(t.log.poll_consumer("s", &b, 1 << 20).unwrap().is_empty());
}
