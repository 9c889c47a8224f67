//! SQLite's hooks of the one connector ([`memgpt_core::Connector`]): its dialect, where
//! connections come from, how statements run (their rows decode in [`row`](crate::row)),
//! FTS5, the registered distance function and the bulk path.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{RunQueryDsl, SqliteConnection};
use memgpt_core::backend::{AsyncSlot, Backend, Capacity, VectorQuery, Written};
use memgpt_core::filter::MetadataTest;
use memgpt_core::row::Decode;
use memgpt_core::statement::{Dialect, Shapes};
use memgpt_core::{Embedding, QueryPlan, Record, Result, Scoped, TableType};

use crate::codec::{embedding_to_base64, f32_bytes};
use crate::error::map;
use crate::sql::{query, Bind, PlanLine, Sql};
use crate::store::{Pooled, SqliteStore};

/// `?` placeholders, `LIMIT -1`, `IS`, bound counts the planner does not read.
impl Dialect for SqliteStore {
    type Bind = Bind;
    const NO_LIMIT: &'static str = "LIMIT -1";
    const NULL_SAFE_EQ: &'static str = "IS";
    const BOUND_COUNT: (&'static str, &'static str) = ("(", " + 0)");

    fn placeholder(_: usize, sql: &mut String) {
        sql.push('?');
    }

    /// Recall memory: MemGPT's base64 of the float32 bytes padded to 4096; archival memory
    /// and passages: the vector's raw float32 bytes.
    fn embedding(table: TableType, e: Option<&Embedding>) -> Bind {
        Bind::Blob(e.map(|e| match table {
            TableType::RecallMemory => embedding_to_base64(e),
            _ => f32_bytes(e.as_slice()),
        }))
    }

    fn metadata_test(sql: &mut Sql, path: &[String], test: &MetadataTest, _under_not: bool) {
        crate::metadata::test(sql, path, test);
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

    /// The read connections and the writer.
    fn capacity(&self) -> Capacity {
        let c = self.config();
        Capacity {
            connections: c.read_connections.max(1).saturating_add(1),
            timeout: c.pool_timeout,
        }
    }

    fn async_slot(&self) -> &AsyncSlot {
        SqliteStore::async_slot(self)
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

    fn fetch<T: Decode>(conn: &mut SqliteConnection, sql: Sql, table: TableType) -> Result<Vec<T>> {
        crate::row::fetch(conn, sql, table)
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

    fn bulk_insert<R: Record>(
        &self,
        target: &Scoped<SqliteStore, R>,
        conn: &mut SqliteConnection,
        records: &mut dyn Iterator<Item = (usize, R)>,
        exists_ok: bool,
    ) -> Option<Result<u64>> {
        crate::bulk::insert_many(target, conn, records, exists_ok)
    }
}
