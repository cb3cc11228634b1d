//! The command table: every command's name, arity, key positions, flags and handler, and the
//! exact error texts Redis gives for unknown commands and wrong arity.

use std::iter::StepBy;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use hashbrown::HashMap;

use crate::cache::Inner;
use crate::cache::cmd::{
    bits, geo, hash, hll, keys, list, server, set, sort, stream, strings, zset,
};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::Frame;
use crate::cache::script;

/// A command implementation. `args[0]` is the command name as sent; the arguments borrow the
/// connection's read buffer, so a handler that stores one copies exactly its bytes.
pub(crate) type Handler = fn(&mut Ctx<'_>, &Inner, &[&[u8]]) -> Frame;

/// How a command is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Locks the shards of its declared keys under the shared gate.
    Keyed,
    /// Takes the whole keyspace exclusively.
    Exclusive,
    /// Needs connection state; the RESP server answers it.
    Connection,
    /// A blocking command: the server retries its handler until it answers or times out.
    Blocking,
}

/// One command's table entry.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Lower-case name.
    pub(crate) name: &'static str,
    /// Redis arity: positive is exact, negative is a minimum.
    pub(crate) arity: i32,
    /// Index of the first key (0: none).
    pub(crate) first: i32,
    /// Index of the last key (negative counts from the end).
    pub(crate) last: i32,
    /// Step between keys.
    pub(crate) step: i32,
    /// Writes data (counts for MULTI queueing, WATCH).
    pub(crate) write: bool,
    /// May grow memory: refused with OOM over `maxmemory` (Redis's `DENYOOM` flag, as Redis
    /// 7.0.15's command table sets it; deletions, pops, EXPIRE, RENAME and the like still run).
    /// A container's is set when some subcommand has it ([`Spec::denies_oom`] tells which).
    pub(crate) denyoom: bool,
    /// How it runs.
    pub(crate) mode: Mode,
    /// The implementation.
    pub(crate) handler: Handler,
}

macro_rules! specs {
    ($( $name:literal $arity:literal $first:literal $last:literal $step:literal $write:ident $mode:ident $handler:path ;)*) => {
        &[ $( Spec { name: $name, arity: $arity, first: $first, last: $last, step: $step, write: specs!(@w $write), denyoom: specs!(@o $write), mode: Mode::$mode, handler: $handler }, )* ]
    };
    // `r` reads, `w` writes, `o` writes and may grow memory (DENYOOM).
    (@w o) => { true };
    (@w w) => { true };
    (@w r) => { false };
    (@o o) => { true };
    (@o w) => { false };
    (@o r) => { false };
}

static SPECS: &[Spec] = specs! {
    "get" 2 1 1 1 r Keyed strings::get;
    "set" -3 1 1 1 o Keyed strings::set;
    "setnx" 3 1 1 1 o Keyed strings::setnx;
    "setex" 4 1 1 1 o Keyed strings::setex;
    "psetex" 4 1 1 1 o Keyed strings::setex;
    "getex" -2 1 1 1 w Keyed strings::getex;
    "getdel" 2 1 1 1 w Keyed strings::getdel;
    "getset" 3 1 1 1 o Keyed strings::getset;
    "mget" -2 1 -1 1 r Keyed strings::mget;
    "mset" -3 1 -1 2 o Keyed strings::mset;
    "msetnx" -3 1 -1 2 o Keyed strings::mset;
    "append" 3 1 1 1 o Keyed strings::append;
    "strlen" 2 1 1 1 r Keyed strings::strlen;
    "getrange" 4 1 1 1 r Keyed strings::getrange;
    "substr" 4 1 1 1 r Keyed strings::getrange;
    "setrange" 4 1 1 1 o Keyed strings::setrange;
    "incr" 2 1 1 1 o Keyed strings::incr;
    "decr" 2 1 1 1 o Keyed strings::incr;
    "incrby" 3 1 1 1 o Keyed strings::incr;
    "decrby" 3 1 1 1 o Keyed strings::incr;
    "incrbyfloat" 3 1 1 1 o Keyed strings::incrbyfloat;
    "setbit" 4 1 1 1 o Keyed strings::setbit;
    "pfadd" -2 1 1 1 o Keyed hll::pfadd;
    "pfcount" -2 1 -1 1 r Keyed hll::pfcount;
    "pfmerge" -2 1 -1 1 o Keyed hll::pfmerge;
    "pfdebug" 3 2 2 1 o Keyed hll::pfdebug;
    "getbit" 3 1 1 1 r Keyed strings::getbit;
    "bitcount" -2 1 1 1 r Keyed bits::bitcount;
    "bitpos" -3 1 1 1 r Keyed bits::bitpos;
    "bitop" -4 2 -1 1 o Keyed bits::bitop;
    "bitfield" -2 1 1 1 o Keyed bits::bitfield;
    "bitfield_ro" -2 1 1 1 r Keyed bits::bitfield_ro;
    "lcs" -3 1 2 1 r Keyed strings::lcs;
    "del" -2 1 -1 1 w Keyed keys::del;
    "unlink" -2 1 -1 1 w Keyed keys::del;
    "exists" -2 1 -1 1 r Keyed keys::exists;
    "touch" -2 1 -1 1 r Keyed keys::touch;
    "type" 2 1 1 1 r Keyed keys::type_;
    "ttl" 2 1 1 1 r Keyed keys::ttl;
    "pttl" 2 1 1 1 r Keyed keys::ttl;
    "expiretime" 2 1 1 1 r Keyed keys::ttl;
    "pexpiretime" 2 1 1 1 r Keyed keys::ttl;
    "expire" -3 1 1 1 w Keyed keys::expire;
    "pexpire" -3 1 1 1 w Keyed keys::expire;
    "expireat" -3 1 1 1 w Keyed keys::expire;
    "pexpireat" -3 1 1 1 w Keyed keys::expire;
    "persist" 2 1 1 1 w Keyed keys::persist;
    "rename" 3 1 2 1 w Keyed keys::rename;
    "renamenx" 3 1 2 1 w Keyed keys::rename;
    "keys" 2 0 0 0 r Exclusive keys::keys;
    "scan" -2 0 0 0 r Exclusive keys::scan;
    "randomkey" 1 0 0 0 r Exclusive keys::randomkey;
    "dbsize" 1 0 0 0 r Exclusive keys::dbsize;
    "flushdb" -1 0 0 0 w Exclusive keys::flushdb;
    "flushall" -1 0 0 0 w Exclusive keys::flushall;
    "swapdb" 3 0 0 0 w Exclusive keys::swapdb;
    "move" 3 1 1 1 w Exclusive keys::move_;
    "copy" -3 1 2 1 o Exclusive keys::copy;
    "dump" 2 1 1 1 r Keyed keys::dump;
    "restore" -4 1 1 1 o Keyed keys::restore;
    "object" -2 2 2 1 r Keyed keys::object;
    "memory" -2 2 2 1 r Keyed keys::memory;
    "hset" -4 1 1 1 o Keyed hash::hset;
    "hmset" -4 1 1 1 o Keyed hash::hset;
    "hsetnx" 4 1 1 1 o Keyed hash::hsetnx;
    "hget" 3 1 1 1 r Keyed hash::hget;
    "hmget" -3 1 1 1 r Keyed hash::hmget;
    "hdel" -3 1 1 1 w Keyed hash::hdel;
    "hlen" 2 1 1 1 r Keyed hash::hlen;
    "hstrlen" 3 1 1 1 r Keyed hash::hstrlen;
    "hexists" 3 1 1 1 r Keyed hash::hexists;
    "hgetall" 2 1 1 1 r Keyed hash::hgetall;
    "hkeys" 2 1 1 1 r Keyed hash::hgetall;
    "hvals" 2 1 1 1 r Keyed hash::hgetall;
    "hincrby" 4 1 1 1 o Keyed hash::hincrby;
    "hincrbyfloat" 4 1 1 1 o Keyed hash::hincrbyfloat;
    "hrandfield" -2 1 1 1 r Keyed hash::hrandfield;
    "hscan" -3 1 1 1 r Keyed hash::hscan;
    "lpush" -3 1 1 1 o Keyed list::push;
    "rpush" -3 1 1 1 o Keyed list::push;
    "lpushx" -3 1 1 1 o Keyed list::push;
    "rpushx" -3 1 1 1 o Keyed list::push;
    "lpop" -2 1 1 1 w Keyed list::pop;
    "rpop" -2 1 1 1 w Keyed list::pop;
    "llen" 2 1 1 1 r Keyed list::llen;
    "lrange" 4 1 1 1 r Keyed list::lrange;
    "lindex" 3 1 1 1 r Keyed list::lindex;
    "lset" 4 1 1 1 o Keyed list::lset;
    "linsert" 5 1 1 1 o Keyed list::linsert;
    "lrem" 4 1 1 1 w Keyed list::lrem;
    "ltrim" 4 1 1 1 w Keyed list::ltrim;
    "lpos" -3 1 1 1 r Keyed list::lpos;
    "lmove" 5 1 2 1 o Keyed list::lmove;
    "rpoplpush" 3 1 2 1 o Keyed list::rpoplpush;
    "lmpop" -4 0 0 0 w Exclusive list::lmpop;
    "sort" -2 1 1 1 o Exclusive sort::sort;
    "sort_ro" -2 1 1 1 r Exclusive sort::sort;
    "blpop" -3 1 -2 1 w Blocking list::bpop_try;
    "brpop" -3 1 -2 1 w Blocking list::bpop_try;
    "blmove" 6 1 2 1 o Blocking list::blmove_try;
    "brpoplpush" 4 1 2 1 o Blocking list::brpoplpush_try;
    "blmpop" -5 0 0 0 w Blocking list::blmpop_try;
    "sadd" -3 1 1 1 o Keyed set::sadd;
    "srem" -3 1 1 1 w Keyed set::srem;
    "smembers" 2 1 1 1 r Keyed set::smembers;
    "sismember" 3 1 1 1 r Keyed set::sismember;
    "smismember" -3 1 1 1 r Keyed set::smismember;
    "scard" 2 1 1 1 r Keyed set::scard;
    "spop" -2 1 1 1 w Keyed set::spop;
    "srandmember" -2 1 1 1 r Keyed set::srandmember;
    "sinter" -2 1 -1 1 r Keyed set::sop;
    "sunion" -2 1 -1 1 r Keyed set::sop;
    "sdiff" -2 1 -1 1 r Keyed set::sop;
    "sinterstore" -3 1 -1 1 o Keyed set::sopstore;
    "sunionstore" -3 1 -1 1 o Keyed set::sopstore;
    "sdiffstore" -3 1 -1 1 o Keyed set::sopstore;
    "sintercard" -3 0 0 0 r Exclusive set::sintercard;
    "smove" 4 1 2 1 w Keyed set::smove;
    "sscan" -3 1 1 1 r Keyed set::sscan;
    "zadd" -4 1 1 1 o Keyed zset::zadd;
    "zincrby" 4 1 1 1 o Keyed zset::zadd;
    "zrem" -3 1 1 1 w Keyed zset::zrem;
    "zcard" 2 1 1 1 r Keyed zset::zcard;
    "zscore" 3 1 1 1 r Keyed zset::zscore;
    "zmscore" -3 1 1 1 r Keyed zset::zmscore;
    "zrank" 3 1 1 1 r Keyed zset::zrank;
    "zrevrank" 3 1 1 1 r Keyed zset::zrank;
    "zcount" 4 1 1 1 r Keyed zset::zcount;
    "zlexcount" 4 1 1 1 r Keyed zset::zcount;
    "zrange" -4 1 1 1 r Keyed zset::zrange;
    "zrangestore" -5 1 2 1 o Keyed zset::zrange;
    "zrevrange" -4 1 1 1 r Keyed zset::zrange;
    "zrangebyscore" -4 1 1 1 r Keyed zset::zrange;
    "zrevrangebyscore" -4 1 1 1 r Keyed zset::zrange;
    "zrangebylex" -4 1 1 1 r Keyed zset::zrange;
    "zrevrangebylex" -4 1 1 1 r Keyed zset::zrange;
    "zremrangebyrank" 4 1 1 1 w Keyed zset::zremrange;
    "zremrangebyscore" 4 1 1 1 w Keyed zset::zremrange;
    "zremrangebylex" 4 1 1 1 w Keyed zset::zremrange;
    "zpopmin" -2 1 1 1 w Keyed zset::zpop;
    "zpopmax" -2 1 1 1 w Keyed zset::zpop;
    "zmpop" -4 0 0 0 w Exclusive zset::zmpop;
    "zrandmember" -2 1 1 1 r Keyed zset::zrandmember;
    "zscan" -3 1 1 1 r Keyed zset::zscan;
    "zunion" -3 0 0 0 r Exclusive zset::zsetop;
    "zinter" -3 0 0 0 r Exclusive zset::zsetop;
    "zdiff" -3 0 0 0 r Exclusive zset::zsetop;
    "zunionstore" -4 1 1 1 o Exclusive zset::zsetop;
    "zinterstore" -4 1 1 1 o Exclusive zset::zsetop;
    "zdiffstore" -4 1 1 1 o Exclusive zset::zsetop;
    "zintercard" -3 0 0 0 r Exclusive zset::zsetop;
    "bzpopmin" -3 1 -2 1 w Blocking zset::bzpop_try;
    "bzpopmax" -3 1 -2 1 w Blocking zset::bzpop_try;
    "bzmpop" -5 0 0 0 w Blocking zset::bzmpop_try;
    "geoadd" -5 1 1 1 o Keyed geo::geoadd;
    "geopos" -2 1 1 1 r Keyed geo::geopos;
    "geohash" -2 1 1 1 r Keyed geo::geohash;
    "geodist" -4 1 1 1 r Keyed geo::geodist;
    "georadius" -6 1 1 1 o Exclusive geo::georadius;
    "georadius_ro" -6 1 1 1 r Keyed geo::georadius_ro;
    "georadiusbymember" -5 1 1 1 o Exclusive geo::georadiusbymember;
    "georadiusbymember_ro" -5 1 1 1 r Keyed geo::georadiusbymember_ro;
    "geosearch" -7 1 1 1 r Keyed geo::geosearch;
    "geosearchstore" -8 1 2 1 o Keyed geo::geosearchstore;
    "xadd" -5 1 1 1 o Keyed stream::xadd;
    "xlen" 2 1 1 1 r Keyed stream::xlen;
    "xrange" -4 1 1 1 r Keyed stream::xrange;
    "xrevrange" -4 1 1 1 r Keyed stream::xrange;
    "xdel" -3 1 1 1 w Keyed stream::xdel;
    "xtrim" -4 1 1 1 w Keyed stream::xtrim;
    "xsetid" -3 1 1 1 o Keyed stream::xsetid;
    "xread" -4 0 0 0 r Blocking stream::xread;
    "xinfo" -2 2 2 1 r Keyed stream::xinfo;
    "xgroup" -2 2 2 1 o Keyed stream::xgroup;
    "xreadgroup" -7 0 0 0 w Blocking stream::xreadgroup;
    "xack" -4 1 1 1 w Keyed stream::xack;
    "xpending" -3 1 1 1 r Keyed stream::xpending;
    "xclaim" -6 1 1 1 w Keyed stream::xclaim;
    "xautoclaim" -6 1 1 1 w Keyed stream::xautoclaim;
    "ping" -1 0 0 0 r Keyed server::ping;
    "echo" 2 0 0 0 r Keyed server::echo;
    "time" 1 0 0 0 r Keyed server::time;
    "lastsave" 1 0 0 0 r Keyed server::lastsave;
    "latency" -2 0 0 0 r Keyed server::latency;
    "slowlog" -2 0 0 0 r Keyed server::slowlog;
    "role" 1 0 0 0 r Keyed server::role;
    "info" -1 0 0 0 r Exclusive server::info;
    "config" -2 0 0 0 r Exclusive server::config;
    "command" -1 0 0 0 r Keyed server::command;
    "function" -2 0 0 0 o Exclusive script::function;
    "fcall" -3 0 0 0 r Exclusive script::fcall;
    "fcall_ro" -3 0 0 0 r Exclusive script::fcall;
    "eval" -3 0 0 0 r Exclusive script::eval;
    "evalsha" -3 0 0 0 r Exclusive script::eval;
    "eval_ro" -3 0 0 0 r Exclusive script::eval;
    "evalsha_ro" -3 0 0 0 r Exclusive script::eval;
    "script" -2 0 0 0 r Exclusive script::script;
    "debug" -2 0 0 0 r Keyed server::debug;
    "publish" 3 0 0 0 r Keyed server::publish;
    "spublish" 3 0 0 0 r Keyed server::publish;
    "pubsub" -2 0 0 0 r Keyed server::pubsub;
    "select" 2 0 0 0 r Connection server::not_here;
    "multi" 1 0 0 0 r Connection server::not_here;
    "exec" 1 0 0 0 r Connection server::not_here;
    "discard" 1 0 0 0 r Connection server::not_here;
    "watch" -2 1 -1 1 r Connection server::not_here;
    "unwatch" 1 0 0 0 r Connection server::not_here;
    "subscribe" -2 0 0 0 r Connection server::not_here;
    "unsubscribe" -1 0 0 0 r Connection server::not_here;
    "psubscribe" -2 0 0 0 r Connection server::not_here;
    "punsubscribe" -1 0 0 0 r Connection server::not_here;
    "ssubscribe" -2 0 0 0 r Connection server::not_here;
    "sunsubscribe" -1 0 0 0 r Connection server::not_here;
    "hello" -1 0 0 0 r Connection server::not_here;
    "auth" -2 0 0 0 r Connection server::not_here;
    "client" -2 0 0 0 r Connection server::not_here;
    "quit" -1 0 0 0 r Connection server::not_here;
    "reset" 1 0 0 0 r Connection server::not_here;
    "cluster" -2 0 0 0 r Keyed server::cluster_disabled;
    "asking" 1 0 0 0 r Keyed server::cluster_disabled;
    "readonly" 1 0 0 0 r Connection server::not_here;
    "readwrite" 1 0 0 0 r Connection server::not_here;
    "wait" 3 0 0 0 r Connection server::not_here;
    "save" 1 0 0 0 r Connection server::not_here;
    "bgsave" -1 0 0 0 r Connection server::not_here;
    "shutdown" -1 0 0 0 r Connection server::not_here;
    "monitor" 1 0 0 0 r Connection server::not_here;
};

/// The commands Redis 7.0.15 flags `no-multi`, besides the transaction commands themselves:
/// sent inside MULTI they are refused, and the transaction with them.
pub(crate) fn refused_in_multi(spec: &Spec) -> bool {
    matches!(spec.name, "save" | "shutdown")
}

/// Redis's reply to a `no-multi` command sent inside MULTI.
pub(crate) const NOT_IN_MULTI: &str = "ERR Command not allowed inside a transaction";

fn table() -> &'static HashMap<&'static str, &'static Spec> {
    static TABLE: OnceLock<HashMap<&'static str, &'static Spec>> = OnceLock::new();
    TABLE.get_or_init(|| SPECS.iter().map(|s| (s.name, s)).collect())
}

/// Finds a command by name, case-insensitively.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    let mut buf = [0u8; 24];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    table().get(std::str::from_utf8(lower).ok()?).copied()
}

/// Every command, in table order.
pub(crate) fn all() -> impl Iterator<Item = &'static Spec> {
    SPECS.iter()
}

/// A command's position in table order (every `&'static Spec` handed out points into the
/// table, so its distance from the table's start is its index).
pub(crate) fn index_of(spec: &'static Spec) -> usize {
    let base = SPECS.as_ptr() as usize;
    (std::ptr::from_ref(spec) as usize).wrapping_sub(base) / std::mem::size_of::<Spec>()
}

/// Redis's reply to an unknown command (`ERR unknown command 'x', with args beginning with: 'a' `).
pub(crate) fn unknown_command(args: &[&[u8]]) -> Frame {
    let name = args
        .first()
        .map(|n| {
            String::from_utf8_lossy(n)
                .chars()
                .take(128)
                .collect::<String>()
        })
        .unwrap_or_default();
    let mut text = format!("ERR unknown command '{name}', with args beginning with: ");
    for a in args.iter().skip(1) {
        let s: String = String::from_utf8_lossy(a).chars().take(128).collect();
        text.push_str(&format!("'{s}' "));
        if text.len() > 512 {
            break;
        }
    }
    Frame::Error(text.replace(['\r', '\n'], " "))
}

/// Whether `argc` satisfies the spec's arity.
pub(crate) fn arity_ok(spec: &Spec, argc: usize) -> bool {
    arity_holds(spec.arity, argc)
}

/// Redis 7.0.15's arities of the subcommands of its container commands (positive exact,
/// negative a minimum; the count includes the command and subcommand names).
const SUBCOMMAND_ARITIES: &[(&str, &[(&str, i32)])] = &[
    (
        "cluster",
        &[
            ("addslots", -3),
            ("addslotsrange", -4),
            ("bumpepoch", 2),
            ("count-failure-reports", 3),
            ("countkeysinslot", 3),
            ("delslots", -3),
            ("delslotsrange", -4),
            ("failover", -2),
            ("flushslots", 2),
            ("forget", 3),
            ("getkeysinslot", 4),
            ("help", 2),
            ("info", 2),
            ("keyslot", 3),
            ("links", 2),
            ("meet", -4),
            ("myid", 2),
            ("nodes", 2),
            ("replicas", 3),
            ("replicate", 3),
            ("reset", -2),
            ("saveconfig", 2),
            ("set-config-epoch", 3),
            ("setslot", -4),
            ("shards", 2),
            ("slaves", 3),
            ("slots", 2),
        ],
    ),
    (
        "client",
        &[
            ("id", 2),
            ("getname", 2),
            ("setname", 3),
            ("kill", -3),
            ("list", -2),
            ("info", 2),
            ("unblock", -3),
            ("reply", 3),
            ("no-evict", 3),
            ("tracking", -3),
            ("caching", 3),
            ("pause", -3),
            ("unpause", 2),
            ("getredir", 2),
            ("trackinginfo", 2),
            ("help", 2),
        ],
    ),
    (
        "config",
        &[
            ("get", -3),
            ("set", -4),
            ("resetstat", 2),
            ("rewrite", 2),
            ("help", 2),
        ],
    ),
    (
        "slowlog",
        &[("get", -2), ("len", 2), ("reset", 2), ("help", 2)],
    ),
    (
        "latency",
        &[
            ("doctor", 2),
            ("graph", 3),
            ("histogram", -2),
            ("history", 3),
            ("latest", 2),
            ("reset", -2),
            ("help", 2),
        ],
    ),
    (
        "command",
        &[
            ("count", 2),
            ("info", -2),
            ("docs", -2),
            ("list", -2),
            ("getkeys", -4),
            ("getkeysandflags", -4),
            ("help", 2),
        ],
    ),
    (
        "object",
        &[
            ("encoding", 3),
            ("freq", 3),
            ("idletime", 3),
            ("refcount", 3),
            ("help", 2),
        ],
    ),
    (
        "memory",
        &[
            ("usage", -3),
            ("doctor", 2),
            ("malloc-stats", 2),
            ("purge", 2),
            ("stats", 2),
            ("help", 2),
        ],
    ),
    (
        "pubsub",
        &[
            ("channels", -2),
            ("numsub", -2),
            ("numpat", 2),
            ("shardchannels", -2),
            ("shardnumsub", -2),
            ("help", 2),
        ],
    ),
    (
        "xinfo",
        &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)],
    ),
    (
        "xgroup",
        &[
            ("create", -5),
            ("setid", -5),
            ("destroy", 4),
            ("createconsumer", 5),
            ("delconsumer", 5),
            ("help", 2),
        ],
    ),
    (
        "script",
        &[
            ("exists", -3),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("load", 3),
        ],
    ),
    (
        "function",
        &[
            ("delete", 3),
            ("dump", 2),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("list", -2),
            ("load", -3),
            ("restore", -3),
            ("stats", 2),
        ],
    ),
];

/// The subcommands of a container, in this table's order; `None` for a plain command.
fn subcommands_of(name: &str) -> Option<Vec<&'static str>> {
    SUBCOMMAND_ARITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, subs)| subs.iter().map(|(sub, _)| *sub).collect())
}

/// Every command's full name, as COMMAND LIST gives them: each command, then each of its
/// subcommands as `command|subcommand`.
pub(crate) fn full_names() -> Vec<String> {
    let mut names = Vec::new();
    for spec in all() {
        names.push(spec.name.to_owned());
        let subs = subcommands_of(spec.name).unwrap_or_default();
        names.extend(subs.into_iter().map(|sub| format!("{}|{sub}", spec.name)));
    }
    names
}

/// Whether `name` (lower-case) is one of [`full_names`]: a command, or a container's
/// subcommand as `command|subcommand`.
pub(crate) fn is_full_name(name: &str) -> bool {
    match name.split_once('|') {
        None => lookup(name.as_bytes()).is_some(),
        Some((base, sub)) => subcommands_of(base).is_some_and(|subs| subs.contains(&sub)),
    }
}

/// Whether `name` is a container of subcommands (`config`, `memory`).
pub(crate) fn is_container(name: &str) -> bool {
    subcommands_of(name).is_some()
}

/// Whether the call `args` (`args[0]` the name of `spec`) has Redis's `readonly` flag: the
/// command's, or for a container its subcommand's (OBJECT ENCODING, XINFO STREAM).
pub(crate) fn is_readonly(spec: &Spec, args: &[&[u8]]) -> bool {
    has_flag(spec, args, "readonly")
}

/// Whether the command has Redis 7.0.15's `may_replicate` flag (which COMMAND INFO hides):
/// the script commands that may write, PFCOUNT (it may rewrite the sketch's cache) and the
/// publishing commands.
pub(crate) fn may_replicate(spec: &Spec) -> bool {
    matches!(
        spec.name,
        "eval" | "evalsha" | "fcall" | "pfcount" | "publish" | "spublish"
    )
}

/// Whether the call `args` has Redis's flag `flag` (its subcommand's for a container).
pub(crate) fn has_flag(spec: &Spec, args: &[&[u8]], flag: &str) -> bool {
    let flags = if is_container(spec.name) {
        let sub = args
            .get(1)
            .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
            .unwrap_or_default();
        super::cmdflags::of(&format!("{}|{sub}", spec.name))
    } else {
        super::cmdflags::of(spec.name)
    };
    flags.is_some_and(|(_, flags, _)| flags.contains(&flag))
}

impl Spec {
    /// Whether this call may grow memory, so is refused over `maxmemory` (Redis's `DENYOOM`):
    /// the command's flag, or for a container its subcommand's (XGROUP CREATE and FUNCTION
    /// LOAD grow memory, XGROUP SETID and FUNCTION DELETE do not). An unknown subcommand is
    /// left to its handler's error. Only asked with memory over the ceiling: it may allocate.
    pub(crate) fn denies_oom(&self, args: &[&[u8]]) -> bool {
        if !self.denyoom {
            return false;
        }
        if !is_container(self.name) {
            return true;
        }
        let sub = String::from_utf8_lossy(args.get(1).copied().unwrap_or_default());
        let full = format!("{}|{}", self.name, sub.to_ascii_lowercase());
        super::cmdflags::of(&full).is_some_and(|(_, flags, _)| flags.contains(&"denyoom"))
    }
}

fn arity_holds(arity: i32, argc: usize) -> bool {
    let argc = i32::try_from(argc).unwrap_or(i32::MAX);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

/// Redis's wrong-arity reply for `args`, if its count does not fit the command or, for a
/// container command (CLIENT, CONFIG, COMMAND, OBJECT, MEMORY, PUBSUB, XINFO, XGROUP), its subcommand:
/// `wrong number of arguments for 'config|get' command`, as Redis 7.0.15 answers. An unknown
/// subcommand is left to the command, which names it in its own words.
pub(crate) fn arity_error(spec: &Spec, args: &[&[u8]]) -> Option<Frame> {
    if !arity_ok(spec, args.len()) {
        return Some(wrong_arity(spec));
    }
    // Only a few commands have subcommands: a first-letter test keeps the lookup off the path
    // of the others.
    if !matches!(
        spec.name.as_bytes().first(),
        Some(b'c' | b'f' | b'l' | b'o' | b'm' | b'p' | b's' | b'x')
    ) {
        return None;
    }
    let (_, subs) = SUBCOMMAND_ARITIES.iter().find(|(n, _)| *n == spec.name)?;
    let sub = args.get(1)?;
    let (name, arity) = subs
        .iter()
        .find(|(n, _)| sub.eq_ignore_ascii_case(n.as_bytes()))?;
    (!arity_holds(*arity, args.len())).then(|| {
        Frame::Error(format!(
            "ERR wrong number of arguments for '{}|{name}' command",
            spec.name
        ))
    })
}

/// Redis's wrong-arity reply.
pub(crate) fn wrong_arity(spec: &Spec) -> Frame {
    Frame::Error(format!(
        "ERR wrong number of arguments for '{}' command",
        spec.name
    ))
}

/// The argument positions of the keys a command with `argc` arguments names, by its spec
/// (empty when it names none).
pub(crate) fn key_positions(spec: &Spec, argc: usize) -> StepBy<RangeInclusive<usize>> {
    // An empty range (the start past the end), as the "no keys" answer.
    #[expect(clippy::reversed_empty_ranges, reason = "deliberately empty")]
    let none = (1..=0).step_by(1);
    if spec.first <= 0 {
        return none;
    }
    let len = i32::try_from(argc).unwrap_or(i32::MAX);
    let last = if spec.last < 0 {
        len + spec.last
    } else {
        spec.last.min(len - 1)
    };
    let step = usize::try_from(spec.step.max(1)).unwrap_or(1);
    let (Ok(first), Ok(last)) = (usize::try_from(spec.first), usize::try_from(last)) else {
        return none;
    };
    (first..=last).step_by(step)
}

/// The keys a command names, by its spec (no allocation).
pub(crate) fn keys_of<'a>(spec: &Spec, args: &'a [&'a [u8]]) -> impl Iterator<Item = &'a [u8]> {
    key_positions(spec, args.len()).filter_map(|i| args.get(i).copied())
}

/// COMMAND INFO's entry for a spec.
pub(crate) fn info(spec: &Spec) -> Frame {
    let subcommands = subcommands_of(spec.name).map(|subs| {
        Frame::Array(
            subs.into_iter()
                .map(|sub| info_entry(&format!("{}|{sub}", spec.name), None))
                .collect(),
        )
    });
    info_entry(spec.name, subcommands)
}

/// COMMAND DOCS's map for a command or subcommand by full name, with a container's
/// subcommands; `None` for a name Redis does not document.
pub(crate) fn docs(full_name: &str) -> Option<Frame> {
    let doc = super::cmddocs::of(full_name)?;
    let subcommands = subcommands_of(full_name).map(|subs| {
        subs.into_iter()
            .filter_map(|sub| {
                let full = format!("{full_name}|{sub}");
                let doc = super::cmddocs::of(&full)?;
                Some((
                    Frame::bulk(full.as_bytes()),
                    super::cmddocs::reply(doc, None),
                ))
            })
            .collect()
    });
    Some(super::cmddocs::reply(doc, subcommands))
}

/// Commands whose Redis flag `allow_busy` does not hold here: WATCH and SHUTDOWN wait for (or
/// are refused during) a script past the busy threshold, like any command that needs the
/// keyspace.
const NOT_ALLOWED_WHILE_BUSY: &[&str] = &["watch", "shutdown"];

/// One COMMAND INFO entry (Redis's `addReplyCommandInfo`): Redis 7.0.15's arity, flags, tips,
/// key range and key specs of `full_name` (the table has a row for every command and
/// subcommand here, which a test holds), and its subcommands' entries (an empty set for a
/// command without).
fn info_entry(full_name: &str, subcommands: Option<Frame>) -> Frame {
    let (arity, declared, tips) = super::cmdflags::of(full_name).unwrap_or((0, &[], &[]));
    let (first, last, step, movable) = super::keyspecs::legacy_range(full_name);
    let mut flags: Vec<Frame> = declared
        .iter()
        .filter(|f| !(**f == "allow_busy" && NOT_ALLOWED_WHILE_BUSY.contains(&full_name)))
        .map(|f| Frame::simple(f))
        .collect();
    if movable {
        // Redis gives it after `no_multi` and before `allow_busy`.
        let at = declared
            .iter()
            .position(|f| *f == "allow_busy")
            .unwrap_or(flags.len())
            .min(flags.len());
        flags.insert(at, Frame::simple("movablekeys"));
    }
    Frame::Array(vec![
        Frame::bulk(full_name.as_bytes()),
        Frame::Integer(i64::from(arity)),
        Frame::Set(flags),
        Frame::Integer(i64::from(first)),
        Frame::Integer(i64::from(last)),
        Frame::Integer(i64::from(step)),
        Frame::Set(
            super::categories::of(full_name)
                .iter()
                .map(|c| Frame::Simple(std::borrow::Cow::Owned(format!("@{c}"))))
                .collect(),
        ),
        Frame::Set(tips.iter().map(|t| Frame::bulk(t.as_bytes())).collect()),
        super::keyspecs::info(full_name),
        subcommands.unwrap_or_else(|| Frame::Set(Vec::new())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_table_has_every_command_and_subcommand_with_the_arity_checked_here() {
        for spec in all() {
            let found = super::super::cmdflags::of(spec.name).map(|(arity, ..)| arity);
            assert_eq!(found, Some(spec.arity), "{}", spec.name);
        }
        for (name, subs) in SUBCOMMAND_ARITIES {
            for (sub, arity) in *subs {
                let full = format!("{name}|{sub}");
                let found = super::super::cmdflags::of(&full).map(|(arity, ..)| arity);
                assert_eq!(found, Some(*arity), "{full}");
            }
        }
        for name in full_names() {
            assert!(is_full_name(&name), "{name}");
        }
        for name in ["nosuch", "config|nosuch", "get|x", "config|", "|get"] {
            assert!(!is_full_name(name), "{name}");
        }
    }

    /// The DENYOOM refusals follow Redis's table: a command's own flag, a container's set
    /// exactly when a subcommand has it, and each subcommand's as the table gives it.
    #[test]
    fn denyoom_follows_redis_table() {
        let flagged = |full: &str| {
            super::super::cmdflags::of(full).is_some_and(|(_, f, _)| f.contains(&"denyoom"))
        };
        for spec in all() {
            let Some(subs) = subcommands_of(spec.name) else {
                assert_eq!(spec.denyoom, flagged(spec.name), "{}", spec.name);
                assert_eq!(spec.denies_oom(&[]), spec.denyoom, "{}", spec.name);
                continue;
            };
            let any = subs
                .iter()
                .any(|sub| flagged(&format!("{}|{sub}", spec.name)));
            assert_eq!(spec.denyoom, any, "{}", spec.name);
            for sub in subs {
                let full = format!("{}|{sub}", spec.name);
                let upper = sub.to_ascii_uppercase();
                let args = [spec.name.as_bytes(), upper.as_bytes()];
                assert_eq!(spec.denies_oom(&args), flagged(&full), "{full}");
            }
            assert!(!spec.denies_oom(&[spec.name.as_bytes(), b"nosuch"]));
        }
    }
}
