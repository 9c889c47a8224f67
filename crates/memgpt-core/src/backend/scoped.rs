//! What a connector works on apart from its connection, and the rules of a call that run
//! on a connection given to them: scope checks, chunked inserts, the duplicate rule.

use std::marker::PhantomData;

use uuid::Uuid;

use crate::backend::{Backend, Sql};
use crate::batch::{BatchIds, Conflict};
use crate::embedding::Embedding;
use crate::error::{Error, Result};
use crate::keyset::Keyset;
use crate::record::Record;
use crate::row::Id;
use crate::scope::Scope;
use crate::statement::{Param, Shapes, Statement};
use crate::table::TableType;

/// What a connector works on apart from its connection: a table, a tenant, and the store
/// (its settings). The rules of a call that need a connection take it as an argument.
pub struct Scoped<B, R> {
    store: B,
    pub(crate) table: TableType,
    pub(crate) scope: Scope,
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

impl<B: Backend, R: Record> Scoped<B, R> {
    pub(crate) fn new(store: B, table: TableType, scope: Scope) -> Result<Self> {
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
        Shapes::new(self.table, &self.scope, B::select(self.table))
    }

    /// Checks that `r` belongs to the scope and that its embedding has the store's length
    /// (where the store enforces one).
    pub(crate) fn check_owner(&self, r: &R) -> Result<()> {
        self.scope.check_owner(r.user_id(), r.agent_id())?;
        self.check_dim("embedding", r.embedding().map(Embedding::dim))
    }

    /// [`Error::InvalidInput`] when the store enforces an embedding length and `found`
    /// differs from it.
    pub(crate) fn check_dim(&self, field: &str, found: Option<usize>) -> Result<()> {
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

    pub(crate) fn keyset_of(&self, conn: &mut B::Conn, id: Uuid) -> Result<Keyset> {
        B::fetch::<Keyset>(conn, self.shapes().keyset_of(id), self.table)?
            .into_iter()
            .next()
            .ok_or(Error::NotFound {
                table: self.table,
                id,
            })
    }

    /// Writes one chunk of distinct records, each with its index in the call, in call
    /// order. The statement reports the ids it wrote (`RETURNING id`); an id that exists
    /// already writes nothing and fails nothing (`ON CONFLICT (id) DO NOTHING`, or an
    /// upsert's tenant guard), and the first record of the chunk not written is the
    /// [`Conflict`] the call fails on: the database reports, core decides. The rows go in id order:
    /// every write locks rows in the same order, so two calls upserting the same ids never
    /// wait on each other crosswise (no deadlock).
    pub(crate) fn insert_chunk(
        &self,
        conn: &mut B::Conn,
        chunk: &[(usize, &R)],
        exists_ok: bool,
    ) -> Result<u64> {
        let mut in_id_order: Vec<&R> = chunk.iter().map(|(_, r)| *r).collect();
        in_id_order.sort_unstable_by_key(|r| r.id());
        let rows = in_id_order.into_iter().map(|r| r.values::<B>(self.table));
        let mut sql = self.shapes().insert(R::COLUMNS, rows, exists_ok);
        sql.push(" RETURNING id");
        let written: std::collections::HashSet<Uuid> = B::fetch::<Id>(conn, sql, self.table)?
            .into_iter()
            .map(|id| id.0)
            .collect();
        match chunk.iter().find(|(_, r)| !written.contains(&r.id())) {
            None => Ok(chunk.len() as u64),
            Some(&(index, r)) => Err(Conflict {
                index,
                id: r.id(),
                earlier: None,
            }
            .error(self.table)),
        }
    }

    /// The [`Conflict`] of the first of `keys` (records of the call with their indexes, in
    /// call order) whose id is in the table already (only under another tenant when
    /// `foreign`); `None` when none is.
    ///
    /// # Errors
    /// What the database reports.
    pub fn existing(
        &self,
        conn: &mut B::Conn,
        keys: &[(usize, Uuid)],
        foreign: bool,
    ) -> Result<Option<Conflict>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut sql: Sql<B> = Statement::new(format!(
            "SELECT id FROM {} WHERE id IN",
            self.table.table_name()
        ));
        sql.list(keys.iter().map(|(_, id)| Param::Uuid(Some(*id))));
        if foreign {
            sql.push(" AND NOT (user_id = ")
                .param(Param::Uuid(Some(self.scope.user_id())));
            if let (true, Some(a)) = (self.table.is_agent_scoped(), self.scope.agent_id()) {
                sql.push(&format!(" AND agent_id {} ", B::NULL_SAFE_EQ))
                    .param(Param::Uuid(Some(a)));
            }
            sql.push(")");
        }
        let found = B::fetch::<Id>(conn, sql, self.table)?;
        Ok(keys
            .iter()
            .find(|(_, id)| found.contains(&Id(*id)))
            .map(|&(index, id)| Conflict {
                index,
                id,
                earlier: None,
            }))
    }

    /// Folds one chunk of a call by the duplicate rule of [`BatchIds`]. When the chunk
    /// repeats an id, a record of the chunk whose id is already in the table may come
    /// before the repeat: [`Conflict::first`] decides which the call fails on.
    ///
    /// # Errors
    /// [`Conflict::error`]; what the database reports.
    pub fn fold_chunk(
        &self,
        conn: &mut B::Conn,
        ids: &mut BatchIds,
        chunk: Vec<(usize, R)>,
    ) -> Result<Vec<(usize, R)>> {
        let keys: Vec<(usize, Uuid)> = chunk.iter().map(|(i, r)| (*i, r.id())).collect();
        match ids.fold(chunk) {
            Ok(rows) => Ok(rows),
            Err(repeat) => {
                let existing = self.existing(conn, &keys, false)?;
                let first = Conflict::first(Some(repeat), existing).unwrap_or(repeat);
                Err(first.error(self.table))
            }
        }
    }

    /// Writes `records` in chunks of [`chunk_size`](crate::backend::Backend::chunk_size) multi-row
    /// `INSERT`s, folding repeated ids by the whole call's rule. Records are pulled from
    /// the iterator between database rounds.
    ///
    /// # Errors
    /// As `insert_many`.
    pub fn insert_chunks(
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
            let rows = self.fold_chunk(conn, &mut ids, chunk)?;
            let refs: Vec<(usize, &R)> = rows.iter().map(|(i, r)| (*i, r)).collect();
            self.insert_chunk(conn, &refs, exists_ok)?;
        }
    }
}
