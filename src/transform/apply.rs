//! Running a chain: input and context limits, then each operation in turn, with the document
//! borrowed until an operation needs to own it.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::Value;

use super::budget::Budget;
use super::error::{Error, Result};
use super::ops::sort;
use super::spec::Operation;
use super::{COPY_BYTES_MAX, COPY_VALUES_MAX, DOCUMENT_DEPTH_MAX, INPUT_DEPTH_MAX, SPEC_DEPTH_MAX};

/// The container nesting depth of `value` (a scalar is 0), or `None` when it is deeper than
/// `max`.
///
/// IMPORTANT: recursive, to walk without allocating, but it stops descending once `max` is
/// passed, so it never nests more than `max + 1` small frames; every caller passes
/// `INPUT_DEPTH_MAX` or `DOCUMENT_DEPTH_MAX` (at most 513 frames).
pub(crate) fn depth_within(value: &Value, max: usize) -> Option<usize> {
    fn children_within<'v>(children: impl Iterator<Item = &'v Value>, max: usize) -> Option<usize> {
        let mut deepest = 0;
        for child in children {
            deepest = deepest.max(depth_within(child, max)?);
        }
        Some(deepest)
    }
    let below = match value {
        Value::Array(items) => children_within(items.iter(), max.checked_sub(1)?)?,
        Value::Object(map) => children_within(map.values(), max.checked_sub(1)?)?,
        _ => return Some(0),
    };
    Some(below + 1)
}

pub(crate) fn apply(
    ops: &[Operation],
    range: Range<usize>,
    input: &Value,
    context: &Value,
) -> Result<Value> {
    let Some(mut depth_bound) = depth_within(input, INPUT_DEPTH_MAX) else {
        return Err(Error::InputTooDeep {
            max: INPUT_DEPTH_MAX,
        });
    };
    if depth_within(context, INPUT_DEPTH_MAX).is_none() {
        return Err(Error::ContextTooDeep {
            max: INPUT_DEPTH_MAX,
        });
    }
    let end = range.end.min(ops.len());
    let start = range.start.min(end);
    let selected = ops.get(start..end).unwrap_or_default();
    let budget = Budget::new(COPY_VALUES_MAX, COPY_BYTES_MAX);
    let mut doc: Cow<'_, Value> = Cow::Borrowed(input);
    let last = selected.len().saturating_sub(1);
    for (i, op) in selected.iter().enumerate() {
        let index = start + i;
        // An upper bound on the depth after this operation; `None` means it must be measured.
        let next_bound = match op {
            Operation::Shift(shift) => Some(shift.depth_bound(depth_bound)),
            Operation::Sort | Operation::Remove(_) => Some(depth_bound),
            Operation::Default(_) => Some(depth_bound.max(2 * SPEC_DEPTH_MAX)),
            Operation::Cardinality(_) => Some(depth_bound.saturating_add(SPEC_DEPTH_MAX)),
            Operation::Modify(_) => None,
        };
        doc = Cow::Owned(match op {
            Operation::Shift(shift) => shift.apply(&doc, index, &budget)?,
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
                modify.apply(&mut owned, context, index, &budget)?;
                owned
            }
        });
        if i == last {
            break;
        }
        depth_bound = match next_bound {
            Some(bound) if bound <= DOCUMENT_DEPTH_MAX => bound,
            _ => depth_within(&doc, DOCUMENT_DEPTH_MAX).ok_or_else(|| Error::Transform {
                operation: index,
                reason: format!("the document nests deeper than {DOCUMENT_DEPTH_MAX}"),
            })?,
        };
    }
    Ok(doc.into_owned())
}
