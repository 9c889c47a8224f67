//! Mapping of diesel errors onto memgpt-core's [`Error`].

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use memgpt_core::Error;

/// Maps a diesel error.
pub(crate) fn map(e: DieselError) -> Error {
    match e {
        DieselError::DatabaseError(kind, info) => {
            let message = info.message().to_owned();
            match kind {
                DatabaseErrorKind::ClosedConnection => Error::ConnectionLost { message },
                DatabaseErrorKind::SerializationFailure => Error::Busy { message },
                _ if message.contains("canceling statement due to statement timeout")
                    || message.contains("canceling statement due to lock timeout") =>
                {
                    Error::Timeout { message }
                }
                _ if message.contains("deadlock detected")
                    || message.contains("could not obtain lock") =>
                {
                    Error::Busy { message }
                }
                _ if message.contains("server closed the connection")
                    || message.contains("terminating connection")
                    || message.contains("no connection to the server") =>
                {
                    Error::ConnectionLost { message }
                }
                _ => Error::Database { message },
            }
        }
        DieselError::BrokenTransactionManager => Error::ConnectionLost {
            message: "the connection's transaction state is broken".to_owned(),
        },
        other => Error::database(other),
    }
}

/// The error of a row that does not decode.
pub(crate) fn corrupt(table: &str, column: &str, why: impl std::fmt::Display) -> Error {
    Error::Database {
        message: format!("{table}.{column} holds a value that does not decode: {why}"),
    }
}
