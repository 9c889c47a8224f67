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
//!   and (optionally) a bulk-write path of its own.

use std::ops::DerefMut;

use uuid::Uuid;

use crate::error::Result;
use crate::filter::Filter;
use crate::plan::QueryPlan;
use crate::record::{Embedding, Record};
use crate::statement::{Dialect, Shapes, Statement};
use crate::storage_connector::Keyset;
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
    /// At most this many records.
    pub limit: Option<usize>,
    /// Skip this many first.
    pub offset: usize,
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
    fn text_match(shapes: &Shapes<'_, Self>, query: &TextQuery<'_>) -> Sql<Self>;

    /// The `top_k` records of `shapes`' scope (its table, tenant and select list) nearest
    /// to `query` by L2 distance, nearest
    /// first, ties by id, exactly (never depending on other tenants' rows).
    fn nearest(shapes: &Shapes<'_, Self>, query: &VectorQuery<'_>) -> Sql<Self>;

    /// Records per multi-row `INSERT` (within the database's bound-parameter limit).
    fn chunk_size(&self) -> usize;

    /// The one embedding length this store accepts, when it enforces one
    /// (`MEMGPT_EMBEDDING_DIM_STRICT`); `None`: any length up to 4096, zero-padded as
    /// MemGPT stores them.
    fn embedding_dim(&self) -> Option<usize> {
        None
    }
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

    /// Writes `records` (each with its index in the call) in the write transaction of
    /// `conn`, by the backend's own bulk path; `None` to use the chunked multi-row
    /// `INSERT` of [`Connector`](crate::Connector). Called with the records of a call that
    /// holds more than [`chunk_size`](Backend::chunk_size) of them.
    ///
    /// # Errors
    /// As `insert_many`.
    fn bulk_insert(
        &self,
        _target: &crate::scoped::Scoped<Self, R>,
        _conn: &mut Self::Conn,
        _records: &mut dyn Iterator<Item = (usize, R)>,
        _exists_ok: bool,
    ) -> Option<Result<u64>> {
        None
    }
}

/// Every statement shape a connector of backend `B` issues, with sample arguments, as
/// text: `name: SQL` lines, one table after another. Backends compare it with a golden
/// file of theirs (`tests/golden/statements.txt`), so that a change of any statement in
/// either dialect shows in review. Test support, hidden from the documentation.
#[doc(hidden)]
pub fn statement_shapes<B>() -> String
where
    B: Stores<crate::Message> + Stores<crate::Passage> + Stores<crate::Document>,
{
    use crate::{Column, Document, Message, Passage, Scope};
    let agent = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let user = Scope::user(Uuid::from_u128(1));
    let mut out = String::new();
    let mut shapes_of = |table: TableType,
                         scope: &Scope,
                         select: &str,
                         columns: &[&str],
                         nearest: Option<Sql<B>>| {
        let s = Shapes::<B>::new(table, scope, select);
        let t0 =
            chrono::DateTime::<chrono::Utc>::from_timestamp(1_704_067_200, 0).unwrap_or_default();
        let k = Keyset {
            created_at: t0,
            id: Uuid::nil(),
        };
        let filters = [
            Filter::eq(Column::DataSource, "s"),
            Filter::is_null(Column::DocId),
        ];
        let filters: &[Filter] =
            if table == TableType::Passages || table == TableType::ArchivalMemory {
                &filters
            } else {
                &[]
            };
        let mut stmts: Vec<(&str, Sql<B>)> = vec![
            ("page", s.page(filters, Some(&k), 100)),
            ("cursor", s.cursor(filters, Some(&k), Some(&k), 10, true)),
            ("recent", s.recent(filters, None)),
            ("get", s.by_id(Uuid::nil())),
            ("keyset_of", s.keyset_of(Uuid::nil())),
            ("size", s.count(filters)),
            ("query_date", s.dates(t0, t0, Some(5), 2)),
            ("delete", s.delete(filters)),
            (
                "text_match",
                B::text_match(
                    &s,
                    &TextQuery {
                        words: &["banana", "bread"],
                        limit: Some(3),
                        offset: 1,
                    },
                ),
            ),
        ];
        if table != TableType::RecallMemory {
            stmts.push(("list_data_sources", s.sources()));
        }
        if let Some(n) = nearest {
            stmts.push(("nearest", n));
        }
        out.push_str(&format!("# {table}\n"));
        for (name, sql) in stmts {
            out.push_str(&format!(
                "{name}: {} [{} binds]\n",
                sql.text,
                sql.binds.len()
            ));
        }
        let row = || -> Vec<B::Bind> {
            columns
                .iter()
                .map(|_| B::Bind::from(crate::statement::Param::Int(None)))
                .collect()
        };
        for (name, exists_ok) in [("insert", false), ("insert+upsert", true)] {
            // As the connector sends a chunk: the ids written come back.
            let mut insert = s.insert(columns, [row(), row()], exists_ok);
            insert.push(" RETURNING id");
            out.push_str(&format!(
                "{name}: {} [{} binds]\n",
                insert.text,
                insert.binds.len()
            ));
        }
        let update = s.update(columns, row(), Uuid::nil());
        out.push_str(&format!(
            "update: {} [{} binds]\n",
            update.text,
            update.binds.len()
        ));
        // The select list names the stored columns, in order.
        let named: Vec<&str> = select
            .split(", ")
            .map(|c| c.rsplit(" AS ").next().unwrap_or(c).trim())
            .collect();
        out.push_str(&format!(
            "select list names the columns: {}\n",
            named == columns
        ));
    };
    let probe = Embedding::new(vec![0.5; 4]).ok();
    let top10 = |embedding| VectorQuery {
        embedding,
        top_k: 10,
        filters: &[],
    };
    let near = |table, scope: &Scope, select| {
        probe
            .as_ref()
            .map(|q| B::nearest(&Shapes::new(table, scope, select), &top10(q)))
    };
    shapes_of(
        TableType::RecallMemory,
        &agent,
        <B as Stores<Message>>::SELECT,
        <B as Stores<Message>>::COLUMNS,
        probe.as_ref().map(|q| {
            B::nearest(
                &Shapes::new(
                    TableType::RecallMemory,
                    &agent,
                    <B as Stores<Message>>::SELECT,
                ),
                &top10(q),
            )
        }),
    );
    for (table, scope) in [
        (TableType::ArchivalMemory, &agent),
        (TableType::Passages, &user),
    ] {
        let sel = <B as Stores<Passage>>::SELECT;
        shapes_of(
            table,
            scope,
            sel,
            <B as Stores<Passage>>::COLUMNS,
            near(table, scope, sel),
        );
    }
    shapes_of(
        TableType::Documents,
        &user,
        <B as Stores<Document>>::SELECT,
        <B as Stores<Document>>::COLUMNS,
        None,
    );
    out
}
