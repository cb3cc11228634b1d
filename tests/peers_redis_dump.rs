//! Capability: a key DUMPed by Redis 7.0.15 RESTOREs into streamcache with the same value, and a
//! key DUMPed by streamcache RESTOREs into Redis 7.0.15 with the same value — the migration
//! path of RIOT, redis-shake and MIGRATE-style scripts.
//! Method: start a real `redis-server` (persistence off, on a unix socket) and the streamcache
//! binary, build the same seeded values on both with the same commands (every type, small and
//! large, so Redis writes listpacks, intsets, tables, skiplists and LZF-compressed strings;
//! streams with deleted entries, trimmed heads and consumer groups),
//! move each key across in both directions with DUMP and RESTORE, and compare what each side
//! reads back from the copy with what it reads from its own original.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

mod peers_common;

use peers_common::{Rng, redis_beside};

/// Keys per run.
const KEYS: usize = 300;

/// Random elements.
trait Elements {
    fn element(&mut self) -> Vec<u8>;
}

impl Elements for Rng {
    /// An element: an integer of some width, a short text, or a long repetitive text (which
    /// Redis compresses).
    fn element(&mut self) -> Vec<u8> {
        match self.below(5) {
            0 => (self.next() as i64 >> self.below(64))
                .to_string()
                .into_bytes(),
            1 => self.below(300).to_string().into_bytes(),
            2 => (0..self.below(20)).map(|_| self.below(256) as u8).collect(),
            3 => "ab".repeat(self.below(100) as usize).into_bytes(),
            _ => format!("member-{}", self.below(10_000)).into_bytes(),
        }
    }
}

/// The commands that build key `k` of kind `kind`.
fn build(rng: &mut Rng, key: &str) -> Vec<Vec<Vec<u8>>> {
    let n = match rng.below(3) {
        0 => 1 + rng.below(5),
        1 => 1 + rng.below(150),
        _ => 1 + rng.below(700),
    } as usize;
    let k = key.as_bytes().to_vec();
    let mut cmds = Vec::new();
    match rng.below(6) {
        0 => cmds.push(vec![b"SET".to_vec(), k, rng.element()]),
        1 => {
            let mut c = vec![b"RPUSH".to_vec(), k];
            c.extend((0..n).map(|_| rng.element()));
            cmds.push(c);
        }
        2 => {
            let mut c = vec![b"SADD".to_vec(), k];
            c.extend((0..n).map(|_| rng.element()));
            cmds.push(c);
        }
        3 => {
            let mut c = vec![b"HSET".to_vec(), k];
            for _ in 0..n {
                c.push(rng.element());
                c.push(rng.element());
            }
            cmds.push(c);
        }
        5 => {
            // Entries with explicit IDs (several per millisecond), most with the first
            // entry's field names; some deleted, the head trimmed; two consumer groups, one
            // with entries pending.
            let mut ms = 1 + rng.below(1000);
            let fields = [b"f".to_vec(), rng.element()];
            let mut ids = Vec::new();
            for i in 0..n {
                ms += rng.below(3);
                let id = format!("{ms}-{i}").into_bytes();
                let mut c = vec![b"XADD".to_vec(), k.clone(), id.clone()];
                if rng.below(5) == 0 {
                    c.extend([rng.element(), rng.element()]);
                } else {
                    for f in &fields {
                        c.extend([f.clone(), rng.element()]);
                    }
                }
                cmds.push(c);
                ids.push(id);
            }
            for _ in 0..rng.below(4) {
                let id = ids[rng.below(n as u64) as usize].clone();
                cmds.push(vec![b"XDEL".to_vec(), k.clone(), id]);
            }
            if rng.below(2) == 0 {
                let keep = (n / 2).to_string().into_bytes();
                cmds.push(vec![b"XTRIM".to_vec(), k.clone(), b"MAXLEN".to_vec(), keep]);
            }
            for (group, start) in [("g", "0"), ("h", "$")] {
                cmds.push(
                    ["XGROUP", "CREATE", key, group, start]
                        .iter()
                        .map(|a| a.as_bytes().to_vec())
                        .collect(),
                );
            }
            let count = (1 + rng.below(n as u64)).to_string();
            cmds.push(
                [
                    "XREADGROUP",
                    "GROUP",
                    "g",
                    "alice",
                    "COUNT",
                    &count,
                    "STREAMS",
                    key,
                    ">",
                ]
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect(),
            );
        }
        _ => {
            let mut c = vec![b"ZADD".to_vec(), k];
            for _ in 0..n {
                let score = match rng.below(4) {
                    0 => rng.below(1000).to_string(),
                    1 => format!("{}", (rng.next() as i64) as f64 / 1e9),
                    2 => ["-inf", "inf", "0.1", "-0"][rng.below(4) as usize].to_owned(),
                    _ => format!("{}.5", rng.below(100)),
                };
                c.push(score.into_bytes());
                c.push(rng.element());
            }
            cmds.push(c);
        }
    }
    cmds
}

fn run(con: &mut redis::Connection, args: &[Vec<u8>]) {
    let mut cmd = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(a.as_slice());
    }
    cmd.query::<redis::Value>(con).unwrap();
}

/// What a key holds, comparable across servers: type, then its elements (sorted where the
/// type has no order).
fn contents(con: &mut redis::Connection, key: &str) -> (String, Vec<Vec<u8>>) {
    let kind: String = redis::cmd("TYPE").arg(key).query(con).unwrap();
    let mut items: Vec<Vec<u8>> = match kind.as_str() {
        "string" => vec![redis::cmd("GET").arg(key).query(con).unwrap()],
        "list" => redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(con)
            .unwrap(),
        "set" => redis::cmd("SMEMBERS").arg(key).query(con).unwrap(),
        "hash" => {
            let flat: Vec<Vec<u8>> = redis::cmd("HGETALL").arg(key).query(con).unwrap();
            flat.chunks(2)
                .map(|p| [p[0].clone(), b"=".to_vec(), p[1].clone()].concat())
                .collect()
        }
        "zset" => redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(con)
            .unwrap(),
        "stream" => {
            // The entries, the stream's bookkeeping and each group's (delivery and seen times
            // are left out: the two servers' clocks differ).
            let mut items = flatten(
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg("-")
                    .arg("+")
                    .query(con)
                    .unwrap(),
            );
            // Not the node counts: Redis also starts a node at `stream-node-max-bytes`.
            let info: redis::Value = redis::cmd("XINFO")
                .arg("STREAM")
                .arg(key)
                .query(con)
                .unwrap();
            let redis::Value::Array(info) = info else {
                panic!("{info:?}")
            };
            for pair in info.chunks(2) {
                let name = flatten(pair[0].clone()).concat();
                if !name.starts_with(b"radix-tree-") {
                    items.push(name);
                    items.extend(flatten(pair[1].clone()));
                }
            }
            items.extend(flatten(
                redis::cmd("XINFO")
                    .arg("GROUPS")
                    .arg(key)
                    .query(con)
                    .unwrap(),
            ));
            items.extend(flatten(
                redis::cmd("XPENDING").arg(key).arg("g").query(con).unwrap(),
            ));
            items
        }
        other => panic!("type {other}"),
    };
    if kind == "set" || kind == "hash" {
        items.sort();
    }
    (kind, items)
}

/// A reply's leaves in order, integers as text, nil as "(nil)".
fn flatten(v: redis::Value) -> Vec<Vec<u8>> {
    match v {
        redis::Value::Array(items) => items.into_iter().flat_map(flatten).collect(),
        redis::Value::BulkString(b) => vec![b],
        redis::Value::SimpleString(s) => vec![s.into_bytes()],
        redis::Value::Int(n) => vec![n.to_string().into_bytes()],
        redis::Value::Nil => vec![b"(nil)".to_vec()],
        other => panic!("{other:?}"),
    }
}

fn dump(con: &mut redis::Connection, key: &str) -> Vec<u8> {
    let p: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query(con).unwrap();
    p.expect("DUMP of an existing key")
}

fn restore(con: &mut redis::Connection, key: &str, payload: &[u8]) {
    let r: redis::RedisResult<()> = redis::cmd("RESTORE")
        .arg(key)
        .arg(0)
        .arg(payload)
        .query(con);
    if let Err(e) = r {
        panic!("RESTORE {key}: {e:?} (payload {} bytes)", payload.len());
    }
}

#[test]
fn dump_and_restore_move_keys_both_ways() {
    let (_servers, mut theirs, mut mine) = redis_beside();

    let seed = 0x00D0_3F5E_ED01_u64;
    let mut rng = Rng(seed);
    let mut kinds = std::collections::BTreeSet::new();
    for i in 0..KEYS {
        let key = format!("k{i}");
        for cmd in build(&mut rng, &key) {
            run(&mut theirs, &cmd);
            run(&mut mine, &cmd);
        }
        let want = contents(&mut theirs, &key);
        kinds.insert(want.0.clone());
        assert_eq!(contents(&mut mine, &key), want, "key {i} of seed {seed:#x}");

        // Redis → streamcache.
        let from_redis = dump(&mut theirs, &key);
        restore(&mut mine, &format!("{key}-from-redis"), &from_redis);
        assert_eq!(
            contents(&mut mine, &format!("{key}-from-redis")),
            want,
            "key {i} of seed {seed:#x}: Redis's payload {}",
            from_redis.len()
        );
        // streamcache → Redis.
        let from_us = dump(&mut mine, &key);
        restore(&mut theirs, &format!("{key}-from-us"), &from_us);
        assert_eq!(
            contents(&mut theirs, &format!("{key}-from-us")),
            want,
            "key {i} of seed {seed:#x}: our payload {}",
            from_us.len()
        );
        // Same encoding on both sides of each copy.
        for k in [format!("{key}-from-redis"), key.clone()] {
            let a: Option<String> = redis::cmd("OBJECT")
                .arg("ENCODING")
                .arg(&k)
                .query(&mut mine)
                .unwrap();
            let b: Option<String> = redis::cmd("OBJECT")
                .arg("ENCODING")
                .arg(&key)
                .query(&mut theirs)
                .unwrap();
            if want.0 != "set" {
                assert_eq!(a, b, "OBJECT ENCODING {k}");
            }
        }
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["hash", "list", "set", "stream", "string", "zset"],
        "every type moved"
    );
}
