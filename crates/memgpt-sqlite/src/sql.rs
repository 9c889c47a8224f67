//! SQL text with its bound values.
//!
//! SQL text is assembled only from fixed identifiers (table names from [`TableType`], column
//! names from [`Column`](memgpt_core::Column)) and `?` placeholders; every value a caller
//! supplies travels as a bound parameter.

use diesel::query_builder::BoxedSqlQuery;
use diesel::query_builder::SqlQuery;
use diesel::sql_types::{BigInt, Binary, Double, Nullable, Text};
use diesel::sqlite::Sqlite;
use memgpt_core::{Filter, FilterValue, Keyset, Scope, TableType};

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
    /// A float.
    Real(f64),
}

/// SQL text and the values of its placeholders, in order.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            binds: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    pub fn bind(&mut self, b: Bind) -> &mut Self {
        self.binds.push(b);
        self
    }

    pub fn text_bind(&mut self, s: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(Some(s.into())))
    }

    /// ` WHERE user_id = ? [AND agent_id = ?] [AND col = ? …]`: the scope, then the filters.
    pub fn scope_where(
        &mut self,
        table: TableType,
        scope: &Scope,
        filters: &[Filter],
    ) -> &mut Self {
        self.push(" WHERE user_id = ?")
            .text_bind(uuid_to_text(&scope.user_id()));
        if table.is_agent_scoped() {
            if let Some(agent) = scope.agent_id() {
                self.push(" AND agent_id = ?")
                    .text_bind(uuid_to_text(&agent));
            }
        }
        for f in filters {
            let col = f.column().name();
            match f.value() {
                FilterValue::Null => {
                    self.push(&format!(" AND {col} IS NULL"));
                }
                FilterValue::Uuid(u) => {
                    self.push(&format!(" AND {col} = ?"))
                        .text_bind(uuid_to_text(u));
                }
                FilterValue::Text(t) => {
                    self.push(&format!(" AND {col} = ?")).text_bind(t.clone());
                }
            }
        }
        self
    }

    /// ` AND (created_at, id) > (?, ?)` (or `<`).
    pub fn keyset(&mut self, op: &str, k: &Keyset) -> &mut Self {
        self.push(&format!(" AND (created_at, id) {op} (?, ?)"))
            .text_bind(time_to_text(&k.created_at))
            .text_bind(uuid_to_text(&k.id))
    }

    /// ` LIMIT ? OFFSET ?`; no limit is SQLite's -1.
    pub fn limit_offset(&mut self, limit: Option<usize>, offset: usize) -> &mut Self {
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.push(" LIMIT ? OFFSET ?")
            .bind(Bind::Int(Some(limit)))
            .bind(Bind::Int(Some(offset)))
    }

    /// The diesel query with every value bound.
    pub fn query(self) -> BoxedSqlQuery<'static, Sqlite, SqlQuery> {
        let mut q = diesel::sql_query(self.text).into_boxed::<Sqlite>();
        for b in self.binds {
            q = match b {
                Bind::Text(v) => q.bind::<Nullable<Text>, _>(v),
                Bind::Blob(v) => q.bind::<Nullable<Binary>, _>(v),
                Bind::Int(v) => q.bind::<Nullable<BigInt>, _>(v),
                Bind::Real(v) => q.bind::<Double, _>(v),
            };
        }
        q
    }
}

/// `?, ?, …` with `n` placeholders.
pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}
