//! The embedded SQLite backend of memgpt-store.
//!
//! One [`SqliteStore`] per database file holds the single writer connection (a one-connection
//! r2d2 pool that never reaps it), opened with `busy_timeout` first, then WAL,
//! `synchronous=NORMAL`, a 256 MB mmap, a 10 MB page cache, `temp_store=MEMORY` and foreign
//! keys — every setting from [`SqliteConfig`]. Opening a store
//! applies pending migrations. Connectors are cheap handles on the store, bound to one
//! table and one tenant; they implement [`StorageConnector`](memgpt_core::StorageConnector).
//!
//! ```
//! use memgpt_core::{Message, Role, Scope, StorageConnector, TableType};
//! use memgpt_sqlite::{SqliteConfig, SqliteStore};
//! use uuid::Uuid;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(SqliteConfig::new(dir.path().join("memgpt.db")))?;
//! let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
//! let recall = store.connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))?;
//! recall.insert(&Message::builder(user, agent, Role::User).text("hello there").build()?)?;
//! assert_eq!(recall.size(&[])?, 1);
//! assert_eq!(recall.query_text("hello", None, 0)?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Vector search is exact: an L2 distance function written in Rust is registered on the
//! connection and SQLite orders by it (as fast as sqlite-vec's `vec_distance_l2` on the W5
//! workload; see docs/ARCHITECTURE.md). Full-text search uses FTS5 indexes kept in step by
//! triggers (see `migrations/sqlite`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod bulk;
mod codec;
mod config;
mod connector;
mod error;
mod pragmas;
mod record;
mod schema;
mod sql;
mod store;
mod vector;

pub use config::{JournalMode, SqliteConfig, Synchronous, TempStore};
pub use connector::SqliteConnector;
pub use store::{AppliedSettings, SqliteStore, SqliteTx, StoreStats};
