//! From configuration to a checked flow: every field validated (errors name the flow and the
//! field), templates, paths and regexes parsed, spec files read. Also the reload diff.
//!
//! Nothing here starts a task or calls an engine; compiling JOLT specs needs the transform engine
//! and happens in `runner.rs` on top of a [`FlowPlan`].

use std::collections::BTreeSet;

use serde_json::Value;

use super::config::CacheEncoding;
use super::config::{FlowConfig, HistoryMode, PipelineConfig, SinkConfig, TransformStep};
use super::error::{Error, Result};
use super::path::{JsonPath, Template};
use super::route::Predicate;
use super::{
    BATCH_RECORDS_MAX, CONDITIONS_PER_ROUTE_MAX, FLOW_NAME_BYTES_MAX, FLOWS_MAX, GROUP_BYTES_MAX,
    NAME_IN_COLLECTION_BYTES_MAX, POLL_WAIT_MS_MAX, QUEUE_BATCHES_MAX, ROUTES_PER_FLOW_MAX,
    SINKS_PER_FLOW_MAX, SPEC_BYTES_MAX, TOPIC_NAME_BYTES_MAX, TRANSFORMS_PER_FLOW_MAX, TTL_MS_MAX,
};

/// A flow whose configuration passed every check, with its spec files read.
#[derive(Debug, Clone)]
pub struct FlowPlan {
    /// The configuration as given.
    config: FlowConfig,
    /// One resolved JOLT spec per transform step (inline JSON parsed, files read).
    specs: Vec<Value>,
    /// Routes in declaration order.
    pub(crate) routes: Vec<PlannedRoute>,
    /// Sinks in declaration order.
    pub(crate) sinks: Vec<PlannedSink>,
    /// Indexes into `sinks` for records no route matched.
    pub(crate) unmatched: Vec<usize>,
}

/// A checked route.
#[derive(Debug, Clone)]
pub(crate) struct PlannedRoute {
    /// All must hold.
    pub(crate) conditions: Vec<Predicate>,
    /// Indexes into the flow's sinks.
    pub(crate) sinks: Vec<usize>,
}

/// A checked sink.
#[derive(Debug, Clone)]
pub(crate) struct PlannedSink {
    /// The sink's name, for dead-letter messages.
    pub(crate) name: String,
    /// What it writes to.
    pub(crate) kind: PlannedSinkKind,
}

/// What a checked sink writes to.
#[derive(Debug, Clone)]
pub(crate) enum PlannedSinkKind {
    Cache {
        key: Template,
        value: Option<JsonPath>,
        encoding: CacheEncoding,
        ttl_ms: Option<u64>,
    },
    History {
        db: String,
        collection: String,
        upsert_key: Option<Template>,
    },
    Topic {
        topic: String,
        key: Option<Template>,
    },
}

impl FlowPlan {
    /// The flow's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration it was planned from.
    #[must_use]
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The resolved JOLT specs, one per transform step.
    #[must_use]
    pub fn specs(&self) -> &[Value] {
        &self.specs
    }

    /// Whether `other` would run exactly like this flow (same configuration and same spec
    /// contents, so an edited spec file counts as a change).
    #[must_use]
    pub fn same_as(&self, other: &Self) -> bool {
        self.config == other.config && self.specs == other.specs
    }
}

/// Checks every flow of `config` and reads its spec files.
///
/// # Errors
/// The first invalid field, as [`Error::Invalid`] naming the flow and the field, or
/// [`Error::SpecFile`] for an unreadable spec file.
pub fn plan(config: &PipelineConfig) -> Result<Vec<FlowPlan>> {
    if config.flows.len() > FLOWS_MAX {
        return Err(invalid(
            "#0",
            "flows",
            format!("{} flows (at most {FLOWS_MAX})", config.flows.len()),
        ));
    }
    let mut names = BTreeSet::new();
    let mut groups = BTreeSet::new();
    let mut plans = Vec::with_capacity(config.flows.len());
    for (i, flow) in config.flows.iter().enumerate() {
        check_name(&flow.name).map_err(|r| invalid(&format!("#{i}"), "name", r))?;
        if !names.insert(flow.name.as_str()) {
            return Err(invalid(
                &flow.name,
                "name",
                "another flow has the same name".into(),
            ));
        }
        if !groups.insert(flow.source.group.as_str()) {
            return Err(invalid(
                &flow.name,
                "source.group",
                format!("group `{}` is used by another flow", flow.source.group),
            ));
        }
        plans.push(plan_flow(flow)?);
    }
    Ok(plans)
}

/// Checks one flow (its name is checked by the caller).
fn plan_flow(flow: &FlowConfig) -> Result<FlowPlan> {
    let name = flow.name.as_str();
    let bad = |field: &str, reason: String| invalid(name, field, reason);
    check_topic(&flow.source.topic).map_err(|r| bad("source.topic", r))?;
    if flow.source.group.is_empty() || flow.source.group.len() > GROUP_BYTES_MAX {
        return Err(bad(
            "source.group",
            format!(
                "must be 1 to {GROUP_BYTES_MAX} bytes, is {}",
                flow.source.group.len()
            ),
        ));
    }
    check_topic(&flow.dead_letter).map_err(|r| bad("dead_letter", r))?;
    if flow.dead_letter == flow.source.topic {
        return Err(bad(
            "dead_letter",
            "must differ from the source topic".into(),
        ));
    }
    check_range(
        "batch_records",
        u64::from(flow.batch_records),
        BATCH_RECORDS_MAX as u64,
    )
    .map_err(|r| bad("batch_records", r))?;
    check_range(
        "queue_batches",
        u64::from(flow.queue_batches),
        QUEUE_BATCHES_MAX as u64,
    )
    .map_err(|r| bad("queue_batches", r))?;
    check_range("poll_wait_ms", flow.poll_wait_ms, POLL_WAIT_MS_MAX)
        .map_err(|r| bad("poll_wait_ms", r))?;

    if flow.transforms.len() > TRANSFORMS_PER_FLOW_MAX {
        return Err(bad(
            "transforms",
            format!(
                "{} steps (at most {TRANSFORMS_PER_FLOW_MAX})",
                flow.transforms.len()
            ),
        ));
    }
    let specs = flow
        .transforms
        .iter()
        .enumerate()
        .map(|(i, step)| resolve_spec(name, &format!("transforms[{i}]"), step))
        .collect::<Result<Vec<_>>>()?;

    if flow.sinks.is_empty() || flow.sinks.len() > SINKS_PER_FLOW_MAX {
        return Err(bad(
            "sinks",
            format!("{} sinks (1 to {SINKS_PER_FLOW_MAX})", flow.sinks.len()),
        ));
    }
    let mut sinks = Vec::with_capacity(flow.sinks.len());
    for (i, sink) in flow.sinks.iter().enumerate() {
        if flow.sinks.iter().take(i).any(|s| s.name == sink.name) {
            return Err(bad(
                &format!("sinks[{}].name", sink.name),
                "another sink has the same name".into(),
            ));
        }
        sinks.push(plan_sink(flow, sink)?);
    }
    let sink_index = |field: &str, sink: &str| {
        flow.sinks
            .iter()
            .position(|s| s.name == sink)
            .ok_or_else(|| bad(field, format!("no sink is named `{sink}`")))
    };

    if flow.routes.len() > ROUTES_PER_FLOW_MAX {
        return Err(bad(
            "routes",
            format!(
                "{} routes (at most {ROUTES_PER_FLOW_MAX})",
                flow.routes.len()
            ),
        ));
    }
    let mut routes = Vec::with_capacity(flow.routes.len());
    for (i, route) in flow.routes.iter().enumerate() {
        let field = format!("routes[{}]", route.name);
        check_name(&route.name).map_err(|r| bad(&format!("routes[{i}].name"), r))?;
        if route.name == "unmatched" {
            return Err(bad(
                &field,
                "`unmatched` is reserved; use the flow's `unmatched` field".into(),
            ));
        }
        if flow.routes.iter().take(i).any(|r| r.name == route.name) {
            return Err(bad(&field, "another route has the same name".into()));
        }
        if route.when.len() > CONDITIONS_PER_ROUTE_MAX {
            return Err(bad(
                &format!("{field}.when"),
                format!(
                    "{} conditions (at most {CONDITIONS_PER_ROUTE_MAX})",
                    route.when.len()
                ),
            ));
        }
        let conditions = route
            .when
            .iter()
            .enumerate()
            .map(|(j, c)| {
                Predicate::parse(c).map_err(|(op, r)| bad(&format!("{field}.when[{j}].{op}"), r))
            })
            .collect::<Result<Vec<_>>>()?;
        if route.sinks.is_empty() {
            return Err(bad(&format!("{field}.sinks"), "names no sink".into()));
        }
        let targets = route
            .sinks
            .iter()
            .map(|s| sink_index(&format!("{field}.sinks"), s))
            .collect::<Result<Vec<_>>>()?;
        routes.push(PlannedRoute {
            conditions,
            sinks: targets,
        });
    }
    let unmatched = flow
        .unmatched
        .iter()
        .map(|s| sink_index("unmatched", s))
        .collect::<Result<Vec<_>>>()?;
    if !flow.routes.is_empty() {
        for (i, sink) in flow.sinks.iter().enumerate() {
            let used = routes.iter().any(|r| r.sinks.contains(&i)) || unmatched.contains(&i);
            if !used {
                return Err(bad(
                    &format!("sinks[{}]", sink.name),
                    "no route or `unmatched` sends records to this sink".into(),
                ));
            }
        }
    } else if !unmatched.is_empty() {
        return Err(bad("unmatched", "only meaningful with routes".into()));
    }
    Ok(FlowPlan {
        config: flow.clone(),
        specs,
        routes,
        sinks,
        unmatched,
    })
}

/// Checks one sink.
fn plan_sink(flow: &FlowConfig, sink: &SinkConfig) -> Result<PlannedSink> {
    let field = format!("sinks[{}]", sink.name);
    let bad = |sub: &str, reason: String| invalid(&flow.name, &format!("{field}{sub}"), reason);
    check_name(&sink.name).map_err(|r| bad(".name", r))?;
    let kind = match (&sink.cache, &sink.history, &sink.topic) {
        (Some(c), None, None) => {
            let key = Template::parse(&c.key).map_err(|r| bad(".cache.key", r))?;
            let value = c
                .value
                .as_deref()
                .map(JsonPath::parse)
                .transpose()
                .map_err(|r| bad(".cache.value", r))?;
            if let Some(ttl) = c.ttl_ms {
                check_range("ttl_ms", ttl, TTL_MS_MAX).map_err(|r| bad(".cache.ttl_ms", r))?;
            }
            PlannedSinkKind::Cache {
                key,
                value,
                encoding: c.encoding,
                ttl_ms: c.ttl_ms,
            }
        }
        (None, Some(h), None) => {
            let (db, collection) =
                split_collection(&h.collection).map_err(|r| bad(".history.collection", r))?;
            let upsert_key = match (h.mode, &h.key) {
                (HistoryMode::Upsert, Some(key)) => {
                    Some(Template::parse(key).map_err(|r| bad(".history.key", r))?)
                }
                (HistoryMode::Upsert, None) => {
                    return Err(bad(".history.key", "an upsert needs a key template".into()));
                }
                (HistoryMode::Insert, Some(_)) => {
                    return Err(bad(".history.key", "only upserts take a key".into()));
                }
                (HistoryMode::Insert, None) => None,
            };
            PlannedSinkKind::History {
                db,
                collection,
                upsert_key,
            }
        }
        (None, None, Some(t)) => {
            check_topic(&t.topic).map_err(|r| bad(".topic.topic", r))?;
            if t.topic == flow.source.topic {
                return Err(bad(
                    ".topic.topic",
                    "forwarding to the source topic would loop".into(),
                ));
            }
            let key = t
                .key
                .as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(|r| bad(".topic.key", r))?;
            PlannedSinkKind::Topic {
                topic: t.topic.clone(),
                key,
            }
        }
        _ => {
            return Err(bad(
                "",
                "set exactly one of `cache`, `history`, `topic`".into(),
            ));
        }
    };
    Ok(PlannedSink {
        name: sink.name.clone(),
        kind,
    })
}

/// Parses the inline spec or reads the spec file of one transform step.
fn resolve_spec(flow: &str, field: &str, step: &TransformStep) -> Result<Value> {
    let spec = match (&step.jolt, &step.jolt_file) {
        (Some(Value::String(text)), None) => {
            if text.len() > SPEC_BYTES_MAX {
                return Err(invalid(
                    flow,
                    &format!("{field}.jolt"),
                    format!("{} bytes (at most {SPEC_BYTES_MAX})", text.len()),
                ));
            }
            serde_json::from_str(text)
                .map_err(|e| invalid(flow, &format!("{field}.jolt"), format!("not JSON: {e}")))?
        }
        (Some(inline), None) => {
            let len = json_len_up_to(inline, SPEC_BYTES_MAX);
            if len > SPEC_BYTES_MAX {
                return Err(invalid(
                    flow,
                    &format!("{field}.jolt"),
                    format!("over the limit of {SPEC_BYTES_MAX} bytes as JSON text"),
                ));
            }
            inline.clone()
        }
        (None, Some(path)) => {
            let file_field = format!("{field}.jolt_file");
            let spec_file = |source| Error::SpecFile {
                flow: flow.to_owned(),
                field: file_field.clone(),
                path: path.clone(),
                source,
            };
            let text = crate::files::read_text_at_most(path, SPEC_BYTES_MAX).map_err(spec_file)?;
            serde_json::from_str(&text).map_err(|e| {
                invalid(
                    flow,
                    &file_field,
                    format!("{} is not JSON: {e}", path.display()),
                )
            })?
        }
        _ => {
            return Err(invalid(
                flow,
                field,
                "set exactly one of `jolt`, `jolt_file`".into(),
            ));
        }
    };
    if !(spec.is_array() || spec.is_object()) {
        return Err(invalid(
            flow,
            field,
            "a JOLT spec is an array of operations or one operation object".into(),
        ));
    }
    Ok(spec)
}

/// The length of `value` as compact JSON text, counted until it passes `max` (then some
/// length over `max`), so a spec written as TOML values is held to the limit its JSON text is.
fn json_len_up_to(value: &Value, max: usize) -> usize {
    struct Count {
        len: usize,
        max: usize,
    }
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.len = self.len.saturating_add(buf.len());
            if self.len > self.max {
                return Err(std::io::Error::other("past the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count { len: 0, max };
    // An error only ever means the count passed `max`: writing a `Value` cannot fail otherwise.
    let _ = serde_json::to_writer(&mut count, value);
    count.len
}

/// Flow, route and sink names: 1 to [`FLOW_NAME_BYTES_MAX`] bytes of `A-Z a-z 0-9 . _ -`.
fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > FLOW_NAME_BYTES_MAX {
        return Err(format!("`{name}` must be 1 to {FLOW_NAME_BYTES_MAX} bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!("`{name}` may only hold A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

/// Kafka's topic name rule: 1 to 249 bytes of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
fn check_topic(topic: &str) -> std::result::Result<(), String> {
    if topic.is_empty() || topic.len() > TOPIC_NAME_BYTES_MAX || topic == "." || topic == ".." {
        return Err(format!(
            "`{topic}` is not a topic name (1 to {TOPIC_NAME_BYTES_MAX} bytes)"
        ));
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!("topic `{topic}` may only hold A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

/// `db.collection` into its two names (the collection may itself contain dots).
fn split_collection(text: &str) -> std::result::Result<(String, String), String> {
    let (db, collection) = text
        .split_once('.')
        .ok_or_else(|| format!("`{text}` is not of the form db.collection"))?;
    if db.is_empty() || collection.is_empty() {
        return Err(format!("`{text}` is not of the form db.collection"));
    }
    if db.len() > NAME_IN_COLLECTION_BYTES_MAX || collection.len() > NAME_IN_COLLECTION_BYTES_MAX {
        return Err(format!(
            "database and collection names are at most {NAME_IN_COLLECTION_BYTES_MAX} bytes"
        ));
    }
    Ok((db.to_owned(), collection.to_owned()))
}

/// `value` within `1..=max`.
fn check_range(name: &str, value: u64, max: u64) -> std::result::Result<(), String> {
    if value == 0 || value > max {
        return Err(format!("{name} = {value} is outside 1..={max}"));
    }
    Ok(())
}

/// Shorthand for [`Error::Invalid`].
fn invalid(flow: &str, field: &str, reason: String) -> Error {
    Error::Invalid {
        flow: flow.to_owned(),
        field: field.to_owned(),
        reason,
    }
}

/// How a new flow set differs from the running one, by flow name (each list sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowDiff {
    /// In the new set only: started.
    pub added: Vec<String>,
    /// In the old set only: stopped.
    pub removed: Vec<String>,
    /// In both but different: stopped at a committed position, then started again.
    pub changed: Vec<String>,
    /// In both and identical: left running.
    pub unchanged: Vec<String>,
    /// Unchanged flows that had failed and were started again by a reload (filled by
    /// [`Pipeline::reload`](super::Pipeline::reload); [`diff`] leaves it empty).
    pub restarted: Vec<String>,
}

/// Compares two planned flow sets by name.
#[must_use]
pub fn diff(old: &[FlowPlan], new: &[FlowPlan]) -> FlowDiff {
    let mut out = FlowDiff::default();
    for n in new {
        match old.iter().find(|o| o.name() == n.name()) {
            None => out.added.push(n.name().to_owned()),
            Some(o) if o.same_as(n) => out.unchanged.push(n.name().to_owned()),
            Some(_) => out.changed.push(n.name().to_owned()),
        }
    }
    for o in old {
        if !new.iter().any(|n| n.name() == o.name()) {
            out.removed.push(o.name().to_owned());
        }
    }
    for list in [
        &mut out.added,
        &mut out.removed,
        &mut out.changed,
        &mut out.unchanged,
    ] {
        list.sort();
    }
    out
}
