//! `default` (JOLT's Defaultr): fills in values that are missing or null, creating the
//! containers on the way. A key ending in `[]` says its value is an array whose children are
//! indices; with a value that is not an object, `[]` is only dropped (`items[]: []` defaults
//! `items`). Literal keys apply first, then `|` alternatives, then `*`; a default never
//! overwrites a value that is present and not null.

use serde_json::{Map, Value};

use crate::transform::error::{Error, Result};
use crate::transform::spec::{invalid, pointer};

/// A parsed `default` spec.
#[derive(Debug)]
pub(crate) struct Default {
    map_root: Vec<Node>,
    /// The same spec read as children of a top-level array, when every key can be an index.
    array_root: Option<Vec<Node>>,
}

#[derive(Debug)]
enum Match {
    Literal(String),
    Or(Vec<String>),
    Star,
}

#[derive(Debug)]
enum Body {
    Leaf(Value),
    Children { array: bool, children: Vec<Node> },
}

#[derive(Debug)]
struct Node {
    key: Match,
    body: Body,
}

impl Default {
    /// Parses a `default` spec; `path` is the JSON Pointer of `spec`.
    pub(crate) fn parse(spec: &Value, path: &str) -> Result<Self> {
        let Value::Object(map) = spec else {
            return Err(invalid(path, "a default spec must be a JSON object"));
        };
        let map_root = parse_children(map, false, path)?;
        let array_root = parse_children(map, true, path).ok();
        Ok(Default {
            map_root,
            array_root,
        })
    }

    /// Applies the defaults to `doc` in place; `op` is the position in the chain.
    pub(crate) fn apply(&self, doc: &mut Value, op: usize) -> Result<()> {
        if doc.is_null() {
            *doc = Value::Object(Map::new());
        }
        match doc {
            Value::Array(_) => match &self.array_root {
                Some(children) => apply_children(children, true, doc),
                None => {
                    return Err(Error::Transform {
                        operation: op,
                        reason: "the default spec cannot handle a top-level array".into(),
                    });
                }
            },
            _ => apply_children(&self.map_root, false, doc),
        }
        Ok(())
    }
}

fn parse_children(map: &Map<String, Value>, array: bool, path: &str) -> Result<Vec<Node>> {
    let mut nodes = Vec::with_capacity(map.len());
    for (raw, value) in map {
        let node_path = pointer(path, raw);
        let (name, child_array) = match raw.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (raw.as_str(), false),
        };
        let key = if name == "*" {
            Match::Star
        } else if name.contains('*') {
            return Err(invalid(
                &node_path,
                "a default key can use `*` only on its own",
            ));
        } else if name.contains('|') {
            Match::Or(name.split('|').map(str::to_owned).collect())
        } else {
            Match::Literal(name.to_owned())
        };
        if array {
            let ok = match &key {
                Match::Star => true,
                Match::Literal(s) => s
                    .parse::<usize>()
                    .is_ok_and(|i| i <= crate::transform::ARRAY_INDEX_MAX),
                Match::Or(alts) => alts.iter().all(|s| s.parse::<usize>().is_ok()),
            };
            if !ok {
                return Err(invalid(
                    &node_path,
                    "a key under an array (`name[]`) must be an index, `*` or `|` of indices",
                ));
            }
        }
        let body = match value {
            Value::Object(children) => Body::Children {
                array: child_array,
                children: parse_children(children, child_array, &node_path)?,
            },
            // `name[]` with a value that is not an object is a plain default of `name`: jolt-core
            // only reads `[]` when it creates a container for children.
            leaf => Body::Leaf(leaf.clone()),
        };
        nodes.push(Node { key, body });
    }
    // Literals first, then alternatives, then `*`, keeping spec order among literals.
    // Alternatives sort by how many they name, then by their text, as JOLT does.
    nodes.sort_by_key(|n| match &n.key {
        Match::Literal(_) => (0u8, 0, String::new()),
        Match::Or(alts) => (1, alts.len(), alts.join("|")),
        Match::Star => (2, 0, String::new()),
    });
    Ok(nodes)
}

/// Applies `children` to `container` when its type fits (`array` says which type it must be).
fn apply_children(children: &[Node], array: bool, container: &mut Value) {
    match container {
        Value::Object(map) if !array => {
            for child in children {
                let keys: Vec<String> = match &child.key {
                    Match::Literal(k) => vec![k.clone()],
                    Match::Or(alts) => alts
                        .iter()
                        .filter(|k| map.contains_key(k.as_str()))
                        .cloned()
                        .collect(),
                    Match::Star => map.keys().cloned().collect(),
                };
                for key in keys {
                    if !map.contains_key(&key) {
                        map.insert(key.clone(), Value::Null);
                    }
                    if let Some(slot) = map.get_mut(&key) {
                        child.fill(slot);
                    }
                }
            }
        }
        Value::Array(list) if array => {
            for child in children {
                let indices: Vec<usize> = match &child.key {
                    Match::Literal(k) => k.parse::<usize>().ok().into_iter().collect(),
                    Match::Or(alts) => alts
                        .iter()
                        .filter_map(|k| k.parse::<usize>().ok())
                        .filter(|i| *i < list.len())
                        .collect(),
                    Match::Star => (0..list.len()).collect(),
                };
                for index in indices {
                    // Literal indices were checked against ARRAY_INDEX_MAX at parse time.
                    if index >= list.len() {
                        list.resize(index + 1, Value::Null);
                    }
                    if let Some(slot) = list.get_mut(index) {
                        child.fill(slot);
                    }
                }
            }
        }
        _ => {}
    }
}

impl Node {
    /// Defaults one slot (null means missing).
    fn fill(&self, slot: &mut Value) {
        match &self.body {
            Body::Leaf(default) => {
                if slot.is_null() {
                    *slot = default.clone();
                }
            }
            Body::Children { array, children } => {
                if slot.is_null() {
                    *slot = if *array {
                        Value::Array(Vec::new())
                    } else {
                        Value::Object(Map::new())
                    };
                }
                apply_children(children, *array, slot);
            }
        }
    }
}
