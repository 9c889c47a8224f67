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
pub use store::{SqliteConnector, SqliteStore, SqliteTx, SqliteTxConnector};

/// The repository README's code blocks, compiled and run as doc tests (the README is the
/// first thing a new user copies from).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct RepositoryReadme;
