//! The connector, written once for every backend.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::backend::{Backend, Sql, Stores, TextQuery, VectorQuery, Written};
use crate::batch::BatchIds;
use crate::connector::{CursorPage, CursorRequest, Keyset, StorageConnector};
use crate::error::{Error, Result};
use crate::filter::{validate_all, Filter};
use crate::fulltext::query_words;
use crate::plan::QueryPlan;
use crate::record::{Embedding, Record};
use crate::scope::Scope;
use crate::statement::{Param, Shapes, Statement};
use crate::table::TableType;
use crate::unit_of_work::{Access, UnitOfWork};

/// Where a connector gets its connection.
enum Source<'t, B: Backend> {
    /// The store: a connection checked out per call.
    Store(B),
    /// The connection of a unit of work.
    Tx(&'t UnitOfWork<B::Lease>, B),
}

impl<B: Backend> Clone for Source<'_, B> {
    fn clone(&self) -> Self {
        match self {
            Source::Store(b) => Source::Store(b.clone()),
            Source::Tx(u, b) => Source::Tx(u, b.clone()),
        }
    }
}

/// A connector of one table, bound to one tenant, on backend `B` (a store handle such as
/// `SqliteStore` or `PgStore`). Made by the store's `connector` (lifetime `'static`) or by
/// a unit of work's [`Tx::connector`]. Implements [`StorageConnector`]; see there for each
/// operation.
pub struct Connector<'t, B: Backend, R> {
    source: Source<'t, B>,
    table: TableType,
    scope: Scope,
    record: PhantomData<fn() -> R>,
}

impl<B: Backend, R> Clone for Connector<'_, B, R> {
    fn clone(&self) -> Self {
        Connector {
            source: self.source.clone(),
            table: self.table,
            scope: self.scope,
            record: PhantomData,
        }
    }
}

impl<B: Backend, R> std::fmt::Debug for Connector<'_, B, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("table", &self.table)
            .field("scope", &self.scope)
            .field(
                "source",
                &match self.source {
                    Source::Store(_) => "store",
                    Source::Tx(..) => "unit of work",
                },
            )
            .finish()
    }
}

/// The lease's connection.
fn project<B: Backend>(lease: &mut B::Lease) -> &mut B::Conn {
    lease
}

impl<'t, B: Stores<R>, R: Record> Connector<'t, B, R> {
    /// A connector of `table` bound to `scope` on the store `store`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it.
    pub fn new(store: B, table: TableType, scope: Scope) -> Result<Self> {
        Self::with_source(Source::Store(store), table, scope)
    }

    fn with_source(source: Source<'t, B>, table: TableType, scope: Scope) -> Result<Self> {
        if !R::stored_in(table) {
            return Err(Error::invalid(
                "table",
                format!("{table} does not store {}", std::any::type_name::<R>()),
            ));
        }
        scope.check_for(table)?;
        Ok(Connector {
            source,
            table,
            scope,
            record: PhantomData,
        })
    }

    /// The store this connector works on.
    pub fn store(&self) -> &B {
        match &self.source {
            Source::Store(b) | Source::Tx(_, b) => b,
        }
    }

    /// The statement shapes of this connector.
    pub fn shapes(&self) -> Shapes<'_, B> {
        Shapes::new(self.table, &self.scope, B::SELECT)
    }

    /// Runs the reads of `f` on one connection: a read connection of the store, or the unit
    /// of work's (in a savepoint of its own).
    fn read<T>(&self, f: impl FnOnce(&mut B::Conn) -> Result<T>) -> Result<T> {
        match &self.source {
            Source::Store(store) => {
                let mut lease = store.read_lease()?;
                store.read_on(&mut lease, f)
            }
            Source::Tx(uow, _) => uow.call(|| uow.with(|lease| f(lease))),
        }
    }

    /// Runs `f` as one write, all or nothing: in a write transaction of its own, or in a
    /// savepoint of the unit of work. `f` reaches the connection through its [`Access`],
    /// one round at a time, so that it may pull records from caller code between rounds.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Access<'_, B::Conn, B::Lease>) -> Result<T>,
    ) -> Result<T> {
        match &self.source {
            Source::Store(store) => {
                let mut lease = store.write_lease()?;
                store.write_transaction(&mut *lease, |c| f(&mut Access::Direct(c)))
            }
            Source::Tx(uow, _) => uow.write_call(|| f(&mut Access::Shared(uow, project::<B>))),
        }
    }

    /// Checks that `r` belongs to the scope and that its embedding has the store's length
    /// (where the store enforces one).
    fn check_owner(&self, r: &R) -> Result<()> {
        self.scope.check_owner(r.user_id(), r.agent_id())?;
        self.check_dim("embedding", r.embedding().map(Embedding::dim))
    }

    /// [`Error::InvalidInput`] when the store enforces an embedding length and `found`
    /// differs from it.
    fn check_dim(&self, field: &str, found: Option<usize>) -> Result<()> {
        match (self.store().embedding_dim(), found) {
            (Some(expected), Some(found)) if expected != found => Err(Error::invalid(
                field,
                format!("expected {expected} values, found {found}"),
            )),
            _ => Ok(()),
        }
    }

    /// Checks that each record of the call belongs to the scope, naming the one that does
    /// not by its index.
    pub fn check_owners<'r>(&self, records: impl IntoIterator<Item = &'r (usize, R)>) -> Result<()>
    where
        R: 'r,
    {
        records
            .into_iter()
            .try_for_each(|(i, r)| self.check_owner(r).map_err(|e| e.in_batch(*i)))
    }

    fn keyset_of(&self, conn: &mut B::Conn, id: Uuid) -> Result<Keyset> {
        B::load_keyset(conn, self.shapes().keyset_of(id), self.table)?.ok_or(Error::NotFound {
            table: self.table,
            id,
        })
    }

    /// Writes one chunk of distinct records; returns the rows written. The rows go in id
    /// order: every write locks rows in the same order, so two calls upserting the same ids
    /// never wait on each other crosswise (no deadlock).
    fn insert_chunk(&self, conn: &mut B::Conn, chunk: &[R], exists_ok: bool) -> Result<u64> {
        let mut in_id_order: Vec<&R> = chunk.iter().collect();
        in_id_order.sort_unstable_by_key(|r| r.id());
        let sql =
            self.shapes()
                .insert(B::COLUMNS, in_id_order.into_iter().map(B::binds), exists_ok);
        match B::insert(conn, sql)? {
            Written::Rows(n) if n == chunk.len() => Ok(n as u64),
            // Fewer rows than records: an upsert met an id of another tenant.
            Written::Rows(_) => Err(self.existing_id(conn, chunk.iter().map(Record::id), true)?),
            Written::UniqueViolation => {
                Err(self.existing_id(conn, chunk.iter().map(Record::id), false)?)
            }
        }
    }

    /// The [`Error::AlreadyExists`] naming the first of `ids` that exists already (only
    /// under another tenant when `foreign`).
    pub fn existing_id(
        &self,
        conn: &mut B::Conn,
        ids: impl Iterator<Item = Uuid> + Clone,
        foreign: bool,
    ) -> Result<Error> {
        let id = self
            .first_existing(conn, ids, foreign)?
            .ok_or_else(|| Error::database("insert wrote fewer rows than given"))?;
        Ok(Error::AlreadyExists {
            table: self.table,
            id,
        })
    }

    /// The first of `ids` that exists already (only under another tenant when
    /// `foreign`).
    fn first_existing(
        &self,
        conn: &mut B::Conn,
        ids: impl Iterator<Item = Uuid> + Clone,
        foreign: bool,
    ) -> Result<Option<Uuid>> {
        if ids.clone().next().is_none() {
            return Ok(None);
        }
        let mut sql: Sql<B> = Statement::new(format!(
            "SELECT id FROM {} WHERE id IN",
            self.table.table_name()
        ));
        sql.list(ids.clone().map(|id| Param::Uuid(Some(id))));
        if foreign {
            sql.push(" AND NOT (user_id = ")
                .param(Param::Uuid(Some(self.scope.user_id())));
            if let (true, Some(a)) = (self.table.is_agent_scoped(), self.scope.agent_id()) {
                sql.push(&format!(" AND agent_id {} ", B::NULL_SAFE_EQ))
                    .param(Param::Uuid(Some(a)));
            }
            sql.push(")");
        }
        let existing = B::load_ids(conn, sql, self.table)?;
        Ok(ids.into_iter().find(|id| existing.contains(id)))
    }

    /// Folds one chunk of a call by the duplicate rule of [`BatchIds`]. The record with the
    /// smallest index that cannot be written decides the error: when the chunk repeats an
    /// id, an earlier record of the chunk whose id is already in the table makes it
    /// [`Error::AlreadyExists`] instead of [`Error::DuplicateId`].
    ///
    /// # Errors
    /// As described; what the database reports.
    pub fn fold_chunk(
        &self,
        access: &mut Access<'_, B::Conn, B::Lease>,
        ids: &mut BatchIds,
        chunk: Vec<(usize, R)>,
    ) -> Result<Vec<R>> {
        let keys: Vec<(usize, Uuid)> = chunk.iter().map(|(i, r)| (*i, r.id())).collect();
        match ids.fold(chunk) {
            Err(Error::DuplicateId { id, first, second }) => {
                let before = keys.iter().filter(|(i, _)| *i < second).map(|(_, id)| *id);
                match access.with(|c| self.first_existing(c, before, false))? {
                    Some(existing) => Err(Error::AlreadyExists {
                        table: self.table,
                        id: existing,
                    }),
                    None => Err(Error::DuplicateId { id, first, second }),
                }
            }
            other => other,
        }
    }

    /// Writes `records` in chunks of [`chunk_size`](Backend::chunk_size) multi-row
    /// `INSERT`s, folding repeated ids by the whole call's rule. Records are pulled from
    /// the iterator between database rounds.
    fn insert_chunks(
        &self,
        access: &mut Access<'_, B::Conn, B::Lease>,
        records: &mut dyn Iterator<Item = (usize, R)>,
        exists_ok: bool,
    ) -> Result<u64> {
        let size = self.store().chunk_size().max(1);
        let mut ids = BatchIds::new(exists_ok);
        loop {
            let chunk: Vec<(usize, R)> = records.take(size).collect();
            if chunk.is_empty() {
                return Ok(ids.distinct());
            }
            self.check_owners(&chunk)?;
            let chunk = self.fold_chunk(access, &mut ids, chunk)?;
            access.with(|c| self.insert_chunk(c, &chunk, exists_ok))?;
        }
    }

    /// Runs the backend's `EXPLAIN` (never executing anything) on every query pattern
    /// this connector issues, with sample arguments in its scope. `cargo xtask doctor`
    /// prints these and flags any plan that reads a whole table.
    ///
    /// # Errors
    /// What the database reports.
    pub fn explain(&self) -> Result<Vec<QueryPlan>> {
        let shapes = self.shapes();
        let mut patterns: Vec<(&'static str, Sql<B>)> = shapes.explain_patterns();
        let text = TextQuery {
            words: &["memory"],
            limit: None,
            offset: 0,
        };
        patterns.push(("query_text", B::text_match(&shapes, &text)));
        if self.table != TableType::Documents && self.store().vector_support().is_ok() {
            let probe = Embedding::new(vec![0.0; 8])?;
            let query = VectorQuery {
                embedding: &probe,
                top_k: 10,
                filters: &[],
            };
            patterns.push(("query", B::nearest(&shapes, &query)));
        }
        self.read(|conn| {
            patterns
                .into_iter()
                .map(|(operation, sql)| B::explain(conn, sql, self.table, operation))
                .collect()
        })
    }
}

impl<B: Stores<R>, R: Record> StorageConnector for Connector<'_, B, R> {
    type Record = R;

    fn table_type(&self) -> TableType {
        self.table
    }

    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn get_page(&self, filters: &[Filter], after: Option<&Keyset>, limit: usize) -> Result<Vec<R>> {
        crate::trace::call(self.table, "get_page", || {
            validate_all(filters, self.table)?;
            let sql = self.shapes().page(filters, after, limit);
            self.read(|c| B::load(c, sql, self.table))
        })
    }

    fn get_all_cursor(&self, request: &CursorRequest) -> Result<CursorPage<R>> {
        crate::trace::call(self.table, "get_all_cursor", || {
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
                let records = B::load(conn, sql, self.table)?;
                Ok(CursorPage {
                    last_id: records.last().map(Record::id),
                    records,
                })
            })
        })
    }

    fn get_all(&self, filters: &[Filter], limit: Option<usize>) -> Result<Vec<R>> {
        crate::trace::call(self.table, "get_all", || {
            validate_all(filters, self.table)?;
            let sql = self.shapes().recent(filters, limit);
            self.read(|c| B::load(c, sql, self.table))
        })
    }

    fn get(&self, id: Uuid) -> Result<Option<R>> {
        crate::trace::call(self.table, "get", || {
            let sql = self.shapes().by_id(id);
            Ok(self
                .read(|c| B::load(c, sql, self.table))?
                .into_iter()
                .next())
        })
    }

    fn size(&self, filters: &[Filter]) -> Result<u64> {
        crate::trace::call(self.table, "size", || {
            validate_all(filters, self.table)?;
            let sql = self.shapes().count(filters);
            self.read(|c| B::count(c, sql))
        })
    }

    fn insert(&self, record: &R) -> Result<()> {
        crate::trace::call(self.table, "insert", || {
            self.check_owner(record)?;
            self.write(|a| a.with(|c| self.insert_chunk(c, std::slice::from_ref(record), true)))
                .map(|_| ())
        })
    }

    fn insert_many<I>(&self, records: I, exists_ok: bool) -> Result<u64>
    where
        I: IntoIterator<Item = R>,
    {
        crate::trace::call(self.table, "insert_many", || {
            let size = self.store().chunk_size().max(1);
            let mut iter = records.into_iter().enumerate();
            // The caller's iterator runs outside any database round: it may read this store,
            // or this unit of work. On the store, the first records are pulled before a
            // connection is taken (none for an empty call); in a unit of work, inside the
            // call, so that a write started by the iterator is refused from its first record
            // on, whatever the backend's chunk size (`Error::NestedWrite`).
            let in_unit_of_work = matches!(self.source, Source::Tx(..));
            let pull = |iter: &mut std::iter::Enumerate<I::IntoIter>| -> Vec<(usize, R)> {
                iter.by_ref().take(size + 1).collect()
            };
            let mut head = Vec::new();
            if !in_unit_of_work {
                head = pull(&mut iter);
                if head.is_empty() {
                    return Ok(0);
                }
            }
            self.write(|access| {
                if in_unit_of_work {
                    head = pull(&mut iter);
                }
                if head.is_empty() {
                    return Ok(0);
                }
                let many = head.len() > size;
                let mut all = std::mem::take(&mut head).into_iter().chain(iter.by_ref());
                if many {
                    if let Some(done) = self.store().bulk_insert(self, access, &mut all, exists_ok)
                    {
                        return done;
                    }
                }
                self.insert_chunks(access, &mut all, exists_ok)
            })
        })
    }

    fn update(&self, record: &R) -> Result<()> {
        crate::trace::call(self.table, "update", || {
            self.check_owner(record)?;
            let sql = self
                .shapes()
                .update(B::COLUMNS, B::binds(record), record.id());
            match self.write(|a| a.with(|c| B::execute(c, sql)))? {
                Written::Rows(0) => Err(Error::NotFound {
                    table: self.table,
                    id: record.id(),
                }),
                Written::Rows(_) => Ok(()),
                Written::UniqueViolation => Err(Error::AlreadyExists {
                    table: self.table,
                    id: record.id(),
                }),
            }
        })
    }

    fn query(&self, embedding: &[f32], top_k: usize, filters: &[Filter]) -> Result<Vec<R>> {
        crate::trace::call(self.table, "query", || {
            self.store().vector_support()?;
            let query = Embedding::new(embedding.to_vec()).map_err(|e| match e {
                Error::InvalidInput { reason, .. } => Error::invalid("query embedding", reason),
                other => other,
            })?;
            self.check_dim("query embedding", Some(query.dim()))?;
            validate_all(filters, self.table)?;
            if top_k == 0 || self.table == TableType::Documents {
                return Ok(Vec::new());
            }
            let query = VectorQuery {
                embedding: &query,
                top_k,
                filters,
            };
            let sql = B::nearest(&self.shapes(), &query);
            self.read(|c| B::load(c, sql, self.table))
        })
    }

    fn query_date(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        crate::trace::call(self.table, "query_date", || {
            let sql = self.shapes().dates(start, end, limit, offset);
            self.read(|c| B::load(c, sql, self.table))
        })
    }

    fn query_text(&self, query: &str, limit: Option<usize>, offset: usize) -> Result<Vec<R>> {
        crate::trace::call(self.table, "query_text", || {
            let words = query_words(query)?;
            if words.is_empty() {
                return Ok(Vec::new());
            }
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let query = TextQuery {
                words: &words,
                limit,
                offset,
            };
            let sql = B::text_match(&self.shapes(), &query);
            self.read(|c| B::load(c, sql, self.table))
        })
    }

    fn delete(&self, filters: &[Filter]) -> Result<u64> {
        crate::trace::call(self.table, "delete", || {
            validate_all(filters, self.table)?;
            let sql = self.shapes().delete(filters);
            match self.write(|a| a.with(|c| B::execute(c, sql)))? {
                Written::Rows(n) => Ok(n as u64),
                Written::UniqueViolation => Err(Error::database("a delete met a unique violation")),
            }
        })
    }

    fn list_data_sources(&self) -> Result<Vec<String>> {
        crate::trace::call(self.table, "list_data_sources", || {
            if self.table == TableType::RecallMemory {
                return Ok(Vec::new());
            }
            let sql = self.shapes().sources();
            self.read(|c| B::load_strings(c, sql))
        })
    }
}

/// A unit of work in progress on backend `B`: connectors made from it share its connection
/// and its transaction. See `SqliteStore::transaction` / `PgStore::transaction` and
/// [`unit_of_work`](crate::unit_of_work).
pub struct Tx<'t, B: Backend> {
    uow: &'t UnitOfWork<B::Lease>,
    store: B,
}

impl<B: Backend> std::fmt::Debug for Tx<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl<'t, B: Backend> Tx<'t, B> {
    /// The unit of work `uow` on `store`.
    pub fn new(uow: &'t UnitOfWork<B::Lease>, store: B) -> Self {
        Tx { uow, store }
    }

    /// A connector of `table` bound to `scope` that works inside this unit of work.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it.
    pub fn connector<R: Record>(
        &self,
        table: TableType,
        scope: Scope,
    ) -> Result<Connector<'t, B, R>>
    where
        B: Stores<R>,
    {
        Connector::with_source(Source::Tx(self.uow, self.store.clone()), table, scope)
    }
}
