//! The metadata side of filters: the scalars a test compares with, the tests, and the key
//! a caller names ([`Filter::metadata`]).

use super::{Filter, Kind, MAX_FILTER_DEPTH};
use crate::error::{Error, Result};
use crate::table::TableType;

/// A JSON scalar a metadata filter compares with. Numbers compare as numbers (`1` equals
/// `1.0`), text as text byte by byte (UTF-8 order); a number never equals text, so `"5"`
/// stored as a string is not `5`.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// JSON `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number: finite and below 2^53 in magnitude (where every backend compares the
    /// same way).
    Number(f64),
    /// A string.
    Text(String),
}

impl From<bool> for Scalar {
    fn from(v: bool) -> Self {
        Scalar::Bool(v)
    }
}

impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Number(v)
    }
}

impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Number(v as f64)
    }
}

impl From<i32> for Scalar {
    fn from(v: i32) -> Self {
        Scalar::Number(f64::from(v))
    }
}

impl From<&str> for Scalar {
    fn from(v: &str) -> Self {
        Scalar::Text(v.to_owned())
    }
}

impl From<String> for Scalar {
    fn from(v: String) -> Self {
        Scalar::Text(v)
    }
}

impl Scalar {
    /// The scalar as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Null => serde_json::Value::Null,
            Scalar::Bool(b) => serde_json::Value::Bool(*b),
            Scalar::Number(n) => serde_json::Number::from_f64(*n)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Scalar::Text(t) => serde_json::Value::String(t.clone()),
        }
    }

    fn check(&self, field: &str) -> Result<()> {
        match self {
            Scalar::Number(n) if !n.is_finite() => {
                Err(Error::invalid(field, format!("{n} is not a finite number")))
            }
            Scalar::Number(n) if n.abs() >= MAX_EXACT_INTEGER => Err(Error::invalid(
                field,
                format!("{n} is not below 2^53 in magnitude: it would not compare exactly"),
            )),
            Scalar::Text(t) if t.contains('\0') => {
                Err(Error::invalid(field, "text contains a NUL byte"))
            }
            _ => Ok(()),
        }
    }
}

/// Filters compare equal as values (a NaN, which no filter may hold, would not).
impl Eq for Scalar {}

/// 2^53: the integers every backend compares exactly.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// How a metadata value is tested. A missing key, or a value of another JSON type, passes
/// no test but [`Filter::not`] of one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataTest {
    /// The value equals the scalar (a `Null` scalar: the value is JSON `null`).
    Eq(Scalar),
    /// The value is a number (or string) below the scalar's.
    Lt(Scalar),
    /// ... at most the scalar.
    Le(Scalar),
    /// ... above the scalar.
    Gt(Scalar),
    /// ... at least the scalar.
    Ge(Scalar),
    /// The value equals one of the scalars (none: no record).
    In(Vec<Scalar>),
    /// The value is an array holding the scalar.
    Contains(Scalar),
    /// The key exists (its value may be `null`).
    Exists,
}

/// A `metadata_` key of passages and documents, to test ([`Filter::metadata`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataKey {
    pub(super) path: Vec<String>,
}

impl MetadataKey {
    fn test(self, test: MetadataTest) -> Filter {
        Filter {
            kind: Kind::Metadata {
                path: self.path,
                test,
            },
        }
    }

    /// The value equals `v`.
    pub fn eq(self, v: impl Into<Scalar>) -> Filter {
        self.test(MetadataTest::Eq(v.into()))
    }

    /// Not [`eq`](Self::eq): records without the key, or with another value or type.
    pub fn ne(self, v: impl Into<Scalar>) -> Filter {
        Filter::not(self.eq(v))
    }

    /// The value is a number (or string) below `v`.
    pub fn lt(self, v: impl Into<Scalar>) -> Filter {
        self.test(MetadataTest::Lt(v.into()))
    }

    /// ... at most `v`.
    pub fn le(self, v: impl Into<Scalar>) -> Filter {
        self.test(MetadataTest::Le(v.into()))
    }

    /// ... above `v`.
    pub fn gt(self, v: impl Into<Scalar>) -> Filter {
        self.test(MetadataTest::Gt(v.into()))
    }

    /// ... at least `v`.
    pub fn ge(self, v: impl Into<Scalar>) -> Filter {
        self.test(MetadataTest::Ge(v.into()))
    }

    /// The value equals one of `values`.
    pub fn is_in<V: Into<Scalar>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.test(MetadataTest::In(
            values.into_iter().map(Into::into).collect(),
        ))
    }

    /// The value is an array holding `v`.
    pub fn contains(self, v: impl Into<Scalar>) -> Filter {
        self.test(MetadataTest::Contains(v.into()))
    }

    /// The key exists (its value may be `null`).
    pub fn exists(self) -> Filter {
        self.test(MetadataTest::Exists)
    }
}

pub(super) fn check_metadata(path: &[String], test: &MetadataTest, table: TableType) -> Result<()> {
    let field = format!("filter.metadata_.{}", path.join("."));
    if table == TableType::RecallMemory {
        return Err(Error::invalid(field, format!("{table} has no metadata_")));
    }
    if path.is_empty() || path.len() > MAX_FILTER_DEPTH {
        return Err(Error::invalid(
            field,
            format!("a key path holds 1 to {MAX_FILTER_DEPTH} keys"),
        ));
    }
    if let Some(bad) = path
        .iter()
        .find(|k| k.is_empty() || k.contains(['"', '\\', '\0']))
    {
        return Err(Error::invalid(
            field,
            format!(
                "the key {bad:?} is empty or holds a quote, backslash or NUL, which \
                 SQLite's JSON paths cannot address"
            ),
        ));
    }
    match test {
        MetadataTest::Eq(v) | MetadataTest::Contains(v) => v.check(&field),
        MetadataTest::Lt(v) | MetadataTest::Le(v) | MetadataTest::Gt(v) | MetadataTest::Ge(v) => {
            match v {
                Scalar::Number(_) | Scalar::Text(_) => v.check(&field),
                _ => Err(Error::invalid(field, "orders numbers and strings only")),
            }
        }
        MetadataTest::In(vs) => vs.iter().try_for_each(|v| v.check(&field)),
        MetadataTest::Exists => Ok(()),
    }
}
