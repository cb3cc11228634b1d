//! Redis 7 functions: FUNCTION LOAD/DELETE/FLUSH/LIST/STATS/KILL/HELP and FCALL, FCALL_RO.
//!
//! A library is Lua code whose first line names it (`#!lua name=mylib`); loading runs it once,
//! and each `redis.register_function` call it makes adds a function (a name, a callback, flags
//! and a description). Libraries live in their own Lua state, apart from EVAL's, as in Redis:
//! SCRIPT FLUSH leaves them, FUNCTION FLUSH replaces that state. FCALL runs a function like an
//! EVAL script with flags (see [`super::Vm::run`]), its keys and arguments passed as its two
//! arguments. A load that fails changes nothing. FUNCTION DUMP writes Redis 7.0's payload (each
//! library's code, the RDB version, the CRC-64); FUNCTION RESTORE loads every library of one, or
//! none.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use mlua::{Function, HookTriggers, Table, Value, VmState};

use super::{Calling, Flags, Scripting, Vm, lua_message};
use crate::cache::Inner;
use crate::cache::cmd::{arg, glob_match, is};
use crate::cache::keyspace::Ctx;
use crate::cache::resp::frame::Frame;

/// How long loading a library may run (Redis's `LOAD_TIMEOUT_MS`).
pub const FUNCTION_LOAD_MS_MAX: u64 = 500;

/// One registered function.
#[derive(Debug)]
struct Func {
    /// The name as registered (functions are found by name case-insensitively, as in Redis).
    name: String,
    /// Its callback's key in the Lua state's compiled chunks ([`Vm::chunk`]).
    chunk: String,
    flags: Flags,
    description: Option<String>,
}

/// One loaded library.
#[derive(Debug)]
struct Library {
    /// The code as loaded, its metadata line included (FUNCTION LIST WITHCODE).
    code: Vec<u8>,
    /// Lower-case name → function.
    functions: BTreeMap<String, Func>,
}

/// The libraries and their Lua state.
#[derive(Debug)]
pub(crate) struct Functions {
    vm: Vm,
    libraries: BTreeMap<String, Library>,
    /// Lower-case function name → library name.
    index: HashMap<String, String>,
    /// The next callback's key in the compiled chunks.
    next_chunk: std::cell::Cell<u64>,
}

/// Redis's rule for library and function names: letters, digits and `_`, at least one.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

const BAD_NAME: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// A library's name from its first line (`#!<engine> name=<name>`), and the code Lua compiles
/// (from that line's newline on, so line numbers stay), with Redis's errors.
fn metadata(code: &[u8]) -> Result<(String, &[u8]), Frame> {
    if !code.starts_with(b"#!") {
        return Err(Frame::error("ERR Missing library metadata"));
    }
    let Some(end) = memchr::memchr(b'\n', code) else {
        return Err(Frame::error("ERR Invalid library metadata"));
    };
    let line = String::from_utf8_lossy(&code[..end]);
    let mut parts = line.split_ascii_whitespace();
    let engine = parts
        .next()
        .and_then(|e| e.strip_prefix("#!"))
        .ok_or_else(|| Frame::error("ERR Invalid library metadata"))?
        .to_owned();
    let mut name = None;
    for part in parts {
        match part.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("name=") => {
                if name.is_some() {
                    return Err(Frame::error(
                        "ERR Invalid metadata value, name argument was given multiple times",
                    ));
                }
                // A quoted name is read without its quotes, as Redis splits the line.
                let value = part.get(5..).unwrap_or_default();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                name = Some(value.to_owned());
            }
            _ => {
                return Err(Frame::error(format!(
                    "ERR Invalid metadata value given: {part}"
                )));
            }
        }
    }
    let name = name.ok_or_else(|| Frame::error("ERR Library name was not given"))?;
    if !valid_name(&name) {
        return Err(Frame::error(BAD_NAME));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Frame::error(format!("ERR Engine '{engine}' not found")));
    }
    Ok((name, &code[end..]))
}

impl Functions {
    /// No libraries.
    ///
    /// # Errors
    /// A Lua error setting up the state.
    pub(crate) fn new() -> mlua::Result<Self> {
        Ok(Self {
            vm: Vm::new()?,
            libraries: BTreeMap::new(),
            index: HashMap::new(),
            next_chunk: std::cell::Cell::new(0),
        })
    }

    pub(crate) fn function_count(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn library_count(&self) -> usize {
        self.libraries.len()
    }

    pub(crate) fn used_memory(&self) -> usize {
        self.vm.used_memory()
    }

    pub(crate) fn code_bytes(&self) -> usize {
        self.libraries.values().map(|l| l.code.len()).sum()
    }

    /// Every library as `(name, code)`.
    pub(crate) fn codes(&self) -> Vec<(String, Vec<u8>)> {
        self.libraries
            .iter()
            .map(|(name, lib)| (name.clone(), lib.code.clone()))
            .collect()
    }

    /// FUNCTION LOAD: the library's name, or Redis's error with nothing changed.
    pub(crate) fn load(
        &mut self,
        inner: &Inner,
        code: &[u8],
        replace: bool,
    ) -> Result<String, Frame> {
        let (name, library) = self.prepare(inner, code, |name| {
            if !replace && self.libraries.contains_key(name) {
                Err(Frame::error(format!("ERR Library '{name}' already exists")))
            } else {
                Ok(())
            }
        })?;
        if let Some(taken) = self.taken_elsewhere(&name, &library) {
            self.discard(&library.functions);
            return Err(Frame::error(format!("ERR Function {taken} already exists")));
        }
        self.install(name.clone(), library);
        Ok(name)
    }

    /// Reads, compiles and runs a library without installing it; `check` sees its name first.
    fn prepare(
        &self,
        inner: &Inner,
        code: &[u8],
        check: impl FnOnce(&str) -> Result<(), Frame>,
    ) -> Result<(String, Library), Frame> {
        let (name, body) = metadata(code)?;
        check(&name)?;
        let chunk = self.vm.compile(body, "@user_function").map_err(|e| {
            Frame::error(format!("ERR Error compiling function: {}", lua_message(&e)))
        })?;
        let functions = self.register(inner, &chunk)?;
        if functions.is_empty() {
            return Err(Frame::error("ERR No functions registered"));
        }
        Ok((
            name,
            Library {
                code: code.to_vec(),
                functions,
            },
        ))
    }

    /// A function of `library` that a library other than `name` already has.
    fn taken_elsewhere(&self, name: &str, library: &Library) -> Option<String> {
        library
            .functions
            .iter()
            .find(|(key, _)| self.index.get(*key).is_some_and(|lib| lib != name))
            .map(|(_, f)| f.name.clone())
    }

    /// Adds (or replaces) a prepared library.
    fn install(&mut self, name: String, library: Library) {
        self.delete(&name);
        for key in library.functions.keys() {
            self.index.insert(key.clone(), name.clone());
        }
        self.libraries.insert(name, library);
    }

    /// FUNCTION RESTORE: every library of the payload, or none (Redis's `libraryJoin`).
    fn restore(&mut self, inner: &Inner, payload: &[u8], policy: &[u8]) -> Result<(), Frame> {
        let codes = crate::cache::rdb::decode_functions(payload)
            .map_err(|e| Frame::error(format!("ERR {e}")))?;
        let mut prepared: Vec<(String, Library)> = Vec::with_capacity(codes.len());
        let checked = self.restore_checked(inner, &codes, policy, &mut prepared);
        if let Err(e) = checked {
            for (_, library) in &prepared {
                self.discard(&library.functions);
            }
            return Err(e);
        }
        if is(policy, "flush") {
            for name in self.libraries.keys().cloned().collect::<Vec<_>>() {
                self.delete(&name);
            }
        }
        for (name, library) in prepared {
            self.install(name, library);
        }
        Ok(())
    }

    /// [`Functions::restore`]'s preparation and checks: every library of `codes` into
    /// `prepared`, or the error that refuses the payload.
    fn restore_checked(
        &self,
        inner: &Inner,
        codes: &[Vec<u8>],
        policy: &[u8],
        prepared: &mut Vec<(String, Library)>,
    ) -> Result<(), Frame> {
        for code in codes {
            let (name, library) = self.prepare(inner, code, |name| {
                if prepared.iter().any(|(n, _)| n == name) {
                    Err(Frame::error(format!("ERR Library {name} already exists")))
                } else {
                    Ok(())
                }
            })?;
            prepared.push((name, library));
        }
        if !is(policy, "flush") {
            let replace = is(policy, "replace");
            // Function key → the payload library that registers it.
            let mut seen = HashMap::new();
            for (n, l) in prepared.iter() {
                for key in l.functions.keys() {
                    seen.insert(key.clone(), n.clone());
                }
            }
            for (name, library) in prepared.iter() {
                if !replace && self.libraries.contains_key(name) {
                    return Err(Frame::error(format!("ERR Library {name} already exists")));
                }
                // A function another library of the payload, or a library this restore does
                // not replace, already has.
                let clash = library.functions.iter().find(|(key, _)| {
                    seen.get(*key).is_some_and(|lib| lib != name)
                        || self.index.get(*key).is_some_and(|lib| {
                            lib != name && !prepared.iter().any(|(n, _)| n == lib)
                        })
                });
                if let Some((_, f)) = clash {
                    return Err(Frame::error(format!(
                        "ERR Function {} already exists",
                        f.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Drops the callbacks of functions that were registered but not installed.
    fn discard(&self, functions: &BTreeMap<String, Func>) {
        for f in functions.values() {
            // Removing a key allocates nothing, so it cannot fail on memory.
            let _ = self.vm.chunks.raw_set(f.chunk.as_str(), Value::Nil);
        }
    }

    /// Runs a library's chunk with `redis.register_function` live; returns what it registered.
    fn register(&self, inner: &Inner, chunk: &Function) -> Result<BTreeMap<String, Func>, Frame> {
        let lua = &self.vm.lua;
        let registered = std::cell::RefCell::new(BTreeMap::<String, Func>::new());
        let clock = inner.clock.clone();
        let deadline = clock
            .monotonic_ns()
            .saturating_add(FUNCTION_LOAD_MS_MAX.saturating_mul(1_000_000));
        let failed = |e: mlua::Error| {
            Frame::error(format!(
                "ERR Error registering functions: {}",
                lua_message(&e)
            ))
        };
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(super::HOOK_INSTRUCTIONS),
            move |_, _| {
                if clock.monotonic_ns() < deadline {
                    Ok(VmState::Continue)
                } else {
                    Err(mlua::Error::runtime("FUNCTION LOAD timeout"))
                }
            },
        )
        .map_err(failed)?;
        let result = lua.scope(|scope| {
            let register = scope.create_function(
                |_,
                 (name, callback, flags, description): (
                    String,
                    Function,
                    Table,
                    Option<String>,
                )| {
                    if !valid_name(&name) {
                        return Ok(Some(BAD_NAME.to_owned()));
                    }
                    let mut parsed = Flags::default();
                    for flag in flags.sequence_values::<Value>() {
                        let known = match flag? {
                            Value::String(s) => parsed.set(&s.to_string_lossy()),
                            _ => false,
                        };
                        if !known {
                            return Ok(Some("ERR unknown flag given".to_owned()));
                        }
                    }
                    let mut registered = registered.borrow_mut();
                    let key = name.to_ascii_lowercase();
                    if registered.contains_key(&key) {
                        return Ok(Some(
                            "ERR Function already exists in the library".to_owned(),
                        ));
                    }
                    // The callback lives in the Lua state's chunk table, not as a reference
                    // held here (see `Vm::chunks`).
                    let n = self.next_chunk.get();
                    self.next_chunk.set(n.wrapping_add(1));
                    let chunk = n.to_string();
                    self.vm.chunks.raw_set(chunk.as_str(), callback)?;
                    registered.insert(
                        key,
                        Func {
                            name,
                            chunk,
                            flags: parsed,
                            description,
                        },
                    );
                    Ok(None)
                },
            )?;
            self.vm.host.raw_set("register", register)?;
            self.vm.host.raw_set("loading", true)?;
            let out = self
                .vm
                .xpcall
                .call::<(bool, Value)>((chunk.clone(), self.vm.handler.clone()));
            self.vm.host.raw_set("register", Value::Nil)?;
            self.vm.host.raw_set("loading", Value::Nil)?;
            out
        });
        lua.remove_hook();
        let registered = registered.into_inner();
        if !matches!(result, Ok((true, _))) {
            self.discard(&registered);
        }
        match result {
            Ok((true, _)) => Ok(registered),
            Ok((false, Value::Table(t))) => {
                let message = t
                    .raw_get::<Option<String>>("err")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "ERR unknown error".to_owned());
                Err(Frame::error(format!(
                    "ERR Error registering functions: {message}"
                )))
            }
            Ok((false, other)) => Err(Frame::error(format!(
                "ERR Error registering functions: {}",
                super::convert::display(&other)
            ))),
            Err(e) => Err(failed(e)),
        }
    }

    /// Removes a library and its functions; whether it existed.
    fn delete(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.remove(name) else {
            return false;
        };
        for f in lib.functions.keys() {
            self.index.remove(f);
        }
        self.discard(&lib.functions);
        true
    }

    /// FUNCTION FLUSH: a new Lua state, no libraries.
    fn flush(&mut self) -> Result<(), Frame> {
        *self = Self::new().map_err(|e| Frame::error(format!("ERR {}", lua_message(&e))))?;
        Ok(())
    }

    /// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
    fn list(&self, args: &[&[u8]]) -> Frame {
        let (mut with_code, mut pattern) = (false, None);
        let mut i = 2;
        while i < args.len() {
            let a = arg(args, i);
            if !with_code && is(a, "withcode") {
                with_code = true;
            } else if pattern.is_none() && is(a, "libraryname") {
                if i + 1 >= args.len() {
                    return Frame::error("ERR library name argument was not given");
                }
                i += 1;
                pattern = Some(arg(args, i));
            } else {
                return Frame::error(format!(
                    "ERR Unknown argument {}",
                    String::from_utf8_lossy(a)
                ));
            }
            i += 1;
        }
        let text = |s: &str| Frame::bulk(s.as_bytes());
        let libraries = self
            .libraries
            .iter()
            .filter(|(name, _)| pattern.is_none_or(|p| glob_match(p, name.as_bytes(), true)))
            .map(|(name, lib)| {
                let functions = lib
                    .functions
                    .values()
                    .map(|f| {
                        Frame::Map(vec![
                            (text("name"), text(&f.name)),
                            (
                                text("description"),
                                f.description.as_deref().map_or(Frame::Null, text),
                            ),
                            (
                                text("flags"),
                                Frame::Set(
                                    f.flags.names().into_iter().map(Frame::simple).collect(),
                                ),
                            ),
                        ])
                    })
                    .collect();
                let mut map = vec![
                    (text("library_name"), text(name)),
                    (text("engine"), text("LUA")),
                    (text("functions"), Frame::Array(functions)),
                ];
                if with_code {
                    map.push((text("library_code"), Frame::bulk(&lib.code)));
                }
                Frame::Map(map)
            })
            .collect();
        Frame::Array(libraries)
    }

    /// FUNCTION STATS.
    fn stats(&self) -> Frame {
        Frame::Map(vec![
            (Frame::bulk(b"running_script"), Frame::Null),
            (
                Frame::bulk(b"engines"),
                engines(self.libraries.len(), self.index.len()),
            ),
        ])
    }
}

/// FUNCTION STATS's `engines` map: the one engine, Lua, with its counts.
pub(crate) fn engines(libraries: usize, functions: usize) -> Frame {
    let count = |n: usize| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    Frame::Map(vec![(
        Frame::bulk(b"LUA"),
        Frame::Map(vec![
            (Frame::bulk(b"libraries_count"), count(libraries)),
            (Frame::bulk(b"functions_count"), count(functions)),
        ]),
    )])
}

/// FUNCTION's subcommands.
pub(crate) fn function(scripting: &mut Scripting, inner: &Inner, args: &[&[u8]]) -> Frame {
    let functions = &mut scripting.functions;
    let sub = arg(args, 1);
    let n = args.len();
    if is(sub, "load") && n >= 3 {
        let mut replace = false;
        let mut i = 2;
        while i < n - 1 {
            if is(arg(args, i), "replace") {
                replace = true;
            } else {
                return Frame::error(format!(
                    "ERR Unknown option given: {}",
                    String::from_utf8_lossy(arg(args, i))
                ));
            }
            i += 1;
        }
        match functions.load(inner, arg(args, n - 1), replace) {
            Ok(name) => Frame::bulk(name.as_bytes()),
            Err(e) => e,
        }
    } else if is(sub, "delete") && n == 3 {
        if functions.delete(&String::from_utf8_lossy(arg(args, 2))) {
            Frame::ok()
        } else {
            Frame::error("ERR Library not found")
        }
    } else if is(sub, "flush") && n <= 3 {
        match args.get(2) {
            Some(mode) if !is(mode, "sync") && !is(mode, "async") => {
                Frame::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
            }
            _ => match functions.flush() {
                Ok(()) => Frame::ok(),
                Err(e) => e,
            },
        }
    } else if is(sub, "list") {
        functions.list(args)
    } else if is(sub, "dump") && n == 2 {
        Frame::Bulk(
            crate::cache::rdb::encode_functions(
                functions.libraries.values().map(|l| l.code.as_slice()),
            )
            .into(),
        )
    } else if is(sub, "restore") && (3..=4).contains(&n) {
        let policy = args.get(3).copied().unwrap_or(b"append");
        if !["append", "replace", "flush"].iter().any(|p| is(policy, p)) {
            return Frame::error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
        }
        match functions.restore(inner, arg(args, 2), policy) {
            Ok(()) => Frame::ok(),
            Err(e) => e,
        }
    } else if is(sub, "stats") && n == 2 {
        functions.stats()
    } else if is(sub, "kill") && n == 2 {
        super::Running::not_busy()
    } else if is(sub, "help") && n == 2 {
        Frame::Array(FUNCTION_HELP.iter().map(|l| Frame::simple(l)).collect())
    } else {
        super::subcommand_error("FUNCTION", sub, FUNCTION_SUBCOMMANDS)
    }
}

/// FUNCTION's subcommands: one of them reaching the end of [`function`] had arguments it does
/// not take.
const FUNCTION_SUBCOMMANDS: &[&str] = &[
    "delete", "dump", "flush", "help", "kill", "list", "load", "restore", "stats",
];

/// FCALL and FCALL_RO.
/// The flags function `name` (any case) was registered with, if it exists.
pub(crate) fn flags_of(functions: &Functions, name: &[u8]) -> Option<Flags> {
    let key = String::from_utf8_lossy(name).to_ascii_lowercase();
    let library = functions.libraries.get(functions.index.get(&key)?)?;
    library.functions.get(&key).map(|f| f.flags)
}

pub(crate) fn fcall(
    scripting: &mut Scripting,
    ctx: &mut Ctx<'_>,
    inner: &Inner,
    args: &[&[u8]],
) -> Frame {
    let functions = &mut scripting.functions;
    let read_only = arg(args, 0).eq_ignore_ascii_case(b"fcall_ro");
    let key = String::from_utf8_lossy(arg(args, 1)).to_ascii_lowercase();
    let Some(func) = functions
        .index
        .get(&key)
        .and_then(|lib| functions.libraries.get(lib))
        .and_then(|lib| lib.functions.get(&key))
    else {
        return Frame::error("ERR Function not found");
    };
    let (name, flags) = (func.name.clone(), func.flags);
    let callback = match functions.vm.chunk(&func.chunk) {
        Ok(f) => f,
        Err(e) => return Frame::error(format!("ERR {}", lua_message(&e))),
    };
    let (keys, argv) = match super::split_keys(args, "ERR Bad number of keys provided") {
        Ok(split) => split,
        Err(e) => return e,
    };
    functions.vm.run(
        ctx,
        inner,
        &name,
        &callback,
        Calling::Function,
        keys,
        argv,
        flags,
        read_only,
    )
}

/// FUNCTION HELP, as Redis 7.0.15 prints it.
const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

#[cfg(test)]
mod tests {
    use super::metadata;

    #[test]
    fn library_metadata_is_read_as_redis_reads_it() {
        let (name, body) = metadata(b"#!lua name=mylib\nreturn 1").unwrap();
        assert_eq!((name.as_str(), body), ("mylib", &b"\nreturn 1"[..]));
        let e = |code: &[u8]| match metadata(code) {
            Err(crate::cache::resp::frame::Frame::Error(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e(b"return 1"), "ERR Missing library metadata");
        assert_eq!(e(b"#!lua name=x"), "ERR Invalid library metadata");
        assert_eq!(e(b"#!lua\n"), "ERR Library name was not given");
        assert_eq!(
            e(b"#!lua foo=bar\n"),
            "ERR Invalid metadata value given: foo=bar"
        );
        assert_eq!(
            e(b"#!lua name=a name=b\n"),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(e(b"#!bad name=x\n"), "ERR Engine 'bad' not found");
        assert!(e(b"#!lua name=a-b\n").starts_with("ERR Library names can only contain"));
    }
}
