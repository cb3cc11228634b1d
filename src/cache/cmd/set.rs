//! Set commands.

use std::hash::BuildHasher;

use bytes::Bytes;
use hashbrown::HashSet;

use super::{SYNTAX, WRONGTYPE, arg, int, int_arg, is, name, scan_options, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::{Frame, parse_i64};
use crate::cache::value::{SetValue, Value, is_intset};
use crate::cache::{EventKind, Inner, notify};

type Set = HashSet<Bytes>;

/// SPOP with a count keeps the members left in a new set when this many times their number is
/// at most the number popped (Redis's `SPOP_MOVE_STRATEGY_MUL`).
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

fn get_set<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut SetValue>, Frame> {
    match ctx.entry(key) {
        None => Ok(None),
        Some(e) => match e.into_boxed() {
            Some(Value::Set(s)) => Ok(Some(s)),
            _ => Err(Frame::error(WRONGTYPE)),
        },
    }
}

/// Settles `key` after a change and records it with Redis's set notification `event`.
fn done(ctx: &mut Ctx<'_>, key: &[u8], event: &'static str) {
    super::changed(ctx, key, notify::SET, event);
}

pub(crate) fn sadd(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let max = inner.compact().intset_entries;
    if tri!(get_set(ctx, key)).is_none() {
        ctx.put(key, Value::Set(Box::default()), 0);
    }
    let Some(s) = tri!(get_set(ctx, key)) else {
        return Frame::Integer(0);
    };
    let n = args
        .iter()
        .skip(2)
        .filter(|m| s.add(Bytes::copy_from_slice(m), max))
        .count();
    if n > 0 {
        done(ctx, key, "sadd");
    } else {
        ctx.settle(key);
    }
    int(n)
}

pub(crate) fn srem(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let Some(s) = tri!(get_set(ctx, key)) else {
        return Frame::Integer(0);
    };
    let n = args.iter().skip(2).filter(|m| s.remove(&m[..])).count();
    if n > 0 {
        done(ctx, key, "srem");
    }
    int(n)
}

pub(crate) fn smembers(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let members = tri!(get_set(ctx, arg(args, 1)))
        .map(|s| members_reply(s.is_intset(), s.iter().cloned()))
        .unwrap_or_default();
    Frame::Set(members)
}

/// A set's members as a reply: an intset's (`intset`, every member an integer) in ascending
/// order, as Redis iterates an intset; any other in the set's own order.
fn members_reply(intset: bool, members: impl Iterator<Item = Bytes>) -> Vec<Frame> {
    if intset {
        intset_order(members).into_iter().map(Frame::Bulk).collect()
    } else {
        members.map(Frame::Bulk).collect()
    }
}

/// An intset's members (each an integer) in its ascending order.
pub(crate) fn intset_order(members: impl Iterator<Item = Bytes>) -> Vec<Bytes> {
    let mut numbered: Vec<(i64, Bytes)> = members
        .map(|m| (parse_i64(&m).unwrap_or_default(), m))
        .collect();
    numbered.sort_unstable_by_key(|(n, _)| *n);
    numbered.into_iter().map(|(_, m)| m).collect()
}

pub(crate) fn sismember(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    Frame::Integer(i64::from(
        tri!(get_set(ctx, arg(args, 1))).is_some_and(|s| s.contains(arg(args, 2))),
    ))
}

pub(crate) fn smismember(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let s = tri!(get_set(ctx, arg(args, 1)));
    Frame::Array(
        args.iter()
            .skip(2)
            .map(|m| Frame::Integer(i64::from(s.as_ref().is_some_and(|s| s.contains(&m[..])))))
            .collect(),
    )
}

pub(crate) fn scard(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    int(tri!(get_set(ctx, arg(args, 1))).map_or(0, |s| s.len()))
}

pub(crate) fn spop(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let count = match args.get(2) {
        Some(c) => Some(tri!(super::positive(c))),
        None => None,
    };
    if args.len() > 3 {
        return Frame::error(SYNTAX);
    }
    let members: Vec<Bytes> = match tri!(get_set(ctx, key)) {
        Some(s) => s.iter().cloned().collect(),
        None => {
            return if count.is_some() {
                Frame::Set(Vec::new())
            } else {
                Frame::Null
            };
        }
    };
    let want = count.unwrap_or(1).min(members.len());
    let picks = tri!(super::hash::random_picks(
        ctx,
        members.len(),
        Some(i64::try_from(want).unwrap_or(i64::MAX)),
        |_| 0
    ))
    .unwrap_or_default();
    let chosen: Vec<Bytes> = picks
        .into_iter()
        .filter_map(|i| members.get(i).cloned())
        .collect();
    let mut left = 0;
    if let Some(s) = tri!(get_set(ctx, key)) {
        for m in &chosen {
            s.remove(m);
        }
        left = s.len();
        // As Redis: popping most of a set with a count builds a new set of the rest by adding
        // them to an intset.
        if count.is_some() && left > 0 && left.saturating_mul(SPOP_MOVE_STRATEGY_MUL) <= want {
            s.fit_encoding(inner.compact().intset_entries);
        }
    }
    if chosen.is_empty() {
        ctx.settle(key);
    } else if count.is_some() && left == 0 {
        // Redis pops a whole set with a count as a deletion: only `del` is published.
        ctx.settle(key);
        ctx.touched(key, EventKind::Del);
        ctx.notify(notify::GENERIC, "del", key);
    } else {
        done(ctx, key, "spop");
    }
    match count {
        None => chosen.into_iter().next().map_or(Frame::Null, Frame::Bulk),
        Some(_) => Frame::Set(chosen.into_iter().map(Frame::Bulk).collect()),
    }
}

pub(crate) fn srandmember(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let count = if args.len() >= 3 {
        Some(tri!(int_arg(args, 2)))
    } else {
        None
    };
    if args.len() > 3 {
        return Frame::error(SYNTAX);
    }
    if count == Some(i64::MIN) {
        return Frame::error("ERR value is out of range");
    }
    let members: Vec<Bytes> = match tri!(get_set(ctx, arg(args, 1))) {
        Some(s) => s.iter().cloned().collect(),
        None => {
            return if count.is_some() {
                Frame::Array(Vec::new())
            } else {
                Frame::Null
            };
        }
    };
    let reply_bytes = |i: usize| {
        members
            .get(i)
            .map_or(0, |m| m.len() + super::hash::RESP_ELEMENT_FRAMING_BYTES)
    };
    match tri!(super::hash::random_picks(
        ctx,
        members.len(),
        count,
        reply_bytes
    )) {
        None => {
            let i = ctx.random_below(members.len());
            members.get(i).cloned().map_or(Frame::Null, Frame::Bulk)
        }
        Some(picks) => Frame::Array(
            picks
                .into_iter()
                .filter_map(|i| members.get(i).cloned())
                .map(Frame::Bulk)
                .collect(),
        ),
    }
}

/// Reads the sets named by `keys` (a missing key is an empty set).
fn read_sets(ctx: &mut Ctx<'_>, keys: &[&[u8]]) -> Result<Vec<Option<Set>>, Frame> {
    Ok(read_sets_noting_smallest(ctx, keys)?.0)
}

/// [`read_sets`], and whether the smallest set (the first of that size) is an intset.
fn read_sets_noting_smallest(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
) -> Result<(Vec<Option<Set>>, bool), Frame> {
    let mut out = Vec::with_capacity(keys.len());
    let mut smallest: Option<(usize, bool)> = None;
    for k in keys {
        let s = get_set(ctx, k)?;
        if let Some(s) = &s
            && smallest.is_none_or(|(len, _)| s.len() < len)
        {
            smallest = Some((s.len(), s.is_intset()));
        }
        out.push(s.map(|s| Set::clone(s)));
    }
    Ok((out, smallest.is_some_and(|(_, intset)| intset)))
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

fn combine(sets: Vec<Option<Set>>, op: Op) -> Set {
    let mut it = sets.into_iter();
    let first = it.next().flatten().unwrap_or_default();
    match op {
        Op::Inter => {
            let rest: Vec<Option<Set>> = it.collect();
            if rest.iter().any(Option::is_none) {
                return Set::default();
            }
            first
                .into_iter()
                .filter(|m| rest.iter().flatten().all(|s| s.contains(m)))
                .collect()
        }
        Op::Union => {
            let mut acc = first;
            for s in it.flatten() {
                acc.extend(s);
            }
            acc
        }
        Op::Diff => {
            let mut acc = first;
            for s in it.flatten() {
                acc.retain(|m| !s.contains(m));
            }
            acc
        }
    }
}

/// Redis's notification for a stored SINTERSTORE, SUNIONSTORE or SDIFFSTORE result.
fn store_event(args: &[&[u8]]) -> &'static str {
    match op_of(args) {
        Op::Inter => "sinterstore",
        Op::Union => "sunionstore",
        Op::Diff => "sdiffstore",
    }
}

fn op_of(args: &[&[u8]]) -> Op {
    let n = name(args);
    if n.starts_with("sinter") {
        Op::Inter
    } else if n.starts_with("sunion") {
        Op::Union
    } else {
        Op::Diff
    }
}

/// SINTER, SUNION, SDIFF.
pub(crate) fn sop(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let max = inner.compact().intset_entries;
    let keys = args.get(1..).unwrap_or_default();
    // Redis answers from an intset when the result is one (a union or difference is built as
    // an intset while its members are integers) or, for an intersection, when the set it
    // walks, the smallest, is one: then in ascending order.
    let op = op_of(args);
    let (sets, smallest_intset) = tri!(read_sets_noting_smallest(ctx, keys));
    let walked_intset = match op {
        Op::Inter => Some(smallest_intset),
        Op::Union | Op::Diff => None,
    };
    let result = combine(sets, op);
    let intset = walked_intset.unwrap_or_else(|| is_intset(result.len(), result.iter(), max));
    Frame::Set(members_reply(intset, result.into_iter()))
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE.
pub(crate) fn sopstore(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let dst = arg(args, 1);
    let sets = tri!(ctx.reading(|ctx| read_sets(ctx, args.get(2..).unwrap_or_default())));
    let result = combine(sets, op_of(args));
    let n = result.len();
    let existed = ctx.delete(dst);
    if n > 0 {
        // As Redis: built by adding each member to an intset.
        let stored = SetValue::from_members(result, inner.compact().intset_entries);
        ctx.put_replacing(dst, Value::Set(Box::new(stored)), existed);
        ctx.touched(dst, EventKind::Set);
        ctx.notify(notify::SET, store_event(args), dst);
    } else if existed {
        ctx.touched(dst, EventKind::Del);
        ctx.notify(notify::GENERIC, "del", dst);
    }
    int(n)
}

pub(crate) fn sintercard(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let numkeys = match parse_i64(arg(args, 1)) {
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        Some(_) => return Frame::error("ERR numkeys should be greater than 0"),
        None => return Frame::error("ERR numkeys should be greater than 0"),
    };
    if numkeys > args.len().saturating_sub(2) {
        return Frame::error("ERR Number of keys can't be greater than number of args");
    }
    let Some(keys) = args.get(2..2 + numkeys) else {
        return Frame::error(SYNTAX);
    };
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        if is(arg(args, i), "limit") && i + 1 < args.len() {
            match parse_i64(arg(args, i + 1)) {
                Some(n) if n >= 0 => limit = usize::try_from(n).unwrap_or(usize::MAX),
                _ => return Frame::error("ERR LIMIT can't be negative"),
            }
            i += 2;
        } else {
            return Frame::error(SYNTAX);
        }
    }
    let sets = tri!(read_sets(ctx, keys));
    let n = combine(sets, Op::Inter).len();
    int(if limit > 0 { n.min(limit) } else { n })
}

pub(crate) fn smove(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let (src, dst, member) = (arg(args, 1), arg(args, 2), arg(args, 3));
    if tri!(get_set(ctx, src)).is_none() {
        return Frame::Integer(0);
    }
    tri!(get_set(ctx, dst));
    if src == dst {
        return Frame::Integer(i64::from(
            tri!(get_set(ctx, src)).is_some_and(|s| s.contains(member)),
        ));
    }
    let removed = tri!(get_set(ctx, src)).is_some_and(|s| s.remove(member));
    if !removed {
        return Frame::Integer(0);
    }
    done(ctx, src, "srem");
    if tri!(get_set(ctx, dst)).is_none() {
        ctx.put(dst, Value::Set(Box::default()), 0);
    }
    // As Redis: the destination changed (WATCH, events) only if the member was added to it.
    let max = inner.compact().intset_entries;
    if tri!(get_set(ctx, dst)).is_some_and(|s| s.add(Bytes::copy_from_slice(member), max)) {
        done(ctx, dst, "sadd");
    } else {
        ctx.settle(dst);
    }
    Frame::Integer(1)
}

pub(crate) fn sscan(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let (cursor, pattern, count, _) = tri!(scan_options(args, 2, false));
    let (next, page) = match tri!(get_set(ctx, arg(args, 1))) {
        // As Redis: an intset is answered whole, in ascending order, with cursor 0.
        Some(s) if s.is_intset() => (0, intset_order(s.iter().cloned())),
        Some(s) => {
            let hasher = s.hasher();
            super::keys::page_by_hash(
                s.iter().map(|m| (hasher.hash_one(m), m.clone())),
                cursor,
                count,
            )
        }
        None => (0, Vec::new()),
    };
    let out = page
        .into_iter()
        .filter(|m| {
            pattern
                .as_ref()
                .is_none_or(|p| super::glob_match(p, m, false))
        })
        .map(Frame::Bulk)
        .collect();
    Frame::Array(vec![
        Frame::bulk(next.to_string().as_bytes()),
        Frame::Array(out),
    ])
}
