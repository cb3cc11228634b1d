#!/usr/bin/env python3
"""Regenerates the command tables of the RESP server from Redis's command descriptions.

The tables of src/cache/resp/keyspecs.rs (ENTRIES), cmdflags.rs (TABLE) and cmddocs.rs (DOCS)
hold, for every command and subcommand this server has, what Redis 7.0.15's
src/commands/*.json says: key specs and key finders, arity, flags and tips, documentation.
This rewrites the rows of those three tables in place (the code around them is kept), sorted
by name: the server finds a row by binary search.

Usage:
    scripts/gen-command-tables.py REDIS_COMMANDS_DIR NAMES_FILE

REDIS_COMMANDS_DIR is a Redis 7.0.15 source tree's src/commands (from Debian's source package
or a checkout of the 7.0.15 tag); NAMES_FILE holds one full command name per line, as
`redis-cli -p <port> COMMAND LIST` prints them against this server.
"""

import glob
import json
import os
import re
import sys

RESP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "cache", "resp")

KEY_FLAGS = ["RO", "RW", "OW", "RM", "ACCESS", "UPDATE", "INSERT", "DELETE", "NOT_KEY",
             "INCOMPLETE", "VARIABLE_FLAGS"]
# Redis's `addReplyFlagsForCommand` order; `movablekeys` is derived from the key specs.
COMMAND_FLAGS = ["WRITE", "READONLY", "DENYOOM", "MODULE", "ADMIN", "PUBSUB", "NOSCRIPT",
                 "BLOCKING", "LOADING", "STALE", "SKIP_MONITOR", "SKIP_SLOWLOG", "ASKING", "FAST",
                 "NO_AUTH", "NO_MANDATORY_KEYS", "NO_ASYNC_LOADING", "NO_MULTI", "ALLOW_BUSY"]
HIDDEN_FLAGS = {"MAY_REPLICATE", "SENTINEL", "ONLY_SENTINEL", "PROTECTED",
                "TOUCHES_ARBITRARY_KEYS"}
COUNTED = {
    "sintercardGetKeys": (0, 1, 2), "zunionInterDiffGetKeys": (0, 1, 2),
    "zunionInterDiffStoreGetKeys": (1, 2, 3), "evalGetKeys": (0, 2, 3),
    "functionGetKeys": (0, 2, 3), "lmpopGetKeys": (0, 1, 2), "blmpopGetKeys": (0, 2, 3),
    "zmpopGetKeys": (0, 1, 2), "bzmpopGetKeys": (0, 2, 3),
}
PROCS = {"setGetKeys": "Set", "bitfieldGetKeys": "Bitfield", "sortGetKeys": "Sort",
         "sortROGetKeys": "SortRo", "georadiusGetKeys": "Georadius", "xreadGetKeys": "Xread"}


def load(commands_dir):
    out = {}
    for path in glob.glob(os.path.join(commands_dir, "*.json")):
        with open(path, encoding="utf-8") as f:
            for name, desc in json.load(f).items():
                full = name.lower()
                if "container" in desc:
                    full = desc["container"].lower() + "|" + full
                out[full] = desc
    return out


def text(s):
    return json.dumps(s, ensure_ascii=False)


def opt(s):
    # Redis's generator leaves out empty strings as it does absent ones.
    return "Some(" + text(s) + ")" if s else "None"


def proc_of(desc):
    name = desc.get("get_keys_function")
    if name is None:
        return "None"
    if name in COUNTED:
        store, count, first = COUNTED[name]
        return f"Some(Proc::Counted {{ store: {store}, count: {count}, first: {first} }})"
    return f"Some(Proc::{PROCS[name]})"


def key_spec(spec):
    for flag in spec["flags"]:
        assert flag in KEY_FLAGS, flag
    flags = " | ".join(spec["flags"]) or "0"
    bs = spec["begin_search"]
    if "index" in bs:
        begin = f"Begin::Index({bs['index']['pos']})"
    elif "keyword" in bs:
        begin = f"Begin::Keyword({text(bs['keyword']['keyword'])}, {bs['keyword']['startfrom']})"
    else:
        begin = "Begin::Unknown"
    fk = spec["find_keys"]
    if "range" in fk:
        r = fk["range"]
        if (r["lastkey"], r["step"], r["limit"]) == (0, 1, 0):
            find = "ONE"
        else:
            find = f"Find::Range {{ lastkey: {r['lastkey']}, step: {r['step']}, limit: {r['limit']} }}"
    elif "keynum" in fk:
        k = fk["keynum"]
        find = (f"Find::Keynum {{ keynumidx: {k['keynumidx']}, firstkey: {k['firstkey']}, "
                f"step: {k['step']} }}")
    else:
        find = "Find::Unknown"
    notes = "Some(" + text(spec["notes"]) + ")" if "notes" in spec else "None"
    return f"KeySpec {{ notes: {notes}, flags: {flags}, begin: {begin}, find: {find} }}"


def keyspecs_rows(descs, names):
    rows = []
    for full in sorted(names):
        desc = descs[full]
        specs = desc.get("key_specs", [])
        if not specs and "get_keys_function" not in desc:
            continue
        nmk = "NO_MANDATORY_KEYS" in desc.get("command_flags", [])
        rows.append(f"    Entry {{ name: {text(full)}, arity: {desc['arity']}, "
                    f"no_mandatory_keys: {str(nmk).lower()}, proc_: {proc_of(desc)}, "
                    f"specs: &[{', '.join(key_spec(s) for s in specs)}] }},")
    return rows


def cmdflags_rows(descs, names):
    rows = []
    for full in sorted(names):
        desc = descs[full]
        declared = desc.get("command_flags", [])
        for flag in declared:
            assert flag in COMMAND_FLAGS or flag in HIDDEN_FLAGS, (full, flag)
        flags = ", ".join(text(f.lower()) for f in COMMAND_FLAGS if f in declared)
        tips = ", ".join(text(t.lower()) for t in desc.get("command_tips", []))
        rows.append(f"    ({text(full)}, {desc['arity']}, &[{flags}], &[{tips}]),")
    return rows


def arg(a):
    kind = a["type"]
    flags = ", ".join(text(f) for f in ["optional", "multiple", "multiple_token"] if a.get(f))
    subs = "&[" + ", ".join(arg(x) for x in a.get("arguments", [])) + "]" \
        if kind in ("oneof", "block") else "&[]"
    token = opt(a.get("token", "").upper())
    return (f"Arg {{ name: {text(a['name'].lower())}, kind: {text(kind)}, "
            f"key_spec_index: {a.get('key_spec_index', -1)}, token: {token}, "
            f"summary: {opt(a.get('summary'))}, since: {opt(a.get('since'))}, "
            f"deprecated_since: {opt(a.get('deprecated_since'))}, flags: &[{flags}], "
            f"args: {subs} }}")


def cmddocs_rows(descs, names):
    rows = []
    for full in sorted(names):
        d = descs[full]
        doc_flags = ", ".join(text(f.lower()) for f in ["DEPRECATED", "SYSCMD"]
                              if f in d.get("doc_flags", []))
        history = ", ".join(f"({text(h[0])}, {text(h[1])})" for h in d.get("history") or [])
        args = d.get("arguments")
        args = "Some(&[" + ", ".join(arg(a) for a in args) + "])" if args else "None"
        group = d["group"].replace("_", "-")
        rows.append(f"    ({text(full)}, Doc {{ summary: {opt(d.get('summary'))}, "
                    f"since: {opt(d.get('since'))}, group: {text(group)}, "
                    f"complexity: {opt(d.get('complexity'))}, doc_flags: &[{doc_flags}], "
                    f"deprecated_since: {opt(d.get('deprecated_since'))}, "
                    f"replaced_by: {opt(d.get('replaced_by'))}, history: &[{history}], "
                    f"args: {args} }}),")
    return rows


def rewrite(file, start_marker, rows):
    path = os.path.join(RESP, file)
    with open(path, encoding="utf-8") as f:
        src = f.read()
    at = src.index(start_marker) + len(start_marker)
    end = src.index("\n];\n", at)
    with open(path, "w", encoding="utf-8") as f:
        f.write(src[:at] + "\n".join(rows) + src[end:])


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    descs = load(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    missing = [n for n in names if n not in descs]
    if missing:
        sys.exit(f"not described by Redis: {missing}")
    rewrite("keyspecs.rs", "const ENTRIES: &[Entry] = &[\n", keyspecs_rows(descs, names))
    rewrite("cmdflags.rs", "const TABLE: &[Row] = &[\n", cmdflags_rows(descs, names))
    rewrite("cmddocs.rs", "const DOCS: &[(&str, Doc)] = &[\n", cmddocs_rows(descs, names))


if __name__ == "__main__":
    main()
