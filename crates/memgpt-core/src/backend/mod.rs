//! What a database backend supplies: the small set of hooks the one connector runs on.
//!
//! [`Connector`](crate::Connector) implements every [`StorageConnector`](crate::StorageConnector)
//! operation once, for any backend; units of work, savepoints, duplicate folding, scope
//! checks, pagination and statement shapes live there. A backend crate implements:
//!
//! * [`Dialect`] — placeholders, value encodings, the spelling of "no limit" and null-safe
//!   equality;
//! * [`Backend`] — where connections come from (a read connection, the writer, a write
//!   transaction), running a statement and handing over the rows it returns (core reads
//!   them through [`Row`](crate::row::Row) and decodes them once, [`crate::row`]),
//!   whether it can search vectors, its full-text and nearest-neighbour statements, and
//!   (optionally) a bulk-write path of its own.

use std::ops::DerefMut;

mod scoped;
#[cfg(feature = "tokio")]
pub(crate) mod workers;

pub use scoped::Scoped;

use crate::embedding::Embedding;
use crate::error::Result;
use crate::filter::Filter;
use crate::plan::QueryPlan;
use crate::record::Record;
use crate::row::Decode;
use crate::statement::{Dialect, Shapes, Statement};
use crate::table::TableType;

/// A statement in backend `B`'s dialect.
pub type Sql<B> = Statement<B>;

/// The outcome of a write statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The statement ran and changed this many rows.
    Rows(usize),
    /// The statement failed on a unique key (an id that exists already); it changed nothing.
    UniqueViolation,
}

/// The arguments of a full-text statement.
#[derive(Debug, Clone, Copy)]
pub struct TextQuery<'a> {
    /// The words, every one of which must occur (at least one).
    pub words: &'a [&'a str],
    /// Filters inside the scope (validated by the caller).
    pub filters: &'a [Filter],
    /// At most this many records.
    pub limit: Option<usize>,
    /// Skip this many first.
    pub offset: usize,
}

/// The arguments of the text side of a hybrid search.
#[derive(Debug, Clone, Copy)]
pub struct RankedText<'a> {
    /// The words, at least one of which must occur (at least one).
    pub words: &'a [&'a str],
    /// The weight of each word ([`word_weights`](crate::hybrid::word_weights)), as many as
    /// `words` (unread by [`FullText::text_frequencies`]).
    pub weights: &'a [i64],
    /// Filters inside the scope (validated by the caller).
    pub filters: &'a [Filter],
    /// At most this many records.
    pub limit: usize,
}

/// The arguments of a nearest-neighbour statement.
#[derive(Debug, Clone, Copy)]
pub struct VectorQuery<'a> {
    /// The query vector.
    pub embedding: &'a Embedding,
    /// How many records.
    pub top_k: usize,
    /// Filters inside the scope (validated by the caller).
    pub filters: &'a [Filter],
}

/// How many connections a store's calls can hold at once, and how long a call waits for
/// one: how many calls the async facade ([`crate::asynchronous`], feature `tokio`) runs at
/// a time on the store's worker threads, so that callers past it wait without a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// The most connections open at once (PostgreSQL: `pool_size + max_overflow`; SQLite:
    /// the read connections and the writer).
    pub connections: u32,
    /// How long a call waits for a connection (the pool timeout).
    pub timeout: std::time::Duration,
}

/// What the async facade ([`crate::asynchronous`]) shares between every handle of one store
/// — its clones, its sessions, every `AsyncStore` wrapping any of them: the admission of
/// calls and the worker threads. A backend keeps one per store and returns it from
/// [`Backend::async_slot`]; opaque (empty without the feature `tokio`).
#[derive(Debug, Default)]
pub struct AsyncSlot {
    #[cfg(feature = "tokio")]
    pub(crate) gate: std::sync::OnceLock<std::sync::Arc<workers::Gate>>,
}

/// The statements of a database's full-text index: each backend implements them where it
/// writes its full-text SQL (its `fulltext.rs`), under the one rule of [`crate::fulltext`].
pub trait FullText: Dialect + Sized {
    /// The records of `shapes`' scope whose text holds every one of `words` (at least one),
    /// oldest first.
    fn text_match(shapes: &Shapes<'_, Self>, query: &TextQuery<'_>) -> Sql<Self>;

    /// How many records of `shapes`' scope and `filters` hold each of `words`, and any of
    /// them: rows of ([`WordCount`](crate::hybrid::WordCount)) `word` (the word's index,
    /// `-1` for any) and `n`, found through the full-text index, never reading the texts.
    fn text_frequencies(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql<Self>;

    /// The text side of a hybrid search ([`crate::hybrid`]): at most `limit` records of
    /// `shapes`' scope and `filters` whose text holds at least one of `words`, highest sum
    /// of the `weights` of the words each holds first, ties by id, found through the
    /// full-text index.
    fn text_ranked(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql<Self>;
}

/// A database backend: the store handle (cheap to clone) and its hooks.
pub trait Backend: Dialect + FullText + Clone + Send + Sync + Sized + 'static {
    /// A database connection.
    type Conn;
    /// A connection checked out of a pool, returned to it when dropped.
    type Lease: DerefMut<Target = Self::Conn>;

    /// A connection for reads outside a unit of work.
    ///
    /// # Errors
    /// [`Error::PoolTimeout`](crate::Error::PoolTimeout) or
    /// [`Error::ConnectionLost`](crate::Error::ConnectionLost).
    fn read_lease(&self) -> Result<Self::Lease>;

    /// A connection for one write outside a unit of work.
    ///
    /// # Errors
    /// As [`read_lease`](Self::read_lease).
    fn write_lease(&self) -> Result<Self::Lease>;

    /// After a call on `lease` failed with `error` before it changed anything — a read, or
    /// a write whose transaction could not begin — a connection to run it once more on,
    /// when the failure was the loss of a connection the store handed out without checking
    /// it (a backend may skip the check of a connection it used a moment ago); `None`, by
    /// default, when the error stands. A write whose transaction began is never run again.
    ///
    /// # Errors
    /// As [`read_lease`](Self::read_lease).
    fn run_again(&self, lease: Self::Lease, error: &crate::Error) -> Option<Result<Self::Lease>> {
        let _ = (lease, error);
        None
    }

    /// How many connections this store's calls can hold at once, and the pool timeout.
    fn capacity(&self) -> Capacity;

    /// The store's [`AsyncSlot`], the same for every clone and session of it.
    fn async_slot(&self) -> &AsyncSlot;

    /// Runs the reads of one call outside a unit of work on `conn`. By default directly,
    /// each statement on its own; a backend whose connections keep no session state (PostgreSQL
    /// behind PgBouncer in transaction mode) runs them in a transaction that applies its
    /// settings first.
    ///
    /// # Errors
    /// `f`'s error, or the database's on begin or commit.
    fn read_on<T>(
        &self,
        conn: &mut Self::Conn,
        f: impl FnOnce(&mut Self::Conn) -> Result<T>,
    ) -> Result<T> {
        f(conn)
    }

    /// Runs `f` in a write transaction of its own on `conn`: committed when `f` returns
    /// `Ok`, rolled back otherwise.
    ///
    /// # Errors
    /// `f`'s error, or the database's on begin or commit.
    fn write_transaction<T>(
        &self,
        conn: &mut Self::Conn,
        f: impl FnOnce(&mut Self::Conn) -> Result<T>,
    ) -> Result<T>;

    /// Runs a write statement.
    ///
    /// # Errors
    /// What the database reports, but a unique violation: [`Written::UniqueViolation`].
    fn execute(conn: &mut Self::Conn, sql: Sql<Self>) -> Result<Written>;

    /// Runs a statement that returns rows and decodes each as a `T` (reading its columns
    /// through a [`Row`](crate::row::Row) of this backend, in `table`'s encodings).
    ///
    /// # Errors
    /// What the database reports; a row that does not decode
    /// ([`Undecodable::in_table`](crate::row::Undecodable::in_table)).
    fn fetch<T: Decode>(conn: &mut Self::Conn, sql: Sql<Self>, table: TableType) -> Result<Vec<T>>;

    /// The plan of `sql` (never executing it), judged for index use.
    ///
    /// # Errors
    /// What the database reports.
    fn explain(
        conn: &mut Self::Conn,
        sql: Sql<Self>,
        table: TableType,
        operation: &'static str,
    ) -> Result<QueryPlan>;

    /// `Ok` where the database can search vectors.
    ///
    /// # Errors
    /// [`Error::VectorUnavailable`](crate::Error::VectorUnavailable) saying why not.
    fn vector_support(&self) -> Result<()>;

    /// The `top_k` records of `shapes`' scope (its table, tenant and select list) nearest
    /// to `query` by L2 distance, nearest
    /// first, ties by id, exactly (never depending on other tenants' rows).
    fn nearest(shapes: &Shapes<'_, Self>, query: &VectorQuery<'_>) -> Sql<Self>;

    /// Records per multi-row `INSERT` (within the database's bound-parameter limit).
    fn chunk_size(&self) -> usize;

    /// Calls of more records of `table` than this go to
    /// [`bulk_insert`](Backend::bulk_insert): by default (and at most) those of more than
    /// one chunk.
    fn bulk_from(&self, _table: TableType) -> usize {
        self.chunk_size()
    }

    /// The one embedding length this store accepts, when it enforces one
    /// (`MEMGPT_EMBEDDING_DIM_STRICT`); `None`: any length up to 4096, zero-padded as
    /// MemGPT stores them.
    fn embedding_dim(&self) -> Option<usize> {
        None
    }

    /// The select list of a whole record of `table`: by default its stored columns
    /// ([`select_list`](crate::record::select_list)); a backend that reads a column through
    /// an expression names it `AS` the column, in the same place: rows are read by the
    /// places of [`columns`](crate::record::columns)`(table)`.
    fn select(table: TableType) -> &'static str {
        crate::record::select_list(table)
    }

    /// Writes `records` (each with its index in the call) in the write transaction of
    /// `conn`, by the backend's own bulk path; `None` to use the chunked multi-row
    /// `INSERT` of [`Connector`](crate::Connector). Called with the records of a call that
    /// holds more than [`bulk_from`](Backend::bulk_from) of them.
    ///
    /// # Errors
    /// As `insert_many`.
    fn bulk_insert<R: Record>(
        &self,
        _target: &Scoped<Self, R>,
        _conn: &mut Self::Conn,
        _records: &mut dyn Iterator<Item = (usize, R)>,
        _exists_ok: bool,
    ) -> Option<Result<u64>> {
        None
    }
}
