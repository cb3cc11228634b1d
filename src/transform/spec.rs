//! Spec text in, validated [`Spec`](super::Spec) out: the chain form
//! `[{"operation": …, "spec": …}, …]` (or one such object), operation names (the chain names and
//! the Java class names NiFi accepts for the stock operations), size and depth limits, and
//! JSON Pointer construction for error messages.

use serde_json::Value;

use super::error::{Error, Result};
use super::ops::{Cardinality, Default, Functions, Modify, ModifyMode, Remove, Shift};
use super::{SPEC_BYTES_MAX, SPEC_DEPTH_MAX, SPEC_OPERATIONS_MAX};

/// One parsed operation of a chain.
#[derive(Debug)]
pub(crate) enum Operation {
    Shift(Shift),
    Default(Default),
    Remove(Remove),
    Cardinality(Cardinality),
    Sort,
    Modify(Modify),
}

/// Builds an [`Error::InvalidSpec`] for the spec value at `path`.
pub(crate) fn invalid(path: &str, reason: &str) -> Error {
    Error::InvalidSpec {
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
        reason: reason.into(),
    }
}

/// The JSON Pointer of member `key` of the value at `parent` (RFC 6901 escaping).
pub(crate) fn pointer(parent: &str, key: &str) -> String {
    let mut out = String::with_capacity(parent.len() + key.len() + 1);
    out.push_str(parent);
    out.push('/');
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// Parses spec text: checks [`SPEC_BYTES_MAX`] before touching the JSON parser.
pub(crate) fn parse_str(text: &str, functions: &Functions) -> Result<Vec<Operation>> {
    if text.len() > SPEC_BYTES_MAX {
        return Err(Error::SpecTooLarge {
            len: text.len(),
            max: SPEC_BYTES_MAX,
        });
    }
    let value: Value = serde_json::from_str(text).map_err(|source| Error::SpecJson { source })?;
    parse(&value, functions)
}

/// Parses a spec value: a chain array or a single `{"operation", "spec"}` object.
pub(crate) fn parse(value: &Value, functions: &Functions) -> Result<Vec<Operation>> {
    check_depth(value, SPEC_DEPTH_MAX, |path| Error::SpecTooDeep {
        path,
        max: SPEC_DEPTH_MAX,
    })?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(invalid("", "a chain needs at least one operation"));
            }
            if items.len() > SPEC_OPERATIONS_MAX {
                return Err(Error::TooManyOperations {
                    len: items.len(),
                    max: SPEC_OPERATIONS_MAX,
                });
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| parse_operation(item, &format!("/{i}"), functions))
                .collect()
        }
        Value::Object(map) if map.contains_key("operation") => {
            Ok(vec![parse_operation(value, "", functions)?])
        }
        _ => Err(invalid(
            "",
            "a spec must be a chain `[{\"operation\": …, \"spec\": …}]` or one such object",
        )),
    }
}

fn parse_operation(item: &Value, path: &str, functions: &Functions) -> Result<Operation> {
    let Value::Object(map) = item else {
        return Err(invalid(
            path,
            "a chain entry must be an object with `operation` and `spec`",
        ));
    };
    let op_path = pointer(path, "operation");
    let name = match map.get("operation") {
        Some(Value::String(name)) => name.as_str(),
        Some(_) => return Err(invalid(&op_path, "`operation` must be a string")),
        None => return Err(invalid(&op_path, "missing `operation`")),
    };
    let spec_path = pointer(path, "spec");
    let spec = map.get("spec");
    let need_spec =
        || spec.ok_or_else(|| invalid(&spec_path, &format!("operation `{name}` needs a `spec`")));
    Ok(match name {
        "shift" | "com.bazaarvoice.jolt.Shiftr" => {
            Operation::Shift(Shift::parse(need_spec()?, &spec_path)?)
        }
        "default" | "com.bazaarvoice.jolt.Defaultr" => {
            Operation::Default(Default::parse(need_spec()?, &spec_path)?)
        }
        "remove" | "com.bazaarvoice.jolt.Removr" => {
            Operation::Remove(Remove::parse(need_spec()?, &spec_path)?)
        }
        "cardinality" | "com.bazaarvoice.jolt.CardinalityTransform" => {
            Operation::Cardinality(Cardinality::parse(need_spec()?, &spec_path)?)
        }
        "sort" | "com.bazaarvoice.jolt.Sortr" => Operation::Sort,
        "modify-overwrite-beta" | "com.bazaarvoice.jolt.Modifier$Overwritr" => Operation::Modify(
            Modify::parse(need_spec()?, ModifyMode::Overwrite, functions, &spec_path)?,
        ),
        "modify-default-beta" | "com.bazaarvoice.jolt.Modifier$Defaultr" => Operation::Modify(
            Modify::parse(need_spec()?, ModifyMode::Default, functions, &spec_path)?,
        ),
        "modify-define-beta" | "com.bazaarvoice.jolt.Modifier$Definr" => Operation::Modify(
            Modify::parse(need_spec()?, ModifyMode::Define, functions, &spec_path)?,
        ),
        other => {
            return Err(invalid(
                &op_path,
                &format!("unknown operation `{other}` (custom Java transforms are not supported)"),
            ));
        }
    })
}

/// Checks that `value` nests at most `max` containers deep, without recursion; `err` builds
/// the error from the JSON Pointer of the first container past the limit.
pub(crate) fn check_depth(value: &Value, max: usize, err: impl Fn(String) -> Error) -> Result<()> {
    let mut stack: Vec<(&Value, usize, String)> = vec![(value, 1, String::new())];
    while let Some((v, depth, path)) = stack.pop() {
        let children: Box<dyn Iterator<Item = (String, &Value)>> = match v {
            Value::Array(items) => {
                Box::new(items.iter().enumerate().map(|(i, c)| (i.to_string(), c)))
            }
            Value::Object(map) => Box::new(map.iter().map(|(k, c)| (k.clone(), c))),
            _ => continue,
        };
        if depth > max {
            return Err(err(if path.is_empty() { "/".into() } else { path }));
        }
        for (key, child) in children {
            if child.is_array() || child.is_object() {
                stack.push((child, depth + 1, pointer(&path, &key)));
            }
        }
    }
    Ok(())
}
