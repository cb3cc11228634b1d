//! Streams in DUMP payloads: `RDB_TYPE_STREAM_LISTPACKS_2` (Redis 7.0's, written and read) and
//! `RDB_TYPE_STREAM_LISTPACKS` (Redis 5.0–6.2's, read), as `rdbSaveObject` and
//! `rdbLoadObject` lay them out:
//!
//! ```text
//! nodes: len, then per node its master ID (16 bytes: ms, seq, big-endian) and its listpack
//! length, last ID (ms, seq)
//! [_2 only] first ID (ms, seq), largest deleted ID (ms, seq), entries added
//! groups: len, then per group its name, last ID (ms, seq), [_2 only] entries read,
//!   PEL: len, then per entry its ID (16 raw bytes), delivery time (8 bytes LE ms) and count
//!   consumers: len, then per consumer its name, seen time (8 bytes LE ms),
//!     its PEL: len, then 16 raw bytes per ID (each must be in the group's PEL)
//! ```
//!
//! A node's listpack (`t_stream.c`) starts with the master entry — live count, deleted count,
//! the master field count and names, then `0` — followed by each entry: flags (1 deleted,
//! 2 same fields as the master), the ID as differences from the master ID, then either the
//! values (same fields) or the field count and field/value pairs, then the entry's element
//! count. Written nodes are this cache's emulated ones holding their live entries only
//! (deleted count 0); their master fields are the first entry's.
//!
//! Reading checks what the structures here rely on, beyond Redis's own checks: entries
//! ascending across the whole stream and each within its node's span, the stated length
//! equal to the live entries found, every ID at most the last ID, entries added at least the
//! length, and every pending entry owned by exactly one consumer.

use bytes::Bytes;

use super::{DumpError, ListpackWriter, Reader, put_len, put_string, read_listpack};
use crate::cache::resp::frame::parse_i64;
use crate::cache::stream::{ENTRIES_READ_UNKNOWN, Fields, Group, Pending, StreamId, StreamValue};

/// `RDB_TYPE_STREAM_LISTPACKS`: Redis 5.0–6.2.
pub(super) const TYPE_STREAM_LISTPACKS: u8 = 15;
/// `RDB_TYPE_STREAM_LISTPACKS_2`: Redis 7.0.
pub(super) const TYPE_STREAM_LISTPACKS_2: u8 = 19;

/// `STREAM_ITEM_FLAG_DELETED`.
const FLAG_DELETED: i64 = 1;
/// `STREAM_ITEM_FLAG_SAMEFIELDS`.
const FLAG_SAMEFIELDS: i64 = 2;
/// Bytes of a raw stream ID.
const RAW_ID_BYTES: usize = 16;
/// Fewest payload bytes a node takes: its 16-byte key as a string and a listpack.
const NODE_MIN_BYTES: usize = 1 + RAW_ID_BYTES + 1 + 7;
/// Fewest payload bytes a group's PEL entry takes: ID, delivery time, count.
const PEL_ENTRY_MIN_BYTES: usize = RAW_ID_BYTES + 8 + 1;
/// Fewest payload bytes a consumer takes: name, seen time, PEL length.
const CONSUMER_MIN_BYTES: usize = 1 + 8 + 1;
/// Fewest payload bytes a group takes: name, last ID, entries read, two lengths.
const GROUP_MIN_BYTES: usize = 1 + 2 + 1 + 2;

const BAD: DumpError = DumpError::Corrupt("stream listpack integrity check failed");

fn raw_id(id: StreamId) -> [u8; RAW_ID_BYTES] {
    let mut raw = [0u8; RAW_ID_BYTES];
    let be = id.ms.to_be_bytes().into_iter().chain(id.seq.to_be_bytes());
    for (d, b) in raw.iter_mut().zip(be) {
        *d = b;
    }
    raw
}

fn id_of_raw(raw: [u8; RAW_ID_BYTES]) -> StreamId {
    let (ms, seq) = raw.split_at(8);
    let word = |half: &[u8]| u64::from_be_bytes(half.try_into().unwrap_or_default());
    StreamId::new(word(ms), word(seq))
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_len(out, id.ms);
    put_len(out, id.seq);
}

fn put_time(out: &mut Vec<u8>, ms: u64) {
    out.extend_from_slice(&i64::try_from(ms).unwrap_or(i64::MAX).to_le_bytes());
}

fn lp_int(lp: &mut ListpackWriter, v: i64) {
    lp.push(v.to_string().as_bytes());
}

/// One node's listpack: the master entry from the first entry's fields, then every entry.
fn node_listpack(master: StreamId, entries: &[(StreamId, &Fields)]) -> Vec<u8> {
    let master_fields: Vec<&Bytes> = entries
        .first()
        .map(|(_, f)| f.iter().step_by(2).collect())
        .unwrap_or_default();
    let mut lp = ListpackWriter::new();
    lp_int(&mut lp, entries.len() as i64);
    lp_int(&mut lp, 0);
    lp_int(&mut lp, master_fields.len() as i64);
    for f in &master_fields {
        lp.push(f);
    }
    lp_int(&mut lp, 0);
    for (id, fields) in entries {
        let names = fields.iter().step_by(2);
        let same =
            fields.len() / 2 == master_fields.len() && names.eq(master_fields.iter().copied());
        let n = fields.len() / 2;
        // The differences as Redis stores them: unsigned subtraction, read back as signed.
        let ms_diff = id.ms.wrapping_sub(master.ms) as i64;
        let seq_diff = id.seq.wrapping_sub(master.seq) as i64;
        lp_int(&mut lp, if same { FLAG_SAMEFIELDS } else { 0 });
        lp_int(&mut lp, ms_diff);
        lp_int(&mut lp, seq_diff);
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                lp.push(v);
            }
            lp_int(&mut lp, n as i64 + 3);
        } else {
            lp_int(&mut lp, n as i64);
            for x in fields.iter() {
                lp.push(x);
            }
            lp_int(&mut lp, 2 * n as i64 + 4);
        }
    }
    lp.finish()
}

/// Writes `s` as `RDB_TYPE_STREAM_LISTPACKS_2` (type byte included).
pub(super) fn put_stream(out: &mut Vec<u8>, s: &StreamValue) {
    out.push(TYPE_STREAM_LISTPACKS_2);
    let nodes: Vec<_> = s.node_entries().collect();
    put_len(out, nodes.len() as u64);
    for (master, entries) in &nodes {
        put_string(out, &raw_id(*master));
        put_string(out, &node_listpack(*master, entries));
    }
    put_len(out, s.len() as u64);
    put_id(out, s.last_id);
    put_id(out, s.first_id);
    put_id(out, s.max_deleted);
    put_len(out, s.entries_added);
    put_len(out, s.groups().len() as u64);
    for (name, g) in s.groups() {
        put_string(out, name);
        put_id(out, g.last_id);
        // -1 (unknown) is written as Redis writes it: the 64-bit length u64::MAX.
        put_len(out, g.entries_read as u64);
        put_len(out, g.pel.len() as u64);
        for (id, p) in &g.pel {
            out.extend_from_slice(&raw_id(*id));
            put_time(out, p.delivery_time_ms);
            put_len(out, p.delivery_count);
        }
        put_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_string(out, cname);
            put_time(out, c.seen_time_ms);
            put_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&raw_id(*id));
            }
        }
    }
}

/// A length no larger than the payload could hold at `min_bytes` per item.
fn bounded(r: &Reader<'_>, n: u64, min_bytes: usize) -> Result<usize, DumpError> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n.saturating_mul(min_bytes) <= r.left())
        .ok_or(DumpError::Corrupt("count past the end of the payload"))
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId, DumpError> {
    Ok(StreamId::new(r.len()?, r.len()?))
}

fn read_time(r: &mut Reader<'_>) -> Result<u64, DumpError> {
    u64::try_from(i64::from_le_bytes(r.array()?))
        .map_err(|_| DumpError::Corrupt("negative stream time"))
}

/// A listpack entry that must be an integer.
fn int_at(items: &[Bytes], i: usize) -> Result<i64, DumpError> {
    items.get(i).and_then(|b| parse_i64(b)).ok_or(BAD)
}

/// One node: its entries (live ones) with the last ID appended and the count appended.
struct NodeRead {
    entries: Vec<(StreamId, Fields)>,
    last: StreamId,
    appended: usize,
}

/// Reads a node's listpack as `streamValidateListpackIntegrity` does in deep mode, resolving
/// each entry's ID and fields.
fn read_node(master: StreamId, lp: &[u8]) -> Result<NodeRead, DumpError> {
    let items = read_listpack(lp)?;
    if items.is_empty() {
        return Err(DumpError::Corrupt("empty listpack inside stream"));
    }
    let count = int_at(&items, 0)?;
    let deleted = int_at(&items, 1)?;
    let master_n = usize::try_from(int_at(&items, 2)?).map_err(|_| BAD)?;
    let names_end = 3usize.checked_add(master_n).ok_or(BAD)?;
    let master_fields = items.get(3..names_end).ok_or(BAD)?;
    if int_at(&items, names_end)? != 0 {
        return Err(BAD);
    }
    let total = count
        .checked_add(deleted)
        .filter(|&t| t >= 0 && count >= 0 && deleted >= 0)
        .ok_or(BAD)?;
    let total = usize::try_from(total).map_err(|_| BAD)?;
    let mut i = names_end + 1;
    let mut entries = Vec::new();
    let mut prev: Option<StreamId> = None;
    for _ in 0..total {
        let flags = int_at(&items, i)?;
        let ms = master.ms.wrapping_add(int_at(&items, i + 1)? as u64);
        let seq = master.seq.wrapping_add(int_at(&items, i + 2)? as u64);
        let id = StreamId::new(ms, seq);
        i += 3;
        let (fields, elements): (Fields, usize) = if flags & FLAG_SAMEFIELDS != 0 {
            let end = i.checked_add(master_n).ok_or(BAD)?;
            let values = items.get(i..end).ok_or(BAD)?;
            i = end;
            let fields = master_fields
                .iter()
                .zip(values)
                .flat_map(|(f, v)| [f.clone(), v.clone()])
                .collect();
            (fields, master_n + 3)
        } else {
            let n = usize::try_from(int_at(&items, i)?).map_err(|_| BAD)?;
            let pairs_end = n
                .checked_mul(2)
                .and_then(|k| k.checked_add(i + 1))
                .ok_or(BAD)?;
            let fields = items.get(i + 1..pairs_end).ok_or(BAD)?.into();
            i = pairs_end;
            (fields, 2 * n + 4)
        };
        if usize::try_from(int_at(&items, i)?).ok() != Some(elements) {
            return Err(BAD);
        }
        i += 1;
        if id < master || prev.is_some_and(|p| id <= p) {
            return Err(DumpError::Corrupt("stream entries out of order"));
        }
        prev = Some(id);
        if flags & FLAG_DELETED == 0 {
            entries.push((id, fields));
        }
    }
    if i != items.len() || i64::try_from(entries.len()).ok() != Some(count) {
        return Err(BAD);
    }
    Ok(NodeRead {
        entries,
        last: prev.unwrap_or(master),
        appended: total,
    })
}

/// Reads a stream object (after its type byte) of type `kind`.
pub(super) fn read_stream(r: &mut Reader<'_>, kind: u8) -> Result<StreamValue, DumpError> {
    let mut s = StreamValue::default();
    let n_nodes = r.len()?;
    let n_nodes = bounded(r, n_nodes, NODE_MIN_BYTES)?;
    // The previous node's master and last appended IDs: nodes ascend and never overlap.
    let mut prev: Option<(StreamId, StreamId)> = None;
    for _ in 0..n_nodes {
        let key: [u8; RAW_ID_BYTES] = r
            .string()?
            .try_into()
            .map_err(|_| DumpError::Corrupt("stream node key is not the size of a stream ID"))?;
        let master = id_of_raw(key);
        if prev.is_some_and(|(m, last)| m >= master || last >= master) {
            return Err(DumpError::Corrupt("stream nodes out of order"));
        }
        let node = read_node(master, &r.string()?)?;
        prev = Some((master, node.last));
        s.push_loaded_node(master, node.last, node.appended, node.entries);
    }
    let length = r.len()?;
    s.last_id = read_id(r)?;
    if kind == TYPE_STREAM_LISTPACKS_2 {
        // The first ID is the first entry's, as held; the stored one is read past.
        read_id(r)?;
        s.max_deleted = read_id(r)?;
        s.entries_added = r.len()?;
    } else {
        s.entries_added = length;
    }
    if length != s.len() as u64 {
        return Err(DumpError::Corrupt("stream length differs from its entries"));
    }
    if s.last_entry_id() > s.last_id || s.entries_added < length {
        return Err(DumpError::Corrupt(
            "stream metadata inconsistent with its entries",
        ));
    }
    let n_groups = r.len()?;
    let n_groups = bounded(r, n_groups, GROUP_MIN_BYTES)?;
    for _ in 0..n_groups {
        let name = Bytes::from(r.string()?);
        let last_id = read_id(r)?;
        let entries_read = if kind == TYPE_STREAM_LISTPACKS_2 {
            // Redis writes -1 (unknown) as the 64-bit length u64::MAX.
            let v = r.len()? as i64;
            if v < ENTRIES_READ_UNKNOWN {
                return Err(DumpError::Corrupt("negative group entries-read"));
            }
            v
        } else {
            s.distance_from_first_ever(last_id)
        };
        let mut g = Group::new(last_id, entries_read);
        let n_pel = r.len()?;
        for _ in 0..bounded(r, n_pel, PEL_ENTRY_MIN_BYTES)? {
            let id = id_of_raw(r.array()?);
            let delivery_time_ms = read_time(r)?;
            let delivery_count = r.len()?;
            // Owned by nobody until its consumer is read.
            let nack = Pending {
                consumer: Bytes::new(),
                delivery_time_ms,
                delivery_count,
            };
            if g.pel.insert(id, nack).is_some() {
                return Err(DumpError::Corrupt("duplicated group PEL entry"));
            }
        }
        let mut owned = std::collections::BTreeSet::new();
        let n_consumers = r.len()?;
        for _ in 0..bounded(r, n_consumers, CONSUMER_MIN_BYTES)? {
            let cname = Bytes::from(r.string()?);
            let seen = read_time(r)?;
            if g.consumers.contains_key(&cname) {
                return Err(DumpError::Corrupt("duplicate stream consumer"));
            }
            g.consumer_mut(&cname, seen);
            let n_own = r.len()?;
            for _ in 0..bounded(r, n_own, RAW_ID_BYTES)? {
                let id = id_of_raw(r.array()?);
                let p = g
                    .pel
                    .get_mut(&id)
                    .ok_or(DumpError::Corrupt("consumer entry not in the group PEL"))?;
                if !owned.insert(id) {
                    return Err(DumpError::Corrupt("group PEL entry owned twice"));
                }
                p.consumer = cname.clone();
                g.consumer_mut(&cname, seen).pel.insert(id);
            }
        }
        if owned.len() != g.pel.len() {
            return Err(DumpError::Corrupt("group PEL entry without consumer"));
        }
        if s.groups().contains_key(&name) {
            return Err(DumpError::Corrupt("duplicated consumer group name"));
        }
        s.put_group(name, g);
    }
    Ok(s)
}
