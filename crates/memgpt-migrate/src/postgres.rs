//! PostgreSQL migrations.

use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use memgpt_core::{DatabaseUrl, Error};

use crate::harness::{self, Command, Report};
use crate::migration_err;

/// The PostgreSQL migrations, embedded from `migrations/postgres`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// The key of the session advisory lock held while migrating (`memgpt` in ASCII).
pub const ADVISORY_LOCK_KEY: i64 = 0x6d65_6d67_7074;

/// Runs `command` on an open connection while holding a session advisory lock, so that two
/// processes never migrate at once: the second waits, then finds nothing left to do.
///
/// # Errors
/// [`Error::Migration`] when a migration fails (that migration is rolled back).
pub fn run(conn: &mut PgConnection, command: Command) -> Result<Report, Error> {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
        .execute(conn)
        .map_err(migration_err)?;
    let result = harness::run(conn, || MIGRATIONS, command);
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
        .execute(conn)
        .map_err(migration_err);
    let report = result?;
    unlocked?;
    Ok(report)
}

/// Applies every pending migration (see [`run`]); returns the names applied.
///
/// # Errors
/// As [`run`].
pub fn run_pending(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
    run(conn, Command::Up).map(|r| r.applied)
}

/// Connects to `url` and runs `command`.
///
/// # Errors
/// [`Error::ConnectionLost`] when the server cannot be reached, else as [`run`].
pub fn run_url(url: &DatabaseUrl, command: Command) -> Result<Report, Error> {
    let mut conn = PgConnection::establish(url.expose()).map_err(|e| Error::ConnectionLost {
        message: format!(
            "cannot connect to {}: {}",
            url.redacted(),
            memgpt_core::config::redact(&e.to_string())
        ),
    })?;
    run(&mut conn, command)
}
