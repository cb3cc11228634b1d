//! Capability: the realtime parsers and codecs on arbitrary input — client messages, presence
//! data, event data normalisation, socket ids, Pusher frames, request signing, watcher filters.
//!
//! Method: proptest; properties are "never panics" for parsers and round trips for codecs.
#![allow(
    clippy::unwrap_used,
    reason = "proptest strategies and helpers unwrap on generated input"
)]

use proptest::prelude::*;
use serde_json::{Value, json};
use streamcache::realtime::{
    EventData, Hub, RealtimeConfig, SignedRequest, SocketId, Watcher, WatcherConfig,
    check_channel_name, check_request, parse_client_message, parse_presence_data, sign_request,
};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z$.]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[$a-z.]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn client_message_parser_never_panics(text in ".{0,200}") {
        let _ = parse_client_message(&text);
    }

    #[test]
    fn client_message_parser_on_json_shapes(v in json_value(), event in prop_oneof![
        Just("pusher:subscribe".to_owned()), Just("pusher:ping".to_owned()), Just("client-x".to_owned()), "[a-z:-]{0,12}"
    ]) {
        let msg = json!({"event": event, "channel": "private-a", "data": v});
        let _ = parse_client_message(&msg.to_string());
    }

    #[test]
    fn presence_data_parser_never_panics(text in ".{0,300}", v in json_value()) {
        let _ = parse_presence_data(&text);
        let _ = parse_presence_data(&v.to_string());
    }

    #[test]
    fn normalised_data_is_one_line_json(text in "(.|\n|\r){0,200}", v in json_value()) {
        if let Ok(out) = EventData::from_sent_text(&text).map(EventData::into_json) {
            prop_assert!(!out.contains(['\n', '\r']));
            prop_assert!(serde_json::from_str::<Value>(&out).is_ok());
        }
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        if let Ok(out) = EventData::from_sent_text(&pretty).map(EventData::into_json) {
            prop_assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), v);
        }
    }

    #[test]
    fn socket_ids_round_trip(a in any::<u64>(), b in any::<u64>(), junk in ".{0,30}") {
        let id = SocketId::from_parts(a, b);
        prop_assert_eq!(id.as_str().parse::<SocketId>().unwrap(), id);
        let _ = junk.parse::<SocketId>();
    }

    #[test]
    fn pusher_frame_carries_string_data_verbatim(s in ".{0,100}", v in json_value()) {
        let hub = Hub::new(&RealtimeConfig::default(), 1, streamcache::clock::ManualClock::shared(1_000));
        let mut sub = hub.subscribe("c", None).unwrap();
        hub.publish("c", "E", Value::String(s.clone()), None).unwrap();
        hub.publish("c", "E", v.clone(), None).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for want in [Value::String(s), v] {
            let streamcache::realtime::Delivery::Event(e) = rt.block_on(sub.recv()) else { panic!("resync") };
            let frame: Value = serde_json::from_str(e.pusher_frame()).unwrap();
            let data = frame["data"].as_str().unwrap();
            match &want {
                Value::String(s) => prop_assert_eq!(data, s.as_str()),
                other => prop_assert_eq!(&serde_json::from_str::<Value>(data).unwrap(), other),
            }
        }
    }

    #[test]
    fn signed_requests_verify_and_any_change_fails(
        params in prop::collection::vec(("[a-z_]{1,8}", "[A-Za-z0-9,._-]{0,12}"), 0..5),
        body in prop::collection::vec(any::<u8>(), 0..64),
        flip in any::<usize>(),
    ) {
        let mut all: Vec<(String, String)> = params.into_iter().filter(|(k, _)| !k.starts_with("auth_") && k != "body_md5").collect();
        all.extend([("auth_key".to_owned(), "k".to_owned()), ("auth_timestamp".to_owned(), "100".to_owned()), ("auth_version".to_owned(), "1.0".to_owned())]);
        if !body.is_empty() {
            all.push(("body_md5".to_owned(), streamcache::realtime::body_md5(&body)));
        }
        let sig = sign_request("s", "POST", "/apps/a/events", &all);
        all.push(("auth_signature".to_owned(), sig));
        let req = SignedRequest { method: "POST", path: "/apps/a/events", params: &all, body: &body };
        prop_assert!(check_request(&req, "k", "s", 100).is_ok());
        if !body.is_empty() {
            let mut other = body.clone();
            let i = flip % other.len();
            other[i] ^= 1;
            let changed = SignedRequest { body: &other, ..req };
            prop_assert!(check_request(&changed, "k", "s", 100).is_err());
        }
    }

    #[test]
    fn watcher_filters_never_panic(filter in json_value(), projection in json_value(), change in json_value()) {
        let config = WatcherConfig { filter: Some(filter), projection: Some(projection), ..WatcherConfig::default_orders() };
        if let Ok(w) = Watcher::new(0, &config) {
            let _ = w.apply(&change);
            let _ = w.apply(&json!({"ns": {"db": "shop", "coll": "orders"}, "operationType": "insert", "fullDocument": change}));
        }
    }

    #[test]
    fn channel_name_check_never_panics(name in ".{0,250}") {
        let _ = check_channel_name(&name);
    }
}
