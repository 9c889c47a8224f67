//! Tests of `metadata_` keys with SQLite's JSON functions: `json_type` decides the JSON
//! type, `json_extract` the value, `json_each` an array's elements. Every path and value is
//! bound; a path is `$."key"."key"…` (keys never hold a quote: `Filter::validate_for`).

use memgpt_core::filter::{MetadataTest, Scalar};
use memgpt_core::statement::Param;

use crate::sql::Sql;

/// Appends `test` of the value at `path` as a boolean that is never NULL (no index serves
/// these tests on SQLite: the scope's index finds the rows).
pub(crate) fn test(sql: &mut Sql, path: &[String], test: &MetadataTest) {
    let p = json_path(path);
    sql.push("COALESCE(");
    match test {
        MetadataTest::Eq(v) => typed(sql, &p, "=", v),
        MetadataTest::Lt(v) => typed(sql, &p, "<", v),
        MetadataTest::Le(v) => typed(sql, &p, "<=", v),
        MetadataTest::Gt(v) => typed(sql, &p, ">", v),
        MetadataTest::Ge(v) => typed(sql, &p, ">=", v),
        MetadataTest::Contains(v) => {
            sql.push("(json_type(metadata_, ")
                .param(Param::Text(Some(p.clone())))
                .push(") = 'array' AND EXISTS (SELECT 1 FROM json_each(metadata_, ")
                .param(Param::Text(Some(p)))
                .push(") AS e WHERE ");
            element(sql, "e.type", "e.value", v);
            sql.push("))");
        }
        MetadataTest::Exists => {
            sql.push("json_type(metadata_, ")
                .param(Param::Text(Some(p)))
                .push(") IS NOT NULL");
        }
        // `In` never comes here (core renders it as equalities ORed); a test this backend
        // cannot apply matches nothing (`validate_for` refuses any not listed above).
        _ => {
            sql.push("false");
        }
    }
    sql.push(", false)");
}

/// `json_type(…) <is the scalar's type> AND json_extract(…) <op> <scalar>`.
fn typed(sql: &mut Sql, path: &str, op: &str, v: &Scalar) {
    let ty = |sql: &mut Sql| {
        sql.push("json_type(metadata_, ")
            .param(Param::Text(Some(path.to_owned())))
            .push(")");
    };
    let value = |sql: &mut Sql| {
        sql.push("json_extract(metadata_, ")
            .param(Param::Text(Some(path.to_owned())))
            .push(")");
    };
    sql.push("(");
    ty(sql);
    match v {
        Scalar::Null => {
            sql.push(" = 'null'");
        }
        Scalar::Bool(b) => {
            sql.push(if *b { " = 'true'" } else { " = 'false'" });
        }
        Scalar::Number(n) => {
            sql.push(" IN ('integer', 'real') AND ");
            value(sql);
            sql.push(&format!(" {op} CAST("))
                .param(Param::Text(Some(n.to_string())))
                .push(" AS REAL)");
        }
        Scalar::Text(t) => {
            sql.push(" = 'text' AND ");
            value(sql);
            sql.push(&format!(" {op} "))
                .param(Param::Text(Some(t.clone())));
        }
    }
    sql.push(")");
}

/// An array element (`json_each`'s `type` and `value` columns) equal to the scalar.
fn element(sql: &mut Sql, ty: &str, value: &str, v: &Scalar) {
    match v {
        Scalar::Null => {
            sql.push(&format!("{ty} = 'null'"));
        }
        Scalar::Bool(b) => {
            sql.push(&format!("{ty} = '{b}'"));
        }
        Scalar::Number(n) => {
            sql.push(&format!("{ty} IN ('integer', 'real') AND {value} = CAST("))
                .param(Param::Text(Some(n.to_string())))
                .push(" AS REAL)");
        }
        Scalar::Text(t) => {
            sql.push(&format!("{ty} = 'text' AND {value} = "))
                .param(Param::Text(Some(t.clone())));
        }
    }
}

/// `$."a"."b"`: SQLite's JSON path of the keys (each quoted, so that dots and brackets in
/// a key are the key's own).
fn json_path(path: &[String]) -> String {
    let mut p = String::from("$");
    for key in path {
        p.push_str(".\"");
        p.push_str(key);
        p.push('"');
    }
    p
}
