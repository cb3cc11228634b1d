//! Capability: the real-time channel hub and watchers — per-channel monotonic ids, bounded
//! replay, `Last-Event-ID` resume or resync, explicit lag recovery, limits, presence, socket
//! ids, and the change-event → channel-event function.
//!
//! Method: drive `Hub` and `Watcher` through their public API in-process, each hub on a
//! `ManualClock` (its wall clock sets where a new channel's ids start; a second hub on the same
//! clock, moved on, stands for the server after a restart).
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns unwrap and panic on failure"
)]

use std::time::Duration;

use std::sync::Arc;

use futures::FutureExt as _;
use serde_json::{Value, json};
use streamcache::clock::ManualClock;
use streamcache::realtime::{
    CHANNEL_NAME_CHARS_MAX, Delivery, EVENT_DATA_BYTES_MAX, EVENT_ID_NOT_KEPT,
    EVENT_NAME_CHARS_MAX, Error, HUB_CHANNELS_MAX, Hub, IDS_PER_MS, PINNED_CHANNELS_MAX,
    PRESENCE_MEMBERS_MAX, RealtimeConfig, SUBSCRIBER_QUEUE_EVENTS_MAX, SocketId, Start,
    Subscription, Watcher, WatcherConfig,
};

/// The wall clock of the tests' hubs (2026-01-01T00:00:00Z).
const NOW_MS: u64 = 1_767_225_600_000;
/// The base of a channel a hub creates at [`NOW_MS`] (no channel evicted yet): its first event
/// gets `BASE + 1`.
const BASE: u64 = NOW_MS * IDS_PER_MS;

fn hub(replay_events: usize) -> Hub {
    hub_on(ManualClock::shared(NOW_MS), replay_events)
}

fn hub_on(clock: Arc<ManualClock>, replay_events: usize) -> Hub {
    Hub::new(
        &RealtimeConfig {
            replay_events,
            ..RealtimeConfig::default()
        },
        42,
        clock,
    )
}

async fn next(sub: &mut Subscription) -> Delivery {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .unwrap()
}

async fn next_id(sub: &mut Subscription) -> u64 {
    match next(sub).await {
        Delivery::Event(e) => e.id(),
        Delivery::Resync { head } => panic!("unexpected resync at {head}"),
    }
}

#[tokio::test]
async fn ids_are_monotonic_per_channel() {
    let hub = hub(16);
    assert_eq!(hub.publish("a", "E", json!(1), None).unwrap(), BASE + 1);
    assert_eq!(hub.publish("a", "E", json!(2), None).unwrap(), BASE + 2);
    assert_eq!(hub.publish("b", "E", json!(3), None).unwrap(), BASE + 1);
    assert_eq!(hub.publish("a", "E", json!(4), None).unwrap(), BASE + 3);
    assert_eq!(hub.head("a"), BASE + 3);
    assert_eq!(hub.head("none"), 0);
    // A channel that exists but has no event yet is at its base.
    let _sub = hub.subscribe("c", None).unwrap();
    assert_eq!(hub.head("c"), BASE);
    assert!(hub.head("a") < 1 << 53, "ids are exact JavaScript numbers");
}

#[tokio::test]
async fn live_subscriber_gets_events_in_order_with_payload() {
    let hub = hub(16);
    let mut sub = hub.subscribe("orders", None).unwrap();
    assert_eq!(sub.start(), Start::Live);
    for n in 1..=5 {
        hub.publish("orders", "NewOrder", json!({"n": n, "s": "ü \"q\""}), None)
            .unwrap();
    }
    for n in 1..=5u64 {
        let Delivery::Event(e) = next(&mut sub).await else {
            panic!("resync")
        };
        assert_eq!(e.id(), BASE + n);
        assert_eq!(e.name(), "NewOrder");
        assert_eq!(e.channel(), "orders");
        let data: Value = serde_json::from_str(e.data()).unwrap();
        assert_eq!(data, json!({"n": n, "s": "ü \"q\""}));
    }
}

#[tokio::test]
async fn last_event_id_replays_what_is_buffered() {
    let hub = hub(16);
    for n in 0..5 {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    let mut sub = hub.subscribe("orders", Some(BASE + 2)).unwrap();
    assert_eq!(sub.start(), Start::Replayed { count: 3 });
    hub.publish("orders", "E", json!(5), None).unwrap();
    for want in 3..=6 {
        assert_eq!(next_id(&mut sub).await, BASE + want);
    }
    let at_head = hub.subscribe("orders", Some(BASE + 6)).unwrap();
    assert_eq!(at_head.start(), Start::Replayed { count: 0 });
}

#[tokio::test]
async fn aged_out_or_future_last_event_id_asks_for_resync() {
    let hub = hub(4);
    for n in 0..10 {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    // Buffer holds 7..=10: resuming after 6 still works, after 5 does not.
    assert_eq!(
        hub.subscribe("orders", Some(BASE + 6)).unwrap().start(),
        Start::Replayed { count: 4 }
    );
    let mut sub = hub.subscribe("orders", Some(BASE + 5)).unwrap();
    assert_eq!(
        sub.start(),
        Start::Resync {
            requested: BASE + 5,
            head: BASE + 10
        }
    );
    hub.publish("orders", "E", json!(10), None).unwrap();
    assert_eq!(next_id(&mut sub).await, BASE + 11);
    // Ahead of the head, or below the base (nothing buffered), cannot be resumed either; the
    // largest id there is (an unreadable `Last-Event-ID` becomes it) does not overflow.
    let fresh = hub_fresh();
    for requested in [BASE + 3, BASE - 1, 3, u64::MAX] {
        assert_eq!(
            fresh.subscribe("orders", Some(requested)).unwrap().start(),
            Start::Resync {
                requested,
                head: BASE
            },
            "{requested}"
        );
    }
    assert_eq!(
        fresh.subscribe("orders", Some(BASE)).unwrap().start(),
        Start::Replayed { count: 0 },
        "at the head of an empty channel: nothing missed"
    );
}

fn hub_fresh() -> Hub {
    hub(16)
}

/// Publishes `count` events to `channel`; returns their ids.
fn publish_n(hub: &Hub, channel: &str, count: u64) -> Vec<u64> {
    (0..count)
        .map(|n| hub.publish(channel, "E", json!(n), None).unwrap())
        .collect()
}

/// A restart: the server's next hub starts each channel's ids at its clock × `IDS_PER_MS`, above
/// every id the previous one handed out, so a browser resuming with an id from before the restart
/// is told to resync — also once the new channel has published more events than that id's
/// position in the old sequence (ids that restart at 1 would have replayed it the new events
/// after that position, hiding the ones it missed).
#[tokio::test]
async fn a_last_event_id_from_before_a_restart_gets_resync_however_far_the_new_head_is() {
    let clock = ManualClock::shared(NOW_MS);
    let before = hub_on(clock.clone(), 16);
    let old_ids = publish_n(&before, "orders", 10);
    // The browser saw up to the 5th event, then lost its connection; the server restarts.
    let last_seen = old_ids[4];
    drop(before);
    clock.advance(Duration::from_secs(30));
    let after = hub_on(clock.clone(), 16);

    // Nothing published yet: an id below the base cannot be resumed (not "nothing missed"); the
    // head (what a `resync` there carries) can.
    assert!(matches!(
        after.subscribe("orders", Some(last_seen)).unwrap().start(),
        Start::Resync { requested, .. } if requested == last_seen
    ));
    let new_base = after.head("orders");
    assert_eq!(
        after.subscribe("orders", Some(new_base)).unwrap().start(),
        Start::Replayed { count: 0 }
    );
    let mut live = after.subscribe("orders", None).unwrap();
    assert_eq!(live.start(), Start::Live);
    publish_n(&after, "orders", 10);
    let mut resumed = after.subscribe("orders", Some(last_seen)).unwrap();
    assert_eq!(
        resumed.start(),
        Start::Resync {
            requested: last_seen,
            head: new_base + 10
        },
        "the events after {last_seen} were lost with the restart"
    );
    after.publish("orders", "E", json!(10), None).unwrap();
    assert_eq!(next_id(&mut resumed).await, new_base + 11);
    assert_eq!(next_id(&mut live).await, new_base + 1);
    // An id of the new sequence resumes as usual, and at the head nothing is missed.
    for (requested, count) in [(new_base + 8, 3), (new_base + 11, 0)] {
        let sub = after.subscribe("orders", Some(requested)).unwrap();
        assert_eq!(sub.start(), Start::Replayed { count }, "{requested}");
    }
    // The bases are the clock's milliseconds × IDS_PER_MS.
    assert_eq!(old_ids[0], BASE + 1);
    assert_eq!(new_base, (NOW_MS + 30_000) * IDS_PER_MS);
}

/// The invariant's edge: a channel that published just under `IDS_PER_MS` events per
/// millisecond of its life still ends below the next process's base, even when that process
/// starts one millisecond later.
#[test]
fn a_channel_under_ids_per_ms_a_millisecond_stays_below_the_next_base() {
    let clock = ManualClock::shared(NOW_MS);
    let before = hub_on(clock.clone(), 16);
    let last_seen = *publish_n(&before, "orders", IDS_PER_MS - 1).last().unwrap();
    clock.advance(Duration::from_millis(1));
    // A buffer that still holds every event of the new channel.
    let after = hub_on(clock, 4096);
    publish_n(&after, "orders", 2 * IDS_PER_MS);
    assert!(matches!(
        after.subscribe("orders", Some(last_seen)).unwrap().start(),
        Start::Resync { requested, .. } if requested == last_seen
    ));
    assert_eq!(last_seen, BASE + IDS_PER_MS - 1);
    assert_eq!(after.head("orders"), BASE + IDS_PER_MS + 2 * IDS_PER_MS);
}

/// Fills `hub` with busy channels besides its `idle` ones, then subscribes to `new`: a channel
/// that must evict one of the idle ones. Returns the busy subscriptions and the new one.
fn evict_for(hub: &Hub, idle: usize, new: &str) -> (Vec<Subscription>, Subscription) {
    let busy: Vec<_> = (idle..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("busy-{i}"), None).unwrap())
        .collect();
    (busy, hub.subscribe(new, None).unwrap())
}

/// An evicted channel's ids are not handed out again: the channel made later under its name
/// starts above the highest head the hub evicted — within the same millisecond, or with the
/// wall clock gone back meanwhile — so a subscriber that missed the evicted channel's last
/// events is told to resync.
#[tokio::test]
async fn a_channel_recreated_after_eviction_starts_above_the_evicted_ids() {
    let clock = ManualClock::shared(NOW_MS);
    let hub = hub_on(clock.clone(), 16);
    let old_ids = publish_n(&hub, "orders", 5);
    // `orders` is the one idle channel of a full hub: `other` evicts it.
    let (busy, other) = evict_for(&hub, 1, "other");
    assert_eq!(hub.head("orders"), 0, "evicted");
    drop(other);
    // `orders` comes back in the same millisecond (evicting the now idle `other`).
    let mut live = hub.subscribe("orders", None).unwrap();
    publish_n(&hub, "orders", 10);
    // A subscriber that had seen up to the 3rd event missed the 4th and 5th: resync.
    assert!(
        matches!(
            hub.subscribe("orders", Some(old_ids[2])).unwrap().start(),
            Start::Resync { requested, .. } if requested == old_ids[2]
        ),
        "the events after {} were lost with the eviction",
        old_ids[2]
    );
    // One that had seen the evicted channel's last event missed nothing: it gets every event
    // of the new channel, whose ids follow on.
    assert_eq!(
        hub.subscribe("orders", Some(old_ids[4])).unwrap().start(),
        Start::Replayed { count: 10 }
    );
    assert_eq!(next_id(&mut live).await, old_ids[4] + 1);
    assert_eq!(hub.head("orders"), BASE + 15);

    // Evicted again, and the wall clock steps back a minute before it comes back: its ids
    // still go on above the evicted ones.
    drop((busy, live));
    let (busy, other) = evict_for(&hub, 1, "other");
    assert_eq!(hub.head("orders"), 0, "evicted");
    drop((busy, other));
    clock.set_ms(NOW_MS - 60_000);
    assert_eq!(
        hub.publish("orders", "E", json!(0), None).unwrap(),
        BASE + 16
    );
}

/// A wall clock far past anything real caps the base instead of overflowing: ids still grow by
/// one per publish.
#[tokio::test]
async fn a_clock_at_its_maximum_does_not_overflow_ids() {
    let hub = hub_on(ManualClock::shared(u64::MAX), 16);
    let first = hub.publish("orders", "E", json!(1), None).unwrap();
    assert_eq!(
        hub.publish("orders", "E", json!(2), None).unwrap(),
        first + 1
    );
    assert!(first > 1 << 62, "{first}");
    assert_eq!(
        hub.subscribe("orders", Some(first)).unwrap().start(),
        Start::Replayed { count: 1 }
    );
    assert!(matches!(
        hub.subscribe("orders", Some(u64::MAX)).unwrap().start(),
        Start::Resync { .. }
    ));
}

#[tokio::test]
async fn lagging_subscriber_recovers_from_the_replay_buffer() {
    let hub = hub(4096);
    let mut sub = hub.subscribe("orders", None).unwrap();
    let total = u64::try_from(SUBSCRIBER_QUEUE_EVENTS_MAX * 4).unwrap();
    for n in 0..total {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    for want in 1..=total {
        assert_eq!(next_id(&mut sub).await, BASE + want, "no gap, no duplicate");
    }
}

#[tokio::test]
async fn subscriber_behind_the_replay_buffer_gets_one_resync_then_live_events() {
    let hub = hub(16);
    let mut sub = hub.subscribe("orders", None).unwrap();
    // Past the live ring and the replay buffer both.
    let total = u64::try_from(SUBSCRIBER_QUEUE_EVENTS_MAX + 44).unwrap();
    for n in 0..total {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    match next(&mut sub).await {
        Delivery::Resync { head } => assert_eq!(head, BASE + total),
        Delivery::Event(e) => panic!("expected resync, got event {}", e.id()),
    }
    hub.publish("orders", "E", json!(total), None).unwrap();
    assert_eq!(next_id(&mut sub).await, BASE + total + 1);
}

fn try_id(sub: &mut Subscription) -> Option<u64> {
    match sub.try_recv()? {
        Delivery::Event(e) => Some(e.id()),
        Delivery::Resync { head } => panic!("unexpected resync at {head}"),
    }
}

#[test]
fn try_recv_takes_what_is_queued_and_never_waits() {
    let hub = hub(16);
    let mut sub = hub.subscribe("orders", None).unwrap();
    assert!(sub.try_recv().is_none(), "nothing published yet");
    for n in 0..3 {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    assert_eq!(
        std::iter::from_fn(|| try_id(&mut sub)).collect::<Vec<_>>(),
        vec![BASE + 1, BASE + 2, BASE + 3]
    );
    assert!(sub.try_recv().is_none());
}

#[test]
fn try_recv_recovers_lag_from_the_replay_buffer_or_asks_for_resync() {
    let hub = hub(4096);
    let mut sub = hub.subscribe("orders", None).unwrap();
    let total = u64::try_from(SUBSCRIBER_QUEUE_EVENTS_MAX * 4).unwrap();
    for n in 0..total {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    let got: Vec<u64> = std::iter::from_fn(|| try_id(&mut sub)).collect();
    assert_eq!(
        got,
        (BASE + 1..=BASE + total).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );

    let hub = hub_fresh();
    let mut sub = hub.subscribe("orders", None).unwrap();
    // Past the live ring and the replay buffer both.
    let total = u64::try_from(SUBSCRIBER_QUEUE_EVENTS_MAX + 44).unwrap();
    for n in 0..total {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    match sub.try_recv() {
        Some(Delivery::Resync { head }) => assert_eq!(head, BASE + total),
        other => panic!("expected resync, got {other:?}"),
    }
    assert!(sub.try_recv().is_none());
    hub.publish("orders", "E", json!(total), None).unwrap();
    assert_eq!(try_id(&mut sub), Some(BASE + total + 1));
}

#[tokio::test]
async fn exclusion_and_pusher_frame_travel_with_the_event() {
    let hub = hub(16);
    let mut sub = hub.subscribe("orders", None).unwrap();
    let me: SocketId = "1.2".parse().unwrap();
    hub.publish("orders", "NewOrder", json!({"a": 1}), Some(me.clone()))
        .unwrap();
    let Delivery::Event(e) = next(&mut sub).await else {
        panic!()
    };
    assert_eq!(e.exclude(), Some(&me));
    let frame: Value = serde_json::from_str(e.pusher_frame()).unwrap();
    assert_eq!(
        frame,
        json!({"event": "NewOrder", "channel": "orders", "data": "{\"a\":1}"})
    );
}

#[test]
fn limits_at_max_and_max_plus_one() {
    let hub = hub(16);
    assert_eq!(CHANNEL_NAME_CHARS_MAX, 164, "Pusher's limit");
    let name = "c".repeat(CHANNEL_NAME_CHARS_MAX);
    assert!(hub.publish(&name, "E", json!(1), None).is_ok());
    let too_long = "c".repeat(CHANNEL_NAME_CHARS_MAX + 1);
    assert!(matches!(
        hub.publish(&too_long, "E", json!(1), None),
        Err(Error::ChannelName { .. })
    ));
    assert!(matches!(
        hub.subscribe(&too_long, None),
        Err(Error::ChannelName { .. })
    ));
    // The prefix counts.
    for prefix in ["private-", "presence-", "#server-to-user-"] {
        let at_max = format!(
            "{prefix}{}",
            "c".repeat(CHANNEL_NAME_CHARS_MAX - prefix.len())
        );
        assert!(hub.subscribe(&at_max, None).is_ok(), "{at_max}");
        let over = format!("{at_max}c");
        assert!(
            matches!(hub.subscribe(&over, None), Err(Error::ChannelName { .. })),
            "{over}"
        );
    }

    let event = "e".repeat(EVENT_NAME_CHARS_MAX);
    assert!(hub.publish("c", &event, json!(1), None).is_ok());
    let event = "e".repeat(EVENT_NAME_CHARS_MAX + 1);
    assert!(matches!(
        hub.publish("c", &event, json!(1), None),
        Err(Error::EventName { .. })
    ));
    assert!(matches!(
        hub.publish("c", "a\nb", json!(1), None),
        Err(Error::EventName { .. })
    ));

    // A JSON string of n characters serialises to n + 2 bytes.
    let at_max = json!("x".repeat(EVENT_DATA_BYTES_MAX - 2));
    assert!(hub.publish("c", "E", at_max, None).is_ok());
    let over = json!("x".repeat(EVENT_DATA_BYTES_MAX - 1));
    match hub.publish("c", "E", over, None) {
        Err(Error::DataTooLarge { len, max }) => {
            assert_eq!((len, max), (EVENT_DATA_BYTES_MAX + 1, EVENT_DATA_BYTES_MAX))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hub_evicts_idle_channels_and_refuses_subscriptions_when_all_are_busy() {
    let hub = hub(4);
    let subs: Vec<_> = (0..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("c{i}"), None).unwrap())
        .collect();
    assert!(matches!(
        hub.subscribe("one-more", None),
        Err(Error::HubFull {
            max: HUB_CHANNELS_MAX
        })
    ));
    assert!(matches!(
        hub.subscribe_recent("one-more", 5),
        Err(Error::HubFull { .. })
    ));
    drop(subs);
    // Every channel is idle now: a new one evicts one of them (which had no event: the new
    // one starts at the same base).
    assert_eq!(
        hub.publish("one-more", "E", json!(1), None).unwrap(),
        BASE + 1
    );
    assert_eq!(hub.occupied_channels(), Vec::<(String, usize)>::new());
}

/// Nobody can be subscribed to a channel the hub does not hold, so when there is no room to
/// create it an event to it is dropped (as Pusher drops an event to an empty channel), never
/// refused: publishers need not retry what no one would receive.
#[tokio::test]
async fn a_full_hub_publishes_to_a_channel_it_does_not_hold_without_keeping_it() {
    let hub = hub(4);
    let mut subs: Vec<_> = (0..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("c{i}"), None).unwrap())
        .collect();
    for _ in 0..2 {
        assert_eq!(
            hub.publish("late", "E", json!(1), None).unwrap(),
            EVENT_ID_NOT_KEPT
        );
    }
    assert_eq!(hub.head("late"), 0, "nothing kept");
    assert_eq!(hub.subscriber_count("late"), 0);
    // Channels the hub holds publish as before.
    assert_eq!(hub.publish("c0", "E", json!(1), None).unwrap(), BASE + 1);
    assert_eq!(next_id(&mut subs[0]).await, BASE + 1);
    // Subscribing still needs room.
    assert!(matches!(
        hub.subscribe("late", Some(BASE + 1)),
        Err(Error::HubFull { .. })
    ));

    // Once there is room, a client resuming after an id the channel never kept is told to
    // resync (its id is ahead of the head); a fresh one starts live.
    subs.pop();
    let resumed = hub.subscribe("late", Some(BASE + 1)).unwrap();
    assert_eq!(
        resumed.start(),
        Start::Resync {
            requested: BASE + 1,
            head: BASE
        }
    );
    let mut fresh = hub.subscribe("late", None).unwrap();
    assert_eq!(fresh.start(), Start::Live);
    assert_eq!(hub.publish("late", "E", json!(2), None).unwrap(), BASE + 1);
    assert_eq!(next_id(&mut fresh).await, BASE + 1);
}

#[test]
fn pinned_channels_stay_open_when_clients_fill_the_hub() {
    let hub = hub(4);
    hub.pin("orders").unwrap();
    // Pinning again, or pinning a channel that already exists, takes no extra room.
    hub.pin("orders").unwrap();
    assert_eq!(
        hub.publish("existing", "E", json!(1), None).unwrap(),
        BASE + 1
    );
    hub.pin("existing").unwrap();
    let subs: Vec<_> = (0..HUB_CHANNELS_MAX)
        .map(|i| hub.subscribe(&format!("c{i}"), None).unwrap())
        .collect();
    assert!(matches!(
        hub.subscribe("one-more", None),
        Err(Error::HubFull { .. })
    ));
    // The pinned channels publish, keep their ids, and are never evicted for a client's.
    assert_eq!(
        hub.publish("orders", "NewOrder", json!(1), None).unwrap(),
        BASE + 1
    );
    assert_eq!(
        hub.publish("existing", "E", json!(2), None).unwrap(),
        BASE + 2
    );
    drop(subs);
    for i in 0..2 * HUB_CHANNELS_MAX {
        hub.publish(&format!("d{i}"), "E", json!(1), None).unwrap();
    }
    assert_eq!(hub.head("orders"), BASE + 1);
    assert_eq!(hub.head("existing"), BASE + 2);
}

#[test]
fn at_most_pinned_channels_max_are_pinned() {
    let hub = hub(4);
    for i in 0..PINNED_CHANNELS_MAX {
        hub.pin(&format!("p{i}")).unwrap();
    }
    assert!(matches!(
        hub.pin("one-more"),
        Err(Error::TooManyPinned {
            max: PINNED_CHANNELS_MAX
        })
    ));
    assert!(hub.pin("bad name").is_err());
}

#[test]
fn occupied_channels_counts_subscribers() {
    let hub = hub(4);
    let _a1 = hub.subscribe("a", None).unwrap();
    let _a2 = hub.subscribe("a", None).unwrap();
    let _b = hub.subscribe("b", None).unwrap();
    hub.publish("idle", "E", json!(1), None).unwrap();
    assert_eq!(
        hub.occupied_channels(),
        vec![("a".to_owned(), 2), ("b".to_owned(), 1)]
    );
    assert_eq!(hub.subscriber_count("a"), 2);
}

#[test]
fn socket_ids_are_unique_well_formed_and_seeded() {
    let a = hub(4);
    let b = hub(4);
    let ids: Vec<SocketId> = (0..1000).map(|_| a.next_socket_id()).collect();
    let again: Vec<SocketId> = (0..1000).map(|_| b.next_socket_id()).collect();
    assert_eq!(ids, again, "same seed, same ids");
    let unique: std::collections::BTreeSet<&str> = ids.iter().map(SocketId::as_str).collect();
    assert_eq!(unique.len(), ids.len());
    for id in &ids {
        assert!(id.as_str().parse::<SocketId>().is_ok(), "{id}");
    }
}

#[test]
fn presence_counts_sockets_per_user() {
    let hub = hub(4);
    assert!(
        hub.presence_join("presence-a", "u1", &json!({"n": 1}))
            .unwrap()
    );
    assert!(
        !hub.presence_join("presence-a", "u1", &json!({"n": 1}))
            .unwrap(),
        "second socket of u1"
    );
    assert!(hub.presence_join("presence-a", "u2", &Value::Null).unwrap());
    assert_eq!(hub.presence_user_count("presence-a"), 2);
    assert_eq!(
        hub.presence_snapshot("presence-a").to_json(),
        json!({"ids": ["u1", "u2"], "hash": {"u1": {"n": 1}, "u2": null}, "count": 2})
    );
    assert!(
        !hub.presence_leave("presence-a", "u1"),
        "u1 still has a socket"
    );
    assert!(hub.presence_leave("presence-a", "u1"));
    assert_eq!(hub.presence_user_count("presence-a"), 1);
}

#[test]
fn presence_members_at_max_and_max_plus_one() {
    let hub = hub(4);
    for i in 0..PRESENCE_MEMBERS_MAX {
        assert!(
            hub.presence_join("presence-x", &format!("u{i}"), &Value::Null)
                .unwrap()
        );
    }
    assert!(matches!(
        hub.presence_join("presence-x", "one-more", &Value::Null),
        Err(Error::PresenceFull { .. })
    ));
    // An existing user may still open another socket.
    assert!(!hub.presence_join("presence-x", "u0", &Value::Null).unwrap());
}

fn watcher(filter: Option<Value>, projection: Option<Value>) -> Watcher {
    Watcher::new(
        0,
        &WatcherConfig {
            watch: "shop.orders".into(),
            channel: "orders".into(),
            event: "NewOrder".into(),
            filter,
            projection,
        },
    )
    .unwrap()
}

fn change(op: &str, doc: Value) -> Value {
    json!({
        "_id": {"_data": "0001"},
        "operationType": op,
        "ns": {"db": "shop", "coll": "orders"},
        "documentKey": {"_id": doc.get("_id").cloned().unwrap_or(Value::Null)},
        "fullDocument": doc,
    })
}

#[test]
fn watcher_turns_matching_changes_into_events() {
    let order = json!({"_id": 10100, "orderNumber": 10100, "status": "Shipped", "lines": [{"productCode": "S10", "quantityOrdered": 3}]});
    let w = watcher(Some(json!({"operationType": "insert"})), None);
    assert_eq!(w.channel(), "orders");
    assert_eq!(w.namespace(), ("shop", "orders"));
    assert_eq!(
        w.apply(&change("insert", order.clone())),
        Some(("NewOrder".to_owned(), order.clone()))
    );
    assert_eq!(w.apply(&change("delete", order.clone())), None);
    let mut other_ns = change("insert", order.clone());
    other_ns["ns"]["coll"] = json!("customers");
    assert_eq!(w.apply(&other_ns), None);

    let w = watcher(
        Some(
            json!({"$or": [{"fullDocument.status": {"$in": ["Shipped", "Resolved"]}}, {"fullDocument.lines.quantityOrdered": {"$gte": 50}}]}),
        ),
        Some(json!({"orderNumber": 1, "lines.productCode": 1, "_id": 0})),
    );
    let (_, payload) = w.apply(&change("insert", order.clone())).unwrap();
    assert_eq!(
        payload,
        json!({"orderNumber": 10100, "lines": [{"productCode": "S10"}]})
    );
    let mut pending = order.clone();
    pending["status"] = json!("In Process");
    assert_eq!(w.apply(&change("insert", pending.clone())), None);
    pending["lines"][0]["quantityOrdered"] = json!(50);
    assert!(
        w.apply(&change("insert", pending)).is_some(),
        "array path matches any element"
    );

    let w = watcher(
        Some(json!({"fullDocument.comments": {"$exists": false}})),
        Some(json!({"lines": 0})),
    );
    let (_, payload) = w.apply(&change("insert", order)).unwrap();
    assert_eq!(
        payload,
        json!({"_id": 10100, "orderNumber": 10100, "status": "Shipped"})
    );
}

#[test]
fn deletes_carry_the_document_key() {
    let w = watcher(None, None);
    let del = json!({"operationType": "delete", "ns": {"db": "shop", "coll": "orders"}, "documentKey": {"_id": 7}});
    assert_eq!(
        w.apply(&del),
        Some(("NewOrder".to_owned(), json!({"_id": 7})))
    );
}

#[test]
fn bad_watchers_are_refused_at_load() {
    let base = WatcherConfig::default_orders();
    let bad = |w: WatcherConfig| Watcher::new(3, &w).unwrap_err().to_string();
    assert!(
        bad(WatcherConfig {
            watch: "orders".into(),
            ..base.clone()
        })
        .contains("watcher 3")
    );
    assert!(
        bad(WatcherConfig {
            channel: "a b".into(),
            ..base.clone()
        })
        .contains("channel")
    );
    assert!(
        bad(WatcherConfig {
            filter: Some(json!({"$where": "1"})),
            ..base.clone()
        })
        .contains("$where")
    );
    assert!(
        bad(WatcherConfig {
            filter: Some(json!({"a": {"$foo": 1}})),
            ..base.clone()
        })
        .contains("$foo")
    );
    assert!(
        bad(WatcherConfig {
            projection: Some(json!({"a": 1, "b": 0})),
            ..base.clone()
        })
        .contains("mix")
    );

    // Nesting: a chain of $and at the limit compiles, one more level does not.
    let nest = |levels: usize| {
        let mut f = json!({"a": 1});
        for _ in 1..levels {
            f = json!({"$and": [f]});
        }
        WatcherConfig {
            filter: Some(f),
            ..base.clone()
        }
    };
    assert!(Watcher::new(0, &nest(streamcache::realtime::MATCH_DEPTH_MAX - 1)).is_ok());
    assert!(bad(nest(streamcache::realtime::MATCH_DEPTH_MAX)).contains("nests"));

    // A $regex pattern and a $in or $nin list at their limits compile, one more does not; a
    // short pattern that compiles too large is refused too.
    use streamcache::realtime::{MATCH_IN_VALUES_MAX, MATCH_REGEX_BYTES_MAX};
    let filtered = |f: serde_json::Value| WatcherConfig {
        filter: Some(f),
        ..base.clone()
    };
    let pattern = |len: usize| filtered(json!({"a": {"$regex": "a".repeat(len)}}));
    assert!(Watcher::new(0, &pattern(MATCH_REGEX_BYTES_MAX)).is_ok());
    assert!(bad(pattern(MATCH_REGEX_BYTES_MAX + 1)).contains("at most"));
    assert!(bad(filtered(json!({"a": {"$regex": "\\w{1000}\\w{1000}"}}))).contains("$regex"));
    for op in ["$in", "$nin"] {
        let list = |n: usize| filtered(json!({"a": {op: vec![1; n]}}));
        assert!(Watcher::new(0, &list(MATCH_IN_VALUES_MAX)).is_ok(), "{op}");
        assert!(
            bad(list(MATCH_IN_VALUES_MAX + 1)).contains("at most"),
            "{op}"
        );
    }
}

#[test]
fn default_config_round_trips_through_its_toml() {
    let text = streamcache::config::default_toml();
    let parsed =
        streamcache::config::parse_toml(&text, std::path::Path::new("default.toml")).unwrap();
    assert_eq!(parsed, streamcache::config::Config::default());
    assert!(parsed.realtime.check().is_ok());
    assert!(parsed.realtime.uses_default_secret());
}

#[tokio::test]
async fn watcher_publishes_to_its_channel() {
    let hub = hub(16);
    let w = watcher(Some(json!({"operationType": "insert"})), None);
    let mut sub = hub.subscribe("orders", None).unwrap();
    let order = json!({"_id": 1, "orderNumber": 1});
    assert_eq!(
        w.publish(&hub, &change("insert", order.clone())).unwrap(),
        Some(BASE + 1)
    );
    assert_eq!(
        w.publish(&hub, &change("delete", order.clone())).unwrap(),
        None
    );
    let Delivery::Event(e) = next(&mut sub).await else {
        panic!()
    };
    assert_eq!(
        (e.name(), serde_json::from_str::<Value>(e.data()).unwrap()),
        ("NewOrder", order)
    );
}

fn load(text: &str) -> Result<streamcache::config::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamcache.toml");
    std::fs::write(&path, text).unwrap();
    streamcache::config::load(Some(&path), &streamcache::config::Overrides::default())
        .map(|l| l.config)
        .map_err(|e| e.to_string())
}

#[test]
fn realtime_settings_are_checked_at_load() {
    let max = streamcache::realtime::ACTIVITY_TIMEOUT_S_MAX;
    assert!(load(&format!("[realtime]\nactivity_timeout_s = {max}\n")).is_ok());
    let err = load(&format!("[realtime]\nactivity_timeout_s = {}\n", max + 1)).unwrap_err();
    assert!(
        err.contains("realtime") && err.contains("activity_timeout_s"),
        "{err}"
    );
    let replay = streamcache::realtime::REPLAY_EVENTS_MAX;
    assert!(load(&format!("[realtime]\nreplay_events = {replay}\n")).is_ok());
    assert!(load(&format!("[realtime]\nreplay_events = {}\n", replay + 1)).is_err());
    let err = load("[realtime]\nsecret = \"\"\n").unwrap_err();
    assert!(err.contains("secret"), "{err}");
    // Each SSE setting is named in its own error.
    assert!(load("[realtime]\nsse_retry_ms = 1\n").is_ok());
    let err = load("[realtime]\nsse_retry_ms = 0\n").unwrap_err();
    assert!(err.contains("`realtime.sse_retry_ms`"), "{err}");
    let min = streamcache::realtime::SSE_KEEPALIVE_MS_MIN;
    assert!(load(&format!("[realtime]\nsse_keepalive_ms = {min}\n")).is_ok());
    let err = load(&format!("[realtime]\nsse_keepalive_ms = {}\n", min - 1)).unwrap_err();
    assert!(err.contains("`realtime.sse_keepalive_ms`"), "{err}");
    let err = load(
        "[[realtime.watchers]]\nwatch = \"orders\"\nchannel = \"orders\"\nevent = \"NewOrder\"\n",
    )
    .unwrap_err();
    assert!(err.contains("watcher 0"), "{err}");
    let ok = load("[realtime]\nclient_events = true\nsocket_id_seed = 9\n").unwrap();
    assert!(ok.realtime.client_events);
    assert_eq!(
        ok.realtime.watchers,
        vec![WatcherConfig::default_orders()],
        "watchers default when not given"
    );
}

#[test]
fn connections_at_max_and_max_plus_one() {
    let hub = std::sync::Arc::new(hub(4));
    let mut guards: Vec<_> = (0..streamcache::realtime::CONNECTIONS_MAX)
        .map(|_| hub.try_connect().unwrap())
        .collect();
    assert!(hub.try_connect().is_none());
    guards.pop();
    assert!(
        hub.try_connect().is_some(),
        "a closed connection frees its slot"
    );
}

#[tokio::test]
async fn subscribe_recent_replays_the_latest_buffered_events() {
    let hub = hub(4);
    let mut empty = hub.subscribe_recent("orders", 5).unwrap();
    assert_eq!(empty.start(), Start::Replayed { count: 0 });
    // Past the live ring and the replay buffer both.
    let total = u64::try_from(SUBSCRIBER_QUEUE_EVENTS_MAX + 10).unwrap();
    for n in 0..total {
        hub.publish("orders", "E", json!(n), None).unwrap();
    }
    let mut two = hub.subscribe_recent("orders", 2).unwrap();
    assert_eq!(two.start(), Start::Replayed { count: 2 });
    let all = hub.subscribe_recent("orders", 100).unwrap();
    assert_eq!(
        all.start(),
        Start::Replayed { count: 4 },
        "at most what is buffered"
    );
    hub.publish("orders", "E", json!(total), None).unwrap();
    for want in [total - 1, total, total + 1] {
        assert_eq!(next_id(&mut two).await, BASE + want);
    }
    assert!(
        matches!(next(&mut empty).await, Delivery::Resync { head } if head == BASE + total + 1),
        "the empty-channel subscriber was live from the first id and has since fallen behind the buffer"
    );
}

#[tokio::test]
async fn ready_line_announces_the_pusher_key() {
    let config = streamcache::config::Config {
        ephemeral: true,
        http: "127.0.0.1:0".parse().unwrap(),
        resp: "127.0.0.1:0".parse().unwrap(),
        ..streamcache::config::Config::default()
    };
    let engine = streamcache::engine::Engine::open(config).unwrap();
    let bound = streamcache::server::bind(&engine).await.unwrap();
    assert!(
        bound.ready_line().ends_with(" pusher_key=streamcache-key"),
        "{}",
        bound.ready_line()
    );
}

#[test]
fn presence_data_limits_at_max_and_max_plus_one() {
    use streamcache::realtime::{CHANNEL_DATA_BYTES_MAX, USER_ID_CHARS_MAX, parse_presence_data};
    let id = "u".repeat(USER_ID_CHARS_MAX);
    assert_eq!(
        parse_presence_data(&json!({"user_id": id}).to_string())
            .unwrap()
            .0,
        id
    );
    let long = "u".repeat(USER_ID_CHARS_MAX + 1);
    assert!(matches!(
        parse_presence_data(&json!({"user_id": long}).to_string()),
        Err(Error::ChannelData { .. })
    ));
    assert_eq!(
        parse_presence_data(r#"{"user_id":42}"#).unwrap().0,
        "42",
        "numeric ids become text"
    );

    let pad = |total: usize| {
        let base = json!({"user_id": "u", "user_info": ""}).to_string();
        json!({"user_id": "u", "user_info": "x".repeat(total - base.len())}).to_string()
    };
    assert_eq!(pad(CHANNEL_DATA_BYTES_MAX).len(), CHANNEL_DATA_BYTES_MAX);
    assert!(parse_presence_data(&pad(CHANNEL_DATA_BYTES_MAX)).is_ok());
    assert!(matches!(
        parse_presence_data(&pad(CHANNEL_DATA_BYTES_MAX + 1)),
        Err(Error::ChannelData { .. })
    ));
}

#[test]
fn user_data_limits_at_max_and_max_plus_one() {
    use streamcache::realtime::{USER_DATA_BYTES_MAX, USER_ID_CHARS_MAX, parse_user_data};
    let id = "u".repeat(USER_ID_CHARS_MAX);
    assert_eq!(parse_user_data(&json!({"id": id}).to_string()).unwrap(), id);
    let long = "u".repeat(USER_ID_CHARS_MAX + 1);
    assert!(matches!(
        parse_user_data(&json!({"id": long}).to_string()),
        Err(Error::UserData { .. })
    ));
    assert_eq!(parse_user_data(r#"{"id":42}"#).unwrap(), "42");
    for bad in [
        r#"{"id":""}"#,
        r#"{"name":"x"}"#,
        r#"{"id":"a#b"}"#,
        "[]",
        "x",
    ] {
        assert!(
            matches!(parse_user_data(bad), Err(Error::UserData { .. })),
            "{bad}"
        );
    }
    let pad = |total: usize| {
        let base = json!({"id": "u", "user_info": ""}).to_string();
        json!({"id": "u", "user_info": "x".repeat(total - base.len())}).to_string()
    };
    assert_eq!(pad(USER_DATA_BYTES_MAX).len(), USER_DATA_BYTES_MAX);
    assert!(parse_user_data(&pad(USER_DATA_BYTES_MAX)).is_ok());
    assert!(matches!(
        parse_user_data(&pad(USER_DATA_BYTES_MAX + 1)),
        Err(Error::UserData { .. })
    ));
}

#[test]
fn server_to_user_channels_are_the_only_names_with_a_hash() {
    use streamcache::realtime::{
        ChannelKind, USER_ID_CHARS_MAX, check_channel_name, server_to_user_id,
    };
    let longest = format!("#server-to-user-{}", "u".repeat(USER_ID_CHARS_MAX));
    assert_eq!(check_channel_name(&longest).ok(), Some(ChannelKind::User));
    assert_eq!(server_to_user_id("#server-to-user-a1"), Some("a1"));
    assert_eq!(server_to_user_id("#server-to-user-"), None);
    for bad in [
        "#server-to-user-",
        "#other",
        "#",
        "#server-to-user-a b",
        "x#y",
    ] {
        assert!(check_channel_name(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn terminate_user_signals_each_of_its_sign_ins_until_they_end() {
    let hub = std::sync::Arc::new(hub(8));
    let a1 = hub.sign_in("a");
    let a2 = hub.sign_in("a");
    let b = hub.sign_in("b");
    assert_eq!(
        (
            hub.user_connection_count("a"),
            hub.user_connection_count("b")
        ),
        (2, 1)
    );
    assert_eq!(hub.terminate_user("a"), 2);
    assert_eq!(hub.terminate_user("nobody"), 0);
    // The signal is kept for a sign-in that was not waiting when it came: the first poll of
    // its wait is ready.
    a1.terminated()
        .now_or_never()
        .expect("a1 was signalled before it waited");
    a2.terminated()
        .now_or_never()
        .expect("a2 was signalled before it waited");
    // A signal for `b` would be kept the same way, so polling its wait once shows it has none.
    assert!(
        b.terminated().now_or_never().is_none(),
        "another user is not signalled"
    );
    drop(a1);
    assert_eq!(hub.user_connection_count("a"), 1);
    drop(a2);
    assert_eq!(hub.user_connection_count("a"), 0);
    assert_eq!(hub.user_connection_count("b"), 1);
}

#[test]
fn watchers_at_max_and_max_plus_one() {
    let max = streamcache::realtime::WATCHERS_MAX;
    let config = |n: usize| RealtimeConfig {
        watchers: vec![WatcherConfig::default_orders(); n],
        ..RealtimeConfig::default()
    };
    assert_eq!(config(max).check().unwrap().len(), max);
    assert!(matches!(
        config(max + 1).check(),
        Err(Error::Config {
            setting: "watchers",
            ..
        })
    ));
}

#[test]
fn replay_buffer_is_bounded_in_bytes_too() {
    use streamcache::realtime::{EVENT_DATA_BYTES_MAX, REPLAY_BYTES_MAX};
    let hub = hub(4096);
    let big = json!("x".repeat(EVENT_DATA_BYTES_MAX - 2));
    for _ in 0..200 {
        hub.publish("orders", "E", big.clone(), None).unwrap();
    }
    let Start::Replayed { count } = hub.subscribe_recent("orders", 4096).unwrap().start() else {
        panic!()
    };
    assert_eq!(
        count,
        REPLAY_BYTES_MAX / EVENT_DATA_BYTES_MAX,
        "as many full-size events as fit in the byte bound"
    );
    // The first event (the base's next id) has left the buffer by the byte bound alone.
    assert!(matches!(
        hub.subscribe("orders", Some(BASE + 1)).unwrap().start(),
        Start::Resync { .. }
    ));
}

#[test]
fn default_watcher_sends_full_orders_only() {
    let w = Watcher::new(0, &WatcherConfig::default_orders()).unwrap();
    let order = json!({"_id": {"$oid": "65f0c0ffee0000000000abcd"}, "orderNumber": 10100, "status": "Shipped"});
    assert_eq!(
        w.apply(&change("insert", order.clone()))
            .map(|(e, _)| e)
            .as_deref(),
        Some("NewOrder")
    );
    assert!(w.apply(&change("replace", order.clone())).is_some());
    let bare_update = json!({"operationType": "update", "ns": {"db": "shop", "coll": "orders"}, "documentKey": {"_id": 1}, "updateDescription": {}});
    assert_eq!(
        w.apply(&bare_update),
        None,
        "an update without its document is not a NewOrder"
    );
    assert_eq!(w.apply(&change("delete", order)), None);
}

#[test]
fn null_matches_missing_fields_as_in_mongodb() {
    let w = watcher(Some(json!({"fullDocument.comments": null})), None);
    assert!(w.apply(&change("insert", json!({"_id": 1}))).is_some());
    assert!(
        w.apply(&change("insert", json!({"_id": 1, "comments": null})))
            .is_some()
    );
    assert!(
        w.apply(&change("insert", json!({"_id": 1, "comments": "x"})))
            .is_none()
    );
    let w = watcher(Some(json!({"fullDocument.comments": {"$ne": null}})), None);
    assert!(w.apply(&change("insert", json!({"_id": 1}))).is_none());
    assert!(
        w.apply(&change("insert", json!({"_id": 1, "comments": "x"})))
            .is_some()
    );
}

#[test]
fn comparisons_order_booleans_and_null_as_in_mongodb() {
    let with = |field: Value| change("insert", json!({"_id": 1, "f": field}));
    let missing = change("insert", json!({"_id": 1}));
    let w = watcher(Some(json!({"fullDocument.f": {"$gt": false}})), None);
    assert!(w.apply(&with(json!(true))).is_some());
    assert!(w.apply(&with(json!(false))).is_none());
    assert!(
        w.apply(&with(json!(1))).is_none(),
        "a number is not a boolean"
    );
    let w = watcher(Some(json!({"fullDocument.f": {"$lte": false}})), None);
    assert!(w.apply(&with(json!(false))).is_some());
    assert!(w.apply(&with(json!(true))).is_none());
    // $gte/$lte null hold for null and a missing field, as {f: null} does; $gt/$lt null never.
    for op in ["$gte", "$lte"] {
        let w = watcher(Some(json!({"fullDocument.f": {op: null}})), None);
        assert!(w.apply(&with(json!(null))).is_some(), "{op}");
        assert!(w.apply(&missing).is_some(), "{op}");
        assert!(w.apply(&with(json!("x"))).is_none(), "{op}");
    }
    for op in ["$gt", "$lt"] {
        let w = watcher(Some(json!({"fullDocument.f": {op: null}})), None);
        assert!(w.apply(&with(json!(null))).is_none(), "{op}");
        assert!(w.apply(&missing).is_none(), "{op}");
    }
}

#[test]
fn array_fields_match_by_element_as_in_mongodb() {
    let tagged = |tags: Value| change("insert", json!({"_id": 1, "tags": tags}));
    // $regex (and $not around it) tests each string of an array, as MongoDB does.
    let w = watcher(
        Some(json!({"fullDocument.tags": {"$regex": "^rush"}})),
        None,
    );
    assert!(w.apply(&tagged(json!(["gift", "rush-order"]))).is_some());
    assert!(w.apply(&tagged(json!("rush-order"))).is_some());
    assert!(w.apply(&tagged(json!(["gift"]))).is_none());
    let w = watcher(
        Some(json!({"fullDocument.tags": {"$not": {"$regex": "^rush"}}})),
        None,
    );
    assert!(w.apply(&tagged(json!(["gift", "rush-order"]))).is_none());
    assert!(w.apply(&tagged(json!(["gift"]))).is_some());
    // Numbers in an array equal by value, as a number outside one does.
    let w = watcher(Some(json!({"fullDocument.tags": {"$in": [2]}})), None);
    assert!(w.apply(&tagged(json!([1, 2.0]))).is_some());
    assert!(w.apply(&tagged(json!(2.0))).is_some());
    assert!(w.apply(&tagged(json!([1, 3]))).is_none());
}

#[test]
fn webhooks_are_checked_at_load_and_https_is_refused_with_its_reason() {
    let hook = |url: &str| {
        format!(
            "[realtime]\nwebhooks = [{{ url = \"{url}\", event_types = [\"channel_occupied\"] }}]\n"
        )
    };
    let ok = load(&hook("http://127.0.0.1:9000/pusher/webhook")).unwrap();
    assert_eq!(ok.realtime.webhooks.len(), 1);
    let err = load(&hook("https://hooks.example.com/pusher")).unwrap_err();
    assert!(
        err.contains("realtime.webhooks") && err.contains("webhook 0") && err.contains("TLS"),
        "{err}"
    );
    let err = load("[[realtime.webhooks]]\nurl = \"http://x/\"\nevent_types = [\"cache_miss\"]\n")
        .unwrap_err();
    assert!(err.contains("cache channels"), "{err}");
    let err = load(
        "[[realtime.webhooks]]\nurl = \"http://x/\"\nevent_types = [\"member_added\"]\nfilter = { channel_name_starts_with = \"presence-\", prefix = \"x\" }\n",
    )
    .unwrap_err();
    assert!(
        err.contains("prefix"),
        "unknown filter keys are refused: {err}"
    );
    let max = streamcache::realtime::WEBHOOK_BATCH_MS_MAX;
    assert!(load(&format!("[realtime]\nwebhook_batch_ms = {max}\n")).is_ok());
    let err = load(&format!("[realtime]\nwebhook_batch_ms = {}\n", max + 1)).unwrap_err();
    assert!(err.contains("webhook_batch_ms"), "{err}");
}

#[test]
fn webhooks_at_max_and_max_plus_one() {
    let webhook = streamcache::realtime::WebhookConfig {
        url: "http://127.0.0.1:9000/".into(),
        event_types: vec!["client_event".into()],
        filter: None,
    };
    let config = |n: usize| RealtimeConfig {
        webhooks: vec![webhook.clone(); n],
        ..RealtimeConfig::default()
    };
    let max = streamcache::realtime::WEBHOOKS_MAX;
    assert_eq!(config(max).check_webhooks().unwrap().len(), max);
    let err = config(max + 1).check().unwrap_err().to_string();
    assert!(err.contains("webhooks"), "{err}");
}

/// The live ring holds `SUBSCRIBER_QUEUE_EVENTS_MAX` events whatever the replay buffer's size:
/// with a replay of one event, a live subscriber still reads that many events published before
/// it runs, in order and without a resync; one more overruns it.
#[tokio::test]
async fn the_live_ring_does_not_shrink_with_a_small_replay_buffer() {
    for (published, resync) in [
        (SUBSCRIBER_QUEUE_EVENTS_MAX, false),
        (SUBSCRIBER_QUEUE_EVENTS_MAX + 1, true),
    ] {
        let hub = hub(1);
        let mut sub = hub.subscribe("burst", None).unwrap();
        for n in 0..published {
            hub.publish("burst", "E", json!(n), None).unwrap();
        }
        let mut ids = Vec::new();
        let mut resynced = false;
        while let Some(delivery) = sub.try_recv() {
            match delivery {
                Delivery::Event(e) => ids.push(e.id()),
                Delivery::Resync { .. } => resynced = true,
            }
        }
        assert_eq!(resynced, resync, "{published} events");
        if !resync {
            assert_eq!(
                ids,
                (BASE + 1..=BASE + published as u64).collect::<Vec<_>>()
            );
        }
    }
}
