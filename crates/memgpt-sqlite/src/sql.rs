//! SQLite's side of [`Statement`]: how each value is bound.

use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
use memgpt_core::statement::{Param, Statement};

use crate::codec::{time_to_text, uuid_to_text};

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone)]
pub enum Bind {
    /// Text or NULL.
    Text(Option<String>),
    /// A blob or NULL.
    Blob(Option<Vec<u8>>),
    /// An integer or NULL.
    Int(Option<i64>),
}

/// SQLite's encodings: uuids as 36-character text, timestamps as MemGPT's text, JSON as
/// text.
impl From<Param> for Bind {
    fn from(p: Param) -> Self {
        match p {
            Param::Uuid(u) => Bind::Text(u.as_ref().map(uuid_to_text)),
            Param::Text(t) => Bind::Text(t),
            Param::Time(t) => Bind::Text(Some(time_to_text(&t))),
            Param::Int(i) => Bind::Int(i),
            Param::Json(v) => Bind::Text(v.map(|v| v.to_string())),
        }
    }
}

/// A statement in SQLite's dialect.
pub(crate) type Sql = Statement<crate::SqliteStore>;

/// The diesel query of `sql`, with every value bound. A
/// [cacheable](memgpt_core::statement::Statement::is_cacheable) statement (a read of a
/// fixed shape) is a prepared statement kept in the connection's statement cache, keyed by
/// its text: SQLite compiles it once per connection, not once per call (diesel's
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

impl QueryFragment<Sqlite> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
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
                Some(Bind::Blob(v)) => out.push_bind_param::<Nullable<Binary>, _>(v)?,
                Some(Bind::Int(v)) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
            }
        }
        Ok(())
    }
}

// The rows the connector's statements return.

#[derive(QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text)]
    pub(crate) detail: String,
}
