//! Hash commands.

use std::hash::BuildHasher;

use bytes::Bytes;

use super::{
    NAN_OR_INFINITY, NOT_FLOAT, SYNTAX, WRONGTYPE, arg, int, int_arg, is, long_double, name,
    scan_options, tri,
};
use crate::cache::keyspace::Ctx;
use crate::cache::longdouble::{LongDouble, Parsed};
use crate::cache::resp::frame::{Frame, parse_i64};
use crate::cache::value::{HashValue, Value};
use crate::cache::zset::Listpack;
use crate::cache::{Inner, RANDOM_PICKS_MAX, RANDOM_REPLY_BYTES_MAX, notify};

/// Reply bytes counted per element besides its own (`$<len>\r\n` and `\r\n`).
pub(crate) const RESP_ELEMENT_FRAMING_BYTES: usize = 16;

type Map = HashValue;

fn get_hash<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut Map>, Frame> {
    match ctx.entry(key) {
        None => Ok(None),
        Some(e) => match e.into_boxed() {
            Some(Value::Hash(h)) => Ok(Some(h)),
            _ => Err(Frame::error(WRONGTYPE)),
        },
    }
}

fn hash_or_new<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<&'c mut Map, Frame> {
    if get_hash(ctx, key)?.is_none() {
        ctx.put(key, Value::Hash(Box::default()), 0);
    }
    get_hash(ctx, key)?.ok_or_else(|| Frame::error(WRONGTYPE))
}

/// Settles `key` after a change and records it with Redis's hash notification `event`.
fn done(ctx: &mut Ctx<'_>, key: &[u8], event: &'static str) {
    super::changed(ctx, key, notify::HASH, event);
}

/// HSET and HMSET.
pub(crate) fn hset(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    if !args.len().is_multiple_of(2) {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            name(args)
        ));
    }
    let key = arg(args, 1);
    let pairs = args.get(2..).unwrap_or_default();
    let lp = inner.compact().hash;
    // One lookup when the hash exists (the common case).
    let added = if let Some(h) = tri!(get_hash(ctx, key)) {
        set_fields(h, pairs, lp)
    } else {
        set_fields(tri!(hash_or_new(ctx, key)), pairs, lp)
    };
    done(ctx, key, "hset");
    if is(arg(args, 0), "hmset") {
        Frame::ok()
    } else {
        int(added)
    }
}

/// Sets `pairs` (field, value, field, value …) in `h`; returns how many fields were new. An
/// existing field keeps its key; only the value is copied. Crossing the listpack thresholds
/// `lp` converts the hash as in Redis.
fn set_fields(h: &mut Map, pairs: &[&[u8]], lp: Listpack) -> usize {
    let mut added = 0;
    for pair in pairs.chunks(2) {
        if let [f, v] = pair
            && h.set_within(f, v, lp)
        {
            added += 1;
        }
    }
    added
}

pub(crate) fn hsetnx(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let h = tri!(hash_or_new(ctx, key));
    let added = !h.contains_key(arg(args, 2))
        && h.set_within(arg(args, 2), arg(args, 3), inner.compact().hash);
    if added {
        done(ctx, key, "hset");
    } else {
        ctx.settle(key);
    }
    Frame::Integer(i64::from(added))
}

pub(crate) fn hget(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    match tri!(get_hash(ctx, arg(args, 1))).and_then(|h| h.get(arg(args, 2))) {
        Some(v) => Frame::Bulk(v.clone()),
        None => Frame::Null,
    }
}

pub(crate) fn hmget(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let h = tri!(get_hash(ctx, arg(args, 1)));
    Frame::Array(
        args.iter()
            .skip(2)
            .map(|f| {
                h.as_ref()
                    .and_then(|h| h.get(&f[..]))
                    .map_or(Frame::Null, |v| Frame::Bulk(v.clone()))
            })
            .collect(),
    )
}

pub(crate) fn hdel(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let Some(h) = tri!(get_hash(ctx, key)) else {
        return Frame::Integer(0);
    };
    let n = args
        .iter()
        .skip(2)
        .filter(|f| h.remove(&f[..]).is_some())
        .count();
    if n > 0 {
        done(ctx, key, "hdel");
    }
    int(n)
}

pub(crate) fn hlen(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    int(tri!(get_hash(ctx, arg(args, 1))).map_or(0, |h| h.len()))
}

pub(crate) fn hstrlen(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    int(tri!(get_hash(ctx, arg(args, 1)))
        .and_then(|h| h.get(arg(args, 2)))
        .map_or(0, Bytes::len))
}

pub(crate) fn hexists(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    Frame::Integer(i64::from(
        tri!(get_hash(ctx, arg(args, 1))).is_some_and(|h| h.contains_key(arg(args, 2))),
    ))
}

/// HGETALL, HKEYS, HVALS.
pub(crate) fn hgetall(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let cmd = name(args);
    let Some(h) = tri!(get_hash(ctx, arg(args, 1))) else {
        return if cmd == "hgetall" {
            Frame::Map(Vec::new())
        } else {
            Frame::Array(Vec::new())
        };
    };
    match cmd.as_str() {
        "hkeys" => Frame::Array(h.keys().map(|k| Frame::Bulk(k.clone())).collect()),
        "hvals" => Frame::Array(h.values().map(|v| Frame::Bulk(v.clone())).collect()),
        _ => Frame::Map(
            h.iter()
                .map(|(k, v)| (Frame::Bulk(k.clone()), Frame::Bulk(v.clone())))
                .collect(),
        ),
    }
}

pub(crate) fn hincrby(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let lp = inner.compact().hash;
    let by = tri!(int_arg(args, 3));
    let h = tri!(hash_or_new(ctx, key));
    let cur = match h.get(arg(args, 2)) {
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => {
                ctx.settle(key);
                return Frame::error("ERR hash value is not an integer");
            }
        },
        None => 0,
    };
    let Some(next) = cur.checked_add(by) else {
        ctx.settle(key);
        return Frame::error("ERR increment or decrement would overflow");
    };
    h.set_within(arg(args, 2), next.to_string().as_bytes(), lp);
    done(ctx, key, "hincrby");
    Frame::Integer(next)
}

pub(crate) fn hincrbyfloat(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let lp = inner.compact().hash;
    let Parsed::Finite(by) = tri!(long_double(arg(args, 3))) else {
        return Frame::error("ERR value is NaN or Infinity");
    };
    let h = tri!(hash_or_new(ctx, key));
    let cur = match h.get(arg(args, 2)) {
        Some(v) => match LongDouble::parse(v) {
            Some(Parsed::Finite(n)) => Some(n),
            Some(Parsed::Infinite) => None,
            None => {
                ctx.settle(key);
                return Frame::error("ERR hash value is not a float");
            }
        },
        None => Some(LongDouble::default()),
    };
    let Some(next) = cur.and_then(|cur| cur.add(by)) else {
        ctx.settle(key);
        return Frame::error(NAN_OR_INFINITY);
    };
    let text = Bytes::from(next.to_human());
    h.set_within(arg(args, 2), &text, lp);
    done(ctx, key, "hincrbyfloat");
    Frame::Bulk(text)
}

pub(crate) fn hrandfield(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let count = if args.len() >= 3 {
        Some(tri!(int_arg(args, 2)))
    } else {
        None
    };
    let withvalues = match args.get(3) {
        Some(a) if is(a, "withvalues") && args.len() == 4 => true,
        Some(_) => return Frame::error(SYNTAX),
        None => false,
    };
    if let Some(c) = count
        && c.unsigned_abs() > (i64::MAX / 2) as u64
    {
        return Frame::error("ERR value is out of range");
    }
    let pairs: Vec<(Bytes, Bytes)> = match tri!(get_hash(ctx, arg(args, 1))) {
        Some(h) => h.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        None => Vec::new(),
    };
    let picks = tri!(random_picks(ctx, pairs.len(), count, |i| {
        pairs.get(i).map_or(0, |(k, v)| {
            if withvalues {
                k.len() + v.len() + 2 * RESP_ELEMENT_FRAMING_BYTES
            } else {
                k.len() + RESP_ELEMENT_FRAMING_BYTES
            }
        })
    }));
    let Some(picks) = picks else {
        return pairs.first().map_or(Frame::Null, |_| {
            let i = ctx.random_below(pairs.len());
            pairs
                .get(i)
                .map_or(Frame::Null, |(k, _)| Frame::Bulk(k.clone()))
        });
    };
    let mut out = Vec::new();
    for i in picks {
        if let Some((k, v)) = pairs.get(i) {
            if withvalues && ctx.resp3 {
                out.push(Frame::Array(vec![
                    Frame::Bulk(k.clone()),
                    Frame::Bulk(v.clone()),
                ]));
            } else {
                out.push(Frame::Bulk(k.clone()));
                if withvalues {
                    out.push(Frame::Bulk(v.clone()));
                }
            }
        }
    }
    Frame::Array(out)
}

/// Index picks for SRANDMEMBER/HRANDFIELD-style commands over `len` items: `None` for the
/// single-item form; positive counts give distinct indexes, negative counts allow repeats, at
/// most [`RANDOM_PICKS_MAX`] of them and [`RANDOM_REPLY_BYTES_MAX`] of reply, where
/// `reply_bytes(i)` is what item `i` adds to the reply.
pub(crate) fn random_picks(
    ctx: &mut Ctx<'_>,
    len: usize,
    count: Option<i64>,
    reply_bytes: impl Fn(usize) -> usize,
) -> Result<Option<Vec<usize>>, Frame> {
    let Some(count) = count else { return Ok(None) };
    if len == 0 || count == 0 {
        return Ok(Some(Vec::new()));
    }
    if count < 0 {
        let n = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        if n > RANDOM_PICKS_MAX {
            return Err(Frame::error("ERR value is out of range"));
        }
        let mut bytes = 0usize;
        let mut picks = Vec::with_capacity(n);
        for _ in 0..n {
            let i = ctx.random_below(len);
            bytes = bytes.saturating_add(reply_bytes(i));
            if bytes > RANDOM_REPLY_BYTES_MAX {
                return Err(Frame::error(format!(
                    "ERR reply would exceed {RANDOM_REPLY_BYTES_MAX} bytes"
                )));
            }
            picks.push(i);
        }
        return Ok(Some(picks));
    }
    let n = usize::try_from(count).unwrap_or(usize::MAX).min(len);
    let mut idx: Vec<usize> = (0..len).collect();
    for i in 0..n {
        let j = i + ctx.random_below(len - i);
        idx.swap(i, j);
    }
    idx.truncate(n);
    Ok(Some(idx))
}

pub(crate) fn hscan(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (cursor, pattern, count, _) = tri!(scan_options(args, 2, false));
    let novalues = false;
    let (next, page) = match tri!(get_hash(ctx, arg(args, 1))) {
        // As Redis: a listpack-encoded hash is answered whole, in its order, with cursor 0.
        Some(h) if h.is_listpack() => (0, h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Some(h) => {
            let hasher = h.hasher();
            super::keys::page_by_hash(
                h.iter()
                    .map(|(k, v)| (hasher.hash_one(k), (k.clone(), v.clone()))),
                cursor,
                count,
            )
        }
        None => (0, Vec::new()),
    };
    let mut out = Vec::new();
    for (k, v) in page {
        if pattern
            .as_ref()
            .is_some_and(|p| !super::glob_match(p, &k, false))
        {
            continue;
        }
        out.push(Frame::Bulk(k));
        if !novalues {
            out.push(Frame::Bulk(v));
        }
    }
    let _ = NOT_FLOAT;
    Frame::Array(vec![
        Frame::bulk(next.to_string().as_bytes()),
        Frame::Array(out),
    ])
}
