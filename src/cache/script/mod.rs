//! Lua scripting, as Redis 7.0 runs it: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT
//! LOAD/EXISTS/FLUSH/KILL here, FUNCTION and FCALL in [`function`].
//!
//! Two Lua 5.1 states (the version Redis embeds), each a [`Vm`]: EVAL's holds every cached
//! script as a compiled function, keyed by the SHA1 of its body; FUNCTION's holds the
//! libraries. A script runs with the keyspace gate held exclusively, so nothing else runs until
//! it ends: it is atomic, as in Redis. `redis.call` and `redis.pcall` run commands through the
//! same handlers the RESP server uses, inside that one context; replies and Lua values convert
//! as Redis converts them ([`convert`]).
//!
//! The environment (`prelude.lua`) is Redis's: `KEYS` and `ARGV`, the `redis` table, the
//! `string`, `table`, `math`, `cjson`, `bit`, `cmsgpack` and `struct` libraries, read-only
//! globals and libraries, an error for reading an undeclared global, `pcall` that gives error
//! tables as strings, and no file or process access.
//!
//! While a script runs, the RESP server holds its other clients' commands back; once the script
//! has run past `busy-reply-threshold` (`lua-time-limit`) they get Redis's BUSY errors, and SCRIPT
//! KILL or FUNCTION KILL stops a script that has not written ([`running`]). What differs from
//! Redis, and why:
//! - A script still running after [`SCRIPT_RUN_MS_MAX`] is stopped, its writes kept (Redis
//!   leaves one that has written running until SHUTDOWN NOSAVE; here the flows and the HTTP API
//!   share the cache and would wait with it).
//! - Each Lua state's memory is capped at [`SCRIPT_MEMORY_BYTES_MAX`]; an allocation beyond it
//!   fails the script with an error instead of growing the process.

mod convert;
mod function;
mod libs;
mod msgpack;
mod running;
mod structlib;

pub use convert::REPLY_DEPTH_MAX;
pub use function::FUNCTION_LOAD_MS_MAX;
pub use libs::CJSON_DEPTH_MAX;
pub(crate) use running::Running;
pub use running::SCRIPT_RUN_MS_MAX;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use hashbrown::HashMap;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use sha1::{Digest, Sha1};

use crate::cache::Inner;
use crate::cache::cmd::{NOT_INTEGER, arg, is, keys::db_index};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::command::{self, Mode, Spec};
use crate::cache::resp::frame::{Frame, parse_i64};

/// Most bytes one Lua state may allocate (scripts' tables and strings, compiled scripts).
pub const SCRIPT_MEMORY_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Most scripts EVAL keeps compiled; past it the oldest script EVAL added (not one SCRIPT LOAD
/// added) is dropped, as Redis 7.4 bounds its EVAL cache. A dropped script's EVALSHA answers
/// NOSCRIPT and its next EVAL compiles it again.
pub const EVAL_SCRIPTS_MAX: usize = 500;

/// Lua instructions between two checks of the time limit and of SCRIPT KILL.
const HOOK_INSTRUCTIONS: u32 = 100_000;

/// How long the RESP thread runs a script itself (or `busy-reply-threshold`, when lower), and
/// how many hook calls ([`HOOK_INSTRUCTIONS`] Lua instructions each) at most. Handing every
/// script to another thread would cost each a thread hand-off both ways (most scripts take
/// microseconds); a script that runs past either before its first write or PUBLISH is stopped,
/// with no effect made, and run again from the start on another thread, so the RESP thread can
/// answer BUSY and SCRIPT KILL while it runs. One that has written by then finishes on the RESP
/// thread: other clients wait for it as for any command, and SCRIPT KILL could not stop it
/// anyway.
const SCRIPT_INLINE_MS: u64 = 2;
const SCRIPT_INLINE_HOOKS: u32 = 10;

/// The error that stops an inline run to hand it off (its reply is discarded).
const HANDED_OFF: &str = "Script handed off to another thread";

/// Per-run state shared between the hook and `redis.call`.
#[derive(Debug, Default)]
struct RunFlags {
    /// A write or PUBLISH ran: the run cannot be stopped and run again.
    pinned: AtomicBool,
    /// The run is inline and not yet pinned: its commands are counted in `deferred`.
    defer: AtomicBool,
    /// The inline run stopped to be handed off; `redis.call` refuses every command from then.
    handed_off: AtomicBool,
    /// Hook calls so far.
    hooks: AtomicU32,
    /// The commands an inline run has called while it could still be handed off, not yet
    /// counted (INFO commandstats, `total_commands_processed`) or shown to MONITOR: a run
    /// handed off drops them, as the run again calls them again; one that is pinned or ends
    /// inline counts them ([`RunFlags::settle`]).
    deferred: std::sync::Mutex<Vec<Deferred>>,
}

/// A command an inline run called, to be counted once the run is known to stand.
#[derive(Debug)]
struct Deferred {
    spec: &'static Spec,
    db: usize,
    args: Vec<Vec<u8>>,
    nanos: u64,
    /// The reply, when it was an error (its code is counted); `+OK` stands for any other.
    error: Option<Frame>,
}

impl RunFlags {
    /// Counts the deferred commands (the run stands), or drops them when it was handed off.
    fn settle(&self, inner: &Inner) {
        let deferred = std::mem::take(
            &mut *self
                .deferred
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if self.handed_off.load(Ordering::Relaxed) {
            return;
        }
        for d in deferred {
            let argv: Vec<&[u8]> = d.args.iter().map(Vec::as_slice).collect();
            let reply = d.error.unwrap_or_else(Frame::ok);
            count_call(inner, d.spec, d.db, &argv, d.nanos, &reply);
        }
    }
}

/// Counts one command a script ran: `total_commands_processed`, INFO commandstats, MONITOR.
fn count_call(
    inner: &Inner,
    spec: &'static Spec,
    db: usize,
    argv: &[&[u8]],
    nanos: u64,
    reply: &Frame,
) {
    inner.stats.commands.fetch_add(1, Ordering::Relaxed);
    inner.command_stats.call(spec, argv, nanos, reply);
    inner.monitor(db, crate::cache::monitor::Origin::Lua, argv);
}

/// Redis's reply to EVALSHA of an unknown script.
const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Commands Redis refuses inside scripts (their `noscript` flag, Redis 7.0.15), besides the
/// connection commands, which are refused here as a group (SELECT excepted), and CLUSTER
/// RESET, the one CLUSTER subcommand with the flag (checked by its flag).
const NOSCRIPT_COMMANDS: &[&str] = &[
    "blmove",
    "blpop",
    "brpop",
    "brpoplpush",
    "bzpopmax",
    "bzpopmin",
    "config",
    "debug",
    "eval",
    "eval_ro",
    "evalsha",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
    "function",
    "latency",
    "role",
    "script",
];

/// A cached script (its compiled chunk is in [`Vm::chunks`] under its SHA1).
#[derive(Debug)]
struct Script {
    /// Its shebang's flags (`compat` without one).
    flags: Flags,
    /// Bytes of its body (for INFO).
    body_bytes: usize,
    /// Added by EVAL (may be dropped past [`EVAL_SCRIPTS_MAX`]) rather than SCRIPT LOAD.
    from_eval: bool,
}

/// One Lua state with the scripting environment (`prelude.lua`): EVAL's scripts live in one,
/// FUNCTION's libraries in another, as in Redis (each flush replaces its own).
pub(crate) struct Vm {
    lua: Lua,
    /// What the prelude reads from the host: `call`, `setresp` and `register` while a script
    /// runs or a library loads, and the environment scripts are compiled in (`env`).
    host: Table,
    /// Lua's own `xpcall`, the message handler, and the script environment the prelude made.
    xpcall: Function,
    handler: Function,
    env: Table,
    /// The compiled scripts (EVAL's by SHA1, FUNCTION's callbacks by function name), kept in
    /// a Lua table rather than as one mlua reference each: a Lua state holds at most about
    /// 8000 mlua references (its auxiliary thread's stack), which the values a script handles
    /// also use, and running out of them panics inside mlua.
    chunks: Table,
    /// Scripts run, for the occasional GC step Redis also takes.
    runs: u64,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("used_memory", &self.lua.used_memory())
            .finish_non_exhaustive()
    }
}

/// The EVAL scripts and the FUNCTION libraries. Held in a mutex; a script runs with it locked.
pub(crate) struct Scripting {
    eval: Vm,
    /// Lower-case hex SHA1 → script.
    scripts: HashMap<String, Script>,
    /// Scripts EVAL added, oldest first (some may since have been flushed or loaded again).
    eval_order: VecDeque<String>,
    /// Bytes of every cached script's body.
    body_bytes: usize,
    /// FUNCTION's libraries.
    pub(crate) functions: function::Functions,
}

impl std::fmt::Debug for Scripting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripting")
            .field("scripts", &self.scripts.len())
            .field("body_bytes", &self.body_bytes)
            .finish_non_exhaustive()
    }
}

/// What a script declares in its shebang (`#!lua flags=…`) or a function at registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    /// An EVAL script without a shebang: Redis's backwards-compatible rules.
    pub(crate) compat: bool,
    pub(crate) no_writes: bool,
    pub(crate) allow_oom: bool,
    pub(crate) allow_stale: bool,
    pub(crate) no_cluster: bool,
    pub(crate) allow_cross_slot_keys: bool,
}

impl Flags {
    /// Sets the flag `name` (Redis's names); false for a name Redis does not know.
    pub(crate) fn set(&mut self, name: &str) -> bool {
        match name {
            "no-writes" => self.no_writes = true,
            "allow-oom" => self.allow_oom = true,
            "allow-stale" => self.allow_stale = true,
            "no-cluster" => self.no_cluster = true,
            "allow-cross-slot-keys" => self.allow_cross_slot_keys = true,
            _ => return false,
        }
        true
    }

    /// The names of the flags set, in Redis's order.
    pub(crate) fn names(self) -> Vec<&'static str> {
        [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot_keys, "allow-cross-slot-keys"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// What a script's commands may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// Writes are refused (EVAL_RO, FCALL_RO, `no-writes`).
    read_only: bool,
    /// A memory-growing command is refused when memory was over `maxmemory` before the script
    /// (scripts without flags; flagged ones are checked once, before they run).
    check_oom: bool,
}

/// The flags of an EVAL script's `#!lua flags=…` first line, and the code Lua compiles (the
/// first line emptied, its newline kept so line numbers stay); no shebang is `compat`.
fn parse_shebang(body: &[u8]) -> Result<(Flags, std::borrow::Cow<'_, [u8]>), Frame> {
    if !body.starts_with(b"#!") {
        return Ok((
            Flags {
                compat: true,
                ..Flags::default()
            },
            std::borrow::Cow::Borrowed(body),
        ));
    }
    let Some(end) = memchr::memchr(b'\n', body) else {
        return Err(Frame::error("ERR Invalid script shebang"));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(Frame::error(format!(
            "ERR Unexpected engine in script shebang: {engine}"
        )));
    }
    let mut flags = Flags::default();
    for part in parts {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(Frame::error(format!(
                "ERR Unknown lua shebang option: {part}"
            )));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            if !flags.set(flag) {
                return Err(Frame::error(format!(
                    "ERR Unexpected flag in script shebang: {flag}"
                )));
            }
        }
    }
    Ok((flags, std::borrow::Cow::Borrowed(&body[end..])))
}

/// How one run calls its chunk: an EVAL script reads `KEYS` and `ARGV` as globals, a function
/// gets them as its two arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Calling {
    Eval,
    Function,
}

/// The script cache's figures for INFO memory.
#[derive(Debug, Default)]
pub(crate) struct Info {
    /// Cached scripts (`number_of_cached_scripts`).
    pub(crate) scripts: AtomicUsize,
    /// Bytes the Lua state holds (`used_memory_lua`).
    pub(crate) lua_bytes: AtomicUsize,
    /// Bytes of the cached scripts' bodies (`used_memory_scripts_eval`).
    pub(crate) body_bytes: AtomicUsize,
    /// Functions and libraries loaded (`number_of_functions`, `number_of_libraries`).
    pub(crate) functions: AtomicUsize,
    pub(crate) libraries: AtomicUsize,
    /// Bytes the functions' Lua state holds (`used_memory_vm_functions`).
    pub(crate) functions_lua_bytes: AtomicUsize,
    /// Bytes of the libraries' code (`used_memory_functions`).
    pub(crate) functions_code_bytes: AtomicUsize,
}

impl Info {
    fn update(&self, s: &Scripting) {
        self.scripts.store(s.scripts.len(), Ordering::Relaxed);
        self.lua_bytes
            .store(s.eval.used_memory(), Ordering::Relaxed);
        self.body_bytes.store(s.body_bytes, Ordering::Relaxed);
        self.functions
            .store(s.functions.function_count(), Ordering::Relaxed);
        self.libraries
            .store(s.functions.library_count(), Ordering::Relaxed);
        self.functions_lua_bytes
            .store(s.functions.used_memory(), Ordering::Relaxed);
        self.functions_code_bytes
            .store(s.functions.code_bytes(), Ordering::Relaxed);
    }
}

/// Whether `spec` runs a script (its memory check happens before it takes the keyspace).
/// Whether script command `args` is refused over `maxmemory` before it runs, as Redis's
/// `evalGetCommandFlags` and `fcallGetCommandFlags` make it DENYOOM: its script declares flags
/// (a shebang, or a registered function) without `allow-oom` or `no-writes`. A script not known
/// yet (an unknown SHA or function), or the scripting state busy with a running script, leaves
/// the answer to the command itself.
pub(crate) fn declares_denyoom(inner: &Inner, spec: &Spec, args: &[&[u8]]) -> bool {
    declared_flags(inner, spec, args).is_some_and(|f| !f.compat && !f.allow_oom && !f.no_writes)
}

/// Whether a script command may write, as Redis 7.0's `scriptFlagsToCmdFlags` sees it for
/// CLIENT PAUSE WRITE: the `_RO` forms never; the others unless the script or function
/// declares `no-writes` (one without a shebang, or not found, keeps EVAL's `may_replicate`).
pub(crate) fn may_write(inner: &Inner, spec: &Spec, args: &[&[u8]]) -> bool {
    if matches!(spec.name, "eval_ro" | "evalsha_ro" | "fcall_ro") {
        return false;
    }
    declared_flags(inner, spec, args).is_none_or(|f| f.compat || !f.no_writes)
}

/// The flags the script or function a script command names declares, when it is known.
fn declared_flags(inner: &Inner, spec: &Spec, args: &[&[u8]]) -> Option<Flags> {
    let cached = |read: &dyn Fn(&Scripting) -> Option<Flags>| {
        // Never waits: a script running elsewhere holds the state, and the command answers
        // BUSY then.
        let guard = inner.scripting.try_lock().ok()?;
        guard.as_ref().and_then(read)
    };
    let body = arg(args, 1);
    match spec.name {
        "eval" | "eval_ro" => cached(&|s| s.scripts.get(&sha1_hex(body)).map(|c| c.flags))
            .or_else(|| parse_shebang(body).ok().map(|(flags, _)| flags)),
        "evalsha" | "evalsha_ro" => {
            let sha = String::from_utf8_lossy(body).to_ascii_lowercase();
            cached(&|s| s.scripts.get(&sha).map(|c| c.flags))
        }
        "fcall" | "fcall_ro" => cached(&|s| function::flags_of(&s.functions, body)),
        _ => None,
    }
}

pub(crate) fn is_script_command(spec: &Spec) -> bool {
    matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// Lower-case hex SHA1 of `bytes` (`redis.sha1hex`, script names: what EVALSHA takes).
#[must_use]
pub fn sha1_hex(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    hex::encode(Sha1::digest(bytes))
}

impl Vm {
    /// A fresh Lua state with the scripting environment.
    ///
    /// # Errors
    /// A Lua error setting up the state (out of memory).
    pub(crate) fn new() -> mlua::Result<Self> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_memory_limit(SCRIPT_MEMORY_BYTES_MAX)?;
        let globals = lua.globals();
        let host = lua.create_table()?;
        libs::install(&lua, &host)?;
        // Lua's own, before the prelude gives scripts one that passes errors' texts.
        let xpcall: Function = globals.raw_get("xpcall")?;
        lua.load(include_str!("prelude.lua"))
            .set_name("=prelude")
            .call::<()>(host.clone())?;
        let handler = lua.create_function(message_handler)?;
        let env: Table = host.raw_get("env")?;
        let chunks = lua.create_table()?;
        Ok(Self {
            lua,
            host,
            xpcall,
            handler,
            env,
            chunks,
            runs: 0,
        })
    }

    /// Compiles `code` as a chunk named `name` (`@user_script`, `@user_function`) in the
    /// scripting environment; precompiled chunks are refused.
    pub(crate) fn compile(&self, code: &[u8], name: &str) -> mlua::Result<Function> {
        self.lua
            .load(code)
            .set_name(name)
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
    }

    /// The compiled chunk kept under `key` in [`Vm::chunks`].
    pub(crate) fn chunk(&self, key: &str) -> mlua::Result<Function> {
        self.chunks.raw_get(key)
    }

    /// Bytes the Lua state holds.
    pub(crate) fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// Runs `function` (a script named `name` in errors) with `keys` and `argv` in `ctx`; a
    /// script's errors and values become its reply.
    #[expect(
        clippy::too_many_arguments,
        reason = "one script run's inputs, passed once"
    )]
    pub(crate) fn run(
        &mut self,
        ctx: &mut Ctx<'_>,
        inner: &Inner,
        name: &str,
        function: &Function,
        calling: Calling,
        keys: &[&[u8]],
        argv: &[&[u8]],
        flags: Flags,
        read_only: bool,
    ) -> Frame {
        if !flags.compat {
            if !flags.no_writes && read_only {
                return Frame::error(
                    "ERR Can not execute a script with write flag using *_ro command.",
                );
            }
            if ctx.over_memory && !flags.allow_oom && !flags.no_writes {
                return Frame::error(
                    "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
                );
            }
        }
        let rules = Rules {
            read_only: read_only || flags.no_writes,
            // A script that declares flags is checked for memory once, before it runs.
            check_oom: flags.compat,
        };
        let caller_db = ctx.db;
        let caller_resp3 = ctx.resp3;
        let flags = Arc::new(RunFlags::default());
        let reply = self.call(ctx, inner, function, calling, keys, argv, rules, &flags);
        self.lua.remove_hook();
        flags.settle(inner);
        if let Some(log) = ctx.lookup_log.take()
            && flags.handed_off.load(Ordering::Relaxed)
        {
            ctx.uncount_lookups(log);
        }
        ctx.script_handed_off = flags.handed_off.load(Ordering::Relaxed);
        // Redis takes a GC step every 50 scripts so garbage never waits for a full cycle.
        self.runs += 1;
        if self.runs.is_multiple_of(50) {
            let _ = self.lua.gc_step_kbytes(50);
        }
        ctx.db = caller_db;
        ctx.resp3 = caller_resp3;
        match reply {
            Ok((true, value, resp3)) => convert::to_frame(&value, resp3),
            Ok((false, value, _)) => script_error(name, &value),
            Err(e) => Frame::error(format!(
                "ERR Error running script {name}, {}",
                lua_message(&e)
            )),
        }
    }
    /// The Lua side of [`Vm::run`]: arguments, the scoped `call`, the hook and the protected
    /// call. Returns whether the script succeeded, its value (or error table) and
    /// the protocol it last chose with `redis.setresp`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one script run's inputs, passed once"
    )]
    fn call(
        &self,
        ctx: &mut Ctx<'_>,
        inner: &Inner,
        function: &Function,
        calling: Calling,
        keys: &[&[u8]],
        argv: &[&[u8]],
        rules: Rules,
        flags: &Arc<RunFlags>,
    ) -> mlua::Result<(bool, Value, bool)> {
        let lua = &self.lua;
        let keys = string_array(lua, keys)?;
        let argv = string_array(lua, argv)?;
        if calling == Calling::Eval {
            let globals = lua.globals();
            globals.raw_set("KEYS", keys.clone())?;
            globals.raw_set("ARGV", argv.clone())?;
        }
        let threshold_ms = inner.settings.busy_reply_threshold_ms();
        let clock = inner.clock.clone();
        let running = Arc::clone(&inner.running);
        flags.defer.store(ctx.script_inline, Ordering::Relaxed);
        ctx.lookup_log = ctx.script_inline.then(Vec::new);
        let inline_until = ctx.script_inline.then(|| {
            clock
                .monotonic_ns()
                .saturating_add(SCRIPT_INLINE_MS.min(threshold_ms).saturating_mul(1_000_000))
        });
        let hook_flags = Arc::clone(flags);
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_INSTRUCTIONS),
            move |lua, _| {
                let now = clock.monotonic_ns();
                let hooks = hook_flags.hooks.fetch_add(1, Ordering::Relaxed) + 1;
                let hand_off = inline_until.is_some_and(|until| {
                    (now >= until || hooks >= SCRIPT_INLINE_HOOKS)
                        && !hook_flags.pinned.load(Ordering::Relaxed)
                });
                let message = if hand_off {
                    hook_flags.handed_off.store(true, Ordering::Relaxed);
                    Some(HANDED_OFF.to_owned())
                } else {
                    running.check(now, threshold_ms)
                };
                let Some(message) = message else {
                    return Ok(VmState::Continue);
                };
                // From now on every line raises it again, so a script that catches the error
                // with pcall is stopped at its next line outside the pcall (as Redis does after
                // SCRIPT KILL).
                let again = message.clone();
                lua.set_hook(
                    HookTriggers::new().every_line().every_nth_instruction(1000),
                    move |_, _| Err(mlua::Error::runtime(again.clone())),
                )?;
                Err(mlua::Error::runtime(message))
            },
        )?;
        let resp3 = std::cell::Cell::new(false);
        ctx.resp3 = false;
        let result = lua.scope(|scope| {
            // `redis.call(...)` passes its arguments as (count, table): thousands of them fit in
            // a table where they would not fit on Lua's C stack.
            let call = scope.create_function_mut(|lua, args: (usize, Table)| {
                Ok(run_command(
                    lua,
                    ctx,
                    inner,
                    args,
                    rules,
                    flags,
                    resp3.get(),
                ))
            })?;
            let setresp = scope.create_function(|_, version: Value| {
                let version = match version {
                    Value::Integer(n) => Some(n),
                    Value::Number(n) if n == n.trunc() => Some(n as i64),
                    _ => None,
                };
                Ok(match version {
                    Some(2) => {
                        resp3.set(false);
                        None
                    }
                    Some(3) => {
                        resp3.set(true);
                        None
                    }
                    _ => Some("ERR RESP version must be 2 or 3."),
                })
            })?;
            self.host.raw_set("call", call)?;
            self.host.raw_set("setresp", setresp)?;
            let out = match calling {
                Calling::Eval => self
                    .xpcall
                    .call::<(bool, Value)>((function.clone(), self.handler.clone())),
                Calling::Function => self
                    .host
                    .raw_get::<Function>("fcall")?
                    .call::<(bool, Value)>((function.clone(), self.handler.clone(), keys, argv)),
            };
            self.host.raw_set("call", Value::Nil)?;
            self.host.raw_set("setresp", Value::Nil)?;
            out
        });
        let (ok, value) = result?;
        Ok((ok, value, resp3.get()))
    }
}

impl Scripting {
    /// Fresh Lua states, no scripts and no libraries.
    ///
    /// # Errors
    /// A Lua error setting up a state (out of memory).
    pub(crate) fn new() -> mlua::Result<Self> {
        Ok(Self {
            eval: Vm::new()?,
            scripts: HashMap::new(),
            eval_order: VecDeque::new(),
            body_bytes: 0,
            functions: function::Functions::new()?,
        })
    }

    /// Compiles `body` unless it is cached; returns its SHA1.
    fn load(&mut self, body: &[u8], from_eval: bool) -> Result<String, Frame> {
        let sha = sha1_hex(body);
        if let Some(script) = self.scripts.get_mut(&sha) {
            // SCRIPT LOAD pins a script EVAL added.
            script.from_eval &= from_eval;
            return Ok(sha);
        }
        let (flags, code) = parse_shebang(body)?;
        let function = self.eval.compile(&code, "@user_script").map_err(|e| {
            Frame::error(format!(
                "ERR Error compiling script (new function): {}",
                lua_message(&e)
            ))
        })?;
        self.eval
            .chunks
            .raw_set(sha.as_str(), function)
            .map_err(|e| Frame::error(format!("ERR {}", lua_message(&e))))?;
        self.scripts.insert(
            sha.clone(),
            Script {
                flags,
                body_bytes: body.len(),
                from_eval,
            },
        );
        self.body_bytes += body.len();
        if from_eval {
            self.eval_order.push_back(sha.clone());
            self.trim_eval_scripts(&sha);
        }
        Ok(sha)
    }

    /// Drops the oldest EVAL-added scripts past [`EVAL_SCRIPTS_MAX`], never `keep`.
    fn trim_eval_scripts(&mut self, keep: &str) {
        let mut from_eval = self.scripts.values().filter(|s| s.from_eval).count();
        while from_eval > EVAL_SCRIPTS_MAX {
            let Some(oldest) = self.eval_order.pop_front() else {
                return;
            };
            if oldest == keep {
                self.eval_order.push_back(oldest);
                continue;
            }
            if self.scripts.get(&oldest).is_some_and(|s| s.from_eval)
                && let Some(gone) = self.scripts.remove(&oldest)
            {
                // Removing a key allocates nothing, so it cannot fail on memory.
                let _ = self.eval.chunks.raw_set(oldest.as_str(), Value::Nil);
                self.body_bytes -= gone.body_bytes;
                from_eval -= 1;
            }
        }
    }

    /// Runs cached script `sha` (EVALSHA, or EVAL after [`Scripting::load`]).
    fn run_script(
        &mut self,
        ctx: &mut Ctx<'_>,
        inner: &Inner,
        sha: &str,
        keys: &[&[u8]],
        argv: &[&[u8]],
        read_only: bool,
    ) -> Frame {
        let Some(flags) = self.scripts.get(sha).map(|s| s.flags) else {
            return Frame::error(NOSCRIPT);
        };
        let function = match self.eval.chunk(sha) {
            Ok(f) => f,
            Err(e) => return Frame::error(format!("ERR {}", lua_message(&e))),
        };
        self.eval.run(
            ctx,
            inner,
            sha,
            &function,
            Calling::Eval,
            keys,
            argv,
            flags,
            read_only,
        )
    }

    /// SCRIPT FLUSH: a new Lua state without scripts.
    fn flush(&mut self) -> Result<(), Frame> {
        self.eval = Vm::new().map_err(|e| Frame::error(format!("ERR {}", lua_message(&e))))?;
        self.scripts.clear();
        self.eval_order.clear();
        self.body_bytes = 0;
        Ok(())
    }
}

/// A Lua array of byte strings.
fn string_array(lua: &Lua, items: &[&[u8]]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// The text of a Lua error, without mlua's wrapping.
pub(super) fn lua_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::MemoryError(message) => message.clone(),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}

/// The message handler of a script's protected call (Redis's `__redis__err__handler`): turns
/// a string error into `{err = "ERR …"}` and adds the source and line of the script code
/// that failed.
fn message_handler(lua: &Lua, err: Value) -> mlua::Result<Value> {
    let table = match err {
        Value::Table(t) => t,
        other => {
            let message = match &other {
                Value::String(s) => s.to_string_lossy(),
                Value::Error(e) => lua_message(e),
                Value::Nil => "nil".to_owned(),
                Value::Boolean(b) => b.to_string(),
                Value::Integer(n) => n.to_string(),
                Value::Number(n) => n.to_string(),
                v => v.type_name().to_owned(),
            };
            let t = lua.create_table()?;
            t.raw_set("err", format!("ERR {message}"))?;
            t
        }
    };
    // The innermost frame of user code (errors raised by a C function or by the prelude's
    // `redis.call` are reported at the line that called them, as Redis reports them).
    for level in 1..32 {
        let Some(found) = lua.inspect_stack(level, |d| {
            let source = d.source().source.map(|s| s.into_owned());
            (source, d.current_line())
        }) else {
            break;
        };
        if let (Some(source), Some(line)) = found
            && source.starts_with("@user_")
        {
            table.raw_set("source", source)?;
            table.raw_set("line", line)?;
            break;
        }
    }
    Ok(Value::Table(table))
}

/// A failed script's error reply: `{err}` with `script: <sha>, on <source>:<line>.`.
fn script_error(sha: &str, value: &Value) -> Frame {
    let Value::Table(t) = value else {
        return Frame::error(format!(
            "ERR Error running script {sha}, {}",
            convert::display(value)
        ));
    };
    let text = |key: &str| match t.raw_get::<Value>(key) {
        Ok(Value::String(s)) => Some(s.to_string_lossy()),
        Ok(Value::Integer(n)) => Some(n.to_string()),
        Ok(Value::Number(n)) => Some(convert::lua_number_text(n)),
        _ => None,
    };
    let mut message = text("err").unwrap_or_else(|| "ERR unknown error".to_owned());
    if let (Some(source), Some(line)) = (text("source"), text("line")) {
        message.push_str(&format!(" script: {sha}, on {source}:{line}."));
    }
    Frame::error(convert::one_line(&message))
}

/// One `redis.call`/`redis.pcall`: returns the reply as a Lua value and whether it is an error
/// (which `redis.call` raises).
fn run_command(
    lua: &Lua,
    ctx: &mut Ctx<'_>,
    inner: &Inner,
    (count, args): (usize, Table),
    rules: Rules,
    flags: &RunFlags,
    resp3: bool,
) -> (Value, bool) {
    let fail = |text: &str| (convert::error_table(lua, text).unwrap_or(Value::Nil), true);
    if flags.handed_off.load(Ordering::Relaxed) {
        return fail(&format!("ERR {HANDED_OFF}"));
    }
    if count == 0 {
        return fail("ERR Please specify at least one argument for this redis lib call");
    }
    let mut owned: Vec<Vec<u8>> = Vec::with_capacity(count.min(args.raw_len()));
    for i in 1..=count {
        match &args.raw_get::<Value>(i).unwrap_or(Value::Nil) {
            Value::String(s) => owned.push(s.as_bytes().to_vec()),
            Value::Integer(n) => owned.push(n.to_string().into_bytes()),
            Value::Number(n) => {
                owned.push(crate::cache::resp::frame::format_double(*n).into_bytes())
            }
            _ => return fail("ERR Lua redis lib command arguments must be strings or integers"),
        }
    }
    let argv: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let reply = match check_command(ctx, &argv, rules) {
        Err(e) => e,
        Ok(None) => Frame::ok(),
        Ok(Some(spec)) => {
            if spec.write || matches!(spec.name, "publish" | "spublish") {
                flags.pinned.store(true, Ordering::Relaxed);
                if flags.defer.swap(false, Ordering::Relaxed) {
                    // Pinned: the run stands, so what it deferred counts now, before this.
                    flags.settle(inner);
                    ctx.lookup_log = None;
                }
            }
            ctx.resp3 = resp3;
            let started = inner.clock.monotonic_ns();
            ctx.count_lookups = !spec.write;
            ctx.in_script = true;
            let own_notes = ctx.notes.len();
            let reply = (spec.handler)(ctx, inner, &argv);
            ctx.count_lookups = false;
            ctx.in_script = false;
            if ctx.run_for.remember_reads
                && !ctx.script_read
                && crate::cache::resp::command::is_readonly(spec, &argv)
            {
                ctx.script_read = true;
            }
            ctx.drain_expired(own_notes);
            let ran = inner.clock.monotonic_ns().saturating_sub(started);
            if flags.defer.load(Ordering::Relaxed) {
                flags
                    .deferred
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(Deferred {
                        spec,
                        db: ctx.db,
                        args: owned,
                        nanos: ran,
                        error: reply.is_error().then(|| reply.clone()),
                    });
            } else {
                count_call(inner, spec, ctx.db, &argv, ran, &reply);
            }
            if spec.write && !reply.is_error() {
                inner.running.note_write();
            }
            reply
        }
    };
    let failed = reply.is_error();
    match convert::to_lua(lua, reply, resp3) {
        Ok(v) => (v, failed),
        Err(e) => fail(&format!("ERR {}", lua_message(&e))),
    }
}

/// Checks a script's command before it runs: `Ok(None)` for a SELECT already applied,
/// `Ok(Some(spec))` to run, `Err` with the error reply otherwise.
fn check_command(
    ctx: &mut Ctx<'_>,
    argv: &[&[u8]],
    rules: Rules,
) -> Result<Option<&'static Spec>, Frame> {
    let Some(spec) = argv.first().and_then(|n| command::lookup(n)) else {
        return Err(Frame::error("ERR Unknown Redis command called from script"));
    };
    if command::arity_error(spec, argv).is_some() {
        return Err(Frame::error(
            "ERR Wrong number of args calling Redis command from script",
        ));
    }
    if spec.name == "select" {
        ctx.db = db_index(arg(argv, 1))?;
        return Ok(None);
    }
    if spec.mode == Mode::Connection
        || NOSCRIPT_COMMANDS.contains(&spec.name)
        || (spec.name == "cluster" && command::has_flag(spec, argv, "noscript"))
    {
        return Err(Frame::error(
            "ERR This Redis command is not allowed from script",
        ));
    }
    if matches!(spec.name, "xread" | "xreadgroup")
        && crate::cache::cmd::stream::xread_block_ms(argv)?.is_some()
    {
        return Err(Frame::error(format!(
            "ERR {} command is not allowed with BLOCK option from scripts",
            spec.name
        )));
    }
    // May-replicate commands count as writes here (Redis 7.0's `scriptVerifyWriteCommandAllow`),
    // so a read-only script also runs during CLIENT PAUSE WRITE.
    if rules.read_only && (spec.write || crate::cache::resp::command::may_replicate(spec)) {
        return Err(Frame::error(
            "ERR Write commands are not allowed from read-only scripts.",
        ));
    }
    if rules.check_oom && ctx.over_memory && spec.denies_oom(argv) {
        return Err(crate::cache::oom_error());
    }
    Ok(Some(spec))
}

/// A command's arguments.
type Args<'a> = &'a [&'a [u8]];

/// The keys and the arguments of EVAL's or FCALL's `numkeys key… arg…` (from `args[2]`);
/// `not_integer` is the command's error for a count that is not an integer.
fn split_keys<'a>(args: Args<'a>, not_integer: &str) -> Result<(Args<'a>, Args<'a>), Frame> {
    let numkeys = parse_i64(arg(args, 2)).ok_or_else(|| Frame::error(not_integer))?;
    let rest = args.get(3..).unwrap_or_default();
    let numkeys = usize::try_from(numkeys)
        .map_err(|_| Frame::error("ERR Number of keys can't be negative"))?;
    if numkeys > rest.len() {
        return Err(Frame::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    Ok(rest.split_at(numkeys))
}

/// EVAL, EVALSHA, EVAL_RO and EVALSHA_RO.
pub(crate) fn eval(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    let name = arg(args, 0).to_ascii_lowercase();
    let by_sha = name.starts_with(b"evalsha");
    let read_only = name.ends_with(b"_ro");
    let (keys, argv) = match split_keys(args, NOT_INTEGER) {
        Ok(split) => split,
        Err(e) => return e,
    };
    running(inner, Calling::Eval, args, || {
        with_scripting(inner, |scripting| {
            let sha = if by_sha {
                let given = arg(args, 1);
                if given.len() != 40 {
                    return Frame::error(NOSCRIPT);
                }
                String::from_utf8_lossy(given).to_ascii_lowercase()
            } else {
                match scripting.load(arg(args, 1), true) {
                    Ok(sha) => sha,
                    Err(e) => return e,
                }
            };
            scripting.run_script(ctx, inner, &sha, keys, argv, read_only)
        })
    })
}

/// Runs `command` (a script command's work) as the [`Running`] script, which SCRIPT KILL,
/// FUNCTION KILL and FUNCTION STATS see while it runs.
fn running(
    inner: &Inner,
    calling: Calling,
    args: &[&[u8]],
    command: impl FnOnce() -> Frame,
) -> Frame {
    inner
        .running
        .begin(calling, args, inner.clock.monotonic_ns());
    let reply = command();
    inner.running.end();
    reply
}

/// SCRIPT KILL, FUNCTION KILL and FUNCTION STATS while a script runs, answered without the
/// keyspace gate and the scripting lock the script holds; `None` for any other command, or
/// when no script runs.
pub(crate) fn answer_while_running(inner: &Inner, spec: &Spec, args: &[&[u8]]) -> Option<Frame> {
    let (calling, stats) = kill_or_stats(spec, args)?;
    let info = &inner.script_info;
    let engines = function::engines(
        info.libraries.load(Ordering::Relaxed),
        info.functions.load(Ordering::Relaxed),
    );
    inner
        .running
        .answer(calling, stats, engines, inner.clock.monotonic_ns())
}

/// SCRIPT KILL (Eval), FUNCTION KILL (Function, false) or FUNCTION STATS (Function, true):
/// the commands answered while a script runs, without the locks it holds.
pub(crate) fn kill_or_stats(spec: &Spec, args: &[&[u8]]) -> Option<(Calling, bool)> {
    let [_, sub] = args else {
        return None;
    };
    match spec.name {
        "script" if is(sub, "kill") => Some((Calling::Eval, false)),
        "function" if is(sub, "kill") => Some((Calling::Function, false)),
        "function" if is(sub, "stats") => Some((Calling::Function, true)),
        _ => None,
    }
}

/// Runs a script command on the scripting state (started on first use), then refreshes INFO's
/// figures of it.
fn with_scripting(inner: &Inner, command: impl FnOnce(&mut Scripting) -> Frame) -> Frame {
    let mut scripting = inner.scripting();
    let Some(scripting) = scripting.as_mut() else {
        return Frame::error("ERR the Lua scripting engine could not start");
    };
    let reply = command(scripting);
    inner.script_info.update(scripting);
    reply
}

/// Every FUNCTION library as `(name, code)`, for the snapshot (none when no script command has
/// started the scripting state).
pub(crate) fn library_codes(inner: &Inner) -> Vec<(String, Vec<u8>)> {
    let scripting = inner
        .scripting
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    scripting
        .as_ref()
        .map(|s| s.functions.codes())
        .unwrap_or_default()
}

/// Loads a library from the snapshot (replacing one of the same name).
///
/// # Errors
/// The reply FUNCTION LOAD would give, as text.
pub(crate) fn restore_library(inner: &Inner, code: &[u8]) -> Result<String, String> {
    let mut scripting = inner.scripting();
    let Some(scripting) = scripting.as_mut() else {
        return Err("the Lua scripting engine could not start".to_owned());
    };
    let loaded = scripting
        .functions
        .load(inner, code, true)
        .map_err(|e| match e {
            Frame::Error(text) => text,
            other => format!("{other:?}"),
        });
    inner.script_info.update(scripting);
    loaded
}

/// FUNCTION LOAD | DELETE | FLUSH | LIST | STATS | KILL | HELP.
pub(crate) fn function(_: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    with_scripting(inner, |scripting| {
        function::function(scripting, inner, args)
    })
}

/// FCALL and FCALL_RO.
pub(crate) fn fcall(ctx: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    running(inner, Calling::Function, args, || {
        with_scripting(inner, |scripting| {
            function::fcall(scripting, ctx, inner, args)
        })
    })
}

/// SCRIPT LOAD | EXISTS | FLUSH | KILL | HELP.
pub(crate) fn script(_: &mut Ctx<'_>, inner: &Inner, args: &[&[u8]]) -> Frame {
    with_scripting(inner, |scripting| script_command(scripting, args))
}

fn script_command(scripting: &mut Scripting, args: &[&[u8]]) -> Frame {
    let sub = arg(args, 1);
    if is(sub, "load") && args.len() == 3 {
        match scripting.load(arg(args, 2), false) {
            Ok(sha) => Frame::bulk(sha.as_bytes()),
            Err(e) => e,
        }
    } else if is(sub, "exists") && args.len() >= 3 {
        let found = args[2..]
            .iter()
            .map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Frame::Integer(i64::from(scripting.scripts.contains_key(&sha)))
            })
            .collect();
        Frame::Array(found)
    } else if is(sub, "flush") {
        match args.get(2) {
            None => {}
            Some(mode) if args.len() == 3 && (is(mode, "sync") || is(mode, "async")) => {}
            Some(_) => return Frame::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        }
        match scripting.flush() {
            Ok(()) => Frame::ok(),
            Err(e) => e,
        }
    } else if is(sub, "kill") && args.len() == 2 {
        running::Running::not_busy()
    } else if is(sub, "help") && args.len() == 2 {
        Frame::Array(SCRIPT_HELP.iter().map(|line| Frame::simple(line)).collect())
    } else {
        subcommand_error(
            "SCRIPT",
            sub,
            &["debug", "exists", "flush", "help", "kill", "load"],
        )
    }
}

/// The error of a SCRIPT or FUNCTION call its handler did not take: Redis's `unknown
/// subcommand` for a name not among `known`, else `addReplySubcommandSyntaxError`'s text (a
/// known subcommand with arguments it does not take, such as FUNCTION RESTORE's fourth).
fn subcommand_error(command: &str, sub: &[u8], known: &[&str]) -> Frame {
    let sub = String::from_utf8_lossy(sub);
    if known.iter().any(|k| sub.eq_ignore_ascii_case(k)) {
        Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
        ))
    } else {
        Frame::error(format!(
            "ERR unknown subcommand '{sub}'. Try {command} HELP."
        ))
    }
}

/// SCRIPT HELP, as Redis 7.0.15 prints it (without DEBUG, which is not provided).
const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];
