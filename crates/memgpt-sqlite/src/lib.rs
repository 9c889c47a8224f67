#![doc = include_str!("../README.md")]
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
