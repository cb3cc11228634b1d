//! Geospatial commands, as Redis 7.0.15's `geo.c`, `geohash.c` and `geohash_helper.c`: a point
//! is a sorted set member whose score is its 52-bit interleaved geohash (26 bits of longitude
//! over [-180, 180] and 26 of latitude over [-85.05112878, 85.05112878]), so GEOADD is ZADD of
//! encoded scores and every sorted set command works on a geo key.
//!
//! A search (GEORADIUS, GEORADIUSBYMEMBER, their `_RO` forms, GEOSEARCH, GEOSEARCHSTORE) picks
//! the geohash precision whose cells cover the radius or box, takes the center cell and its
//! eight neighbours (dropping those the shape cannot reach, and repeats), reads each cell's
//! score range from the sorted set in order, and keeps the members whose decoded position lies
//! in the circle (haversine distance on Redis's Earth radius) or the box — the same candidates,
//! in the same order, as Redis, so `COUNT n ANY` stops at the same members.
//!
//! Replies: distances as `%.4f` text (Redis's `fixedpoint_d2string`), coordinates as Redis's
//! human long double text (`%.17Lf` without trailing zeroes) in RESP2 and as doubles in RESP3,
//! hashes as integers, GEOHASH as the 11-character standard geohash of the decoded position.

use std::f64::consts::PI;

use bytes::Bytes;

use super::zset::{get_zset, parse_score, store_result};
use super::{NOT_INTEGER, SYNTAX, arg, is, tri};
use crate::cache::Inner;
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::{Frame, parse_i64};
use crate::cache::zset::ZSetValue;

/// Bits per coordinate in a stored score (`GEO_STEP_MAX`).
const STEP_MAX: u8 = 26;
const LAT_MIN: f64 = -85.051_128_78;
const LAT_MAX: f64 = 85.051_128_78;
const LONG_MIN: f64 = -180.0;
const LONG_MAX: f64 = 180.0;
/// Redis's `EARTH_RADIUS_IN_METERS` (the WGS-84 quadratic mean radius).
const EARTH_RADIUS_M: f64 = 6_372_797.560_856;
/// Redis's `MERCATOR_MAX`.
const MERCATOR_MAX: f64 = 20_037_726.37;
const D_R: f64 = PI / 180.0;
const GEO_ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

fn deg_rad(a: f64) -> f64 {
    a * D_R
}

fn rad_deg(a: f64) -> f64 {
    a / D_R
}

/// A geohash of `step` bits per coordinate (`GeoHashBits`); all zero is "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Hash {
    bits: u64,
    step: u8,
}

impl Hash {
    fn is_zero(self) -> bool {
        self.bits == 0 && self.step == 0
    }

    /// The hash shifted to 52 bits (`geohashAlign52Bits`).
    fn align52(self) -> u64 {
        self.bits << (52 - u32::from(self.step) * 2)
    }
}

/// A cell's bounds.
#[derive(Debug, Clone, Copy, Default)]
struct Area {
    lon: (f64, f64),
    lat: (f64, f64),
}

/// Interleaves the low 32 bits of `x` (even bits) and `y` (odd bits).
fn interleave64(x: u32, y: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (u64::from(x), u64::from(y));
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

/// Splits interleaved bits: even bits in the low half, odd bits in the high half.
fn deinterleave64(v: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555_5555_5555_5555,
        0x3333_3333_3333_3333,
        0x0F0F_0F0F_0F0F_0F0F,
        0x00FF_00FF_00FF_00FF,
        0x0000_FFFF_0000_FFFF,
        0x0000_0000_FFFF_FFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (v, v >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode` over the given ranges; `None` outside them.
fn encode(
    lon_range: (f64, f64),
    lat_range: (f64, f64),
    lon: f64,
    lat: f64,
    step: u8,
) -> Option<Hash> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.0 || lat > lat_range.1 || lon < lon_range.0 || lon > lon_range.1 {
        return None;
    }
    let cells = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.0) / (lat_range.1 - lat_range.0) * cells;
    let lon_offset = (lon - lon_range.0) / (lon_range.1 - lon_range.0) * cells;
    // C's conversion of the offsets to `uint32_t` truncates; they lie in [0, 2^step].
    Some(Hash {
        bits: interleave64(lat_offset as u32, lon_offset as u32),
        step,
    })
}

fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Hash> {
    encode((LONG_MIN, LONG_MAX), (LAT_MIN, LAT_MAX), lon, lat, step)
}

/// `geohashDecode` over the WGS-84 ranges; `None` for the zero hash.
fn decode(hash: Hash) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let (ilat, ilon) = (f64::from(sep as u32), f64::from((sep >> 32) as u32));
    let cells = (1u64 << hash.step) as f64;
    let (lat_scale, lon_scale) = (LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN);
    Some(Area {
        lat: (
            LAT_MIN + (ilat / cells) * lat_scale,
            LAT_MIN + ((ilat + 1.0) / cells) * lat_scale,
        ),
        lon: (
            LONG_MIN + (ilon / cells) * lon_scale,
            LONG_MIN + ((ilon + 1.0) / cells) * lon_scale,
        ),
    })
}

/// C's `(uint64_t)score` as x86-64 compilers emit it, which Redis's `decodeGeohash` relies
/// on: below 2^63 the signed truncation (`cvttsd2si`, whose result for a value out of the
/// `i64` range is 2^63) reinterpreted, so -1 is all ones; from 2^63 on the truncation of
/// `score - 2^63` with the top bit flipped, so +inf is 0. (Rust's `as` saturates instead.)
fn c_score_bits(score: f64) -> u64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    const INDEFINITE: u64 = 1 << 63;
    let truncate = |x: f64| {
        if (-TWO_POW_63..TWO_POW_63).contains(&x) {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "inside the i64 range, checked above; truncation is the conversion wanted"
            )]
            let n = x as i64;
            n.cast_unsigned()
        } else {
            INDEFINITE
        }
    };
    if score < TWO_POW_63 {
        truncate(score)
    } else {
        truncate(score - TWO_POW_63) ^ INDEFINITE
    }
}

/// A stored score's position, the center of its cell (`decodeGeohash`).
fn decode_score(score: f64) -> Option<(f64, f64)> {
    // Scores written by GEOADD are integers below 2^52; any other score decodes as the cell
    // its conversion to 64 bits names, as in Redis (every bit is read, the cell clamped).
    let area = decode(Hash {
        bits: c_score_bits(score),
        step: STEP_MAX,
    })?;
    let lon = ((area.lon.0 + area.lon.1) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.0 + area.lat.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some((lon, lat))
}

fn move_x(h: &mut Hash, d: i8) {
    // A zero-step hash (none) has no neighbours; its shift below would overflow.
    if d == 0 || h.step == 0 {
        return;
    }
    let shift = 64 - u32::from(h.step) * 2;
    let mut x = h.bits & 0xAAAA_AAAA_AAAA_AAAA;
    let y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0x5555_5555_5555_5555u64 >> shift;
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xAAAA_AAAA_AAAA_AAAAu64 >> shift;
    h.bits = x | y;
}

fn move_y(h: &mut Hash, d: i8) {
    if d == 0 || h.step == 0 {
        return;
    }
    let shift = 64 - u32::from(h.step) * 2;
    let x = h.bits & 0xAAAA_AAAA_AAAA_AAAA;
    let mut y = h.bits & 0x5555_5555_5555_5555;
    let zz = 0xAAAA_AAAA_AAAA_AAAAu64 >> shift;
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555_5555_5555_5555u64 >> shift;
    h.bits = x | y;
}

/// The neighbour of `h` by `(dx, dy)` cells.
fn moved(h: Hash, dx: i8, dy: i8) -> Hash {
    let mut n = h;
    move_x(&mut n, dx);
    move_y(&mut n, dy);
    n
}

/// `geohashEstimateStepsByRadius`.
fn estimate_steps(mut range_m: f64, lat: f64) -> u8 {
    if range_m == 0.0 {
        return STEP_MAX;
    }
    let mut step: i32 = 1;
    while range_m < MERCATOR_MAX {
        range_m *= 2.0;
        step += 1;
    }
    step -= 2;
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    u8::try_from(step.clamp(1, i32::from(STEP_MAX))).unwrap_or(1)
}

/// A search shape: a circle of `radius` or a box of `width` × `height` (in the unit whose
/// meters are `conversion`) around `(lon, lat)`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    lon: f64,
    lat: f64,
    conversion: f64,
    kind: ShapeKind,
}

#[derive(Debug, Clone, Copy)]
enum ShapeKind {
    Circle { radius: f64 },
    Box { width: f64, height: f64 },
}

/// Haversine distance in meters (`geohashGetDistance`).
fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (deg_rad(lon1), deg_rad(lon2));
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

impl Shape {
    /// `geohashBoundingBox`: min lon, min lat, max lon, max lat.
    fn bounds(&self) -> [f64; 4] {
        let (height, width) = match self.kind {
            ShapeKind::Circle { radius } => (radius, radius),
            ShapeKind::Box { width, height } => (height / 2.0, width / 2.0),
        };
        let (height, width) = (height * self.conversion, width * self.conversion);
        let lat_delta = rad_deg(height / EARTH_RADIUS_M);
        let long_delta_top = rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_M / deg_rad(self.lat - lat_delta).cos());
        let delta = if self.lat < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            self.lon - delta,
            self.lat - lat_delta,
            self.lon + delta,
            self.lat + lat_delta,
        ]
    }

    /// The distance in meters from the center to `(lon, lat)` when that point is inside
    /// (`geoWithinShape`).
    fn contains(&self, lon: f64, lat: f64) -> Option<f64> {
        match self.kind {
            ShapeKind::Circle { radius } => {
                let d = distance(self.lon, self.lat, lon, lat);
                (d <= radius * self.conversion).then_some(d)
            }
            ShapeKind::Box { width, height } => {
                let (w, h) = (width * self.conversion, height * self.conversion);
                if lat_distance(lat, self.lat) > h / 2.0 {
                    return None;
                }
                if distance(lon, lat, self.lon, lat) > w / 2.0 {
                    return None;
                }
                Some(distance(self.lon, self.lat, lon, lat))
            }
        }
    }

    /// The cells to search, in Redis's order: center, N, S, E, W, NE, NW, SE, SW; a cell the
    /// shape cannot reach is zero (`geohashCalculateAreasByShapeWGS84`).
    fn cells(&self) -> [Hash; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = self.bounds();
        let radius_m = match self.kind {
            ShapeKind::Circle { radius } => radius,
            ShapeKind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * self.conversion;
        let mut steps = estimate_steps(radius_m, self.lat);
        let around = |steps: u8| {
            let hash = encode_wgs84(self.lon, self.lat, steps).unwrap_or_default();
            let n = [
                hash,
                moved(hash, 0, 1),
                moved(hash, 0, -1),
                moved(hash, 1, 0),
                moved(hash, -1, 0),
                moved(hash, 1, 1),
                moved(hash, -1, 1),
                moved(hash, 1, -1),
                moved(hash, -1, -1),
            ];
            (n, decode(hash).unwrap_or_default())
        };
        let (mut n, mut area) = around(steps);
        let edge = |h: Hash| decode(h).unwrap_or_default();
        let decrease = edge(n[1]).lat.1 < max_lat
            || edge(n[2]).lat.0 > min_lat
            || edge(n[3]).lon.1 < max_lon
            || edge(n[4]).lon.0 > min_lon;
        if steps > 1 && decrease {
            steps -= 1;
            (n, area) = around(steps);
        }
        if steps >= 2 {
            let zero = Hash::default();
            if area.lat.0 < min_lat {
                for i in [2, 7, 8] {
                    n[i] = zero;
                }
            }
            if area.lat.1 > max_lat {
                for i in [1, 5, 6] {
                    n[i] = zero;
                }
            }
            if area.lon.0 < min_lon {
                for i in [4, 8, 6] {
                    n[i] = zero;
                }
            }
            if area.lon.1 > max_lon {
                for i in [3, 7, 5] {
                    n[i] = zero;
                }
            }
        }
        n
    }
}

/// One search result.
#[derive(Debug)]
struct Point {
    member: Bytes,
    lon: f64,
    lat: f64,
    dist: f64,
    score: f64,
}

/// The members inside `shape`, cell by cell in Redis's order, stopping at `limit` (0: none).
fn points_in(z: &ZSetValue, shape: &Shape, limit: usize) -> Vec<Point> {
    let cells = shape.cells();
    let mut out = Vec::new();
    // The last cell searched, compared as Redis's `membersOfAllNeighbors` does: by index, with
    // index 0 (the center) meaning none yet, so a neighbour equal to the center is searched.
    let mut last_processed = 0usize;
    for (i, &cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        if last_processed != 0 && cells.get(last_processed) == Some(&cell) {
            continue;
        }
        if limit > 0 && out.len() >= limit {
            break;
        }
        let min = cell.align52() as f64;
        let max = Hash {
            bits: cell.bits + 1,
            step: cell.step,
        }
        .align52() as f64;
        // min <= score < max, in score order.
        let start = z.count_while(|s, _| s < min);
        let end = z.count_while(|s, _| s < max);
        for (member, score) in z.range(start, end.saturating_sub(start), false) {
            if let Some((lon, lat)) = decode_score(score)
                && let Some(dist) = shape.contains(lon, lat)
            {
                out.push(Point {
                    member,
                    lon,
                    lat,
                    dist,
                    score,
                });
            }
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
        last_processed = i;
    }
    out
}

// ---- Argument parsing ----------------------------------------------------------------------

fn float_or(text: &[u8], msg: &str) -> Result<f64, Frame> {
    parse_score(text).ok_or_else(|| Frame::error(msg))
}

/// A longitude and latitude pair (`extractLongLatOrReply`).
fn lon_lat(args: &[&[u8]], at: usize) -> Result<(f64, f64), Frame> {
    let lon = float_or(arg(args, at), super::NOT_FLOAT)?;
    let lat = float_or(arg(args, at + 1), super::NOT_FLOAT)?;
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(Frame::error(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok((lon, lat))
}

/// Meters per unit (`extractUnitOrReply`).
fn unit(text: &[u8]) -> Result<f64, Frame> {
    if is(text, "m") {
        Ok(1.0)
    } else if is(text, "km") {
        Ok(1000.0)
    } else if is(text, "ft") {
        Ok(0.3048)
    } else if is(text, "mi") {
        Ok(1609.34)
    } else {
        Err(Frame::error(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// A radius and its unit (`extractDistanceOrReply`).
fn radius(args: &[&[u8]], at: usize) -> Result<(f64, f64), Frame> {
    let r = float_or(arg(args, at), "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(Frame::error("ERR radius cannot be negative"));
    }
    Ok((r, unit(arg(args, at + 1))?))
}

/// A box's width, height and unit (`extractBoxOrReply`).
fn box_size(args: &[&[u8]], at: usize) -> Result<(f64, f64, f64), Frame> {
    let w = float_or(arg(args, at), "ERR need numeric width")?;
    let h = float_or(arg(args, at + 1), "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err(Frame::error("ERR height or width cannot be negative"));
    }
    Ok((w, h, unit(arg(args, at + 2))?))
}

/// A member's position, or Redis's error when it is missing.
fn member_position(z: &ZSetValue, member: &[u8]) -> Result<(f64, f64), Frame> {
    z.score(member)
        .and_then(decode_score)
        .ok_or_else(|| Frame::error("ERR could not decode requested zset member"))
}

// ---- Replies -------------------------------------------------------------------------------

/// `fixedpoint_d2string(d, 4)`: `llrint(d × 10⁴)` printed with four decimals.
fn distance_text(d: f64) -> Bytes {
    if d == 0.0 {
        return Bytes::from_static(b"0.0000");
    }
    // Distances are finite and below the Earth's circumference in the largest unit's
    // inverse, so the scaled value fits an i64.
    let v = (d * 10_000.0).round_ties_even() as i64;
    let (sign, v) = if v < 0 {
        ("-", v.unsigned_abs())
    } else {
        ("", v.unsigned_abs())
    };
    Bytes::from(format!("{sign}{}.{:04}", v / 10_000, v % 10_000))
}

/// Redis's `addReplyHumanLongDouble`: `%.17Lf` with trailing zeroes (and a bare point)
/// removed, as a bulk string in RESP2; a double in RESP3.
fn coordinate(v: f64, resp3: bool) -> Frame {
    if resp3 {
        return Frame::Double(v);
    }
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_owned();
    }
    Frame::Bulk(Bytes::from(s))
}

// ---- Commands ------------------------------------------------------------------------------

/// GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD of the encoded scores.
pub(crate) fn geoadd(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let mut at = 2;
    let (mut nx, mut xx) = (false, false);
    while at < args.len() {
        let opt = arg(args, at);
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if !is(opt, "ch") {
            break;
        }
        at += 1;
    }
    if !(args.len() - at).is_multiple_of(3) || (nx && xx) {
        return Frame::error(SYNTAX);
    }
    let mut scores = Vec::with_capacity((args.len() - at) / 3);
    for triple in args.get(at..).unwrap_or_default().chunks(3) {
        let (lon, lat) = tri!(lon_lat(triple, 0));
        let bits = encode_wgs84(lon, lat, STEP_MAX).map_or(0, Hash::align52);
        scores.push(bits.to_string());
    }
    let mut zadd: Vec<&[u8]> = Vec::with_capacity(at + scores.len() * 2);
    zadd.push(b"zadd");
    zadd.extend(args.get(1..at).unwrap_or_default());
    for (triple, score) in args.get(at..).unwrap_or_default().chunks(3).zip(&scores) {
        zadd.push(score.as_bytes());
        zadd.push(arg(triple, 2));
    }
    super::zset::zadd(ctx, inner, &zadd)
}

/// GEOPOS key [member ...].
pub(crate) fn geopos(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let resp3 = ctx.resp3;
    let z = tri!(get_zset(ctx, arg(args, 1)));
    let members = args.get(2..).unwrap_or_default();
    Frame::Array(
        members
            .iter()
            .map(
                |m| match z.as_ref().and_then(|z| z.score(m)).and_then(decode_score) {
                    Some((lon, lat)) => {
                        Frame::Array(vec![coordinate(lon, resp3), coordinate(lat, resp3)])
                    }
                    None => Frame::NullArray,
                },
            )
            .collect(),
    )
}

/// GEOHASH key [member ...]: the standard 11-character geohash of each member's position.
pub(crate) fn geohash(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let z = tri!(get_zset(ctx, arg(args, 1)));
    let members = args.get(2..).unwrap_or_default();
    Frame::Array(
        members
            .iter()
            .map(|m| {
                let Some((lon, lat)) = z.as_ref().and_then(|z| z.score(m)).and_then(decode_score)
                else {
                    return Frame::Null;
                };
                // Re-encoded over the standard latitude range [-90, 90].
                let bits = encode((-180.0, 180.0), (-90.0, 90.0), lon, lat, STEP_MAX)
                    .map_or(0, |h| h.bits);
                let text: Vec<u8> = (0..11)
                    .map(|i| {
                        let idx = if i == 10 {
                            0
                        } else {
                            (bits >> (52 - (i + 1) * 5)) & 0x1F
                        };
                        GEO_ALPHABET.get(idx as usize).copied().unwrap_or(b'0')
                    })
                    .collect();
                Frame::Bulk(Bytes::from(text))
            })
            .collect(),
    )
}

/// GEODIST key member1 member2 [M|KM|FT|MI].
pub(crate) fn geodist(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let to_meter = match args.len() {
        4 => 1.0,
        5 => tri!(unit(arg(args, 4))),
        _ => return Frame::error(SYNTAX),
    };
    let Some(z) = tri!(get_zset(ctx, arg(args, 1))) else {
        return Frame::Null;
    };
    let a = z.score(arg(args, 2)).and_then(decode_score);
    let b = z.score(arg(args, 3)).and_then(decode_score);
    match (a, b) {
        (Some((lon1, lat1)), Some((lon2, lat2))) => {
            Frame::Bulk(distance_text(distance(lon1, lat1, lon2, lat2) / to_meter))
        }
        _ => Frame::Null,
    }
}

/// Which search command runs (`georadiusGeneric`'s flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GEORADIUS (`ro`: GEORADIUS_RO).
    Radius { ro: bool },
    /// GEORADIUSBYMEMBER (`ro`: GEORADIUSBYMEMBER_RO).
    ByMember { ro: bool },
    /// GEOSEARCH (`store`: GEOSEARCHSTORE).
    Geosearch { store: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    None,
    Asc,
    Desc,
}

pub(crate) fn georadius(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    search(ctx, inner, args, Kind::Radius { ro: false })
}

pub(crate) fn georadius_ro(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    search(ctx, inner, args, Kind::Radius { ro: true })
}

pub(crate) fn georadiusbymember(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    search(ctx, inner, args, Kind::ByMember { ro: false })
}

pub(crate) fn georadiusbymember_ro(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    search(ctx, inner, args, Kind::ByMember { ro: true })
}

pub(crate) fn geosearch(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    search(ctx, inner, args, Kind::Geosearch { store: false })
}

pub(crate) fn geosearchstore(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    search(ctx, inner, args, Kind::Geosearch { store: true })
}

/// `georadiusGeneric`: the argument checks in Redis's order, then the search and its reply or
/// stored result.
fn search(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]], kind: Kind) -> Frame {
    let resp3 = ctx.resp3;
    let src = if kind == (Kind::Geosearch { store: true }) {
        arg(args, 2)
    } else {
        arg(args, 1)
    };
    // The source first (a wrong type is answered before anything else), borrowed until the
    // points are found; read as Redis's `lookupKeyRead` reads it, by the storing forms too.
    ctx.count_read(src);
    let source: Option<&ZSetValue> = tri!(get_zset(ctx, src)).map(|z| &*z);
    let mut center: Option<(f64, f64)> = None;
    let mut shape_kind: Option<(ShapeKind, f64)> = None;
    let mut store: Option<&[u8]> = None;
    let mut storedist = false;
    let base = match kind {
        Kind::Radius { .. } => {
            center = Some(tri!(lon_lat(args, 2)));
            let (r, conv) = tri!(radius(args, 4));
            shape_kind = Some((ShapeKind::Circle { radius: r }, conv));
            6
        }
        Kind::ByMember { .. } => {
            if let Some(z) = source {
                center = Some(tri!(member_position(z, arg(args, 2))));
                let (r, conv) = tri!(radius(args, 3));
                shape_kind = Some((ShapeKind::Circle { radius: r }, conv));
            }
            5
        }
        Kind::Geosearch { store: true } => {
            store = Some(arg(args, 1));
            3
        }
        Kind::Geosearch { store: false } => 2,
    };
    let geosearch = matches!(kind, Kind::Geosearch { .. });
    let nostore = matches!(
        kind,
        Kind::Radius { ro: true } | Kind::ByMember { ro: true }
    );
    let (mut withdist, mut withhash, mut withcoord, mut any) = (false, false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut order = Order::None;
    let mut count: i64 = 0;
    let rest = args.get(base..).unwrap_or_default();
    let mut i = 0;
    while i < rest.len() {
        let a = arg(rest, i);
        let left = rest.len() - i - 1;
        if is(a, "withdist") {
            withdist = true;
        } else if is(a, "withhash") {
            withhash = true;
        } else if is(a, "withcoord") {
            withcoord = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            order = Order::Asc;
        } else if is(a, "desc") {
            order = Order::Desc;
        } else if is(a, "count") && left >= 1 {
            count = tri!(parse_i64(arg(rest, i + 1)).ok_or_else(|| Frame::error(NOT_INTEGER)));
            if count <= 0 {
                return Frame::error("ERR COUNT must be > 0");
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist")) && left >= 1 && !nostore && !geosearch {
            store = Some(arg(rest, i + 1));
            storedist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && kind == (Kind::Geosearch { store: true }) {
            storedist = true;
        } else if is(a, "frommember") && left >= 1 && geosearch && !fromloc {
            if let Some(z) = source {
                center = Some(tri!(member_position(z, arg(rest, i + 1))));
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && left >= 2 && geosearch && !frommember {
            center = Some(tri!(lon_lat(rest, i + 1)));
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && left >= 2 && geosearch && !bybox {
            let (r, conv) = tri!(radius(rest, i + 1));
            shape_kind = Some((ShapeKind::Circle { radius: r }, conv));
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && left >= 3 && geosearch && !byradius {
            let (w, h, conv) = tri!(box_size(rest, i + 1));
            shape_kind = Some((
                ShapeKind::Box {
                    width: w,
                    height: h,
                },
                conv,
            ));
            bybox = true;
            i += 3;
        } else {
            return Frame::error(SYNTAX);
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        return Frame::error(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if kind == (Kind::Geosearch { store: true }) {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    if geosearch && !(frommember || fromloc) {
        return Frame::error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            String::from_utf8_lossy(arg(args, 0))
        ));
    }
    if geosearch && !(byradius || bybox) {
        return Frame::error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            String::from_utf8_lossy(arg(args, 0))
        ));
    }
    if any && count == 0 {
        return Frame::error("ERR the ANY argument requires COUNT argument");
    }
    let (Some(z), Some((lon, lat)), Some((kind_of_shape, conversion))) =
        (source, center, shape_kind)
    else {
        // No source key.
        return match store {
            Some(dst) => store_result(ctx, inner, dst, ZSetValue::default(), ""),
            None => Frame::Array(Vec::new()),
        };
    };
    if count != 0 && order == Order::None && !any {
        order = Order::Asc;
    }
    let shape = Shape {
        lon,
        lat,
        conversion,
        kind: kind_of_shape,
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut found = points_in(z, &shape, if any { count } else { 0 });
    match order {
        Order::Asc => found.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Order::Desc => found.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
        Order::None => {}
    }
    let returned = if count == 0 {
        found.len()
    } else {
        found.len().min(count)
    };
    found.truncate(returned);
    if let Some(dst) = store {
        let mut result = ZSetValue::default();
        for p in found {
            let score = if storedist {
                p.dist / conversion
            } else {
                p.score
            };
            result.insert(&p.member, score);
        }
        let event = if geosearch {
            "geosearchstore"
        } else {
            "georadiusstore"
        };
        return store_result(ctx, inner, dst, result, event);
    }
    let extras = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
    Frame::Array(
        found
            .into_iter()
            .map(|p| {
                if extras == 0 {
                    return Frame::Bulk(p.member);
                }
                let mut item = Vec::with_capacity(extras + 1);
                item.push(Frame::Bulk(p.member));
                if withdist {
                    item.push(Frame::Bulk(distance_text(p.dist / conversion)));
                }
                if withhash {
                    item.push(Frame::Integer(p.score as i64));
                }
                if withcoord {
                    item.push(Frame::Array(vec![
                        coordinate(p.lon, resp3),
                        coordinate(p.lat, resp3),
                    ]));
                }
                Frame::Array(item)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaving_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x03FF_FFFF, 0x0155_5555),
            (12345, 67890),
        ] {
            let v = interleave64(x, y);
            let back = deinterleave64(v);
            assert_eq!((back as u32, (back >> 32) as u32), (x, y));
        }
    }

    #[test]
    fn scores_and_distances_match_redis() {
        // `GEOADD Sicily 13.361389 38.115556 "Palermo" 15.087269 37.502669 "Catania"` stores
        // these scores in Redis 7.0, whose GEODIST answers 166274.1516 m and GEOHASH
        // "sqc8b49rny0" and "sqdtr74hyu0".
        let palermo = encode_wgs84(13.361_389, 38.115_556, STEP_MAX)
            .unwrap()
            .align52();
        let catania = encode_wgs84(15.087_269, 37.502_669, STEP_MAX)
            .unwrap()
            .align52();
        assert_eq!(palermo, 3_479_099_956_230_698);
        assert_eq!(catania, 3_479_447_370_796_909);
        let (lon1, lat1) = decode_score(palermo as f64).unwrap();
        let (lon2, lat2) = decode_score(catania as f64).unwrap();
        assert_eq!(
            distance_text(distance(lon1, lat1, lon2, lat2)),
            Bytes::from_static(b"166274.1516")
        );
        assert_eq!(
            coordinate(lon1, false),
            Frame::Bulk(Bytes::from_static(b"13.36138933897018433"))
        );
        assert_eq!(
            coordinate(lat1, false),
            Frame::Bulk(Bytes::from_static(b"38.11555639549629859"))
        );
    }

    #[test]
    fn distance_text_rounds_half_to_even_at_four_places() {
        assert_eq!(distance_text(0.0), Bytes::from_static(b"0.0000"));
        assert_eq!(distance_text(0.000_05), Bytes::from_static(b"0.0000"));
        assert_eq!(distance_text(1.5), Bytes::from_static(b"1.5000"));
        assert_eq!(distance_text(190.442_3), Bytes::from_static(b"190.4423"));
    }
}
