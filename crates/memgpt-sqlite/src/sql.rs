//! SQLite's side of [`Statement`]: how each value is bound.

use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::QueryableByName;
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

/// SQLite's encodings: uuids as 36-character text, timestamps as MemGPT's text.
impl From<Param> for Bind {
    fn from(p: Param) -> Self {
        match p {
            Param::Uuid(u) => Bind::Text(u.as_ref().map(uuid_to_text)),
            Param::Text(t) => Bind::Text(t),
            Param::Time(t) => Bind::Text(Some(time_to_text(&t))),
            Param::Int(i) => Bind::Int(i),
        }
    }
}

/// A statement in SQLite's dialect.
pub(crate) type Sql = Statement<crate::SqliteStore>;

/// The diesel query of `sql`, with every value bound.
pub(crate) fn query(sql: Sql) -> BoxedSqlQuery<'static, Sqlite, SqlQuery> {
    let mut q = diesel::sql_query(sql.text).into_boxed::<Sqlite>();
    for b in sql.binds {
        q = match b {
            Bind::Text(v) => q.bind::<Nullable<Text>, _>(v),
            Bind::Blob(v) => q.bind::<Nullable<Binary>, _>(v),
            Bind::Int(v) => q.bind::<Nullable<BigInt>, _>(v),
        };
    }
    q
}

// The rows the connector's statements return.

#[derive(QueryableByName)]
pub(crate) struct IdRow {
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
}

#[derive(QueryableByName)]
pub(crate) struct KeyRow {
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) created_at: Option<String>,
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
}

#[derive(QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text)]
    pub(crate) detail: String,
}
