//! The copy budget: every value an apply copies out of the document or context counts against
//! [`COPY_VALUES_MAX`](super::COPY_VALUES_MAX), so a spec that copies a document into itself
//! over and over fails with an error instead of exhausting memory.

use std::cell::Cell;

use serde_json::Value;

/// Values left to copy during one apply.
#[derive(Debug)]
pub(crate) struct Budget {
    left: Cell<usize>,
    exhausted: Cell<bool>,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        Budget {
            left: Cell::new(max),
            exhausted: Cell::new(false),
        }
    }

    /// Copies `value` if the budget allows; otherwise marks the budget exhausted and returns
    /// null (the caller reports the error when its operation ends).
    pub(crate) fn copy(&self, value: &Value) -> Value {
        let left = self.left.get();
        let count = match value {
            Value::Array(_) | Value::Object(_) => count_within(value, left),
            // A scalar counts one; no walk.
            _ => (left >= 1).then_some(1),
        };
        match count {
            Some(n) if !self.exhausted.get() => {
                self.left.set(left - n);
                value.clone()
            }
            _ => {
                self.exhausted.set(true);
                Value::Null
            }
        }
    }

    pub(crate) fn exhausted(&self) -> bool {
        self.exhausted.get()
    }
}

/// The number of values in `value` (itself included), or `None` when more than `max`.
fn count_within(value: &Value, max: usize) -> Option<usize> {
    let mut count = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        count += 1;
        if count > max {
            return None;
        }
        match v {
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    Some(count)
}
