//! Capability: the bitmap commands — SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and
//! BITFIELD_RO — answer exactly as Redis 7.0.15 does, errors included.
//! Method: start a real `redis-server` (persistence off, on a unix socket) and the streamcache
//! binary, send both the same seeded sequence of a few thousand bitmap commands over random
//! binary strings (ranges in byte and bit units, negative and past-the-end indexes, every field
//! width and overflow mode, malformed arguments), and compare every reply and, after each
//! write, the stored bytes.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

mod peers_common;

use peers_common::{Rng, redis_beside};

/// Commands per run: every command shape many times over, quick on loopback.
const COMMANDS: usize = 4000;

fn reply(con: &mut redis::Connection, args: &[Vec<u8>]) -> String {
    let mut cmd = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(a.as_slice());
    }
    match cmd.query::<redis::Value>(con) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {:?} {:?}", e.code(), e.detail()),
    }
}

impl Rng {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index: small, negative, past the end, or now and then not a number.
    fn index(&mut self) -> String {
        match self.below(10) {
            0 => "x".to_owned(),
            1..=3 => format!("-{}", self.below(40)),
            _ => self.below(60).to_string(),
        }
    }

    /// Random bytes, biased to all-zero and all-one runs so BITPOS has edges to find.
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.below(12) as usize;
        (0..n)
            .map(|_| match self.below(4) {
                0 => 0x00,
                1 => 0xff,
                _ => self.below(256) as u8,
            })
            .collect()
    }

    /// A BITFIELD type, sometimes malformed.
    fn field_type(&mut self) -> String {
        match self.below(20) {
            0 => self.pick(&["u64", "i65", "i0", "x8", "u"]).to_owned(),
            n if n % 2 == 0 => format!("i{}", 1 + self.below(64)),
            _ => format!("u{}", 1 + self.below(63)),
        }
    }

    /// A BITFIELD offset, plain or `#`-scaled, sometimes malformed.
    fn field_offset(&mut self) -> String {
        match self.below(12) {
            0 => "-1".to_owned(),
            1 => "#x".to_owned(),
            2..=4 => format!("#{}", self.below(6)),
            _ => self.below(100).to_string(),
        }
    }

    /// A value for SET/INCRBY: small, at a type's edge, or extreme.
    fn field_value(&mut self) -> String {
        match self.below(8) {
            0 => i64::MAX.to_string(),
            1 => i64::MIN.to_string(),
            2 => format!("-{}", 1u64 << self.below(63)),
            3 => (1u64 << self.below(63)).to_string(),
            _ => (self.below(600) as i64 - 300).to_string(),
        }
    }
}

fn s(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

#[test]
fn bitmap_commands_match_redis_server() {
    let (_servers, mut theirs, mut mine) = redis_beside();
    let seed = 0x0B17_0B5E_u64;
    let mut rng = Rng(seed);
    let keys = ["a", "b", "c", "list"];
    for con in [&mut theirs, &mut mine] {
        reply(con, &[s("RPUSH"), s("list"), s("x")]);
    }
    for i in 0..COMMANDS {
        let key = s(rng.pick(&keys[..3]));
        let mut args: Vec<Vec<u8>> = match rng.below(9) {
            0 => vec![s("SET"), key.clone(), rng.bytes()],
            1 => vec![
                s("SETBIT"),
                key.clone(),
                rng.below(200).to_string().into_bytes(),
                s(rng.pick(&["0", "1", "1", "2"])),
            ],
            2 => {
                let mut a = vec![s("BITCOUNT"), s(rng.pick(&keys))];
                if rng.below(4) > 0 {
                    a.push(rng.index().into_bytes());
                    if rng.below(8) > 0 {
                        a.push(rng.index().into_bytes());
                    }
                    if rng.below(2) == 0 {
                        a.push(s(rng.pick(&["BIT", "byte", "BYTE", "bit", "word"])));
                    }
                }
                a
            }
            3 | 4 => {
                let mut a = vec![
                    s("BITPOS"),
                    s(rng.pick(&keys)),
                    s(rng.pick(&["0", "1", "0", "1", "2", "x"])),
                ];
                if rng.below(3) > 0 {
                    a.push(rng.index().into_bytes());
                    if rng.below(3) > 0 {
                        a.push(rng.index().into_bytes());
                        if rng.below(2) == 0 {
                            a.push(s(rng.pick(&["BIT", "BYTE", "bit", "nope"])));
                        }
                    }
                }
                a
            }
            5 => {
                let op = rng.pick(&["AND", "or", "XOR", "not", "NOT", "nand"]);
                let mut a = vec![s("BITOP"), s(op), key.clone()];
                for _ in 0..=rng.below(3) {
                    a.push(s(rng.pick(&["a", "b", "c", "missing", "list"])));
                }
                a
            }
            6 | 7 => {
                let ro = rng.below(4) == 0;
                let mut a = vec![s(if ro { "BITFIELD_RO" } else { "BITFIELD" }), key.clone()];
                for _ in 0..=rng.below(4) {
                    match rng.below(if ro { 6 } else { 4 }) {
                        0 => a.extend([
                            s("OVERFLOW"),
                            s(rng.pick(&["WRAP", "sat", "FAIL", "fail", "bogus"])),
                        ]),
                        1 => a.extend([
                            s("SET"),
                            rng.field_type().into_bytes(),
                            rng.field_offset().into_bytes(),
                            rng.field_value().into_bytes(),
                        ]),
                        2 => a.extend([
                            s("INCRBY"),
                            rng.field_type().into_bytes(),
                            rng.field_offset().into_bytes(),
                            rng.field_value().into_bytes(),
                        ]),
                        _ => a.extend([
                            s("GET"),
                            rng.field_type().into_bytes(),
                            rng.field_offset().into_bytes(),
                        ]),
                    }
                }
                if rng.below(20) == 0 {
                    a.push(s("GET"));
                }
                a
            }
            _ => vec![
                s("GETBIT"),
                key.clone(),
                rng.below(120).to_string().into_bytes(),
            ],
        };
        if rng.below(50) == 0 {
            args[1] = s("list");
        }
        let (want, got) = (reply(&mut theirs, &args), reply(&mut mine, &args));
        let shown: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            got, want,
            "command {i} of seed {seed:#x}: {shown:?} (redis-server's reply on the right)"
        );
        for k in ["a", "b", "c"] {
            let get = [s("GET"), s(k)];
            assert_eq!(
                reply(&mut mine, &get),
                reply(&mut theirs, &get),
                "after command {i} of seed {seed:#x}: {shown:?}, key {k}"
            );
        }
    }
}
