//! `shift` (JOLT's Shiftr): walks the input and the spec in parallel and copies matched data
//! to output paths in a new document.
//!
//! Children of a spec node are tried in JOLT's order: the special keys (`@`, `$`, `#`, `@(…)`)
//! always run; then a literal key wins over computed keys; computed keys are tried in
//! precedence order (`&` keys, then star patterns by number of stars, longest first, then `|`,
//! then `*`) and the first that matches stops the search.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::transform::budget::Budget;
use crate::transform::error::{Error, Result};
use crate::transform::path::{
    Key, Matched, Rhs, WalkedPath, array_index, parse_key, parse_rhs_path, precedence_order,
    scalar_key, split_alternatives,
};
use crate::transform::spec::{invalid, pointer};

/// The key JOLT gives the root of the input and output.
const ROOT_KEY: &str = "root";

/// Data for a key with no value (a scalar matched as a key).
static NULL: Value = Value::Null;

/// A parsed `shift` spec.
#[derive(Debug)]
pub(crate) struct Shift {
    root: Composite,
    /// The most elements in any output path: how much deeper than its input the output can be.
    max_path: usize,
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
    writers: Vec<Vec<Rhs>>,
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
        let root = Composite::parse(Key::Literal(ROOT_KEY.into()), map, path)?;
        let max_path = root.max_path();
        Ok(Shift { root, max_path })
    }

    /// An upper bound on the output's nesting depth for an input `input_depth` deep.
    pub(crate) fn depth_bound(&self, input_depth: usize) -> usize {
        input_depth.saturating_add(self.max_path)
    }

    /// Applies the spec; `op` is the position of this operation in its chain.
    pub(crate) fn apply(&self, input: &Value, op: usize, budget: &Budget) -> Result<Value> {
        let mut out = Value::Null;
        let mut walk = WalkedPath::default();
        walk.push(input, Matched::plain(Cow::Borrowed(ROOT_KEY)));
        let mut ctx = Ctx {
            out: &mut out,
            op,
            steps: Vec::new(),
            budget,
        };
        self.root
            .apply(Cow::Borrowed(ROOT_KEY), Some(input), &mut walk, &mut ctx)?;
        if budget.exhausted() {
            return Err(Error::TooManyCopies {
                operation: op,
                max: crate::transform::COPY_VALUES_MAX,
            });
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
                let writer = parse_rhs_path(s).map_err(|reason| invalid(path, &reason))?;
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
                    writers.push(parse_rhs_path(s).map_err(|reason| invalid(&item_path, &reason))?);
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

    fn max_path(&self) -> usize {
        let children = self
            .special
            .iter()
            .chain(self.literals.iter().map(|(_, n)| n))
            .chain(self.computed.iter());
        children
            .map(|child| match child {
                Node::Composite(c) => c.max_path(),
                Node::Leaf(l) => l.writers.iter().map(Vec::len).max().unwrap_or(0),
            })
            .max()
            .unwrap_or(0)
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
        let Some(matched) = self.key.matches(&input_key, walk) else {
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
                        if let Some(v) = map.get(key) {
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
                        self.apply_key(Cow::Owned(i.to_string()), Some(v), conflict, walk, ctx)?;
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

impl Leaf {
    fn apply<'a>(
        &'a self,
        input_key: Cow<'a, str>,
        input: Option<&'a Value>,
        walk: &mut WalkedPath<'a>,
        ctx: &mut Ctx<'_, 'a>,
    ) -> Result<bool> {
        let Some(matched) = self.key.matches(&input_key, walk) else {
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

/// Evaluates `path` and puts a copy of `data` there; a path that cannot be evaluated writes
/// nothing.
fn write<'a>(
    ctx: &mut Ctx<'_, 'a>,
    path: &'a [Rhs],
    walk: &WalkedPath<'_>,
    data: &Value,
) -> Result<()> {
    ctx.steps.clear();
    for elem in path {
        let step = match elem {
            Rhs::Literal(s) => Some(Step::Key(Cow::Borrowed(s.as_str()))),
            Rhs::Template(t) => t.eval(walk).map(|s| Step::Key(Cow::Owned(s))),
            Rhs::Transpose(t) => t.read_key(walk).map(|s| Step::Key(Cow::Owned(s))),
            Rhs::Array(a) => array_index(a, walk).map(|i| i.map_or(Step::Append, Step::Index)),
        };
        let Some(step) = step else {
            return Ok(());
        };
        ctx.steps.push(step);
    }
    let copy = ctx.budget.copy(data);
    set(ctx.out, &ctx.steps, copy, ctx.op)
}

/// An empty container of the kind `step` walks into.
fn container(step: &Step<'_>) -> Value {
    match step {
        Step::Key(_) => Value::Object(Map::new()),
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

fn set(slot: &mut Value, steps: &[Step<'_>], data: Value, op: usize) -> Result<()> {
    let Some((first, rest)) = steps.split_first() else {
        final_set(slot, data);
        return Ok(());
    };
    if slot.is_null() {
        *slot = container(first);
    }
    match (first, slot) {
        (Step::Key(k), Value::Object(map)) => {
            if let Some(child) = map.get_mut(k.as_ref()) {
                set(child, rest, data, op)?;
            } else {
                let child = map.entry(k.as_ref()).or_insert(Value::Null);
                set(child, rest, data, op)?;
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
                set(child, rest, data, op)?;
            }
        }
        (Step::Append, Value::Array(list)) => {
            list.push(Value::Null);
            if let Some(child) = list.last_mut() {
                set(child, rest, data, op)?;
            }
        }
        // The existing value is not the container this step needs: JOLT writes nothing.
        _ => {}
    }
    Ok(())
}
