//! SQLite migrations.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use memgpt_core::Error;

use crate::harness::{self, Command, Report};
use crate::migration_err;

/// The SQLite migrations, embedded from `migrations/sqlite`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a migration waits for another process's write lock.
const LOCK_WAIT_MS: u32 = 60_000;

/// Runs `command` on an open connection, holding SQLite's write lock (`BEGIN IMMEDIATE`)
/// for the whole run so that two processes never migrate at once.
///
/// # Errors
/// [`Error::Migration`] when a migration fails; everything the run did is rolled back.
pub fn run(conn: &mut SqliteConnection, command: Command) -> Result<Report, Error> {
    // Wait longer than usual for another migrating process, then restore the caller's
    // setting. `PRAGMA busy_timeout` reads no schema (the table-valued `pragma_busy_timeout`
    // would, and fail at once while another process writes).
    let previous: Vec<Timeout> = diesel::sql_query("PRAGMA busy_timeout")
        .load(conn)
        .map_err(migration_err)?;
    let previous = previous.first().map_or(0, |t| t.timeout);
    conn.batch_execute(&format!("PRAGMA busy_timeout = {LOCK_WAIT_MS};"))
        .map_err(migration_err)?;
    let result = locked(conn, command);
    conn.batch_execute(&format!("PRAGMA busy_timeout = {previous};"))
        .map_err(migration_err)?;
    result
}

#[derive(diesel::QueryableByName)]
struct Timeout {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    timeout: i64,
}

fn locked(conn: &mut SqliteConnection, command: Command) -> Result<Report, Error> {
    conn.immediate_transaction(|c| harness::run(c, || MIGRATIONS, command).map_err(TxError::Run))
        .map_err(|e| match e {
            TxError::Run(e) => e,
            TxError::Diesel(e) => migration_err(e),
        })
}

/// The error of the locking transaction: the run's own, or the transaction's.
enum TxError {
    Run(Error),
    Diesel(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Diesel(e)
    }
}

/// Applies every pending migration (see [`run`]); returns the names applied.
///
/// # Errors
/// As [`run`].
pub fn run_pending(conn: &mut SqliteConnection) -> Result<Vec<String>, Error> {
    run(conn, Command::Up).map(|r| r.applied)
}

/// Opens (creating it and its folder if needed) the database file at `path` and runs
/// `command`.
///
/// # Errors
/// [`Error::ConnectionLost`] when the file cannot be opened, else as [`run`].
pub fn run_path(path: &Path, command: Command) -> Result<Report, Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::ConnectionLost {
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    let path_str = path
        .to_str()
        .ok_or_else(|| Error::invalid("path", format!("{} is not valid UTF-8", path.display())))?;
    let mut conn = SqliteConnection::establish(path_str).map_err(|e| Error::ConnectionLost {
        message: format!("cannot open {}: {e}", path.display()),
    })?;
    run(&mut conn, command)
}
