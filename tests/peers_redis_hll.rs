//! Capability: HyperLogLogs are byte-compatible with Redis 7.0.15 in both directions — the
//! same PFADD/PFMERGE commands leave the same string bytes (sparse opcodes, the sparse → dense
//! promotion at `hll-sparse-max-bytes`, dense registers, the cached cardinality and its stale
//! bit) and the same PFCOUNT replies, and a sketch moved either way with GET/SET or
//! DUMP/RESTORE keeps counting and growing identically on the other side.
//! Method: start a real `redis-server` and the streamcache binary side by side, run one seeded
//! sequence of PFADD (batches of 1–700 elements over a shared pool, so registers repeat),
//! PFMERGE, PFCOUNT (one key and several) and now and then a one-byte corruption (SETRANGE) on
//! both, and compare every reply and, after
//! every command, the raw value of every key it touched.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

mod peers_common;

use peers_common::{Rng, redis_beside};

/// Commands per run.
const STEPS: usize = 1500;
/// Keys the sequence works on.
const KEYS: u64 = 6;

fn run(con: &mut redis::Connection, args: &[Vec<u8>]) -> Result<redis::Value, String> {
    let mut cmd = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(a.as_slice());
    }
    cmd.query::<redis::Value>(con).map_err(|e| e.to_string())
}

fn raw(con: &mut redis::Connection, key: &[u8]) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(con).unwrap()
}

fn key(rng: &mut Rng) -> Vec<u8> {
    format!("h{}", rng.below(KEYS)).into_bytes()
}

#[test]
fn same_commands_leave_the_same_bytes() {
    let (_servers, mut theirs, mut mine) = redis_beside();
    let seed = 0x4C4C_5948_u64;
    let mut rng = Rng(seed);
    for con in [&mut theirs, &mut mine] {
        let set = ["CONFIG", "SET", "hll-sparse-max-bytes", "3000"];
        run(con, &set.map(|s| s.as_bytes().to_vec())).unwrap();
    }
    for step in 0..STEPS {
        let mut cmd: Vec<Vec<u8>>;
        match rng.below(10) {
            0..=5 => {
                cmd = vec![b"PFADD".to_vec(), key(&mut rng)];
                let n = match rng.below(3) {
                    0 => rng.below(5),
                    1 => rng.below(100),
                    _ => rng.below(700),
                };
                let pool = 1 + rng.below(20_000);
                cmd.extend((0..n).map(|_| format!("e{}", rng.below(pool)).into_bytes()));
            }
            6 | 7 => {
                cmd = vec![b"PFMERGE".to_vec(), key(&mut rng)];
                cmd.extend((0..rng.below(4)).map(|_| key(&mut rng)));
            }
            8 if rng.below(4) == 0 => {
                // Corrupt one byte of a sketch: both servers must then answer alike.
                let k = key(&mut rng);
                let len = raw(&mut theirs, &k).map_or(0, |v| v.len() as u64);
                if len == 0 {
                    continue;
                }
                let at = rng.below(len).to_string().into_bytes();
                cmd = vec![b"SETRANGE".to_vec(), k, at, vec![rng.below(256) as u8]];
            }
            _ => {
                cmd = vec![b"PFCOUNT".to_vec()];
                cmd.extend((0..1 + rng.below(3)).map(|_| key(&mut rng)));
            }
        }
        let want = run(&mut theirs, &cmd);
        assert_eq!(run(&mut mine, &cmd), want, "step {step} of seed {seed:#x}");
        for k in &cmd[1..] {
            assert_eq!(
                raw(&mut mine, k),
                raw(&mut theirs, k),
                "step {step} of seed {seed:#x}: {} {}",
                String::from_utf8_lossy(&cmd[0]),
                String::from_utf8_lossy(k)
            );
        }
    }
}

#[test]
fn sketches_move_both_ways() {
    let (_servers, mut theirs, mut mine) = redis_beside();
    let mut rng = Rng(0x00C0_FFEE);
    for (i, n) in [0u64, 3, 150, 1500, 6000].into_iter().enumerate() {
        let k = format!("s{i}").into_bytes();
        let mut add = vec![b"PFADD".to_vec(), k.clone()];
        add.extend((0..n).map(|_| rng.next().to_string().into_bytes()));
        run(&mut theirs, &add).unwrap();
        run(&mut mine, &add).unwrap();
        let count = |k: &[u8]| vec![b"PFCOUNT".to_vec(), k.to_vec()];
        let more = |k: &[u8]| vec![b"PFADD".to_vec(), k.to_vec(), b"x".to_vec(), b"y".to_vec()];
        for redis_first in [true, false] {
            let (src, dst) = if redis_first {
                (&mut theirs, &mut mine)
            } else {
                (&mut mine, &mut theirs)
            };
            let value = raw(src, &k).unwrap();
            let payload: Vec<u8> = redis::cmd("DUMP").arg(&k).query(src).unwrap();
            redis::cmd("SET")
                .arg(b"copy")
                .arg(&value)
                .query::<()>(dst)
                .unwrap();
            redis::cmd("DEL").arg(b"restored").query::<()>(dst).unwrap();
            redis::cmd("RESTORE")
                .arg(b"restored")
                .arg(0)
                .arg(&payload)
                .query::<()>(dst)
                .unwrap();
            let want = run(src, &count(&k));
            run(src, &more(&k)).unwrap();
            for copy in [b"copy".as_slice(), b"restored"] {
                assert_eq!(
                    run(dst, &count(copy)),
                    want,
                    "s{i}, from Redis: {redis_first}"
                );
                run(dst, &more(copy)).unwrap();
                assert_eq!(
                    raw(dst, copy),
                    raw(src, &k),
                    "s{i}, from Redis: {redis_first}"
                );
            }
        }
    }
}
