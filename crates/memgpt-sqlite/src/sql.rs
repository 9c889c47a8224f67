//! SQLite's side of [`Statement`]: how each value is bound.

use diesel::query_builder::AstPass;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, QueryableByName};
use memgpt_core::statement::{Param, Statement};
use memgpt_migrate::query::BindValue;

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
            Param::Json(v) => Bind::Text(v),
        }
    }
}

/// A statement in SQLite's dialect.
pub(crate) type Sql = Statement<crate::SqliteStore>;

pub(crate) use memgpt_migrate::query::query;

impl BindValue<Sqlite> for Bind {
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        match self {
            Bind::Text(v) => out.push_bind_param::<Nullable<Text>, _>(v),
            Bind::Blob(v) => out.push_bind_param::<Nullable<Binary>, _>(v),
            Bind::Int(v) => out.push_bind_param::<Nullable<BigInt>, _>(v),
        }
    }
}

// The rows the connector's statements return.

#[derive(QueryableByName)]
pub(crate) struct PlanLine {
    #[diesel(sql_type = Text)]
    pub(crate) detail: String,
}
