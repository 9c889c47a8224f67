//! Mapping of diesel and r2d2 errors onto memgpt-core's [`Error`].

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use memgpt_core::{Error, PoolState};

/// Maps a diesel error: SQLite's busy and locked results ([`BUSY`]) become
/// [`Error::Busy`], a closed connection [`Error::ConnectionLost`], anything else
/// [`Error::Database`].
pub(crate) fn map(e: DieselError) -> Error {
    match e {
        DieselError::DatabaseError(kind, info) => {
            let message = info.message().to_owned();
            if BUSY.iter().any(|busy| message.starts_with(busy)) {
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

/// The messages of SQLite's `SQLITE_BUSY` and `SQLITE_LOCKED` results (`sqlite3_errstr`,
/// and the shared-cache form that names the table). diesel passes on SQLite's message but
/// not its result code; these texts are constants of SQLite, never translated, and a
/// message is busy only when it begins with one (a table named `locked_items` in "no such
/// table" is not).
const BUSY: [&str; 2] = ["database is locked", "database table is locked"];

/// Maps a failed checkout of the writer connection.
pub(crate) fn pool_timeout(waited: Duration, state: r2d2::State, max: u32) -> Error {
    Error::PoolTimeout {
        waited,
        state: PoolState::new(state.connections, state.idle_connections, max),
    }
}

#[cfg(test)]
mod tests {
    use super::map;
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    use memgpt_core::Error;

    fn of(message: &str) -> Error {
        map(DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn only_sqlites_busy_and_locked_results_are_busy() {
        assert!(matches!(of("database is locked"), Error::Busy { .. }));
        assert!(matches!(
            of("database table is locked: memgpt_recall_memory_agent"),
            Error::Busy { .. }
        ));
        for other in [
            "no such table: locked_items",
            "no such column: busy",
            "account locked",
            "UNIQUE constraint failed: busy_agents.id",
        ] {
            assert!(matches!(of(other), Error::Database { .. }), "{other}");
        }
    }
}
