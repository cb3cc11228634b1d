//! Running a chain: input and context limits, then each operation in turn, with the document
//! borrowed until an operation needs to own it.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::Value;

use super::error::{Error, Result};
use super::ops::sort;
use super::spec::Operation;
use super::{DOCUMENT_DEPTH_MAX, INPUT_DEPTH_MAX};

/// Whether `value` nests more than `max` containers deep (iterative, no allocation for
/// scalars).
pub(crate) fn deeper_than(value: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    if value.is_array() || value.is_object() {
        stack.push((value, 1));
    }
    while let Some((v, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        let push = |c: &'_ Value| c.is_array() || c.is_object();
        match v {
            Value::Array(items) => {
                for c in items {
                    if push(c) {
                        stack.push((c, depth + 1));
                    }
                }
            }
            Value::Object(map) => {
                for c in map.values() {
                    if push(c) {
                        stack.push((c, depth + 1));
                    }
                }
            }
            _ => {}
        }
    }
    false
}

pub(crate) fn apply(
    ops: &[Operation],
    range: Range<usize>,
    input: &Value,
    context: &Value,
) -> Result<Value> {
    if deeper_than(input, INPUT_DEPTH_MAX) {
        return Err(Error::InputTooDeep {
            max: INPUT_DEPTH_MAX,
        });
    }
    if deeper_than(context, INPUT_DEPTH_MAX) {
        return Err(Error::ContextTooDeep {
            max: INPUT_DEPTH_MAX,
        });
    }
    let end = range.end.min(ops.len());
    let start = range.start.min(end);
    let selected = ops.get(start..end).unwrap_or_default();
    let mut doc: Cow<'_, Value> = Cow::Borrowed(input);
    let last = selected.len().saturating_sub(1);
    for (i, op) in selected.iter().enumerate() {
        let index = start + i;
        doc = Cow::Owned(match op {
            Operation::Shift(shift) => shift.apply(&doc, index)?,
            Operation::Sort => sort(doc.into_owned()),
            Operation::Default(default) => {
                let mut owned = doc.into_owned();
                default.apply(&mut owned, index)?;
                owned
            }
            Operation::Remove(remove) => {
                let mut owned = doc.into_owned();
                remove.apply(&mut owned);
                owned
            }
            Operation::Cardinality(cardinality) => {
                let mut owned = doc.into_owned();
                cardinality.apply(&mut owned);
                owned
            }
            Operation::Modify(modify) => {
                let mut owned = doc.into_owned();
                modify.apply(&mut owned, context);
                owned
            }
        });
        if i != last && deeper_than(&doc, DOCUMENT_DEPTH_MAX) {
            return Err(Error::Transform {
                operation: index,
                reason: format!("the document nests deeper than {DOCUMENT_DEPTH_MAX}"),
            });
        }
    }
    Ok(doc.into_owned())
}
