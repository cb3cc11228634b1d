//! Capability: the geospatial commands — GEOADD, GEOPOS, GEOHASH, GEODIST, GEORADIUS,
//! GEORADIUSBYMEMBER (and their `_RO` forms), GEOSEARCH and GEOSEARCHSTORE — answer exactly as
//! Redis 7.0.15 does: the same members, distances, hashes and coordinates, in the same order
//! (COUNT … ANY included), the same stored sets, and the same errors.
//! Method: start a real `redis-server` (persistence off, on a unix socket) and the streamcache
//! binary, send both the same seeded sequence of geo commands over clusters of points (near the
//! poles' latitude limit and the antimeridian too, and malformed arguments), and compare every
//! reply and, after each store, the stored sorted set.
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
const COMMANDS: usize = 3000;

fn reply(con: &mut redis::Connection, args: &[String]) -> String {
    let mut cmd = redis::cmd(&args[0]);
    for a in &args[1..] {
        cmd.arg(a.as_str());
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

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.below(1_000_000) as f64 / 1_000_000.0)
    }

    /// A point around one of a few centers (one at the antimeridian, one near the latitude
    /// limit), or now and then out of range or not a number.
    fn point(&mut self) -> (String, String) {
        match self.below(40) {
            0 => ("181".to_owned(), "10".to_owned()),
            1 => ("10".to_owned(), "85.06".to_owned()),
            2 => ("x".to_owned(), "1".to_owned()),
            _ => {
                let (clon, clat) = match self.below(4) {
                    0 => (13.4, 38.1),
                    1 => (179.9, -16.5),
                    2 => (-73.9, 84.9),
                    _ => (2.35, 48.85),
                };
                let spread = [0.01, 0.5, 3.0][self.below(3) as usize];
                let lon = (clon + self.uniform(-spread, spread)).clamp(-180.0, 180.0);
                let lat = (clat + self.uniform(-spread, spread)).clamp(-85.05, 85.05);
                (format!("{lon:.6}"), format!("{lat:.6}"))
            }
        }
    }

    fn member(&mut self) -> String {
        format!("m{}", self.below(60))
    }

    fn unit(&mut self) -> &'static str {
        self.pick(&["m", "km", "mi", "ft", "KM", "yd"])
    }

    fn radius(&mut self) -> String {
        match self.below(20) {
            0 => "-1".to_owned(),
            1 => "0".to_owned(),
            2 => "r".to_owned(),
            _ => format!("{}", self.below(400_000)),
        }
    }

    /// Trailing options for a search.
    fn options(&mut self, store: Option<&str>) -> Vec<String> {
        let mut o = Vec::new();
        for _ in 0..self.below(4) {
            match self.below(9) {
                0 => o.push("WITHDIST".to_owned()),
                1 => o.push("WITHHASH".to_owned()),
                2 => o.push("WITHCOORD".to_owned()),
                3 => o.push(self.pick(&["ASC", "DESC"]).to_owned()),
                4 | 5 => {
                    o.push("COUNT".to_owned());
                    o.push(self.pick(&["1", "3", "10", "0", "x"]).to_owned());
                    if self.below(2) == 0 {
                        o.push("ANY".to_owned());
                    }
                }
                6 => o.push("ANY".to_owned()),
                _ => {
                    if let Some(k) = store {
                        o.push(self.pick(&["STORE", "STOREDIST"]).to_owned());
                        o.push(k.to_owned());
                    }
                }
            }
        }
        o
    }

    fn command(&mut self) -> Vec<String> {
        let key = self.pick(&["g", "g", "g", "h", "str"]).to_owned();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        match self.below(12) {
            0..=2 => {
                let mut c = s(&["GEOADD", &key]);
                if self.below(6) == 0 {
                    c.push(self.pick(&["NX", "XX", "CH"]).to_owned());
                }
                for _ in 0..1 + self.below(6) {
                    let (lon, lat) = self.point();
                    c.extend([lon, lat, self.member()]);
                }
                c
            }
            3 => {
                let mut c = s(&[self.pick(&["GEOPOS", "GEOHASH"]), &key]);
                for _ in 0..self.below(4) {
                    c.push(self.member());
                }
                c
            }
            4 => {
                let mut c = s(&["GEODIST", &key]);
                c.extend([self.member(), self.member()]);
                if self.below(2) == 0 {
                    c.push(self.unit().to_owned());
                }
                c
            }
            5 | 6 => {
                let name = self.pick(&["GEORADIUS", "GEORADIUS_RO"]);
                let (lon, lat) = self.point();
                let mut c = s(&[name, &key]);
                c.extend([lon, lat, self.radius(), self.unit().to_owned()]);
                c.extend(self.options(Some("dst")));
                c
            }
            7 => {
                let name = self.pick(&["GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]);
                let mut c = s(&[name, &key]);
                c.extend([self.member(), self.radius(), self.unit().to_owned()]);
                c.extend(self.options(Some("dst")));
                c
            }
            8..=10 => {
                let store = self.below(3) == 0;
                let mut c = if store {
                    s(&["GEOSEARCHSTORE", "dst", &key])
                } else {
                    s(&["GEOSEARCH", &key])
                };
                match self.below(5) {
                    0 => {}
                    1 | 2 => {
                        c.push("FROMMEMBER".to_owned());
                        c.push(self.member());
                    }
                    _ => {
                        let (lon, lat) = self.point();
                        c.extend(["FROMLONLAT".to_owned(), lon, lat]);
                    }
                }
                match self.below(5) {
                    0 => {}
                    1 | 2 => {
                        c.extend(["BYRADIUS".to_owned(), self.radius(), self.unit().to_owned()])
                    }
                    _ => c.extend([
                        "BYBOX".to_owned(),
                        self.radius(),
                        self.radius(),
                        self.unit().to_owned(),
                    ]),
                }
                c.extend(self.options(None));
                if store && self.below(2) == 0 {
                    c.push("STOREDIST".to_owned());
                }
                c
            }
            _ => s(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]),
        }
    }
}

#[test]
fn geo_commands_answer_as_redis_does() {
    let (_servers, mut theirs, mut mine) = redis_beside();
    for con in [&mut theirs, &mut mine] {
        redis::cmd("SET")
            .arg("str")
            .arg("x")
            .query::<()>(con)
            .unwrap();
    }
    let seed = 0x6E0_5EA4C_u64;
    let mut rng = Rng(seed);
    let mut searched = 0;
    for i in 0..COMMANDS {
        let cmd = rng.command();
        let want = reply(&mut theirs, &cmd);
        let got = reply(&mut mine, &cmd);
        assert_eq!(got, want, "command {i} of seed {seed:#x}: {cmd:?}");
        if cmd[0].starts_with("GEOSEARCH") || cmd[0].starts_with("GEORADIUS") {
            // A search that found members: a non-empty array, or a store of at least one.
            let found = (want.starts_with("array([") && want != "array([])")
                || (want.starts_with("int(") && want != "int(0)");
            searched += usize::from(found);
        }
    }
    assert!(
        searched > COMMANDS / 10,
        "searches found something {searched} times"
    );
}
