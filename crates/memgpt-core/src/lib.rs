#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// docs.rs labels the items of a feature with it.
#![cfg_attr(docsrs, feature(doc_cfg))]
// The modules `backend`, `batch`, `row`, `statement` and `unit_of_work` are the interface of the
// backend crates (memgpt-sqlite, memgpt-pg), not of users: public for those crates, hidden
// from the documentation.

#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod asynchronous;
#[doc(hidden)]
pub mod backend;
#[doc(hidden)]
pub mod batch;
pub mod config;
mod connector;
mod cursor;
mod embedding;
pub mod error;
mod explain;
pub mod filter;
pub mod fulltext;
pub mod hybrid;
mod keyset;
pub mod plan;
pub mod record;
pub mod retention;
#[doc(hidden)]
pub mod row;
pub mod scope;
mod source;
#[doc(hidden)]
pub mod statement;
pub mod storage_connector;
pub mod table;
pub mod telemetry;
pub mod trace;
#[doc(hidden)]
pub mod unit_of_work;

#[doc(hidden)]
pub use backend::Scoped;
pub use config::DatabaseUrl;
pub use connector::Connector;
pub use cursor::{CursorPage, CursorRequest, OrderBy};
pub use embedding::{Embedding, MAX_EMBEDDING_DIM};
pub use error::{Error, PoolState, Result};
pub use filter::{Column, Filter, FilterValue};
pub use keyset::Keyset;
pub use plan::QueryPlan;
pub use record::{
    Document, DocumentBuilder, FunctionCall, Message, MessageBuilder, Passage, PassageBuilder,
    Record, Role, ToolCall,
};
pub use scope::Scope;
#[doc(hidden)]
pub use source::{InTx, Internal};
pub use source::{Source, Tx};
pub use storage_connector::{Paginated, StorageConnector};

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
