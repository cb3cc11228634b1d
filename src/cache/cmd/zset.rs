//! Sorted set commands, as Redis 7.0's `t_zset.c`: adding and scoring, ranks, the ZRANGE
//! family (by rank, score or lex, forward or reverse, with LIMIT and WITHSCORES, or stored),
//! range removal, pops (and the attempts behind BZPOPMIN, BZPOPMAX and BZMPOP, which the RESP
//! server retries like the list pops), random members, ZSCAN, and the union, intersection and
//! difference of sorted sets and sets (a set's members score 1).
//!
//! Scores reply as `Frame::Double`: a bulk string of `%.17g` text in RESP2, a double in RESP3;
//! WITHSCORES pairs are flat in RESP2 and two-element arrays in RESP3, as Redis 7.0 answers.

use bytes::Bytes;
use hashbrown::HashMap;

use super::{NOT_INTEGER, SYNTAX, WRONGTYPE, arg, int, int_arg, is, name, scan_options, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::{Frame, format_double, parse_i64};
use crate::cache::value::Value;
use crate::cache::zset::ZSetValue;
use crate::cache::{
    EventKind, Inner, RANDOM_REPLY_BYTES_MAX, ZADD_PAIRS_MAX, ZSET_NUMKEYS_MAX, notify,
};

/// Redis's reply to a score that is not a float.
const NOT_FLOAT: &str = "ERR value is not a valid float";
/// Redis's reply when an increment would make a score NaN.
const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";
/// Redis's reply to a bad score range.
const BAD_SCORE_RANGE: &str = "ERR min or max is not a float";
/// Redis's reply to a bad lex range.
const BAD_LEX_RANGE: &str = "ERR min or max not valid string range item";

pub(crate) fn get_zset<'c>(
    ctx: &'c mut Ctx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut ZSetValue>, Frame> {
    match ctx.entry(key) {
        None => Ok(None),
        Some(e) => match e.into_boxed() {
            Some(Value::ZSet(z)) => Ok(Some(z)),
            _ => Err(Frame::error(WRONGTYPE)),
        },
    }
}

/// Settles `key` after a change and records it with Redis's sorted set notification `event`.
fn done(ctx: &mut Ctx<'_>, key: &[u8], event: &'static str) {
    super::changed(ctx, key, notify::ZSET, event);
}

// ---- Parsing ------------------------------------------------------------------------------

/// Whether `c` is a C `isspace` character.
pub(crate) fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtod` over the whole of `text` (no leading space): the value, and whether it overflowed
/// or underflowed to zero (`ERANGE`). Decimal and `inf`/`infinity`; NaN and hexadecimal are
/// refused.
pub(crate) fn strtod_whole(text: &[u8]) -> Option<(f64, bool)> {
    let s = std::str::from_utf8(text).ok()?;
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        let v = if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
        return Some((v, false));
    }
    if let Some(hex) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        let v = parse_hex(hex)?;
        let v = if negative { -v } else { v };
        return Some((v, v.is_infinite()));
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (unsigned.get(..i)?, Some(unsigned.get(i + 1..)?)),
        None => (unsigned, None),
    };
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    let dots = mantissa.bytes().filter(|&c| c == b'.').count();
    if digits == 0 || dots > 1 || digits + dots != mantissa.len() {
        return None;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if e.is_empty() || !e.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let v: f64 = s.parse().ok()?;
    let nonzero = mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
    let range_error = v.is_infinite() || (v == 0.0 && nonzero);
    Some((v, range_error))
}

/// The digits after `0x` of a C hexadecimal float (`1.8p1` is 3): hex digits with an optional
/// point, then an optional binary exponent `p±n`.
fn parse_hex(body: &str) -> Option<f64> {
    let (mantissa, exponent) = match body.find(['p', 'P']) {
        Some(i) => (body.get(..i)?, Some(body.get(i + 1..)?)),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars().chain(frac.chars()) {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut e = -4i64 * i64::try_from(frac.len()).ok()?;
    if let Some(x) = exponent {
        let digits = x.strip_prefix(['+', '-']).unwrap_or(x);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n = digits.parse::<i64>().unwrap_or(i64::MAX / 2);
        e = e.saturating_add(if x.starts_with('-') { -n } else { n });
    }
    // Two steps, so a value whose scale alone would underflow or overflow still lands right.
    let e = i32::try_from(e.clamp(-4000, 4000)).ok()?;
    Some(v * 2f64.powi(e / 2) * 2f64.powi(e - e / 2))
}

/// A score argument as Redis's `getDoubleFromObject` reads it: the whole text, no leading
/// space, not empty, no overflow or underflow to zero, not NaN.
pub(crate) fn parse_score(text: &[u8]) -> Option<f64> {
    if text.first().is_none_or(|&c| is_c_space(c)) {
        return None;
    }
    match strtod_whole(text)? {
        (v, false) => Some(v),
        (_, true) => None,
    }
}

/// A range bound's number as `zslParseRange` reads it with plain `strtod`: leading spaces
/// allowed, overflow gives ±inf, an empty text is 0, and the C string ends at its first NUL
/// byte (`1\0x` is 1, `\0x` is 0).
fn parse_loose(text: &[u8]) -> Option<f64> {
    let text = text.split(|&c| c == 0).next().unwrap_or_default();
    if text.is_empty() {
        return Some(0.0);
    }
    let start = text.iter().position(|&c| !is_c_space(c))?;
    strtod_whole(text.get(start..)?).map(|(v, _)| v)
}

/// A score range (`zrangespec`).
#[derive(Debug, Clone, Copy)]
struct ScoreRange {
    min: f64,
    minex: bool,
    max: f64,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<Self, Frame> {
        let bound = |b: &[u8]| -> Option<(f64, bool)> {
            match b.split_first() {
                Some((b'(', rest)) => parse_loose(rest).map(|v| (v, true)),
                _ => parse_loose(b).map(|v| (v, false)),
            }
        };
        match (bound(min), bound(max)) {
            (Some((min, minex)), Some((max, maxex))) => Ok(Self {
                min,
                minex,
                max,
                maxex,
            }),
            _ => Err(Frame::error(BAD_SCORE_RANGE)),
        }
    }

    /// The ascending ranks `[first, end)` of the elements in range.
    fn ranks(&self, z: &ZSetValue) -> (usize, usize) {
        let first = z.count_while(|s, _| {
            if self.minex {
                s <= self.min
            } else {
                s < self.min
            }
        });
        let end = z.count_while(|s, _| {
            if self.maxex {
                s < self.max
            } else {
                s <= self.max
            }
        });
        (first, end.max(first))
    }
}

/// One end of a lex range (`zslParseLexRangeItem`).
#[derive(Debug, Clone, Copy)]
enum Lex<'a> {
    /// `-`
    Min,
    /// `+`
    Max,
    /// `[x`
    Incl(&'a [u8]),
    /// `(x`
    Excl(&'a [u8]),
}

impl<'a> Lex<'a> {
    fn parse(b: &'a [u8]) -> Option<Self> {
        match b.split_first()? {
            (b'+', []) => Some(Self::Max),
            (b'-', []) => Some(Self::Min),
            (b'[', rest) => Some(Self::Incl(rest)),
            (b'(', rest) => Some(Self::Excl(rest)),
            _ => None,
        }
    }

    /// Whether `m` is below this bound taken as a minimum.
    fn below_min(self, m: &[u8]) -> bool {
        match self {
            Self::Min => false,
            Self::Max => true,
            Self::Incl(x) => m < x,
            Self::Excl(x) => m <= x,
        }
    }

    /// Whether `m` is within this bound taken as a maximum.
    fn within_max(self, m: &[u8]) -> bool {
        match self {
            Self::Min => false,
            Self::Max => true,
            Self::Incl(x) => m <= x,
            Self::Excl(x) => m < x,
        }
    }
}

/// A lex range (`zlexrangespec`).
#[derive(Debug, Clone, Copy)]
struct LexRange<'a> {
    min: Lex<'a>,
    max: Lex<'a>,
}

impl<'a> LexRange<'a> {
    fn parse(min: &'a [u8], max: &'a [u8]) -> Result<Self, Frame> {
        match (Lex::parse(min), Lex::parse(max)) {
            (Some(min), Some(max)) => Ok(Self { min, max }),
            _ => Err(Frame::error(BAD_LEX_RANGE)),
        }
    }

    /// The ascending ranks `[first, end)` of the elements in range (members compared as if
    /// every score were equal, as Redis assumes for lex ranges).
    fn ranks(&self, z: &ZSetValue) -> (usize, usize) {
        let first = z.count_while(|_, m| self.min.below_min(m));
        let end = z.count_while(|_, m| self.max.within_max(m));
        (first, end.max(first))
    }
}

/// The range a ZRANGE-family, ZREMRANGEBY* or ZCOUNT/ZLEXCOUNT command names.
#[derive(Debug, Clone, Copy)]
enum Bounds<'a> {
    /// Redis's `start`/`stop` indexes (negative from the end).
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

impl<'a> Bounds<'a> {
    /// Parses `lo`/`hi` as `by` reads them, with Redis's error for each kind.
    fn parse(by: By, lo: &'a [u8], hi: &'a [u8]) -> Result<Self, Frame> {
        Ok(match by {
            By::Score => Self::Score(ScoreRange::parse(lo, hi)?),
            By::Lex => Self::Lex(LexRange::parse(lo, hi)?),
            By::Auto | By::Rank => {
                let int = |b: &[u8]| parse_i64(b).ok_or_else(|| Frame::error(NOT_INTEGER));
                Self::Rank(int(lo)?, int(hi)?)
            }
        })
    }

    /// The ascending ranks `[first, end)` of the elements in range of `z`.
    fn ranks(&self, z: &ZSetValue) -> (usize, usize) {
        match self {
            Self::Rank(start, stop) => {
                super::range(*start, *stop, z.len()).map_or((0, 0), |(a, b)| (a, b + 1))
            }
            Self::Score(r) => r.ranks(z),
            Self::Lex(r) => r.ranks(z),
        }
    }
}

// ---- Replies ------------------------------------------------------------------------------

/// Members, with their scores when `withscores` (flat in RESP2, pairs in RESP3).
fn elements_reply(resp3: bool, items: Vec<(Bytes, f64)>, withscores: bool) -> Frame {
    if !withscores {
        return Frame::Array(items.into_iter().map(|(m, _)| Frame::Bulk(m)).collect());
    }
    if resp3 {
        return Frame::Array(
            items
                .into_iter()
                .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]))
                .collect(),
        );
    }
    let mut out = Vec::with_capacity(items.len().saturating_mul(2));
    for (m, s) in items {
        out.push(Frame::Bulk(m));
        out.push(Frame::Double(s));
    }
    Frame::Array(out)
}

// ---- ZADD, ZINCRBY, ZREM ------------------------------------------------------------------

/// ZADD and ZINCRBY (`zaddGenericCommand`).
pub(crate) fn zadd(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let zincrby = is(arg(args, 0), "zincrby");
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) =
        (false, false, false, zincrby, false, false);
    let mut at = 2;
    // ZINCRBY's increment is read for flags too, as Redis's `zaddGenericCommand` does for both:
    // `ZINCRBY key NX member` leaves one argument, a syntax error.
    while at < args.len() {
        let opt = arg(args, at);
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "ch") {
            ch = true;
        } else if is(opt, "incr") {
            incr = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            break;
        }
        at += 1;
    }
    let rest = args.get(at..).unwrap_or_default();
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Frame::error(SYNTAX);
    }
    let pairs = rest.len() / 2;
    if pairs > ZADD_PAIRS_MAX {
        return Frame::error(format!(
            "ERR too many score-member pairs ({pairs}, at most {ZADD_PAIRS_MAX})"
        ));
    }
    if nx && xx {
        return Frame::error("ERR XX and NX options at the same time are not compatible");
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Frame::error("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && pairs > 1 {
        return Frame::error("ERR INCR option supports a single increment-element pair");
    }
    let mut scores = Vec::with_capacity(pairs);
    for pair in rest.chunks_exact(2) {
        match pair.first().and_then(|s| parse_score(s)) {
            Some(s) => scores.push(s),
            None => return Frame::error(NOT_FLOAT),
        }
    }
    let lp = inner.zset_listpack();
    if tri!(get_zset(ctx, key)).is_none() {
        if xx {
            return if incr { Frame::Null } else { Frame::Integer(0) };
        }
        ctx.put(key, Value::ZSet(Box::default()), 0);
    }
    let Some(z) = tri!(get_zset(ctx, key)) else {
        return Frame::Integer(0);
    };
    let (mut added, mut updated, mut processed) = (0usize, 0usize, 0usize);
    let mut last = 0.0;
    let mut nan = false;
    for (pair, &score) in rest.chunks_exact(2).zip(&scores) {
        let member = pair.get(1).copied().unwrap_or_default();
        match z.score(member) {
            Some(cur) => {
                if nx {
                    continue;
                }
                let new = if incr { cur + score } else { score };
                if new.is_nan() {
                    nan = true;
                    break;
                }
                if (lt && new >= cur) || (gt && new <= cur) {
                    continue;
                }
                processed += 1;
                last = new;
                // As Redis: only a changed score is an update (`-0` equals `0`).
                if new != cur {
                    z.add(member, new, lp);
                    updated += 1;
                }
            }
            None => {
                if xx {
                    continue;
                }
                z.add(member, score, lp);
                added += 1;
                processed += 1;
                last = score;
            }
        }
    }
    if added + updated > 0 {
        done(ctx, key, if incr { "zincr" } else { "zadd" });
    } else {
        // A key created for nothing (XX never creates; NX/GT/LT may add nothing) is removed.
        ctx.settle(key);
    }
    if nan {
        return Frame::error(NAN_SCORE);
    }
    if incr {
        if processed > 0 {
            Frame::Double(last)
        } else {
            Frame::Null
        }
    } else {
        int(if ch { added + updated } else { added })
    }
}

pub(crate) fn zrem(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let Some(z) = tri!(get_zset(ctx, key)) else {
        return Frame::Integer(0);
    };
    let mut n = 0;
    for m in args.iter().skip(2) {
        if z.remove(m).is_some() {
            n += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    if n > 0 {
        done(ctx, key, "zrem");
    }
    int(n)
}

// ---- Reads --------------------------------------------------------------------------------

pub(crate) fn zcard(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    int(tri!(get_zset(ctx, arg(args, 1))).map_or(0, |z| z.len()))
}

pub(crate) fn zscore(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    tri!(get_zset(ctx, arg(args, 1)))
        .and_then(|z| z.score(arg(args, 2)))
        .map_or(Frame::Null, Frame::Double)
}

pub(crate) fn zmscore(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let z = tri!(get_zset(ctx, arg(args, 1)));
    Frame::Array(
        args.iter()
            .skip(2)
            .map(|m| {
                z.as_ref()
                    .and_then(|z| z.score(m))
                    .map_or(Frame::Null, Frame::Double)
            })
            .collect(),
    )
}

/// ZRANK and ZREVRANK.
pub(crate) fn zrank(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let rev = is(arg(args, 0), "zrevrank");
    let Some(z) = tri!(get_zset(ctx, arg(args, 1))) else {
        return Frame::Null;
    };
    match z.rank(arg(args, 2)) {
        Some(r) if rev => int(z.len() - 1 - r),
        Some(r) => int(r),
        None => Frame::Null,
    }
}

/// ZCOUNT and ZLEXCOUNT: two O(log n) counts, never a walk.
pub(crate) fn zcount(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let by = if is(arg(args, 0), "zlexcount") {
        By::Lex
    } else {
        By::Score
    };
    let bounds = tri!(Bounds::parse(by, arg(args, 2), arg(args, 3)));
    let Some(z) = tri!(get_zset(ctx, arg(args, 1))) else {
        return Frame::Integer(0);
    };
    let (first, end) = bounds.ranks(z);
    int(end - first)
}

// ---- The ZRANGE family --------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX
/// (`zrangeGenericCommand`).
pub(crate) fn zrange(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let cmd = name(args);
    let (start_at, store, mut by, mut rev) = match cmd.as_str() {
        "zrangestore" => (2, true, By::Auto, None),
        "zrevrange" => (1, false, By::Rank, Some(true)),
        "zrangebyscore" => (1, false, By::Score, Some(false)),
        "zrevrangebyscore" => (1, false, By::Score, Some(true)),
        "zrangebylex" => (1, false, By::Lex, Some(false)),
        "zrevrangebylex" => (1, false, By::Lex, Some(true)),
        _ => (1, false, By::Auto, None),
    };
    let key = arg(args, start_at);
    let (mut withscores, mut offset, mut limit) = (false, 0i64, -1i64);
    let mut j = start_at + 3;
    while j < args.len() {
        let a = arg(args, j);
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = tri!(int_arg(args, j + 1));
            limit = tri!(int_arg(args, j + 2));
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if by == By::Auto && is(a, "bylex") {
            by = By::Lex;
        } else if by == By::Auto && is(a, "byscore") {
            by = By::Score;
        } else {
            return Frame::error(SYNTAX);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    if limit != -1 && by == By::Rank {
        return Frame::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && by == By::Lex {
        return Frame::error(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        );
    }
    let (mut lo, mut hi) = (arg(args, start_at + 1), arg(args, start_at + 2));
    if rev && by != By::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    let bounds = tri!(Bounds::parse(by, lo, hi));
    // ZRANGESTORE reads its source as ZRANGE does (Redis's `lookupKeyRead`).
    let items = tri!(ctx.reading(|ctx| {
        Ok::<_, Frame>(match get_zset(ctx, key)? {
            None => Vec::new(),
            Some(z) => {
                let (first, end) = bounds.ranks(z);
                match bounds {
                    Bounds::Rank(..) if end > first => z.range(first, end - first, rev),
                    Bounds::Rank(..) => Vec::new(),
                    _ => window(z, first, end, rev, offset, limit),
                }
            }
        })
    }));
    if store {
        let dst = arg(args, 1);
        return store_result(ctx, inner, dst, items.into_iter().collect(), "zrangestore");
    }
    elements_reply(ctx.resp3, items, withscores)
}

/// The elements of ascending ranks `[first, end)`, walked upward (or downward with `rev`),
/// skipping `offset` and keeping at most `limit` (negative: all), as Redis's by-score and
/// by-lex loops do (a negative offset skips everything).
fn window(
    z: &ZSetValue,
    first: usize,
    end: usize,
    rev: bool,
    offset: i64,
    limit: i64,
) -> Vec<(Bytes, f64)> {
    let total = end.saturating_sub(first);
    let Ok(skip) = usize::try_from(offset) else {
        return Vec::new();
    };
    if skip >= total {
        return Vec::new();
    }
    let left = total - skip;
    let n = usize::try_from(limit).map_or(left, |l| l.min(left));
    if rev {
        z.range(z.len() - end + skip, n, true)
    } else {
        z.range(first + skip, n, false)
    }
}

/// Stores `result` under `dst` (replacing whatever was there) and publishes `event`, or
/// deletes `dst` when the result is empty (`del`), as Redis's store commands do; replies the
/// result's size.
pub(crate) fn store_result(
    ctx: &mut Ctx<'_>,
    inner: &Inner,
    dst: &[u8],
    mut result: ZSetValue,
    event: &'static str,
) -> Frame {
    let n = result.len();
    let existed = ctx.delete(dst);
    if n > 0 {
        result.fit_encoding(inner.zset_listpack());
        ctx.put_replacing(dst, Value::ZSet(Box::new(result)), existed);
        ctx.touched(dst, EventKind::Set);
        ctx.notify(notify::ZSET, event, dst);
    } else if existed {
        ctx.touched(dst, EventKind::Del);
        ctx.notify(notify::GENERIC, "del", dst);
    }
    int(n)
}

// ---- Range removal ------------------------------------------------------------------------

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
pub(crate) fn zremrange(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let cmd = name(args);
    let key = arg(args, 1);
    let (lo, hi) = (arg(args, 2), arg(args, 3));
    let (by, event) = match cmd.as_str() {
        "zremrangebyscore" => (By::Score, "zremrangebyscore"),
        "zremrangebylex" => (By::Lex, "zremrangebylex"),
        _ => (By::Rank, "zremrangebyrank"),
    };
    let bounds = tri!(Bounds::parse(by, lo, hi));
    let Some(z) = tri!(get_zset(ctx, key)) else {
        return Frame::Integer(0);
    };
    let (first, end) = bounds.ranks(z);
    if end <= first {
        return Frame::Integer(0);
    }
    let n = z.remove_ranks(first, end - 1).len();
    done(ctx, key, event);
    int(n)
}

// ---- Pops ---------------------------------------------------------------------------------

/// The key a pop took from and the (member, score) pairs it took, in pop order.
type Popped = (Bytes, Vec<(Bytes, f64)>);

/// Pops up to `count` elements from the first non-empty sorted set among `keys`
/// (`genericZpopCommand`); `None` when every key is missing. A wrong-typed key met first is
/// an error.
fn pop_first(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    max: bool,
    count: usize,
) -> Result<Option<Popped>, Frame> {
    for key in keys {
        let Some(z) = get_zset(ctx, key)? else {
            continue;
        };
        let mut items = Vec::with_capacity(count.min(z.len()));
        while items.len() < count {
            match z.pop(max) {
                Some(e) => items.push(e),
                None => break,
            }
        }
        if !items.is_empty() {
            done(ctx, key, if max { "zpopmax" } else { "zpopmin" });
        }
        return Ok(Some((Bytes::copy_from_slice(key), items)));
    }
    Ok(None)
}

/// ZPOPMIN and ZPOPMAX.
pub(crate) fn zpop(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let max = is(arg(args, 0), "zpopmax");
    if args.len() > 3 {
        return Frame::error(SYNTAX);
    }
    let count = match args.get(2) {
        Some(c) => Some(tri!(super::positive(c))),
        None => None,
    };
    if count == Some(0) {
        // Redis still checks the key's type first.
        tri!(get_zset(ctx, arg(args, 1)));
        return Frame::Array(Vec::new());
    }
    let popped = tri!(pop_first(ctx, &[arg(args, 1)], max, count.unwrap_or(1)));
    let items = popped.map(|(_, items)| items).unwrap_or_default();
    // RESP3 nests the pairs only when a count was given.
    elements_reply(ctx.resp3 && count.is_some(), items, true)
}

/// BZPOPMIN/BZPOPMAX attempt: `[key, member, score]` from the first non-empty set among
/// `args[1..len-1]`.
pub(crate) fn bzpop_try(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let max = is(arg(args, 0), "bzpopmax");
    let keys = args
        .get(1..args.len().saturating_sub(1))
        .unwrap_or_default();
    match tri!(pop_first(ctx, keys, max, 1)) {
        Some((key, items)) if !items.is_empty() => {
            let mut out = vec![Frame::Bulk(key)];
            for (m, s) in items {
                out.push(Frame::Bulk(m));
                out.push(Frame::Double(s));
            }
            Frame::Array(out)
        }
        _ => Frame::NullArray,
    }
}

/// Parses `numkeys`: Redis's error for a count below 1 (or not a number) with `low`, its syntax
/// error for more keys than the `available` arguments, and then our [`ZSET_NUMKEYS_MAX`] limit.
fn numkeys(text: &[u8], low: &str, available: usize) -> Result<usize, Frame> {
    match parse_i64(text) {
        Some(n) if n >= 1 => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > available {
                Err(Frame::error(SYNTAX))
            } else if n > ZSET_NUMKEYS_MAX {
                Err(Frame::error(format!(
                    "ERR numkeys is {n}, at most {ZSET_NUMKEYS_MAX} keys are allowed"
                )))
            } else {
                Ok(n)
            }
        }
        _ => Err(Frame::error(low.to_owned())),
    }
}

/// ZMPOP, and BZMPOP's attempt with `first` = 2 (`zmpopGenericCommand`).
fn zmpop_at(ctx: &mut Ctx<'_>, args: &[&[u8]], first: usize) -> Frame {
    // The keys and then MIN or MAX must follow.
    let n = tri!(numkeys(
        arg(args, first),
        "ERR numkeys should be greater than 0",
        args.len().saturating_sub(first + 2)
    ));
    let where_at = first.saturating_add(n).saturating_add(1);
    let Some(w) = args.get(where_at) else {
        return Frame::error(SYNTAX);
    };
    let max = if is(w, "min") {
        false
    } else if is(w, "max") {
        true
    } else {
        return Frame::error(SYNTAX);
    };
    let mut count = None;
    let mut j = where_at + 1;
    while j < args.len() {
        if count.is_none() && is(arg(args, j), "count") && j + 1 < args.len() {
            match parse_i64(arg(args, j + 1)) {
                Some(c) if c >= 1 => count = Some(usize::try_from(c).unwrap_or(usize::MAX)),
                _ => return Frame::error("ERR count should be greater than 0"),
            }
            j += 2;
        } else {
            return Frame::error(SYNTAX);
        }
    }
    let keys = args.get(first + 1..where_at).unwrap_or_default();
    match tri!(pop_first(ctx, keys, max, count.unwrap_or(1))) {
        Some((key, items)) if !items.is_empty() => Frame::Array(vec![
            Frame::Bulk(key),
            Frame::Array(
                items
                    .into_iter()
                    .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]))
                    .collect(),
            ),
        ]),
        _ => Frame::NullArray,
    }
}

pub(crate) fn zmpop(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    zmpop_at(ctx, args, 1)
}

pub(crate) fn bzmpop_try(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    zmpop_at(ctx, args, 2)
}

// ---- ZRANDMEMBER, ZSCAN -------------------------------------------------------------------

pub(crate) fn zrandmember(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let mut withscores = false;
    let count = if args.len() >= 3 {
        let c = tri!(int_arg(args, 2));
        if c == i64::MIN {
            return Frame::error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
        }
        if args.len() > 4 || (args.len() == 4 && !is(arg(args, 3), "withscores")) {
            return Frame::error(SYNTAX);
        }
        if args.len() == 4 {
            withscores = true;
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&c) {
                return Frame::error("ERR value is out of range");
            }
        }
        Some(c)
    } else {
        None
    };
    let Some(z) = tri!(get_zset(ctx, key)) else {
        return if count.is_some() {
            Frame::Array(Vec::new())
        } else {
            Frame::Null
        };
    };
    let len = z.len();
    if let Some(c) = count
        && c >= 0
        && usize::try_from(c).unwrap_or(usize::MAX) >= len
    {
        // The whole set, highest first: Redis's `zuiNext` walks sorted sets from the tail.
        let all = z.range(0, len, true);
        return elements_reply(ctx.resp3, all, withscores);
    }
    // The draws need the context, so the set is looked up again after them (not counted twice
    // in the keyspace statistics).
    let picks = match count {
        None => vec![ctx.random_below(len)],
        Some(c) => tri!(super::hash::random_picks(ctx, len, Some(c), |_| 0)).unwrap_or_default(),
    };
    let counted = std::mem::replace(&mut ctx.count_lookups, false);
    let reply = picked(ctx, key, picks, withscores, count.is_none());
    ctx.count_lookups = counted;
    reply
}

/// ZRANDMEMBER's reply of the elements at ranks `picks` of the set under `key`.
fn picked(ctx: &mut Ctx<'_>, key: &[u8], picks: Vec<usize>, withscores: bool, one: bool) -> Frame {
    let resp3 = ctx.resp3;
    let Some(z) = tri!(get_zset(ctx, key)) else {
        return Frame::Null;
    };
    let framing = super::hash::RESP_ELEMENT_FRAMING_BYTES;
    let mut reply_bytes = 0usize;
    let mut items = Vec::with_capacity(picks.len());
    for i in picks {
        if let Some((m, s)) = z.at(i) {
            reply_bytes = reply_bytes
                .saturating_add(m.len() + framing)
                .saturating_add(if withscores { 24 + framing } else { 0 });
            if reply_bytes > RANDOM_REPLY_BYTES_MAX {
                return Frame::error(format!(
                    "ERR reply would exceed {RANDOM_REPLY_BYTES_MAX} bytes"
                ));
            }
            items.push((m, s));
        }
    }
    if one {
        return items
            .into_iter()
            .next()
            .map_or(Frame::Null, |(m, _)| Frame::Bulk(m));
    }
    elements_reply(resp3, items, withscores)
}

pub(crate) fn zscan(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (cursor, pattern, count, _) = tri!(scan_options(args, 2, false));
    let (next, page) = match tri!(get_zset(ctx, arg(args, 1))) {
        // As Redis: a listpack-encoded set is answered whole, in order, with cursor 0.
        Some(z) if z.encoding() == "listpack" => (0, z.to_vec()),
        Some(z) => {
            use std::hash::BuildHasher;
            let hasher = z.hasher();
            super::keys::page_by_hash(
                z.iter_unordered()
                    .map(|(m, s)| (hasher.hash_one(m), (m.clone(), s))),
                cursor,
                count,
            )
        }
        None => (0, Vec::new()),
    };
    let mut out = Vec::with_capacity(page.len() * 2);
    for (m, s) in page {
        if pattern
            .as_ref()
            .is_some_and(|p| !super::glob_match(p, &m, false))
        {
            continue;
        }
        out.push(Frame::Bulk(m));
        out.push(Frame::bulk(format_double(s).as_bytes()));
    }
    Frame::Array(vec![
        Frame::bulk(next.to_string().as_bytes()),
        Frame::Array(out),
    ])
}

// ---- Union, intersection, difference ------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// `zunionInterAggregate`.
fn aggregate(target: &mut f64, val: f64, how: Aggregate) {
    match how {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// One input: its members and scores (a set's members score 1), empty when the key is missing.
type Input = HashMap<Bytes, f64>;

fn read_input(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Input, Frame> {
    match ctx.entry(key) {
        None => Ok(Input::new()),
        Some(e) => match e.into_boxed() {
            Some(Value::ZSet(z)) => Ok(z.iter_unordered().map(|(m, s)| (m.clone(), s)).collect()),
            Some(Value::Set(s)) => Ok(s.iter().map(|m| (m.clone(), 1.0)).collect()),
            _ => Err(Frame::error(WRONGTYPE)),
        },
    }
}

/// ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD (`zunionInterDiffGenericCommand`).
pub(crate) fn zsetop(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let cmd = name(args);
    let store = cmd.ends_with("store");
    let card = cmd == "zintercard";
    let op = if cmd.starts_with("zunion") {
        SetOp::Union
    } else if cmd.starts_with("zinter") {
        SetOp::Inter
    } else {
        SetOp::Diff
    };
    let at = if store { 2 } else { 1 };
    let setnum = match parse_i64(arg(args, at)) {
        None => return Frame::error(NOT_INTEGER),
        Some(n) if n < 1 => {
            return Frame::error(format!(
                "ERR at least 1 input key is needed for '{cmd}' command"
            ));
        }
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    if setnum > args.len() - at - 1 {
        return Frame::error(SYNTAX);
    }
    if setnum > ZSET_NUMKEYS_MAX {
        return Frame::error(format!(
            "ERR numkeys is {setnum}, at most {ZSET_NUMKEYS_MAX} keys are allowed"
        ));
    }
    let keys = args.get(at + 1..at + 1 + setnum).unwrap_or_default();
    let mut inputs = Vec::with_capacity(setnum);
    // Read as Redis's `lookupKeyRead` reads them, by the STORE forms too.
    for k in keys {
        inputs.push((tri!(ctx.reading(|ctx| read_input(ctx, k))), 1.0f64));
    }
    let (mut how, mut withscores, mut limit) = (Aggregate::Sum, false, 0usize);
    let mut j = at + 1 + setnum;
    while j < args.len() {
        let a = arg(args, j);
        let remaining = args.len() - j;
        if op != SetOp::Diff && !card && remaining > setnum && is(a, "weights") {
            for (i, input) in inputs.iter_mut().enumerate() {
                match parse_score(arg(args, j + 1 + i)) {
                    Some(w) => input.1 = w,
                    None => return Frame::error("ERR weight value is not a float"),
                }
            }
            j += 1 + setnum;
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(a, "aggregate") {
            let w = arg(args, j + 1);
            how = if is(w, "sum") {
                Aggregate::Sum
            } else if is(w, "min") {
                Aggregate::Min
            } else if is(w, "max") {
                Aggregate::Max
            } else {
                return Frame::error(SYNTAX);
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(a, "limit") {
            match parse_i64(arg(args, j + 1)) {
                Some(n) if n >= 0 => limit = usize::try_from(n).unwrap_or(usize::MAX),
                _ => return Frame::error("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return Frame::error(SYNTAX);
        }
    }
    if op != SetOp::Diff {
        // Smallest first, as Redis orders its inputs (the order sums are taken in).
        inputs.sort_by_key(|(m, _)| m.len());
    }
    let mut result: Vec<(Bytes, f64)> = Vec::new();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            if let Some(((first, w0), rest)) = inputs.split_first() {
                for (m, s) in first {
                    let mut score = w0 * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    let mut everywhere = true;
                    for (other, w) in rest {
                        match other.get(m) {
                            Some(v) => aggregate(&mut score, v * w, how),
                            None => {
                                everywhere = false;
                                break;
                            }
                        }
                    }
                    if !everywhere {
                        continue;
                    }
                    if card {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.push((m.clone(), score));
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: HashMap<Bytes, f64> = HashMap::new();
            for (input, w) in &inputs {
                for (m, s) in input {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, how),
                        None => {
                            acc.insert(m.clone(), score);
                        }
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            if let Some(((first, _), rest)) = inputs.split_first() {
                result = first
                    .iter()
                    .filter(|(m, _)| !rest.iter().any(|(o, _)| o.contains_key(*m)))
                    .map(|(m, s)| (m.clone(), *s))
                    .collect();
            }
        }
    }
    if card {
        return int(cardinality);
    }
    let zset: ZSetValue = result.into_iter().collect();
    if store {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        return store_result(ctx, inner, arg(args, 1), zset, event);
    }
    elements_reply(ctx.resp3, zset.to_vec(), withscores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_like_get_double_from_object() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"1e3"), Some(1000.0));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"0"), Some(0.0));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"-0X1.8p1"), Some(-3.0));
        assert_eq!(parse_score(b"0x1p-2"), Some(0.25));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"abc",
            b"1e",
            b"1e400",
            b"1e-400",
            b"1..2",
            b"-",
            b"0x",
            b"0x1p",
            b"0xg",
            b"0x1p99999",
        ] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse_score(b"0e-400"),
            Some(0.0),
            "a zero is not an underflow"
        );
    }

    #[test]
    fn range_bounds_parse_like_strtod() {
        assert_eq!(parse_loose(b""), Some(0.0));
        assert_eq!(parse_loose(b"  2"), Some(2.0));
        assert_eq!(parse_loose(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_loose(b"2 "), None);
        assert_eq!(parse_loose(b"   "), None);
        assert_eq!(parse_loose(b"nan"), None);
        assert!(ScoreRange::parse(b"(1", b"+inf").is_ok());
        assert!(ScoreRange::parse(b"1", b"NaN").is_err());
        assert!(LexRange::parse(b"-", b"+").is_ok());
        assert!(LexRange::parse(b"+x", b"[a").is_err());
        assert!(LexRange::parse(b"", b"[a").is_err());
    }
}
