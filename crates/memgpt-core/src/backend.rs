//! What a database backend supplies: the small set of hooks the one connector runs on.
//!
//! [`Connector`](crate::Connector) implements every [`StorageConnector`](crate::StorageConnector)
//! operation once, for any backend; units of work, savepoints, duplicate folding, scope
//! checks, pagination and statement shapes live there. A backend crate implements:
//!
//! * [`Dialect`] — placeholders, value encodings, the spelling of "no limit" and null-safe
//!   equality;
//! * [`Backend`] — where connections come from (a read connection, the writer, a write
//!   transaction), running a statement and decoding what it returns, mapping errors,
//!   whether it can search vectors, and its full-text statement;
//! * [`Stores<R>`] for each record type — the columns, values and decoding of `R`, the
//!   nearest-neighbour statement, and (optionally) a bulk-write path of its own.

use std::ops::DerefMut;

use uuid::Uuid;

use crate::connector::Keyset;
use crate::error::Result;
use crate::filter::Filter;
use crate::plan::QueryPlan;
use crate::record::{Embedding, Record};
use crate::statement::{Dialect, Shapes, Statement};
use crate::table::TableType;
use crate::unit_of_work::Access;

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

/// A database backend: the store handle (cheap to clone) and its hooks.
pub trait Backend: Dialect + Clone + Send + Sync + Sized + 'static {
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

    /// Runs `f` in a write transaction of its own on `conn`: committed when `f` returns
    /// `Ok`, rolled back otherwise.
    ///
    /// # Errors
    /// `f`'s error, or the database's on begin or commit.
    fn write_transaction<T>(
        conn: &mut Self::Conn,
        f: impl FnOnce(&mut Self::Conn) -> Result<T>,
    ) -> Result<T>;

    /// Runs a write statement.
    ///
    /// # Errors
    /// What the database reports, but a unique violation: [`Written::UniqueViolation`].
    fn execute(conn: &mut Self::Conn, sql: Sql<Self>) -> Result<Written>;

    /// Runs `SELECT count(*) AS n …`.
    ///
    /// # Errors
    /// What the database reports.
    fn count(conn: &mut Self::Conn, sql: Sql<Self>) -> Result<u64>;

    /// Runs `SELECT created_at, id …` and decodes the first row.
    ///
    /// # Errors
    /// What the database reports; a row that does not decode.
    fn load_keyset(
        conn: &mut Self::Conn,
        sql: Sql<Self>,
        table: TableType,
    ) -> Result<Option<Keyset>>;

    /// Runs `SELECT id …` and decodes the ids.
    ///
    /// # Errors
    /// What the database reports; a row that does not decode.
    fn load_ids(conn: &mut Self::Conn, sql: Sql<Self>, table: TableType) -> Result<Vec<Uuid>>;

    /// Runs `SELECT DISTINCT data_source …` and returns the values.
    ///
    /// # Errors
    /// What the database reports.
    fn load_strings(conn: &mut Self::Conn, sql: Sql<Self>) -> Result<Vec<String>>;

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

    /// The records of `shapes`' scope whose text holds every one of `words` (at least one),
    /// oldest first.
    fn text_match(
        shapes: &Shapes<'_, Self>,
        words: &[&str],
        limit: Option<usize>,
        offset: usize,
    ) -> Sql<Self>;

    /// Records per multi-row `INSERT` (within the database's bound-parameter limit).
    fn chunk_size(&self) -> usize;
}

/// How backend `Self` stores records of type `R`.
pub trait Stores<R: Record>: Backend {
    /// The stored columns, in the order of [`binds`](Self::binds).
    const COLUMNS: &'static [&'static str];
    /// The select list of a whole record.
    const SELECT: &'static str;

    /// The values of [`COLUMNS`](Self::COLUMNS) for `record`.
    fn binds(record: &R) -> Vec<Self::Bind>;

    /// Runs a `SELECT <SELECT> …` and decodes the records.
    ///
    /// # Errors
    /// What the database reports; a row that does not decode.
    fn load(conn: &mut Self::Conn, sql: Sql<Self>, table: TableType) -> Result<Vec<R>>;

    /// The `top_k` records of `shapes`' scope nearest to `query` by L2 distance, nearest
    /// first, ties by id, exactly (never depending on other tenants' rows).
    fn nearest(
        &self,
        shapes: &Shapes<'_, Self>,
        query: &Embedding,
        top_k: usize,
        filters: &[Filter],
    ) -> Sql<Self>;

    /// Writes `records` (each with its index in the call) in the write transaction behind
    /// `access`, by the backend's own bulk path; `None` to use the chunked multi-row
    /// `INSERT` of [`Connector`](crate::Connector). Called with the records of a call that
    /// holds more than [`chunk_size`](Backend::chunk_size) of them.
    ///
    /// # Errors
    /// As `insert_many`.
    fn bulk_insert(
        &self,
        _connector: &crate::Connector<'_, Self, R>,
        _access: &mut Access<'_, Self::Conn, Self::Lease>,
        _records: &mut dyn Iterator<Item = (usize, R)>,
        _exists_ok: bool,
    ) -> Option<Result<u64>> {
        None
    }
}
