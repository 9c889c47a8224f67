#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// docs.rs labels the items of a feature with it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod bulk;
mod codec;
mod config;
mod error;
mod fulltext;
mod maintenance;
mod metadata;
mod pragmas;
mod row;
mod sql;
mod store;
mod vector;
mod write_lock;

pub use config::{JournalMode, SqliteConfig, Synchronous, TempStore};
pub use maintenance::{AppliedSettings, StoreStats};
/// The async facade (feature `tokio`): `AsyncStore::new(SqliteStore::open(…)?)`, each call
/// on a worker thread of the store, waiting for a place without holding a thread.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use memgpt_core::asynchronous::{AsyncConnector, AsyncStore};
pub use store::{SqliteStore, SqliteTx};

/// A connector of one table, bound to one tenant, on SQLite. Made by
/// [`SqliteStore::connector`] (lifetime `'static`) or by a unit of work's
/// [`Tx::connector`](memgpt_core::Tx::connector). Implements
/// [`StorageConnector`](memgpt_core::StorageConnector); see there for each operation.
pub type SqliteConnector<R> = memgpt_core::Connector<SqliteStore, R>;

/// A connector of a unit of work on SQLite; see [`SqliteStore::transaction`].
pub type SqliteTxConnector<'t, R> = memgpt_core::Connector<memgpt_core::InTx<'t, SqliteStore>, R>;

/// The repository README's code blocks, compiled and run as doc tests (the README is the
/// first thing a new user copies from).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct RepositoryReadme;
