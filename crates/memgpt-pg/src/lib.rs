#![doc = include_str!("../README.md")]
// Unsafe code is denied everywhere but in `url`, which asks libpq's own parser to read the
// connection string.
#![deny(unsafe_code)]
#![deny(missing_docs)]
// docs.rs labels the items of a feature with it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod config;
mod copy;
mod error;
mod fulltext;
mod metadata;
mod metrics;
mod monitor;
mod open;
mod pool;
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
pub use store::{PgConnector, PgStore, PgTx, PgTxConnector};
