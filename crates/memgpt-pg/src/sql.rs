//! PostgreSQL's side of [`Statement`]: how each value is bound.

use chrono::{DateTime, Utc};
use diesel::deserialize::FromSql;
use diesel::pg::Pg;
use diesel::pg::PgValue;
use diesel::query_builder::AstPass;
use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::{Array, BigInt, Float4, Json, Nullable, Text, Timestamptz};
use diesel::{QueryResult, QueryableByName};
use memgpt_core::statement::{Param, Statement};
use memgpt_migrate::query::BindValue;
use std::io::Write;
use uuid::Uuid;

/// JSON text, bound as `json` (whose binary form is its text): written as the record's
/// types serialized it, never parsed again.
#[derive(Debug, Clone)]
pub struct JsonText(pub String);

/// Read as the text the server sends, never parsed here: `json`'s binary form is its text;
/// `jsonb`'s (a column a user changed to `jsonb`) is a version byte, 1, then the text.
impl FromSql<Json, Pg> for JsonText {
    fn from_sql(value: PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let bytes = match value.as_bytes() {
            [1, text @ ..] => text,
            text => text,
        };
        Ok(JsonText(String::from_utf8(bytes.to_vec())?))
    }
}

impl ToSql<Json, Pg> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

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
    Json(Option<JsonText>),
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
            Param::Json(v) => Bind::Json(v.map(JsonText)),
        }
    }
}

/// A statement in PostgreSQL's dialect.
pub(crate) type Sql = Statement<crate::PgStore>;

pub(crate) use memgpt_migrate::query::query;

/// PostgreSQL's native types.
impl BindValue<Pg> for Bind {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match self {
            Bind::Text(v) => out.push_bind_param::<Nullable<Text>, _>(v),
            Bind::Uuid(v) => out.push_bind_param::<Nullable<diesel::sql_types::Uuid>, _>(v),
            Bind::Time(v) => out.push_bind_param::<Timestamptz, _>(v),
            Bind::Int(v) => out.push_bind_param::<Nullable<BigInt>, _>(v),
            Bind::Json(v) => out.push_bind_param::<Nullable<Json>, _>(v),
            Bind::Floats(v) => out.push_bind_param::<Nullable<Array<Float4>>, _>(v),
            Bind::Vector(v) => out.push_bind_param::<pgvector::sql_types::Vector, _>(v),
        }
    }
}

// The rows the connector's statements return.

#[derive(QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    pub(crate) line: String,
}
