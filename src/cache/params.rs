//! Redis 7.0.15's configuration parameters: every name CONFIG GET and CONFIG SET know, with its
//! alias, flags, type and default, as Redis's `config.c` declares them (`static_configs`), the
//! defaults as a stock `redis-server` 7.0.15 reports them. Parameters with an effect here are
//! checked and applied by `settings.rs`; the rest are checked by their type ([`Param::check`])
//! and stored, so a client reads back what it set.

/// Can only be set at startup: CONFIG SET refuses it.
pub(crate) const IMMUTABLE: u8 = 1;
/// Left out of CONFIG GET with a pattern; an exact name still reads it.
pub(crate) const HIDDEN: u8 = 2;
/// Refused by CONFIG SET while `enable-protected-configs` is `no` (its default, and it is
/// immutable).
pub(crate) const PROTECTED: u8 = 4;
/// An enumeration taking several members at once, space-separated.
pub(crate) const MULTI_ARG: u8 = 8;

/// How a number is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// A plain integer.
    Integer,
    /// Bytes, with Redis's unit suffixes (`1mb`, `10k`…).
    Memory,
    /// Bytes, or a percentage written `N%` (stored negative, as Redis stores it).
    MemoryOrPercent,
    /// An octal integer.
    Octal,
}

/// A parameter's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `yes` or `no`.
    Bool,
    /// One of these members (several with [`MULTI_ARG`]).
    Enum(&'static [&'static str]),
    /// An integer between `min` and `max`; `unsigned` types compare as Redis's unsigned ones.
    Number {
        min: i128,
        max: i128,
        unsigned: bool,
        form: Form,
    },
    /// Any text.
    Text,
    /// Parsed by its own code in Redis (`save`, `bind`, `client-output-buffer-limit`…): stored
    /// as given unless `settings.rs` checks it.
    Special,
}

/// One parameter.
#[derive(Debug)]
pub(crate) struct Param {
    pub(crate) name: &'static str,
    /// Its other name (`slaveof` for `replicaof`).
    pub(crate) alias: Option<&'static str>,
    /// [`IMMUTABLE`], [`HIDDEN`], [`PROTECTED`], [`MULTI_ARG`].
    pub(crate) flags: u8,
    pub(crate) kind: Kind,
    /// CONFIG GET's text for its default.
    pub(crate) default: &'static str,
}

/// The parameter called `name` (or with that alias), any case.
pub(crate) fn lookup(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| {
        p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name))
    })
}

impl Param {
    /// Why CONFIG SET may not change this parameter at all, in Redis's words.
    pub(crate) fn refusal(&self) -> Option<&'static str> {
        if self.flags & IMMUTABLE != 0 {
            Some("can't set immutable config")
        } else if self.flags & PROTECTED != 0 {
            Some("can't set protected config")
        } else {
            None
        }
    }

    /// `value` checked against the parameter's type, in the form CONFIG GET reports it, or
    /// Redis's error text.
    pub(crate) fn check(&self, value: &str) -> Result<String, String> {
        match self.kind {
            Kind::Bool => crate::cache::settings::parse_yes_no(value)
                .map(|on| if on { "yes" } else { "no" }.to_owned()),
            Kind::Enum(members) => {
                let words: Vec<&str> = if self.flags & MULTI_ARG != 0 {
                    value.split(' ').filter(|w| !w.is_empty()).collect()
                } else {
                    vec![value]
                };
                let found: Option<Vec<&str>> = words
                    .iter()
                    .map(|w| members.iter().find(|m| m.eq_ignore_ascii_case(w)).copied())
                    .collect();
                match found {
                    Some(found) if !found.is_empty() => Ok(found.join(" ")),
                    _ => Err(format!(
                        "argument(s) must be one of the following: {}",
                        members.join(", ")
                    )),
                }
            }
            Kind::Number {
                min,
                max,
                unsigned,
                form,
            } => check_number(value, min, max, unsigned, form),
            Kind::Text | Kind::Special => Ok(value.to_owned()),
        }
    }
}

/// Redis's `numericParseString` and `numericBoundaryCheck`, returning CONFIG GET's text.
fn check_number(
    value: &str,
    min: i128,
    max: i128,
    unsigned: bool,
    form: Form,
) -> Result<String, String> {
    let memory = matches!(form, Form::Memory | Form::MemoryOrPercent);
    let parsed: Option<(i128, bool)> = if memory {
        crate::cache::settings::memtoull(value).map(|n| (i128::from(n), false))
    } else {
        None
    };
    let parsed = parsed.or_else(|| {
        let digits = value.strip_suffix('%')?;
        (form == Form::MemoryOrPercent && !digits.is_empty())
            .then(|| crate::cache::resp::frame::parse_i64(digits.as_bytes()))
            .flatten()
            .filter(|n| *n >= 0)
            .map(|n| (-i128::from(n), true))
    });
    let parsed = parsed.or_else(|| match form {
        Form::Octal => i64::from_str_radix(value, 8)
            .ok()
            .map(|n| (i128::from(n), false)),
        Form::Integer => {
            crate::cache::resp::frame::parse_i64(value.as_bytes()).map(|n| (i128::from(n), false))
        }
        Form::Memory | Form::MemoryOrPercent => None,
    });
    let Some((n, percent)) = parsed else {
        return Err(match form {
            Form::MemoryOrPercent => "argument must be a memory or percent value",
            Form::Memory => "argument must be a memory value",
            Form::Octal => "argument couldn't be parsed as an octal number",
            Form::Integer => "argument couldn't be parsed into an integer",
        }
        .to_owned());
    };
    // Redis reads an unsigned parameter's value as the same bits unsigned.
    let n_cmp = if unsigned && n < 0 {
        n + (1i128 << 64)
    } else {
        n
    };
    if percent {
        if n < min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -min
            ));
        }
        return Ok(format!("{}%", -n));
    }
    if n_cmp < min || n_cmp > max {
        return Err(if form == Form::Octal {
            format!("argument must be between {min:o} and {max:o} inclusive")
        } else {
            format!("argument must be between {min} and {max} inclusive")
        });
    }
    Ok(if form == Form::Octal {
        format!("{n:o}")
    } else {
        n_cmp.to_string()
    })
}

/// Every parameter of Redis 7.0.15, in `config.c`'s order.
#[rustfmt::skip]
pub(crate) static PARAMS: &[Param] = &[
    Param { name: "rdbchecksum", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "yes" },
    Param { name: "daemonize", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "no" },
    Param { name: "io-threads-do-reads", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "no" },
    Param { name: "always-show-logo", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "no" },
    Param { name: "protected-mode", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "rdbcompression", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "rdb-del-sync-files", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "activerehashing", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "stop-writes-on-bgsave-error", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "set-proc-title", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "yes" },
    Param { name: "dynamic-hz", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "lazyfree-lazy-eviction", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "lazyfree-lazy-expire", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "lazyfree-lazy-server-del", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "lazyfree-lazy-user-del", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "lazyfree-lazy-user-flush", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "repl-disable-tcp-nodelay", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "repl-diskless-sync", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "aof-rewrite-incremental-fsync", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "no-appendfsync-on-rewrite", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "cluster-require-full-coverage", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "rdb-save-incremental-fsync", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "aof-load-truncated", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "aof-use-rdb-preamble", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "aof-timestamp-enabled", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "cluster-replica-no-failover", alias: Some("cluster-slave-no-failover"), flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "replica-lazy-flush", alias: Some("slave-lazy-flush"), flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "replica-serve-stale-data", alias: Some("slave-serve-stale-data"), flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "replica-read-only", alias: Some("slave-read-only"), flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "replica-ignore-maxmemory", alias: Some("slave-ignore-maxmemory"), flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "jemalloc-bg-thread", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "activedefrag", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "syslog-enabled", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "no" },
    Param { name: "cluster-enabled", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "no" },
    Param { name: "appendonly", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "cluster-allow-reads-when-down", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "cluster-allow-pubsubshard-when-down", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "crash-log-enabled", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "crash-memcheck-enabled", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "use-exit-on-panic", alias: None, flags: HIDDEN, kind: Kind::Bool, default: "no" },
    Param { name: "disable-thp", alias: None, flags: IMMUTABLE, kind: Kind::Bool, default: "yes" },
    Param { name: "cluster-allow-replica-migration", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "replica-announced", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "latency-tracking", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "aof-disable-auto-gc", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "replica-ignore-disk-write-errors", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "aclfile", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "" },
    Param { name: "unixsocket", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "" },
    Param { name: "pidfile", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "/var/run/redis.pid" },
    Param { name: "replica-announce-ip", alias: Some("slave-announce-ip"), flags: 0, kind: Kind::Text, default: "" },
    Param { name: "masteruser", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "cluster-announce-ip", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "cluster-config-file", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "nodes.conf" },
    Param { name: "cluster-announce-hostname", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "syslog-ident", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "redis" },
    Param { name: "dbfilename", alias: None, flags: PROTECTED, kind: Kind::Text, default: "dump.rdb" },
    Param { name: "appendfilename", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "appendonly.aof" },
    Param { name: "appenddirname", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "appendonlydir" },
    Param { name: "server_cpulist", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "" },
    Param { name: "bio_cpulist", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "" },
    Param { name: "aof_rewrite_cpulist", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "" },
    Param { name: "bgsave_cpulist", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "" },
    Param { name: "ignore-warnings", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "proc-title-template", alias: None, flags: 0, kind: Kind::Text, default: "{title} {listen-addr} {server-mode}" },
    Param { name: "bind-source-addr", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "logfile", alias: None, flags: IMMUTABLE, kind: Kind::Text, default: "" },
    Param { name: "masterauth", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "requirepass", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "supervised", alias: None, flags: IMMUTABLE, kind: Kind::Enum(&["upstart", "systemd", "auto", "no"]), default: "no" },
    Param { name: "syslog-facility", alias: None, flags: IMMUTABLE, kind: Kind::Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]), default: "local0" },
    Param { name: "repl-diskless-load", alias: None, flags: 0, kind: Kind::Enum(&["disabled", "on-empty-db", "swapdb"]), default: "disabled" },
    Param { name: "loglevel", alias: None, flags: 0, kind: Kind::Enum(&["debug", "verbose", "notice", "warning"]), default: "notice" },
    Param { name: "maxmemory-policy", alias: None, flags: 0, kind: Kind::Enum(&["volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru", "allkeys-lfu", "allkeys-random", "noeviction"]), default: "noeviction" },
    Param { name: "appendfsync", alias: None, flags: 0, kind: Kind::Enum(&["everysec", "always", "no"]), default: "everysec" },
    Param { name: "oom-score-adj", alias: None, flags: 0, kind: Kind::Enum(&["no", "yes", "relative", "absolute"]), default: "no" },
    Param { name: "acl-pubsub-default", alias: None, flags: 0, kind: Kind::Enum(&["allchannels", "resetchannels"]), default: "resetchannels" },
    Param { name: "sanitize-dump-payload", alias: None, flags: 0, kind: Kind::Enum(&["no", "yes", "clients"]), default: "no" },
    Param { name: "enable-protected-configs", alias: None, flags: IMMUTABLE, kind: Kind::Enum(&["no", "yes", "local"]), default: "no" },
    Param { name: "enable-debug-command", alias: None, flags: IMMUTABLE, kind: Kind::Enum(&["no", "yes", "local"]), default: "no" },
    Param { name: "enable-module-command", alias: None, flags: IMMUTABLE, kind: Kind::Enum(&["no", "yes", "local"]), default: "no" },
    Param { name: "cluster-preferred-endpoint-type", alias: None, flags: 0, kind: Kind::Enum(&["ip", "hostname", "unknown-endpoint"]), default: "ip" },
    Param { name: "propagation-error-behavior", alias: None, flags: 0, kind: Kind::Enum(&["ignore", "panic", "panic-on-replicas"]), default: "ignore" },
    Param { name: "shutdown-on-sigint", alias: None, flags: MULTI_ARG, kind: Kind::Enum(&["default", "save", "nosave", "now", "force"]), default: "default" },
    Param { name: "shutdown-on-sigterm", alias: None, flags: MULTI_ARG, kind: Kind::Enum(&["default", "save", "nosave", "now", "force"]), default: "default" },
    Param { name: "databases", alias: None, flags: IMMUTABLE, kind: Kind::Number { min: 1, max: 2147483647, unsigned: false, form: Form::Integer }, default: "16" },
    Param { name: "port", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 65535, unsigned: false, form: Form::Integer }, default: "6379" },
    Param { name: "io-threads", alias: None, flags: IMMUTABLE, kind: Kind::Number { min: 1, max: 128, unsigned: false, form: Form::Integer }, default: "1" },
    Param { name: "auto-aof-rewrite-percentage", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "100" },
    Param { name: "cluster-replica-validity-factor", alias: Some("cluster-slave-validity-factor"), flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "list-max-listpack-size", alias: Some("list-max-ziplist-size"), flags: 0, kind: Kind::Number { min: -2147483648, max: 2147483647, unsigned: false, form: Form::Integer }, default: "-2" },
    Param { name: "tcp-keepalive", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "300" },
    Param { name: "cluster-migration-barrier", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "1" },
    Param { name: "active-defrag-cycle-min", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 99, unsigned: false, form: Form::Integer }, default: "1" },
    Param { name: "active-defrag-cycle-max", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 99, unsigned: false, form: Form::Integer }, default: "25" },
    Param { name: "active-defrag-threshold-lower", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 1000, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "active-defrag-threshold-upper", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 1000, unsigned: false, form: Form::Integer }, default: "100" },
    Param { name: "lfu-log-factor", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "lfu-decay-time", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "1" },
    Param { name: "replica-priority", alias: Some("slave-priority"), flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "100" },
    Param { name: "repl-diskless-sync-delay", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "5" },
    Param { name: "maxmemory-samples", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 2147483647, unsigned: false, form: Form::Integer }, default: "5" },
    Param { name: "maxmemory-eviction-tenacity", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 100, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "timeout", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "replica-announce-port", alias: Some("slave-announce-port"), flags: 0, kind: Kind::Number { min: 0, max: 65535, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "tcp-backlog", alias: None, flags: IMMUTABLE, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "511" },
    Param { name: "cluster-port", alias: None, flags: IMMUTABLE, kind: Kind::Number { min: 0, max: 65535, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "cluster-announce-bus-port", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 65535, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "cluster-announce-port", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 65535, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "cluster-announce-tls-port", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 65535, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "repl-timeout", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 2147483647, unsigned: false, form: Form::Integer }, default: "60" },
    Param { name: "repl-ping-replica-period", alias: Some("repl-ping-slave-period"), flags: 0, kind: Kind::Number { min: 1, max: 2147483647, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "list-compress-depth", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "rdb-key-save-delay", alias: None, flags: HIDDEN, kind: Kind::Number { min: -2147483648, max: 2147483647, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "key-load-delay", alias: None, flags: HIDDEN, kind: Kind::Number { min: -2147483648, max: 2147483647, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "active-expire-effort", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 10, unsigned: false, form: Form::Integer }, default: "1" },
    Param { name: "hz", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "min-replicas-to-write", alias: Some("min-slaves-to-write"), flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "min-replicas-max-lag", alias: Some("min-slaves-max-lag"), flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "watchdog-period", alias: None, flags: HIDDEN, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "shutdown-timeout", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "10" },
    Param { name: "repl-diskless-sync-max-replicas", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "maxclients", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 4294967295, unsigned: true, form: Form::Integer }, default: "10000" },
    Param { name: "unixsocketperm", alias: None, flags: IMMUTABLE, kind: Kind::Number { min: 0, max: 511, unsigned: true, form: Form::Octal }, default: "0" },
    Param { name: "socket-mark-id", alias: None, flags: IMMUTABLE, kind: Kind::Number { min: 0, max: 4294967295, unsigned: true, form: Form::Integer }, default: "0" },
    Param { name: "active-defrag-max-scan-fields", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 9223372036854775807, unsigned: true, form: Form::Integer }, default: "1000" },
    Param { name: "slowlog-max-len", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Integer }, default: "128" },
    Param { name: "acllog-max-len", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Integer }, default: "128" },
    Param { name: "busy-reply-threshold", alias: Some("lua-time-limit"), flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: false, form: Form::Integer }, default: "5000" },
    Param { name: "cluster-node-timeout", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: false, form: Form::Integer }, default: "15000" },
    Param { name: "slowlog-log-slower-than", alias: None, flags: 0, kind: Kind::Number { min: -1, max: 9223372036854775807, unsigned: false, form: Form::Integer }, default: "10000" },
    Param { name: "latency-monitor-threshold", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "proto-max-bulk-len", alias: None, flags: 0, kind: Kind::Number { min: 1048576, max: 9223372036854775807, unsigned: false, form: Form::Memory }, default: "536870912" },
    Param { name: "stream-node-max-entries", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: false, form: Form::Integer }, default: "100" },
    Param { name: "repl-backlog-size", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 9223372036854775807, unsigned: false, form: Form::Memory }, default: "1048576" },
    Param { name: "maxmemory", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 18446744073709551615, unsigned: true, form: Form::Memory }, default: "0" },
    Param { name: "cluster-link-sendbuf-limit", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 18446744073709551615, unsigned: true, form: Form::Memory }, default: "0" },
    Param { name: "hash-max-listpack-entries", alias: Some("hash-max-ziplist-entries"), flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Integer }, default: "512" },
    Param { name: "set-max-intset-entries", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Integer }, default: "512" },
    Param { name: "zset-max-listpack-entries", alias: Some("zset-max-ziplist-entries"), flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Integer }, default: "128" },
    Param { name: "active-defrag-ignore-bytes", alias: None, flags: 0, kind: Kind::Number { min: 1, max: 9223372036854775807, unsigned: true, form: Form::Memory }, default: "104857600" },
    Param { name: "hash-max-listpack-value", alias: Some("hash-max-ziplist-value"), flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Memory }, default: "64" },
    Param { name: "stream-node-max-bytes", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Memory }, default: "4096" },
    Param { name: "zset-max-listpack-value", alias: Some("zset-max-ziplist-value"), flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Memory }, default: "64" },
    Param { name: "hll-sparse-max-bytes", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Memory }, default: "3000" },
    Param { name: "tracking-table-max-keys", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: true, form: Form::Integer }, default: "1000000" },
    Param { name: "client-query-buffer-limit", alias: None, flags: 0, kind: Kind::Number { min: 1048576, max: 9223372036854775807, unsigned: true, form: Form::Memory }, default: "1073741824" },
    Param { name: "maxmemory-clients", alias: None, flags: 0, kind: Kind::Number { min: -100, max: 9223372036854775807, unsigned: false, form: Form::MemoryOrPercent }, default: "0" },
    Param { name: "repl-backlog-ttl", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: false, form: Form::Integer }, default: "3600" },
    Param { name: "auto-aof-rewrite-min-size", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 9223372036854775807, unsigned: false, form: Form::Memory }, default: "67108864" },
    Param { name: "loading-process-events-interval-bytes", alias: None, flags: HIDDEN, kind: Kind::Number { min: 1024, max: 2147483647, unsigned: false, form: Form::Integer }, default: "2097152" },
    Param { name: "tls-port", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 65535, unsigned: false, form: Form::Integer }, default: "0" },
    Param { name: "tls-session-cache-size", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "20480" },
    Param { name: "tls-session-cache-timeout", alias: None, flags: 0, kind: Kind::Number { min: 0, max: 2147483647, unsigned: false, form: Form::Integer }, default: "300" },
    Param { name: "tls-cluster", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "tls-replication", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "tls-auth-clients", alias: None, flags: 0, kind: Kind::Enum(&["no", "yes", "optional"]), default: "yes" },
    Param { name: "tls-prefer-server-ciphers", alias: None, flags: 0, kind: Kind::Bool, default: "no" },
    Param { name: "tls-session-caching", alias: None, flags: 0, kind: Kind::Bool, default: "yes" },
    Param { name: "tls-cert-file", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-key-file", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-key-file-pass", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-client-cert-file", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-client-key-file", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-client-key-file-pass", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-dh-params-file", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-ca-cert-file", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-ca-cert-dir", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-protocols", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-ciphers", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "tls-ciphersuites", alias: None, flags: 0, kind: Kind::Text, default: "" },
    Param { name: "dir", alias: None, flags: PROTECTED, kind: Kind::Special, default: "" },
    Param { name: "save", alias: None, flags: 0, kind: Kind::Special, default: "3600 1 300 100 60 10000" },
    Param { name: "client-output-buffer-limit", alias: None, flags: 0, kind: Kind::Special, default: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60" },
    Param { name: "oom-score-adj-values", alias: None, flags: 0, kind: Kind::Special, default: "0 200 800" },
    Param { name: "notify-keyspace-events", alias: None, flags: 0, kind: Kind::Special, default: "" },
    Param { name: "bind", alias: None, flags: 0, kind: Kind::Special, default: "* -::*" },
    Param { name: "replicaof", alias: Some("slaveof"), flags: IMMUTABLE, kind: Kind::Special, default: "" },
    Param { name: "latency-tracking-info-percentiles", alias: None, flags: 0, kind: Kind::Special, default: "50 99 99.9" },
];

#[cfg(test)]
mod tests {
    use super::{PARAMS, lookup};

    #[test]
    fn names_aliases_and_flags() {
        assert_eq!(PARAMS.len(), 178);
        assert_eq!(lookup("SLAVEOF").map(|p| p.name), Some("replicaof"));
        assert_eq!(
            lookup("daemonize").and_then(|p| p.refusal()),
            Some("can't set immutable config")
        );
        assert_eq!(
            lookup("dir").and_then(|p| p.refusal()),
            Some("can't set protected config")
        );
        assert!(lookup("no-such-parameter").is_none());
    }

    #[test]
    fn values_are_checked_by_type() {
        let check = |name: &str, value: &str| lookup(name).map(|p| p.check(value));
        assert_eq!(check("protected-mode", "YES"), Some(Ok("yes".to_owned())));
        assert_eq!(
            check("protected-mode", "maybe"),
            Some(Err("argument must be 'yes' or 'no'".to_owned()))
        );
        assert_eq!(check("loglevel", "Warning"), Some(Ok("warning".to_owned())));
        assert_eq!(
            check("loglevel", "loud"),
            Some(Err(
                "argument(s) must be one of the following: debug, verbose, notice, warning"
                    .to_owned()
            ))
        );
        assert_eq!(
            check("shutdown-on-sigterm", "nosave now"),
            Some(Ok("nosave now".to_owned()))
        );
        // maxmemory-clients: bytes or a percentage of at most 100.
        assert_eq!(
            check("maxmemory-clients", "1mb"),
            Some(Ok("1048576".to_owned()))
        );
        assert_eq!(
            check("maxmemory-clients", "100%"),
            Some(Ok("100%".to_owned()))
        );
        assert_eq!(
            check("maxmemory-clients", "101%"),
            Some(Err(
                "percentage argument must be less or equal to 100".to_owned()
            ))
        );
        assert_eq!(
            check("maxmemory-clients", "lots"),
            Some(Err("argument must be a memory or percent value".to_owned()))
        );
        // An integer range at its bounds and one past them.
        assert_eq!(check("tcp-backlog", "0"), Some(Ok("0".to_owned())));
        assert_eq!(
            check("tcp-backlog", "2147483647"),
            Some(Ok("2147483647".to_owned()))
        );
        assert_eq!(
            check("tcp-backlog", "2147483648"),
            Some(Err(
                "argument must be between 0 and 2147483647 inclusive".to_owned()
            ))
        );
        assert_eq!(
            check("tcp-backlog", "-1"),
            Some(Err(
                "argument must be between 0 and 2147483647 inclusive".to_owned()
            ))
        );
        assert_eq!(check("unixsocketperm", "755"), Some(Ok("755".to_owned())));
        assert_eq!(
            check("unixsocketperm", "9"),
            Some(Err(
                "argument couldn't be parsed as an octal number".to_owned()
            ))
        );
    }
}
