//! [`StorageConnector`] on SQLite.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_core::batch::{query_words, BatchIds};
use memgpt_core::filter::validate_all;
use memgpt_core::statement::{Dialect, Param, Shapes, Statement};
use memgpt_core::unit_of_work::{Access, UnitOfWork};
use memgpt_core::{
    CursorPage, CursorRequest, Embedding, Error, Filter, Keyset, Record, Result, Scope,
    StorageConnector, TableType,
};
use uuid::Uuid;

use crate::codec::{f32_bytes, time_from_text, uuid_from_text};
use crate::error::map;
use crate::record::SqliteRecord;
use crate::sql::{query, Bind, Sql};
use crate::store::{Pooled, SqliteStore};

/// Where a connector gets its connection.
#[derive(Clone)]
pub(crate) enum Source<'t> {
    /// The store: its writer for writes, its read-only connections for reads, checked
    /// out per call.
    Store(SqliteStore),
    /// The connection of a unit of work.
    Tx {
        uow: &'t UnitOfWork<Pooled>,
        batch_size: usize,
    },
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Store(s) => f.debug_tuple("Store").field(&s.config().path).finish(),
            Source::Tx { .. } => f.write_str("UnitOfWork"),
        }
    }
}

/// A connector of one table, bound to one tenant, on SQLite. Made by
/// [`SqliteStore::connector`] (lifetime `'static`) or [`SqliteTx::connector`](crate::SqliteTx::connector)
/// (inside a unit of work). Implements [`StorageConnector`]; see there for each operation.
#[derive(Debug, Clone)]
pub struct SqliteConnector<'t, R> {
    source: Source<'t>,
    table: TableType,
    scope: Scope,
    columns: String,
    _record: PhantomData<fn() -> R>,
}

/// The error of a diesel transaction closure: ours, or the transaction's.
enum TxError {
    Core(Error),
    Diesel(DieselError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        TxError::Diesel(e)
    }
}

/// A write's way to the connection.
pub(crate) type WriteAccess<'a> = Access<'a, SqliteConnection, Pooled>;

fn project(p: &mut Pooled) -> &mut SqliteConnection {
    p
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Nullable<Text>)]
    created_at: Option<String>,
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct SourceRow {
    #[diesel(sql_type = Text)]
    data_source: String,
}

impl<'t, R: SqliteRecord> SqliteConnector<'t, R> {
    pub(crate) fn new(source: Source<'t>, table: TableType, scope: Scope) -> Result<Self> {
        if !R::stored_in(table) {
            return Err(Error::invalid(
                "table",
                format!("{table} does not store {}", std::any::type_name::<R>()),
            ));
        }
        scope.check_for(table)?;
        Ok(SqliteConnector {
            source,
            table,
            scope,
            columns: R::COLUMNS.join(", "),
            _record: PhantomData,
        })
    }

    fn batch_size(&self) -> usize {
        match &self.source {
            Source::Store(s) => s.batch_size(),
            Source::Tx { batch_size, .. } => *batch_size,
        }
    }

    /// Runs the reads of `f` on one connection: a read-only connection of the store, or
    /// the unit of work's (in a savepoint of its own).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut SqliteConnection) -> Result<T>) -> Result<T> {
        match &self.source {
            Source::Store(store) => f(&mut *store.read_checkout()?),
            Source::Tx { uow, .. } => uow.call(|| uow.with(|c| f(c))),
        }
    }

    /// Runs `f` as one write, all or nothing: in a `BEGIN IMMEDIATE` transaction on the
    /// writer, or in a savepoint of the unit of work. `f` reaches the connection through
    /// its [`WriteAccess`], one round at a time, so that it may pull records from caller
    /// code between rounds.
    fn write<T>(&self, f: impl FnOnce(&mut WriteAccess<'_>) -> Result<T>) -> Result<T> {
        match &self.source {
            Source::Store(store) => {
                let mut conn = store.checkout()?;
                conn.immediate_transaction(|c| f(&mut Access::Direct(c)).map_err(TxError::Core))
                    .map_err(|e| match e {
                        TxError::Core(e) => e,
                        TxError::Diesel(e) => map(e),
                    })
            }
            Source::Tx { uow, .. } => uow.call(|| f(&mut Access::Shared(uow, project))),
        }
    }

    /// The statement shapes of this connector.
    pub(crate) fn shapes(&self) -> Shapes<'_> {
        Shapes {
            dialect: Dialect::Sqlite,
            table: self.table,
            scope: &self.scope,
            select: &self.columns,
        }
    }

    fn load(&self, conn: &mut SqliteConnection, sql: Sql) -> Result<Vec<R>> {
        let rows: Vec<R::Row> = query(sql).load(conn).map_err(map)?;
        rows.into_iter()
            .map(|r| R::from_row(r, self.table))
            .collect()
    }

    fn check_filters(&self, filters: &[Filter]) -> Result<()> {
        validate_all(filters, self.table)
    }

    fn check_owner(&self, r: &R) -> Result<()> {
        self.scope.check_owner(r.user_id(), r.agent_id())
    }

    /// The keyset of record `id` in the scope.
    fn keyset_of(&self, conn: &mut SqliteConnection, id: Uuid) -> Result<Keyset> {
        let rows: Vec<KeyRow> = query(self.shapes().keyset_of(id)).load(conn).map_err(map)?;
        let row = rows.into_iter().next().ok_or(Error::NotFound {
            table: self.table,
            id,
        })?;
        let t = self.table.table_name();
        Ok(Keyset {
            created_at: time_from_text(t, row.created_at.as_deref().unwrap_or_default())?,
            id: uuid_from_text(t, "id", &row.id)?,
        })
    }

    /// The `top_k` nearest records by the registered distance function (exact).
    pub(crate) fn sql_nearest(&self, query: &Embedding, top_k: usize, filters: &[Filter]) -> Sql {
        let mut sql: Sql = self.shapes().select();
        sql.scope_where(self.table, &self.scope, filters)
            .push(&format!(
                " AND embedding IS NOT NULL ORDER BY {}(embedding, ",
                R::DISTANCE_FN
            ))
            .bind(Bind::Blob(Some(f32_bytes(query.as_slice()))))
            .push("), id")
            .limit_offset(Some(top_k), 0);
        sql
    }

    /// Full-text match. Each word becomes an FTS5 string (`"…"` with quotes doubled): matched
    /// literally, never read as FTS5 syntax. Words are ANDed.
    pub(crate) fn sql_text(&self, words: &[&str], limit: Option<usize>, offset: usize) -> Sql {
        let fts_query = words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        let t = self.table.table_name();
        let mut sql: Sql = self.shapes().select();
        sql.scope_where(self.table, &self.scope, &[])
            .push(&format!(
                " AND rowid IN (SELECT rowid FROM {t}_fts WHERE {t}_fts MATCH "
            ))
            .param(Param::Text(Some(fts_query)))
            .push(") ORDER BY created_at, id")
            .limit_offset(limit, offset);
        sql
    }

    /// Writes one chunk of distinct records; returns how many rows were written.
    fn insert_chunk(
        &self,
        conn: &mut SqliteConnection,
        chunk: &[R],
        exists_ok: bool,
    ) -> Result<u64> {
        let sql =
            self.shapes()
                .insert(R::COLUMNS, chunk.iter().map(SqliteRecord::binds), exists_ok);
        match query(sql).execute(conn) {
            Ok(n) if n == chunk.len() => Ok(n as u64),
            // Fewer rows than records: an id exists under another tenant.
            Ok(_) => Err(self.existing_id(conn, chunk, true)?),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(self.existing_id(conn, chunk, false)?)
            }
            Err(e) => Err(map(e)),
        }
    }

    /// The [`Error::AlreadyExists`] naming the first record of `chunk` that exists already
    /// (only under another tenant when `foreign`).
    fn existing_id(
        &self,
        conn: &mut SqliteConnection,
        chunk: &[R],
        foreign: bool,
    ) -> Result<Error> {
        let mut sql: Sql = Statement::new(
            Dialect::Sqlite,
            format!("SELECT id FROM {} WHERE id IN (", self.table.table_name()),
        );
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.param(Param::Uuid(Some(r.id())));
        }
        sql.push(")");
        if foreign {
            sql.push(" AND NOT (user_id = ")
                .param(Param::Uuid(Some(self.scope.user_id())));
            if let (true, Some(a)) = (self.table.is_agent_scoped(), self.scope.agent_id()) {
                sql.push(" AND agent_id = ").param(Param::Uuid(Some(a)));
            }
            sql.push(")");
        }
        let rows: Vec<IdRow> = query(sql).load(conn).map_err(map)?;
        let existing: Vec<Uuid> = rows
            .iter()
            .filter_map(|r| Uuid::parse_str(&r.id).ok())
            .collect();
        let id = chunk
            .iter()
            .map(Record::id)
            .find(|id| existing.contains(id))
            .ok_or_else(|| Error::database("insert wrote fewer rows than given"))?;
        Ok(Error::AlreadyExists {
            table: self.table,
            id,
        })
    }
}

impl<R: SqliteRecord> StorageConnector for SqliteConnector<'_, R> {
    type Record = R;

    fn table_type(&self) -> TableType {
        self.table
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn get_page(&self, filters: &[Filter], after: Option<&Keyset>, limit: usize) -> Result<Vec<R>> {
        self.check_filters(filters)?;
        let sql = self.shapes().page(filters, after, limit);
        self.read(|c| self.load(c, sql))
    }

    fn get_all_cursor(&self, request: &CursorRequest) -> Result<CursorPage<R>> {
        self.check_filters(&request.filters)?;
        self.read(|conn| {
            let after = request
                .after
                .map(|id| self.keyset_of(conn, id))
                .transpose()?;
            let before = request
                .before
                .map(|id| self.keyset_of(conn, id))
                .transpose()?;
            let sql = self.shapes().cursor(
                &request.filters,
                after.as_ref(),
                before.as_ref(),
                request.limit,
                request.reverse,
            );
            let records = self.load(conn, sql)?;
            Ok(CursorPage {
                last_id: records.last().map(Record::id),
                records,
            })
        })
    }

    fn get_all(&self, filters: &[Filter], limit: Option<usize>) -> Result<Vec<R>> {
        self.check_filters(filters)?;
        let sql = self.shapes().recent(filters, limit);
        self.read(|c| self.load(c, sql))
    }

    fn get(&self, id: Uuid) -> Result<Option<R>> {
        let sql = self.shapes().by_id(id);
        Ok(self.read(|c| self.load(c, sql))?.into_iter().next())
    }

    fn size(&self, filters: &[Filter]) -> Result<u64> {
        self.check_filters(filters)?;
        let sql = self.shapes().count(filters);
        let rows: Vec<Count> = self.read(|c| query(sql).load(c).map_err(map))?;
        Ok(rows.first().map_or(0, |r| r.n.max(0) as u64))
    }

    fn insert(&self, record: &R) -> Result<()> {
        self.check_owner(record)?;
        self.write(|a| a.with(|c| self.insert_chunk(c, std::slice::from_ref(record), true)))
            .map(|_| ())
    }

    fn insert_many<I>(&self, records: I, exists_ok: bool) -> Result<u64>
    where
        I: IntoIterator<Item = R>,
    {
        let batch = self.batch_size().max(1);
        let mut iter = records.into_iter().enumerate();
        let mut ids = BatchIds::new(exists_ok);
        self.write(|access| loop {
            // The caller's iterator runs outside any database round: it may read this
            // store, or this unit of work.
            let chunk: Vec<(usize, R)> = iter.by_ref().take(batch).collect();
            if chunk.is_empty() {
                return Ok(ids.distinct());
            }
            for (i, r) in &chunk {
                self.check_owner(r).map_err(|e| e.in_batch(*i))?;
            }
            let chunk = ids.fold(chunk)?;
            access.with(|c| self.insert_chunk(c, &chunk, exists_ok))?;
        })
    }

    fn update(&self, record: &R) -> Result<()> {
        self.check_owner(record)?;
        let sql = self
            .shapes()
            .update(R::COLUMNS, record.binds(), record.id());
        let n = self.write(|a| a.with(|c| query(sql).execute(c).map_err(map)))?;
        if n == 0 {
            return Err(Error::NotFound {
                table: self.table,
                id: record.id(),
            });
        }
        Ok(())
    }

    fn query(&self, embedding: &[f32], top_k: usize, filters: &[Filter]) -> Result<Vec<R>> {
        let query = Embedding::new(embedding.to_vec()).map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid("query embedding", reason),
            other => other,
        })?;
        self.check_filters(filters)?;
        if top_k == 0 || self.table == TableType::Documents {
            return Ok(Vec::new());
        }
        let sql = self.sql_nearest(&query, top_k, filters);
        self.read(|c| self.load(c, sql))
    }

    fn query_date(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        let sql = self.shapes().dates(start, end, limit, offset);
        self.read(|c| self.load(c, sql))
    }

    fn query_text(&self, query: &str, limit: Option<usize>, offset: usize) -> Result<Vec<R>> {
        let words = query_words(query)?;
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.sql_text(&words, limit, offset);
        self.read(|c| self.load(c, sql))
    }

    fn delete(&self, filters: &[Filter]) -> Result<u64> {
        self.check_filters(filters)?;
        let sql = self.shapes().delete(filters);
        self.write(|a| a.with(|c| query(sql).execute(c).map_err(map)))
            .map(|n| n as u64)
    }

    fn list_data_sources(&self) -> Result<Vec<String>> {
        if self.table == TableType::RecallMemory {
            return Ok(Vec::new());
        }
        let sql = self.shapes().sources();
        let rows: Vec<SourceRow> = self.read(|c| query(sql).load(c).map_err(map))?;
        Ok(rows.into_iter().map(|r| r.data_source).collect())
    }
}
