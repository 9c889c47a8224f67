//! Mapping of diesel and r2d2 errors onto memgpt-core's [`Error`].

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use memgpt_core::{Error, PoolState};

/// Maps a diesel error. SQLite's "database is locked" / "busy" become [`Error::Busy`].
pub(crate) fn map(e: DieselError) -> Error {
    match e {
        DieselError::DatabaseError(kind, info) => {
            let message = info.message().to_owned();
            let lower = message.to_ascii_lowercase();
            if lower.contains("locked") || lower.contains("busy") {
                Error::Busy { message }
            } else if matches!(kind, DatabaseErrorKind::ClosedConnection) {
                Error::ConnectionLost { message }
            } else {
                Error::Database { message }
            }
        }
        DieselError::NotFound => Error::database("row not found"),
        other => Error::database(other),
    }
}

/// Maps a failed checkout of the writer connection.
pub(crate) fn pool_timeout(waited: Duration, state: r2d2::State, max: u32) -> Error {
    Error::PoolTimeout {
        waited,
        state: PoolState {
            connections: state.connections,
            idle: state.idle_connections,
            max,
        },
    }
}

/// An error of a row read back from the database that does not decode.
pub(crate) fn corrupt(table: &str, column: &str, why: impl std::fmt::Display) -> Error {
    Error::Database {
        message: format!("{table}.{column} holds a value that does not decode: {why}"),
    }
}
