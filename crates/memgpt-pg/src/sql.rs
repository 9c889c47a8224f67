//! PostgreSQL's side of [`Statement`]: how each value is bound.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Float4, Json, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use memgpt_core::statement::{Param, Statement};
use uuid::Uuid;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone)]
pub enum Bind {
    /// Text or NULL.
    Text(Option<String>),
    /// A UUID or NULL.
    Uuid(Option<Uuid>),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// An integer or NULL.
    Int(Option<i64>),
    /// JSON or NULL.
    Json(Option<serde_json::Value>),
    /// A float array or NULL (embeddings; assigned to `vector` columns by pgvector's cast).
    Floats(Option<Vec<f32>>),
    /// A pgvector vector (query vectors).
    Vector(pgvector::Vector),
}

/// PostgreSQL's native types.
impl From<Param> for Bind {
    fn from(p: Param) -> Self {
        match p {
            Param::Uuid(u) => Bind::Uuid(u),
            Param::Text(t) => Bind::Text(t),
            Param::Time(t) => Bind::Time(t),
            Param::Int(i) => Bind::Int(i),
        }
    }
}

/// A statement in PostgreSQL's dialect.
pub(crate) type Sql = Statement<crate::PgStore>;

/// The diesel query of `sql`, with every value bound.
pub(crate) fn query(sql: Sql) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    let mut q = diesel::sql_query(sql.text).into_boxed::<Pg>();
    for b in sql.binds {
        q = match b {
            Bind::Text(v) => q.bind::<Nullable<Text>, _>(v),
            Bind::Uuid(v) => q.bind::<Nullable<diesel::sql_types::Uuid>, _>(v),
            Bind::Time(v) => q.bind::<Timestamptz, _>(v),
            Bind::Int(v) => q.bind::<Nullable<BigInt>, _>(v),
            Bind::Json(v) => q.bind::<Nullable<Json>, _>(v),
            Bind::Floats(v) => q.bind::<Nullable<Array<Float4>>, _>(v),
            Bind::Vector(v) => q.bind::<pgvector::sql_types::Vector, _>(v),
        };
    }
    q
}

// The rows the connector's statements return.

#[derive(QueryableByName)]
pub(crate) struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub(crate) id: Uuid,
}

#[derive(QueryableByName)]
pub(crate) struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
    pub(crate) created_at: Option<chrono::DateTime<chrono::Utc>>,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub(crate) id: Uuid,
}

#[derive(QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    pub(crate) line: String,
}
