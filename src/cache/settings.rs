//! CONFIG GET/SET parameters: the values Redis clients and the test harness expect to read and
//! write. Parameters with a live effect (maxmemory, maxmemory-policy, maxclients,
//! proto-max-bulk-len, timeout, hz, lfu-log-factor, lfu-decay-time, notify-keyspace-events,
//! client-output-buffer-limit, the zset-max-listpack thresholds, hll-sparse-max-bytes) are
//! checked here and copied into atomics by `Inner::apply_settings`; the rest are stored and
//! reported.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::cache::params;
use crate::cache::pubsub::{ObufClass, ObufLimit};
use crate::cache::{
    CacheConfig, EvictionPolicy, LFU_SETTING_MAX, OBUF_SOFT_SECONDS_MAX, RESP_BULK_BYTES_MAX,
};

/// Redis's default `busy-reply-threshold`, in milliseconds.
pub(crate) const BUSY_REPLY_THRESHOLD_MS_DEFAULT: u64 = 5000;

/// Smallest `hz` CONFIG SET keeps (Redis's `CONFIG_MIN_HZ`); a smaller one is raised to it.
pub(crate) const HZ_MIN: u32 = 1;
/// Largest `hz` CONFIG SET keeps (Redis's `CONFIG_MAX_HZ`); a larger one is lowered to it.
pub(crate) const HZ_MAX: u32 = 500;

/// Parameter name → value text.
#[derive(Debug)]
pub(crate) struct Settings {
    map: Mutex<BTreeMap<String, String>>,
    /// The classes `notify-keyspace-events` last set, as parsed: its reported letters drop
    /// `n` beside `A` (as Redis's `keyspaceEventsFlagsToString` does), so they cannot be
    /// parsed back.
    notify_flags: AtomicU32,
}

/// Parses Redis memory text: `100`, `10kb`, `1mb`, `2gb`, `1k`, `1m`, `1g`.
pub(crate) fn parse_memory(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1_000),
        ("b", 1),
    ]
    .into_iter()
    .find_map(|(suffix, mul)| t.strip_suffix(suffix).map(|n| (n.to_owned(), mul)))
    .unwrap_or((t.clone(), 1));
    num.parse::<u64>().ok()?.checked_mul(mul)
}

/// Parses an integer setting of Redis's range `0..=max`, with Redis's error texts.
pub(crate) fn parse_int_setting(text: &str, max: u32) -> Result<u32, String> {
    parse_int_range(text, 0, max)
}

/// An integer setting from `min` to `max`, with Redis's error texts.
pub(crate) fn parse_int_range(text: &str, min: u32, max: u32) -> Result<u32, String> {
    let n = crate::cache::resp::frame::parse_i64(text.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_owned())?;
    u32::try_from(n)
        .ok()
        .filter(|&n| (min..=max).contains(&n))
        .ok_or_else(|| format!("argument must be between {min} and {max} inclusive"))
}

/// A boolean parameter: `yes` or `no`, in any case.
///
/// # Errors
/// Redis's text for anything else.
pub(crate) fn parse_yes_no(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("yes") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("no") {
        Ok(false)
    } else {
        Err("argument must be 'yes' or 'no'".to_owned())
    }
}

/// Checks a `save` value as Redis's `setConfigSaveOption` does: split on single spaces, pairs
/// of `<seconds> <changes>`, seconds at least 1 and changes at least 0, each read by `strtoll`;
/// returns CONFIG GET's form (`%jd %d` pairs, changes as a C int).
fn parse_save(value: &str) -> Result<String, String> {
    const INVALID: &str = "Invalid save parameters";
    let words: Vec<&str> = if value.is_empty() {
        Vec::new()
    } else {
        value.split(' ').collect()
    };
    if !words.len().is_multiple_of(2) {
        return Err(INVALID.to_owned());
    }
    let mut pairs = Vec::with_capacity(words.len() / 2);
    for pair in words.chunks(2) {
        let [seconds, changes] = pair else {
            return Err(INVALID.to_owned());
        };
        let (Some(seconds), Some(changes)) = (strtoll(seconds), strtoll(changes)) else {
            return Err(INVALID.to_owned());
        };
        if seconds < 1 || changes < 0 {
            return Err(INVALID.to_owned());
        }
        // Redis stores the changes in an `int`: the low 32 bits, as the C cast keeps them.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "C's (int) cast, on purpose"
        )]
        let changes = changes as i32;
        pairs.push(format!("{seconds} {changes}"));
    }
    Ok(pairs.join(" "))
}

/// C's `strtoll` over a whole word: leading white space, an optional sign, decimal digits and
/// nothing after them (an empty word reads as 0); a value past `i64` saturates, as `strtoll`
/// returns `LLONG_MAX`/`LLONG_MIN`. `None` when anything follows the digits.
fn strtoll(word: &str) -> Option<i64> {
    let t = word.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, t.get(1..)?),
        Some(b'+') => (false, t.get(1..)?),
        _ => (false, t),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        // No digits: strtoll reads nothing and points back at the word's start.
        return word.is_empty().then_some(0);
    }
    let magnitude: i128 = digits.parse().unwrap_or(i128::MAX);
    let n = if negative { -magnitude } else { magnitude };
    Some(i64::try_from(n).unwrap_or(if negative { i64::MIN } else { i64::MAX }))
}

/// The parameter name of the output buffer limits.
pub(crate) const OBUF_LIMIT: &str = "client-output-buffer-limit";

/// Redis's `memtoull`: digits, then optionally `b`, `k`, `kb`, `m`, `mb`, `g` or `gb` (any
/// case). A value past `u64` is refused (Redis's would wrap).
pub(crate) fn memtoull(text: &str) -> Option<u64> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = text.split_at(digits);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // No digits is 0, as `strtoull` reads an empty string.
    let n = if num.is_empty() {
        0
    } else {
        num.parse::<u64>().ok()?
    };
    n.checked_mul(mul)
}

/// Parses a CONFIG SET value of `client-output-buffer-limit`, `<class> <hard> <soft>
/// <soft_seconds>` repeated, split on single spaces as Redis splits it; all of it or nothing
/// is accepted (Redis's `updateClientOutputBufferLimit`, with its error texts).
pub(crate) fn parse_obuf_limits(text: &str) -> Result<Vec<(ObufClass, ObufLimit)>, String> {
    let words: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split(' ').collect()
    };
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".to_owned());
    }
    let mut limits = Vec::with_capacity(words.len() / 4);
    for group in words.chunks(4) {
        let [class, hard, soft, seconds] = group else {
            return Err("Wrong number of arguments in buffer limit configuration.".to_owned());
        };
        let class = ObufClass::parse(class).ok_or_else(|| {
            "Invalid client class specified in buffer limit configuration.".to_owned()
        })?;
        let seconds = if seconds.is_empty() {
            Some(0)
        } else {
            seconds
                .parse::<i64>()
                .ok()
                .and_then(|s| u64::try_from(s).ok())
                .filter(|&s| s <= OBUF_SOFT_SECONDS_MAX)
        };
        let (Some(hard_bytes), Some(soft_bytes), Some(soft_seconds)) =
            (memtoull(hard), memtoull(soft), seconds)
        else {
            return Err(
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    .to_owned(),
            );
        };
        limits.push((
            class,
            ObufLimit {
                hard_bytes,
                soft_bytes,
                soft_seconds,
            },
        ));
    }
    Ok(limits)
}

/// CONFIG GET's text of the limits, every class in Redis's order.
fn format_obuf_limits(limits: &[(ObufClass, ObufLimit)]) -> String {
    ObufClass::ALL
        .iter()
        .map(|&class| {
            let l = limits
                .iter()
                .rev()
                .find(|(c, _)| *c == class)
                .map_or_else(|| ObufLimit::default_for(class), |(_, l)| *l);
            format!(
                "{} {} {} {}",
                class.name(),
                l.hard_bytes,
                l.soft_bytes,
                l.soft_seconds
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The other name of a parameter Redis 7.0 knows under two (`slaveof` and `replicaof`).
fn alias(name: &str) -> Option<&'static str> {
    let param = params::lookup(name)?;
    if param.name == name {
        param.alias
    } else {
        Some(param.name)
    }
}

/// Why CONFIG SET refused its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetError {
    /// A name Redis does not know (`Unknown option or number of arguments …`).
    Unknown(String),
    /// The parameter named, and Redis's reason.
    Refused(String, String),
}

impl Settings {
    /// Defaults, with the configured ceiling and policy.
    pub(crate) fn new(config: &CacheConfig) -> Self {
        let defaults: &[(&str, String)] = &[
            ("maxmemory", config.maxmemory_bytes.to_string()),
            ("maxmemory-policy", config.eviction_policy.name().to_owned()),
            (
                "maxmemory-samples",
                crate::cache::evict::MAXMEMORY_SAMPLES_DEFAULT.to_string(),
            ),
            ("maxclients", config.connections_max.to_string()),
            ("proto-max-bulk-len", RESP_BULK_BYTES_MAX.to_string()),
            ("databases", "16".to_owned()),
            // No RESP listener yet (Redis's `port 0`: no TCP); it records its own when bound.
            ("port", "0".to_owned()),
            ("bind", String::new()),
            ("hz", config.active_expiry_hz.to_string()),
            ("timeout", "0".to_owned()),
            ("save", String::new()),
            ("appendonly", "no".to_owned()),
            ("notify-keyspace-events", String::new()),
            ("list-max-ziplist-size", "-2".to_owned()),
            ("list-max-listpack-size", "-2".to_owned()),
            ("list-compress-depth", "0".to_owned()),
            ("hash-max-ziplist-entries", "512".to_owned()),
            ("hash-max-ziplist-value", "64".to_owned()),
            ("hash-max-listpack-entries", "512".to_owned()),
            ("hash-max-listpack-value", "64".to_owned()),
            ("set-max-intset-entries", "512".to_owned()),
            ("zset-max-ziplist-entries", "128".to_owned()),
            ("zset-max-ziplist-value", "64".to_owned()),
            ("zset-max-listpack-entries", "128".to_owned()),
            ("zset-max-listpack-value", "64".to_owned()),
            (
                "hll-sparse-max-bytes",
                crate::cache::cmd::hll::SPARSE_MAX_BYTES_DEFAULT.to_string(),
            ),
            (
                "stream-node-max-entries",
                crate::cache::stream::NODE_ENTRIES.to_string(),
            ),
            ("stream-node-max-bytes", "4096".to_owned()),
            ("lazyfree-lazy-user-del", "no".to_owned()),
            ("lazyfree-lazy-user-flush", "no".to_owned()),
            ("lfu-log-factor", "10".to_owned()),
            ("lfu-decay-time", "1".to_owned()),
            ("client-query-buffer-limit", "1073741824".to_owned()),
            ("latency-tracking", "yes".to_owned()),
            ("latency-tracking-info-percentiles", "50 99 99.9".to_owned()),
            ("latency-monitor-threshold", "0".to_owned()),
            (
                "slowlog-log-slower-than",
                crate::cache::slowlog::SLOWER_THAN_US_DEFAULT.to_string(),
            ),
            (
                "slowlog-max-len",
                crate::cache::slowlog::MAX_LEN_DEFAULT.to_string(),
            ),
            ("sanitize-dump-payload", "no".to_owned()),
            (
                "busy-reply-threshold",
                BUSY_REPLY_THRESHOLD_MS_DEFAULT.to_string(),
            ),
            (
                "lua-time-limit",
                BUSY_REPLY_THRESHOLD_MS_DEFAULT.to_string(),
            ),
            (OBUF_LIMIT, format_obuf_limits(&[])),
        ];
        // Every parameter of Redis's with its default, then the values this cache runs with.
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for p in params::PARAMS {
            map.insert(p.name.to_owned(), p.default.to_owned());
            if let Some(alias) = p.alias {
                map.insert(alias.to_owned(), p.default.to_owned());
            }
        }
        for (k, v) in defaults {
            map.insert((*k).to_owned(), v.clone());
        }
        Self {
            map: Mutex::new(map),
            notify_flags: AtomicU32::new(0),
        }
    }

    /// The keyspace notification classes in force ([`crate::cache::notify::parse`]'s flags).
    pub(crate) fn notify_flags(&self) -> u32 {
        self.notify_flags.load(Ordering::Relaxed)
    }

    /// `busy-reply-threshold` (`lua-time-limit`): how long, in milliseconds, a script runs
    /// before other clients are answered BUSY and SCRIPT KILL may reach it (0: from its start,
    /// as in Redis).
    pub(crate) fn busy_reply_threshold_ms(&self) -> u64 {
        self.get("busy-reply-threshold")
            .and_then(|v| v.parse().ok())
            .unwrap_or(BUSY_REPLY_THRESHOLD_MS_DEFAULT)
    }

    /// Records what the server itself knows of a parameter it does not take from CONFIG SET
    /// (the RESP listener's `port` and `bind` once it has bound).
    pub(crate) fn record(&self, name: &str, value: String) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), value);
    }

    /// A parameter's value.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every parameter but the hidden ones (CONFIG GET with a pattern).
    pub(crate) fn all(&self) -> Vec<(String, String)> {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(k, _)| params::lookup(k).is_none_or(|p| p.flags & params::HIDDEN == 0))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Sets every `(name, value)` pair or none, as Redis 7.0's multi-parameter CONFIG SET: the
    /// names are checked first (unknown, immutable or protected, named twice or under both of
    /// their names), then the values, and only then is anything stored. The first fault in
    /// that order is the error.
    pub(crate) fn set_many(&self, pairs: &[(&str, &str)]) -> Result<(), SetError> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, &(name, _)) in pairs.iter().enumerate() {
            let refused = |reason: &str| SetError::Refused(name.to_owned(), reason.to_owned());
            if !map.contains_key(name) {
                return Err(SetError::Unknown(name.to_owned()));
            }
            if let Some(reason) = params::lookup(name).and_then(params::Param::refusal) {
                return Err(refused(reason));
            }
            let earlier = pairs.get(..i).unwrap_or_default();
            if earlier
                .iter()
                .any(|(n, _)| *n == name || alias(n) == Some(name))
            {
                return Err(refused("duplicate parameter"));
            }
        }
        let mut checked: Vec<(&str, String)> = Vec::with_capacity(pairs.len());
        for &(name, value) in pairs {
            let value = Self::canonical(&map, name, value).map_err(|reason| {
                // Redis names the parameter by its own name, not the alias it was given.
                let own = params::lookup(name).map_or(name, |p| p.name);
                SetError::Refused(own.to_owned(), reason)
            })?;
            checked.push((name, value));
        }
        for (name, value) in checked {
            if name == "notify-keyspace-events"
                && let Some((_, raw)) = pairs.iter().find(|(n, _)| *n == name)
                && let Some(flags) = crate::cache::notify::parse(raw)
            {
                self.notify_flags.store(flags, Ordering::Relaxed);
            }
            // Redis 7.0 keeps the ziplist names as aliases of the listpack ones.
            if let Some(other) = alias(name) {
                map.insert(other.to_owned(), value.clone());
            }
            map.insert(name.to_owned(), value);
        }
        Ok(())
    }

    /// `value` checked for a parameter with a live effect, in the form CONFIG GET reports.
    fn canonical(
        map: &BTreeMap<String, String>,
        name: &str,
        value: &str,
    ) -> Result<String, String> {
        match name {
            "lfu-log-factor" | "lfu-decay-time" => {
                parse_int_setting(value, LFU_SETTING_MAX)?;
            }
            "stream-node-max-entries"
            | "busy-reply-threshold"
            | "lua-time-limit"
            | "latency-monitor-threshold" => {
                parse_int_range(value, 0, u32::MAX)?;
            }
            "slowlog-max-len" => {
                parse_int_range(value, 0, crate::cache::slowlog::MAX_LEN_MAX)?;
            }
            "slowlog-log-slower-than" => {
                crate::cache::resp::frame::parse_i64(value.as_bytes())
                    .filter(|us| *us >= -1)
                    .ok_or_else(|| {
                        "argument must be between -1 and 9223372036854775807 inclusive".to_owned()
                    })?;
            }
            "latency-tracking" => {
                return parse_yes_no(value).map(|on| if on { "yes" } else { "no" }.to_owned());
            }
            "latency-tracking-info-percentiles" => {
                return crate::cache::latency::parse_percentiles(value)
                    .map(|p| crate::cache::latency::percentiles_text(&p));
            }
            "maxmemory-samples" => {
                parse_int_range(value, 1, crate::cache::evict::MAXMEMORY_SAMPLES_MAX)?;
            }
            // Stored and reported only: RESTORE always validates a payload in full, as Redis
            // does under `yes`.
            "sanitize-dump-payload" if !["no", "yes", "clients"].contains(&value) => {
                return Err("argument(s) must be one of the following: no, yes, clients".to_owned());
            }
            "maxmemory-policy" => {
                // Redis's members in its order, then the one only this cache has.
                EvictionPolicy::parse(value).ok_or_else(|| "argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction, allkeys-sieve".to_owned())?;
            }
            // Checked by the code below.
            "notify-keyspace-events" | OBUF_LIMIT => {}
            "save" => return parse_save(value),
            // Redis takes any hz its type allows as a hint and keeps it within
            // CONFIG_MIN_HZ..=CONFIG_MAX_HZ (`updateHZ`), which CONFIG GET then reads.
            "hz" => {
                let hz = params::lookup(name)
                    .map_or_else(|| Ok(value.to_owned()), |p| p.check(value))?;
                return Ok(hz.parse::<i64>().map_or(hz, |n| {
                    n.clamp(i64::from(HZ_MIN), i64::from(HZ_MAX)).to_string()
                }));
            }
            // Stored only, or applied from the stored text: checked by its type, as Redis
            // checks it (memory parameters read back in bytes, as Redis prints them).
            _ => {
                if let Some(param) = params::lookup(name) {
                    return param.check(value);
                }
            }
        }
        Ok(if name == "notify-keyspace-events" {
            let flags = crate::cache::notify::parse(value)
                .ok_or_else(|| crate::cache::notify::INVALID.to_owned())?;
            crate::cache::notify::to_letters(flags)
        } else if name == OBUF_LIMIT {
            // The classes named change; the others keep their limits.
            let mut limits = map
                .get(OBUF_LIMIT)
                .and_then(|v| parse_obuf_limits(v).ok())
                .unwrap_or_default();
            limits.extend(parse_obuf_limits(value)?);
            format_obuf_limits(&limits)
        } else {
            value.to_owned()
        })
    }
}
