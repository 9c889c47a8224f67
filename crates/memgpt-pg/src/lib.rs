#![doc = include_str!("../README.md")]
// Unsafe code is denied everywhere but in `url`, which asks libpq's own parser to read the
// connection string.
#![deny(unsafe_code)]
#![deny(missing_docs)]
// docs.rs labels the items of a feature with it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod binary;
mod config;
mod copy;
mod direct;
mod error;
mod fulltext;
mod metadata;
mod metrics;
mod monitor;
mod open;
mod parallel;
mod pool;
mod prepared;
mod refusal;
mod replica;
mod row;
mod schema;
mod session;
mod sql;
mod store;
mod url;
mod vector;
mod wal;

pub use config::{PgConfig, Pooler};
/// The async facade (feature `tokio`): `AsyncStore::new(PgStore::open(…)?)`, each call
/// on a worker thread of the store, waiting for a place without holding a thread.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use memgpt_core::asynchronous::{AsyncConnector, AsyncStore};
pub use metrics::{Activity, IndexUsage, PoolMetrics};
pub use open::PgVector;
pub use pool::Lease;
pub use store::{PgStore, PgTx};

/// A connector of one table, bound to one tenant, on PostgreSQL. Made by
/// [`PgStore::connector`] (lifetime `'static`) or by a unit of work's
/// [`Tx::connector`](memgpt_core::Tx::connector). Implements
/// [`StorageConnector`](memgpt_core::StorageConnector); see there for each operation.
pub type PgConnector<R> = memgpt_core::Connector<PgStore, R>;

/// A connector of a unit of work on PostgreSQL; see [`PgStore::transaction`].
pub type PgTxConnector<'t, R> = memgpt_core::Connector<memgpt_core::InTx<'t, PgStore>, R>;
