//! [`StorageConnector`] on PostgreSQL.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::batch::{query_words, BatchIds};
use memgpt_core::filter::validate_all;
use memgpt_core::statement::{Dialect, Param, Shapes};
use memgpt_core::unit_of_work::{Access, UnitOfWork};
use memgpt_core::{
    CursorPage, CursorRequest, Embedding, Error, Filter, Keyset, Record, Result, Scope,
    StorageConnector, TableType,
};
use uuid::Uuid;

use crate::error::map;
use crate::record::PgRecord;
use crate::sql::{query, Bind, Sql};
use crate::store::Lease;
use crate::store::PgStore;

/// Records per multi-row INSERT: 13 columns × 1,000 stays far below PostgreSQL's 65,535
/// bound parameters.
const CHUNK: usize = 1_000;

/// Bytes of binary COPY data encoded before they are sent as one `COPY`: records are
/// pulled from the caller's iterator between COPY statements, never during one, so the
/// iterator may read this store or this unit of work, and memory stays bounded.
const COPY_BYTES: usize = 8 * 1024 * 1024;

/// Where a connector gets its connection.
#[derive(Clone)]
pub(crate) enum Source<'t> {
    /// A pooled connection, checked out per call.
    Store(PgStore),
    /// The connection of a unit of work.
    Tx {
        uow: &'t UnitOfWork<Lease>,
        store: PgStore,
    },
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Store(_) => f.write_str("Pool"),
            Source::Tx { .. } => f.write_str("UnitOfWork"),
        }
    }
}

/// A connector of one table, bound to one tenant, on PostgreSQL. Made by
/// [`PgStore::connector`] (lifetime `'static`) or [`PgTx::connector`](crate::PgTx::connector)
/// (inside a unit of work). Implements [`StorageConnector`]; see there for each operation.
#[derive(Debug, Clone)]
pub struct PgConnector<'t, R> {
    source: Source<'t>,
    table: TableType,
    scope: Scope,
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

fn unwrap_tx(e: TxError) -> Error {
    match e {
        TxError::Core(e) => e,
        TxError::Diesel(e) => map(e),
    }
}

/// A write's way to the connection.
pub(crate) type WriteAccess<'a> = Access<'a, PgConnection, Lease>;

fn project(l: &mut Lease) -> &mut PgConnection {
    l
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct DupRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    first: i64,
    #[diesel(sql_type = BigInt)]
    second: i64,
}

#[derive(QueryableByName)]
struct SourceRow {
    #[diesel(sql_type = Text)]
    data_source: String,
}

impl<'t, R: PgRecord> PgConnector<'t, R> {
    pub(crate) fn new(source: Source<'t>, table: TableType, scope: Scope) -> Result<Self> {
        if !R::stored_in(table) {
            return Err(Error::invalid(
                "table",
                format!("{table} does not store {}", std::any::type_name::<R>()),
            ));
        }
        scope.check_for(table)?;
        Ok(PgConnector {
            source,
            table,
            scope,
            _record: PhantomData,
        })
    }

    /// Whether the server can search vectors.
    pub(crate) fn vector_enabled(&self) -> bool {
        self.store().vector_search()
    }

    fn store(&self) -> &PgStore {
        match &self.source {
            Source::Store(s) | Source::Tx { store: s, .. } => s,
        }
    }

    /// Runs the reads of `f` on one connection: a pooled one, or the unit of work's (in
    /// a savepoint of its own).
    #[track_caller]
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut PgConnection) -> Result<T>) -> Result<T> {
        match &self.source {
            Source::Store(store) => {
                let mut lease = store.checkout()?;
                f(&mut lease)
            }
            Source::Tx { uow, .. } => uow.call(|| uow.with(|c| f(c))),
        }
    }

    /// Runs `f` as one write, all or nothing: in a transaction of its own, or in a
    /// savepoint of the unit of work. `f` reaches the connection through its
    /// [`WriteAccess`], one round at a time, so that it may pull records from caller code
    /// between rounds.
    #[track_caller]
    fn write<T>(&self, f: impl FnOnce(&mut WriteAccess<'_>) -> Result<T>) -> Result<T> {
        match &self.source {
            Source::Store(store) => {
                let mut conn = store.checkout()?;
                conn.transaction(|c| f(&mut Access::Direct(c)).map_err(TxError::Core))
                    .map_err(unwrap_tx)
            }
            Source::Tx { uow, .. } => uow.call(|| f(&mut Access::Shared(uow, project))),
        }
    }

    fn table_name(&self) -> &'static str {
        self.table.table_name()
    }

    /// The statement shapes of this connector.
    pub(crate) fn shapes(&self) -> Shapes<'_> {
        Shapes {
            dialect: Dialect::Postgres,
            table: self.table,
            scope: &self.scope,
            select: R::SELECT,
        }
    }

    fn load(&self, conn: &mut PgConnection, sql: Sql) -> Result<Vec<R>> {
        let rows: Vec<R::Row> = query(sql).load(conn).map_err(map)?;
        rows.into_iter()
            .map(|r| R::from_row(r, self.table))
            .collect()
    }

    fn check_owner(&self, r: &R) -> Result<()> {
        self.scope.check_owner(r.user_id(), r.agent_id())
    }

    fn keyset_of(&self, conn: &mut PgConnection, id: Uuid) -> Result<Keyset> {
        let rows: Vec<KeyRow> = query(self.shapes().keyset_of(id)).load(conn).map_err(map)?;
        let row = rows.into_iter().next().ok_or(Error::NotFound {
            table: self.table,
            id,
        })?;
        Ok(Keyset {
            created_at: row
                .created_at
                .ok_or_else(|| crate::error::corrupt(self.table_name(), "created_at", "NULL"))?,
            id: row.id,
        })
    }

    /// Writes one chunk of distinct records in a savepoint; returns the rows written.
    fn insert_chunk(&self, conn: &mut PgConnection, chunk: &[R], exists_ok: bool) -> Result<u64> {
        let sql = self
            .shapes()
            .insert(R::COLUMNS, chunk.iter().map(PgRecord::binds), exists_ok);
        let outcome = conn.transaction(|c| query(sql).execute(c));
        match outcome {
            Ok(n) if n == chunk.len() => Ok(n as u64),
            Ok(_) => Err(self.existing_id(conn, chunk, true)?),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(self.existing_id(conn, chunk, false)?)
            }
            Err(e) => Err(map(e)),
        }
    }

    /// The `top_k` nearest records of the scope, exactly: every embedding of the scope is
    /// compared (found through the scope's btree index), never an approximate HNSW walk,
    /// whose result would depend on how many rows other tenants have and where they lie
    /// (a walk filtered to one tenant stops after `hnsw.max_scan_tuples` and may return
    /// fewer than `top_k`, or none). The `OFFSET 0` fence keeps the planner from ordering
    /// by an index. Stored embeddings are zero-padded to 4096, so is the query: zero
    /// padding adds nothing to an L2 distance. The inner query orders ids only: whole rows
    /// are read for the k hits.
    pub(crate) fn sql_nearest(&self, query: &Embedding, top_k: usize, filters: &[Filter]) -> Sql {
        let t = self.table_name();
        let mut sql: Sql = Sql::new(
            Dialect::Postgres,
            format!(
                "SELECT {} FROM (SELECT id, distance FROM (SELECT id, embedding <-> ",
                R::SELECT
            ),
        );
        sql.bind(Bind::Vector(pgvector::Vector::from(
            query.padded(memgpt_core::MAX_EMBEDDING_DIM),
        )))
        .push(&format!(" AS distance FROM {t}"))
        .scope_where(self.table, &self.scope, filters)
        .push(" AND embedding IS NOT NULL OFFSET 0) AS scoped ORDER BY distance, id")
        .limit_offset(Some(top_k), 0)
        .push(&format!(
            ") AS hits JOIN {t} USING (id) ORDER BY hits.distance, id"
        ));
        sql
    }

    /// Full-text match. plainto_tsquery ANDs the words and reads no operator syntax: the
    /// same meaning as on SQLite. The expression matches the GIN index of the migrations:
    /// the first [`FULL_TEXT_INDEXED_CHARS`](memgpt_core::FULL_TEXT_INDEXED_CHARS)
    /// characters of the text.
    pub(crate) fn sql_text(&self, words: &str, limit: Option<usize>, offset: usize) -> Sql {
        let mut sql: Sql = self.shapes().select();
        sql.scope_where(self.table, &self.scope, &[])
            .push(&format!(
                " AND to_tsvector('english'::regconfig, left(coalesce(text, ''), {})) \
                 @@ plainto_tsquery('english'::regconfig, ",
                memgpt_core::FULL_TEXT_INDEXED_CHARS
            ))
            .param(Param::Text(Some(words.to_owned())))
            .push(") ORDER BY created_at, id")
            .limit_offset(limit, offset);
        sql
    }

    /// The bulk path: binary COPY of every record into the staging table, then one
    /// `INSERT … SELECT` (the last record of each id) into the table.
    fn copy_many(
        &self,
        access: &mut WriteAccess<'_>,
        mut records: impl Iterator<Item = (usize, R)>,
        exists_ok: bool,
    ) -> Result<u64> {
        access.with(|c| c.batch_execute(R::STAGING_DDL).map_err(map))?;
        let mut buf = Vec::with_capacity(COPY_BYTES + 64 * 1024);
        loop {
            buf.clear();
            crate::copy::header(&mut buf);
            let mut rows = 0usize;
            let mut more = true;
            while buf.len() < COPY_BYTES {
                let Some((i, r)) = records.next() else {
                    more = false;
                    break;
                };
                self.check_owner(&r).map_err(|e| e.in_batch(i))?;
                crate::copy::row(&mut buf, i, &r.binds());
                rows += 1;
            }
            crate::copy::trailer(&mut buf);
            if rows > 0 {
                let data = &buf;
                access.with(|c| {
                    R::copy(c, &|w: &mut dyn std::io::Write| {
                        w.write_all(data)
                            .map_err(|e| DieselError::SerializationError(Box::new(e)))
                    })
                    .map_err(map)
                })?;
            }
            if !more {
                break;
            }
        }
        drop(buf);
        let staging = R::STAGING;
        access.with(|conn| {
            if !exists_ok {
                let dups: Vec<DupRow> = diesel::sql_query(format!(
                    "SELECT id, (array_agg(ord ORDER BY ord))[1] AS first, \
                     (array_agg(ord ORDER BY ord))[2] AS second FROM {staging} \
                     GROUP BY id HAVING count(*) > 1 ORDER BY second LIMIT 1"
                ))
                .load(conn)
                .map_err(map)?;
                if let Some(d) = dups.into_iter().next() {
                    return Err(Error::DuplicateId {
                        id: d.id,
                        first: usize::try_from(d.first).unwrap_or_default(),
                        second: usize::try_from(d.second).unwrap_or_default(),
                    });
                }
            }
            let cols = R::COLUMNS.join(", ");
            let mut text = format!(
                "INSERT INTO {t} ({cols}) SELECT DISTINCT ON (id) {cols} FROM {staging} ORDER BY id, ord DESC",
                t = self.table_name()
            );
            if exists_ok {
                text.push_str(&self.shapes().upsert_clause(R::COLUMNS));
            }
            let distinct: Vec<Count> =
                diesel::sql_query(format!("SELECT count(DISTINCT id) AS n FROM {staging}"))
                    .load(conn)
                    .map_err(map)?;
            let distinct = distinct.first().map_or(0, |c| c.n.max(0) as usize);
            match conn.transaction(|c| diesel::sql_query(text).execute(c)) {
                Ok(n) if n == distinct => Ok(n as u64),
                Ok(_) => Err(self.staged_existing(conn, true)?),
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    Err(self.staged_existing(conn, false)?)
                }
                Err(e) => Err(map(e)),
            }
        })
    }

    /// The [`Error::AlreadyExists`] naming the first staged record (in batch order) whose id
    /// exists already (only under another tenant when `foreign`).
    fn staged_existing(&self, conn: &mut PgConnection, foreign: bool) -> Result<Error> {
        let t = self.table_name();
        let owner = if !foreign {
            String::new()
        } else if self.table.is_agent_scoped() {
            " AND NOT (t.user_id = s.user_id AND t.agent_id IS NOT DISTINCT FROM s.agent_id)"
                .to_owned()
        } else {
            " AND t.user_id <> s.user_id".to_owned()
        };
        let rows: Vec<IdRow> = diesel::sql_query(format!(
            "SELECT s.id FROM {} s JOIN {t} t ON t.id = s.id WHERE true{owner} ORDER BY s.ord LIMIT 1",
            R::STAGING
        ))
        .load(conn)
        .map_err(map)?;
        let id = rows
            .first()
            .map(|r| r.id)
            .ok_or_else(|| Error::database("bulk insert wrote fewer rows than given"))?;
        Ok(Error::AlreadyExists {
            table: self.table,
            id,
        })
    }

    /// The [`Error::AlreadyExists`] naming the first record of `chunk` that exists already
    /// (only under another tenant when `foreign`).
    fn existing_id(&self, conn: &mut PgConnection, chunk: &[R], foreign: bool) -> Result<Error> {
        use diesel::sql_types::{Array, Nullable, Uuid as SqlUuid};
        let ids: Vec<Uuid> = chunk.iter().map(Record::id).collect();
        let agent_scoped = self.table.is_agent_scoped();
        let mut text = format!("SELECT id FROM {} WHERE id = ANY($1)", self.table_name());
        match (foreign, agent_scoped) {
            (true, true) => {
                text.push_str(" AND NOT (user_id = $2 AND agent_id IS NOT DISTINCT FROM $3)")
            }
            (true, false) => text.push_str(" AND user_id <> $2"),
            (false, _) => {}
        }
        let mut q = diesel::sql_query(text)
            .into_boxed::<diesel::pg::Pg>()
            .bind::<Array<SqlUuid>, _>(ids.clone());
        if foreign {
            q = q.bind::<SqlUuid, _>(self.scope.user_id());
            if agent_scoped {
                q = q.bind::<Nullable<SqlUuid>, _>(self.scope.agent_id());
            }
        }
        let rows: Vec<IdRow> = q.load(conn).map_err(map)?;
        let id = ids
            .into_iter()
            .find(|id| rows.iter().any(|r| r.id == *id))
            .ok_or_else(|| Error::database("insert wrote fewer rows than given"))?;
        Ok(Error::AlreadyExists {
            table: self.table,
            id,
        })
    }
}

impl<R: PgRecord> StorageConnector for PgConnector<'_, R> {
    type Record = R;

    fn table_type(&self) -> TableType {
        self.table
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn get_page(&self, filters: &[Filter], after: Option<&Keyset>, limit: usize) -> Result<Vec<R>> {
        validate_all(filters, self.table)?;
        let sql = self.shapes().page(filters, after, limit);
        self.read(|c| self.load(c, sql))
    }

    fn get_all_cursor(&self, request: &CursorRequest) -> Result<CursorPage<R>> {
        validate_all(&request.filters, self.table)?;
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
        validate_all(filters, self.table)?;
        let sql = self.shapes().recent(filters, limit);
        self.read(|c| self.load(c, sql))
    }

    fn get(&self, id: Uuid) -> Result<Option<R>> {
        let sql = self.shapes().by_id(id);
        Ok(self.read(|c| self.load(c, sql))?.into_iter().next())
    }

    fn size(&self, filters: &[Filter]) -> Result<u64> {
        validate_all(filters, self.table)?;
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
        let mut iter = records.into_iter().enumerate();
        let head: Vec<(usize, R)> = iter.by_ref().take(CHUNK + 1).collect();
        if head.len() > CHUNK {
            return self.write(|a| self.copy_many(a, head.into_iter().chain(iter), exists_ok));
        }
        for (i, r) in &head {
            self.check_owner(r).map_err(|e| e.in_batch(*i))?;
        }
        let chunk = BatchIds::new(exists_ok).fold(head)?;
        if chunk.is_empty() {
            return Ok(0);
        }
        self.write(|a| a.with(|c| self.insert_chunk(c, &chunk, exists_ok)))
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
        if !self.store().vector_search() {
            return Err(Error::VectorUnavailable {
                reason: "the pgvector extension is not installed on this server".to_owned(),
            });
        }
        let query = Embedding::new(embedding.to_vec()).map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid("query embedding", reason),
            other => other,
        })?;
        validate_all(filters, self.table)?;
        if top_k == 0 || self.table == TableType::Documents {
            return Ok(Vec::new());
        }
        let sql = self.sql_nearest(&query, top_k, filters);
        self.read(|conn| self.load(conn, sql))
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
        let sql = self.sql_text(&words.join(" "), limit, offset);
        self.read(|c| self.load(c, sql))
    }

    fn delete(&self, filters: &[Filter]) -> Result<u64> {
        validate_all(filters, self.table)?;
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
