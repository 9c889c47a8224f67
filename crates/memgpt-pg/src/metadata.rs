//! Tests of `metadata_` keys on PostgreSQL. MemGPT's column is `json`; every test reads
//! its `jsonb` form, `memgpt_metadata(metadata_)` (migration 000008: NULL for a value
//! `jsonb` cannot hold, a `\u0000` escape, which then matches no test instead of failing
//! the query). Equality, `is_in` and `contains` are containment (`… @> '{"key": value}'`),
//! which that migration's GIN index (`jsonb_path_ops`) serves; order tests read the value
//! at the path (`->` key by key) by its JSON type. Every path and value is bound.

use memgpt_core::filter::{MetadataTest, Scalar};
use memgpt_core::statement::Param;
use serde_json::{Map, Value};

use crate::sql::Sql;

/// Appends `test` of the value at `path`: under a `NOT` a boolean that is never NULL;
/// elsewhere containment stays bare (`memgpt_metadata(metadata_) @> …`, NULL where the
/// column is), the form the GIN index serves.
pub(crate) fn test(sql: &mut Sql, path: &[String], test: &MetadataTest, under_not: bool) {
    let bare = !under_not && matches!(test, MetadataTest::Eq(_) | MetadataTest::Contains(_));
    if !bare {
        sql.push("COALESCE(");
    }
    match test {
        MetadataTest::Eq(v) => contains(sql, path, v.to_json()),
        MetadataTest::Lt(v) => order(sql, path, "<", v),
        MetadataTest::Le(v) => order(sql, path, "<=", v),
        MetadataTest::Gt(v) => order(sql, path, ">", v),
        MetadataTest::Ge(v) => order(sql, path, ">=", v),
        MetadataTest::Contains(v) => contains(sql, path, Value::Array(vec![v.to_json()])),
        MetadataTest::Exists => {
            value_at(sql, path);
            sql.push(" IS NOT NULL");
        }
        // `In` never comes here (core renders it as equalities ORed); a test this backend
        // cannot apply matches nothing (`validate_for` refuses any not listed above).
        _ => {
            sql.push("false");
        }
    }
    if !bare {
        sql.push(", false)");
    }
}

/// `memgpt_metadata(metadata_) @> '{"a": {"b": inner}}'`: the value at the path is `inner` (a
/// scalar: equal to it, numbers as numbers; an array of one scalar: an array holding it).
fn contains(sql: &mut Sql, path: &[String], inner: Value) {
    let document = path.iter().rev().fold(inner, |v, key| {
        let mut m = Map::new();
        m.insert(key.clone(), v);
        Value::Object(m)
    });
    sql.push("memgpt_metadata(metadata_) @> ")
        .param(Param::Text(Some(document.to_string())))
        .push("::jsonb");
}

/// The value at the path (`jsonb`, NULL when missing): `->` with each key as text, which
/// follows object keys only (`#>` would read a key of digits as an array index, where
/// SQLite's `$."0"` reads an object key).
fn value_at(sql: &mut Sql, path: &[String]) {
    sql.push("(memgpt_metadata(metadata_)");
    for key in path {
        sql.push(" -> ")
            .param(Param::Text(Some(key.clone())))
            .push("::text");
    }
    sql.push(")");
}

/// A number compared as `float8`, a string as text in byte order (`COLLATE "C"`, as
/// SQLite's `BINARY`), anything else (another type, a missing key) false.
fn order(sql: &mut Sql, path: &[String], op: &str, v: &Scalar) {
    let ty = match v {
        Scalar::Number(_) => "number",
        _ => "string",
    };
    sql.push("CASE WHEN jsonb_typeof(");
    value_at(sql, path);
    sql.push(&format!(") = '{ty}' THEN "));
    match v {
        Scalar::Number(n) => {
            value_at(sql, path);
            sql.push(&format!("::float8 {op} "))
                .param(Param::Text(Some(n.to_string())))
                .push("::float8");
        }
        Scalar::Text(t) => {
            sql.push("(");
            value_at(sql, path);
            sql.push(&format!(" #>> '{{}}') COLLATE \"C\" {op} "))
                .param(Param::Text(Some(t.clone())));
        }
        Scalar::Null | Scalar::Bool(_) => {
            sql.push("false");
        }
    }
    sql.push(" ELSE false END");
}
