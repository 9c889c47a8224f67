//! The one row interface of the backends: a backend runs a statement and hands core each
//! row of the result ([`Backend::fetch`](crate::backend::Backend::fetch)); core reads its
//! columns with typed getters ([`Row`], as sqlx's `Row::try_get`) and decodes records,
//! keysets, ids and counts once, for every backend ([`Decode`]). A column is read by its
//! place in the select list, which core's statements fix ([`Col`]: the place, and the name
//! for errors; debug builds check the name too).
//!
//! What a getter reads is the backend's business: PostgreSQL's native `uuid`,
//! `timestamptz` and `json`; SQLite's text forms of MemGPT (`CommonUUID`, SQLAlchemy's
//! `DATETIME`, JSON text) and its embedding encodings.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::embedding::Embedding;
use crate::error::Error;
use crate::keyset::Keyset;
use crate::table::TableType;

/// A column of a row that does not hold what its getter reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The column.
    pub column: &'static str,
    /// What is wrong with its value.
    pub why: String,
}

impl Undecodable {
    /// `column` holds a value that does not decode, for the reason `why`.
    pub fn new(column: &'static str, why: impl Display) -> Self {
        Undecodable {
            column,
            why: why.to_string(),
        }
    }

    /// The error of a row of `table` that does not decode: [`Error::Database`] naming
    /// the table, the column and the reason.
    pub fn in_table(self, table: TableType) -> Error {
        corrupt(table.table_name(), self.column, self.why)
    }
}

/// The error of a value of `table.column` that does not decode.
pub fn corrupt(table: &str, column: &str, why: impl Display) -> Error {
    Error::Database {
        message: format!("{table}.{column} holds a value that does not decode: {why}"),
    }
}

/// A column of a result: its place in the select list, and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Col {
    /// Its index in the select list (0-based).
    pub at: usize,
    /// Its name, for errors (and checked against the result's in debug builds).
    pub name: &'static str,
}

impl Col {
    /// Column `name` at index `at`.
    pub const fn new(at: usize, name: &'static str) -> Col {
        Col { at, name }
    }

    /// Column `name` of the select list `columns`; fails to compile (in a `const`) when
    /// `columns` does not name it.
    pub const fn of(columns: &'static [&'static str], name: &'static str) -> Col {
        let mut at = 0;
        while at < columns.len() {
            if eq(columns[at].as_bytes(), name.as_bytes()) {
                return Col { at, name };
            }
            at += 1;
        }
        panic!("no such column in the select list")
    }
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// One row of a result, its columns read as the types core decodes from. `None` is SQL
/// `NULL`.
pub trait Row {
    /// A uuid column.
    ///
    /// # Errors
    /// The column is missing or does not hold a uuid.
    fn uuid(&self, column: Col) -> Result<Option<Uuid>, Undecodable>;

    /// A text column.
    ///
    /// # Errors
    /// The column is missing or does not hold text.
    fn text(&self, column: Col) -> Result<Option<String>, Undecodable>;

    /// An integer column.
    ///
    /// # Errors
    /// The column is missing or does not hold an integer.
    fn int(&self, column: Col) -> Result<Option<i64>, Undecodable>;

    /// A timestamp column, in UTC.
    ///
    /// # Errors
    /// The column is missing or does not hold a time.
    fn time(&self, column: Col) -> Result<Option<DateTime<Utc>>, Undecodable>;

    /// A JSON column, as its text (core parses it into the type it needs).
    ///
    /// # Errors
    /// The column is missing or does not hold JSON text.
    fn json(&self, column: Col) -> Result<Option<String>, Undecodable>;

    /// An embedding column, in the encoding the backend stores in the row's table, cut to
    /// `dim` components (the row's `embedding_dim`) where it is stored zero-padded.
    ///
    /// # Errors
    /// The column is missing or does not hold an embedding of this table's encoding.
    fn embedding(&self, column: Col, dim: Option<i64>) -> Result<Option<Embedding>, Undecodable>;
}

/// A value decoded from one row, the same way on every backend.
pub trait Decode: Sized + 'static {
    /// Decodes `row`.
    ///
    /// # Errors
    /// The column that does not hold what the value needs.
    fn decode(row: &impl Row) -> Result<Self, Undecodable>;
}

/// The value of a column that may not be `NULL`.
///
/// # Errors
/// [`Undecodable`] saying `NULL`.
pub fn required<T>(column: Col, v: Option<T>) -> Result<T, Undecodable> {
    v.ok_or_else(|| Undecodable::new(column.name, "NULL"))
}

/// `SELECT created_at, id`.
impl Decode for Keyset {
    fn decode(row: &impl Row) -> Result<Self, Undecodable> {
        let (created_at, id) = (Col::new(0, "created_at"), Col::new(1, "id"));
        Ok(Keyset {
            created_at: required(created_at, row.time(created_at)?)?,
            id: required(id, row.uuid(id)?)?,
        })
    }
}

/// The `id` column of a row (`SELECT id`, `RETURNING id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub Uuid);

impl Decode for Id {
    fn decode(row: &impl Row) -> Result<Self, Undecodable> {
        let id = Col::new(0, "id");
        required(id, row.uuid(id)?).map(Id)
    }
}

/// The `n` column of a row (`SELECT count(*) AS n`), negative read as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64);

impl Decode for Count {
    fn decode(row: &impl Row) -> Result<Self, Undecodable> {
        let n = Col::new(0, "n");
        let n = required(n, row.int(n)?)?;
        Ok(Count(u64::try_from(n).unwrap_or_default()))
    }
}

/// The `data_source` column of a row (`SELECT DISTINCT data_source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource(pub String);

impl Decode for DataSource {
    fn decode(row: &impl Row) -> Result<Self, Undecodable> {
        let source = Col::new(0, "data_source");
        required(source, row.text(source)?).map(DataSource)
    }
}
