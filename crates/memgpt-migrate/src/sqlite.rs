//! SQLite migrations.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use memgpt_core::{Error, TableType};

use crate::harness::{self, Catalog, Command, Options, Report};
use crate::migration_err;
use crate::rows::{Count, Name};

/// The SQLite migrations, embedded from `migrations/sqlite`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// How long a migration waits for another process's write lock.
const LOCK_WAIT_MS: u32 = 60_000;

/// Runs `command` on an open connection, holding SQLite's write lock (`BEGIN IMMEDIATE`)
/// for the whole run so that two processes never migrate at once.
///
/// # Errors
/// [`Error::Migration`] when a migration fails; everything the run did is rolled back.
/// Also when `down`/`redo` would drop tables that hold rows without
/// [`Options::drop_data`].
pub fn run(conn: &mut SqliteConnection, command: Command) -> Result<Report, Error> {
    run_with(conn, command, &Options::default())
}

/// [`run`] with options.
///
/// # Errors
/// As [`run`].
pub fn run_with(
    conn: &mut SqliteConnection,
    command: Command,
    options: &Options,
) -> Result<Report, Error> {
    // Wait longer than usual for another migrating process, then restore the caller's
    // setting. `PRAGMA busy_timeout` reads no schema (the table-valued `pragma_busy_timeout`
    // would, and fail at once while another process writes).
    let previous: Vec<Timeout> = diesel::sql_query("PRAGMA busy_timeout")
        .load(conn)
        .map_err(migration_err)?;
    let previous = previous.first().map_or(0, |t| t.timeout);
    conn.batch_execute(&format!("PRAGMA busy_timeout = {LOCK_WAIT_MS};"))
        .map_err(migration_err)?;
    let result = locked(conn, command, options);
    conn.batch_execute(&format!("PRAGMA busy_timeout = {previous};"))
        .map_err(migration_err)?;
    result
}

#[derive(diesel::QueryableByName)]
struct Timeout {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    timeout: i64,
}

fn locked(
    conn: &mut SqliteConnection,
    command: Command,
    options: &Options,
) -> Result<Report, Error> {
    let catalog = Catalog {
        table_rows,
        drop_owned_indexes,
    };
    crate::in_transaction(
        |run| conn.immediate_transaction(run),
        |c| harness::run(c, || MIGRATIONS, command, options, &catalog),
    )
}

fn table_rows(conn: &mut SqliteConnection) -> Result<crate::harness::TableRows, Error> {
    let mut out = Vec::new();
    for t in TableType::ALL.map(TableType::table_name) {
        let exists: Vec<Count> = diesel::sql_query(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
        )
        .bind::<Text, _>(t)
        .load(conn)
        .map_err(migration_err)?;
        if exists.first().is_some_and(|c| c.n > 0) {
            // The table name is ours, not caller text.
            let n: Vec<Count> = diesel::sql_query(format!("SELECT count(*) AS n FROM {t}"))
                .load(conn)
                .map_err(migration_err)?;
            out.push((t.to_owned(), n.first().map_or(0, |c| c.n)));
        }
    }
    Ok(out)
}

fn drop_owned_indexes(conn: &mut SqliteConnection, migration: &str) -> Result<(), Error> {
    let exists: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' \
         AND name = '__memgpt_store_owned_indexes'",
    )
    .load(conn)
    .map_err(migration_err)?;
    if exists.first().is_none_or(|c| c.n <= 0) {
        return Ok(());
    }
    let names: Vec<Name> =
        diesel::sql_query("SELECT name FROM __memgpt_store_owned_indexes WHERE migration = ?")
            .bind::<Text, _>(migration)
            .load(conn)
            .map_err(migration_err)?;
    for n in names {
        // The names are this crate's own (written by its migrations); quoted all the same.
        conn.batch_execute(&format!(
            "DROP INDEX IF EXISTS \"{}\";",
            n.name.replace('"', "\"\"")
        ))
        .map_err(migration_err)?;
    }
    diesel::sql_query("DELETE FROM __memgpt_store_owned_indexes WHERE migration = ?")
        .bind::<Text, _>(migration)
        .execute(conn)
        .map_err(migration_err)?;
    Ok(())
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
    run_path_with(path, command, &Options::default())
}

/// [`run_path`] with options.
///
/// # Errors
/// As [`run_path`].
pub fn run_path_with(path: &Path, command: Command, options: &Options) -> Result<Report, Error> {
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
    run_with(&mut conn, command, options)
}
