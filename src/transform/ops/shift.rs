//! `shift` (JOLT's Shiftr): walks the input and the spec in parallel and copies matched data
//! to output paths in a new document.
//!
//! Children of a spec node are tried in JOLT's order: the special keys (`@`, `$`, `#`, `@(…)`)
//! always run; then a literal key wins over computed keys; computed keys are tried in
//! precedence order (`&` keys, then star patterns by number of stars, longest first, then `|`,
//! then `*`) and the first that matches stops the search.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::transform::budget::Budget;
use crate::transform::error::{Error, Result};
use crate::transform::path::{
    ArrayStep, Key, Matched, Ref, Rhs, Walk, WalkedPath, array_index, eval_ref, index_key,
    parse_key, parse_rhs_path, precedence_order, scalar_key, split_alternatives,
};
use crate::transform::spec::{invalid, pointer};

/// The key JOLT gives the root of the input and output.
const ROOT_KEY: &str = "root";

/// Data for a key with no value (a scalar matched as a key).
static NULL: Value = Value::Null;

/// The most entries an output object is created with room for: the spec's count of distinct
/// keys under one output path is a good guess, but a huge spec must not make every output
/// object huge.
const OBJECT_CAPACITY_HINT_MAX: usize = 64;

/// A parsed `shift` spec.
#[derive(Debug)]
pub(crate) struct Shift {
    root: Composite,
    /// The most elements in any output path: how much deeper than its input the output can be.
    max_path: usize,
    /// The deepest spec nesting: how many levels the walked path can reach.
    max_depth: usize,
}

#[derive(Debug)]
enum Node {
    Composite(Box<Composite>),
    Leaf(Leaf),
}

#[derive(Debug, Clone, Copy)]
enum Strategy {
    AvailableLiterals,
    Computed,
    Conflict,
    AvailableLiteralsWithComputed,
}

#[derive(Debug)]
struct Composite {
    key: Key,
    special: Vec<Node>,
    literals: Vec<(String, Node)>,
    computed: Vec<Node>,
    strategy: Strategy,
}

#[derive(Debug)]
struct Leaf {
    key: Key,
    writers: Vec<Writer>,
}

/// One output path of a leaf, parsed once.
#[derive(Debug)]
struct Writer {
    path: Vec<Rhs>,
    /// For each element of `path`: the room to give the object this write creates at that
    /// position, if it creates one — the number of distinct elements the whole spec writes
    /// at that position under the same prefix (capped at [`OBJECT_CAPACITY_HINT_MAX`]), so
    /// filling an output object does not rehash it.
    capacity: Vec<usize>,
}

impl Writer {
    fn parse(raw: &str) -> std::result::Result<Self, String> {
        Ok(Writer {
            path: parse_rhs_path(raw)?,
            capacity: Vec::new(),
        })
    }
}

/// One evaluated step of an output path.
enum Step<'a> {
    Key(Cow<'a, str>),
    Index(usize),
    Append,
}

impl Shift {
    /// Parses a `shift` spec; `path` is the JSON Pointer of `spec` for error messages.
    pub(crate) fn parse(spec: &Value, path: &str) -> Result<Self> {
        let Value::Object(map) = spec else {
            return Err(invalid(path, "a shift spec must be a JSON object"));
        };
        let mut root = Composite::parse(Key::Literal(ROOT_KEY.into()), map, path)?;
        size_outputs(&mut root);
        let max_path = root.max_path();
        let max_depth = root.max_depth();
        Ok(Shift {
            root,
            max_path,
            max_depth,
        })
    }

    /// An upper bound on the output's nesting depth for an input `input_depth` deep.
    pub(crate) fn depth_bound(&self, input_depth: usize) -> usize {
        input_depth.saturating_add(self.max_path)
    }

    /// Applies the spec; `op` is the position of this operation in its chain.
    pub(crate) fn apply(&self, input: &Value, op: usize, budget: &Budget) -> Result<Value> {
        let mut out = Value::Null;
        let mut walk = WalkedPath::with_capacity(self.max_depth.saturating_add(2));
        walk.push(input, Matched::plain(Cow::Borrowed(ROOT_KEY)));
        let mut ctx = Ctx {
            out: &mut out,
            op,
            steps: Vec::new(),
            budget,
        };
        self.root
            .apply(Cow::Borrowed(ROOT_KEY), Some(input), &mut walk, &mut ctx)?;
        if let Some(e) = budget.error(op) {
            return Err(e);
        }
        Ok(out)
    }
}

struct Ctx<'o, 'a> {
    out: &'o mut Value,
    op: usize,
    /// Reused buffer for evaluated output paths.
    steps: Vec<Step<'a>>,
    budget: &'o Budget,
}

impl Node {
    fn key(&self) -> &Key {
        match self {
            Node::Composite(c) => &c.key,
            Node::Leaf(l) => &l.key,
        }
    }

    fn parse(raw_key: &str, value: &Value, path: &str) -> Result<Node> {
        let key = parse_key(raw_key).map_err(|reason| invalid(path, &reason))?;
        if matches!(key, Key::Array(_)) {
            return Err(invalid(
                path,
                "`[N]` is not a shift key; match an array index with the literal key `N`",
            ));
        }
        match value {
            Value::Object(map) => {
                if matches!(key, Key::At | Key::Dollar(_)) {
                    return Err(invalid(path, "an `@` or `$` key cannot have children"));
                }
                Ok(Node::Composite(Box::new(Composite::parse(key, map, path)?)))
            }
            Value::String(s) => {
                let writer = Writer::parse(s).map_err(|reason| invalid(path, &reason))?;
                Ok(Node::Leaf(Leaf {
                    key,
                    writers: vec![writer],
                }))
            }
            Value::Array(items) => {
                let mut writers = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}/{i}");
                    let Value::String(s) = item else {
                        return Err(invalid(&item_path, "an output path must be a string"));
                    };
                    writers.push(Writer::parse(s).map_err(|reason| invalid(&item_path, &reason))?);
                }
                Ok(Node::Leaf(Leaf { key, writers }))
            }
            Value::Null => Ok(Node::Leaf(Leaf {
                key,
                writers: Vec::new(),
            })),
            _ => Err(invalid(
                path,
                "a shift value must be an object, an output path, a list of output paths or null",
            )),
        }
    }

    fn apply<'a>(
        &'a self,
        input_key: Cow<'a, str>,
        input: Option<&'a Value>,
        walk: &mut WalkedPath<'a>,
        ctx: &mut Ctx<'_, 'a>,
    ) -> Result<bool> {
        match self {
            Node::Composite(c) => c.apply(input_key, input, walk, ctx),
            Node::Leaf(l) => l.apply(input_key, input, walk, ctx),
        }
    }
}

impl Composite {
    fn parse(key: Key, map: &Map<String, Value>, path: &str) -> Result<Self> {
        if map.is_empty() {
            return Err(invalid(
                path,
                "an empty object is not a valid shift spec value",
            ));
        }
        let mut special = Vec::new();
        let mut literals = Vec::new();
        let mut computed = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (raw_key, value) in map {
            let child_path = pointer(path, raw_key);
            for alternative in split_alternatives(raw_key) {
                let child = Node::parse(alternative, value, &child_path)?;
                if !seen.insert(alternative) {
                    return Err(invalid(
                        &child_path,
                        &format!("key `{alternative}` appears twice"),
                    ));
                }
                match child.key() {
                    Key::Literal(s) => {
                        let s = s.clone();
                        literals.push((s, child));
                    }
                    Key::At | Key::Hash(_) | Key::Dollar(_) | Key::Transpose(_) => {
                        special.push(child)
                    }
                    _ => computed.push(child),
                }
            }
        }
        if special.is_empty() && literals.is_empty() && computed.is_empty() {
            // Every key was bars only (`|`), which split into no alternative.
            return Err(invalid(
                path,
                "an empty object is not a valid shift spec value",
            ));
        }
        computed.sort_by(|a, b| precedence_order(a.key(), b.key()));
        let strategy = if computed.is_empty() {
            Strategy::AvailableLiterals
        } else if literals.is_empty() {
            Strategy::Computed
        } else if computed.iter().any(|c| {
            !matches!(c.key(), Key::StarAll | Key::Star(_) | Key::Or(_))
                || literals.iter().any(|(lit, _)| c.key().matches_str(lit))
        }) {
            Strategy::Conflict
        } else {
            Strategy::AvailableLiteralsWithComputed
        };
        Ok(Composite {
            key,
            special,
            literals,
            computed,
            strategy,
        })
    }

    fn children(&self) -> impl Iterator<Item = &Node> {
        self.special
            .iter()
            .chain(self.literals.iter().map(|(_, n)| n))
            .chain(self.computed.iter())
    }

    fn children_mut(&mut self) -> impl Iterator<Item = &mut Node> {
        self.special
            .iter_mut()
            .chain(self.literals.iter_mut().map(|(_, n)| n))
            .chain(self.computed.iter_mut())
    }

    fn max_path(&self) -> usize {
        self.children()
            .map(|child| match child {
                Node::Composite(c) => c.max_path(),
                Node::Leaf(l) => l.writers.iter().map(|w| w.path.len()).max().unwrap_or(0),
            })
            .max()
            .unwrap_or(0)
    }

    /// Levels of spec below and including this one.
    fn max_depth(&self) -> usize {
        1 + self
            .children()
            .map(|child| match child {
                Node::Composite(c) => c.max_depth(),
                Node::Leaf(_) => 1,
            })
            .max()
            .unwrap_or(0)
    }

    /// Calls `f` on every writer below, in a fixed order.
    fn writers_mut(&mut self, f: &mut impl FnMut(&mut Writer)) {
        for child in self.children_mut() {
            match child {
                Node::Composite(c) => c.writers_mut(f),
                Node::Leaf(l) => l.writers.iter_mut().for_each(&mut *f),
            }
        }
    }

    fn literal(&self, key: &str) -> Option<&Node> {
        self.literals.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    fn apply<'a>(
        &'a self,
        input_key: Cow<'a, str>,
        input: Option<&'a Value>,
        walk: &mut WalkedPath<'a>,
        ctx: &mut Ctx<'_, 'a>,
    ) -> Result<bool> {
        let Some(matched) = key_match(&self.key, &input_key, walk, ctx.op)? else {
            return Ok(false);
        };
        let input = match &self.key {
            Key::Transpose(t) => match t.read(walk) {
                Some(v) => Some(v),
                None => return Ok(false),
            },
            _ => input,
        };
        walk.push(input.unwrap_or(&NULL), matched);
        for child in &self.special {
            child.apply(input_key.clone(), input, walk, ctx)?;
        }
        self.process(input, walk, ctx)?;
        walk.pop();
        walk.count_match();
        Ok(true)
    }

    fn process<'a>(
        &'a self,
        input: Option<&'a Value>,
        walk: &mut WalkedPath<'a>,
        ctx: &mut Ctx<'_, 'a>,
    ) -> Result<()> {
        let (literals, computed, conflict) = match self.strategy {
            Strategy::AvailableLiterals => (true, false, false),
            Strategy::Computed => (false, true, false),
            Strategy::Conflict => (false, false, true),
            Strategy::AvailableLiteralsWithComputed => (true, true, false),
        };
        match input {
            Some(Value::Object(map)) => {
                if literals {
                    for (key, child) in &self.literals {
                        if let Some(v) = member(map, key) {
                            child.apply(Cow::Borrowed(key.as_str()), Some(v), walk, ctx)?;
                        }
                    }
                }
                if computed || conflict {
                    for (key, v) in map {
                        self.apply_key(Cow::Borrowed(key.as_str()), Some(v), conflict, walk, ctx)?;
                    }
                }
            }
            Some(Value::Array(list)) => {
                if literals {
                    for (key, child) in &self.literals {
                        if let Some(v) = key.parse::<usize>().ok().and_then(|i| list.get(i)) {
                            child.apply(Cow::Borrowed(key.as_str()), Some(v), walk, ctx)?;
                        }
                    }
                }
                if computed || conflict {
                    for (i, v) in list.iter().enumerate() {
                        self.apply_key(index_key(i), Some(v), conflict, walk, ctx)?;
                    }
                }
            }
            Some(scalar) => {
                let Some(key) = scalar_key(scalar) else {
                    return Ok(());
                };
                if (literals || conflict)
                    && let Some((lit, child)) = self.literals.iter().find(|(k, _)| *k == key)
                {
                    child.apply(Cow::Borrowed(lit.as_str()), None, walk, ctx)?;
                    if conflict {
                        return Ok(());
                    }
                }
                if computed || conflict {
                    self.apply_computed(Cow::Owned(key), None, walk, ctx)?;
                }
            }
            None => {}
        }
        Ok(())
    }

    /// One input key: a literal child if there is one (when `literal_first`), else the first
    /// computed child that matches.
    fn apply_key<'a>(
        &'a self,
        key: Cow<'a, str>,
        input: Option<&'a Value>,
        literal_first: bool,
        walk: &mut WalkedPath<'a>,
        ctx: &mut Ctx<'_, 'a>,
    ) -> Result<()> {
        if literal_first && let Some(child) = self.literal(&key) {
            child.apply(key, input, walk, ctx)?;
            return Ok(());
        }
        self.apply_computed(key, input, walk, ctx)
    }

    fn apply_computed<'a>(
        &'a self,
        key: Cow<'a, str>,
        input: Option<&'a Value>,
        walk: &mut WalkedPath<'a>,
        ctx: &mut Ctx<'_, 'a>,
    ) -> Result<()> {
        for child in &self.computed {
            if child.apply(key.clone(), input, walk, ctx)? {
                break;
            }
        }
        Ok(())
    }
}

/// Objects of at most this many members are searched by comparing keys, not by hashing.
const SCANNED_OBJECT_MEMBERS_MAX: usize = 16;

/// `map[key]`: a small object is scanned (cheaper than hashing the key with `serde_json`'s
/// SipHash), a larger one looked up. Keys are unique, so both find the same member.
fn member<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= SCANNED_OBJECT_MEMBERS_MAX {
        map.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        map.get(key)
    }
}

impl Leaf {
    fn apply<'a>(
        &'a self,
        input_key: Cow<'a, str>,
        input: Option<&'a Value>,
        walk: &mut WalkedPath<'a>,
        ctx: &mut Ctx<'_, 'a>,
    ) -> Result<bool> {
        let Some(matched) = key_match(&self.key, &input_key, walk, ctx.op)? else {
            return Ok(false);
        };
        let input = input.unwrap_or(&NULL);
        let (data, real): (Cow<'a, Value>, bool) = match &self.key {
            Key::Dollar(_) | Key::Hash(_) => {
                (Cow::Owned(Value::String(matched.key.to_string())), false)
            }
            Key::At => (Cow::Borrowed(input), false),
            Key::Transpose(t) => match t.read(walk) {
                Some(v) => (Cow::Borrowed(v), false),
                None => return Ok(false),
            },
            _ => (Cow::Borrowed(input), true),
        };
        walk.push(input, matched);
        for writer in &self.writers {
            write(ctx, writer, walk, &data)?;
        }
        walk.pop();
        if real {
            walk.count_match();
        }
        Ok(real)
    }
}

/// Gives every writer its object capacity hints: output paths are grouped by their elements
/// (compared by their parsed form), and each position gets the number of distinct elements
/// that follow its prefix anywhere in the spec.
fn size_outputs(root: &mut Composite) {
    // (prefix id, element) -> id of the longer prefix; the empty prefix is id 0.
    let mut prefixes: HashMap<(usize, String), usize> = HashMap::new();
    // Per prefix id: how many distinct elements follow it.
    let mut distinct: Vec<usize> = vec![0];
    // The parsed form's debug text is a faithful, deterministic name for an element.
    let name = |rhs: &Rhs| format!("{rhs:?}");
    root.writers_mut(&mut |writer| {
        let mut parent = 0;
        for rhs in &writer.path {
            let next = distinct.len();
            parent = *prefixes.entry((parent, name(rhs))).or_insert_with(|| {
                if let Some(n) = distinct.get_mut(parent) {
                    *n += 1;
                }
                distinct.push(0);
                next
            });
        }
    });
    root.writers_mut(&mut |writer| {
        let mut parent = 0;
        writer.capacity = writer
            .path
            .iter()
            .map(|rhs| {
                let room = distinct.get(parent).copied().unwrap_or(0);
                parent = prefixes.get(&(parent, name(rhs))).copied().unwrap_or(0);
                room.min(OBJECT_CAPACITY_HINT_MAX)
            })
            .collect();
    });
}

/// Evaluates `writer`'s path and puts a copy of `data` there; a path that cannot be
/// evaluated writes nothing.
fn write<'a>(
    ctx: &mut Ctx<'_, 'a>,
    writer: &'a Writer,
    walk: &WalkedPath<'_>,
    data: &Value,
) -> Result<()> {
    ctx.steps.clear();
    for elem in &writer.path {
        let step = match elem {
            Rhs::Literal(s) => Some(Step::Key(Cow::Borrowed(s.as_str()))),
            Rhs::Template(t) => match t.try_eval(walk) {
                Ok(s) => Some(Step::Key(Cow::Owned(s))),
                Err(r) => return Err(unresolved(ctx.op, r)),
            },
            Rhs::Transpose(t) => t.read_key(walk).map(|s| Step::Key(Cow::Owned(s))),
            Rhs::Array(a) => {
                match a {
                    ArrayStep::Ref(r) if eval_ref(*r, walk).is_none() => {
                        return Err(unresolved(ctx.op, *r));
                    }
                    // `[#N]` past the root: jolt-core's `WalkedPath.elementFromEnd` indexes
                    // before the list's start, which throws, and the transform fails.
                    ArrayStep::Hash(up) if walk.hash_count(*up).is_none() => {
                        return Err(Error::Transform {
                            operation: ctx.op,
                            reason: format!(
                                "`[#{up}]` names a level above the root of the walked path"
                            ),
                        });
                    }
                    _ => {}
                }
                array_index(a, walk).map(|i| i.map_or(Step::Append, Step::Index))
            }
        };
        let Some(step) = step else {
            return Ok(());
        };
        ctx.steps.push(step);
    }
    let copy = ctx.budget.copy(data);
    set(ctx.out, &ctx.steps, &writer.capacity, copy, ctx.op)
}

/// Matches `input_key` against `key`. A `$(up,group)` or `&(up,group)` key that names a level
/// past the walked path, or a capture group the key matched there lacks, fails the transform,
/// as jolt-core's `DollarPathElement.match` and `AmpPathElement.match` throw.
fn key_match<'a, 'v>(
    key: &'a Key,
    input_key: &Cow<'a, str>,
    walk: &WalkedPath<'v>,
    operation: usize,
) -> Result<Option<Matched<'a>>> {
    match key {
        Key::Dollar(r) if eval_ref(*r, walk).is_none() => Err(unresolved(operation, *r)),
        Key::Amp(t) => match t.try_eval(walk) {
            Err(r) => Err(unresolved(operation, r)),
            Ok(wanted) => {
                Ok((wanted == input_key.as_ref()).then(|| Matched::plain(input_key.clone())))
            }
        },
        Key::Or(alternatives) => {
            for alternative in alternatives {
                if let Some(m) = key_match(alternative, input_key, walk, operation)? {
                    return Ok(Some(m));
                }
            }
            Ok(None)
        }
        _ => Ok(key.matches(input_key, walk)),
    }
}

/// A write path's `&(up,group)` that names a level past the walked path, or a capture group
/// the key matched there does not have: jolt-core fails the transform
/// (`MatchedElement.getSubKeyRef`, `WalkedPath.elementFromEnd` throw) instead of skipping it.
fn unresolved(operation: usize, r: Ref) -> Error {
    Error::Transform {
        operation,
        reason: format!(
            "reference ({},{}) names a level or capture group the matched keys do not have",
            r.up, r.group
        ),
    }
}

/// An empty container of the kind `step` walks into, with room for `capacity` keys if it is
/// an object.
fn container(step: &Step<'_>, capacity: usize) -> Value {
    match step {
        Step::Key(_) => Value::Object(Map::with_capacity(capacity)),
        Step::Index(_) | Step::Append => Value::Array(Vec::new()),
    }
}

/// Shift's insert: an empty slot takes the data, a list gets it appended, anything else
/// becomes a list of the old value and the data.
fn final_set(slot: &mut Value, data: Value) {
    match slot {
        Value::Null => *slot = data,
        Value::Array(list) => list.push(data),
        other => {
            let old = std::mem::take(other);
            *other = Value::Array(vec![old, data]);
        }
    }
}

/// Puts `data` at `steps` below `slot`, creating containers on the way; `capacity` holds
/// the room for each object created (aligned with `steps`).
fn set(
    slot: &mut Value,
    steps: &[Step<'_>],
    capacity: &[usize],
    data: Value,
    op: usize,
) -> Result<()> {
    let Some((first, rest)) = steps.split_first() else {
        final_set(slot, data);
        return Ok(());
    };
    let (room, capacity) = capacity
        .split_first()
        .map_or((0, &[][..]), |(r, c)| (*r, c));
    if slot.is_null() {
        *slot = container(first, room);
    }
    match (first, slot) {
        // The last key of a path is usually new: one insert. When it was there, the old
        // value comes back and shift's insert is redone in its place.
        (Step::Key(k), Value::Object(map)) if rest.is_empty() => {
            if let Some(mut old) = map.insert(k.as_ref().to_owned(), data)
                && let Some(slot) = map.get_mut(k.as_ref())
            {
                let data = std::mem::take(slot);
                final_set(&mut old, data);
                *slot = old;
            }
        }
        // A key on the way is usually there already, and most often it is the key the
        // previous write went through, which is the last one inserted: check that one by
        // comparing text, then look the key up without allocating its text.
        (Step::Key(k), Value::Object(map)) => {
            if let Some((_, child)) = map
                .iter_mut()
                .next_back()
                .filter(|(key, _)| key.as_str() == k.as_ref())
            {
                set(child, rest, capacity, data, op)?;
            } else if let Some(child) = map.get_mut(k.as_ref()) {
                set(child, rest, capacity, data, op)?;
            } else {
                let child = map.entry(k.as_ref()).or_insert(Value::Null);
                set(child, rest, capacity, data, op)?;
            }
        }
        (Step::Index(i), Value::Array(list)) => {
            let index = *i;
            if index > crate::transform::ARRAY_INDEX_MAX {
                return Err(Error::ArrayIndexTooLarge {
                    operation: op,
                    index,
                    max: crate::transform::ARRAY_INDEX_MAX,
                });
            }
            if list.len() <= index {
                list.resize(index + 1, Value::Null);
            }
            if let Some(child) = list.get_mut(index) {
                set(child, rest, capacity, data, op)?;
            }
        }
        (Step::Append, Value::Array(list)) => {
            list.push(Value::Null);
            if let Some(child) = list.last_mut() {
                set(child, rest, capacity, data, op)?;
            }
        }
        // The existing value is not the container this step needs: JOLT writes nothing.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Literal keys find their members whether the object is scanned or looked up: objects of
    /// [`SCANNED_OBJECT_MEMBERS_MAX`] members and one more, every member and a missing key.
    #[test]
    fn literals_find_members_of_scanned_and_hashed_objects() {
        for n in [SCANNED_OBJECT_MEMBERS_MAX, SCANNED_OBJECT_MEMBERS_MAX + 1] {
            let input: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(i))).collect();
            let mut spec = Map::new();
            for i in (0..=n).rev() {
                spec.insert(format!("k{i}"), json!(format!("out.k{i}")));
            }
            let shift =
                Shift::parse(&Value::Object(spec), "").unwrap_or_else(|e| unreachable!("{e}"));
            let out = shift
                .apply(
                    &Value::Object(input.clone()),
                    0,
                    &Budget::new(1000, 1 << 20),
                )
                .unwrap_or_else(|e| unreachable!("{e}"));
            let expected: Map<String, Value> = input.into_iter().rev().collect();
            assert_eq!(out, json!({"out": expected}), "{n} members");
            assert_eq!(
                out.to_string(),
                json!({"out": expected}).to_string(),
                "{n} members"
            );
        }
    }

    fn capacities(shift: &Shift) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        fn collect(c: &Composite, out: &mut Vec<Vec<usize>>) {
            for child in c.children() {
                match child {
                    Node::Composite(c) => collect(c, out),
                    Node::Leaf(l) => out.extend(l.writers.iter().map(|w| w.capacity.clone())),
                }
            }
        }
        collect(&shift.root, &mut out);
        out
    }

    #[test]
    fn output_objects_get_room_for_the_keys_the_spec_writes_under_them() {
        let spec = json!({
            "a": "x.a",
            "b": ["x.b", "y"],
            "c": "x.a",
            "list": {"*": {"p": "out[&1].p", "q": "out[&1].q", "r": "out[&1].deep.r"}}
        });
        let shift = Shift::parse(&spec, "").unwrap();
        // Root keys: x, y, out. Under x: a, b. Under out[&1]: p, q, deep. Under deep: r.
        assert_eq!(
            capacities(&shift),
            vec![
                vec![3, 2],
                vec![3, 2],
                vec![3],
                vec![3, 2],
                vec![3, 1, 3],
                vec![3, 1, 3],
                vec![3, 1, 3, 1],
            ]
        );
    }

    #[test]
    fn a_second_write_to_a_key_makes_a_list_in_place() {
        let spec = json!({"a": "x", "b": "y", "c": "x", "d": "x"});
        let shift = Shift::parse(&spec, "").unwrap();
        let out = shift
            .apply(
                &json!({"a": 1, "b": 2, "c": 3, "d": 4}),
                0,
                &Budget::new(100, 1 << 20),
            )
            .unwrap();
        assert_eq!(out, json!({"x": [1, 3, 4], "y": 2}));
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["x", "y"]);
    }
}
