#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The modules `backend`, `batch`, `statement` and `unit_of_work` are the interface of the
// backend crates (memgpt-sqlite, memgpt-pg), not of users: public for those crates, hidden
// from the documentation.

#[cfg(feature = "tokio")]
pub mod asynchronous;
#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
pub mod batch;
pub mod config;
mod connector;
pub mod error;
pub mod filter;
pub mod fulltext;
pub mod plan;
pub mod record;
pub mod scope;
mod scoped;
mod source;
#[doc(hidden)]
pub mod statement;
pub mod storage_connector;
pub mod table;
pub mod trace;
#[doc(hidden)]
pub mod unit_of_work;

pub use config::DatabaseUrl;
pub use connector::Connector;
pub use error::{Error, PoolState, Result};
pub use filter::{Column, Filter, FilterValue};
pub use plan::QueryPlan;
pub use record::{
    Document, DocumentBuilder, Embedding, FunctionCall, Message, MessageBuilder, Passage,
    PassageBuilder, Record, Role, ToolCall, MAX_EMBEDDING_DIM,
};
pub use scope::Scope;
#[doc(hidden)]
pub use scoped::Scoped;
#[doc(hidden)]
pub use source::{InTx, Internal};
pub use source::{Source, Tx};
pub use storage_connector::{
    CursorPage, CursorRequest, Keyset, OrderBy, Paginated, StorageConnector,
};

/// How many characters of a record's text the full-text index covers, on every backend:
/// `query_text` finds a word only within them. A tsvector of PostgreSQL holds at most
/// 1 MiB of lexemes and positions; at most 4.5 bytes of it per character of text (one-letter
/// words of four-byte letters, each with its position), plus at most 32 KiB of positions,
/// keep 200,000 characters under that limit for any text, so that no valid record is ever
/// made unstorable by its index. SQLite indexes the same prefix, so that both backends
/// find the same records. The whole text is always stored and returned.
pub const FULL_TEXT_INDEXED_CHARS: usize = 200_000;
pub use table::TableType;

/// Re-exported so that users name the same `Uuid` and time types as this crate.
pub use chrono;
/// Re-exported so that users name the same JSON types as this crate.
pub use serde_json;
/// Re-exported so that users name the same `Uuid` type as this crate.
pub use uuid;

/// The stored columns of a table as a `&[&str]`, checked against the table's declaration
/// (a diesel `table!` module, or any module with one item per column) when this compiles:
/// a name that is not a column of `$table` is an error. Backends declare their record
/// columns with it, so that a column list and the table cannot drift apart.
#[macro_export]
macro_rules! checked_columns {
    ($table:path: $($col:ident),+ $(,)?) => {{
        const _: () = {
            use $table as t;
            let _ = ($(t::$col,)+);
        };
        &[$(stringify!($col)),+]
    }};
}
