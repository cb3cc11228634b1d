//! `cardinality` (JOLT's CardinalityTransform): makes values `ONE` (a list becomes its first
//! element) or `MANY` (a non-list becomes a one-element list, null becomes `[]`). `@` applies
//! the rule to the value of the enclosing key before its children run.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::transform::error::Result;
use crate::transform::path::{Key, KeyWalk, Matched, parse_verbatim_key, precedence_order};
use crate::transform::spec::{invalid, pointer};

/// A parsed `cardinality` spec.
#[derive(Debug)]
pub(crate) struct Cardinality {
    root: Children,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    One,
    Many,
}

#[derive(Debug)]
enum Body {
    Leaf(Rule),
    Children(Children),
}

#[derive(Debug)]
struct Node {
    key: Key,
    body: Body,
}

#[derive(Debug, Default)]
struct Children {
    /// The `@` rule, applied to the enclosing value first.
    at: Option<Rule>,
    literals: Vec<Node>,
    computed: Vec<Node>,
}

impl Cardinality {
    /// Parses a `cardinality` spec; `path` is the JSON Pointer of `spec`.
    pub(crate) fn parse(spec: &Value, path: &str) -> Result<Self> {
        let Value::Object(map) = spec else {
            return Err(invalid(path, "a cardinality spec must be a JSON object"));
        };
        Ok(Cardinality {
            root: parse_children(map, path)?,
        })
    }

    /// Applies the rules to `doc` in place.
    pub(crate) fn apply(&self, doc: &mut Value) {
        let mut walk = KeyWalk::default();
        walk.push(Matched::plain(Cow::Borrowed("root")));
        walk.push(Matched::plain(Cow::Borrowed("root")));
        if let Some(rule) = self.root.at {
            adjust(doc, rule);
        }
        self.root.process(doc, &mut walk);
    }
}

fn parse_rule(value: &Value, path: &str) -> Result<Rule> {
    match value {
        Value::String(s) if s == "ONE" => Ok(Rule::One),
        Value::String(s) if s == "MANY" => Ok(Rule::Many),
        _ => Err(invalid(
            path,
            "a cardinality value must be \"ONE\", \"MANY\" or an object",
        )),
    }
}

fn parse_children(map: &Map<String, Value>, path: &str) -> Result<Children> {
    let mut out = Children::default();
    for (raw_key, value) in map {
        let node_path = pointer(path, raw_key);
        let key = parse_verbatim_key(raw_key).map_err(|reason| invalid(&node_path, &reason))?;
        if matches!(key, Key::At) {
            out.at = Some(parse_rule(value, &node_path)?);
            continue;
        }
        let body = match value {
            Value::Object(children) => Body::Children(parse_children(children, &node_path)?),
            leaf => Body::Leaf(parse_rule(leaf, &node_path)?),
        };
        let node = Node { key, body };
        if matches!(node.key, Key::Literal(_)) {
            out.literals.push(node);
        } else {
            out.computed.push(node);
        }
    }
    out.computed
        .sort_by(|a, b| precedence_order(&a.key, &b.key));
    Ok(out)
}

/// Applies one rule to a value in place.
fn adjust(slot: &mut Value, rule: Rule) {
    match rule {
        Rule::Many => match slot {
            Value::Array(_) => {}
            Value::Null => *slot = Value::Array(Vec::new()),
            other => {
                let one = std::mem::take(other);
                *other = Value::Array(vec![one]);
            }
        },
        Rule::One => {
            if let Value::Array(list) = slot {
                let first = if list.is_empty() {
                    Value::Null
                } else {
                    list.swap_remove(0)
                };
                *slot = first;
            }
        }
    }
}

impl Children {
    fn process(&self, doc: &mut Value, walk: &mut KeyWalk) {
        match doc {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    if let Some(slot) = map.get_mut(&key) {
                        self.apply_key(&key, slot, walk);
                    }
                }
            }
            Value::Array(list) => {
                for (i, slot) in list.iter_mut().enumerate() {
                    self.apply_key(&i.to_string(), slot, walk);
                }
            }
            _ => {}
        }
    }

    /// A literal child wins; otherwise the first computed child that matches.
    fn apply_key(&self, key: &str, slot: &mut Value, walk: &mut KeyWalk) {
        let key = Cow::Borrowed(key);
        for node in self.literals.iter().chain(self.computed.iter()) {
            if let Some(matched) = node.key.matches(&key, walk) {
                walk.push(matched);
                match &node.body {
                    Body::Leaf(rule) => adjust(slot, *rule),
                    Body::Children(children) => {
                        if let Some(rule) = children.at {
                            adjust(slot, rule);
                        }
                        children.process(slot, walk);
                    }
                }
                walk.pop();
                return;
            }
        }
    }
}
