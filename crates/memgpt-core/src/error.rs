//! The one error type of memgpt-store.

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

use crate::table::TableType;

/// Result alias used throughout memgpt-store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A snapshot of a connection pool, carried by [`Error::PoolTimeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolState {
    /// Connections currently open (idle and in use).
    pub connections: u32,
    /// Connections open and idle.
    pub idle: u32,
    /// Largest number of connections the pool may open.
    pub max: u32,
}

impl PoolState {
    /// A pool with `connections` open, `idle` of them idle, and room for `max`.
    pub fn new(connections: u32, idle: u32, max: u32) -> Self {
        PoolState {
            connections,
            idle,
            max,
        }
    }
}

impl fmt::Display for PoolState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} open, {} idle, {} in use, max {}",
            self.connections,
            self.idle,
            self.connections.saturating_sub(self.idle),
            self.max
        )
    }
}

/// Everything that can go wrong in memgpt-store.
///
/// Variants carry what a caller needs to act: which field was invalid and why, how long a
/// pool checkout waited, which configuration variable was malformed. No variant ever
/// contains a password: database URLs are redacted before they reach an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection became free within the pool timeout.
    #[error("timed out after {waited:?} waiting for a database connection (pool: {state})")]
    PoolTimeout {
        /// How long the caller waited.
        waited: Duration,
        /// The pool's state when the wait gave up.
        state: PoolState,
    },
    /// The connection to the database was lost or could not be made.
    #[error("database connection lost: {message}")]
    ConnectionLost {
        /// What the driver reported.
        message: String,
    },
    /// The server refused the credentials: a wrong password or user (never shown).
    #[error("database authentication failed: {message}")]
    Authentication {
        /// What the server reported.
        message: String,
    },
    /// The database was busy or locked and the operation did not complete.
    #[error("database busy or locked: {message}")]
    Busy {
        /// What the database reported.
        message: String,
    },
    /// A statement ran longer than the statement timeout, waited longer than the lock
    /// timeout, or was cancelled on request (PostgreSQL's `pg_cancel_backend`); nothing it
    /// would have written was written. The connection stays usable.
    #[error("statement timed out: {message}")]
    Timeout {
        /// What the database reported.
        message: String,
    },
    /// A record addressed by id does not exist in the connector's scope.
    #[error("no record {id} in {table} for this scope")]
    NotFound {
        /// The table searched.
        table: TableType,
        /// The id looked for.
        id: Uuid,
    },
    /// A record with this id already exists (an insert with `exists_ok = false`).
    #[error("a record {id} already exists in {table}")]
    AlreadyExists {
        /// The table written.
        table: TableType,
        /// The id that exists already.
        id: Uuid,
    },
    /// Input was rejected before anything was written.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field (or argument) at fault, e.g. `text`, `embedding`, `records[12].role`.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The same id appears twice in one batch given with `exists_ok = false`.
    #[error("id {id} appears twice in one batch (records {first} and {second})")]
    DuplicateId {
        /// The repeated id.
        id: Uuid,
        /// Index of its first occurrence in the batch.
        first: usize,
        /// Index of its second occurrence in the batch.
        second: usize,
    },
    /// A configuration value is malformed.
    #[error("configuration {variable}={value:?}: {reason}")]
    Config {
        /// The variable (environment variable name or setting).
        variable: String,
        /// The offending value (with any password redacted).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Vector search is not available on this database.
    #[error("vector search unavailable: {reason}")]
    VectorUnavailable {
        /// Why (for example: the `vector` extension is not installed).
        reason: String,
    },
    /// A schema migration failed.
    #[error("migration failed: {message}")]
    Migration {
        /// What failed.
        message: String,
    },
    /// A unit of work was rolled back as a whole: one of its statements failed in a way
    /// that ended the database transaction (the server aborted it, SQLite rolled it back by
    /// itself after a full disk or an I/O error, or the connection was lost), so nothing it
    /// wrote was committed, even though its closure returned `Ok`.
    #[error("unit of work rolled back, nothing it wrote was committed: {message}")]
    Aborted {
        /// The failure that ended the transaction.
        message: String,
    },
    /// Any other error reported by the database.
    #[error("database error: {message}")]
    Database {
        /// What the database reported.
        message: String,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Database`].
    pub fn database(message: impl fmt::Display) -> Self {
        Error::Database {
            message: message.to_string(),
        }
    }

    /// Prefixes the field of an [`Error::InvalidInput`] with `records[index].`, so that an
    /// error inside a batch names the record at fault. Other variants pass through.
    pub fn in_batch(self, index: usize) -> Self {
        match self {
            Error::InvalidInput { field, reason } => Error::InvalidInput {
                field: format!("records[{index}].{field}"),
                reason,
            },
            other => other,
        }
    }
}
