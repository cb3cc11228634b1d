//! `$out`, the last stage of a pipeline: replaces a collection with the pipeline's output (as
//! MongoDB 7.0's `document_source_out.cpp`). The documents go into a new collection
//! `tmp.agg_out.<uuid>` of the target's database carrying the target's indexes, which is then
//! renamed over the target: all of it in one batch, so a failure (a duplicate key) leaves the
//! target as it was, and an empty output still creates or empties the target.

use bson::{Bson, Document};

use super::super::document;
use super::super::error::{Error, Result};
use super::super::query;
use super::super::{History, MemoryBudget, check_collection_name, check_database_name};
use super::expr;

/// Databases `$out` and `$merge` may not write to (MongoDB's internal ones).
const INTERNAL_DATABASES: &[&str] = &["admin", "local", "config"];

/// Checks a write stage's target the way MongoDB checks `$out`'s and `$merge`'s: a collection
/// named `system.…` is code `special` ("Can't $out to special collection: …", `verb` being how
/// the message starts and `stage` the stage's name without `$`), a database of
/// [`INTERNAL_DATABASES`] code `internal`; then the name rules of every collection.
pub(super) fn check_target(
    db: &str,
    coll: &str,
    verb: &str,
    stage: &str,
    special: i32,
    internal: i32,
) -> Result<()> {
    if coll.starts_with("system.") {
        return Err(expr::parse_error(
            special,
            format!("{verb} ${stage} to special collection: {coll}"),
        ));
    }
    if INTERNAL_DATABASES.contains(&db) {
        return Err(expr::parse_error(
            internal,
            format!("{verb} ${stage} to internal database: {db}"),
        ));
    }
    check_collection_name(db, coll)
}

/// A parsed `$out`: the collection it replaces.
#[derive(Debug)]
pub(super) struct Out {
    db: String,
    coll: String,
}

impl Out {
    /// Parses `{$out: "coll"}` or `{$out: {db, coll}}`; `db` is the aggregation's database.
    ///
    /// # Errors
    /// MongoDB's codes: 16990 for the argument's type, 40415 for an unknown field, 40414 for a
    /// missing `db` or `coll`, 14 for one that is not a string, 73 for an empty collection name
    /// or an invalid database name (MongoDB's text, before the other checks), 17385 for
    /// a `system.` collection, 31321 for `admin`, `local` or `config`; the name rules of
    /// [`check_collection_name`].
    pub(super) fn parse(arg: &Bson, db: &str) -> Result<Self> {
        let (db, coll) = match arg {
            Bson::String(coll) => (db.to_owned(), coll.clone()),
            Bson::Document(spec) => {
                let (mut db, mut coll) = (None, None);
                for (field, value) in spec {
                    let slot = match field.as_str() {
                        "db" => &mut db,
                        "coll" => &mut coll,
                        "timeseries" => {
                            return Err(Error::Unsupported("$out to a time series".into()));
                        }
                        _ => {
                            return Err(expr::parse_error(
                                40415,
                                format!("BSON field '$out.{field}' is an unknown field."),
                            ));
                        }
                    };
                    let Bson::String(name) = value else {
                        return Err(expr::parse_error(
                            14,
                            format!(
                                "BSON field '$out.{field}' is the wrong type '{}', expected type 'string'",
                                query::type_name(Some(value))
                            ),
                        ));
                    };
                    *slot = Some(name.clone());
                }
                let missing = |field: &str| {
                    expr::parse_error(
                        40414,
                        format!("BSON field '$out.{field}' is missing but a required field"),
                    )
                };
                let coll = coll.ok_or_else(|| missing("coll"))?;
                (db.ok_or_else(|| missing("db"))?, coll)
            }
            other => {
                return Err(expr::parse_error(
                    16990,
                    format!(
                        "$out only supports a string or object argument, but found {}",
                        query::type_name(Some(other))
                    ),
                ));
            }
        };
        // MongoDB's `NamespaceString::isValid`: a valid database name and a collection name.
        if coll.is_empty() || check_database_name(&db).is_err() {
            return Err(expr::parse_error(
                73,
                format!("Invalid $out target namespace, {db}.{coll}"),
            ));
        }
        check_target(&db, &coll, "Can't", "out", 17385, 31321)?;
        Ok(Self { db, coll })
    }

    /// Replaces the target collection with `docs` (a document without `_id` gets one), in one
    /// batch; the documents count against `held` (a blocking stage's [`MemoryBudget`]: code
    /// 292 past it).
    ///
    /// # Errors
    /// 11000 for two documents with one `_id` (or one key of a unique index of the target),
    /// naming the temporary collection, as MongoDB does; the writes' own errors. Nothing is
    /// written then.
    pub(super) fn run(
        &self,
        history: &History,
        docs: Vec<Document>,
        mut held: MemoryBudget,
    ) -> Result<()> {
        for d in &docs {
            // The batch holds every document until it commits: a blocking stage's budget.
            held.charge(document::bson_size(d))?;
        }
        history.replace_collection(&self.db, &self.coll, docs)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use super::*;
    use bson::doc;

    fn code(arg: Bson) -> i32 {
        match Out::parse(&arg, "d") {
            Err(Error::InvalidExpression { code, .. }) => code,
            other => panic!("{arg}: {other:?}"),
        }
    }

    #[test]
    fn parses_mongodbs_forms_and_refuses_the_rest_with_its_codes() {
        let out = Out::parse(&Bson::String("t".into()), "d").unwrap();
        assert_eq!((out.db.as_str(), out.coll.as_str()), ("d", "t"));
        let out = Out::parse(&Bson::Document(doc! {"db": "e", "coll": "u"}), "d").unwrap();
        assert_eq!((out.db.as_str(), out.coll.as_str()), ("e", "u"));
        assert_eq!(code(Bson::Int32(1)), 16990);
        assert_eq!(code(Bson::Array(vec![])), 16990);
        assert_eq!(code(Bson::Document(doc! {"coll": "x"})), 40414);
        assert_eq!(code(Bson::Document(doc! {"db": "x"})), 40414);
        assert_eq!(
            code(Bson::Document(doc! {"db": "d", "coll": "x", "foo": 1})),
            40415
        );
        assert_eq!(code(Bson::Document(doc! {"db": "d", "coll": 1})), 14);
        assert_eq!(code(Bson::String(String::new())), 73);
        assert_eq!(code(Bson::String("system.x".into())), 17385);
        assert_eq!(
            code(Bson::Document(doc! {"db": "admin", "coll": "users"})),
            31321
        );
        assert_eq!(
            code(Bson::Document(doc! {"db": "config", "coll": "x"})),
            31321
        );
        let Err(Error::InvalidExpression { message, .. }) =
            Out::parse(&Bson::String("system.x".into()), "d")
        else {
            panic!("system.x accepted")
        };
        assert_eq!(message, "Can't $out to special collection: system.x");
    }
}
