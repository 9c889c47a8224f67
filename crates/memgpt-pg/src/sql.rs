//! SQL text with its bound values, for PostgreSQL (`$n` placeholders).
//!
//! SQL text is assembled only from fixed identifiers (table names from [`TableType`], column
//! names from [`Column`](memgpt_core::Column)) and placeholders; every value a caller
//! supplies is a bound parameter.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Float4, Json, Nullable, Text, Timestamptz};
use memgpt_core::{Filter, FilterValue, Keyset, Scope, TableType};
use uuid::Uuid;

/// A value bound to a placeholder.
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

    /// Appends the next placeholder (`$n`) and binds `b` to it.
    pub fn bind(&mut self, b: Bind) -> &mut Self {
        self.binds.push(b);
        let n = self.binds.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    /// ` WHERE user_id = $n [AND agent_id = $m] [AND col = $k …]`.
    pub fn scope_where(
        &mut self,
        table: TableType,
        scope: &Scope,
        filters: &[Filter],
    ) -> &mut Self {
        self.push(" WHERE user_id = ")
            .bind(Bind::Uuid(Some(scope.user_id())));
        if table.is_agent_scoped() {
            if let Some(agent) = scope.agent_id() {
                self.push(" AND agent_id = ").bind(Bind::Uuid(Some(agent)));
            }
        }
        for f in filters {
            let col = f.column().name();
            match f.value() {
                FilterValue::Null => {
                    self.push(&format!(" AND {col} IS NULL"));
                }
                FilterValue::Uuid(u) => {
                    self.push(&format!(" AND {col} = "))
                        .bind(Bind::Uuid(Some(*u)));
                }
                FilterValue::Text(t) => {
                    self.push(&format!(" AND {col} = "))
                        .bind(Bind::Text(Some(t.clone())));
                }
            }
        }
        self
    }

    /// ` AND (created_at, id) > ($n, $m)` (or `<`).
    pub fn keyset(&mut self, op: &str, k: &Keyset) -> &mut Self {
        self.push(&format!(" AND (created_at, id) {op} ("))
            .bind(Bind::Time(k.created_at))
            .push(", ")
            .bind(Bind::Uuid(Some(k.id)))
            .push(")")
    }

    /// ` LIMIT $n OFFSET $m` (no limit: `LIMIT ALL`).
    pub fn limit_offset(&mut self, limit: Option<usize>, offset: usize) -> &mut Self {
        match limit {
            Some(l) => {
                self.push(" LIMIT ")
                    .bind(Bind::Int(Some(i64::try_from(l).unwrap_or(i64::MAX))));
            }
            None => {
                self.push(" LIMIT ALL");
            }
        }
        if offset > 0 {
            self.push(" OFFSET ")
                .bind(Bind::Int(Some(i64::try_from(offset).unwrap_or(i64::MAX))));
        }
        self
    }

    /// The diesel query with every value bound.
    pub fn query(self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        let mut q = diesel::sql_query(self.text).into_boxed::<Pg>();
        for b in self.binds {
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
}
