//! Server commands answered by the keyspace itself: PING, ECHO, TIME, INFO, CONFIG, COMMAND,
//! DEBUG, PUBLISH, SPUBLISH, PUBSUB; and the persistence commands' replies (SAVE, BGSAVE, SHUTDOWN, LASTSAVE),
//! which the RESP server calls with the cache handle.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{SYNTAX, arg, glob_match, int, is};
use crate::cache::keyspace::Ctx;
use crate::cache::pubsub::Kind;
use crate::cache::resp::frame::Frame;
use crate::cache::resp::{command, keyspecs};
use crate::cache::settings::SetError;
use crate::cache::snapshot::BackgroundRefused;
use crate::cache::{Cache, DATABASES, Inner};

pub(crate) fn ping(_: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    match args.get(1) {
        Some(m) if args.len() == 2 => Frame::bulk(m),
        Some(_) => Frame::error("ERR wrong number of arguments for 'ping' command"),
        None => Frame::simple("PONG"),
    }
}

pub(crate) fn echo(_: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(arg(args, 1)))
}

pub(crate) fn time(ctx: &mut Ctx<'_>, _: &Inner, _: &[&[u8]]) -> Frame {
    let ms = ctx.now_ms;
    Frame::Array(vec![
        Frame::bulk((ms / 1000).to_string().as_bytes()),
        Frame::bulk(((ms % 1000) * 1000).to_string().as_bytes()),
    ])
}

/// The reply to SAVE, BGSAVE and SHUTDOWN SAVE when no snapshot file is configured.
const SNAPSHOT_OFF: &str =
    "ERR no snapshot is configured: set [cache] snapshot = true to save to DATA_DIR/cache.snapshot";
/// The reply to a SAVE whose write failed (the cause is logged, not sent).
const SAVE_FAILED: &str = "ERR the snapshot could not be written; see the server log";
/// Redis's reply to SAVE or BGSAVE while a background save runs.
const BACKGROUND_RUNNING: &str = "ERR Background save already in progress";
/// Redis's reply to a SHUTDOWN that did not shut down (the cause is logged).
const SHUTDOWN_FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// SAVE: writes the snapshot on the caller's thread (the RESP server runs it on the blocking
/// pool) and answers once it is durable.
pub(crate) fn save(cache: &Cache) -> Frame {
    if !cache.snapshot_enabled() {
        return Frame::error(SNAPSHOT_OFF);
    }
    if cache.inner().saves.background_running() {
        return Frame::error(BACKGROUND_RUNNING);
    }
    match cache.save_snapshot() {
        Ok(()) => Frame::ok(),
        Err(e) => {
            tracing::error!(error = %e, "SAVE: the cache snapshot was not written");
            Frame::error(SAVE_FAILED)
        }
    }
}

/// BGSAVE [SCHEDULE]: starts the background save. `in_exec`: sent inside MULTI, where Redis
/// answers that the save is scheduled (here it starts at once and copies the keyspace once
/// the transaction has released it).
pub(crate) fn bgsave(cache: &Cache, args: &[&[u8]], in_exec: bool) -> Frame {
    match args {
        [_] => {}
        [_, option] if is(option, "schedule") => {}
        _ => return Frame::error(SYNTAX),
    }
    match cache.start_background_save() {
        Ok(()) if in_exec => Frame::simple("Background saving scheduled"),
        Ok(()) => Frame::simple("Background saving started"),
        Err(BackgroundRefused::NotConfigured) => Frame::error(SNAPSHOT_OFF),
        Err(BackgroundRefused::AlreadyRunning) => Frame::error(BACKGROUND_RUNNING),
        Err(BackgroundRefused::NoThread) => {
            Frame::error("ERR the background save could not start; see the server log")
        }
    }
}

/// What a SHUTDOWN asks for, from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShutdownPlan {
    /// Write the snapshot before stopping (SAVE, or a configured snapshot without NOSAVE).
    save: bool,
    /// NOSAVE: no snapshot now nor at the engine's shutdown.
    nosave: bool,
    /// FORCE: stop even when the snapshot cannot be written.
    force: bool,
}

/// Reads SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] as Redis 7.0.15's `shutdownCommand`:
/// an unknown word or a contradictory pair is a syntax error, and ABORT answers that no
/// shutdown is in progress (there is never a delayed one here). NOW changes nothing: there
/// are no replicas to wait for.
pub(crate) fn shutdown_plan(args: &[&[u8]], snapshot_enabled: bool) -> Result<ShutdownPlan, Frame> {
    let (mut save, mut nosave, mut force, mut now, mut abort) = (false, false, false, false, false);
    for a in args.iter().skip(1) {
        let flag = if is(a, "nosave") {
            &mut nosave
        } else if is(a, "save") {
            &mut save
        } else if is(a, "now") {
            &mut now
        } else if is(a, "force") {
            &mut force
        } else if is(a, "abort") {
            &mut abort
        } else {
            return Err(Frame::error(SYNTAX));
        };
        *flag = true;
    }
    if (abort && (save || nosave || now || force)) || (save && nosave) {
        return Err(Frame::error(SYNTAX));
    }
    if abort {
        return Err(Frame::error("ERR No shutdown in progress."));
    }
    Ok(ShutdownPlan {
        save: save || (snapshot_enabled && !nosave),
        nosave,
        force,
    })
}

/// Carries out the part of a SHUTDOWN that can fail, before the process is asked to stop:
/// the snapshot it asks for (on the caller's thread, the blocking pool's), or the note that
/// the engine's shutdown writes none. An error is Redis's reply; the cause is logged.
pub(crate) fn prepare_shutdown(cache: &Cache, plan: ShutdownPlan) -> Result<(), Frame> {
    if plan.nosave {
        cache.inner().saves.skip_at_shutdown();
    } else if plan.save {
        let saved = if cache.snapshot_enabled() {
            cache.save_snapshot().map_err(|e| e.to_string())
        } else {
            Err(SNAPSHOT_OFF.to_owned())
        };
        match saved {
            Ok(()) => {}
            Err(e) if plan.force => {
                tracing::warn!(error = %e, "SHUTDOWN FORCE: the snapshot was not written; stopping anyway");
            }
            Err(e) => {
                tracing::error!(error = %e, "SHUTDOWN: the snapshot was not written; not stopping");
                return Err(Frame::error(SHUTDOWN_FAILED));
            }
        }
    }
    tracing::warn!("SHUTDOWN requested by a RESP client; stopping");
    Ok(())
}

/// LASTSAVE: the unix time of the last successful snapshot (the start time before any).
pub(crate) fn lastsave(_: &mut Ctx<'_>, inner: &Inner, _: &[&[u8]]) -> Frame {
    Frame::Integer(i64::try_from(inner.saves.last_save_s()).unwrap_or(i64::MAX))
}

pub(crate) fn debug(_: &mut Ctx<'_>, _: &Inner, _: &[&[u8]]) -> Frame {
    Frame::error(
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
    )
}

pub(crate) fn publish(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let shard = is(arg(args, 0), "spublish");
    int(inner
        .pubsub
        .publish(arg(args, 1), arg(args, 2), ctx.now_ms, shard))
}

/// `PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB|HELP`, as Redis 7.0.15 answers
/// them; the shard forms read the shard channels (SSUBSCRIBE's), the others the channels.
pub(crate) fn pubsub(_: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    let shown = String::from_utf8_lossy(sub);
    let wrong_arity = || {
        Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{shown}'. Try PUBSUB HELP."
        ))
    };
    if is(sub, "help") && args.len() == 2 {
        return Frame::Array(PUBSUB_HELP.iter().map(|line| Frame::simple(line)).collect());
    }
    let kind = if is(sub, "shardchannels") || is(sub, "shardnumsub") {
        Kind::Shard
    } else {
        Kind::Channel
    };
    if is(sub, "channels") || is(sub, "shardchannels") {
        if args.len() > 3 {
            return wrong_arity();
        }
        let pattern = args.get(2).copied().unwrap_or(b"*");
        return Frame::Array(
            inner
                .pubsub
                .channels_matching(pattern, kind)
                .into_iter()
                .map(Frame::Bulk)
                .collect(),
        );
    }
    if is(sub, "numsub") || is(sub, "shardnumsub") {
        // A flat array of channel, count pairs, in RESP3 too (as Redis 7.0.15).
        return Frame::Array(
            args.iter()
                .skip(2)
                .flat_map(|c| [Frame::bulk(c), int(inner.pubsub.subscriber_count(c, kind))])
                .collect(),
        );
    }
    if is(sub, "numpat") {
        if args.len() != 2 {
            return Frame::error("ERR wrong number of arguments for 'pubsub|numpat' command");
        }
        return int(inner.pubsub.count(Kind::Pattern));
    }
    if is(sub, "help") {
        return Frame::error("ERR wrong number of arguments for 'pubsub|help' command");
    }
    Frame::error(format!(
        "ERR unknown subcommand '{shown}'. Try PUBSUB HELP."
    ))
}

/// PUBSUB HELP's lines, as Redis 7.0.15 prints them.
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

pub(crate) fn config(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    if is(sub, "get") && args.len() >= 3 {
        let mut out: Vec<(Frame, Frame)> = Vec::new();
        // Redis keeps the names it answers in a dict of case-insensitive keys: a name given
        // twice, in any case, is answered once.
        let seen = |out: &[(Frame, Frame)], name: &[u8]| {
            out.iter()
                .any(|(x, _)| matches!(x, Frame::Bulk(b) if b.eq_ignore_ascii_case(name)))
        };
        for pat in args.iter().skip(2) {
            // A name without a pattern reads that parameter alone (a hidden one too), under
            // the name as given, as Redis's `configGetCommand`.
            if !pat.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
                let name = String::from_utf8_lossy(pat).to_ascii_lowercase();
                if let Some(v) = inner.settings.get(&name)
                    && !seen(&out, pat)
                {
                    out.push((Frame::bulk(pat), Frame::bulk(v.as_bytes())));
                }
                continue;
            }
            for (k, v) in inner.settings.all() {
                if glob_match(pat, k.as_bytes(), true) && !seen(&out, k.as_bytes()) {
                    out.push((Frame::bulk(k.as_bytes()), Frame::bulk(v.as_bytes())));
                }
            }
        }
        return Frame::Map(out);
    }
    if is(sub, "set") && args.len() >= 4 && args.len().is_multiple_of(2) {
        // All pairs or none, as Redis 7.0.
        let text: Vec<(String, String)> = args
            .get(2..)
            .unwrap_or_default()
            .chunks_exact(2)
            .filter_map(|p| match p {
                [k, v] => Some((
                    String::from_utf8_lossy(k).to_ascii_lowercase(),
                    String::from_utf8_lossy(v).into_owned(),
                )),
                _ => None,
            })
            .collect();
        let pairs: Vec<(&str, &str)> = text.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match inner.settings.set_many(&pairs) {
            Ok(()) => {}
            Err(SetError::Unknown(k)) => {
                return Frame::error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{k}'"
                ));
            }
            Err(SetError::Refused(k, reason)) => {
                return Frame::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{k}') - {reason}"
                ));
            }
        }
        inner.apply_settings();
        return Frame::ok();
    }
    if is(sub, "resetstat") && args.len() == 2 {
        inner.stats.reset();
        inner.command_stats.reset();
        for (_, pos) in ctx.lock_everything() {
            if let Some(shard) = ctx.shard_at(pos) {
                shard.keyspace_hits = 0;
                shard.keyspace_misses = 0;
            }
        }
        return Frame::ok();
    }
    if is(sub, "rewrite") && args.len() == 2 {
        return Frame::error("ERR The server is running without a config file");
    }
    if is(sub, "help") {
        return super::help_reply(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Set the configuration <directive> to <value>.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command.",
                "REWRITE",
                "    Rewrite the configuration file.",
            ],
        );
    }
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try CONFIG HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every command and
/// subcommand (`config|get`), or those of a module (there are none here), of an ACL category,
/// or whose full name matches the pattern, as Redis 7.0.15's `commandListWithFilter`.
fn command_list(args: &[&[u8]]) -> Frame {
    let names = command::full_names();
    let keep: Box<dyn Fn(&str) -> bool> = match args {
        [_, _] => Box::new(|_| true),
        [_, _, filterby, kind, value] if is(filterby, "filterby") => {
            let value = String::from_utf8_lossy(value).into_owned();
            if is(kind, "module") {
                Box::new(|_| false)
            } else if is(kind, "aclcat") {
                let category = value.to_ascii_lowercase();
                Box::new(move |name| {
                    crate::cache::resp::categories::of(name).contains(&category.as_str())
                })
            } else if is(kind, "pattern") {
                Box::new(move |name| glob_match(value.as_bytes(), name.as_bytes(), true))
            } else {
                return Frame::error(SYNTAX);
            }
        }
        _ => return Frame::error(SYNTAX),
    };
    Frame::Array(
        names
            .iter()
            .filter(|n| keep(n))
            .map(|n| Frame::bulk(n.as_bytes()))
            .collect(),
    )
}

pub(crate) fn command(_: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    if args.len() == 1 {
        return Frame::Array(command::all().map(command::info).collect());
    }
    if is(sub, "count") {
        return int(command::all().count());
    }
    if is(sub, "help") && args.len() == 2 {
        return super::help_reply(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
            ],
        );
    }
    if is(sub, "info") {
        if args.len() == 2 {
            return Frame::Array(command::all().map(command::info).collect());
        }
        return Frame::Array(
            args.iter()
                .skip(2)
                .map(|n| command::lookup(n).map_or(Frame::NullArray, command::info))
                .collect(),
        );
    }
    if is(sub, "docs") {
        // Every command, or the named ones (a subcommand by its full name, `config|get`);
        // unknown names are left out, as Redis does.
        let names: Vec<String> = if args.len() == 2 {
            command::all().map(|s| s.name.to_owned()).collect()
        } else {
            args.iter()
                .skip(2)
                .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
                .filter(|n| command::is_full_name(n))
                .collect()
        };
        return Frame::Map(
            names
                .iter()
                .filter_map(|name| Some((Frame::bulk(name.as_bytes()), command::docs(name)?)))
                .collect(),
        );
    }
    if is(sub, "list") {
        return command_list(args);
    }
    if (is(sub, "getkeys") || is(sub, "getkeysandflags")) && args.len() >= 3 {
        let call = args.get(2..).unwrap_or_default();
        let keys = match keyspecs::getkeys(call) {
            Ok(keys) => keys,
            Err(text) => return Frame::error(text),
        };
        let with_flags = is(sub, "getkeysandflags");
        return Frame::Array(
            keys.into_iter()
                .map(|(at, flags)| {
                    let key = Frame::bulk(call.get(at).copied().unwrap_or_default());
                    if with_flags {
                        let names = keyspecs::flag_names(flags).map(Frame::simple).collect();
                        Frame::Array(vec![key, Frame::Set(names)])
                    } else {
                        key
                    }
                })
                .collect(),
        );
    }
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try COMMAND HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// INFO server's facts about the process that do not change while it runs.
struct Host {
    /// `os`: Redis's `uname` fields, system name, release and machine.
    os: String,
    /// `executable`: the absolute path of the running binary, as Redis reports it.
    executable: String,
}

static HOST: std::sync::LazyLock<Host> = std::sync::LazyLock::new(|| {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let system = match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Darwin",
        other => other,
    };
    let os = [system, release.trim(), std::env::consts::ARCH]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let executable = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Host { os, executable }
});

pub(crate) fn info(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let wanted: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    // Redis's default set is every section but commandstats and latencystats.
    let all = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let want = |s: &str| {
        all || (default && s != "commandstats" && s != "latencystats")
            || wanted.iter().any(|w| w == s)
    };
    let mut out = String::new();
    let st = &inner.stats;
    let uptime_s = ctx.now_ms.saturating_sub(inner.start_ms) / 1000;
    if want("server") {
        let hz = inner.settings.get("hz").unwrap_or_default();
        let _ = write!(
            out,
            "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{:040x}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{uptime_s}\r\nuptime_in_days:{}\r\nhz:{hz}\r\nconfigured_hz:{hz}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:\r\nio_threads_active:0\r\n\r\n",
            HOST.os,
            std::process::id(),
            inner.start_ms,
            inner.port.load(Ordering::Relaxed),
            ctx.now_ms.saturating_mul(1000),
            uptime_s / 86400,
            (ctx.now_ms / 1000) & LRU_CLOCK_MAX,
            HOST.executable,
        );
    }
    if want("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\n\r\n",
            st.connected_clients.load(Ordering::Relaxed),
            inner.maxclients.load(Ordering::Relaxed),
            st.blocked_clients.load(Ordering::Relaxed),
            inner.tracking.stats()[0]
        );
    }
    if want("memory") {
        let used = inner.used_bytes.load(Ordering::Relaxed);
        // Sampled now too, so the peak is never below the memory shown beside it.
        let peak = inner.note_memory_peak().max(used);
        let scripts = &inner.script_info;
        let lua = scripts.lua_bytes.load(Ordering::Relaxed);
        let bodies = scripts.body_bytes.load(Ordering::Relaxed);
        let functions_lua = scripts.functions_lua_bytes.load(Ordering::Relaxed);
        let functions_code = scripts.functions_code_bytes.load(Ordering::Relaxed);
        let vm_total = lua + functions_lua;
        let scripts_total = bodies + functions_code;
        let maxmemory = inner.maxmemory.load(Ordering::Relaxed);
        let human = |n: usize| bytes_to_human(u64::try_from(n).unwrap_or(u64::MAX));
        let _ = write!(
            out,
            "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nused_memory_lua:{lua}\r\nused_memory_vm_eval:{lua}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{bodies}\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nused_memory_vm_functions:{functions_lua}\r\nused_memory_vm_total:{vm_total}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:{functions_code}\r\nused_memory_scripts:{scripts_total}\r\nused_memory_scripts_human:{}\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:1.00\r\nmem_not_counted_for_evict:0\r\nlazyfree_pending_objects:0\r\n\r\n",
            human(used),
            human(peak),
            human(lua),
            scripts.scripts.load(Ordering::Relaxed),
            scripts.functions.load(Ordering::Relaxed),
            scripts.libraries.load(Ordering::Relaxed),
            human(vm_total),
            human(scripts_total),
            bytes_to_human(maxmemory),
            inner.policy().name()
        );
    }
    if want("persistence") {
        let _ = write!(
            out,
            "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{}\r\n{}aof_enabled:0\r\naof_rewrite_in_progress:0\r\n\r\n",
            inner.ks.dirty.load(Ordering::Relaxed),
            inner.saves.info_lines(inner.clock.monotonic_ns())
        );
    }
    if want("stats") {
        let (mut hits, mut misses) = (0u64, 0u64);
        for (_, pos) in ctx.lock_everything() {
            if let Some(shard) = ctx.shard_at(pos) {
                hits = hits.saturating_add(shard.keyspace_hits);
                misses = misses.saturating_add(shard.keyspace_misses);
            }
        }
        let tracking = inner.tracking.stats();
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nexpired_keys:{}\r\nevicted_keys:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nmigrate_cached_sockets:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\ntotal_error_replies:{}\r\n\r\n",
            st.connections_received.load(Ordering::Relaxed),
            st.commands.load(Ordering::Relaxed),
            st.expired_keys.load(Ordering::Relaxed),
            st.evicted_keys.load(Ordering::Relaxed),
            hits,
            misses,
            inner.pubsub.count(Kind::Channel),
            inner.pubsub.count(Kind::Pattern),
            inner.pubsub.count(Kind::Shard),
            tracking[1],
            tracking[2],
            tracking[3],
            inner.command_stats.total_errors(),
        );
    }
    if want("replication") {
        // No replication stream exists: the offsets are those of a master that never had one.
        out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n\r\n");
    }
    if want("cpu") {
        out.push_str("# CPU\r\n");
        if let Some(cpu) = process_cpu() {
            for (name, ticks) in [
                ("used_cpu_sys", cpu[1]),
                ("used_cpu_user", cpu[0]),
                ("used_cpu_sys_children", cpu[3]),
                ("used_cpu_user_children", cpu[2]),
            ] {
                let _ = write!(
                    out,
                    "{name}:{}.{:06}\r\n",
                    ticks / CLOCK_TICKS_PER_S,
                    (ticks % CLOCK_TICKS_PER_S) * (1_000_000 / CLOCK_TICKS_PER_S)
                );
            }
        }
        out.push_str("\r\n");
    }
    if want("modules") || want("module_list") {
        // No module is ever loaded.
        out.push_str("# Modules\r\n\r\n");
    }
    if want("commandstats") {
        inner.command_stats.write_commandstats(&mut out);
    }
    if want("errorstats") {
        inner.command_stats.write_errorstats(&mut out);
    }
    if want("latencystats") {
        inner.command_stats.write_latencystats(&mut out);
    }
    if want("cluster") {
        out.push_str("# Cluster\r\ncluster_enabled:0\r\n\r\n");
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n");
        for db in 0..DATABASES {
            let (keys, expires) = super::keys::db_len(ctx, db);
            if keys > 0 {
                let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        out.push_str("\r\n");
    }
    // Each section ends in a blank line above; Redis puts one between sections only.
    if out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    Frame::Verbatim(Bytes::from(out))
}

/// Redis's `LRU_CLOCK_MAX`: INFO's `lru_clock` is the time in seconds modulo 2^24.
const LRU_CLOCK_MAX: u64 = (1 << 24) - 1;

/// Redis's `bytesToHuman`: bytes below 1024 as `<n>B`, then K, M, G, T and P with two decimals.
fn bytes_to_human(n: u64) -> String {
    if n < 1024 {
        return format!("{n}B");
    }
    let mut scale: u64 = 1 << 10;
    for unit in ['K', 'M', 'G', 'T', 'P'] {
        // At most 2^60: no overflow.
        let next = scale << 10;
        if n < next {
            return format!("{:.2}{unit}", n as f64 / scale as f64);
        }
        scale = next;
    }
    format!("{n}B")
}

/// Linux's `USER_HZ`: the unit of `/proc/<pid>/stat`'s CPU times (100 on every Linux ABI).
const CLOCK_TICKS_PER_S: u64 = 100;

/// The process's user, system, children's user and children's system CPU time in clock ticks,
/// from `/proc/self/stat` (fields 14–17); `None` where that file is not there (INFO then lists
/// no CPU times rather than made-up ones).
fn process_cpu() -> Option<[u64; 4]> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    Some([field(11)?, field(12)?, field(13)?, field(14)?])
}

pub(crate) fn not_here(_: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    Frame::error(format!(
        "ERR '{}' is only available on a RESP connection",
        String::from_utf8_lossy(arg(args, 0))
    ))
}

/// LATENCY HELP's lines, as Redis 7.0.15 prints them.
const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

/// LATENCY: the latency monitor's events (`latency-monitor-threshold`) and the per-command
/// histograms (`latency-tracking`); see [`crate::cache::latency`].
pub(crate) fn latency(_: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let stats = &inner.command_stats;
    let monitor = &stats.monitor;
    let sub = arg(args, 1);
    let n = super::int64;
    // The dispatcher checked each known subcommand's arity.
    if is(sub, "latest") {
        return Frame::Array(
            monitor
                .latest()
                .into_iter()
                .map(|(name, t, ms, max)| {
                    Frame::Array(vec![Frame::bulk(name.as_bytes()), n(t), n(ms), n(max)])
                })
                .collect(),
        );
    }
    if is(sub, "history") {
        return Frame::Array(
            monitor
                .history(arg(args, 2))
                .into_iter()
                .map(|(t, ms)| Frame::Array(vec![n(t), n(ms)]))
                .collect(),
        );
    }
    if is(sub, "reset") {
        let events = args.get(2..).unwrap_or_default();
        return int(monitor.reset(events));
    }
    if is(sub, "graph") {
        return match monitor.graph(arg(args, 2)) {
            Some(text) => Frame::Verbatim(Bytes::from(text)),
            None => Frame::error(format!(
                "ERR No samples available for event '{}'",
                String::from_utf8_lossy(arg(args, 2))
            )),
        };
    }
    if is(sub, "doctor") {
        return Frame::Verbatim(Bytes::from(monitor.doctor()));
    }
    if is(sub, "histogram") {
        let names = args.get(2..).unwrap_or_default();
        return Frame::Map(
            stats
                .latency_histograms(names)
                .into_iter()
                .map(|(name, counts)| {
                    let cdf = counts
                        .cumulative_usec()
                        .into_iter()
                        .map(|(usec, count)| (n(usec), n(count)))
                        .collect();
                    (
                        Frame::bulk(name.as_bytes()),
                        Frame::Map(vec![
                            (Frame::bulk(b"calls"), n(counts.total())),
                            (Frame::bulk(b"histogram_usec"), Frame::Map(cdf)),
                        ]),
                    )
                })
                .collect(),
        );
    }
    if is(sub, "help") {
        return Frame::Array(LATENCY_HELP.iter().map(|s| Frame::simple(s)).collect());
    }
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try LATENCY HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// SLOWLOG HELP's lines, as Redis 7.0.15 prints them.
const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// SLOWLOG GET [count], LEN, RESET, HELP (see [`crate::cache::slowlog`]).
pub(crate) fn slowlog(_: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let log = &inner.slowlog;
    let sub = arg(args, 1);
    // The dispatcher checked each known subcommand's arity but GET's upper bound.
    if is(sub, "get") && args.len() <= 3 {
        let count = match args.get(2) {
            None => 10,
            Some(n) => match crate::cache::resp::frame::parse_i64(n) {
                Some(-1) => usize::MAX,
                Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
                // Redis gives this text for a count that is no integer, too.
                _ => return Frame::error("ERR count should be greater than or equal to -1"),
            },
        };
        let n = super::int64;
        return Frame::Array(
            log.newest(count)
                .into_iter()
                .map(|e| {
                    Frame::Array(vec![
                        n(e.id),
                        n(e.time_s),
                        n(e.micros),
                        Frame::Array(e.args.into_iter().map(Frame::Bulk).collect()),
                        Frame::bulk(e.peer.as_bytes()),
                        Frame::Bulk(e.name),
                    ])
                })
                .collect(),
        );
    }
    if is(sub, "len") {
        return int(log.len());
    }
    if is(sub, "reset") {
        log.reset();
        return Frame::ok();
    }
    if is(sub, "help") {
        return Frame::Array(SLOWLOG_HELP.iter().map(|s| Frame::simple(s)).collect());
    }
    if is(sub, "get") {
        return Frame::error(
            "ERR unknown subcommand or wrong number of arguments for 'get'. Try SLOWLOG HELP.",
        );
    }
    Frame::error(format!(
        "ERR unknown subcommand '{}'. Try SLOWLOG HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// ROLE: this server is a master with no replicas (there is no replication), at offset 0.
/// CLUSTER (every subcommand) and ASKING on a server without cluster support, as Redis 7.0
/// answers them with `cluster-enabled no`: this server is never a cluster node. An unknown
/// CLUSTER subcommand gets Redis's unknown-subcommand error instead.
pub(crate) fn cluster_disabled(_: &mut Ctx<'_>, _: &Inner, args: &[&[u8]]) -> Frame {
    if let [name, sub, ..] = args {
        let full = format!(
            "{}|{}",
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        );
        if !command::is_full_name(&full) {
            return Frame::error(format!(
                "ERR unknown subcommand '{}'. Try CLUSTER HELP.",
                String::from_utf8_lossy(sub)
            ));
        }
    }
    Frame::error("ERR This instance has cluster support disabled")
}

pub(crate) fn role(_: &mut Ctx<'_>, _: &Inner, _: &[&[u8]]) -> Frame {
    Frame::Array(vec![
        Frame::bulk(b"master"),
        Frame::Integer(0),
        Frame::Array(Vec::new()),
    ])
}
