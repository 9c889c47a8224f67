//! PostgreSQL's side of [`Statement`]: how each value is bound.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Float4, Json, Nullable, Text, Timestamptz};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
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
            Param::Json(v) => Bind::Json(v),
        }
    }
}

/// A statement in PostgreSQL's dialect.
pub(crate) type Sql = Statement<crate::PgStore>;

/// The diesel query of `sql`, with every value bound. A
/// [cacheable](memgpt_core::statement::Statement::is_cacheable) statement (a read of a
/// fixed shape) is a prepared statement kept in the connection's statement cache, keyed by
/// its text: the server parses it once per connection, not once per call (diesel's
/// `sql_query` is never cached). Any other — a write, or a read whose text varies with a
/// number of values (`IN (…)`) — is prepared for each call, so that varying batch sizes
/// never grow the cache.
pub(crate) fn query(sql: Sql) -> Prepared {
    let cache = sql.is_cacheable();
    Prepared { sql, cache }
}

/// A [`Statement`] as diesel runs it; see [`query`].
pub(crate) struct Prepared {
    sql: Sql,
    cache: bool,
}

impl QueryId for Prepared {
    type QueryId = ();
    // Keyed by its SQL text and bind types in the statement cache.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::Query for Prepared {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared {}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        let Some(pieces) = self.sql.pieces() else {
            return Err(diesel::result::Error::QueryBuilderError(
                "a statement's text was changed behind its placeholders".into(),
            ));
        };
        for (text, bind) in pieces {
            out.push_sql(text);
            match bind {
                None => {}
                Some(Bind::Text(v)) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Some(Bind::Uuid(v)) => {
                    out.push_bind_param::<Nullable<diesel::sql_types::Uuid>, _>(v)?
                }
                Some(Bind::Time(v)) => out.push_bind_param::<Timestamptz, _>(v)?,
                Some(Bind::Int(v)) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Some(Bind::Json(v)) => out.push_bind_param::<Nullable<Json>, _>(v)?,
                Some(Bind::Floats(v)) => out.push_bind_param::<Nullable<Array<Float4>>, _>(v)?,
                Some(Bind::Vector(v)) => {
                    out.push_bind_param::<pgvector::sql_types::Vector, _>(v)?
                }
            }
        }
        Ok(())
    }
}

// The rows the connector's statements return.

#[derive(QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    pub(crate) line: String,
}
