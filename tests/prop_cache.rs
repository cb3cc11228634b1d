//! Capability: the cache agrees with a simple model, and the RESP codec round-trips and never
//! panics.
//! Method: proptest. Random command sequences (SET with and without TTL, GET, DEL, APPEND,
//! PEXPIRE, PERSIST, EXISTS, PTTL and clock advances) run against the cache and against a
//! `BTreeMap` model on the same `ManualClock`; replies must match step by step. Random frames
//! encode and decode back; arbitrary bytes go through both decoders. Random sequences of
//! collection commands keep the memory account equal to a full recount. Random sorted set
//! commands match a sorted `Vec` model reply for reply.
#![allow(
    clippy::unwrap_used,
    reason = "helpers below are test code outside #[test] functions"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use streamcache::cache::{Cache, CacheConfig, DecodeLimits, Frame, decode_frame, decode_request};
use streamcache::clock::{Clock, ManualClock};

#[derive(Debug, Clone)]
enum Op {
    Set(u8, String, Option<u64>),
    Get(u8),
    Del(u8),
    Append(u8, String),
    Pexpire(u8, u64),
    Persist(u8),
    Exists(u8),
    Pttl(u8),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..5;
    let val = "[a-z0-9]{0,6}";
    prop_oneof![
        (key.clone(), val, proptest::option::of(1u64..200)).prop_map(|(k, v, t)| Op::Set(k, v, t)),
        key.clone().prop_map(Op::Get),
        key.clone().prop_map(Op::Del),
        (key.clone(), val).prop_map(|(k, v)| Op::Append(k, v)),
        (key.clone(), 1u64..200).prop_map(|(k, t)| Op::Pexpire(k, t)),
        key.clone().prop_map(Op::Persist),
        key.clone().prop_map(Op::Exists),
        key.prop_map(Op::Pttl),
        (0u64..150).prop_map(Op::Advance),
    ]
}

/// The model: key → (value, deadline).
#[derive(Default)]
struct Model(BTreeMap<u8, (String, Option<u64>)>);

impl Model {
    fn live(&mut self, k: u8, now: u64) -> Option<&mut (String, Option<u64>)> {
        if self
            .0
            .get(&k)
            .is_some_and(|(_, d)| d.is_some_and(|d| d <= now))
        {
            self.0.remove(&k);
        }
        self.0.get_mut(&k)
    }

    fn apply(&mut self, op: &Op, now: u64) -> Frame {
        match op {
            Op::Set(k, v, ttl) => {
                self.0.insert(*k, (v.clone(), ttl.map(|t| now + t)));
                Frame::ok()
            }
            Op::Get(k) => self
                .live(*k, now)
                .map_or(Frame::Null, |(v, _)| Frame::bulk(v.as_bytes())),
            Op::Del(k) => Frame::Integer(i64::from(
                self.live(*k, now).is_some() && self.0.remove(k).is_some(),
            )),
            Op::Append(k, v) => match self.live(*k, now) {
                Some((s, _)) => {
                    s.push_str(v);
                    Frame::Integer(s.len() as i64)
                }
                None => {
                    self.0.insert(*k, (v.clone(), None));
                    Frame::Integer(v.len() as i64)
                }
            },
            Op::Pexpire(k, t) => match self.live(*k, now) {
                Some((_, d)) => {
                    *d = Some(now + t);
                    Frame::Integer(1)
                }
                None => Frame::Integer(0),
            },
            Op::Persist(k) => match self.live(*k, now) {
                Some((_, d)) if d.is_some() => {
                    *d = None;
                    Frame::Integer(1)
                }
                _ => Frame::Integer(0),
            },
            Op::Exists(k) => Frame::Integer(i64::from(self.live(*k, now).is_some())),
            Op::Pttl(k) => match self.live(*k, now) {
                None => Frame::Integer(-2),
                Some((_, None)) => Frame::Integer(-1),
                Some((_, Some(d))) => Frame::Integer((*d - now) as i64),
            },
            Op::Advance(_) => Frame::ok(),
        }
    }
}

fn args(op: &Op) -> Option<Vec<Bytes>> {
    let k = |k: &u8| format!("key{k}");
    let v: Vec<String> = match op {
        Op::Set(key, val, None) => vec!["SET".into(), k(key), val.clone()],
        Op::Set(key, val, Some(t)) => vec![
            "SET".into(),
            k(key),
            val.clone(),
            "PX".into(),
            t.to_string(),
        ],
        Op::Get(key) => vec!["GET".into(), k(key)],
        Op::Del(key) => vec!["DEL".into(), k(key)],
        Op::Append(key, val) => vec!["APPEND".into(), k(key), val.clone()],
        Op::Pexpire(key, t) => vec!["PEXPIRE".into(), k(key), t.to_string()],
        Op::Persist(key) => vec!["PERSIST".into(), k(key)],
        Op::Exists(key) => vec!["EXISTS".into(), k(key)],
        Op::Pttl(key) => vec!["PTTL".into(), k(key)],
        Op::Advance(_) => return None,
    };
    Some(v.into_iter().map(Bytes::from).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cache_matches_model(ops in proptest::collection::vec(op(), 1..80), active in any::<bool>()) {
        let clock = Arc::new(ManualClock::new(1_000));
        let cache = Cache::new(CacheConfig::default(), clock.clone());
        let mut model = Model::default();
        for op in &ops {
            if let Op::Advance(ms) = op {
                clock.advance(Duration::from_millis(*ms));
                if active {
                    cache.active_expire_cycle();
                }
                continue;
            }
            let now = clock.now_ms();
            let expected = model.apply(op, now);
            let got = cache.execute(0, &args(op).unwrap());
            prop_assert_eq!(got, expected, "op {:?}", op);
        }
    }

    /// Sorted set commands agree with a sorted `Vec` of (member, score) step by step.
    #[test]
    fn sorted_set_matches_model(ops in proptest::collection::vec(zop(), 1..80)) {
        let cache = Cache::new(CacheConfig::default(), Arc::new(ManualClock::new(1_000)));
        let mut model = ZModel::default();
        for op in &ops {
            let expected = model.apply(op);
            let got = cache.execute(0, &zargs(op));
            prop_assert_eq!(got, expected, "op {:?}", op);
        }
    }

    /// Collections are charged their element bytes through every mutation path: after each
    /// random command the O(1)-per-write account equals a full recount.
    #[test]
    fn memory_account_matches_a_recount(cmds in proptest::collection::vec(collection_command(), 1..60)) {
        let clock = Arc::new(ManualClock::new(1_000));
        let cache = Cache::new(CacheConfig::default(), clock.clone());
        for cmd in &cmds {
            if cmd.is_empty() {
                clock.advance(Duration::from_millis(40));
                cache.active_expire_cycle();
            } else {
                let args: Vec<Bytes> = cmd.iter().map(|a| Bytes::from(a.clone())).collect();
                let _ = cache.execute(0, &args);
            }
            prop_assert_eq!(cache.used_bytes(), cache.recount_used_bytes(), "after {:?}", cmd);
        }
    }

    #[test]
    fn request_round_trip(items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8)) {
        let mut wire = format!("*{}\r\n", items.len()).into_bytes();
        for a in &items {
            wire.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            wire.extend_from_slice(a);
            wire.extend_from_slice(b"\r\n");
        }
        let limits = DecodeLimits { bulk_bytes_max: 1 << 20, multibulk_len_max: 1 << 20, inline_bytes_max: 1 << 16 };
        let (got, used) = decode_request(&wire, &limits).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(got, items.into_iter().map(Bytes::from).collect::<Vec<_>>());
    }

    #[test]
    fn frame_round_trip(frame in frame_strategy()) {
        let limits = DecodeLimits { bulk_bytes_max: 1 << 20, multibulk_len_max: 1 << 20, inline_bytes_max: 1 << 16 };
        let mut wire = Vec::new();
        frame.encode(3, &mut wire);
        let (back, used) = decode_frame(&wire, &limits).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(back, frame);
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        streamcache::cache::fuzz_resp_frame(&data);
    }
}

/// A sorted set command on the key `z`: members `m0`…`m5`, scores in halves so that ties
/// (ordered by member) are common.
#[derive(Debug, Clone)]
enum ZOp {
    Add(u8, i8),
    IncrBy(u8, i8),
    Rem(u8),
    Rank(u8, bool),
    Range(i8, i8, bool),
    RangeByScore(i8, i8),
    Count(i8, i8),
    PopMin,
    RemRangeByRank(i8, i8),
}

fn zop() -> impl Strategy<Value = ZOp> {
    let m = 0u8..6;
    let s = -4i8..5;
    prop_oneof![
        3 => (m.clone(), s.clone()).prop_map(|(m, s)| ZOp::Add(m, s)),
        1 => (m.clone(), s.clone()).prop_map(|(m, s)| ZOp::IncrBy(m, s)),
        1 => m.clone().prop_map(ZOp::Rem),
        1 => (m, any::<bool>()).prop_map(|(m, r)| ZOp::Rank(m, r)),
        1 => (-7i8..7, -7i8..7, any::<bool>()).prop_map(|(a, b, r)| ZOp::Range(a, b, r)),
        1 => (s.clone(), s.clone()).prop_map(|(a, b)| ZOp::RangeByScore(a, b)),
        1 => (s.clone(), s).prop_map(|(a, b)| ZOp::Count(a, b)),
        1 => Just(ZOp::PopMin),
        1 => (-7i8..7, -7i8..7).prop_map(|(a, b)| ZOp::RemRangeByRank(a, b)),
    ]
}

fn half(s: i8) -> f64 {
    f64::from(s) / 2.0
}

fn zargs(op: &ZOp) -> Vec<Bytes> {
    let text = match op {
        ZOp::Add(m, s) => format!("ZADD z {} m{m}", half(*s)),
        ZOp::IncrBy(m, s) => format!("ZINCRBY z {} m{m}", half(*s)),
        ZOp::Rem(m) => format!("ZREM z m{m}"),
        ZOp::Rank(m, false) => format!("ZRANK z m{m}"),
        ZOp::Rank(m, true) => format!("ZREVRANK z m{m}"),
        ZOp::Range(a, b, false) => format!("ZRANGE z {a} {b} WITHSCORES"),
        ZOp::Range(a, b, true) => format!("ZREVRANGE z {a} {b}"),
        ZOp::RangeByScore(a, b) => format!("ZRANGEBYSCORE z {} ({}", half(*a), half(*b)),
        ZOp::Count(a, b) => format!("ZCOUNT z ({} {}", half(*a), half(*b)),
        ZOp::PopMin => "ZPOPMIN z".to_owned(),
        ZOp::RemRangeByRank(a, b) => format!("ZREMRANGEBYRANK z {a} {b}"),
    };
    text.split(' ').map(|w| Bytes::from(w.to_owned())).collect()
}

/// The model: (member, score) ascending by score, then member.
#[derive(Default)]
struct ZModel(Vec<(String, f64)>);

impl ZModel {
    fn sort(&mut self) {
        self.0
            .sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
    }

    fn position(&self, m: &str) -> Option<usize> {
        self.0.iter().position(|(x, _)| x == m)
    }

    /// Redis's inclusive index range over the current length.
    fn indexes(&self, a: i8, b: i8) -> Option<(usize, usize)> {
        let len = self.0.len() as i64;
        let mut a = i64::from(a);
        let mut b = i64::from(b);
        if a < 0 {
            a += len;
        }
        if b < 0 {
            b += len;
        }
        let a = a.max(0);
        if a > b || a >= len {
            return None;
        }
        Some((a as usize, b.min(len - 1) as usize))
    }

    fn apply(&mut self, op: &ZOp) -> Frame {
        let score = Frame::Double;
        let member = |m: &str| Frame::bulk(m.as_bytes());
        match op {
            ZOp::Add(m, s) => {
                let m = format!("m{m}");
                let new = match self.position(&m) {
                    Some(i) => {
                        self.0[i].1 = half(*s);
                        false
                    }
                    None => {
                        self.0.push((m, half(*s)));
                        true
                    }
                };
                self.sort();
                Frame::Integer(i64::from(new))
            }
            ZOp::IncrBy(m, s) => {
                let m = format!("m{m}");
                let v = match self.position(&m) {
                    Some(i) => {
                        self.0[i].1 += half(*s);
                        self.0[i].1
                    }
                    None => {
                        self.0.push((m, half(*s)));
                        half(*s)
                    }
                };
                self.sort();
                score(v)
            }
            ZOp::Rem(m) => match self.position(&format!("m{m}")) {
                Some(i) => {
                    self.0.remove(i);
                    Frame::Integer(1)
                }
                None => Frame::Integer(0),
            },
            ZOp::Rank(m, rev) => match self.position(&format!("m{m}")) {
                Some(i) if *rev => Frame::Integer((self.0.len() - 1 - i) as i64),
                Some(i) => Frame::Integer(i as i64),
                None => Frame::Null,
            },
            ZOp::Range(a, b, rev) => {
                let mut items: Vec<(String, f64)> = self.0.clone();
                if *rev {
                    items.reverse();
                }
                let Some((a, b)) = self.indexes(*a, *b) else {
                    return Frame::Array(Vec::new());
                };
                let mut out = Vec::new();
                for (m, s) in &items[a..=b] {
                    out.push(member(m));
                    if !rev {
                        out.push(score(*s));
                    }
                }
                Frame::Array(out)
            }
            ZOp::RangeByScore(a, b) => Frame::Array(
                self.0
                    .iter()
                    .filter(|(_, s)| *s >= half(*a) && *s < half(*b))
                    .map(|(m, _)| member(m))
                    .collect(),
            ),
            ZOp::Count(a, b) => Frame::Integer(
                self.0
                    .iter()
                    .filter(|(_, s)| *s > half(*a) && *s <= half(*b))
                    .count() as i64,
            ),
            ZOp::PopMin => {
                if self.0.is_empty() {
                    return Frame::Array(Vec::new());
                }
                let (m, s) = self.0.remove(0);
                Frame::Array(vec![member(&m), score(s)])
            }
            ZOp::RemRangeByRank(a, b) => match self.indexes(*a, *b) {
                Some((a, b)) => {
                    self.0.drain(a..=b);
                    Frame::Integer((b - a + 1) as i64)
                }
                None => Frame::Integer(0),
            },
        }
    }
}

/// Templates of the commands that change collections (and a few that move or drop whole keys);
/// an empty vector advances the clock and runs the active expiry cycle.
const COLLECTION_TEMPLATES: &[&str] = &[
    "HSET k f v",
    "HSET k f v g w",
    "HSETNX k f v",
    "HDEL k f g",
    "HINCRBY k f 7",
    "HINCRBYFLOAT k f 1.5",
    "LPUSH k v w",
    "RPUSH k v",
    "LPUSHX k v",
    "RPUSHX k v",
    "LPOP k",
    "RPOP k 2",
    "LSET k 0 v",
    "LSET k -1 w",
    "LINSERT k BEFORE v w",
    "LINSERT k AFTER w v",
    "LREM k 0 v",
    "LREM k -1 w",
    "LREM k 1 v",
    "LTRIM k 1 -2",
    "LTRIM k 0 0",
    "LTRIM k 5 1",
    "LMOVE k j LEFT RIGHT",
    "RPOPLPUSH k j",
    "LMPOP 2 k j RIGHT COUNT 2",
    "SORT k ALPHA STORE j",
    "SADD k v w",
    "SREM k v",
    "SPOP k",
    "SPOP k 2",
    "SMOVE k j v",
    "SINTERSTORE j k j",
    "SUNIONSTORE j k j",
    "SDIFFSTORE j k j",
    "ZADD k 1 v 2 w",
    "ZADD k GT CH 3 v",
    "ZINCRBY k 1.5 w",
    "ZREM k v",
    "ZPOPMIN k",
    "ZPOPMAX k 2",
    "ZREMRANGEBYRANK k 0 0",
    "ZREMRANGEBYSCORE k 1 2",
    "ZREMRANGEBYLEX k - [b",
    "ZMPOP 2 k j MAX COUNT 2",
    "ZUNIONSTORE j 2 k j WEIGHTS 2 1",
    "ZINTERSTORE j 2 k j",
    "ZDIFFSTORE j 2 k j",
    "ZRANGESTORE j k 0 1",
    "SET k v",
    "APPEND k v",
    "INCR k",
    "SETRANGE k 3 v",
    "DEL k",
    "RENAME k j",
    "COPY k j REPLACE",
    "PEXPIRE k 30",
    "PERSIST k",
    "GETDEL k",
];

fn collection_command() -> impl Strategy<Value = Vec<String>> {
    (
        0..=COLLECTION_TEMPLATES.len(),
        0u8..3,
        0u8..3,
        "[a-c]{1,2}",
        "[a-c]{0,2}",
        // Few distinct values of different sizes, so LREM, LINSERT and SREM find their targets.
        proptest::sample::select(vec![
            String::new(),
            "a".into(),
            "b".into(),
            "a".repeat(30),
            "b".repeat(50),
        ]),
        proptest::sample::select(vec![String::new(), "a".into(), "cc".into(), "d".repeat(20)]),
    )
        .prop_map(|(t, k, j, f, g, v, w)| {
            let Some(template) = COLLECTION_TEMPLATES.get(t) else {
                return Vec::new();
            };
            template
                .split(' ')
                .map(|word| match word {
                    "k" => format!("c{k}"),
                    "j" => format!("c{j}"),
                    "f" => f.clone(),
                    "g" => g.clone(),
                    "v" => v.clone(),
                    "w" => w.clone(),
                    other => other.to_owned(),
                })
                .collect()
        })
}

fn frame_strategy() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        "[a-zA-Z0-9 ]{0,10}".prop_map(|s| Frame::Simple(s.into())),
        "ERR [a-z ]{0,10}".prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| Frame::Bulk(Bytes::from(b))),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Boolean),
        (-1e6f64..1e6).prop_map(|d| Frame::Double((d * 4.0).round() / 4.0)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Frame::Array),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Frame::Set),
            proptest::collection::vec((inner.clone(), inner), 0..3).prop_map(Frame::Map),
        ]
    })
}
