//! Record values parsed into `serde_json::Value`, each object and array allocated once at its
//! final size.
//!
//! `serde_json`'s own `Value` grows every object from empty (with `preserve_order`, an index
//! table and an entry vector, each reallocated and rehashed as it doubles) and every array
//! likewise. [`Parser`] gathers a container's members in a scratch vector first, then moves
//! them into a container of exactly their count; the scratch vectors are reused from record to
//! record. Building the tree is most of a parse (the JSON text of an order is scanned in an
//! eighth of the time), so this takes 12–16 % off parsing an order (docs/benchmarks-log.md,
//! "Watcher and parser allocations").
//!
//! The text accepted, the errors and the resulting value are `serde_json::from_slice`'s (the
//! same deserializer reads the text, nesting limit included), with one difference: an object
//! key spelled `$serde_json::private::RawValue` is an ordinary key here, where `serde_json`
//! would read its value as embedded JSON text.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Scratch vectors longer than this are not kept for the next record, so what a parser holds
/// between records stays small whatever the records.
const SCRATCH_KEPT_MAX: usize = 1024;

/// A reusable JSON parser (see the module docs). Keeps, between parses, at most one scratch
/// vector per nesting level seen, each of at most [`SCRATCH_KEPT_MAX`] members.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// Free scratch vectors for object members.
    members: Vec<Vec<(String, Value)>>,
    /// Free scratch vectors for array items.
    items: Vec<Vec<Value>>,
}

impl Parser {
    /// Parses one JSON text, as `serde_json::from_slice::<Value>` does.
    ///
    /// # Errors
    /// `serde_json`'s error for text that is not one JSON value (trailing characters, and
    /// more than 127 nested arrays and objects, included).
    pub(crate) fn parse(&mut self, bytes: &[u8]) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Seed { parser: self }.deserialize(&mut de)?;
        de.end()?;
        Ok(value)
    }
}

/// One value to read, with the parser whose scratch vectors it uses.
struct Seed<'p> {
    parser: &'p mut Parser,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let parser = self.parser;
        let mut scratch = parser.items.pop().unwrap_or_default();
        let filled = loop {
            match seq.next_element_seed(Seed {
                parser: &mut *parser,
            }) {
                Ok(Some(item)) => scratch.push(item),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        // Moved out, not `mem::take`n: the array gets exactly its length, the scratch stays.
        let mut items = Vec::with_capacity(scratch.len());
        items.append(&mut scratch);
        if scratch.capacity() <= SCRATCH_KEPT_MAX {
            parser.items.push(scratch);
        }
        filled.map(|()| Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let parser = self.parser;
        let mut scratch = parser.members.pop().unwrap_or_default();
        let filled = loop {
            let key = match map.next_key::<String>() {
                Ok(Some(key)) => key,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            match map.next_value_seed(Seed {
                parser: &mut *parser,
            }) {
                Ok(value) => scratch.push((key, value)),
                Err(e) => break Err(e),
            }
        };
        let mut members = Map::with_capacity(scratch.len());
        // A repeated key keeps its first position and takes its last value, as in `serde_json`.
        for (key, value) in scratch.drain(..) {
            members.insert(key, value);
        }
        if scratch.capacity() <= SCRATCH_KEPT_MAX {
            parser.members.push(scratch);
        }
        filled.map(|()| Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::{Parser, SCRATCH_KEPT_MAX};

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{0,2}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// `serde_json`'s verdict and value, or its error text.
    fn by_serde(text: &[u8]) -> Result<Value, String> {
        serde_json::from_slice(text).map_err(|e| e.to_string())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn values_parse_as_serde_json_parses_them(v in value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_vec_pretty(&v)
            } else {
                serde_json::to_vec(&v)
            }
            .unwrap_or_else(|e| unreachable!("{e}"));
            let mut parser = Parser::default();
            let parsed = parser.parse(&text).map_err(|e| e.to_string());
            prop_assert_eq!(&parsed, &by_serde(&text));
            // Key order and text survive too, and a reused parser gives the same again.
            let again = parser.parse(&text).map_err(|e| e.to_string());
            prop_assert_eq!(
                again.map(|v| v.to_string()),
                by_serde(&text).map(|v| v.to_string())
            );
        }

        #[test]
        fn damaged_text_fails_or_parses_as_serde_json_does(
            v in value(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut text = serde_json::to_vec(&v).unwrap_or_else(|e| unreachable!("{e}"));
            for (at, byte) in edits {
                let i = at.index(text.len());
                text[i] = byte;
            }
            let mut parser = Parser::default();
            prop_assert_eq!(parser.parse(&text).map_err(|e| e.to_string()), by_serde(&text));
        }
    }

    #[test]
    fn repeated_keys_keep_the_first_position_and_the_last_value() {
        let text = br#"{"a":1,"b":2,"a":3}"#;
        let mut parser = Parser::default();
        let parsed = parser.parse(text).ok();
        assert_eq!(
            parsed.as_ref().map(Value::to_string),
            by_serde(text).ok().map(|v| v.to_string())
        );
        assert_eq!(parsed, Some(json!({"a": 3, "b": 2})));
    }

    #[test]
    fn nesting_is_limited_as_in_serde_json() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // `serde_json` takes 127 nested containers and refuses the 128th.
        let mut parser = Parser::default();
        assert!(parser.parse(deep(127).as_bytes()).is_ok());
        assert!(by_serde(deep(127).as_bytes()).is_ok());
        let err = parser
            .parse(deep(128).as_bytes())
            .map_err(|e| e.to_string());
        assert_eq!(err, by_serde(deep(128).as_bytes()));
        assert!(err.is_err_and(|e| e.contains("recursion limit exceeded")));
    }

    #[test]
    fn scratch_kept_between_parses_is_bounded() {
        let mut parser = Parser::default();
        let at_max = format!("[{}]", vec!["1"; SCRATCH_KEPT_MAX].join(","));
        let over = format!("[{}]", vec!["1"; SCRATCH_KEPT_MAX + 1].join(","));
        assert!(parser.parse(at_max.as_bytes()).is_ok());
        assert_eq!(parser.items.len(), 1);
        assert!(
            parser
                .items
                .iter()
                .all(|v| v.capacity() <= SCRATCH_KEPT_MAX)
        );
        parser.items.clear();
        assert!(parser.parse(over.as_bytes()).is_ok());
        assert!(
            parser.items.is_empty(),
            "a scratch past the limit is dropped"
        );
        let members = |n: usize| {
            let fields: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", fields.join(","))
        };
        assert!(
            parser
                .parse(members(SCRATCH_KEPT_MAX + 1).as_bytes())
                .is_ok()
        );
        assert!(
            parser.members.is_empty(),
            "a scratch past the limit is dropped"
        );
        assert!(parser.parse(members(3).as_bytes()).is_ok());
        assert_eq!(parser.members.len(), 1);
    }
}
