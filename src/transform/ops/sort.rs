//! `sort` (JOLT's Sortr): sorts every object's keys recursively, keys starting with `~` first,
//! then by text in UTF-16 code-unit order (Java's `String.compareTo`); array order is kept.

use serde_json::{Map, Value};

use super::functions::utf16_cmp;

/// Returns `value` with every object's keys in Sortr order.
pub(crate) fn sort(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| {
                let at = a.starts_with('~');
                let bt = b.starts_with('~');
                bt.cmp(&at).then_with(|| utf16_cmp(a, b))
            });
            let mut out = Map::with_capacity(entries.len());
            for (k, v) in entries {
                out.insert(k, sort(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort).collect()),
        other => other,
    }
}
