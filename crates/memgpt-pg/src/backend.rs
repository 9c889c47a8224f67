//! PostgreSQL's hooks of the one connector ([`memgpt_core::Connector`]): its dialect,
//! where connections come from, how statements run and rows decode, full-text search on
//! the GIN index, exact vector search, and the binary COPY path of large batches.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_core::backend::{
    AsyncSlot, Backend, Capacity, RankedText, TextQuery, VectorQuery, Written,
};
use memgpt_core::filter::MetadataTest;
use memgpt_core::row::Decode;
use memgpt_core::statement::{Dialect, Shapes};
use memgpt_core::{Connector, Embedding, Error, QueryPlan, Record, Result, Scoped, TableType};

use crate::error::map;
use crate::fulltext;
use crate::pool::Lease;
use crate::sql::{query, Bind, PlanLine, Sql};
use crate::store::PgStore;

/// A connector of one table, bound to one tenant, on PostgreSQL. Made by
/// [`PgStore::connector`] (lifetime `'static`) or by a unit of work's
/// [`Tx::connector`](memgpt_core::Tx::connector). Implements
/// [`StorageConnector`](memgpt_core::StorageConnector); see there for each operation.
pub type PgConnector<R> = Connector<PgStore, R>;

/// A connector of a unit of work on PostgreSQL; see [`PgStore::transaction`].
pub type PgTxConnector<'t, R> = Connector<memgpt_core::InTx<'t, PgStore>, R>;

/// Records per multi-row INSERT: 13 columns × 1,000 stays far below PostgreSQL's 65,535
/// bound parameters. Larger calls take the COPY path.
const CHUNK: usize = 1_000;

/// `$n` placeholders, `LIMIT ALL`, `IS NOT DISTINCT FROM`.
impl Dialect for PgStore {
    type Bind = Bind;
    const NO_LIMIT: &'static str = "LIMIT ALL";
    const NULL_SAFE_EQ: &'static str = "IS NOT DISTINCT FROM";
    const ID_IN_SELECT: (&'static str, &'static str) = ("id = ANY(ARRAY(", "))");

    fn placeholder(n: usize, sql: &mut String) {
        use std::fmt::Write as _;
        sql.push('$');
        // Writing to a String cannot fail.
        let _ = write!(sql, "{n}");
    }

    /// MemGPT's storage on every table: the vector zero-padded to 4096 (pgvector's cast
    /// assigns the float array to a `vector` column).
    fn embedding(_: TableType, e: Option<&Embedding>) -> Bind {
        Bind::Floats(e.map(|e| e.padded(memgpt_core::MAX_EMBEDDING_DIM)))
    }

    fn metadata_test(sql: &mut Sql, path: &[String], test: &MetadataTest, under_not: bool) {
        crate::metadata::test(sql, path, test, under_not);
    }
}

impl Backend for PgStore {
    type Conn = PgConnection;
    type Lease = Lease;

    #[track_caller]
    fn read_lease(&self) -> Result<Lease> {
        self.read_checkout()
    }

    #[track_caller]
    fn write_lease(&self) -> Result<Lease> {
        self.checkout()
    }

    /// The primary's pool: `pool_size + max_overflow` (a replica's reads fall back to it).
    fn capacity(&self) -> Capacity {
        let c = self.config();
        Capacity {
            connections: c.pool_size.saturating_add(c.max_overflow),
            timeout: c.pool_timeout,
        }
    }

    fn async_slot(&self) -> &AsyncSlot {
        PgStore::async_slot(self)
    }

    /// Directly, each statement on its own; behind a transaction pooler whose defaults
    /// differ from the settings, in a transaction that applies them.
    fn read_on<T>(
        &self,
        conn: &mut PgConnection,
        f: impl FnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        self.with_settings(conn, f)
    }

    fn write_transaction<T>(
        &self,
        conn: &mut PgConnection,
        f: impl FnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        let done = match self.begin() {
            Some(begin) => memgpt_migrate::in_transaction_mapped(
                |run| crate::session::transaction(conn, begin, run),
                f,
                map,
            ),
            None => memgpt_migrate::in_transaction_mapped(|run| conn.transaction(run), f, map),
        }?;
        self.note_write(Some(conn));
        Ok(done)
    }

    fn execute(conn: &mut PgConnection, sql: Sql) -> Result<Written> {
        written(query(sql).execute(conn))
    }

    fn fetch<T: Decode>(conn: &mut PgConnection, sql: Sql, table: TableType) -> Result<Vec<T>> {
        crate::row::fetch(conn, sql, table)
    }

    /// `EXPLAIN`: a sequential scan of the table reads all of it.
    fn explain(
        conn: &mut PgConnection,
        sql: Sql,
        table: TableType,
        operation: &'static str,
    ) -> Result<QueryPlan> {
        let lines: Vec<PlanLine> = query(sql.prefixed("EXPLAIN ")).load(conn).map_err(map)?;
        let plan = lines
            .into_iter()
            .map(|l| l.line)
            .collect::<Vec<_>>()
            .join("\n");
        let uses_index = plan.contains("Index Scan")
            || plan.contains("Index Only Scan")
            || plan.contains("Bitmap Index Scan");
        let full_scan = plan.contains(&format!("Seq Scan on {}", table.table_name()));
        Ok(QueryPlan::new(
            table, operation, plan, uses_index, full_scan,
        ))
    }

    fn vector_support(&self) -> Result<()> {
        if self.vector_search() {
            Ok(())
        } else {
            Err(Error::VectorUnavailable {
                reason: "the pgvector extension is not installed on this server".to_owned(),
            })
        }
    }

    fn text_match(shapes: &Shapes<'_, Self>, query: &TextQuery<'_>) -> Sql {
        fulltext::matching(shapes, query)
    }

    fn text_frequencies(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql {
        fulltext::frequencies(shapes, query)
    }

    fn text_ranked(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql {
        fulltext::ranked(shapes, query)
    }

    /// Exact: every embedding of the scope is compared (found through the scope's btree
    /// index), never an approximate HNSW walk, whose result would depend on how many rows
    /// other tenants have and where they lie (a walk filtered to one tenant stops after
    /// `hnsw.max_scan_tuples` and may return fewer than `top_k`, or none). The `OFFSET 0`
    /// fence keeps the planner from ordering by an index. The inner query orders ids only:
    /// whole rows are read for the k hits.
    ///
    /// Archival memory and passages compare `embedding_compact` (migration 000006: the
    /// embedding cut to its `embedding_dim`, stored with the row) where the row's dimension
    /// is the query's, so the scan reads no TOAST; any other row (another dimension, no
    /// `embedding_dim`) and the other tables compare MemGPT's padded column with the query
    /// zero-padded to 4096. Zero padding adds nothing to an L2 distance: both give the
    /// distance of the padded vectors.
    fn nearest(shapes: &Shapes<'_, Self>, query: &VectorQuery<'_>) -> Sql {
        let t = shapes.table.table_name();
        let padded = Bind::Vector(pgvector::Vector::from(
            query.embedding.padded(memgpt_core::MAX_EMBEDDING_DIM),
        ));
        let mut sql = Sql::new(format!(
            "SELECT {} FROM (SELECT id, distance FROM (SELECT id, ",
            shapes.select
        ));
        if has_compact_embedding(shapes.table) {
            let dim = i64::try_from(query.embedding.dim()).unwrap_or(i64::MAX);
            sql.push("CASE WHEN embedding_dim = ")
                .bind(Bind::Int(Some(dim)))
                .push(" AND embedding_compact IS NOT NULL THEN embedding_compact <-> ")
                .bind(Bind::Vector(pgvector::Vector::from(
                    query.embedding.as_slice().to_vec(),
                )))
                .push(" ELSE embedding <-> ")
                .bind(padded)
                .push(" END");
        } else {
            sql.push("embedding <-> ").bind(padded);
        }
        sql.push(&format!(" AS distance FROM {t}"))
            .scope_where(shapes.table, shapes.scope, query.filters)
            .push(" AND embedding IS NOT NULL OFFSET 0) AS scoped ORDER BY distance, id")
            .limit_offset(Some(query.top_k), 0)
            .push(&format!(") AS hits JOIN {t} USING (id)"))
            // The tenant again on the join, so that every table reference is restricted by
            // user_id (a distributed PostgreSQL routes the whole statement to one shard).
            .scope_where(shapes.table, shapes.scope, &[])
            .push(" ORDER BY hits.distance, id");
        sql
    }

    fn chunk_size(&self) -> usize {
        CHUNK
    }

    fn embedding_dim(&self) -> Option<usize> {
        let c = self.config();
        c.strict_embedding_dim.then_some(c.embedding_dim as usize)
    }

    /// Embeddings read as `real[]`: archival memory and passages from `embedding_compact`
    /// (migration 000006, stored with the row) where the server filled it, else MemGPT's
    /// padded column.
    fn select(table: TableType) -> &'static str {
        match table {
            TableType::RecallMemory => {
                "id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, \
                 embedding::real[] AS embedding, embedding_dim, embedding_model, created_at"
            }
            TableType::ArchivalMemory | TableType::Passages => {
                "id, user_id, text, doc_id, agent_id, data_source, \
                 COALESCE(embedding_compact,embedding)::real[] AS embedding, embedding_dim, \
                 embedding_model, metadata_, created_at"
            }
            TableType::Documents => memgpt_core::record::select_list(table),
        }
    }

    fn bulk_insert<R: Record>(
        &self,
        target: &Scoped<PgStore, R>,
        conn: &mut PgConnection,
        records: &mut dyn Iterator<Item = (usize, R)>,
        exists_ok: bool,
    ) -> Option<Result<u64>> {
        Some(crate::copy::copy_many(target, conn, records, exists_ok))
    }
}

/// A write's outcome, a unique violation told apart from other errors.
fn written(r: diesel::QueryResult<usize>) -> Result<Written> {
    match r {
        Ok(n) => Ok(Written::Rows(n)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(Written::UniqueViolation)
        }
        Err(e) => Err(map(e)),
    }
}

/// Whether `table` has `embedding_compact` (migration 000006): archival memory and passages,
/// the tables vector search is for.
pub(crate) fn has_compact_embedding(table: TableType) -> bool {
    matches!(table, TableType::ArchivalMemory | TableType::Passages)
}
