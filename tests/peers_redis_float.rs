//! Capability: INCRBYFLOAT and HINCRBYFLOAT give the same text, and the same errors, as Redis
//! 7.0.15 itself — Redis adds in `long double` and prints with `%.17Lf`, which a double cannot
//! imitate.
//! Method: start a real `redis-server` (persistence off, on a unix socket) and the streamcache
//! binary, send both the same seeded sequence of a few thousand operand pairs (decimal and
//! hexadecimal, tiny and huge, malformed and infinite, and a running sum that re-parses each
//! reply), and compare every reply.
#![cfg(feature = "peers")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers below are test code outside #[test] functions"
)]

mod peers_common;

use peers_common::{Rng, redis_beside};

/// Pairs per run: enough to cover every operand shape many times over, quick on loopback.
const PAIRS: usize = 2000;

/// Operand text for the float commands.
trait Operands {
    fn digits(&mut self, min: u64, max: u64, radix: u32) -> String;
    fn operand(&mut self) -> String;
}

impl Operands for Rng {
    /// Up to `max` random digits (at least `min`) in `radix`.
    fn digits(&mut self, min: u64, max: u64, radix: u32) -> String {
        let n = min + self.below(max - min + 1);
        (0..n)
            .map(|_| char::from_digit(self.below(u64::from(radix)) as u32, radix).unwrap())
            .collect()
    }

    fn operand(&mut self) -> String {
        let sign = ["", "-", "+"][self.below(3) as usize];
        match self.below(10) {
            0 => {
                let hex = self.digits(1, 18, 16);
                let exp = self.below(200) as i64 - 100;
                format!("{sign}0x{hex}p{exp}")
            }
            1 => format!("{sign}{}e-{}", self.digits(1, 1, 10), 17 + self.below(6)),
            2 => format!("{sign}{}e{}", self.digits(1, 3, 10), self.below(400)),
            3 => format!("{sign}18446744073709551{}", self.digits(3, 3, 10)),
            4 => [
                "inf",
                "-infinity",
                "nan",
                "1e",
                " 1",
                "1 ",
                "",
                "0x",
                "1.2.3",
                "1e5000",
                "1e-5000",
                "1.18e4932",
            ][self.below(12) as usize]
                .to_owned(),
            _ => {
                let int = self.digits(0, 7, 10);
                let frac = self.digits(0, 11, 10);
                if int.is_empty() && frac.is_empty() {
                    format!("{sign}0")
                } else {
                    format!("{sign}{int}.{frac}")
                }
            }
        }
    }
}

fn reply(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args.first().unwrap());
    for a in args.get(1..).unwrap() {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(con) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {:?} {:?}", e.code(), e.detail()),
    }
}

#[test]
fn float_increments_match_redis_server() {
    let (_servers, mut theirs, mut mine) = redis_beside();

    let seed = 0x0005_EEDF_10A7_u64;
    let mut rng = Rng(seed);
    let mut compared = 0;
    for i in 0..PAIRS {
        let (a, b) = (rng.operand(), rng.operand());
        let script: [&[&str]; 6] = [
            &["SET", "k", &a],
            &["INCRBYFLOAT", "k", &b],
            &["INCRBYFLOAT", "sum", &b],
            &["DEL", "h"],
            &["HSET", "h", "f", &a],
            &["HINCRBYFLOAT", "h", "f", &b],
        ];
        for args in script {
            let (want, got) = (reply(&mut theirs, args), reply(&mut mine, args));
            assert_eq!(
                got, want,
                "pair {i} of seed {seed:#x}: {args:?} (redis-server's reply on the right)"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, PAIRS * 6);
}
