//! Redis 7.0.15's key specifications (its `src/commands/*.json`) of the commands this server
//! has, and what COMMAND GETKEYS and GETKEYSANDFLAGS answer from them: Redis's
//! `getKeysFromCommandWithSpecs` — the specs when every key's flags are fixed, otherwise (a
//! spec the arguments do not fit, an unknown or incomplete one, flags that depend on the
//! arguments) the command's own key finder (`setGetKeys`, `sortGetKeys`, …); and COMMAND
//! INFO's key specifications.

use super::command;
use super::frame::Frame;

/// The key is only read.
const RO: u16 = 1;
/// The key is read and written.
const RW: u16 = 1 << 1;
/// The key is overwritten without being read.
const OW: u16 = 1 << 2;
/// The key is removed.
const RM: u16 = 1 << 3;
/// The command returns, copies or otherwise uses the value.
const ACCESS: u16 = 1 << 4;
/// The value is updated or overwritten.
const UPDATE: u16 = 1 << 5;
/// Data is added to the value.
const INSERT: u16 = 1 << 6;
/// Data is removed from the value.
const DELETE: u16 = 1 << 7;
/// The argument is not a key (a shard channel) though located like one.
const NOT_KEY: u16 = 1 << 8;
/// The spec may miss keys: the command's own finder is used.
const INCOMPLETE: u16 = 1 << 9;
/// The flags depend on the arguments: the command's own finder is used.
const VARIABLE_FLAGS: u16 = 1 << 10;

/// Flag names in the order GETKEYSANDFLAGS and COMMAND INFO give them.
const FLAG_NAMES: [(u16, &str); 11] = [
    (RO, "RO"),
    (RW, "RW"),
    (OW, "OW"),
    (RM, "RM"),
    (ACCESS, "access"),
    (UPDATE, "update"),
    (INSERT, "insert"),
    (DELETE, "delete"),
    (NOT_KEY, "not_key"),
    (INCOMPLETE, "incomplete"),
    (VARIABLE_FLAGS, "variable_flags"),
];

/// Where a spec's keys start.
#[derive(Debug)]
enum Begin {
    /// At this argument.
    Index(i32),
    /// After this keyword, searched from `startfrom` (from the end when negative).
    Keyword(&'static str, i32),
    /// Only the command's finder knows.
    Unknown,
}

/// How many keys follow the start.
#[derive(Debug)]
enum Find {
    /// Up to `lastkey` past the start (from the end when negative; with `limit`, that part of
    /// the rest), every `step`.
    Range { lastkey: i32, step: i32, limit: i32 },
    /// A key count at `keynumidx` past the start, the keys from `firstkey` past it.
    Keynum {
        keynumidx: i32,
        firstkey: i32,
        step: i32,
    },
    /// Only the command's finder knows.
    Unknown,
}

/// One key specification.
#[derive(Debug)]
struct KeySpec {
    /// Redis's remark on the spec, which COMMAND INFO gives.
    notes: Option<&'static str>,
    flags: u16,
    begin: Begin,
    find: Find,
}

/// A command's own key finder (Redis's `getkeys_proc`).
#[derive(Debug)]
enum Proc {
    Set,
    Bitfield,
    Sort,
    SortRo,
    Georadius,
    Xread,
    /// Redis's `genericGetKeys`: a key count at `count`, the keys from `first`, and a
    /// destination at `store` (0: none).
    Counted {
        store: usize,
        count: usize,
        first: usize,
    },
}

/// A command with keys.
#[derive(Debug)]
struct Entry {
    name: &'static str,
    arity: i32,
    /// Redis's `no_mandatory_keys` flag: no keys is an answer, not an error.
    no_mandatory_keys: bool,
    proc_: Option<Proc>,
    specs: &'static [KeySpec],
}

/// The entry of `full_name`; none for a command without keys.
fn entry(full_name: &str) -> Option<&'static Entry> {
    super::by_name(ENTRIES, full_name, |e| e.name)
}

/// The most common search: the one key at the start.
const ONE: Find = Find::Range {
    lastkey: 0,
    step: 1,
    limit: 0,
};

/// A key GETKEYS found: its argument index (0 is the command's name) and its flags.
pub(crate) type FoundKey = (usize, u16);

/// The keys of the command `args` calls (`args[0]` its name), or Redis's error text.
///
/// # Errors
/// Redis's texts: an unknown command or subcommand, one without keys, a wrong argument count,
/// arguments that name no key.
pub(crate) fn getkeys(args: &[&[u8]]) -> Result<Vec<FoundKey>, &'static str> {
    let Some(spec) = args.first().and_then(|n| command::lookup(n)) else {
        return Err("ERR Invalid command specified");
    };
    let mut name = spec.name.to_owned();
    // A container's subcommand is the command (`memory usage`), as Redis's `lookupCommand`.
    if let Some(sub) = args.get(1)
        && command::is_container(spec.name)
    {
        name = format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        );
        if !command::is_full_name(&name) {
            return Err("ERR Invalid command specified");
        }
    }
    let Some(entry) = entry(&name) else {
        return Err("ERR The command has no key arguments");
    };
    if entry.proc_.is_none() && entry.specs.iter().all(|s| s.flags & NOT_KEY != 0) {
        return Err("ERR The command has no key arguments");
    }
    let argc = i32::try_from(args.len()).unwrap_or(i32::MAX);
    if (entry.arity > 0 && entry.arity != argc) || argc < -entry.arity {
        return Err("ERR Invalid number of arguments specified for command");
    }
    let keys = find_keys(entry, args);
    if keys.is_empty() && !entry.no_mandatory_keys {
        return Err("ERR Invalid arguments specified for command");
    }
    Ok(keys)
}

/// The names of `flags`, in Redis's order.
pub(crate) fn flag_names(flags: u16) -> impl Iterator<Item = &'static str> {
    FLAG_NAMES
        .iter()
        .filter(move |(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
}

/// COMMAND INFO's key specifications of the command `full_name` (`get`, `memory|usage`), as
/// Redis's `addReplyCommandKeySpecs`; none for a command without keys.
pub(crate) fn info(full_name: &str) -> Frame {
    let specs = entry(full_name).map_or(&[][..], |e| e.specs);
    let text = |s: &str| Frame::bulk(s.as_bytes());
    let int = |n: i32| Frame::Integer(i64::from(n));
    let typed = |kind: &str, spec: Vec<(Frame, Frame)>| {
        Frame::Map(vec![
            (text("type"), text(kind)),
            (text("spec"), Frame::Map(spec)),
        ])
    };
    Frame::Set(
        specs
            .iter()
            .map(|s| {
                let mut map = Vec::with_capacity(4);
                if let Some(notes) = s.notes {
                    map.push((text("notes"), text(notes)));
                }
                map.push((
                    text("flags"),
                    Frame::Set(flag_names(s.flags).map(Frame::simple).collect()),
                ));
                let begin = match s.begin {
                    Begin::Index(pos) => typed("index", vec![(text("index"), int(pos))]),
                    Begin::Keyword(keyword, startfrom) => typed(
                        "keyword",
                        vec![
                            (text("keyword"), text(keyword)),
                            (text("startfrom"), int(startfrom)),
                        ],
                    ),
                    Begin::Unknown => typed("unknown", Vec::new()),
                };
                map.push((text("begin_search"), begin));
                let find = match s.find {
                    Find::Range {
                        lastkey,
                        step,
                        limit,
                    } => typed(
                        "range",
                        vec![
                            (text("lastkey"), int(lastkey)),
                            (text("keystep"), int(step)),
                            (text("limit"), int(limit)),
                        ],
                    ),
                    Find::Keynum {
                        keynumidx,
                        firstkey,
                        step,
                    } => typed(
                        "keynum",
                        vec![
                            (text("keynumidx"), int(keynumidx)),
                            (text("firstkey"), int(firstkey)),
                            (text("keystep"), int(step)),
                        ],
                    ),
                    Find::Unknown => typed("unknown", Vec::new()),
                };
                map.push((text("find_keys"), find));
                Frame::Map(map)
            })
            .collect(),
    )
}

/// COMMAND INFO's first key, last key and step of the command `full_name`, and whether it has
/// `movablekeys`: Redis's `populateCommandLegacyRangeSpec`, which joins the consecutive
/// one-step index ranges and flags a command movable when a spec is anything else (a keyword,
/// a key count, a step, an incomplete spec). A last key below 0 counts from the end.
pub(crate) fn legacy_range(full_name: &str) -> (i32, i32, i32, bool) {
    let Some(specs) = entry(full_name).map(|e| e.specs).filter(|s| !s.is_empty()) else {
        return (0, 0, 0, false);
    };
    if let [
        KeySpec {
            flags,
            begin: Begin::Index(pos),
            find: Find::Range { lastkey, step, .. },
            ..
        },
    ] = specs
    {
        // One range is the triple as it is (MSET's step of 2 included).
        return (
            *pos,
            last_key(*pos, *lastkey),
            *step,
            flags & INCOMPLETE != 0,
        );
    }
    let mut movable = false;
    let mut first = i32::MAX;
    // Compared as unsigned, as Redis does, so a last key counted from the end wins.
    let mut last: u32 = 0;
    let mut prev_last: u32 = 0;
    for s in specs {
        let (Begin::Index(pos), Find::Range { lastkey, step, .. }) = (&s.begin, &s.find) else {
            movable = true;
            continue;
        };
        if *step != 1 || (prev_last != 0 && prev_last != (pos - 1).cast_unsigned()) {
            movable = true;
            continue;
        }
        movable |= s.flags & INCOMPLETE != 0;
        first = first.min(*pos);
        last = last.max(last_key(*pos, *lastkey).cast_unsigned());
        prev_last = last;
    }
    if first == i32::MAX {
        return (0, 0, 0, true);
    }
    (first, last.cast_signed(), 1, movable)
}

/// A range's last key as COMMAND INFO gives it: its index when `lastkey` counts from the begin
/// search's `pos`, or `lastkey` itself when it counts from the end (below 0).
fn last_key(pos: i32, lastkey: i32) -> i32 {
    if lastkey >= 0 { lastkey + pos } else { lastkey }
}

/// Redis's `getKeysFromCommandWithSpecs`.
fn find_keys(entry: &Entry, args: &[&[u8]]) -> Vec<FoundKey> {
    let has_key_spec = entry.specs.iter().any(|s| s.flags & NOT_KEY == 0);
    let variable = entry.specs.iter().any(|s| s.flags & VARIABLE_FLAGS != 0);
    if has_key_spec
        && !variable
        && let Some(keys) = keys_by_specs(entry.specs, args)
    {
        return keys;
    }
    entry
        .proc_
        .as_ref()
        .map(|p| keys_by_proc(p, args))
        .unwrap_or_default()
}

/// Redis's `getKeysUsingKeySpecs`; `None` when a spec does not fit the arguments or cannot
/// say (the command's finder decides then).
fn keys_by_specs(specs: &[KeySpec], args: &[&[u8]]) -> Option<Vec<FoundKey>> {
    let argc = i64::try_from(args.len()).ok()?;
    let arg = |i: i64| usize::try_from(i).ok().and_then(|i| args.get(i).copied());
    let mut keys = Vec::new();
    for spec in specs.iter().filter(|s| s.flags & NOT_KEY == 0) {
        let mut first = match spec.begin {
            Begin::Index(pos) => i64::from(pos),
            Begin::Keyword(keyword, startfrom) => {
                let startfrom = i64::from(startfrom);
                let (start, end) = if startfrom > 0 {
                    (startfrom, argc - 1)
                } else {
                    (argc + startfrom, 1)
                };
                let mut i = start;
                let mut found = 0;
                while i != end {
                    let Some(a) = arg(i).filter(|_| i >= 1) else {
                        break;
                    };
                    if a.eq_ignore_ascii_case(keyword.as_bytes()) {
                        found = i + 1;
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            Begin::Unknown => return None,
        };
        let (last, step) = match spec.find {
            Find::Range {
                lastkey,
                step,
                limit,
            } => {
                let lastkey = i64::from(lastkey);
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / i64::from(limit) + lastkey)
                };
                (last, i64::from(step))
            }
            Find::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                // Redis compares the relative index with the argument count, as here.
                if i64::from(keynumidx) >= argc {
                    return None;
                }
                let count = arg(first + i64::from(keynumidx))
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse::<i64>().ok())
                    .filter(|n| *n >= 0)?;
                first += i64::from(firstkey);
                // A count past the arguments (any i64 a client sends) is no key range.
                (first.checked_add(count)? - 1, i64::from(step))
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc || step < 1 {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push((usize::try_from(i).ok()?, spec.flags));
            i += step;
        }
        if spec.flags & INCOMPLETE != 0 {
            return None;
        }
    }
    Some(keys)
}

/// A command's own key finder, as Redis's `db.c` has it (flags only where Redis sets them).
fn keys_by_proc(proc_: &Proc, args: &[&[u8]]) -> Vec<FoundKey> {
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    let argc = args.len();
    match proc_ {
        Proc::Set => {
            let get = (3..argc).any(|i| is(i, "get"));
            vec![(
                1,
                if get {
                    RW | ACCESS | UPDATE
                } else {
                    OW | UPDATE
                },
            )]
        }
        Proc::Bitfield => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let left = argc - i - 1;
                if is(i, "get") && left >= 2 {
                    i += 2;
                } else if (is(i, "set") || is(i, "incrby")) && left >= 3 {
                    readonly = false;
                    break;
                } else if is(i, "overflow") && left >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            vec![(
                1,
                if readonly {
                    RO | ACCESS
                } else {
                    RW | ACCESS | UPDATE
                },
            )]
        }
        Proc::SortRo => vec![(1, RO | ACCESS)],
        Proc::Sort => {
            let mut keys = vec![(1, RO | ACCESS)];
            let mut store = None;
            let mut i = 2;
            while i < argc {
                if is(i, "limit") {
                    i += 2;
                } else if is(i, "get") || is(i, "by") {
                    i += 1;
                } else if is(i, "store") && i + 1 < argc {
                    // The last STORE wins, as in SORT itself.
                    store = Some(i + 1);
                }
                i += 1;
            }
            keys.extend(store.map(|at| (at, OW | UPDATE)));
            keys
        }
        Proc::Georadius => {
            let mut store = None;
            let mut i = 5;
            while i < argc {
                if (is(i, "store") || is(i, "storedist")) && i + 1 < argc {
                    store = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            let mut keys = vec![(1, 0)];
            keys.extend(store.map(|at| (at, 0)));
            keys
        }
        Proc::Xread => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                if is(i, "block") || is(i, "count") {
                    i += 1;
                } else if is(i, "group") {
                    i += 2;
                } else if is(i, "streams") {
                    streams = Some(i);
                    break;
                } else if !is(i, "noack") {
                    break;
                }
                i += 1;
            }
            let Some(at) = streams else {
                return Vec::new();
            };
            let n = argc - at - 1;
            if n == 0 || !n.is_multiple_of(2) {
                return Vec::new();
            }
            (at + 1..at + 1 + n / 2).map(|i| (i, 0)).collect()
        }
        Proc::Counted {
            store,
            count,
            first,
        } => {
            let n = args.get(*count).map_or(0, |a| atoi(a));
            let fits = usize::try_from(n)
                .ok()
                .filter(|n| *n >= 1 && *n <= argc.saturating_sub(*first));
            let Some(n) = fits else {
                return Vec::new();
            };
            let mut keys: Vec<FoundKey> = (*first..*first + n).map(|i| (i, 0)).collect();
            if *store > 0 {
                keys.push((*store, 0));
            }
            keys
        }
    }
}

/// C's `atoi`: leading blanks, a sign, then digits up to the first non-digit (0 for none;
/// saturating where C's would overflow).
fn atoi(s: &[u8]) -> i64 {
    let mut rest = s
        .iter()
        .skip_while(|b| b" \t\n\x0b\x0c\r".contains(b))
        .peekable();
    let negative = match rest.peek() {
        Some(b'-') => {
            rest.next();
            true
        }
        Some(b'+') => {
            rest.next();
            false
        }
        _ => false,
    };
    let mut n: i64 = 0;
    for b in rest.take_while(|b| b.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if negative { -n } else { n }
}

/// Every command of this server with keys (or its own key finder), generated from Redis
/// 7.0.15's `src/commands/*.json`: name, arity, `no_mandatory_keys`, finder, key specs.
#[rustfmt::skip]
const ENTRIES: &[Entry] = &[
    Entry { name: "append", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "bitcount", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "bitfield", arity: -2, no_mandatory_keys: false, proc_: Some(Proc::Bitfield), specs: &[KeySpec { notes: Some("This command allows both access and modification of the key"), flags: RW | UPDATE | ACCESS | VARIABLE_FLAGS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "bitfield_ro", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "bitop", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(2), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(3), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "bitpos", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "blmove", arity: 6, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "blmpop", arity: -5, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "blpop", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: Find::Range { lastkey: -2, step: 1, limit: 0 } }] },
    Entry { name: "brpop", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: Find::Range { lastkey: -2, step: 1, limit: 0 } }] },
    Entry { name: "brpoplpush", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "bzmpop", arity: -5, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "bzpopmax", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: Find::Range { lastkey: -2, step: 1, limit: 0 } }] },
    Entry { name: "bzpopmin", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: Find::Range { lastkey: -2, step: 1, limit: 0 } }] },
    Entry { name: "copy", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "decr", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "decrby", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "del", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RM | DELETE, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "dump", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "eval", arity: -3, no_mandatory_keys: true, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: Some("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"), flags: RW | ACCESS | UPDATE, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "eval_ro", arity: -3, no_mandatory_keys: true, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: Some("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"), flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "evalsha", arity: -3, no_mandatory_keys: true, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "evalsha_ro", arity: -3, no_mandatory_keys: true, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "exists", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "expire", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "expireat", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "expiretime", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "fcall", arity: -3, no_mandatory_keys: true, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: Some("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"), flags: RW | ACCESS | UPDATE, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "fcall_ro", arity: -3, no_mandatory_keys: true, proc_: Some(Proc::Counted { store: 0, count: 2, first: 3 }), specs: &[KeySpec { notes: Some("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"), flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "geoadd", arity: -5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "geodist", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "geohash", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "geopos", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "georadius", arity: -6, no_mandatory_keys: false, proc_: Some(Proc::Georadius), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Keyword("STORE", 6), find: ONE }, KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Keyword("STOREDIST", 6), find: ONE }] },
    Entry { name: "georadius_ro", arity: -6, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "georadiusbymember", arity: -5, no_mandatory_keys: false, proc_: Some(Proc::Georadius), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Keyword("STORE", 5), find: ONE }, KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Keyword("STOREDIST", 5), find: ONE }] },
    Entry { name: "georadiusbymember_ro", arity: -5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "geosearch", arity: -7, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "geosearchstore", arity: -8, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "get", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "getbit", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "getdel", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "getex", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: Some("RW and UPDATE because it changes the TTL"), flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "getrange", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "getset", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hdel", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hexists", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hget", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hgetall", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hincrby", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hincrbyfloat", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hkeys", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hlen", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hmget", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hmset", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hrandfield", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hscan", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hset", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hsetnx", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hstrlen", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "hvals", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "incr", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "incrby", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "incrbyfloat", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lcs", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Range { lastkey: 1, step: 1, limit: 0 } }] },
    Entry { name: "lindex", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "linsert", arity: 5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "llen", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lmove", arity: 5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "lmpop", arity: -4, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 1, first: 2 }), specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "lpop", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lpos", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lpush", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lpushx", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lrange", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lrem", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "lset", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "ltrim", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "memory|usage", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "mget", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "move", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "mset", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 2, limit: 0 } }] },
    Entry { name: "msetnx", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | INSERT, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 2, limit: 0 } }] },
    Entry { name: "object|encoding", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "object|freq", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "object|idletime", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "object|refcount", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "persist", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "pexpire", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "pexpireat", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "pexpiretime", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "pfadd", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "pfcount", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: Some("RW because it may change the internal representation of the key, and propagate to replicas"), flags: RW | ACCESS, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "pfdebug", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "pfmerge", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | INSERT, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "psetex", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "pttl", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "rename", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "renamenx", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: OW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "restore", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "rpop", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "rpoplpush", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "rpush", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "rpushx", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "sadd", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "scard", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "sdiff", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "sdiffstore", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "set", arity: -3, no_mandatory_keys: false, proc_: Some(Proc::Set), specs: &[KeySpec { notes: Some("RW and ACCESS due to the optional `GET` argument"), flags: RW | ACCESS | UPDATE | VARIABLE_FLAGS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "setbit", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "setex", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "setnx", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | INSERT, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "setrange", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "sinter", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "sintercard", arity: -3, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 1, first: 2 }), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "sinterstore", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "sismember", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "smembers", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "smismember", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "smove", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "sort", arity: -2, no_mandatory_keys: false, proc_: Some(Proc::Sort), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }, KeySpec { notes: Some("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"), flags: RO | ACCESS, begin: Begin::Unknown, find: Find::Unknown }, KeySpec { notes: Some("For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array"), flags: OW | UPDATE, begin: Begin::Unknown, find: Find::Unknown }] },
    Entry { name: "sort_ro", arity: -2, no_mandatory_keys: false, proc_: Some(Proc::SortRo), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }, KeySpec { notes: Some("For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"), flags: RO | ACCESS, begin: Begin::Unknown, find: Find::Unknown }] },
    Entry { name: "spop", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "spublish", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: NOT_KEY, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "srandmember", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "srem", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "sscan", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "ssubscribe", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: NOT_KEY, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "strlen", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "substr", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "sunion", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "sunionstore", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "sunsubscribe", arity: -1, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: NOT_KEY, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "touch", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "ttl", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "type", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "unlink", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RM | DELETE, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "watch", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: Find::Range { lastkey: -1, step: 1, limit: 0 } }] },
    Entry { name: "xack", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xadd", arity: -5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: Some("UPDATE instead of INSERT because of the optional trimming feature"), flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xautoclaim", arity: -6, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xclaim", arity: -6, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xdel", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xgroup|create", arity: -5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xgroup|createconsumer", arity: 5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | INSERT, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xgroup|delconsumer", arity: 5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xgroup|destroy", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xgroup|setid", arity: -5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xinfo|consumers", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xinfo|groups", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xinfo|stream", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "xlen", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xpending", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xrange", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xread", arity: -4, no_mandatory_keys: false, proc_: Some(Proc::Xread), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Keyword("STREAMS", 1), find: Find::Range { lastkey: -1, step: 1, limit: 2 } }] },
    Entry { name: "xreadgroup", arity: -7, no_mandatory_keys: false, proc_: Some(Proc::Xread), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Keyword("STREAMS", 4), find: Find::Range { lastkey: -1, step: 1, limit: 2 } }] },
    Entry { name: "xrevrange", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xsetid", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "xtrim", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zadd", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zcard", arity: 2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zcount", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zdiff", arity: -3, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 1, first: 2 }), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "zdiffstore", arity: -4, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 1, count: 2, first: 3 }), specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "zincrby", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zinter", arity: -3, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 1, first: 2 }), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "zintercard", arity: -3, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 1, first: 2 }), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "zinterstore", arity: -4, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 1, count: 2, first: 3 }), specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "zlexcount", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zmpop", arity: -4, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 1, first: 2 }), specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "zmscore", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zpopmax", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zpopmin", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrandmember", arity: -2, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrange", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrangebylex", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrangebyscore", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrangestore", arity: -5, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: ONE }] },
    Entry { name: "zrank", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrem", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zremrangebylex", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zremrangebyrank", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zremrangebyscore", arity: 4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RW | DELETE, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrevrange", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrevrangebylex", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrevrangebyscore", arity: -4, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zrevrank", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zscan", arity: -3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zscore", arity: 3, no_mandatory_keys: false, proc_: None, specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: ONE }] },
    Entry { name: "zunion", arity: -3, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 0, count: 1, first: 2 }), specs: &[KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(1), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
    Entry { name: "zunionstore", arity: -4, no_mandatory_keys: false, proc_: Some(Proc::Counted { store: 1, count: 2, first: 3 }), specs: &[KeySpec { notes: None, flags: OW | UPDATE, begin: Begin::Index(1), find: ONE }, KeySpec { notes: None, flags: RO | ACCESS, begin: Begin::Index(2), find: Find::Keynum { keynumidx: 0, firstkey: 1, step: 1 } }] },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_a_command_here_with_redis_arity() {
        let names = command::full_names();
        for e in ENTRIES {
            assert!(
                names.iter().any(|n| n == e.name),
                "{} is not a command here",
                e.name
            );
            if !e.name.contains('|') {
                let spec = command::lookup(e.name.as_bytes()).map(|s| s.arity);
                assert_eq!(spec, Some(e.arity), "{}", e.name);
            }
        }
    }

    #[test]
    fn the_generated_tables_are_sorted_by_name_for_their_binary_searches() {
        assert!(ENTRIES.windows(2).all(|w| w[0].name < w[1].name));
        assert!(super::super::cmdflags::names().is_sorted_by(|a, b| a < b));
        assert!(super::super::cmddocs::names().is_sorted_by(|a, b| a < b));
    }

    #[test]
    fn atoi_reads_as_c_does() {
        for (s, n) in [
            (&b"12"[..], 12),
            (b"  -3x", -3),
            (b"+7", 7),
            (b"x1", 0),
            (b"", 0),
            (b"99999999999999999999999", i64::MAX),
        ] {
            assert_eq!(atoi(s), n, "{s:?}");
        }
    }
}
