//! `remove` (JOLT's Removr): deletes the keys and array elements the spec names. A spec value
//! is `""` (remove this) or an object (descend). Keys are literals (indices for arrays), `*`,
//! star patterns and `|` alternatives.

use serde_json::{Map, Value};

use crate::transform::error::Result;
use crate::transform::path::{Key, parse_remove_key};
use crate::transform::spec::{invalid, pointer};

/// A parsed `remove` spec.
#[derive(Debug)]
pub(crate) struct Remove {
    root: Vec<Node>,
}

#[derive(Debug)]
struct Node {
    key: Key,
    /// `None` for a leaf (`""`): remove the matches.
    children: Option<Vec<Node>>,
}

impl Remove {
    /// Parses a `remove` spec; `path` is the JSON Pointer of `spec`.
    pub(crate) fn parse(spec: &Value, path: &str) -> Result<Self> {
        let Value::Object(map) = spec else {
            return Err(invalid(path, "a remove spec must be a JSON object"));
        };
        Ok(Remove {
            root: parse_children(map, path)?,
        })
    }

    /// Removes the matches from `doc` in place.
    pub(crate) fn apply(&self, doc: &mut Value) {
        process(&self.root, doc);
    }
}

fn parse_children(map: &Map<String, Value>, path: &str) -> Result<Vec<Node>> {
    let mut nodes = Vec::with_capacity(map.len());
    for (raw, value) in map {
        let node_path = pointer(path, raw);
        let key = parse_remove_key(raw).map_err(|reason| invalid(&node_path, &reason))?;
        let children = match value {
            Value::String(s) if s.trim().is_empty() => None,
            Value::Object(children) => Some(parse_children(children, &node_path)?),
            _ => {
                return Err(invalid(
                    &node_path,
                    "a remove value must be \"\" or an object",
                ));
            }
        };
        nodes.push(Node { key, children });
    }
    Ok(nodes)
}

fn process(children: &[Node], doc: &mut Value) {
    match doc {
        Value::Object(map) => {
            for child in children {
                if let Key::Literal(k) = &child.key {
                    match &child.children {
                        None => {
                            map.shift_remove(k);
                        }
                        Some(grandchildren) => {
                            if let Some(v) = map.get_mut(k) {
                                process(grandchildren, v);
                            }
                        }
                    }
                    continue;
                }
                let keys: Vec<String> = map
                    .keys()
                    .filter(|k| child.key.matches_str(k))
                    .cloned()
                    .collect();
                for key in keys {
                    match &child.children {
                        None => {
                            map.shift_remove(&key);
                        }
                        Some(grandchildren) => {
                            if let Some(v) = map.get_mut(&key) {
                                process(grandchildren, v);
                            }
                        }
                    }
                }
            }
        }
        Value::Array(list) => {
            // Indices refer to the list as it was: collect them all, then remove from the end.
            let mut doomed = Vec::new();
            for child in children {
                let mut indices = Vec::new();
                list_indices(&child.key, list.len(), &mut indices);
                match &child.children {
                    None => doomed.extend(indices),
                    Some(grandchildren) => {
                        for i in indices {
                            if let Some(v) = list.get_mut(i) {
                                process(grandchildren, v);
                            }
                        }
                    }
                }
            }
            doomed.sort_unstable_by(|a, b| b.cmp(a));
            doomed.dedup();
            for i in doomed {
                if i < list.len() {
                    list.remove(i);
                }
            }
        }
        _ => {}
    }
}

/// The indices of a list of `len` elements that `key` names, as jolt-core's Removr reads a
/// key under a list: a literal is an index (`Integer.parseInt`, so `01` is 1), `*` every
/// index, a star pattern none, and each `|` alternative is a key of its own (`a|*` is every
/// index).
fn list_indices(key: &Key, len: usize, out: &mut Vec<usize>) {
    match key {
        Key::Literal(k) => out.extend(k.parse::<usize>().ok().filter(|i| *i < len)),
        Key::StarAll => out.extend(0..len),
        Key::Or(alternatives) => {
            for alternative in alternatives {
                list_indices(alternative, len, out);
            }
        }
        _ => {}
    }
}
