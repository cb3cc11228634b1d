//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE and PFDEBUG. A HyperLogLog is a plain string
//! in Redis 7.0's own format, so one made by Redis (moved with GET/SET or DUMP/RESTORE) works
//! here and the other way round, byte for byte:
//!
//! - a 16-byte header: `HYLL`, the encoding byte (0 dense, 1 sparse), three zero bytes and the
//!   cached cardinality (64-bit little endian; its top bit set means "stale");
//! - dense: 16384 6-bit registers packed from each byte's low bits up (12288 bytes);
//! - sparse: run-length opcodes `00xxxxxx` (ZERO, 1–64 zero registers), `01xxxxxx yyyyyyyy`
//!   (XZERO, 1–16384 zero registers) and `1vvvvvxx` (VAL, 1–4 registers of value 1–32).
//!
//! An element hashes with MurmurHash64A (seed `0xadc83b19`): the low 14 bits pick the register,
//! the position of the lowest set bit of the rest (plus one) is its rank. A sparse value turns
//! dense when a rank passes 32 or when growing would take it past `hll-sparse-max-bytes`. The
//! estimate is Ertl's improved raw estimator, as Redis 7.0 computes it. Every read of a value
//! is bounds-checked: a corrupt value gets Redis's error and never reads or allocates past
//! its own size (the dense image is always exactly 12304 bytes).

use super::strings::get_str;
use super::{WRONGTYPE, arg, is, tri};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::Frame;
use crate::cache::value::Value;
use crate::cache::{EventKind, Inner, notify};

/// Header bytes before the registers.
const HDR: usize = 16;
/// Bits of the hash that pick the register.
const P: u32 = 14;
/// Bits of the hash left for the rank.
const Q: u32 = 64 - P;
/// Registers per HyperLogLog.
pub(crate) const REGISTERS: usize = 1 << P;
/// Size of a dense HyperLogLog string.
pub(crate) const DENSE_SIZE: usize = HDR + REGISTERS * 6 / 8;
/// Encoding byte of the dense form.
const DENSE: u8 = 0;
/// Encoding byte of the sparse form.
const SPARSE: u8 = 1;
/// Largest register value a VAL opcode holds.
const VAL_MAX_VALUE: u8 = 32;
/// Most registers one VAL opcode covers.
const VAL_MAX_LEN: usize = 4;
/// Most registers one ZERO opcode covers.
const ZERO_MAX_LEN: usize = 64;
/// Default of `hll-sparse-max-bytes`.
pub(crate) const SPARSE_MAX_BYTES_DEFAULT: usize = 3000;
/// Redis's reply to a string that is not a HyperLogLog.
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Redis's reply to a HyperLogLog whose registers do not decode.
const CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";
/// Redis's `HLL_ALPHA_INF`, 0.5 / ln 2.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The registers of a value do not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// Redis's MurmurHash64A (the endian-neutral variant: 8-byte words read little endian).
pub(crate) fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
    let mut h = seed ^ len.wrapping_mul(M);
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let mut k = u64::from_le_bytes(bytes);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and its rank (1..=51).
pub(crate) fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = usize::try_from(hash & (REGISTERS as u64 - 1)).unwrap_or(0);
    let rest = (hash >> P) | (1u64 << Q);
    let rank = u8::try_from(rest.trailing_zeros() + 1).unwrap_or(u8::MAX);
    (index, rank)
}

/// Register `i` of packed dense registers.
fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = u16::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

/// Sets register `i` of packed dense registers to `v` (below 64).
fn dense_set(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = u16::from(v);
    if let Some(b) = regs.get_mut(byte) {
        *b = ((u16::from(*b) & !(63 << fb)) | (v << fb)) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b = ((u16::from(*b) & !(63 >> (8 - fb))) | (v >> (8 - fb))) as u8;
    }
}

/// One sparse opcode.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// `len` zero registers in a ZERO (`bytes` 1) or XZERO (`bytes` 2) opcode.
    Zero { len: usize, bytes: usize },
    /// `len` registers of `value`.
    Val { value: u8, len: usize },
}

impl Op {
    fn span(self) -> usize {
        match self {
            Op::Zero { len, .. } | Op::Val { len, .. } => len,
        }
    }

    fn bytes(self) -> usize {
        match self {
            Op::Zero { bytes, .. } => bytes,
            Op::Val { .. } => 1,
        }
    }
}

/// The opcode at byte `p` of a sparse value, `None` past its end (a cut XZERO reads its
/// missing second byte as 0, as Redis reads the string's terminator).
fn op_at(s: &[u8], p: usize) -> Option<Op> {
    let b = *s.get(p)?;
    let b = usize::from(b);
    Some(match b & 0xc0 {
        0 => Op::Zero {
            len: (b & 0x3f) + 1,
            bytes: 1,
        },
        0x40 => Op::Zero {
            len: (((b & 0x3f) << 8) | usize::from(s.get(p + 1).copied().unwrap_or(0))) + 1,
            bytes: 2,
        },
        _ => Op::Val {
            value: u8::try_from(((b >> 2) & 0x1f) + 1).unwrap_or(0),
            len: (b & 3) + 1,
        },
    })
}

/// A VAL opcode byte (`value` 1..=32, `len` 1..=4).
fn val_op(value: u8, len: usize) -> u8 {
    0x80 | ((value.wrapping_sub(1) & 0x1f) << 2) | (len.wrapping_sub(1) & 3) as u8
}

/// Appends the ZERO or XZERO opcode for `len` zero registers.
fn push_zeros(out: &mut Vec<u8>, len: usize) {
    let l = len.wrapping_sub(1);
    if len > ZERO_MAX_LEN {
        out.push(((l >> 8) | 0x40) as u8);
        out.push((l & 0xff) as u8);
    } else {
        out.push(l as u8);
    }
}

/// An empty HyperLogLog: sparse, one XZERO opcode covering every register.
pub(crate) fn empty() -> Vec<u8> {
    let mut s = Vec::with_capacity(HDR + 2);
    s.extend_from_slice(b"HYLL");
    s.push(SPARSE);
    s.extend_from_slice(&[0; 11]);
    push_zeros(&mut s, REGISTERS);
    s
}

/// The encoding of a HyperLogLog string, or Redis's reply to one that is not.
fn encoding(s: &[u8]) -> Result<u8, Frame> {
    let bad = || Frame::error(NOT_HLL);
    let enc = *s.get(4).ok_or_else(bad)?;
    if s.len() < HDR || s.get(..4) != Some(b"HYLL") || enc > SPARSE {
        return Err(bad());
    }
    if enc == DENSE && s.len() != DENSE_SIZE {
        return Err(bad());
    }
    Ok(enc)
}

/// Marks the cached cardinality stale.
fn invalidate(s: &mut [u8]) {
    if let Some(b) = s.get_mut(HDR - 1) {
        *b |= 0x80;
    }
}

/// The dense image of a sparse value (header copied, encoding changed), or `Corrupt` when
/// its opcodes do not cover exactly every register.
fn to_dense(s: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut d = vec![0u8; DENSE_SIZE];
    if let (Some(dh), Some(sh)) = (d.get_mut(..HDR), s.get(..HDR)) {
        dh.copy_from_slice(sh);
    }
    if let Some(e) = d.get_mut(4) {
        *e = DENSE;
    }
    let regs = d.get_mut(HDR..).unwrap_or_default();
    walk(s, |first, value, len| {
        if value != 0 && first + len <= REGISTERS {
            for i in first..first + len {
                dense_set(regs, i, value);
            }
        }
    })?;
    Ok(d)
}

/// Calls `f(first register, value, run length)` for every run of a sparse value's opcodes, in
/// order, and checks that they cover exactly the 16 384 registers (a run past the last one is
/// corrupt, as `redis-server` 7.0.15 answers for every decoder; `f` may see it, its caller
/// then drops the result).
fn walk(s: &[u8], mut f: impl FnMut(usize, u8, usize)) -> Result<(), Corrupt> {
    let (mut idx, mut p) = (0usize, HDR);
    while let Some(op) = op_at(s, p) {
        let (value, len) = match op {
            Op::Zero { len, .. } => (0, len),
            Op::Val { value, len } => (value, len),
        };
        f(idx, value, len);
        idx += len;
        p += op.bytes();
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Turns a sparse value dense and raises register `index` to `rank`.
fn promote(s: &mut Vec<u8>, index: usize, rank: u8) -> Result<bool, Corrupt> {
    let mut d = to_dense(s)?;
    let regs = d.get_mut(HDR..).unwrap_or_default();
    if rank > dense_get(regs, index) {
        dense_set(regs, index, rank);
    }
    *s = d;
    Ok(true)
}

/// Raises register `index` of a sparse value to `rank` in place, splitting the opcode that
/// covers it and merging equal neighbouring VAL opcodes as Redis does, or turns the value dense.
/// Returns whether a register changed.
fn sparse_set(s: &mut Vec<u8>, index: usize, rank: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if rank > VAL_MAX_VALUE {
        return promote(s, index, rank);
    }
    // Find the opcode covering `index`.
    let (mut p, mut first, mut prev) = (HDR, 0usize, None);
    let op = loop {
        let op = op_at(s, p).ok_or(Corrupt)?;
        if index < first + op.span() {
            break op;
        }
        prev = Some(p);
        p += op.bytes();
        first += op.span();
    };
    let span = op.span();
    let mut merge_from = prev.unwrap_or(HDR);
    match op {
        Op::Val { value, .. } if value >= rank => return Ok(false),
        Op::Val { len: 1, .. } | Op::Zero { len: 1, bytes: 1 } => {
            if let Some(b) = s.get_mut(p) {
                *b = val_op(rank, 1);
            }
        }
        _ => {
            let last = first + span - 1;
            let mut seq = Vec::with_capacity(5);
            match op {
                Op::Zero { .. } => {
                    if index != first {
                        push_zeros(&mut seq, index - first);
                    }
                    seq.push(val_op(rank, 1));
                    if index != last {
                        push_zeros(&mut seq, last - index);
                    }
                }
                Op::Val { value, .. } => {
                    if index != first {
                        seq.push(val_op(value, index - first));
                    }
                    seq.push(val_op(rank, 1));
                    if index != last {
                        seq.push(val_op(value, last - index));
                    }
                }
            }
            let old = op.bytes();
            if seq.len() > old && s.len() + seq.len() - old > max_bytes {
                return promote(s, index, rank);
            }
            let new_len = s.len() + seq.len() - old;
            let cut = (p + old).min(s.len());
            s.splice(p..cut, seq);
            s.truncate(new_len);
        }
    }
    // Merge adjacent VAL opcodes of one value, scanning up to five opcodes from the previous.
    let mut scan = 5;
    while merge_from < s.len() && scan > 0 {
        scan -= 1;
        let Some(&b) = s.get(merge_from) else { break };
        match b & 0xc0 {
            0x40 => {
                merge_from += 2;
                continue;
            }
            0 => {
                merge_from += 1;
                continue;
            }
            _ => {}
        }
        if let (Some(Op::Val { value: v1, len: l1 }), Some(Op::Val { value: v2, len: l2 })) =
            (op_at(s, merge_from), op_at(s, merge_from + 1))
            && v1 == v2
            && l1 + l2 <= VAL_MAX_LEN
        {
            if let Some(next) = s.get_mut(merge_from + 1) {
                *next = val_op(v1, l1 + l2);
            }
            s.remove(merge_from);
            continue;
        }
        merge_from += 1;
    }
    invalidate(s);
    Ok(true)
}

/// Adds one element to a HyperLogLog value; returns whether a register changed.
fn add(s: &mut Vec<u8>, element: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, rank) = register_of(element);
    match s.get(4) {
        Some(&DENSE) => {
            let regs = s.get_mut(HDR..).ok_or(Corrupt)?;
            if rank > dense_get(regs, index) {
                dense_set(regs, index, rank);
                Ok(true)
            } else {
                Ok(false)
            }
        }
        Some(&SPARSE) => sparse_set(s, index, rank, max_bytes),
        _ => Err(Corrupt),
    }
}

/// Raises `max` to the registers of a checked HyperLogLog value.
fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), Corrupt> {
    if s.get(4) == Some(&DENSE) {
        let regs = s.get(HDR..).unwrap_or_default();
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    walk(s, |first, value, len| {
        for m in max.iter_mut().skip(first).take(len) {
            *m = (*m).max(value);
        }
    })
}

/// Ertl's sigma.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

/// Ertl's tau.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if before == z {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate from a histogram of register values.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let at = |i: usize| f64::from(histo.get(i).copied().unwrap_or(0));
    let q = Q as usize;
    let mut z = m * tau((m - at(q + 1)) / m);
    for j in (1..=q).rev() {
        z += at(j);
        z *= 0.5;
    }
    z += m * sigma(at(0) / m);
    // `as` saturates; the estimate is finite and non-negative (0 for an empty sketch).
    (ALPHA_INF * m * m / z).round() as u64
}

/// Counts one register value into the histogram.
fn bump(histo: &mut [u32; 64], value: u8, by: usize) {
    if let Some(h) = histo.get_mut(usize::from(value & 63)) {
        *h = h.saturating_add(u32::try_from(by).unwrap_or(u32::MAX));
    }
}

/// The estimate of a checked HyperLogLog value, or `Corrupt` for a sparse one that does not
/// cover exactly every register.
fn count_of(s: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    if s.get(4) == Some(&DENSE) {
        let regs = s.get(HDR..).unwrap_or_default();
        for i in 0..REGISTERS {
            bump(&mut histo, dense_get(regs, i), 1);
        }
    } else {
        walk(s, |_, value, len| bump(&mut histo, value, len))?;
    }
    Ok(estimate(&histo))
}

/// The estimate of registers given one per byte.
fn count_raw(max: &[u8]) -> u64 {
    let mut histo = [0u32; 64];
    for &v in max {
        bump(&mut histo, v, 1);
    }
    estimate(&histo)
}

/// The string under `key` checked as a HyperLogLog: `None` if absent, or the WRONGTYPE reply
/// (Redis's own for another type, the HyperLogLog one for a string that is not one).
fn checked<'c>(ctx: &'c mut Ctx<'_>, key: &[u8]) -> Result<Option<&'c mut Vec<u8>>, Frame> {
    match get_str(ctx, key)? {
        None => Ok(None),
        Some(s) => {
            encoding(s)?;
            Ok(Some(s))
        }
    }
}

/// Raises `max` to the registers of every HyperLogLog named in `keys` (absent keys count as
/// empty); returns whether any of them is dense.
fn merge_keys(ctx: &mut Ctx<'_>, keys: &[&[u8]], max: &mut [u8]) -> Result<bool, Frame> {
    let mut dense = false;
    for key in keys {
        let Some(s) = ctx.entry(key) else { continue };
        let Some(s) = s.into_str() else {
            return Err(Frame::error(WRONGTYPE));
        };
        if encoding(s)? == DENSE {
            dense = true;
        }
        merge_into(max, s).map_err(|_| Frame::error(CORRUPT))?;
    }
    Ok(dense)
}

/// Records a HyperLogLog write as Redis does: a `pfadd` event of the string class.
fn written(ctx: &mut Ctx<'_>, key: &[u8]) {
    ctx.settle(key);
    ctx.touched(key, EventKind::Set);
    ctx.notify(notify::STRING, "pfadd", key);
}

pub(crate) fn pfadd(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let max_bytes = inner.hll_sparse_max_bytes();
    let elements = args.get(2..).unwrap_or_default();
    let mut updated = false;
    let result = match tri!(checked(ctx, key)) {
        Some(s) => add_all(s, elements, max_bytes, &mut updated),
        None => {
            let mut s = empty();
            updated = true;
            let r = add_all(&mut s, elements, max_bytes, &mut updated);
            ctx.put(key, Value::Str(s), 0);
            r
        }
    };
    if result.is_err() {
        ctx.settle(key);
        return Frame::error(CORRUPT);
    }
    if updated {
        if let Some(s) = tri!(get_str(ctx, key)) {
            invalidate(s);
        }
        written(ctx, key);
    }
    Frame::Integer(i64::from(updated))
}

/// Adds every element; `updated` turns true when a register changed.
fn add_all(
    s: &mut Vec<u8>,
    elements: &[&[u8]],
    max_bytes: usize,
    updated: &mut bool,
) -> Result<(), Corrupt> {
    for e in elements {
        if add(s, e, max_bytes)? {
            *updated = true;
        }
    }
    Ok(())
}

pub(crate) fn pfcount(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    if args.len() > 2 {
        let mut max = vec![0u8; REGISTERS];
        tri!(merge_keys(ctx, args.get(1..).unwrap_or_default(), &mut max));
        return Frame::Integer(i64::try_from(count_raw(&max)).unwrap_or(i64::MAX));
    }
    let key = arg(args, 1);
    let Some(s) = tri!(checked(ctx, key)) else {
        return Frame::Integer(0);
    };
    let cached = s.get(8..HDR).and_then(|c| <[u8; 8]>::try_from(c).ok());
    let card = match cached {
        Some(c) if c[7] & 0x80 == 0 => u64::from_le_bytes(c),
        _ => {
            let Ok(card) = count_of(s) else {
                return Frame::error(CORRUPT);
            };
            if let Some(c) = s.get_mut(8..HDR) {
                c.copy_from_slice(&card.to_le_bytes());
            }
            // Storing the cache changes the string: WATCH sees it, as Redis signals it.
            ctx.touched(key, EventKind::Set);
            card
        }
    };
    Frame::Integer(i64::try_from(card).unwrap_or(i64::MAX))
}

pub(crate) fn pfmerge(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let key = arg(args, 1);
    let max_bytes = inner.hll_sparse_max_bytes();
    let mut max = vec![0u8; REGISTERS];
    // Every key, the destination first, is read as Redis's `lookupKeyRead` reads it.
    let dense =
        tri!(ctx.reading(|ctx| merge_keys(ctx, args.get(1..).unwrap_or_default(), &mut max)));
    if !ctx.exists(key) {
        ctx.put(key, Value::Str(empty()), 0);
    }
    let Some(s) = tri!(get_str(ctx, key)) else {
        return Frame::error(CORRUPT);
    };
    if dense && s.get(4) == Some(&SPARSE) {
        match to_dense(s) {
            Ok(d) => *s = d,
            Err(Corrupt) => return Frame::error(CORRUPT),
        }
    }
    for (i, &v) in max.iter().enumerate() {
        if v == 0 {
            continue;
        }
        if s.get(4) == Some(&DENSE) {
            let regs = s.get_mut(HDR..).unwrap_or_default();
            if v > dense_get(regs, i) {
                dense_set(regs, i, v);
            }
        } else {
            // As Redis, a sparse destination that stops decoding keeps what was written.
            let _ = sparse_set(s, i, v, max_bytes);
        }
    }
    invalidate(s);
    written(ctx, key);
    Frame::ok()
}

/// PFDEBUG GETREG | DECODE | ENCODING | TODENSE key.
pub(crate) fn pfdebug(ctx: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    let key = arg(args, 2);
    let Some(s) = tri!(checked(ctx, key)) else {
        return Frame::error("ERR The specified key does not exist");
    };
    let sparse = s.get(4) == Some(&SPARSE);
    if is(sub, "getreg") || is(sub, "todense") {
        if sparse {
            match to_dense(s) {
                Ok(d) => *s = d,
                Err(Corrupt) => return Frame::error(CORRUPT),
            }
        }
        let reply = if is(sub, "todense") {
            Frame::Integer(i64::from(sparse))
        } else {
            let regs = s.get(HDR..).unwrap_or_default();
            Frame::Array(
                (0..REGISTERS)
                    .map(|i| Frame::Integer(i64::from(dense_get(regs, i))))
                    .collect(),
            )
        };
        if sparse {
            ctx.settle(key);
            ctx.touched(key, EventKind::Set);
        }
        reply
    } else if is(sub, "decode") {
        if !sparse {
            return Frame::error("ERR HLL encoding is not sparse");
        }
        let mut out = Vec::new();
        let mut p = HDR;
        while let Some(op) = op_at(s, p) {
            let text = match op {
                Op::Zero { len, bytes: 1 } => format!("z:{len}"),
                Op::Zero { len, .. } => format!("Z:{len}"),
                Op::Val { value, len } => format!("v:{value},{len}"),
            };
            out.push(text);
            p += op.bytes();
        }
        Frame::bulk(out.join(" ").as_bytes())
    } else if is(sub, "encoding") {
        Frame::simple(if sparse { "sparse" } else { "dense" })
    } else {
        Frame::error(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; REGISTERS * 6 / 8];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = empty();
        let mut dense = to_dense(&sparse).unwrap();
        for i in 0..2000u32 {
            let e = i.to_string();
            assert_eq!(
                add(&mut sparse, e.as_bytes(), usize::MAX).unwrap(),
                add(&mut dense, e.as_bytes(), usize::MAX).unwrap()
            );
        }
        assert_eq!(sparse.get(4), Some(&SPARSE));
        assert_eq!(to_dense(&sparse).unwrap().get(HDR..), dense.get(HDR..));
        assert_eq!(count_of(&sparse), count_of(&dense));
    }

    #[test]
    fn empty_counts_zero() {
        assert_eq!(count_of(&empty()), Ok(0));
        assert_eq!(count_raw(&[0; REGISTERS]), 0);
    }
}
