//! What a refused connection means: the one place that decides it.
//!
//! diesel reports a failed connect as libpq's message alone, whose server part is in the
//! server's language (`lc_messages`): "Passwort-Authentifizierung … fehlgeschlagen" on a
//! German server. A refusal is read from its SQLSTATE where it can be had: when the server
//! answered (libpq wrote `SEVERITY:  text`) in words [`of`] does not know, [`diagnosed`]
//! connects once more with libpq's error verbosity set to `PQERRORS_SQLSTATE`, which makes
//! the message carry the code, and appends it in a form [`of`] reads back (the pool passes
//! connection errors on as text). The words [`of`] knows are English PostgreSQL's and
//! PgBouncer's, which never translates; where they match, no second attempt is made, and
//! they decide when no code could be had (libpq older than 12, a second attempt that
//! failed otherwise).

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use diesel::pg::sql_state;
use diesel::result::SqlState;
use memgpt_core::Error;
use pq_sys::{ConnStatusType, PGVerbosity, PostgresPollingStatusType};

/// What [`diagnosed`] appends before the code.
const MARK: &str = " [SQLSTATE ";

/// What a refused connect means to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A wrong password or user: SQLSTATE class `28`, or PgBouncer's `authentication
    /// failed` (which it sends as `08P01`).
    Authentication,
    /// PgBouncer refused the startup `options` that carry the session settings.
    StartupParameter,
    /// Anything else: the server could not be reached, or refused for another reason.
    Other,
}

/// The meaning of the connection error `message`: its appended SQLSTATE, else its words.
pub(crate) fn of(message: &str) -> Refusal {
    match code_in(message) {
        // PgBouncer refuses everything with a protocol violation and words of its own.
        Some(sql_state::PROTOCOL_VIOLATION) | None => by_words(message),
        Some(code) if code.class().as_str() == "28" => Refusal::Authentication,
        Some(_) => Refusal::Other,
    }
}

/// The refusals whose words are known: English PostgreSQL's, PgBouncer's.
fn by_words(message: &str) -> Refusal {
    if message.contains("unsupported startup parameter") {
        Refusal::StartupParameter
    } else if message.contains("authentication failed") {
        Refusal::Authentication
    } else {
        Refusal::Other
    }
}

/// `message` with the SQLSTATE of the server's refusal of `conninfo` appended, when the
/// server answered in words [`of`] does not know and a second attempt of at most `within`
/// gets a code; else `message` as it is.
pub(crate) fn diagnosed(message: String, conninfo: &str, within: Duration) -> String {
    // libpq writes a server's error as `SEVERITY:  text` (two spaces), its own as `text`.
    if !message.contains(":  ") || by_words(&message) != Refusal::Other {
        return message;
    }
    match sqlstate(conninfo, within) {
        Some(code) => format!("{}{MARK}{code}]", message.trim_end()),
        None => message,
    }
}

/// The SQLSTATE that [`diagnosed`] appended to `message`.
fn code_in(message: &str) -> Option<SqlState> {
    let (_, rest) = message.rsplit_once(MARK)?;
    rest.strip_suffix(']')?.parse().ok()
}

/// Connects to `conninfo` with libpq's non-blocking API and `PQERRORS_SQLSTATE`, and
/// returns the code of the server's error; `None` when this attempt succeeds, fails with
/// no error from the server (refused, unreachable, TLS), or outlasts `within`.
fn sqlstate(conninfo: &str, within: Duration) -> Option<SqlState> {
    let c = CString::new(conninfo).ok()?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call; libpq copies what it
    // needs. The result is NULL (out of memory) or a connection we finish once, below.
    let conn = unsafe { pq_sys::PQconnectStart(c.as_ptr()) };
    if conn.is_null() {
        return None;
    }
    let conn = Finish(conn);
    // SAFETY: `conn.0` is a live connection object (PQfinish not yet called); the notice
    // processor is a function that ignores its arguments.
    unsafe {
        pq_sys::PQsetErrorVerbosity(conn.0, PGVerbosity::PQERRORS_SQLSTATE);
        pq_sys::PQsetNoticeProcessor(conn.0, Some(ignore_notice), std::ptr::null_mut());
    }
    // SAFETY: as above.
    if unsafe { pq_sys::PQstatus(conn.0) } == ConnStatusType::CONNECTION_BAD {
        return None;
    }
    let deadline = Instant::now() + within;
    let mut wait = PostgresPollingStatusType::PGRES_POLLING_WRITING;
    loop {
        // SAFETY: as above.
        let socket = unsafe { pq_sys::PQsocket(conn.0) };
        if socket < 0 || !ready(socket, wait, deadline) {
            return None;
        }
        // SAFETY: as above; libpq's documented polling loop.
        wait = unsafe { pq_sys::PQconnectPoll(conn.0) };
        match wait {
            PostgresPollingStatusType::PGRES_POLLING_OK => return None,
            PostgresPollingStatusType::PGRES_POLLING_FAILED => break,
            _ => {}
        }
    }
    // SAFETY: PQerrorMessage returns a NUL-terminated string owned by the connection,
    // alive until PQfinish; it is copied before `conn` drops.
    let message = unsafe { CStr::from_ptr(pq_sys::PQerrorMessage(conn.0)) }
        .to_string_lossy()
        .into_owned();
    of_verbose(&message)
}

/// Waits until `socket` is ready for what `wait` asks (reading, else writing), at most
/// until `deadline`; whether it is.
fn ready(socket: i32, wait: PostgresPollingStatusType, deadline: Instant) -> bool {
    let events = if wait == PostgresPollingStatusType::PGRES_POLLING_READING {
        libc::POLLIN
    } else {
        libc::POLLOUT
    };
    let mut fd = libc::pollfd {
        fd: socket,
        events,
        revents: 0,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let millis = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: `fd` is one valid pollfd, and the count says one.
        let n = unsafe { libc::poll(&mut fd, 1, millis) };
        if n > 0 {
            return true;
        }
        if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// The code of the last server error of a message libpq wrote with `PQERRORS_SQLSTATE`:
/// each server error is `SEVERITY:  CODE` on a line of its own (after libpq's
/// `connection to server at … failed: `).
fn of_verbose(message: &str) -> Option<SqlState> {
    message
        .lines()
        .rev()
        .filter_map(|line| line.trim_end().rsplit_once(":  "))
        .find_map(|(_, code)| code.parse::<SqlState>().ok())
}

/// A notice processor that drops the notices of a connection made only for its error
/// (libpq's default prints them on standard error).
unsafe extern "C" fn ignore_notice(_: *mut std::os::raw::c_void, _: *const std::os::raw::c_char) {}

/// Finishes a libpq connection when dropped.
struct Finish(*mut pq_sys::PGconn);

impl Drop for Finish {
    fn drop(&mut self) {
        // SAFETY: the pointer came from PQconnectStart, non-NULL, and is finished once.
        unsafe { pq_sys::PQfinish(self.0) }
    }
}

/// Secret values; never shown by `Debug`.
pub(crate) struct Secrets(pub(crate) Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} redacted]", self.0.len())
    }
}

/// The error of a connection that could not be made, its message scrubbed of secrets, by
/// what the refusal means ([`of`]): [`Error::Authentication`] for a wrong
/// password or user, [`Error::Config`] naming `MEMGPT_PG_PGBOUNCER` when a pooler refused
/// the startup options, else [`Error::ConnectionLost`]. `context` says when (at open, or
/// within a pool wait).
pub(crate) fn unreachable(context: &str, cause: &str, secrets: &Secrets) -> Error {
    let message = format!("{context}: {}", crate::url::scrub(cause, &secrets.0));
    match of(cause) {
        Refusal::Authentication => Error::Authentication { message },
        Refusal::StartupParameter => Error::Config {
            variable: "MEMGPT_PG_PGBOUNCER".to_owned(),
            value: String::new(),
            reason: format!(
                "the server refused a startup parameter, as PgBouncer does: set \
                 MEMGPT_PG_PGBOUNCER=transaction behind PgBouncer in transaction mode \
                 ({message})"
            ),
        },
        Refusal::Other => Error::ConnectionLost { message },
    }
}

#[cfg(test)]
mod tests {
    use super::{code_in, diagnosed, of, of_verbose, Refusal};
    use std::time::Duration;

    #[test]
    fn codes_are_read_from_libpqs_sqlstate_messages_and_from_ours() {
        let one = "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01\n";
        assert_eq!(of_verbose(one).unwrap().as_str(), "28P01");
        let two = "connection to server at \"::1\", port 5432 failed: FATAL:  53300\n\
                   connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28000\n";
        assert_eq!(of_verbose(two).unwrap().as_str(), "28000");
        assert_eq!(
            of_verbose("connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n"),
            None
        );
        assert_eq!(
            code_in("…: FATAL:  Passwort-Authentifizierung … fehlgeschlagen [SQLSTATE 28P01]")
                .unwrap()
                .as_str(),
            "28P01"
        );
        assert_eq!(code_in("FATAL: [SQLSTATE 28P01] and more"), None);
        assert_eq!(code_in("no code"), None);
    }

    #[test]
    fn a_refusal_is_read_from_its_code_else_from_known_words() {
        let german = "failed: FATAL:  Passwort-Authentifizierung für Benutzer »u« fehlgeschlagen";
        assert_eq!(of(german), Refusal::Other);
        assert_eq!(
            of(&format!("{german} [SQLSTATE 28P01]")),
            Refusal::Authentication
        );
        assert_eq!(
            of(&format!("{german} [SQLSTATE 28000]")),
            Refusal::Authentication
        );
        assert_eq!(
            of("failed: FATAL:  zu viele Verbindungen [SQLSTATE 53300]"),
            Refusal::Other
        );
        let english = "failed: FATAL:  password authentication failed for user \"u\"";
        assert_eq!(of(english), Refusal::Authentication);
        let pgbouncer = "failed: FATAL:  password authentication failed [SQLSTATE 08P01]";
        assert_eq!(of(pgbouncer), Refusal::Authentication);
        let options = "failed: ERROR:  unsupported startup parameter: options [SQLSTATE 08P01]";
        assert_eq!(of(options), Refusal::StartupParameter);
        assert_eq!(
            of("failed: ERROR:  unsupported startup parameter: options"),
            Refusal::StartupParameter
        );
        assert_eq!(of("failed: Connection refused"), Refusal::Other);
    }

    #[test]
    fn only_a_server_answer_in_unknown_words_is_tried_again() {
        // No server at port 1 either way: a second attempt would find no code, and these
        // messages must come back unchanged without one being needed.
        let nowhere = "host=127.0.0.1 port=1 connect_timeout=1";
        for message in [
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n",
            "failed: FATAL:  password authentication failed for user \"u\"\n",
            "failed: ERROR:  unsupported startup parameter: options\n",
            "failed: FATAL:  Passwort-Authentifizierung fehlgeschlagen\n",
        ] {
            assert_eq!(
                diagnosed(message.to_owned(), nowhere, Duration::from_secs(1)),
                message
            );
        }
    }
}
