//! rig's filters ([`rig::vector_store::request::Filter`]) as this library's typed filters:
//! every one is applied by the database, or refused with a [`FilterError`] — never
//! dropped.
//!
//! As in rig's own stores, a key names a field of the document (a top-level key of the
//! passage's metadata, taken whole: `v1.2` is one key). A key starting with `@` names a
//! column of the passage instead:
//!
//! | rig | here |
//! |---|---|
//! | `eq / gt / lt(key, value)` | the metadata key compared with a JSON string, number, boolean or (`eq` only) `null` |
//! | `eq("@data_source", "s")`, `eq("@embedding_model", "m")` | the column equals the string (`null`: has none) |
//! | `eq("@id", "UUID")`, `eq("@doc_id", "UUID")`, `eq("@agent_id", "UUID")` | the column equals the UUID (`@doc_id`, `@agent_id`: `null` for none) |
//! | `gt` / `lt` / `eq("@created_at", "RFC 3339")` | created after / before / at the instant |
//! | `and`, `or` | all, any (chains of one operator become one test of all their parts) |
//!
//! Refused with a [`FilterError`]: `gt` / `lt` on a column other than `@created_at`; a
//! column compared with a value of the wrong type; an unknown `@` column; arrays and objects
//! as values; an empty key, or one holding `"`, `\` or NUL. What the database itself cannot
//! apply exactly (numbers past 2^53, order tests of booleans, more than 256 tests) is refused
//! by the call as [`Error::InvalidInput`](memgpt_core::Error::InvalidInput), inside
//! `VectorStoreError::DatastoreError`.

use memgpt_core::chrono::{DateTime, Utc};
use memgpt_core::filter::{Cmp, Scalar};
use memgpt_core::{Column, Filter, FilterValue};
use rig::vector_store::request::{Filter as RigFilter, FilterError};
use serde_json::Value;
use uuid::Uuid;

/// rig's filter type, which this index takes (JSON values, as rig's dynamic context
/// passes them).
pub type RigJsonFilter = RigFilter<Value>;

/// How a leaf compares.
#[derive(Clone, Copy)]
enum Op {
    Eq,
    Gt,
    Lt,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Gt => "gt",
            Op::Lt => "lt",
        }
    }
}

/// `filter` as one typed filter.
///
/// # Errors
/// A [`FilterError`] naming the part that has no exact translation.
pub fn translate(filter: &RigJsonFilter) -> Result<Filter, FilterError> {
    Ok(match filter {
        RigFilter::Eq(key, value) => leaf(key, Op::Eq, value)?,
        RigFilter::Gt(key, value) => leaf(key, Op::Gt, value)?,
        RigFilter::Lt(key, value) => leaf(key, Op::Lt, value)?,
        RigFilter::And(..) => {
            let mut parts = Vec::new();
            flatten(filter, true, &mut parts)?;
            Filter::and(parts)
        }
        RigFilter::Or(..) => {
            let mut parts = Vec::new();
            flatten(filter, false, &mut parts)?;
            Filter::or(parts)
        }
    })
}

/// The parts of a chain of `and`s (`all`) or of `or`s, translated: rig builds chains as
/// nested pairs, which would count as deep nesting.
fn flatten(filter: &RigJsonFilter, all: bool, parts: &mut Vec<Filter>) -> Result<(), FilterError> {
    match filter {
        RigFilter::And(a, b) if all => {
            flatten(a, all, parts)?;
            flatten(b, all, parts)
        }
        RigFilter::Or(a, b) if !all => {
            flatten(a, all, parts)?;
            flatten(b, all, parts)
        }
        other => {
            parts.push(translate(other)?);
            Ok(())
        }
    }
}

fn leaf(key: &str, op: Op, value: &Value) -> Result<Filter, FilterError> {
    if key.is_empty() || key.contains(['"', '\\', '\0']) {
        return Err(FilterError::Must(
            format!("{key:?}"),
            "be a key without quotes, backslashes or NUL".to_owned(),
        ));
    }
    let Some(name) = key.strip_prefix('@') else {
        let metadata = Filter::metadata(key);
        let value = scalar(key, op, value)?;
        return Ok(match op {
            Op::Eq => metadata.eq(value),
            Op::Gt => metadata.gt(value),
            Op::Lt => metadata.lt(value),
        });
    };
    if name == "created_at" {
        let at = instant(key, value)?;
        return Ok(match op {
            Op::Eq => Filter::and([
                Filter::created_at(Cmp::Ge, at),
                Filter::created_at(Cmp::Le, at),
            ]),
            Op::Gt => Filter::created_at(Cmp::Gt, at),
            Op::Lt => Filter::created_at(Cmp::Lt, at),
        });
    }
    let column = match name {
        "id" => Column::Id,
        "doc_id" => Column::DocId,
        "agent_id" => Column::AgentId,
        "data_source" => Column::DataSource,
        "embedding_model" => Column::EmbeddingModel,
        _ => {
            return Err(FilterError::Must(
                key.to_owned(),
                "name a column: @id, @doc_id, @agent_id, @data_source, @embedding_model, \
                 @created_at"
                    .to_owned(),
            ))
        }
    };
    if !matches!(op, Op::Eq) {
        return Err(FilterError::Must(
            key.to_owned(),
            format!("be compared with eq, not {}", op.name()),
        ));
    }
    match value {
        Value::Null if column != Column::Id => Ok(Filter::is_null(column)),
        Value::String(s) if column.is_uuid() => s
            .parse::<Uuid>()
            .map(|u| Filter::eq(column, FilterValue::from(u)))
            .map_err(|_| expected(key, "a UUID", value)),
        Value::String(s) => Ok(Filter::eq(column, s.as_str())),
        other if column.is_uuid() => Err(expected(key, "a UUID", other)),
        other => Err(expected(key, "a string", other)),
    }
}

fn instant(key: &str, value: &Value) -> Result<DateTime<Utc>, FilterError> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| expected(key, "an RFC 3339 instant", value)),
        other => Err(expected(key, "an RFC 3339 instant", other)),
    }
}

fn scalar(key: &str, op: Op, value: &Value) -> Result<Scalar, FilterError> {
    match value {
        Value::Null if matches!(op, Op::Eq) => Ok(Scalar::Null),
        Value::Bool(b) => Ok(Scalar::Bool(*b)),
        Value::Number(n) => n
            .as_f64()
            .map(Scalar::Number)
            .ok_or_else(|| expected(key, "a number", value)),
        Value::String(s) => Ok(Scalar::Text(s.clone())),
        other => Err(FilterError::TypeError(format!(
            "{key} {} {other}: compare with a string, number, boolean or (eq) null",
            op.name()
        ))),
    }
}

fn expected(key: &str, what: &str, got: &Value) -> FilterError {
    FilterError::Expected {
        expected: format!("{what} for {key}"),
        got: got.to_string(),
    }
}
