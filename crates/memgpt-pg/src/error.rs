//! Mapping of diesel errors onto memgpt-core's [`Error`].

use diesel::pg::sql_state as code;
use diesel::result::{DatabaseErrorKind, Error as DieselError, SqlState};
use memgpt_core::Error;

/// Maps a diesel error: a connection diesel found gone is [`Error::ConnectionLost`]; a
/// server error by its SQLSTATE ([`classify`]), never by its message, which is in the
/// server's language; an error of libpq's own (no SQLSTATE) by libpq's words
/// ([`of_libpq`]).
pub(crate) fn map(e: DieselError) -> Error {
    match e {
        DieselError::DatabaseError(kind, info) => {
            let message = info.message().to_owned();
            match (kind, info.sqlstate()) {
                (DatabaseErrorKind::ClosedConnection, _) => Error::ConnectionLost { message },
                (_, Some(state)) => classify(state, message),
                (_, None) => of_libpq(message),
            }
        }
        DieselError::BrokenTransactionManager => Error::ConnectionLost {
            message: "the connection's transaction state is broken".to_owned(),
        },
        other => Error::database(other),
    }
}

/// The error for a server error of SQLSTATE `state` on a session that goes on (one that
/// ended is diesel's `ClosedConnection`): the one place where PostgreSQL's statement
/// errors are classified.
///
/// - a cancelled statement — the statement timeout, a cancel request — or a lock timeout
///   (`57014`, `55P03`): [`Error::Timeout`];
/// - a serialization failure or deadlock (`40001`, `40P01`): [`Error::Busy`];
/// - the session ended by the server — shutdown, `pg_terminate_backend`, an idle or
///   transaction timeout, its database dropped (`57P01`–`57P05`, `25P03`, `25P04`) — when
///   diesel has not seen the connection go yet: [`Error::ConnectionLost`];
/// - anything else, connection exceptions of a remote server included (class `08` on a
///   session that goes on: a foreign table's): [`Error::Database`].
pub(crate) fn classify(state: SqlState, message: String) -> Error {
    match state {
        code::QUERY_CANCELED | code::LOCK_NOT_AVAILABLE => Error::Timeout { message },
        code::T_R_SERIALIZATION_FAILURE | code::T_R_DEADLOCK_DETECTED => Error::Busy { message },
        code::ADMIN_SHUTDOWN
        | code::CRASH_SHUTDOWN
        | code::CANNOT_CONNECT_NOW
        | code::DATABASE_DROPPED
        | code::IDLE_SESSION_TIMEOUT
        | code::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
        | code::TRANSACTION_TIMEOUT => Error::ConnectionLost { message },
        _ => Error::Database { message },
    }
}

/// An error libpq raised itself, with no SQLSTATE: a connection it lost or cannot use
/// (its words: libpq's messages are never in the server's language, and in a process that
/// never calls `setlocale` not translated at all), else [`Error::Database`] (a statement
/// libpq would not send: too many parameters, another command in progress).
fn of_libpq(message: String) -> Error {
    const LOST: [&str; 7] = [
        "server closed the connection",
        "no connection to the server",
        "could not send data to server",
        "could not receive data from server",
        "terminating connection",
        // The same over TLS (OpenSSL's words, through libpq).
        "SSL SYSCALL error: EOF detected",
        "SSL connection has been closed unexpectedly",
    ];
    if LOST.iter().any(|words| message.contains(words)) {
        Error::ConnectionLost { message }
    } else {
        Error::Database { message }
    }
}

#[cfg(test)]
mod tests {
    use super::{classify, of_libpq};
    use memgpt_core::Error;

    #[test]
    fn libpq_losing_the_connection_is_connection_lost_also_over_tls() {
        for words in [
            "server closed the connection unexpectedly",
            "SSL SYSCALL error: EOF detected",
            "SSL connection has been closed unexpectedly",
            "could not receive data from server: Connection reset by peer",
        ] {
            let lost = matches!(of_libpq(words.to_owned()), Error::ConnectionLost { .. });
            assert!(lost, "{words}");
        }
        let other = of_libpq("another command is already in progress".to_owned());
        assert!(matches!(other, Error::Database { .. }));
    }

    #[test]
    fn sqlstates_are_classified_once() {
        let kind = |code: &str| match classify(code.parse().unwrap(), String::new()) {
            Error::Timeout { .. } => "timeout",
            Error::Busy { .. } => "busy",
            Error::ConnectionLost { .. } => "lost",
            Error::Database { .. } => "database",
            other => panic!("{other:?}"),
        };
        let table = [
            ("57014", "timeout"),
            ("55P03", "timeout"),
            ("40001", "busy"),
            ("40P01", "busy"),
            ("57P01", "lost"),
            ("57P02", "lost"),
            ("57P03", "lost"),
            ("57P04", "lost"),
            ("57P05", "lost"),
            ("25P03", "lost"),
            ("25P04", "lost"),
            ("08006", "database"),
            ("08P01", "database"),
            ("53300", "database"),
            ("23505", "database"),
            ("42P01", "database"),
            ("22P02", "database"),
        ];
        for (code, expected) in table {
            assert_eq!(kind(code), expected, "{code}");
        }
    }
}
