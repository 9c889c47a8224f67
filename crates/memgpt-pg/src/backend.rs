//! PostgreSQL's hooks of the one connector ([`memgpt_core::Connector`]): its dialect,
//! where connections come from, how statements run and rows decode, full-text search on
//! the GIN index, exact vector search, and the binary COPY path of large batches.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_core::backend::{AsyncSlot, Backend, Capacity, VectorQuery, Written};
use memgpt_core::filter::MetadataTest;
use memgpt_core::row::Decode;
use memgpt_core::statement::{Dialect, Shapes};
use memgpt_core::{Embedding, Error, QueryPlan, Record, Result, Scoped, TableType};

use crate::error::map;
use crate::pool::Lease;
use crate::prepared::Outcome;
use crate::sql::{query, Bind, PlanLine, Sql};
use crate::store::PgStore;

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

    /// The primary's connection, unchecked within the pre-ping bypass: the write's `BEGIN`
    /// is its check ([`run_again`](Self::run_again)).
    #[track_caller]
    fn write_lease(&self) -> Result<Lease> {
        self.checkout_with(false, std::panic::Location::caller())
    }

    /// A read, or a write whose `BEGIN` failed, that lost a connection handed out
    /// unchecked (within the pre-ping bypass,
    /// [`PgConfig::pre_ping_bypass`](crate::PgConfig::pre_ping_bypass)) runs again on a
    /// checked one, waiting for it within what is left of the pool timeout after its
    /// first wait; the lost one is closed.
    #[track_caller]
    fn run_again(&self, mut lease: Lease, error: &Error) -> Option<Result<Lease>> {
        let Error::ConnectionLost { message } = error else {
            return None;
        };
        if lease.conn.checked() {
            return None;
        }
        lease.conn.forget();
        let (counters, waited) = (lease.counters.clone(), lease.waited);
        drop(lease);
        let now = std::time::Instant::now();
        let start = now.checked_sub(waited).unwrap_or(now);
        let loss = Error::ConnectionLost {
            message: message.clone(),
        };
        let again = self.checkout_from(start, Some(loss));
        if again.is_ok() {
            counters.record_rerun();
        }
        Some(again)
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
        // A panic unwinding past the transaction: the parts of a spread load (if any)
        // follow it by the server's word.
        let _unwinding = crate::prepared::OnUnwind;
        let done = match self.begin() {
            Some(begin) => memgpt_migrate::in_transaction_mapped(
                |run| crate::session::transaction(conn, begin, run),
                f,
                map,
            ),
            None => memgpt_migrate::in_transaction_mapped(|run| conn.transaction(run), f, map),
        };
        // A load spread over several connections: its parts follow the transaction.
        let outcome = match &done {
            Ok(_) => Outcome::Committed,
            Err(Error::ConnectionLost { .. }) => Outcome::Unknown,
            Err(_) => Outcome::RolledBack,
        };
        let finished = crate::prepared::finish(outcome, || self.checkout());
        let done = done?;
        finished?;
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

    /// Exact, every embedding of the scope compared (`vector.rs` says how).
    fn nearest(shapes: &Shapes<'_, Self>, query: &VectorQuery<'_>) -> Sql {
        crate::vector::nearest(shapes, query)
    }

    fn chunk_size(&self) -> usize {
        CHUNK
    }

    fn bulk_from(&self, table: TableType) -> usize {
        if crate::parallel::wanted(self.config(), table) {
            crate::parallel::FROM
        } else {
            CHUNK
        }
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
        Some(match crate::parallel::connections(target, conn) {
            Ok(Some(n)) => crate::parallel::load(target, conn, records, exists_ok, n),
            Ok(None) => {
                // Taken here only to be spread (`bulk_from`): a call of one chunk is written
                // as any other.
                let head: Vec<(usize, R)> = (&mut *records).take(CHUNK + 1).collect();
                if head.len() <= CHUNK {
                    target.insert_chunks(conn, &mut head.into_iter(), exists_ok)
                } else {
                    let mut all = head.into_iter().chain(records);
                    crate::copy::copy_many(target, conn, &mut all, exists_ok)
                }
            }
            Err(e) => Err(e),
        })
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
