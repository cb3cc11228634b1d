//! SORT and SORT_RO, as Redis 7.0.15's `sort.c`: the elements of a list, set or sorted set,
//! ordered by their own value or by the value each names through a BY pattern, numerically or
//! (ALPHA) as bytes, ASC or DESC, cut by LIMIT, answered as themselves or as what GET patterns
//! name for each, or stored as a list (SORT only).
//!
//! A pattern's first `*` is replaced by the element and the result is read as a string key, or,
//! when `->field` follows the `*`, as that field of a hash key; `#` is the element itself; a
//! pattern without `*` names nothing (a BY without one skips sorting — `BY nosort` — and a GET
//! without one answers nil). An element whose BY key is missing sorts as 0 (numeric) or first
//! (ALPHA); a numeric weight that `strtod` does not read whole, or reads as NaN or out of range,
//! fails the command. Equal numeric weights order by the elements' bytes. Both commands run
//! under the exclusive gate, since their patterns may read any key.

use bytes::Bytes;

use super::zset::{is_c_space, strtod_whole};
use super::{NOT_INTEGER, SYNTAX, WRONGTYPE, arg, int, is, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::rdb::Stored;
use crate::cache::resp::frame::{Frame, parse_i64};
use crate::cache::value::{Elem, Value};
use crate::cache::{EventKind, Inner, notify};

/// A weight as SORT reads it with `strtod`: leading spaces skipped, the rest read whole; the
/// empty string is 0. `None` when `strtod` would stop early, overflow, underflow or give NaN.
fn weight(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return Some(0.0);
    }
    let start = text.iter().position(|&c| !is_c_space(c))?;
    let (v, range_error) = strtod_whole(text.get(start..)?)?;
    (!range_error && !v.is_nan()).then_some(v)
}

/// `lookupKeyByPattern`: what `pattern` names for element `subst`.
fn lookup(ctx: &mut Ctx<'_>, pattern: &[u8], subst: &[u8]) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(Bytes::copy_from_slice(subst));
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let (prefix, after) = (pattern.get(..star)?, pattern.get(star + 1..)?);
    let arrow = after.windows(2).position(|w| w == b"->");
    let (postfix, field) = match arrow {
        Some(f) if f + 2 < after.len() => (after.get(..f)?, after.get(f + 2..)),
        _ => (after, None),
    };
    let key = [prefix, subst, postfix].concat();
    // Redis's `lookupKeyByPattern` reads with `lookupKeyRead`, SORT … STORE too.
    ctx.reading(|ctx| {
        let entry = ctx.entry(&key)?;
        match (entry.into_stored(), field) {
            (Stored::Str(s), None) => Some(Bytes::copy_from_slice(s)),
            (Stored::Value(Value::Str(s)), None) => Some(Bytes::copy_from_slice(s)),
            (Stored::Value(Value::Hash(h)), Some(f)) => h.get(f).cloned(),
            _ => None,
        }
    })
}

/// One element to sort and its weight.
struct Item {
    element: Bytes,
    score: f64,
    /// ALPHA BY: the weight's bytes (`None` when the BY key is missing).
    by: Option<Bytes>,
}

pub(crate) fn sort(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let readonly = is(arg(args, 0), "sort_ro");
    let key = arg(args, 1);
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count): (i64, i64) = (0, -1);
    let mut store: Option<&[u8]> = None;
    let mut sortby: Option<&[u8]> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let a = arg(args, j);
        let left = args.len() - j - 1;
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            limit_start =
                tri!(parse_i64(arg(args, j + 1)).ok_or_else(|| Frame::error(NOT_INTEGER)));
            limit_count =
                tri!(parse_i64(arg(args, j + 2)).ok_or_else(|| Frame::error(NOT_INTEGER)));
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(arg(args, j + 1));
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let pattern = arg(args, j + 1);
            sortby = Some(pattern);
            dontsort = !pattern.contains(&b'*');
            j += 1;
        } else if is(a, "get") && left >= 1 {
            gets.push(arg(args, j + 1));
            j += 1;
        } else {
            return Frame::error(SYNTAX);
        }
        j += 1;
    }

    // The elements, in the source's own order (a missing key is an empty list).
    enum Source {
        List(Vec<Bytes>),
        Set(Vec<Bytes>),
        ZSet(Vec<Bytes>),
    }
    // Read as Redis's `lookupKeyRead` reads it, by SORT … STORE too.
    let source = ctx.reading(|ctx| match ctx.entry(key) {
        None => Some(Source::List(Vec::new())),
        Some(e) => match e.into_boxed() {
            Some(Value::List(l)) => Some(Source::List(l.iter().map(Elem::to_bytes).collect())),
            // An intset's own order is ascending, as Redis iterates one.
            Some(Value::Set(s)) if s.is_intset() => {
                Some(Source::Set(super::set::intset_order(s.iter().cloned())))
            }
            Some(Value::Set(s)) => Some(Source::Set(s.iter().cloned().collect())),
            Some(Value::ZSet(z)) => Some(Source::ZSet(
                z.range(0, z.len(), false)
                    .into_iter()
                    .map(|(m, _)| m)
                    .collect(),
            )),
            _ => None,
        },
    });
    let Some(source) = source else {
        return Frame::error(WRONGTYPE);
    };
    // A set with no order asked for is sorted anyway when stored or when a script asks, so the
    // stored list or the script's result does not depend on the set's internal order.
    if dontsort && matches!(source, Source::Set(_)) && (store.is_some() || ctx.in_script) {
        dontsort = false;
        alpha = true;
        sortby = None;
    }
    let (ordered, elements) = match source {
        Source::List(v) | Source::ZSet(v) => (true, v),
        Source::Set(v) => (false, v),
    };
    let len = i64::try_from(elements.len()).unwrap_or(i64::MAX);
    // LIMIT as Redis clamps it.
    let mut start = limit_start.max(0).min(len);
    let count = limit_count.max(-1).min(len);
    let mut end = if count < 0 {
        len - 1
    } else {
        start + count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    let loaded: Vec<Bytes> = if ordered && dontsort {
        // The source's order (reversed for DESC), only the LIMIT range.
        let n = usize::try_from(end - start + 1).unwrap_or(0);
        let skip = usize::try_from(start).unwrap_or(0);
        end -= start;
        start = 0;
        if desc {
            elements.into_iter().rev().skip(skip).take(n).collect()
        } else {
            elements.into_iter().skip(skip).take(n).collect()
        }
    } else {
        elements
    };
    let mut items: Vec<Item> = loaded
        .into_iter()
        .map(|element| Item {
            element,
            score: 0.0,
            by: None,
        })
        .collect();

    if !dontsort {
        let mut conversion_error = false;
        for item in &mut items {
            let by = match sortby {
                Some(pattern) => match lookup(ctx, pattern, &item.element) {
                    Some(v) => v,
                    None => continue,
                },
                None => item.element.clone(),
            };
            if alpha {
                if sortby.is_some() {
                    item.by = Some(by);
                }
            } else {
                match weight(&by) {
                    Some(v) => item.score = v,
                    None => conversion_error = true,
                }
            }
        }
        if conversion_error {
            return Frame::error("ERR One or more scores can't be converted into double");
        }
        let by_pattern = sortby.is_some();
        items.sort_by(|a, b| {
            let cmp = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.element.cmp(&b.element))
            } else if by_pattern {
                // A missing weight sorts first.
                a.by.cmp(&b.by)
            } else {
                a.element.cmp(&b.element)
            };
            if desc { cmp.reverse() } else { cmp }
        });
    }

    let range = usize::try_from(start).unwrap_or(0)..usize::try_from(end + 1).unwrap_or(0);
    let picked = items.get(range).unwrap_or_default();
    match store {
        None => {
            let mut out = Vec::with_capacity(picked.len() * gets.len().max(1));
            for item in picked {
                if gets.is_empty() {
                    out.push(Frame::Bulk(item.element.clone()));
                }
                for pattern in &gets {
                    out.push(match lookup(ctx, pattern, &item.element) {
                        Some(v) => Frame::Bulk(v),
                        None => Frame::Null,
                    });
                }
            }
            Frame::Array(out)
        }
        Some(dst) => {
            let mut list: Vec<Bytes> = Vec::with_capacity(picked.len() * gets.len().max(1));
            for item in picked {
                if gets.is_empty() {
                    list.push(item.element.clone());
                }
                for pattern in &gets {
                    list.push(lookup(ctx, pattern, &item.element).unwrap_or_default());
                }
            }
            let n = list.len();
            let existed = ctx.delete(dst);
            if n > 0 {
                ctx.put_replacing(
                    dst,
                    Value::List(Box::new(list.into_iter().collect())),
                    existed,
                );
                ctx.list_pushed = true;
                ctx.touched(dst, EventKind::Set);
                ctx.notify(notify::LIST, "sortstore", dst);
            } else if existed {
                ctx.touched(dst, EventKind::Del);
                ctx.notify(notify::GENERIC, "del", dst);
            }
            int(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_read_as_strtod_reads_them() {
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b"  12.5"), Some(12.5));
        assert_eq!(weight(b"12.5 "), None);
        assert_eq!(weight(b"   "), None);
        assert_eq!(weight(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(weight(b"nan"), None);
        assert_eq!(weight(b"1e999"), None);
        assert_eq!(weight(b"abc"), None);
    }
}
