//! SQLite's hooks of the one connector ([`memgpt_core::Connector`]): its dialect, where
//! connections come from, how statements run and rows decode, FTS5 and the registered
//! distance function.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{RunQueryDsl, SqliteConnection};
use memgpt_core::backend::{Backend, TextQuery, VectorQuery, Written};
use memgpt_core::statement::{Dialect, Param, Shapes};
use memgpt_core::{Connector, Keyset, QueryPlan, Result, TableType};
use uuid::Uuid;

use crate::codec::{f32_bytes, time_from_text, uuid_from_text};
use crate::error::map;
use crate::record::FromRow;
use crate::sql::{query, Bind, IdRow, KeyRow, PlanLine, Sql};
use crate::store::{Pooled, SqliteStore};
use memgpt_migrate::rows::{Count, DataSource};

/// A connector of one table, bound to one tenant, on SQLite. Made by
/// [`SqliteStore::connector`] (lifetime `'static`) or by a unit of work's
/// [`Tx::connector`](memgpt_core::Tx::connector). Implements
/// [`StorageConnector`](memgpt_core::StorageConnector); see there for each operation.
pub type SqliteConnector<R> = Connector<SqliteStore, R>;

/// A connector of a unit of work on SQLite; see [`SqliteStore::transaction`].
pub type SqliteTxConnector<'t, R> = Connector<memgpt_core::InTx<'t, SqliteStore>, R>;

/// `?` placeholders, `LIMIT -1`, `IS`.
impl Dialect for SqliteStore {
    type Bind = Bind;
    const NO_LIMIT: &'static str = "LIMIT -1";
    const NULL_SAFE_EQ: &'static str = "IS";

    fn placeholder(_: usize, sql: &mut String) {
        sql.push('?');
    }
}

impl Backend for SqliteStore {
    type Conn = SqliteConnection;
    type Lease = Pooled;

    fn read_lease(&self) -> Result<Pooled> {
        self.read_checkout()
    }

    fn write_lease(&self) -> Result<Pooled> {
        self.checkout()
    }

    /// `BEGIN IMMEDIATE`: the write lock is taken up front, so a write never fails half
    /// way with "database is locked". While other connections hold it the write polls
    /// every few milliseconds, with priority once it has waited long, for at most the
    /// busy timeout (`write_lock`).
    fn write_transaction<T>(
        &self,
        conn: &mut SqliteConnection,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        crate::write_lock::immediate_transaction(self.writers(), conn, f)
    }

    fn execute(conn: &mut SqliteConnection, sql: Sql) -> Result<Written> {
        match query(sql).execute(conn) {
            Ok(n) => Ok(Written::Rows(n)),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Ok(Written::UniqueViolation)
            }
            Err(e) => Err(map(e)),
        }
    }

    fn count(conn: &mut SqliteConnection, sql: Sql) -> Result<u64> {
        let rows: Vec<Count> = query(sql).load(conn).map_err(map)?;
        Ok(rows.first().map_or(0, |r| r.n.max(0) as u64))
    }

    fn load_keyset(
        conn: &mut SqliteConnection,
        sql: Sql,
        table: TableType,
    ) -> Result<Option<Keyset>> {
        let rows: Vec<KeyRow> = query(sql).load(conn).map_err(map)?;
        let t = table.table_name();
        rows.into_iter()
            .next()
            .map(|row| {
                Ok(Keyset {
                    created_at: time_from_text(t, row.created_at.as_deref().unwrap_or_default())?,
                    id: uuid_from_text(t, "id", &row.id)?,
                })
            })
            .transpose()
    }

    fn load_ids(conn: &mut SqliteConnection, sql: Sql, table: TableType) -> Result<Vec<Uuid>> {
        let rows: Vec<IdRow> = query(sql).load(conn).map_err(map)?;
        rows.iter()
            .map(|r| uuid_from_text(table.table_name(), "id", &r.id))
            .collect()
    }

    fn load_strings(conn: &mut SqliteConnection, sql: Sql) -> Result<Vec<String>> {
        let rows: Vec<DataSource> = query(sql).load(conn).map_err(map)?;
        Ok(rows.into_iter().map(|r| r.data_source).collect())
    }

    /// `EXPLAIN QUERY PLAN`: "SCAN t" alone reads every row; "SCAN t USING INDEX …" walks
    /// an index in order.
    fn explain(
        conn: &mut SqliteConnection,
        sql: Sql,
        table: TableType,
        operation: &'static str,
    ) -> Result<QueryPlan> {
        let lines: Vec<PlanLine> = query(sql.prefixed("EXPLAIN QUERY PLAN "))
            .load(conn)
            .map_err(map)?;
        let plan = lines
            .into_iter()
            .map(|l| l.detail)
            .collect::<Vec<_>>()
            .join("\n");
        let t = table.table_name();
        let uses_index = plan.contains("USING INDEX")
            || plan.contains("USING COVERING INDEX")
            || plan.contains("USING PRIMARY KEY")
            || plan.contains("VIRTUAL TABLE INDEX");
        let full_scan = plan.lines().any(|l| l.trim() == format!("SCAN {t}"));
        Ok(QueryPlan::new(
            table, operation, plan, uses_index, full_scan,
        ))
    }

    fn vector_support(&self) -> Result<()> {
        Ok(())
    }

    /// Each word (folded by the full-text rule, [`memgpt_core::fulltext`]: one FTS5 token,
    /// which the tokenizer of migration 000007 leaves as it is) becomes an FTS5 string
    /// (`"…"` with quotes doubled): matched literally, never read as FTS5 syntax. Words
    /// are ANDed.
    fn text_match(shapes: &Shapes<'_, Self>, query: &TextQuery<'_>) -> Sql {
        // The tenant's word first (migration 000005): FTS5 walks its short posting list
        // and skips through the words'. Every word of the query is a quoted string of the
        // `text` column; the tenant is a uuid, never user text.
        let words = query
            .words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        let tenant = shapes.text_tenant();
        let fts_query = format!("scope:\"{tenant}\" AND text:({words})");
        let t = shapes.table.table_name();
        let mut sql = shapes.select();
        sql.scope_where(shapes.table, shapes.scope, &[])
            .push(&format!(
                " AND rowid IN (SELECT rowid FROM {t}_fts WHERE {t}_fts MATCH "
            ))
            .param(Param::Text(Some(fts_query)))
            .push(") ORDER BY created_at, id")
            .limit_offset(query.limit, query.offset);
        sql
    }

    /// Exact: SQLite orders the scope's rows by the distance function registered for the
    /// table's embedding encoding (MemGPT's base64 in recall memory, raw float32 bytes in
    /// archival memory and passages). Documents have no embedding, and no nearest.
    fn nearest(shapes: &Shapes<'_, Self>, query: &VectorQuery<'_>) -> Sql {
        let mut sql = shapes.select();
        sql.scope_where(shapes.table, shapes.scope, query.filters);
        let distance = match shapes.table {
            TableType::RecallMemory => "memgpt_l2_base64",
            TableType::ArchivalMemory | TableType::Passages => "memgpt_l2",
            TableType::Documents => {
                sql.push(" AND false");
                return sql;
            }
        };
        sql.push(&format!(
            " AND embedding IS NOT NULL ORDER BY {distance}(embedding, "
        ))
        .bind(Bind::Blob(Some(f32_bytes(query.embedding.as_slice()))))
        .push("), id")
        .limit_offset(Some(query.top_k), 0);
        sql
    }

    fn chunk_size(&self) -> usize {
        self.batch_size()
    }

    fn embedding_dim(&self) -> Option<usize> {
        self.config().embedding_dim.map(|d| d as usize)
    }
}

/// Runs a `SELECT <record> …` and decodes the records.
pub(crate) fn load<R: FromRow>(
    conn: &mut SqliteConnection,
    sql: Sql,
    table: TableType,
) -> Result<Vec<R>> {
    let rows: Vec<R::Row> = query(sql).load(conn).map_err(map)?;
    rows.into_iter().map(|r| R::from_row(r, table)).collect()
}
