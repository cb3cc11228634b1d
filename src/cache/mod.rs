//! The Redis stand-in: a sharded in-memory keyspace with TTL and eviction, keyspace events, and
//! its RESP server.
//!
//! [`Cache`] is the handle every other module uses: typed helpers ([`Cache::set`],
//! [`Cache::get`], [`Cache::hset`], [`Cache::del`]) and the generic [`Cache::execute`] that the
//! RESP server and the Upstash HTTP surface share. Time comes from the injected clock: keys
//! expire lazily on access and in a bounded active cycle ([`Cache::active_expire_cycle`]).
//!
//! ```
//! use std::sync::Arc;
//! use streamcache::cache::{Cache, CacheConfig};
//! use streamcache::clock::ManualClock;
//!
//! let clock = Arc::new(ManualClock::new(1_000));
//! let cache = Cache::new(CacheConfig::default(), clock.clone());
//! cache.set(0, b"k", b"v", Some(100));
//! assert_eq!(cache.get(0, b"k").as_deref(), Some(&b"v"[..]));
//! clock.advance(std::time::Duration::from_millis(100));
//! assert_eq!(cache.get(0, b"k"), None);
//! ```

mod blocks;
mod cmd;
mod cmdstats;
mod error;
mod expiry;
mod keyspace;
mod latency;
mod longdouble;
mod monitor;
mod notify;
mod params;
mod pause;
mod pubsub;
mod rdb;
mod resp;
mod script;
mod server;
mod settings;
mod shard;
mod sieve;
mod slowlog;
mod snapshot;
mod stream;
mod tracking;
mod value;
mod zset;

pub use script::{
    CJSON_DEPTH_MAX as SCRIPT_CJSON_DEPTH_MAX, EVAL_SCRIPTS_MAX as SCRIPT_EVAL_CACHE_MAX,
    FUNCTION_LOAD_MS_MAX, REPLY_DEPTH_MAX as SCRIPT_REPLY_DEPTH_MAX, SCRIPT_MEMORY_BYTES_MAX,
    SCRIPT_RUN_MS_MAX, sha1_hex as script_sha1,
};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};

use crate::clock::SharedClock;
use settings::{HZ_MAX, HZ_MIN};
use slowlog::Caller;
use tracking::RunFor;

pub use error::{Error, ProtocolError, Result};
pub use rdb::fuzz_rdb_payload;
pub use resp::frame::{
    DecodeLimits, FRAME_DEPTH_MAX, Frame, decode_frame, decode_request, format_double,
    fuzz_resp_frame,
};
pub use server::{RespConfig, serve_resp};

// ---- Limits -------------------------------------------------------------------------------

/// Largest bulk string a client may send, in bytes (Redis's `proto-max-bulk-len` default,
/// 512 MiB); CONFIG may lower it, never raise it.
pub const RESP_BULK_BYTES_MAX: usize = 512 * 1024 * 1024;
/// Most elements in one multibulk request (Redis accepts up to `INT_MAX`; we stop at 2^30 so a
/// header alone can never ask for more than the bulk limit allows in total).
pub const RESP_MULTIBULK_LEN_MAX: usize = 1024 * 1024 * 1024;
/// Longest inline request or header line, in bytes (Redis's `PROTO_INLINE_MAX_SIZE`, 64 KiB).
pub const RESP_INLINE_BYTES_MAX: usize = 64 * 1024;
/// Most elements in one multibulk request from a client that has not authenticated while a
/// password is set (Redis's `processMultibulkBuffer`: more gets `ERR Protocol error:
/// unauthenticated multibulk length` and the connection is closed).
pub const RESP_UNAUTH_MULTIBULK_LEN_MAX: usize = 10;
/// Largest bulk string from a client that has not authenticated while a password is set, in
/// bytes (Redis: more gets `ERR Protocol error: unauthenticated bulk length` and the connection
/// is closed). With [`RESP_UNAUTH_MULTIBULK_LEN_MAX`] and [`RESP_INLINE_BYTES_MAX`], this bounds
/// what such a client can make the server buffer to a few hundred KiB.
pub const RESP_UNAUTH_BULK_BYTES_MAX: usize = 16 * 1024;
/// Longest key, in bytes (Redis's string limit).
pub const KEY_BYTES_MAX: usize = RESP_BULK_BYTES_MAX;
/// Longest string value, in bytes, including after APPEND/SETRANGE/SETBIT growth.
pub const VALUE_BYTES_MAX: usize = RESP_BULK_BYTES_MAX;
/// Most simultaneous RESP connections (Redis's `maxclients` default).
pub const CONNECTIONS_MAX: usize = 10_000;
/// Most bytes of replies buffered for one normal client before it is disconnected
/// (Redis's hard limit for pub/sub clients is 32 MiB; normal clients are unlimited there, we
/// bound them at 1 GiB).
pub const OUTPUT_BUFFER_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// By default a pub/sub subscriber is disconnected once the bytes of the messages pending for
/// it (queued, or not yet written to its socket) reach this: Redis's default
/// `client-output-buffer-limit pubsub` hard limit, 32 MiB (CONFIG SET may change it; a hard
/// limit of 0 still stops at [`OUTPUT_BUFFER_BYTES_MAX`]). Each message counts its channel,
/// pattern and payload bytes plus [`PUBSUB_MESSAGE_OVERHEAD_BYTES`].
pub const PUBSUB_BUFFER_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Redis's default pub/sub soft limit, 8 MiB: a subscriber whose pending bytes stay at or above
/// it for longer than [`PUBSUB_BUFFER_SOFT_MS`] is disconnected too.
pub const PUBSUB_BUFFER_SOFT_BYTES: usize = 8 * 1024 * 1024;
/// How long a subscriber may stay over the soft limit by default, in milliseconds (Redis's
/// 60 s).
pub const PUBSUB_BUFFER_SOFT_MS: u64 = 60_000;
/// Largest `soft_seconds` of a `client-output-buffer-limit` class: Redis parses it into an
/// `int`, so `INT_MAX` seconds; more is refused with Redis's error for a bad value.
pub const OBUF_SOFT_SECONDS_MAX: u64 = 2_147_483_647;
/// Bytes each pending pub/sub message counts on top of its data (its framing and queue slot).
pub const PUBSUB_MESSAGE_OVERHEAD_BYTES: usize = 64;
/// Most messages queued for one pub/sub subscriber: the output buffer ceiling over the
/// per-message overhead, so the count never binds before the bytes do, whatever the configured
/// pubsub limit (the channel allocates per message, not its capacity up front).
pub const PUBSUB_QUEUE_LEN_MAX: usize = OUTPUT_BUFFER_BYTES_MAX / PUBSUB_MESSAGE_OVERHEAD_BYTES;
/// Largest `lfu-log-factor` and `lfu-decay-time` (minutes) CONFIG SET takes: Redis's bound for
/// these `int` settings, `INT_MAX`.
pub const LFU_SETTING_MAX: u32 = 2_147_483_647;
/// Most keys one active expiry tick removes from one shard.
pub const ACTIVE_EXPIRE_KEYS_PER_SHARD_MAX: usize = 64;
/// Capacity of the keyspace event channel; slower subscribers see `Lagged`.
pub const EVENTS_CAPACITY: usize = 4096;
/// Logical databases (`SELECT 0..15`).
pub const DATABASES: usize = 16;
/// Shards per database (a power of two).
pub const SHARDS: usize = 16;
/// Distinct keys one client may WATCH at a time (Redis has no limit; each is held until EXEC,
/// DISCARD, UNWATCH or the client's end): a WATCH that would pass it is refused, watching none
/// of its keys.
pub const WATCHED_KEYS_MAX: usize = 64 * 1024;
/// Subscriptions one client may hold: channels, patterns and shard channels together (Redis
/// has no limit; every PUBLISH matches each pattern held). A SUBSCRIBE, PSUBSCRIBE or
/// SSUBSCRIBE that would pass it is refused, subscribing none of its names.
pub const SUBSCRIPTIONS_MAX: usize = 64 * 1024;
/// Commands queued by one MULTI before EXEC.
pub const MULTI_QUEUE_LEN_MAX: usize = 1024 * 1024;
/// Most bytes of a client's requests not yet run (Redis's `client-query-buffer-limit` default,
/// 1 GiB): what was read and not yet handled, plus the arguments MULTI has queued, as Redis 7.2
/// counts them. A client past it is closed without a reply, as Redis closes it. CONFIG may lower
/// it (to 1 MiB at least, Redis's minimum), never raise it.
pub const QUERY_BUFFER_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Most picks of one SRANDMEMBER/HRANDFIELD with a negative count (repeats allowed), so a
/// 40-byte command cannot ask for a reply of billions of elements (Redis builds any size;
/// 2^20 is what the reply-size check below lets through for members of ~1 KiB anyway).
pub const RANDOM_PICKS_MAX: usize = 1024 * 1024;
/// Most bytes such a reply may come to (each element counted as its bytes plus 16 of framing):
/// the output buffer could not hold more, and building it would stall the RESP thread first.
pub const RANDOM_REPLY_BYTES_MAX: usize = OUTPUT_BUFFER_BYTES_MAX;

/// Most score-member pairs in one ZADD: one ZADD is one atomic step holding its shard's lock,
/// so its length bounds how long the shard stays locked (Redis takes any number the request
/// holds). 2^20 pairs insert in well under a second.
pub const ZADD_PAIRS_MAX: usize = 1024 * 1024;
/// Most keys one ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD, ZMPOP or BZMPOP names
/// (`numkeys`): each key is looked up and read under the exclusive gate (Redis stops only at
/// the request's length).
pub const ZSET_NUMKEYS_MAX: usize = 64 * 1024;
/// Most streams one XREAD names: each is looked up under the exclusive gate on every attempt,
/// and a blocked XREAD is attempted again after every write (Redis stops only at the request's
/// length).
pub const XREAD_KEYS_MAX: usize = 1024;
/// Most bytes one string inside a RESTORE payload may decode to (a plain string's length or an
/// LZF string's stated length): Redis's `proto-max-bulk-len` ceiling, as no bigger value could
/// have been written. Checked before anything is allocated for it.
pub const DUMP_STRING_BYTES_MAX: usize = RESP_BULK_BYTES_MAX;
/// Most bytes LZF may inflate in one RESTORE payload, all its compressed strings together: a
/// payload of at most `proto-max-bulk-len` bytes could otherwise claim about 130 times that.
pub const DUMP_INFLATED_BYTES_MAX: usize = 1024 * 1024 * 1024;

const _: () = assert!(SHARDS.is_power_of_two());
const _: () = assert!(DUMP_STRING_BYTES_MAX <= DUMP_INFLATED_BYTES_MAX);
const _: () = assert!(ZADD_PAIRS_MAX * 2 <= RESP_MULTIBULK_LEN_MAX);
const _: () = assert!(ZSET_NUMKEYS_MAX <= RESP_MULTIBULK_LEN_MAX);
const _: () = assert!(VALUE_BYTES_MAX <= RESP_BULK_BYTES_MAX);
const _: () = assert!(RESP_INLINE_BYTES_MAX < RESP_BULK_BYTES_MAX);
const _: () = assert!(RESP_UNAUTH_MULTIBULK_LEN_MAX <= RESP_MULTIBULK_LEN_MAX);
const _: () = assert!(RESP_UNAUTH_BULK_BYTES_MAX <= RESP_BULK_BYTES_MAX);
const _: () = assert!(PUBSUB_BUFFER_SOFT_BYTES < PUBSUB_BUFFER_BYTES_MAX);
const _: () =
    assert!(PUBSUB_QUEUE_LEN_MAX * PUBSUB_MESSAGE_OVERHEAD_BYTES <= OUTPUT_BUFFER_BYTES_MAX);
const _: () = assert!(PUBSUB_BUFFER_BYTES_MAX <= OUTPUT_BUFFER_BYTES_MAX);

// ---- Config -------------------------------------------------------------------------------

/// What to do when `maxmemory` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    /// Refuse writes with Redis's OOM error.
    #[default]
    Noeviction,
    /// Evict the least recently used key (sampled).
    AllkeysLru,
    /// Evict the least frequently used key (sampled).
    AllkeysLfu,
    /// Evict the least recently used key among keys with a TTL.
    VolatileLru,
    /// Evict the key with the nearest deadline.
    VolatileTtl,
    /// Evict a random key.
    AllkeysRandom,
    /// SIEVE (NSDI '24): a FIFO with a visited bit and a moving hand.
    AllkeysSieve,
    /// Evict the least frequently used key among keys with a TTL.
    VolatileLfu,
    /// Evict a random key among keys with a TTL.
    VolatileRandom,
}

/// Every policy, in `code` order.
const POLICIES: [EvictionPolicy; 9] = [
    EvictionPolicy::Noeviction,
    EvictionPolicy::AllkeysLru,
    EvictionPolicy::AllkeysLfu,
    EvictionPolicy::VolatileLru,
    EvictionPolicy::VolatileTtl,
    EvictionPolicy::AllkeysRandom,
    EvictionPolicy::AllkeysSieve,
    EvictionPolicy::VolatileLfu,
    EvictionPolicy::VolatileRandom,
];

impl EvictionPolicy {
    /// Redis's name for the policy.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Noeviction => "noeviction",
            Self::AllkeysLru => "allkeys-lru",
            Self::AllkeysLfu => "allkeys-lfu",
            Self::VolatileLru => "volatile-lru",
            Self::VolatileTtl => "volatile-ttl",
            Self::AllkeysRandom => "allkeys-random",
            Self::AllkeysSieve => "allkeys-sieve",
            Self::VolatileLfu => "volatile-lfu",
            Self::VolatileRandom => "volatile-random",
        }
    }

    /// Parses Redis's name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        POLICIES
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether the policy ranks keys by their LFU counter (Redis's `MAXMEMORY_FLAG_LFU`):
    /// OBJECT FREQ answers only then, and OBJECT IDLETIME only otherwise.
    #[must_use]
    pub fn is_lfu(self) -> bool {
        matches!(self, Self::AllkeysLfu | Self::VolatileLfu)
    }

    /// Whether the policy evicts only keys with a TTL (Redis's `volatile-*`).
    #[must_use]
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            Self::VolatileLru | Self::VolatileLfu | Self::VolatileTtl | Self::VolatileRandom
        )
    }

    fn code(self) -> u16 {
        self as u16
    }

    fn from_code(code: u16) -> Self {
        POLICIES
            .into_iter()
            .find(|p| p.code() == code)
            .unwrap_or_default()
    }
}

/// The `[cache]` configuration section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Memory ceiling in bytes for keys and values; 0 = unlimited.
    pub maxmemory_bytes: u64,
    /// What happens at the ceiling.
    pub eviction_policy: EvictionPolicy,
    /// Most simultaneous RESP connections (at most [`CONNECTIONS_MAX`]).
    pub connections_max: usize,
    /// Reply bytes buffered per client before it is disconnected (at most
    /// [`OUTPUT_BUFFER_BYTES_MAX`]).
    pub output_buffer_bytes_max: usize,
    /// Active expiry ticks per second (Redis's `hz`).
    pub active_expiry_hz: u32,
    /// Write a snapshot on shutdown and load it on start (file `cache.snapshot` in the data
    /// directory).
    pub snapshot: bool,
    /// Also snapshot every N seconds while running; 0 = only on shutdown.
    pub snapshot_interval_s: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            maxmemory_bytes: 0,
            eviction_policy: EvictionPolicy::Noeviction,
            connections_max: CONNECTIONS_MAX,
            output_buffer_bytes_max: OUTPUT_BUFFER_BYTES_MAX,
            active_expiry_hz: 10,
            snapshot: false,
            snapshot_interval_s: 0,
        }
    }
}

impl CacheConfig {
    /// The commented TOML text of this section with default values.
    #[must_use]
    pub fn default_toml() -> String {
        let d = Self::default();
        format!(
            "\n[cache]\n\
             # Memory ceiling for keys and values in bytes; 0 = unlimited (Redis's maxmemory).\n\
             maxmemory_bytes = {}\n\
             # At the ceiling: noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-sieve.\n\
             eviction_policy = \"{}\"\n\
             # Most simultaneous RESP connections (at most {CONNECTIONS_MAX}).\n\
             connections_max = {}\n\
             # Reply bytes buffered per RESP client before it is disconnected (at most {OUTPUT_BUFFER_BYTES_MAX}).\n\
             output_buffer_bytes_max = {}\n\
             # Active expiry ticks per second.\n\
             active_expiry_hz = {}\n\
             # Snapshot the cache to DATA_DIR/cache.snapshot on shutdown and load it on start.\n\
             snapshot = {}\n\
             # Also snapshot every N seconds; 0 = only on shutdown.\n\
             snapshot_interval_s = {}\n",
            d.maxmemory_bytes,
            d.eviction_policy.name(),
            d.connections_max,
            d.output_buffer_bytes_max,
            d.active_expiry_hz,
            d.snapshot,
            d.snapshot_interval_s
        )
    }
}

// ---- Events -------------------------------------------------------------------------------

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Written (created or changed).
    Set,
    /// Deleted by a command.
    Del,
    /// Removed because its TTL passed.
    Expired,
    /// Removed to make room under `maxmemory`.
    Evicted,
    /// Given a TTL.
    Expire,
    /// TTL removed.
    Persist,
}

/// A keyspace event, as [`Cache::subscribe_events`] delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// Logical database.
    pub db: usize,
    /// The key.
    pub key: Bytes,
    /// What happened.
    pub kind: EventKind,
}

// ---- Stats --------------------------------------------------------------------------------

/// Counters shown by INFO.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) commands: AtomicU64,
    pub(crate) connections_received: AtomicU64,
    pub(crate) connected_clients: AtomicU64,
    pub(crate) blocked_clients: AtomicU64,
    pub(crate) expired_keys: AtomicU64,
    pub(crate) evicted_keys: AtomicU64,
}

impl Stats {
    /// CONFIG RESETSTAT: the counters Redis's `resetServerStats` zeroes (not the gauges,
    /// `connected_clients` and `blocked_clients`).
    fn reset(&self) {
        for c in [
            &self.commands,
            &self.connections_received,
            &self.expired_keys,
            &self.evicted_keys,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

// ---- The handle ---------------------------------------------------------------------------

/// Shared state behind a [`Cache`].
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) ks: keyspace::Keyspace,
    pub(crate) clock: SharedClock,
    pub(crate) config: CacheConfig,
    pub(crate) settings: settings::Settings,
    pub(crate) maxmemory: AtomicU64,
    policy: AtomicU16,
    pub(crate) bulk_bytes_max: AtomicUsize,
    /// `client-query-buffer-limit`, at most [`QUERY_BUFFER_BYTES_MAX`].
    pub(crate) query_buffer_bytes_max: AtomicUsize,
    /// `maxclients`: connections the RESP server accepts at once, at most [`CONNECTIONS_MAX`]
    /// (and at most its own `connections_max`).
    pub(crate) maxclients: AtomicUsize,
    pub(crate) used_bytes: AtomicUsize,
    /// The most `used_bytes` was seen at since start (INFO's `used_memory_peak`): sampled as
    /// Redis samples its peak — after each batch of a RESP client's commands, before an
    /// eviction, at each housekeeping pass and by INFO ([`Inner::note_memory_peak`]).
    pub(crate) peak_bytes: AtomicUsize,
    pub(crate) stats: Stats,
    /// INFO commandstats and errorstats.
    pub(crate) command_stats: cmdstats::CommandStats,
    /// SLOWLOG.
    pub(crate) slowlog: slowlog::Slowlog,
    pub(crate) events: broadcast::Sender<KeyEvent>,
    /// Set once anyone has called [`Cache::subscribe_events`]: until then the hot path skips
    /// `receiver_count`, which takes the channel's mutex.
    events_subscribed: std::sync::atomic::AtomicBool,
    pub(crate) pubsub: pubsub::PubSub,
    /// CLIENT TRACKING's clients, table and prefixes.
    pub(crate) tracking: tracking::Tracking,
    /// MONITOR clients.
    pub(crate) monitors: monitor::Monitors,
    /// Blocked pops in arrival order (Redis serves the longest-waiting client first).
    blocked: Mutex<std::collections::VecDeque<Blocked>>,
    blocked_len: AtomicUsize,
    serving: std::sync::atomic::AtomicBool,
    serve_pending: std::sync::atomic::AtomicBool,
    next_ticket: AtomicU64,
    /// Modification counters of watched keys: (db, key) → (version, watchers).
    watched: Mutex<HashMap<(usize, Bytes), (u64, usize)>>,
    /// Number of distinct watched keys (skips the watch map on the hot path when 0).
    watch_count: AtomicUsize,
    pub(crate) start_ms: u64,
    pub(crate) port: AtomicU16,
    /// `zset-max-listpack-entries` (high 32 bits) and `zset-max-listpack-value` (low 32 bits),
    /// read by every sorted set write to report Redis's encoding.
    zset_listpack: AtomicU64,
    /// `hash-max-listpack-entries` and `hash-max-listpack-value`, packed as `zset_listpack`,
    /// and `set-max-intset-entries`: read by OBJECT ENCODING and the replies that follow a
    /// hash's or set's encoding.
    hash_listpack: AtomicU64,
    set_intset_entries: AtomicUsize,
    /// `hll-sparse-max-bytes`: the size past which a sparse HyperLogLog turns dense.
    hll_sparse_max_bytes: AtomicUsize,
    /// `stream-node-max-entries`: entries appended to a stream node before a new one starts.
    stream_node_max_entries: AtomicUsize,
    rng: AtomicU64,
    pub(crate) snapshot_path: Option<PathBuf>,
    /// Save bookkeeping (LASTSAVE, INFO persistence) and the background save's slot.
    pub(crate) saves: snapshot::Saves,
    /// `maxmemory-samples`: keys sampled per database per eviction.
    maxmemory_samples: AtomicU32,
    /// Eviction candidates kept between evictions (Redis's eviction pool).
    evict_pool: Mutex<evict::Pool>,
    /// The Lua states (EVAL's scripts, FUNCTION's libraries), created by the first script
    /// command.
    scripting: Mutex<Option<script::Scripting>>,
    /// Script cache figures for INFO, updated after each script command (INFO may run inside
    /// a script, which holds `scripting`).
    pub(crate) script_info: script::Info,
    /// The script running now, for SCRIPT KILL and the RESP server's BUSY replies.
    pub(crate) running: Arc<script::Running>,
    /// `timeout`: seconds a client may sit idle before [`Cache::close_idle_clients`] closes it
    /// (0: never).
    idle_timeout_s: AtomicU64,
    /// `hz`, kept within 1..=500: active-expiry passes per second ([`Cache::housekeeping_period`]).
    hz: AtomicU32,
    /// The client tables of the RESP servers serving this cache, for the idle-client check.
    pub(crate) resp_clients: Mutex<Vec<std::sync::Weak<server::Shared>>>,
}

/// Packs the listpack thresholds into one atomic word (each saturated to 32 bits).
fn pack_listpack(lp: zset::Listpack) -> u64 {
    let part = |n: usize| {
        u64::try_from(n)
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX))
    };
    (part(lp.entries) << 32) | part(lp.value)
}

/// The thresholds [`pack_listpack`] packed.
fn unpack_listpack(word: u64) -> zset::Listpack {
    zset::Listpack {
        entries: usize::try_from(word >> 32).unwrap_or(usize::MAX),
        value: usize::try_from(word & u64::from(u32::MAX)).unwrap_or(usize::MAX),
    }
}

impl Inner {
    /// Feeds `args`, run in `db` by `origin`, to the MONITOR clients (one atomic load when
    /// there are none).
    pub(crate) fn monitor(&self, db: usize, origin: monitor::Origin<'_>, args: &[&[u8]]) {
        if self.monitors.is_active() {
            let limit = self.pubsub.limits.get(pubsub::ObufClass::Replica);
            self.monitors
                .feed(self.clock.now_ms(), db, origin, args, limit);
        }
    }

    /// The scripting state, created on first use (`None` only if Lua could not start, which
    /// is logged).
    pub(crate) fn scripting(&self) -> std::sync::MutexGuard<'_, Option<script::Scripting>> {
        let mut guard = self
            .scripting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            match script::Scripting::new() {
                Ok(s) => *guard = Some(s),
                Err(e) => tracing::error!(error = %e, "the Lua scripting engine could not start"),
            }
        }
        guard
    }

    /// The watched keys in any of `dbs`, for a flush or swap to check (Redis's
    /// `touchAllWatchedKeysInDb`).
    pub(crate) fn watched_in(&self, dbs: &[usize]) -> Vec<(usize, Bytes)> {
        if self.watch_count.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        let watched = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        watched
            .keys()
            .filter(|(db, _)| dbs.contains(db))
            .cloned()
            .collect()
    }

    /// `stream-node-max-entries` in force (0: no limit).
    pub(crate) fn stream_node_max_entries(&self) -> usize {
        self.stream_node_max_entries.load(Ordering::Relaxed)
    }

    /// `hll-sparse-max-bytes` in force.
    pub(crate) fn hll_sparse_max_bytes(&self) -> usize {
        self.hll_sparse_max_bytes.load(Ordering::Relaxed)
    }

    /// The sorted set listpack thresholds in force.
    pub(crate) fn zset_listpack(&self) -> zset::Listpack {
        unpack_listpack(self.zset_listpack.load(Ordering::Relaxed))
    }

    /// The hash listpack and set intset thresholds in force.
    pub(crate) fn compact(&self) -> value::Compact {
        value::Compact {
            hash: unpack_listpack(self.hash_listpack.load(Ordering::Relaxed)),
            intset_entries: self.set_intset_entries.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_code(self.policy.load(Ordering::Relaxed))
    }

    /// What invalidation messages are held to: a tracking client's own output buffer class
    /// (normal), its redirect target's (pubsub: it subscribes to `__redis__:invalidate`),
    /// and the wall clock.
    pub(crate) fn tracking_limits(&self) -> tracking::Limits {
        tracking::Limits {
            own: self.pubsub.limits.get(pubsub::ObufClass::Normal),
            redirect: self.pubsub.limits.get(pubsub::ObufClass::Pubsub),
            now_ms: self.clock.now_ms(),
        }
    }

    /// Records the memory in use as the peak when it is above it; returns the peak. A load and
    /// a compare when it is not.
    pub(crate) fn note_memory_peak(&self) -> usize {
        let used = self.used_bytes.load(Ordering::Relaxed);
        let peak = self.peak_bytes.load(Ordering::Relaxed);
        if used > peak {
            self.peak_bytes.fetch_max(used, Ordering::Relaxed).max(used)
        } else {
            peak
        }
    }

    /// Copies CONFIG SET values that have a live effect into their atomics.
    pub(crate) fn apply_settings(&self) {
        if let Some(v) = self
            .settings
            .get("maxmemory")
            .and_then(|v| settings::parse_memory(&v))
        {
            self.maxmemory.store(v, Ordering::Relaxed);
        }
        if let Some(p) = self
            .settings
            .get("maxmemory-policy")
            .and_then(|v| EvictionPolicy::parse(&v))
        {
            self.policy.store(p.code(), Ordering::Relaxed);
        }
        if let Some(n) = self
            .settings
            .get("maxmemory-samples")
            .and_then(|v| settings::parse_int_range(&v, 1, evict::MAXMEMORY_SAMPLES_MAX).ok())
        {
            self.maxmemory_samples.store(n, Ordering::Relaxed);
        }
        // A memory setting in bytes, capped by the limit it configures.
        let bytes_setting = |name, max: usize| {
            self.settings
                .get(name)
                .and_then(|v| settings::parse_memory(&v))
                .map(|v| usize::try_from(v).unwrap_or(usize::MAX).min(max))
        };
        if let Some(v) = bytes_setting("proto-max-bulk-len", RESP_BULK_BYTES_MAX) {
            self.bulk_bytes_max.store(v, Ordering::Relaxed);
        }
        if let Some(v) = bytes_setting("client-query-buffer-limit", QUERY_BUFFER_BYTES_MAX) {
            self.query_buffer_bytes_max.store(v, Ordering::Relaxed);
        }
        if let Some(s) = self
            .settings
            .get("timeout")
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.idle_timeout_s.store(s, Ordering::Relaxed);
        }
        if let Some(hz) = self.settings.get("hz").and_then(|v| v.parse::<u32>().ok()) {
            self.hz.store(hz.clamp(HZ_MIN, HZ_MAX), Ordering::Relaxed);
        }
        if let Some(n) = self
            .settings
            .get("maxclients")
            .and_then(|v| v.parse::<u64>().ok())
        {
            let n = usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(CONNECTIONS_MAX);
            self.maxclients.store(n, Ordering::Relaxed);
        }
        let lfu_setting = |name| {
            self.settings
                .get(name)
                .and_then(|v| settings::parse_int_setting(&v, LFU_SETTING_MAX).ok())
        };
        if let (Some(log_factor), Some(decay_minutes)) =
            (lfu_setting("lfu-log-factor"), lfu_setting("lfu-decay-time"))
        {
            self.ks.lfu.store(
                keyspace::pack_lfu(shard::Lfu {
                    active: self.policy().is_lfu(),
                    log_factor,
                    decay_minutes,
                }),
                Ordering::Relaxed,
            );
        }
        if let Some(limits) = self
            .settings
            .get(settings::OBUF_LIMIT)
            .and_then(|v| settings::parse_obuf_limits(&v).ok())
        {
            for (class, limit) in limits {
                self.pubsub.limits.set(class, limit);
            }
        }
        if let Some(n) = self
            .settings
            .get("tracking-table-max-keys")
            .and_then(|v| v.parse::<u64>().ok())
        {
            self.tracking.set_max_keys(n, self.tracking_limits());
        }
        if let Some(on) = self
            .settings
            .get("latency-tracking")
            .and_then(|v| settings::parse_yes_no(&v).ok())
        {
            self.command_stats.set_tracking(on);
        }
        if let Some(p) = self
            .settings
            .get("latency-tracking-info-percentiles")
            .and_then(|v| latency::parse_percentiles(&v).ok())
        {
            self.command_stats.set_info_percentiles(p);
        }
        if let Some(us) = self
            .settings
            .get("slowlog-log-slower-than")
            .and_then(|v| v.parse::<i64>().ok())
        {
            self.slowlog.set_slower_than_us(us);
        }
        if let Some(len) = self
            .settings
            .get("slowlog-max-len")
            .and_then(|v| settings::parse_int_range(&v, 0, slowlog::MAX_LEN_MAX).ok())
        {
            self.slowlog.set_max_len(len as usize);
        }
        if let Some(ms) = self
            .settings
            .get("latency-monitor-threshold")
            .and_then(|v| settings::parse_int_range(&v, 0, u32::MAX).ok())
        {
            self.command_stats.monitor.set_threshold_ms(u64::from(ms));
        }
        let threshold = |name| {
            self.settings
                .get(name)
                .and_then(|v| settings::parse_memory(&v))
                .and_then(|v| usize::try_from(v).ok())
        };
        if let Some(v) = threshold("hll-sparse-max-bytes") {
            self.hll_sparse_max_bytes.store(v, Ordering::Relaxed);
        }
        if let Some(v) = threshold("stream-node-max-entries") {
            self.stream_node_max_entries.store(v, Ordering::Relaxed);
        }
        for (entries, value, word) in [
            (
                "zset-max-listpack-entries",
                "zset-max-listpack-value",
                &self.zset_listpack,
            ),
            (
                "hash-max-listpack-entries",
                "hash-max-listpack-value",
                &self.hash_listpack,
            ),
        ] {
            if let (Some(entries), Some(value)) = (threshold(entries), threshold(value)) {
                word.store(
                    pack_listpack(zset::Listpack { entries, value }),
                    Ordering::Relaxed,
                );
            }
        }
        if let Some(n) = threshold("set-max-intset-entries") {
            self.set_intset_entries.store(n, Ordering::Relaxed);
        }
        self.ks.notify_flags.store(
            notify::effective(self.settings.notify_flags()),
            Ordering::Relaxed,
        );
    }
}

/// Eviction steps in a row that free nothing (candidates deleted or read since they were
/// sampled) before a write is answered with OOM.
const EVICTION_MISSES_MAX: usize = 1_000;

/// What one eviction step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// A key was evicted.
    Evicted,
    /// Nothing was evicted this time; sampling again may find a victim.
    Retry,
    /// No key qualifies.
    Empty,
}

/// Removes `key` from `db` as an eviction, recording its `evicted` event and notification.
/// False when the key was gone (or had expired: then it is reported as expired instead).
fn ctx_remove(ctx: &mut keyspace::Ctx<'_>, db: usize, key: &[u8]) -> bool {
    if !ctx.delete_in(db, key) {
        return false;
    }
    ctx.touched_in(db, key, EventKind::Evicted);
    ctx.notify_in(db, notify::EVICTED, "evicted", key);
    true
}

/// A client waiting in a blocking pop.
#[derive(Debug)]
pub(crate) struct Blocked {
    ticket: u64,
    db: usize,
    spec: &'static resp::command::Spec,
    args: Vec<Bytes>,
    who: (u8, RunFor),
    tx: oneshot::Sender<Frame>,
}

/// The cache handle: cheap to clone, `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl Cache {
    /// An empty cache with `config`, reading time from `clock`.
    #[must_use]
    pub fn new(config: CacheConfig, clock: SharedClock) -> Self {
        Self::build(config, clock, None)
    }

    /// A cache that loads `data_dir/cache.snapshot` when `config.snapshot` is set and writes it
    /// back on [`Cache::save_snapshot`]. A corrupt snapshot is logged and renamed aside.
    #[must_use]
    pub fn open(config: CacheConfig, clock: SharedClock, data_dir: &std::path::Path) -> Self {
        let path = config.snapshot.then(|| data_dir.join(snapshot::FILE_NAME));
        let cache = Self::build(config, clock, path.clone());
        if let Some(path) = path {
            snapshot::load_or_set_aside(&cache, &path);
        }
        cache
    }

    fn build(config: CacheConfig, clock: SharedClock, snapshot_path: Option<PathBuf>) -> Self {
        let (events, _) = broadcast::channel(EVENTS_CAPACITY);
        let start_ms = clock.now_ms();
        let settings = settings::Settings::new(&config);
        let inner = Inner {
            ks: keyspace::Keyspace::new(
                config.eviction_policy == EvictionPolicy::AllkeysSieve,
                config.eviction_policy.is_lfu(),
            ),
            maxmemory: AtomicU64::new(config.maxmemory_bytes),
            policy: AtomicU16::new(config.eviction_policy.code()),
            bulk_bytes_max: AtomicUsize::new(RESP_BULK_BYTES_MAX),
            query_buffer_bytes_max: AtomicUsize::new(QUERY_BUFFER_BYTES_MAX),
            maxclients: AtomicUsize::new(config.connections_max.min(CONNECTIONS_MAX)),
            used_bytes: AtomicUsize::new(0),
            peak_bytes: AtomicUsize::new(0),
            stats: Stats::default(),
            command_stats: cmdstats::CommandStats::new(clock.clone()),
            slowlog: slowlog::Slowlog::default(),
            events,
            events_subscribed: std::sync::atomic::AtomicBool::new(false),
            pubsub: pubsub::PubSub::default(),
            tracking: tracking::Tracking::default(),
            monitors: monitor::Monitors::default(),
            blocked: Mutex::new(std::collections::VecDeque::new()),
            blocked_len: AtomicUsize::new(0),
            serving: std::sync::atomic::AtomicBool::new(false),
            serve_pending: std::sync::atomic::AtomicBool::new(false),
            next_ticket: AtomicU64::new(1),
            watched: Mutex::new(HashMap::new()),
            watch_count: AtomicUsize::new(0),
            start_ms,
            port: AtomicU16::new(0),
            zset_listpack: AtomicU64::new(pack_listpack(zset::Listpack::default())),
            hash_listpack: AtomicU64::new(pack_listpack(value::Compact::default().hash)),
            set_intset_entries: AtomicUsize::new(value::Compact::default().intset_entries),
            hll_sparse_max_bytes: AtomicUsize::new(cmd::hll::SPARSE_MAX_BYTES_DEFAULT),
            stream_node_max_entries: AtomicUsize::new(stream::NODE_ENTRIES),
            rng: AtomicU64::new(start_ms ^ 0x5DEE_CE66_D1CE_4E5B),
            snapshot_path,
            saves: snapshot::Saves::new(start_ms),
            maxmemory_samples: AtomicU32::new(evict::MAXMEMORY_SAMPLES_DEFAULT),
            evict_pool: Mutex::new(evict::Pool::default()),
            scripting: Mutex::new(None),
            script_info: script::Info::default(),
            running: Arc::default(),
            idle_timeout_s: AtomicU64::new(0),
            hz: AtomicU32::new(config.active_expiry_hz.clamp(HZ_MIN, HZ_MAX)),
            resp_clients: Mutex::new(Vec::new()),
            settings,
            clock,
            config,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Runs one command (`args[0]` is its name) against database `db` and returns Redis's
    /// reply. Connection-level commands (SELECT, MULTI, SUBSCRIBE, …) answer with an error
    /// here; the RESP server handles them.
    #[must_use]
    pub fn execute(&self, db: usize, args: &[Bytes]) -> Frame {
        let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        self.execute_args(db, &argv)
    }

    /// [`Cache::execute`] over borrowed arguments.
    pub(crate) fn execute_args(&self, db: usize, args: &[&[u8]]) -> Frame {
        let stats = &self.inner.command_stats;
        let Some(spec) = args.first().and_then(|n| resp::command::lookup(n)) else {
            let reply = resp::command::unknown_command(args);
            stats.errors_in(&reply, false);
            return reply;
        };
        if let Some(e) = resp::command::arity_error(spec, args) {
            stats.rejected(spec, args, &e);
            return e;
        }
        self.run(db, spec, args, (2, RunFor::NONE), self.now_ms(), None, None)
            .0
    }

    fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Runs an already looked-up and arity-checked command at wall-clock time `now_ms` (the
    /// RESP server reads the clock once per batch of pipelined commands and passes it here),
    /// counting the call in INFO commandstats and, when slow, in SLOWLOG as `caller`'s. The
    /// call is timed from monotonic `started_ns` when given (the RESP server passes the end of
    /// the command before it in the same batch, so that a command costs one clock read), else
    /// from a reading taken here; also returns the monotonic reading when it ended.
    #[expect(
        clippy::too_many_arguments,
        reason = "the command, its context and its start time"
    )]
    pub(crate) fn run(
        &self,
        db: usize,
        spec: &'static resp::command::Spec,
        args: &[&[u8]],
        (proto, run_for): (u8, RunFor),
        now_ms: u64,
        started_ns: Option<u64>,
        caller: Caller<'_>,
    ) -> (Frame, u64) {
        let started_ns = started_ns.unwrap_or_else(|| self.inner.clock.monotonic_ns());
        match self.run_uncounted(db, spec, args, (proto, run_for), now_ms) {
            Ok(reply) => {
                // A script command is fed before it runs, so that the commands it calls follow
                // it (the RESP server feeds it).
                if self.inner.monitors.is_active() && !script::is_script_command(spec) {
                    self.monitor(db, args, caller);
                }
                let ended = self.inner.clock.monotonic_ns();
                let reply = self.counted(spec, args, started_ns, ended, reply, caller);
                (reply, ended)
            }
            Err(rejected) => (rejected, self.inner.clock.monotonic_ns()),
        }
    }

    /// Feeds a command `caller` ran in `db` to the MONITOR clients. A command without a
    /// caller (the HTTP API's) is not fed: monitors show RESP clients and scripts, as Redis.
    pub(crate) fn monitor(&self, db: usize, args: &[&[u8]], caller: Caller<'_>) {
        if let Some(caller) = caller
            && self.inner.monitors.is_active()
        {
            let (peer, _) = caller();
            self.inner.monitor(db, monitor::Origin::Client(&peer), args);
        }
    }

    /// Counts a call that ran from monotonic `started` to `ended` and answered `reply` in INFO
    /// commandstats (and SLOWLOG); returns the reply.
    fn counted(
        &self,
        spec: &'static resp::command::Spec,
        args: &[&[u8]],
        started: u64,
        ended: u64,
        reply: Frame,
        caller: Caller<'_>,
    ) -> Frame {
        let ran = ended.saturating_sub(started);
        self.inner.command_stats.call(spec, args, ran, &reply);
        self.slow(args, ran, caller);
        reply
    }

    /// Logs a command that ran `nanos` in SLOWLOG when it is slow enough.
    pub(crate) fn slow(&self, args: &[&[u8]], nanos: u64, caller: Caller<'_>) {
        let log = &self.inner.slowlog;
        // The wall clock is read only for a command that is logged.
        if log.wants(nanos) {
            log.observe(args, nanos, self.inner.clock.now_ms() / 1000, caller);
        }
    }

    /// [`Cache::run`] without counting the call (a blocking command counts one call when it
    /// answers, however often it ran). A command refused over `maxmemory` is counted as
    /// rejected and is the error.
    pub(crate) fn run_uncounted(
        &self,
        db: usize,
        spec: &'static resp::command::Spec,
        args: &[&[u8]],
        who: (u8, RunFor),
        now_ms: u64,
    ) -> Result<Frame, Frame> {
        self.run_in(db, spec, args, who, now_ms, false)
            .map(|(reply, _)| reply)
    }

    /// Runs a script command on the calling (RESP) thread as [`Cache::run`] does, unless the
    /// script runs past its inline budget before it has had an effect: then it is stopped
    /// and `None` says to run it again where the RESP thread need not wait for it
    /// (`script::SCRIPT_INLINE_MS`). A stopped run is not counted as a call.
    pub(crate) fn run_script_inline(
        &self,
        db: usize,
        spec: &'static resp::command::Spec,
        args: &[&[u8]],
        who: (u8, RunFor),
        now_ms: u64,
        caller: Caller<'_>,
    ) -> Option<Frame> {
        let started = self.inner.clock.monotonic_ns();
        match self.run_in(db, spec, args, who, now_ms, true) {
            Ok((_, true)) => None,
            Ok((reply, false)) => {
                let ended = self.inner.clock.monotonic_ns();
                Some(self.counted(spec, args, started, ended, reply, caller))
            }
            Err(rejected) => Some(rejected),
        }
    }

    /// [`Cache::run_uncounted`], with the script command run inline (`script_inline`); also
    /// returns whether the script stopped to be handed off.
    fn run_in(
        &self,
        db: usize,
        spec: &'static resp::command::Spec,
        args: &[&[u8]],
        (proto, run_for): (u8, RunFor),
        now_ms: u64,
        script_inline: bool,
    ) -> Result<(Frame, bool), Frame> {
        // Over the ceiling only a call that may grow memory (Redis's `DENYOOM` calls) is
        // refused once eviction could not make room: SREM, HDEL, EXPIRE, RENAME, XGROUP SETID
        // … and every read still run, as in Redis.
        let room = self.evict_before_command(run_for);
        if !room && self.denies_oom(spec, args) {
            let oom = oom_error();
            self.inner.command_stats.rejected(spec, args, &oom);
            return Err(oom);
        }
        let inner = &*self.inner;
        if let Some(reply) = script::answer_while_running(inner, spec, args) {
            inner.stats.commands.fetch_add(1, Ordering::Relaxed);
            return Ok((reply, false));
        }
        let now = now_ms;
        // A script refuses its memory-growing commands when memory was over the ceiling
        // before it started (Redis's `pre_command_oom_state`); eviction cannot run inside it.
        let over_memory = !room && script::is_script_command(spec);
        let mut ctx = match spec.mode {
            resp::command::Mode::Keyed | resp::command::Mode::Blocking
                if spec.mode == resp::command::Mode::Keyed || spec.first > 0 =>
            {
                inner.ks.keyed(db, resp::command::keys_of(spec, args), now)
            }
            _ => inner.ks.exclusive(db, now),
        };
        ctx.rng_source = Some(&inner.rng);
        ctx.resp3 = proto >= 3;
        ctx.track = self.tracking();
        ctx.count_lookups = !spec.write;
        ctx.over_memory = over_memory;
        ctx.script_inline = script_inline;
        ctx.run_for = run_for;
        // A script's commands may write whatever its own flag says, so only a plain read
        // leaves expired keys in place.
        if !spec.write && !script::is_script_command(spec) && inner.ks.pause.held(now).is_some() {
            ctx.keep_expired(true);
        }
        let reply = (spec.handler)(&mut ctx, inner, args);
        let handed_off = ctx.script_handed_off;
        if !handed_off {
            self.remember_reads(&mut ctx, spec, args);
        }
        self.finish(ctx);
        if !handed_off {
            inner.stats.commands.fetch_add(1, Ordering::Relaxed);
        }
        Ok((reply, handed_off))
    }

    /// Runs a MULTI queue atomically (the gate held exclusively throughout). `db` follows any
    /// SELECT inside the queue. The connection that queued it runs its connection commands
    /// (CLIENT, HELLO, SUBSCRIBE, …) in their place through `connection`; without one they
    /// are refused.
    ///
    /// # Errors
    /// Redis's EXECABORT reply, with nothing run, when the queue holds a write that memory
    /// over the ceiling refuses (after eviction), as Redis checks EXEC.
    pub(crate) fn run_batch(
        &self,
        db: &mut usize,
        queue: &[Vec<Bytes>],
        (proto, run_for): (u8, RunFor),
        caller: Caller<'_>,
        mut connection: ConnectionCommands<'_>,
    ) -> Result<ExecReplies, Frame> {
        // Over the ceiling the EXEC evicts first, as every command does; a queue holding a
        // command that may grow memory is refused when that was not enough.
        let over = !self.evict_before_command(run_for);
        let writes = over
            && queue.iter().any(|args| {
                let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
                args.first()
                    .and_then(|n| resp::command::lookup(n))
                    .is_some_and(|spec| self.denies_oom(spec, &args))
            });
        if writes {
            return Err(Frame::error(format!(
                "EXECABORT Transaction discarded because of: {OOM}"
            )));
        }
        let inner = &*self.inner;
        let now = self.now_ms();
        let over_memory = over
            && queue.iter().any(|args| {
                args.first()
                    .and_then(|n| resp::command::lookup(n))
                    .is_some_and(script::is_script_command)
            });
        let mut ctx = inner.ks.exclusive(*db, now);
        ctx.over_memory = over_memory;
        ctx.run_for = run_for;
        let paused = inner.ks.pause.held(now).is_some();
        // The connection's protocol as each command runs: a HELLO in the queue changes it for
        // the commands after it.
        let mut proto = proto;
        ctx.resp3 = proto >= 3;
        ctx.rng_source = Some(&inner.rng);
        let mut replies = Vec::with_capacity(queue.len());
        let stats = &inner.command_stats;
        for args in queue {
            let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            let args = &args[..];
            let Some(spec) = args.first().and_then(|n| resp::command::lookup(n)) else {
                let reply = resp::command::unknown_command(args);
                stats.errors_in(&reply, false);
                replies.push((reply, proto));
                continue;
            };
            if let Some(e) = resp::command::arity_error(spec, args) {
                stats.rejected(spec, args, &e);
                replies.push((e, proto));
                continue;
            }
            let started = inner.clock.monotonic_ns();
            // Fed after it runs, but a script command before (the commands it calls follow
            // it), and a connection command not at all (it does not run here).
            let script = script::is_script_command(spec);
            if script {
                self.monitor(ctx.db, args, caller);
            }
            let reply = if spec.name == "select" {
                match args.get(1).map(|a| cmd::keys::db_index(a)) {
                    Some(Ok(n)) => {
                        *db = n;
                        ctx.db = n;
                        Frame::ok()
                    }
                    Some(Err(e)) => e,
                    None => resp::command::wrong_arity(spec),
                }
            } else if spec.name == "bgsave" {
                // Its thread copies the keyspace once this transaction releases the gate.
                cmd::server::bgsave(self, args, true)
            } else if spec.name == "ssubscribe" {
                // Redis runs a transaction's commands as a `CLIENT_DENY_BLOCKING` client, which
                // SSUBSCRIBE refuses (SUBSCRIBE and PSUBSCRIBE let it through there).
                Frame::error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
            } else if spec.mode == resp::command::Mode::Connection {
                match connection.as_mut() {
                    // A SUBSCRIBE of several names answers one confirmation each, in place;
                    // a HELLO answers in the protocol it chose, which the rest then use.
                    Some(run) => {
                        let (mut frames, now) = run(spec, args);
                        proto = now;
                        ctx.resp3 = proto >= 3;
                        let last = frames.pop().unwrap_or_else(Frame::ok);
                        replies.extend(frames.into_iter().map(|f| (f, proto)));
                        last
                    }
                    None => connection_command_in_transaction(spec),
                }
            } else {
                ctx.count_lookups = !spec.write;
                ctx.keep_expired(paused && !spec.write && !script::is_script_command(spec));
                let own_notes = ctx.notes.len();
                let reply = (spec.handler)(&mut ctx, inner, args);
                ctx.count_lookups = false;
                self.remember_reads(&mut ctx, spec, args);
                // This command's lazy expirations go just before its own events, not before
                // the whole transaction's.
                ctx.drain_expired(own_notes);
                inner.stats.commands.fetch_add(1, Ordering::Relaxed);
                reply
            };
            let ran = inner.clock.monotonic_ns().saturating_sub(started);
            if !script && spec.mode != resp::command::Mode::Connection {
                self.monitor(ctx.db, args, caller);
            }
            stats.call(spec, args, ran, &reply);
            self.slow(args, ran, caller);
            replies.push((reply, proto));
        }
        self.finish(ctx);
        Ok(ExecReplies {
            commands: queue.len(),
            replies,
        })
    }

    /// Applies a context built outside `run` (snapshot load).
    pub(crate) fn finish_external(&self, ctx: keyspace::Ctx<'_>) {
        self.finish(ctx);
    }

    /// XREAD's arguments with each `$` pinned to its stream's last ID now, before it blocks.
    pub(crate) fn xread_pin_ids(&self, db: usize, args: &[Bytes]) -> Vec<Bytes> {
        let mut ctx = self.inner.ks.exclusive(db, self.now_ms());
        let pinned = cmd::stream::resolve_dollars(&mut ctx, args);
        self.finish(ctx);
        pinned
    }

    /// Releases a context and applies its effects: memory account, events, watches, wakeups.
    fn finish(&self, mut ctx: keyspace::Ctx<'_>) {
        let inner = &*self.inner;
        let delta = ctx.finish();
        let effects = std::mem::take(&mut ctx.effects);
        let notes = std::mem::take(&mut ctx.notes);
        let (notify_flags, now_ms) = (ctx.notify, ctx.now_ms);
        let expired = ctx.expired;
        let pushed = ctx.list_pushed;
        let flushed = ctx.flushed;
        let watch_touched = std::mem::take(&mut ctx.watch_touched);
        let by = ctx.run_for.client;
        drop(ctx);
        if delta > 0 {
            inner
                .used_bytes
                .fetch_add(usize::try_from(delta).unwrap_or(0), Ordering::Relaxed);
        } else if delta < 0 {
            let d = usize::try_from(delta.unsigned_abs()).unwrap_or(0);
            let _ = inner
                .used_bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                    Some(u.saturating_sub(d))
                });
        }
        if expired > 0 {
            inner
                .stats
                .expired_keys
                .fetch_add(expired, Ordering::Relaxed);
        }
        if !watch_touched.is_empty() {
            self.bump_watched_keys(&watch_touched);
        }
        for note in &notes {
            notify::publish(&inner.pubsub, notify_flags, note, now_ms);
        }
        let had_effects = !effects.is_empty();
        // A flush also empties the entries of clients whose tracking is off by now.
        if flushed || (had_effects && inner.tracking.is_active()) {
            inner
                .tracking
                .changed(by, &effects, flushed, inner.tracking_limits());
        }
        if had_effects {
            self.bump_watched(&effects);
            if self.has_event_receivers() {
                for e in effects {
                    let _ = inner.events.send(KeyEvent {
                        db: e.db,
                        key: e.key,
                        kind: e.kind,
                    });
                }
            }
        }
        if (pushed || had_effects || flushed) && inner.blocked_len.load(Ordering::Relaxed) > 0 {
            self.serve_blocked();
        }
    }

    /// Queues a blocked pop; its reply arrives on the receiver once a write makes it ready.
    pub(crate) fn block(
        &self,
        db: usize,
        spec: &'static resp::command::Spec,
        args: Vec<Bytes>,
        who: (u8, RunFor),
    ) -> (u64, oneshot::Receiver<Frame>) {
        let (tx, rx) = oneshot::channel();
        let ticket = self.inner.next_ticket.fetch_add(1, Ordering::Relaxed);
        let mut q = self
            .inner
            .blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        q.push_back(Blocked {
            ticket,
            db,
            spec,
            args,
            who,
            tx,
        });
        self.inner.blocked_len.store(q.len(), Ordering::Relaxed);
        drop(q);
        // A write between the caller's first attempt and this registration must not be missed.
        self.serve_blocked();
        (ticket, rx)
    }

    /// Withdraws a blocked pop. `false` means it was already served (its reply is on the way).
    pub(crate) fn unblock(&self, ticket: u64) -> bool {
        let mut q = self
            .inner
            .blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = q.len();
        q.retain(|b| b.ticket != ticket);
        self.inner.blocked_len.store(q.len(), Ordering::Relaxed);
        q.len() != before
    }

    /// Serves ready blocked pops in arrival order until a pass serves none. Re-entrant calls
    /// (from the attempts' own writes) only ask the running loop for another pass.
    fn serve_blocked(&self) {
        let inner = &*self.inner;
        inner.serve_pending.store(true, Ordering::SeqCst);
        loop {
            if inner
                .serving
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                return;
            }
            while inner.serve_pending.swap(false, Ordering::SeqCst) {
                self.serve_pass();
            }
            inner.serving.store(false, Ordering::SeqCst);
            if !inner.serve_pending.load(Ordering::SeqCst) {
                return;
            }
        }
    }

    fn serve_pass(&self) {
        let inner = &*self.inner;
        let mut q = inner.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        let mut i = 0;
        while i < q.len() {
            let Some(b) = q.get(i) else { break };
            if b.tx.is_closed() {
                q.remove(i);
                continue;
            }
            let (db, spec, who) = (b.db, b.spec, b.who);
            let args = b.args.clone();
            let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
            match self.attempt(db, spec, &argv, who) {
                Some(reply) => {
                    if let Some(b) = q.remove(i) {
                        let _ = b.tx.send(reply);
                    }
                    inner.serve_pending.store(true, Ordering::SeqCst);
                }
                None => i += 1,
            }
        }
        inner.blocked_len.store(q.len(), Ordering::Relaxed);
    }

    /// One attempt of a blocking pop: `None` while it must keep waiting.
    pub(crate) fn attempt(
        &self,
        db: usize,
        spec: &'static resp::command::Spec,
        args: &[&[u8]],
        who: (u8, RunFor),
    ) -> Option<Frame> {
        // Not counted: the blocked call is counted once, when it answers.
        let reply = match self.run_uncounted(db, spec, args, who, self.now_ms()) {
            Ok(reply) => reply,
            Err(rejected) => return Some(rejected),
        };
        let key_type = |key: &[u8]| {
            resp::command::lookup(b"type").and_then(|t| {
                self.run_uncounted(db, t, &[b"TYPE", key], (2, RunFor::NONE), self.now_ms())
                    .ok()
            })
        };
        match &reply {
            Frame::Null | Frame::NullArray => None,
            // A blocked XREADGROUP whose stream went (deleted, replaced, flushed) or whose group
            // was destroyed is answered with Redis 7.0's errors for those.
            Frame::Error(_) if spec.name == "xreadgroup" => {
                let gone = cmd::stream::stream_keys(args)
                    .into_iter()
                    .any(|k| key_type(k) != Some(Frame::simple("stream")));
                Some(Frame::error(if gone {
                    "UNBLOCKED the stream key no longer exists"
                } else {
                    "NOGROUP the consumer group this client was blocked on no longer exists"
                }))
            }
            Frame::Error(e) if e.starts_with("WRONGTYPE") => {
                // Only a wrong-typed destination is reported; a source that is not (yet) a list
                // keeps the client waiting, as in Redis.
                if matches!(spec.name, "blmove" | "brpoplpush") {
                    let t = key_type(args.get(1).copied().unwrap_or_default());
                    (t == Some(Frame::simple("list"))).then_some(reply)
                } else {
                    None
                }
            }
            _ => Some(reply),
        }
    }

    /// Remembers the keys a read-only command (or a script that called one) read, for the
    /// client it runs for when that client's reads are tracked (`crate::cache::tracking`):
    /// called while `ctx` still holds the command's shards.
    fn remember_reads(
        &self,
        ctx: &mut keyspace::Ctx<'_>,
        spec: &'static resp::command::Spec,
        args: &[&[u8]],
    ) {
        if !ctx.run_for.remember_reads {
            return;
        }
        // A script's own flag is not looked at: only the commands it called (Redis 7.0).
        let read = if script::is_script_command(spec) {
            std::mem::take(&mut ctx.script_read)
        } else {
            resp::command::is_readonly(spec, args)
        };
        if !read {
            return;
        }
        if let Ok(found) = resp::keyspecs::getkeys(args) {
            let keys = found.into_iter().filter_map(|(i, _)| args.get(i).copied());
            let inner = &*self.inner;
            inner
                .tracking
                .remember(ctx.run_for.client, keys, inner.tracking_limits());
        }
    }

    /// Whether per-key effects are needed by anyone right now.
    fn tracking(&self) -> bool {
        let inner = &*self.inner;
        inner.watch_count.load(Ordering::Relaxed) > 0
            || inner.blocked_len.load(Ordering::Relaxed) > 0
            || inner.tracking.is_active()
            || self.has_event_receivers()
    }

    /// Whether a keyspace event receiver exists (without the channel's mutex until the first
    /// subscription).
    fn has_event_receivers(&self) -> bool {
        let inner = &*self.inner;
        inner.events_subscribed.load(Ordering::Relaxed) && inner.events.receiver_count() > 0
    }

    fn bump_watched(&self, effects: &[keyspace::Effect]) {
        if self.inner.watch_count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut watched = self
            .inner
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if watched.is_empty() {
            return;
        }
        for e in effects {
            if let Some((version, _)) = watched.get_mut(&(e.db, e.key.clone())) {
                *version += 1;
            }
        }
    }

    /// Counts a change of each watched `(db, key)` (a flush or swap that changed them).
    fn bump_watched_keys(&self, keys: &[(usize, Bytes)]) {
        let mut watched = self
            .inner
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for k in keys {
            if let Some((version, _)) = watched.get_mut(k) {
                *version += 1;
            }
        }
    }

    /// Starts watching `key` in `db`; returns its current version.
    pub(crate) fn watch(&self, db: usize, key: &Bytes) -> u64 {
        // Holding the key's shard orders this registration against writers: a writer either
        // finished before (and need not count) or starts after and sees `watch_count > 0`.
        let _shard = self.inner.ks.keyed(db, [&key[..]], self.now_ms());
        let mut watched = self
            .inner
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = watched.entry((db, key.clone())).or_insert((0, 0));
        slot.1 += 1;
        let version = slot.0;
        self.inner
            .watch_count
            .store(watched.len(), Ordering::Relaxed);
        version
    }

    /// Stops watching `key` in `db`.
    pub(crate) fn unwatch(&self, db: usize, key: &Bytes) {
        let mut watched = self
            .inner
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let k = (db, key.clone());
        if let Some(slot) = watched.get_mut(&k) {
            slot.1 = slot.1.saturating_sub(1);
            if slot.1 == 0 {
                watched.remove(&k);
            }
        }
        self.inner
            .watch_count
            .store(watched.len(), Ordering::Relaxed);
    }

    /// The current version of a watched key.
    pub(crate) fn watched_version(&self, db: usize, key: &Bytes) -> u64 {
        let watched = self
            .inner
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        watched.get(&(db, key.clone())).map_or(0, |s| s.0)
    }

    /// Whether `key` in `db` has expired but is still stored (an EXEC after WATCH treats it as
    /// changed, as Redis does).
    pub(crate) fn is_stale(&self, db: usize, key: &[u8]) -> bool {
        let now = self.now_ms();
        let ks = &self.inner.ks;
        let _gate = ks.gate.read().unwrap_or_else(PoisonError::into_inner);
        ks.dbs
            .get(db)
            .and_then(|d| d.shards.get(keyspace::shard_of(key)))
            .is_some_and(|m| {
                keyspace::lock(m)
                    .peek(key)
                    .is_some_and(|e| e.is_expired(now))
            })
    }

    /// Redis's `performEvictions`, as its `processCommand` runs it before every command:
    /// over the ceiling, evicts by the configured policy until used memory is back under it.
    /// Returns whether memory is at most the ceiling (or none is set) — or, for a RESP
    /// client's command (`run_for.client != 0`), whether it is or a CLIENT PAUSE is in force:
    /// its connection already evicted before the command ([`Cache::evict_for_client`]), so it
    /// gets the verdict only, and nothing is refused while paused. The writers a pause does
    /// not hold (flows, the HTTP API) evict here, so they cannot take memory past the ceiling
    /// during a pause either. One load of the ceiling while none is set.
    pub(crate) fn evict_before_command(&self, run_for: RunFor) -> bool {
        let Some(max) = self.ceiling_passed() else {
            return true;
        };
        if run_for.client != 0 {
            return self.paused();
        }
        self.evict_until(max)
    }

    /// What a RESP connection does before each command of its client, those it answers itself
    /// (EXEC, PING, CLIENT …) too: over the ceiling, evicts what the policy allows — nothing
    /// while a CLIENT PAUSE is in force, as Redis's `performEvictions` keeps the dataset still.
    /// Returns whether it looked (memory was over the ceiling).
    pub(crate) fn evict_for_client(&self) -> bool {
        let Some(max) = self.ceiling_passed() else {
            return false;
        };
        if !self.paused() {
            self.evict_until(max);
        }
        true
    }

    /// The ceiling, when one is set and used memory is over it.
    fn ceiling_passed(&self) -> Option<usize> {
        let max = self.inner.maxmemory.load(Ordering::Relaxed);
        if max == 0 {
            return None;
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        (self.inner.used_bytes.load(Ordering::Relaxed) > max).then_some(max)
    }

    /// Whether a CLIENT PAUSE is in force.
    fn paused(&self) -> bool {
        self.inner
            .ks
            .pause
            .held(self.inner.clock.now_ms())
            .is_some()
    }

    /// Whether this call is refused over `maxmemory`: its command's (or subcommand's) DENYOOM
    /// flag, or a script that declares flags without allow-oom or no-writes. May allocate:
    /// asked only with memory over the ceiling.
    fn denies_oom(&self, spec: &resp::command::Spec, args: &[&[u8]]) -> bool {
        spec.denies_oom(args)
            || (script::is_script_command(spec)
                && script::declares_denyoom(&self.inner, spec, args))
    }

    /// Answers OOM when memory is over the ceiling and eviction cannot bring it back. The RESP
    /// server asks before queueing any command after MULTI, as Redis refuses every queued
    /// command then (so EXEC discards the transaction).
    pub(crate) fn check_memory_now(&self, run_for: RunFor) -> Option<Frame> {
        (!self.evict_before_command(run_for)).then(oom_error)
    }

    /// Evicts keys by the configured policy until used memory is at most `max`. Returns false
    /// when the policy forbids it or nothing is left to evict.
    fn evict_until(&self, max: usize) -> bool {
        // As Redis records its peak after each command, before the next one's eviction.
        self.inner.note_memory_peak();
        let monitor = &self.inner.command_stats.monitor;
        // As Redis's `latencyStartMonitor`: the clock is read only while the latency monitor
        // is on (a threshold of 0 records nothing), not twice per write at `maxmemory`.
        if monitor.threshold_ms() == 0 {
            return self.evict_until_untimed(max);
        }
        let started = self.inner.clock.monotonic_ns();
        let done = self.evict_until_untimed(max);
        let ran = self.inner.clock.monotonic_ns().saturating_sub(started);
        monitor.observe("eviction-cycle", ran);
        done
    }

    /// [`Cache::evict_until`] without the latency monitor's timing.
    fn evict_until_untimed(&self, max: usize) -> bool {
        let policy = self.inner.policy();
        if policy == EvictionPolicy::Noeviction {
            return false;
        }
        let inner = &*self.inner;
        let now = self.now_ms();
        let samples = inner.maxmemory_samples.load(Ordering::Relaxed) as usize;
        let mut pool = inner
            .evict_pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut misses = 0usize;
        while inner.used_bytes.load(Ordering::Relaxed) > max {
            let seed = inner
                .rng
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                | 1;
            let step = match policy {
                EvictionPolicy::AllkeysSieve => self.evict_key(evict::sieve_victim(&inner.ks), now),
                EvictionPolicy::AllkeysRandom | EvictionPolicy::VolatileRandom => {
                    let volatile = policy == EvictionPolicy::VolatileRandom;
                    let victim = evict::random_victim(&inner.ks, &mut pool, seed, volatile);
                    self.evict_key(victim, now)
                }
                _ => self.pooled_step(&mut pool, policy, samples, seed, now),
            };
            match step {
                Step::Evicted => misses = 0,
                Step::Retry => {
                    misses += 1;
                    if misses > EVICTION_MISSES_MAX {
                        return false;
                    }
                }
                Step::Empty => return false,
            }
        }
        true
    }

    /// Evicts `victim`, `(db, key)`, if it is still there.
    fn evict_key(&self, victim: Option<(usize, Box<[u8]>)>, now: u64) -> Step {
        let Some((db, key)) = victim else {
            return Step::Empty;
        };
        let mut ctx = self
            .inner
            .ks
            .exclusive_shard(db, keyspace::shard_of(&key), now);
        self.evict_locked(ctx_remove(&mut ctx, db, &key), ctx)
    }

    /// Finishes a context in which an eviction removed a key (`removed`) or found it gone.
    fn evict_locked(&self, removed: bool, ctx: keyspace::Ctx<'_>) -> Step {
        self.finish(ctx);
        if removed {
            self.inner
                .stats
                .evicted_keys
                .fetch_add(1, Ordering::Relaxed);
            Step::Evicted
        } else {
            Step::Retry
        }
    }

    /// One step of a pooled policy (LRU, LFU, TTL): samples every database into the pool,
    /// then evicts the pool's best candidate that still qualifies.
    fn pooled_step(
        &self,
        pool: &mut evict::Pool,
        policy: EvictionPolicy,
        samples: usize,
        seed: u64,
        now: u64,
    ) -> Step {
        let inner = &*self.inner;
        let scorer = evict::Scorer {
            policy,
            now_ms: now,
            now32: shard::access_stamp(now),
            lfu: inner.ks.lfu(),
        };
        evict::populate(&inner.ks, pool, scorer, samples, seed);
        // Each candidate is evicted, dropped or rescored; a rescored one may come back once.
        for _ in 0..2 * evict::EVICTION_POOL_LEN {
            let Some((score, db, key)) = pool.pop_best() else {
                return Step::Empty;
            };
            let mut ctx = inner.ks.exclusive_shard(db, keyspace::shard_of(&key), now);
            let entry = ctx.shard_at(0).and_then(|s| s.peek(&key));
            match evict::verdict(entry, score, scorer) {
                evict::Verdict::Evict => {
                    let removed = ctx_remove(&mut ctx, db, &key);
                    if let Step::Evicted = self.evict_locked(removed, ctx) {
                        return Step::Evicted;
                    }
                }
                evict::Verdict::Rescore(score) => {
                    self.finish(ctx);
                    pool.offer(score, db, || &key);
                }
                evict::Verdict::Drop => self.finish(ctx),
            }
        }
        Step::Retry
    }

    /// The time between two housekeeping passes: a second divided by `hz` as CONFIG SET last
    /// left it (Redis's `server.hz`, read by each turn of its event loop's timer).
    #[must_use]
    pub fn housekeeping_period(&self) -> std::time::Duration {
        let hz = self.inner.hz.load(Ordering::Relaxed).clamp(HZ_MIN, HZ_MAX);
        std::time::Duration::from_millis(1000 / u64::from(hz))
    }

    /// Closes the RESP clients idle for more than `timeout` seconds (none while it is 0), as
    /// Redis's `clientsCronHandleTimeout`: whole seconds of the injected wall clock since the
    /// client's last command (or the end of its last blocking wait); blocked clients (their own
    /// timeout ends them), subscribers and MONITORs are left alone. Returns how many were
    /// closed. The work is bounded by the number of connections ([`CONNECTIONS_MAX`] per
    /// server).
    pub fn close_idle_clients(&self) -> usize {
        let timeout_s = self.inner.idle_timeout_s.load(Ordering::Relaxed);
        if timeout_s == 0 {
            return 0;
        }
        let now_ms = self.now_ms();
        self.sum_over_resp_servers(|shared| shared.close_idle(now_ms, timeout_s))
    }

    /// The sum of `count` over the RESP servers serving this cache (those that stopped are
    /// forgotten).
    fn sum_over_resp_servers(&self, count: impl Fn(&server::Shared) -> usize) -> usize {
        let mut servers = self
            .inner
            .resp_clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        servers.retain(|w| w.strong_count() > 0);
        servers
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .map(|shared| count(&shared))
            .sum()
    }

    /// Records the memory in use as INFO's `used_memory_peak` when it is above it (Redis's
    /// `serverCron` samples its peak the same way); returns the peak.
    pub fn sample_memory_peak(&self) -> usize {
        self.inner.note_memory_peak()
    }

    /// Redis's `clientsCronResizeQueryBuffer` for every RESP client: nudges those whose query
    /// buffer wastes room — idle for more than 2 s with room to spare, or past 32 KiB — and
    /// each one's connection resizes its buffer by Redis's rules when it next waits for a
    /// request (an idle client's goes to nothing, so an idle connection holds no buffers).
    /// Returns how many were nudged; bounded by the number of connections.
    pub fn resize_client_query_buffers(&self) -> usize {
        let now_ms = self.now_ms();
        self.sum_over_resp_servers(|shared| shared.nudge_query_buffers(now_ms))
    }

    /// One bounded active expiry pass: at most [`ACTIVE_EXPIRE_KEYS_PER_SHARD_MAX`] due keys
    /// per shard are removed. Returns how many keys were removed.
    pub fn active_expire_cycle(&self) -> usize {
        let inner = &*self.inner;
        let now = self.now_ms();
        // CLIENT PAUSE holds expiry.
        if inner.ks.pause.held(now).is_some() {
            return 0;
        }
        let started = inner.clock.monotonic_ns();
        let mut total = 0;
        for db in 0..DATABASES {
            for s in 0..SHARDS {
                let mut ctx = inner.ks.exclusive_shard(db, s, now);
                total += ctx.expire_locked(ACTIVE_EXPIRE_KEYS_PER_SHARD_MAX);
                self.finish(ctx);
            }
        }
        let ran = inner.clock.monotonic_ns().saturating_sub(started);
        inner.command_stats.monitor.observe("expire-cycle", ran);
        total
    }

    /// Why `args` make a transaction without a connection ([`Cache::execute_atomic`], as
    /// `/redis/multi-exec` runs it) be refused whole, if they do: an unknown command, a wrong
    /// number of arguments or a `no-multi` command (the cases of Redis's `EXECABORT`), or a
    /// command that needs a connection (WATCH, SUBSCRIBE, …), which such a transaction cannot
    /// run. `None` when the command may run in one.
    #[must_use]
    pub fn transaction_refusal(args: &[Bytes]) -> Option<Frame> {
        let argv: Vec<&[u8]> = args.iter().map(Bytes::as_ref).collect();
        let name = argv.first().copied().unwrap_or_default();
        let Some(spec) = resp::command::lookup(name) else {
            return Some(resp::command::unknown_command(&argv));
        };
        if let Some(e) = resp::command::arity_error(spec, &argv) {
            return Some(e);
        }
        if resp::command::refused_in_multi(spec) {
            return Some(Frame::error(resp::command::NOT_IN_MULTI));
        }
        // `run_batch` runs these three itself; every other connection command it can only
        // answer with an error.
        let connection_only = spec.mode == resp::command::Mode::Connection
            && !matches!(spec.name, "select" | "bgsave" | "ssubscribe");
        connection_only.then(|| connection_command_in_transaction(spec))
    }

    /// Runs `cmds` as one transaction (MULTI/EXEC semantics without WATCH): no other command
    /// interleaves. A SELECT inside switches the database for the rest of the batch.
    ///
    /// # Errors
    /// Redis's EXECABORT reply, with nothing run, when `cmds` hold a write and memory is over
    /// `maxmemory` after eviction (the OOM a single write would get).
    pub fn execute_atomic(&self, db: usize, cmds: &[Vec<Bytes>]) -> Result<Vec<Frame>, Frame> {
        let mut db = db;
        self.run_batch(&mut db, cmds, (2, RunFor::NONE), None, None)
            .map(ExecReplies::into_frames)
    }

    /// Stores a string under `key` in `db`, with an optional TTL in milliseconds.
    pub fn set(&self, db: usize, key: &[u8], value: &[u8], ttl_ms: Option<u64>) -> Frame {
        let mut args = vec![
            Bytes::from_static(b"SET"),
            Bytes::copy_from_slice(key),
            Bytes::copy_from_slice(value),
        ];
        if let Some(ttl) = ttl_ms {
            args.push(Bytes::from_static(b"PX"));
            args.push(Bytes::from(ttl.max(1).to_string()));
        }
        self.execute(db, &args)
    }

    /// The string under `key` in `db`, if any (and a string).
    #[must_use]
    pub fn get(&self, db: usize, key: &[u8]) -> Option<Bytes> {
        match self.execute(
            db,
            &[Bytes::from_static(b"GET"), Bytes::copy_from_slice(key)],
        ) {
            Frame::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// Sets hash fields; returns how many were new (or the error reply).
    pub fn hset(&self, db: usize, key: &[u8], fields: &[(&[u8], &[u8])]) -> Frame {
        let mut args = vec![Bytes::from_static(b"HSET"), Bytes::copy_from_slice(key)];
        for (f, v) in fields {
            args.push(Bytes::copy_from_slice(f));
            args.push(Bytes::copy_from_slice(v));
        }
        self.execute(db, &args)
    }

    /// Deletes keys; returns how many existed.
    pub fn del(&self, db: usize, keys: &[&[u8]]) -> u64 {
        let mut args = vec![Bytes::from_static(b"DEL")];
        args.extend(keys.iter().map(|k| Bytes::copy_from_slice(k)));
        match self.execute(db, &args) {
            Frame::Integer(n) => u64::try_from(n).unwrap_or(0),
            _ => 0,
        }
    }

    /// A receiver of keyspace events (set, del, expired, evicted, expire, persist). A slow
    /// receiver gets `RecvError::Lagged` and must resynchronise from the cache itself.
    #[must_use]
    pub fn subscribe_events(&self) -> broadcast::Receiver<KeyEvent> {
        let rx = self.inner.events.subscribe();
        // IMPORTANT: set after subscribing, so a writer that sees the flag also sees the receiver.
        self.inner.events_subscribed.store(true, Ordering::SeqCst);
        rx
    }

    /// Estimated bytes used by keys and values.
    #[must_use]
    pub fn used_bytes(&self) -> usize {
        self.inner.used_bytes.load(Ordering::Relaxed)
    }

    /// [`Cache::used_bytes`] measured afresh: every stored key and element summed again, under
    /// the exclusive gate. Equal to `used_bytes()` unless the O(1)-per-write accounting has
    /// lost track; O(keys + elements), for tests and diagnostics, not for the hot path.
    #[must_use]
    pub fn recount_used_bytes(&self) -> usize {
        let mut ctx = self.inner.ks.exclusive(0, self.now_ms());
        let mut total = 0usize;
        for (_, pos) in ctx.lock_everything() {
            if let Some(shard) = ctx.shard_at(pos) {
                total = total.saturating_add(shard.recount_bytes());
            }
        }
        total
    }

    /// Writes the snapshot if one is configured, on the caller's thread (after any snapshot
    /// being written), and records it for LASTSAVE and INFO persistence.
    ///
    /// # Errors
    /// [`Error::SnapshotIo`] when the file cannot be written.
    pub fn save_snapshot(&self) -> Result<()> {
        match &self.inner.snapshot_path {
            Some(path) => snapshot::save(self, path),
            None => Ok(()),
        }
    }
}

/// How a connection runs a connection command its transaction queued, with the gate held:
/// its replies in the EXEC array (one, or a SUBSCRIBE's confirmations) and the connection's
/// protocol after it (HELLO's reply is in the protocol it chose), which they are written in.
pub(crate) type ConnectionCommands<'a> =
    Option<&'a mut dyn FnMut(&'static resp::command::Spec, &[&[u8]]) -> (Vec<Frame>, u8)>;

/// A transaction's replies as Redis 7.0's `execCommand` writes them: an array header counting
/// the queued commands, then what each command wrote, in the protocol the connection had when
/// it ran. A SUBSCRIBE of several channels writes one confirmation each, so more replies than
/// the header counts can follow it, and a HELLO inside changes the protocol of the later ones.
#[derive(Debug)]
pub(crate) struct ExecReplies {
    /// Commands queued: the array's length.
    pub(crate) commands: usize,
    /// Each reply with the protocol (2 or 3) it is written in.
    pub(crate) replies: Vec<(Frame, u8)>,
}

impl ExecReplies {
    /// Writes the header and each reply in its own protocol.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        resp::frame::encode_array_len(self.commands, out);
        for (reply, proto) in &self.replies {
            reply.encode(*proto, out);
        }
    }

    /// The replies alone (a transaction run without a connection: one per command, all in the
    /// protocol it started with).
    pub(crate) fn into_frames(self) -> Vec<Frame> {
        self.replies.into_iter().map(|(reply, _)| reply).collect()
    }
}

/// Redis's OOM error text: memory is over `maxmemory` and eviction could not bring it back.
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Redis's OOM error.
pub(crate) fn oom_error() -> Frame {
    Frame::error(OOM)
}

/// The error a command that needs a connection (WATCH, SUBSCRIBE, …) gets inside a
/// transaction run without one ([`Cache::execute_atomic`]).
fn connection_command_in_transaction(spec: &resp::command::Spec) -> Frame {
    Frame::error(format!(
        "ERR Command not allowed inside a transaction: '{}'",
        spec.name
    ))
}

mod evict;
