//! Dotted JSON paths (`customer.city`, `orderLines.0.productCode`) and key templates
//! (`customer:{customerNumber}`): parsed once when a flow is planned, evaluated per record.
//!
//! Pure functions over `serde_json::Value`; nothing here touches an engine.

use serde_json::Value;

use super::{PATH_SEGMENTS_MAX, TEMPLATE_BYTES_MAX, TEMPLATE_OUTPUT_BYTES_MAX};

/// A parsed dotted path. A segment of decimal digits (`0`, or no leading zero; no sign) also
/// indexes arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath {
    /// The path as written, for messages.
    text: String,
    /// The segments, in order.
    segments: Vec<String>,
}

impl JsonPath {
    /// Parses `a.b.c`.
    ///
    /// # Errors
    /// An empty path, an empty segment, more than [`PATH_SEGMENTS_MAX`] segments, or a segment
    /// written as a number that is no array index (`+1`, `-1`, `01`).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the path is empty".into());
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.len() > PATH_SEGMENTS_MAX {
            return Err(format!(
                "the path has {} segments (at most {PATH_SEGMENTS_MAX})",
                segments.len()
            ));
        }
        if segments.iter().any(String::is_empty) {
            return Err(format!("`{text}` has an empty segment"));
        }
        if let Some(bad) = segments.iter().find(|s| looks_like_bad_index(s)) {
            return Err(format!(
                "`{text}` has segment `{bad}`: an array index is decimal digits with no sign \
                 and no leading zero (`0`, `7`, `12`)"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at this path, if every segment exists.
    pub(crate) fn lookup<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(doc, |node, segment| match node {
                Value::Object(map) => map.get(segment),
                Value::Array(items) => index(segment).and_then(|i| items.get(i)),
                _ => None,
            })
    }
}

/// Whether a segment is written as an array index: decimal digits, `0` or without a leading
/// zero.
fn is_index_text(segment: &str) -> bool {
    !segment.is_empty()
        && segment.bytes().all(|b| b.is_ascii_digit())
        && (segment == "0" || !segment.starts_with('0'))
}

/// The array index a segment names (none past `usize`, which no array reaches).
fn index(segment: &str) -> Option<usize> {
    if is_index_text(segment) {
        segment.parse().ok()
    } else {
        None
    }
}

/// A segment written as a number that is no array index: a sign (`+1`, `-1`) or a leading
/// zero (`01`). Refused rather than read as an object key, since it reads as an index.
fn looks_like_bad_index(segment: &str) -> bool {
    let digits = segment.strip_prefix(['+', '-']).unwrap_or(segment);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && !is_index_text(segment)
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text copied as is.
    Literal(String),
    /// A value looked up in the document.
    Field(JsonPath),
}

/// A key template such as `customer:{customerNumber}`; `{{` and `}}` stand for literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    /// The pieces, in order.
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses a template.
    ///
    /// # Errors
    /// Longer than [`TEMPLATE_BYTES_MAX`], an unclosed or stray brace, or a bad path inside braces.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.len() > TEMPLATE_BYTES_MAX {
            return Err(format!(
                "the template is {} bytes (at most {TEMPLATE_BYTES_MAX})",
                text.len()
            ));
        }
        if text.is_empty() {
            return Err("the template is empty".into());
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut path = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        if c == '{' {
                            return Err(format!("`{text}` has `{{` inside a placeholder"));
                        }
                        path.push(c);
                    }
                    if !closed {
                        return Err(format!("`{text}` has an unclosed `{{`"));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Field(JsonPath::parse(path.trim())?));
                }
                '}' => return Err(format!("`{text}` has a `}}` without `{{` (write `}}}}`)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }

    /// Fills the template from `doc`: strings as they are, numbers and booleans as JSON text.
    ///
    /// # Errors
    /// A field that is missing, null, an object or an array, or an output longer than
    /// [`TEMPLATE_OUTPUT_BYTES_MAX`].
    pub(crate) fn render(&self, doc: &Value) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Field(path) => match path.lookup(doc) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(Value::Number(n)) => out.push_str(&n.to_string()),
                    Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                    Some(Value::Null) | None => {
                        return Err(format!(
                            "template field `{}` is missing or null",
                            path.as_str()
                        ));
                    }
                    Some(Value::Array(_) | Value::Object(_)) => {
                        return Err(format!(
                            "template field `{}` is not a string, number or boolean",
                            path.as_str()
                        ));
                    }
                },
            }
            if out.len() > TEMPLATE_OUTPUT_BYTES_MAX {
                return Err(format!(
                    "the rendered key is over {TEMPLATE_OUTPUT_BYTES_MAX} bytes"
                ));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn path_walks_objects_and_arrays() {
        let doc = json!({"a": {"b": [10, {"c": "x"}]}});
        assert_eq!(
            JsonPath::parse("a.b.1.c").unwrap().lookup(&doc),
            Some(&json!("x"))
        );
        assert_eq!(
            JsonPath::parse("a.b.0").unwrap().lookup(&doc),
            Some(&json!(10))
        );
        assert_eq!(JsonPath::parse("a.b.9").unwrap().lookup(&doc), None);
        assert_eq!(JsonPath::parse("a.z").unwrap().lookup(&doc), None);
        assert!(JsonPath::parse("a..b").is_err());
        assert!(JsonPath::parse("").is_err());
    }

    #[test]
    fn path_refuses_index_segments_with_a_sign_or_leading_zero() {
        for text in ["a.+1", "a.01", "a.00", "a.+0", "01", "a.-1"] {
            let err = JsonPath::parse(text).unwrap_err();
            assert!(err.contains("array index"), "{text}: {err}");
        }
        let doc = json!({"a": [10, 11]});
        assert_eq!(
            JsonPath::parse("a.0").unwrap().lookup(&doc),
            Some(&json!(10))
        );
        assert_eq!(
            JsonPath::parse("a.10")
                .unwrap()
                .lookup(&json!({"a": {"10": 1}})),
            Some(&json!(1))
        );
        // Digits after other characters make a plain key.
        assert!(JsonPath::parse("a.x01").is_ok());
        assert!(JsonPath::parse("a.1-").is_ok());
        assert!(JsonPath::parse("a.+").is_ok());
        assert!(JsonPath::parse("a.99999999999999999999999").is_ok());
        let err = Template::parse("k:{lines.01.code}").unwrap_err();
        assert!(err.contains("array index"), "{err}");
    }

    #[test]
    fn path_segments_limit_at_max_and_max_plus_one() {
        let at_max = vec!["a"; PATH_SEGMENTS_MAX].join(".");
        assert!(JsonPath::parse(&at_max).is_ok());
        let over = vec!["a"; PATH_SEGMENTS_MAX + 1].join(".");
        assert!(JsonPath::parse(&over).is_err());
    }

    #[test]
    fn template_renders_strings_numbers_and_escapes() {
        let t = Template::parse("customer:{customerNumber}/{c.name}{{x}}").unwrap();
        let doc = json!({"customerNumber": 103, "c": {"name": "Atelier"}});
        assert_eq!(t.render(&doc).unwrap(), "customer:103/Atelier{x}");
        assert!(t.render(&json!({"customerNumber": null})).is_err());
        assert!(
            t.render(&json!({"customerNumber": [1], "c": {"name": "a"}}))
                .is_err()
        );
    }

    #[test]
    fn template_rejects_bad_braces() {
        assert!(Template::parse("a{b").is_err());
        assert!(Template::parse("a}b").is_err());
        assert!(Template::parse("a{}").is_err());
        assert!(Template::parse("a{b{c}}").is_err());
        assert!(Template::parse("").is_err());
    }

    #[test]
    fn template_bytes_limit_at_max_and_max_plus_one() {
        assert!(Template::parse(&"k".repeat(TEMPLATE_BYTES_MAX)).is_ok());
        assert!(Template::parse(&"k".repeat(TEMPLATE_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn template_output_limit_at_max_and_max_plus_one() {
        let t = Template::parse("{v}").unwrap();
        let at_max = json!({"v": "x".repeat(TEMPLATE_OUTPUT_BYTES_MAX)});
        assert!(t.render(&at_max).is_ok());
        let over = json!({"v": "x".repeat(TEMPLATE_OUTPUT_BYTES_MAX + 1)});
        assert!(t.render(&over).is_err());
    }
}
