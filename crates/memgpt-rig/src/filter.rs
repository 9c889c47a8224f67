//! rig's filters ([`rig::vector_store::request::Filter`]) as this library's typed filters:
//! every one is applied by the database, or refused with a [`FilterError`] — never
//! dropped.
//!
//! | rig | here |
//! |---|---|
//! | `eq("data_source", "s")`, `eq("doc_id", "UUID")`, `eq("id", "UUID")` | the column equals the value |
//! | `gt` / `lt` / `eq("created_at", "RFC 3339")` | `created_at` after / before / at the instant |
//! | `eq` / `gt` / `lt(key, value)`, any other key | the metadata key (dots separate nested keys: `author.name`) compared with a JSON string, number, boolean or (`eq` only) `null` |
//! | `and`, `or` | both, either |
//!
//! Refused: `gt` / `lt` on `data_source`, `doc_id` or `id`; a column compared with a value
//! of the wrong type (not a string, not a UUID, not an instant); arrays and objects as
//! values; empty keys. What the database itself cannot apply exactly (numbers past 2^53,
//! order tests of booleans, …) is refused by the call as
//! [`Error::InvalidInput`](memgpt_core::Error::InvalidInput).

use memgpt_core::chrono::{DateTime, Utc};
use memgpt_core::filter::{Cmp, Scalar};
use memgpt_core::{Column, Filter};
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
        RigFilter::And(a, b) => Filter::and([translate(a)?, translate(b)?]),
        RigFilter::Or(a, b) => Filter::or([translate(a)?, translate(b)?]),
    })
}

fn leaf(key: &str, op: Op, value: &Value) -> Result<Filter, FilterError> {
    match key {
        "data_source" => column(key, op, Column::DataSource, text(key, value)?.into()),
        "doc_id" => column(key, op, Column::DocId, uuid(key, value)?.into()),
        "id" => column(key, op, Column::Id, uuid(key, value)?.into()),
        "created_at" => {
            let at = instant(value)?;
            Ok(match op {
                Op::Eq => Filter::and([
                    Filter::created_at(Cmp::Ge, at),
                    Filter::created_at(Cmp::Le, at),
                ]),
                Op::Gt => Filter::created_at(Cmp::Gt, at),
                Op::Lt => Filter::created_at(Cmp::Lt, at),
            })
        }
        _ => {
            if key.split('.').any(str::is_empty) {
                return Err(FilterError::Must(
                    key.to_owned(),
                    "name a metadata key: no empty part between dots".to_owned(),
                ));
            }
            let metadata = Filter::metadata_path(key.split('.'));
            let value = scalar(key, op, value)?;
            Ok(match op {
                Op::Eq => metadata.eq(value),
                Op::Gt => metadata.gt(value),
                Op::Lt => metadata.lt(value),
            })
        }
    }
}

fn column(
    key: &str,
    op: Op,
    column: Column,
    value: memgpt_core::FilterValue,
) -> Result<Filter, FilterError> {
    match op {
        Op::Eq => Ok(Filter::eq(column, value)),
        Op::Gt | Op::Lt => Err(FilterError::Must(
            key.to_owned(),
            format!("be compared with eq, not {}", op.name()),
        )),
    }
}

fn text(key: &str, value: &Value) -> Result<String, FilterError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(expected(key, "a string", other)),
    }
}

fn uuid(key: &str, value: &Value) -> Result<Uuid, FilterError> {
    match value {
        Value::String(s) => s.parse().map_err(|_| expected(key, "a UUID", value)),
        other => Err(expected(key, "a UUID", other)),
    }
}

fn instant(value: &Value) -> Result<DateTime<Utc>, FilterError> {
    match value {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| expected("created_at", "an RFC 3339 instant", value)),
        other => Err(expected("created_at", "an RFC 3339 instant", other)),
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
