//! The connector, written once for every backend.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::backend::{Backend, Sql, Stores, TextQuery, VectorQuery, Written};
use crate::batch::BatchIds;
use crate::error::{Error, Result};
use crate::filter::{validate_all, Filter};
use crate::fulltext::query_words;
use crate::plan::QueryPlan;
use crate::record::{Embedding, Record};
use crate::scope::Scope;
use crate::statement::{Param, Shapes, Statement};
use crate::storage_connector::{CursorPage, CursorRequest, Keyset, StorageConnector};
use crate::table::TableType;
use crate::unit_of_work::UnitOfWork;

/// A value only this crate makes: [`Source`]'s methods take one, so that only the
/// connector calls them (they hand out a raw connection).
#[derive(Debug, Clone, Copy)]
pub struct Internal(());

/// Where the calls of a connector get their connection: the store (a connection checked
/// out per call; the store handle itself is the source), or a unit of work ([`InTx`]).
/// Its methods are the connector's: they take an [`Internal`], which only memgpt-core
/// makes.
pub trait Source {
    /// The backend.
    type Backend: Backend;

    /// The store.
    fn store(&self) -> &Self::Backend;

    /// Runs the reads of one call on one connection: a read connection of the store, or
    /// the unit of work's (in a savepoint of its own).
    ///
    /// # Errors
    /// `f`'s error; no connection; [`Error::Aborted`] in a unit of work that has ended.
    fn read<T>(
        &self,
        internal: Internal,
        f: impl FnOnce(&mut <Self::Backend as Backend>::Conn) -> Result<T>,
    ) -> Result<T>;

    /// Runs `f` as one write, all or nothing: in a write transaction of its own, or in a
    /// savepoint of the unit of work. `f` holds the connection throughout and may pull
    /// records from caller code between database rounds.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    fn write<T>(
        &self,
        internal: Internal,
        f: impl FnOnce(&mut <Self::Backend as Backend>::Conn) -> Result<T>,
    ) -> Result<T>;

    /// `Ok` unless the source is a unit of work that has ended ([`Error::Aborted`]): a
    /// call with nothing to do says so too.
    ///
    /// # Errors
    /// [`Error::Aborted`].
    fn usable(&self, _: Internal) -> Result<()> {
        Ok(())
    }
}

impl<B: Backend> Source for B {
    type Backend = B;

    fn store(&self) -> &B {
        self
    }

    fn read<T>(&self, _: Internal, f: impl FnOnce(&mut B::Conn) -> Result<T>) -> Result<T> {
        let mut lease = self.read_lease()?;
        self.read_on(&mut lease, f)
    }

    fn write<T>(&self, _: Internal, f: impl FnOnce(&mut B::Conn) -> Result<T>) -> Result<T> {
        let mut lease = self.write_lease()?;
        self.write_transaction(&mut lease, f)
    }
}

/// The source of a connector made by a unit of work ([`Tx::connector`]): its connection,
/// inside its transaction. Neither `Send` nor `Sync`, as the unit of work.
pub struct InTx<'t, B: Backend> {
    uow: &'t UnitOfWork<B::Lease>,
    store: B,
}

impl<B: Backend> Clone for InTx<'_, B> {
    fn clone(&self) -> Self {
        InTx {
            uow: self.uow,
            store: self.store.clone(),
        }
    }
}

impl<B: Backend> Source for InTx<'_, B> {
    type Backend = B;

    fn store(&self) -> &B {
        &self.store
    }

    fn read<T>(&self, _: Internal, f: impl FnOnce(&mut B::Conn) -> Result<T>) -> Result<T> {
        self.uow.call(|lease| f(lease))
    }

    fn write<T>(&self, _: Internal, f: impl FnOnce(&mut B::Conn) -> Result<T>) -> Result<T> {
        self.uow.call(|lease| f(lease))
    }

    fn usable(&self, _: Internal) -> Result<()> {
        match self.uow.failure() {
            Some(message) => Err(Error::Aborted { message }),
            None => Ok(()),
        }
    }
}

/// A connector of one table, bound to one tenant, whose calls get their connection from
/// `S`: a store handle such as `SqliteStore` or `PgStore` (made by the store's
/// `connector`), or a unit of work ([`InTx`], made by [`Tx::connector`]). Implements
/// [`StorageConnector`]; see there for each operation.
pub struct Connector<S: Source, R> {
    source: S,
    target: Scoped<S::Backend, R>,
}

impl<S: Source + Clone, R> Clone for Connector<S, R> {
    fn clone(&self) -> Self {
        Connector {
            source: self.source.clone(),
            target: self.target.clone(),
        }
    }
}

impl<S: Source, R> std::fmt::Debug for Connector<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("table", &self.target.table)
            .field("scope", &self.target.scope)
            .finish_non_exhaustive()
    }
}

impl<S: Source, R: Record> Connector<S, R>
where
    S::Backend: Stores<R>,
{
    /// A connector of `table` bound to `scope` whose calls get their connection from
    /// `source` (a store handle).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it.
    pub fn new(source: S, table: TableType, scope: Scope) -> Result<Self> {
        let target = Scoped::new(source.store().clone(), table, scope)?;
        Ok(Connector { source, target })
    }

    /// The store this connector works on.
    pub fn store(&self) -> &S::Backend {
        self.source.store()
    }

    /// The table, tenant and store of this connector, apart from its connection.
    pub fn target(&self) -> &Scoped<S::Backend, R> {
        &self.target
    }
}

/// What a connector works on apart from its connection: a table, a tenant, and the store
/// (its settings). The rules of a call that need a connection take it as an argument.
pub struct Scoped<B, R> {
    store: B,
    table: TableType,
    scope: Scope,
    record: PhantomData<fn() -> R>,
}

impl<B: Clone, R> Clone for Scoped<B, R> {
    fn clone(&self) -> Self {
        Scoped {
            store: self.store.clone(),
            table: self.table,
            scope: self.scope,
            record: PhantomData,
        }
    }
}

impl<B: Stores<R>, R: Record> Scoped<B, R> {
    fn new(store: B, table: TableType, scope: Scope) -> Result<Self> {
        if !R::stored_in(table) {
            return Err(Error::invalid(
                "table",
                format!("{table} does not store {}", std::any::type_name::<R>()),
            ));
        }
        scope.check_for(table)?;
        Ok(Scoped {
            store,
            table,
            scope,
            record: PhantomData,
        })
    }

    /// The store.
    pub fn store(&self) -> &B {
        &self.store
    }

    /// The table.
    pub fn table(&self) -> TableType {
        self.table
    }

    /// The tenant.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The statement shapes of this table and tenant.
    pub fn shapes(&self) -> Shapes<'_, B> {
        Shapes::new(self.table, &self.scope, B::SELECT)
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
        match (self.store.embedding_dim(), found) {
            (Some(expected), Some(found)) if expected != found => Err(Error::invalid(
                field,
                format!("expected {expected} values, found {found}"),
            )),
            _ => Ok(()),
        }
    }

    /// Checks that each record of the call belongs to the scope, naming the one that does
    /// not by its index.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the record.
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

    /// Writes one chunk of distinct records (in call order); returns the rows written.
    /// The statement reports the ids it wrote (`RETURNING id`); an id that exists already
    /// writes nothing and fails nothing (`ON CONFLICT (id) DO NOTHING`, or an upsert's
    /// tenant guard), and the first record of the chunk not written decides
    /// [`Error::AlreadyExists`]: the database reports, the connector decides. The rows go
    /// in id order: every write locks rows in the same order, so two calls upserting the
    /// same ids never wait on each other crosswise (no deadlock).
    fn insert_chunk(&self, conn: &mut B::Conn, chunk: &[R], exists_ok: bool) -> Result<u64> {
        let mut in_id_order: Vec<&R> = chunk.iter().collect();
        in_id_order.sort_unstable_by_key(|r| r.id());
        let mut sql =
            self.shapes()
                .insert(B::COLUMNS, in_id_order.into_iter().map(B::binds), exists_ok);
        sql.push(" RETURNING id");
        let written: std::collections::HashSet<Uuid> =
            B::load_ids(conn, sql, self.table)?.into_iter().collect();
        match chunk
            .iter()
            .map(Record::id)
            .find(|id| !written.contains(id))
        {
            None => Ok(chunk.len() as u64),
            Some(id) => Err(Error::AlreadyExists {
                table: self.table,
                id,
            }),
        }
    }

    /// The [`Error::AlreadyExists`] naming the first of `ids` that exists already (only
    /// under another tenant when `foreign`).
    ///
    /// # Errors
    /// What the database reports.
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
        conn: &mut B::Conn,
        ids: &mut BatchIds,
        chunk: Vec<(usize, R)>,
    ) -> Result<Vec<R>> {
        let keys: Vec<(usize, Uuid)> = chunk.iter().map(|(i, r)| (*i, r.id())).collect();
        match ids.fold(chunk) {
            Err(Error::DuplicateId { id, first, second }) => {
                let before = keys.iter().filter(|(i, _)| *i < second).map(|(_, id)| *id);
                match self.first_existing(conn, before, false)? {
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
        conn: &mut B::Conn,
        records: &mut dyn Iterator<Item = (usize, R)>,
        exists_ok: bool,
    ) -> Result<u64> {
        let size = self.store.chunk_size().max(1);
        let mut ids = BatchIds::new(exists_ok);
        loop {
            let chunk: Vec<(usize, R)> = records.take(size).collect();
            if chunk.is_empty() {
                return Ok(ids.distinct());
            }
            self.check_owners(&chunk)?;
            let chunk = self.fold_chunk(conn, &mut ids, chunk)?;
            self.insert_chunk(conn, &chunk, exists_ok)?;
        }
    }
}

impl<S: Source, R: Record> Connector<S, R>
where
    S::Backend: Stores<R>,
{
    /// Runs the backend's `EXPLAIN` (never executing anything) on every query pattern
    /// this connector issues, with sample arguments in its scope. `cargo xtask doctor`
    /// prints these and flags any plan that reads a whole table.
    ///
    /// # Errors
    /// What the database reports.
    pub fn explain(&self) -> Result<Vec<QueryPlan>> {
        let t = &self.target;
        let shapes = t.shapes();
        let mut patterns: Vec<(&'static str, Sql<S::Backend>)> = shapes.explain_patterns();
        let text = TextQuery {
            words: &["memory"],
            limit: None,
            offset: 0,
        };
        patterns.push(("query_text", <S::Backend>::text_match(&shapes, &text)));
        if t.table != TableType::Documents && self.store().vector_support().is_ok() {
            let probe = Embedding::new(vec![0.0; 8])?;
            let query = VectorQuery {
                embedding: &probe,
                top_k: 10,
                filters: &[],
            };
            patterns.push(("query", <S::Backend>::nearest(&shapes, &query)));
        }
        self.source.read(Internal(()), |conn| {
            patterns
                .into_iter()
                .map(|(operation, sql)| <S::Backend>::explain(conn, sql, t.table, operation))
                .collect()
        })
    }

    /// Runs a read of whole records.
    fn load(&self, sql: Sql<S::Backend>) -> Result<Vec<R>> {
        let table = self.target.table;
        self.source.read(Internal(()), |c| {
            <S::Backend as Stores<R>>::load(c, sql, table)
        })
    }

    /// Runs a write statement.
    fn execute(&self, sql: Sql<S::Backend>) -> Result<Written> {
        self.source
            .write(Internal(()), |c| <S::Backend>::execute(c, sql))
    }
}

impl<S: Source, R: Record> StorageConnector for Connector<S, R>
where
    S::Backend: Stores<R>,
{
    type Record = R;

    fn table_type(&self) -> TableType {
        self.target.table
    }

    fn scope(&self) -> &Scope {
        &self.target.scope
    }

    fn get_page(&self, filters: &[Filter], after: Option<&Keyset>, limit: usize) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get_page", || {
            validate_all(filters, t.table)?;
            self.load(t.shapes().page(filters, after, limit))
        })
    }

    fn get_all_cursor(&self, request: &CursorRequest) -> Result<CursorPage<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get_all_cursor", || {
            validate_all(&request.filters, t.table)?;
            self.source.read(Internal(()), |conn| {
                let after = request.after.map(|id| t.keyset_of(conn, id)).transpose()?;
                let before = request.before.map(|id| t.keyset_of(conn, id)).transpose()?;
                let sql = t.shapes().cursor(
                    &request.filters,
                    after.as_ref(),
                    before.as_ref(),
                    request.limit,
                    request.reverse,
                );
                let records = <S::Backend as Stores<R>>::load(conn, sql, t.table)?;
                Ok(CursorPage {
                    last_id: records.last().map(Record::id),
                    records,
                })
            })
        })
    }

    fn get_all(&self, filters: &[Filter], limit: Option<usize>) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get_all", || {
            validate_all(filters, t.table)?;
            self.load(t.shapes().recent(filters, limit))
        })
    }

    fn get(&self, id: Uuid) -> Result<Option<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get", || {
            Ok(self.load(t.shapes().by_id(id))?.into_iter().next())
        })
    }

    fn size(&self, filters: &[Filter]) -> Result<u64> {
        let t = &self.target;
        crate::trace::call(t.table, "size", || {
            validate_all(filters, t.table)?;
            let sql = t.shapes().count(filters);
            self.source
                .read(Internal(()), |c| <S::Backend>::count(c, sql))
        })
    }

    fn insert(&self, record: &R) -> Result<()> {
        let t = &self.target;
        crate::trace::call(t.table, "insert", || {
            t.check_owner(record)?;
            self.source
                .write(Internal(()), |c| {
                    t.insert_chunk(c, std::slice::from_ref(record), true)
                })
                .map(|_| ())
        })
    }

    fn insert_many<I>(&self, records: I, exists_ok: bool) -> Result<u64>
    where
        I: IntoIterator<Item = R>,
        I::IntoIter: Send,
    {
        let t = &self.target;
        crate::trace::call(t.table, "insert_many", || {
            let size = self.store().chunk_size().max(1);
            let mut iter = records.into_iter().enumerate();
            // The first records are pulled before a connection is taken (none for an
            // empty call). The iterator cannot reach this unit of work, if any: it is
            // `Send`, and nothing referring to a unit of work is.
            let head: Vec<(usize, R)> = iter.by_ref().take(size + 1).collect();
            if head.is_empty() {
                return self.source.usable(Internal(())).map(|()| 0);
            }
            self.source.write(Internal(()), |conn| {
                let many = head.len() > size;
                let mut all = head.into_iter().chain(iter.by_ref());
                if many {
                    if let Some(done) = self.store().bulk_insert(t, conn, &mut all, exists_ok) {
                        return done;
                    }
                }
                t.insert_chunks(conn, &mut all, exists_ok)
            })
        })
    }

    fn update(&self, record: &R) -> Result<()> {
        let t = &self.target;
        crate::trace::call(t.table, "update", || {
            t.check_owner(record)?;
            let id = record.id();
            let binds = <S::Backend as Stores<R>>::binds(record);
            let columns = <S::Backend as Stores<R>>::COLUMNS;
            match self.execute(t.shapes().update(columns, binds, id))? {
                Written::Rows(0) => Err(Error::NotFound { table: t.table, id }),
                Written::Rows(_) => Ok(()),
                Written::UniqueViolation => Err(Error::AlreadyExists { table: t.table, id }),
            }
        })
    }

    fn query(&self, embedding: &[f32], top_k: usize, filters: &[Filter]) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "query", || {
            self.store().vector_support()?;
            let query = Embedding::new(embedding.to_vec()).map_err(|e| match e {
                Error::InvalidInput { reason, .. } => Error::invalid("query embedding", reason),
                other => other,
            })?;
            t.check_dim("query embedding", Some(query.dim()))?;
            validate_all(filters, t.table)?;
            if top_k == 0 || t.table == TableType::Documents {
                return Ok(Vec::new());
            }
            let query = VectorQuery {
                embedding: &query,
                top_k,
                filters,
            };
            self.load(<S::Backend>::nearest(&t.shapes(), &query))
        })
    }

    fn query_date(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "query_date", || {
            self.load(t.shapes().dates(start, end, limit, offset))
        })
    }

    fn query_text(&self, query: &str, limit: Option<usize>, offset: usize) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "query_text", || {
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
            self.load(<S::Backend>::text_match(&t.shapes(), &query))
        })
    }

    fn delete(&self, filters: &[Filter]) -> Result<u64> {
        let t = &self.target;
        crate::trace::call(t.table, "delete", || {
            validate_all(filters, t.table)?;
            match self.execute(t.shapes().delete(filters))? {
                Written::Rows(n) => Ok(n as u64),
                Written::UniqueViolation => Err(Error::database("a delete met a unique violation")),
            }
        })
    }

    fn list_data_sources(&self) -> Result<Vec<String>> {
        let t = &self.target;
        crate::trace::call(t.table, "list_data_sources", || {
            if t.table == TableType::RecallMemory {
                return Ok(Vec::new());
            }
            let sql = t.shapes().sources();
            self.source
                .read(Internal(()), |c| <S::Backend>::load_strings(c, sql))
        })
    }
}

/// A unit of work in progress on backend `B`: connectors made from it share its connection
/// and its transaction, on the thread that runs it (neither it nor its connectors are
/// `Send` or `Sync`). See `SqliteStore::transaction` / `PgStore::transaction` and
/// [`unit_of_work`](crate::unit_of_work).
pub struct Tx<'t, B: Backend> {
    source: InTx<'t, B>,
}

impl<B: Backend> std::fmt::Debug for Tx<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl<'t, B: Backend> Tx<'t, B> {
    /// The unit of work `uow` on `store`.
    pub fn new(uow: &'t UnitOfWork<B::Lease>, store: B) -> Self {
        Tx {
            source: InTx { uow, store },
        }
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
    ) -> Result<Connector<InTx<'t, B>, R>>
    where
        B: Stores<R>,
    {
        Connector::new(self.source.clone(), table, scope)
    }
}
