//! The PostgreSQL backend of memgpt-store.
//!
//! One [`PgStore`] per process holds one r2d2 pool shared by every connector; creating a
//! connector is cheap and opens no connection. The pool keeps `MEMGPT_PG_POOL_SIZE`
//! connections and opens up to `MEMGPT_PG_MAX_OVERFLOW` more under load, which it closes
//! again once idle (see [`PgStore::open`]). Every connection is pre-pinged on checkout, runs
//! with JIT off, the configured `application_name`, `statement_timeout`, libpq
//! `connect_timeout` and TCP keepalives; a connection returned inside a transaction or
//! after a panic is discarded, never handed out again.
//!
//! Vector search uses pgvector where the extension exists (an HNSW index on
//! `subvector(embedding, 1, D)::vector(D)`), and reports [`Error::VectorUnavailable`]
//! elsewhere, where everything else keeps working.
//!
//! [`Error::VectorUnavailable`]: memgpt_core::Error::VectorUnavailable
// Unsafe code is denied everywhere but in `url`, which asks libpq's own parser to read the
// connection string.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod connector;
mod copy;
mod error;
mod metrics;
mod pool;
mod record;
mod schema;
mod sql;
mod store;
mod url;

pub use config::PgConfig;
pub use connector::PgConnector;
pub use metrics::{Activity, IndexUsage, PoolMetrics};
pub use store::{Lease, PgStore, PgTx, PgVector};
