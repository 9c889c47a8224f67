//! PostgreSQL migrations.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};
use memgpt_core::{DatabaseUrl, Error, TableType};

use crate::harness::{self, Catalog, Command, Options, Report};
use crate::migration_err;
use crate::rows::{Count, Name};

mod hnsw;
pub use hnsw::{
    ensure_hnsw, has_vector_column, hnsw_expression, hnsw_index_name, missing_hnsw, MAX_HNSW_DIM,
    MAX_VECTOR_HNSW_DIM,
};

/// The PostgreSQL migrations, embedded from `migrations/postgres`.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The key of the session advisory lock held while migrating (`memgpt` in ASCII).
pub const ADVISORY_LOCK_KEY: i64 = 0x6d65_6d67_7074;

/// The embedding dimension of the HNSW indexes when neither `--embedding-dim` nor
/// `MEMGPT_EMBEDDING_DIM` says otherwise.
pub const DEFAULT_EMBEDDING_DIM: u32 = 1536;

/// The true dimension of the embeddings, which the HNSW indexes are built for:
/// `MEMGPT_EMBEDDING_DIM` (1..=4000, pgvector's HNSW limit: `vector` up to 2,000,
/// `halfvec` above), else
/// [`DEFAULT_EMBEDDING_DIM`]. [`run_url_with`] reads it when [`Options::embedding_dim`] is
/// `None`; `memgpt_pg::PgConfig::from_env` reads it here too, so that the indexes a
/// migration builds are the ones the store looks for.
///
/// # Errors
/// [`Error::Config`] naming the variable when it is not a whole number in 1..=4000.
pub fn embedding_dim(env: &dyn memgpt_core::config::Lookup) -> Result<u32, Error> {
    memgpt_core::config::int_var(
        env,
        "MEMGPT_EMBEDDING_DIM",
        DEFAULT_EMBEDDING_DIM,
        1,
        hnsw::MAX_HNSW_DIM,
    )
}

/// The migration the HNSW indexes are recorded under (reverting it drops them).
const INDEX_MIGRATION: &str = "2024-01-01-000002_create_indexes";

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    v: bool,
}

/// Runs `command` on an open connection while holding a session advisory lock, so that two
/// processes never migrate at once: the second waits, then finds nothing left to do.
/// `down` and `redo` run in one transaction: all of it or nothing.
///
/// # Errors
/// [`Error::Migration`] when a migration fails (that migration is rolled back), or when
/// `down`/`redo` would drop tables that hold rows without [`Options::drop_data`].
pub fn run(conn: &mut PgConnection, command: Command) -> Result<Report, Error> {
    run_with(conn, command, &Options::default())
}

/// [`run`] with options.
///
/// # Errors
/// As [`run`].
pub fn run_with(
    conn: &mut PgConnection,
    command: Command,
    options: &Options,
) -> Result<Report, Error> {
    lock(conn, None)?;
    let result = run_holding_lock(conn, command, options);
    let unlocked = unlock(conn);
    let report = result?;
    unlocked?;
    Ok(report)
}

/// Runs `command` while this session holds the migration lock.
fn run_holding_lock(
    conn: &mut PgConnection,
    command: Command,
    options: &Options,
) -> Result<Report, Error> {
    let catalog = Catalog {
        table_rows,
        drop_owned_indexes,
    };
    match command {
        Command::Down | Command::Redo | Command::Revert(_) => crate::in_transaction(
            |run| conn.transaction(run),
            |c| harness::run(c, || MIGRATIONS, command, options, &catalog),
        ),
        Command::Up | Command::Status => {
            harness::run(conn, || MIGRATIONS, command, options, &catalog)
        }
    }
}

/// Takes the migration lock, polling: a session waiting in `pg_advisory_lock` would hold a
/// snapshot that a concurrent `CREATE INDEX CONCURRENTLY` of the lock's holder waits for.
/// With `wait`, gives up after it with an error naming the session that holds the lock.
fn lock(conn: &mut PgConnection, wait: Option<Duration>) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        let got: Vec<Flag> = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS v")
            .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
            .load(conn)
            .map_err(migration_err)?;
        if got.first().is_some_and(|f| f.v) {
            return Ok(());
        }
        if let Some(wait) = wait.filter(|w| start.elapsed() >= *w) {
            return Err(held_elsewhere(conn, wait));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Releases the migration lock, verified: `false` from `pg_advisory_unlock` means this
/// session no longer held it (a transaction-mode pooler ran the lock and the unlock on two
/// server connections, and the lock stays on the first).
fn unlock(conn: &mut PgConnection) -> Result<(), Error> {
    let released: Vec<Flag> = diesel::sql_query("SELECT pg_advisory_unlock($1) AS v")
        .bind::<BigInt, _>(ADVISORY_LOCK_KEY)
        .load(conn)
        .map_err(migration_err)?;
    if released.first().is_some_and(|f| f.v) {
        return Ok(());
    }
    Err(Error::Migration {
        message: format!(
            "the migration lock (advisory lock {ADVISORY_LOCK_KEY}) was not held by this \
             session at the end of the run: the connection goes through a pooler in \
             transaction mode (PgBouncer), which may leave the lock on another server \
             connection. Run migrations against the server directly, and end any session \
             still holding the lock (see pg_locks)"
        ),
    })
}

/// A session of `pg_stat_activity`, as [`held_elsewhere`] names it.
#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    application_name: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    since: Option<String>,
}

/// The error of a wait for the migration lock that gave up after `waited`: which session
/// holds the lock (from `pg_locks` and `pg_stat_activity`) and what to do.
fn held_elsewhere(conn: &mut PgConnection, waited: Duration) -> Error {
    // The advisory lock's 64-bit key is split into classid (high) and objid (low).
    let holders: Vec<Holder> = diesel::sql_query(
        "SELECT l.pid, a.application_name, a.state, \
         to_char(COALESCE(a.state_change, a.backend_start) AT TIME ZONE 'UTC', \
         'YYYY-MM-DD HH24:MI:SS \"UTC\"') AS since \
         FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind::<BigInt, _>(ADVISORY_LOCK_KEY >> 32)
    .bind::<BigInt, _>(ADVISORY_LOCK_KEY & 0xffff_ffff)
    .load(conn)
    .unwrap_or_default();
    let holder = match holders.first() {
        Some(h) => format!(
            "by the session of pid {} (application_name {:?}, {} since {})",
            h.pid,
            h.application_name.as_deref().unwrap_or(""),
            h.state.as_deref().unwrap_or("state unknown"),
            h.since.as_deref().unwrap_or("an unknown time"),
        ),
        None => "by another session (gone by now, or not visible to this role)".to_owned(),
    };
    let pid = holders
        .first()
        .map_or_else(|| "PID".to_owned(), |h| h.pid.to_string());
    Error::Migration {
        message: format!(
            "waited {waited:?} for the migration lock (advisory lock {ADVISORY_LOCK_KEY}), held \
             {holder}: another process is migrating this database (an HNSW build can take \
             minutes), or a session left the lock behind. Wait for it and open again, raise \
             MEMGPT_PG_MIGRATION_LOCK_TIMEOUT, or end a stale holder with \
             `SELECT pg_terminate_backend({pid})`"
        ),
    }
}

fn table_rows(conn: &mut PgConnection) -> Result<crate::harness::TableRows, Error> {
    let mut out = Vec::new();
    for t in TableType::ALL.map(TableType::table_name) {
        let exists: Vec<Flag> = diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS v")
            .bind::<Text, _>(t)
            .load(conn)
            .map_err(migration_err)?;
        if exists.first().is_some_and(|f| f.v) {
            // The table name is ours, not caller text.
            let n: Vec<Count> = diesel::sql_query(format!("SELECT count(*) AS n FROM {t}"))
                .load(conn)
                .map_err(migration_err)?;
            out.push((t.to_owned(), n.first().map_or(0, |c| c.n)));
        }
    }
    Ok(out)
}

fn drop_owned_indexes(conn: &mut PgConnection, migration: &str) -> Result<(), Error> {
    let exists: Vec<Flag> =
        diesel::sql_query("SELECT to_regclass('__memgpt_store_owned_indexes') IS NOT NULL AS v")
            .load(conn)
            .map_err(migration_err)?;
    if !exists.first().is_some_and(|f| f.v) {
        return Ok(());
    }
    let names: Vec<Name> =
        diesel::sql_query("SELECT name FROM __memgpt_store_owned_indexes WHERE migration = $1")
            .bind::<Text, _>(migration)
            .load(conn)
            .map_err(migration_err)?;
    for n in names {
        diesel::sql_query("SELECT format('DROP INDEX IF EXISTS %I', $1::text) AS name")
            .bind::<Text, _>(&n.name)
            .load::<Name>(conn)
            .map_err(migration_err)?
            .into_iter()
            .try_for_each(|ddl| conn.batch_execute(&ddl.name).map_err(migration_err))?;
    }
    diesel::sql_query("DELETE FROM __memgpt_store_owned_indexes WHERE migration = $1")
        .bind::<Text, _>(migration)
        .execute(conn)
        .map_err(migration_err)?;
    Ok(())
}

/// Applies every pending migration (see [`run`]); returns the names applied. When none is
/// pending it only reads (no lock, no DDL), so that a role with DML rights only can open a
/// migrated database. Builds no vector index: see [`ensure_hnsw`].
///
/// # Errors
/// As [`run`].
pub fn run_pending(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
    if pending(conn)?.is_empty() {
        return Ok(Vec::new());
    }
    run(conn, Command::Up).map(|r| r.applied)
}

/// [`run_pending`] as an application's start-up runs it: waiting at most `wait` for the
/// migration lock (held by another migrating process), and at most `wait` for each lock on
/// a table (`lock_timeout`), so that a busy table is not held up behind a queued `ALTER`;
/// with no `statement_timeout`, so that a migration rewriting a large table is never cut
/// half way (and retried, holding the table again, on every start).
///
/// # Errors
/// [`Error::Migration`] naming the session that holds the migration lock when the wait
/// gives up, or saying what to run when a migration fails; else as [`run`].
pub fn run_pending_within(conn: &mut PgConnection, wait: Duration) -> Result<Vec<String>, Error> {
    if pending(conn)?.is_empty() {
        return Ok(Vec::new());
    }
    let millis = wait.as_millis().clamp(1, i32::MAX as u128);
    conn.batch_execute(&format!(
        "SET statement_timeout = 0; SET lock_timeout = {millis}"
    ))
    .map_err(migration_err)?;
    let result = lock(conn, Some(wait)).and_then(|()| {
        let run = run_holding_lock(conn, Command::Up, &Options::default()).map_err(|e| match e {
            Error::Migration { message } => Error::Migration {
                message: format!(
                    "{message} (at open, migrations wait at most {wait:?} for a lock on a \
                     table, MEMGPT_PG_MIGRATION_LOCK_TIMEOUT: if they gave up because the \
                     tables were busy, run `memgpt-store migrate up` when they are quiet)"
                ),
            },
            other => other,
        });
        let unlocked = unlock(conn);
        let report = run?;
        unlocked.map(|()| report)
    });
    let reset = conn
        .batch_execute("RESET statement_timeout; RESET lock_timeout")
        .map_err(migration_err);
    let report = result?;
    reset?;
    Ok(report.applied)
}

/// The versions of the migrations not yet applied, read without any DDL.
///
/// # Errors
/// What the database reports.
pub fn pending(conn: &mut PgConnection) -> Result<Vec<String>, Error> {
    let exists: Vec<Flag> =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS v")
            .load(conn)
            .map_err(migration_err)?;
    let applied: Vec<String> = if exists.first().is_some_and(|f| f.v) {
        diesel::sql_query("SELECT version AS name FROM __diesel_schema_migrations")
            .load::<Name>(conn)
            .map_err(migration_err)?
            .into_iter()
            .map(|n| n.name)
            .collect()
    } else {
        Vec::new()
    };
    let all = diesel::migration::MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(migration_err)?;
    Ok(all
        .iter()
        .map(|m| m.name().version().to_string())
        .filter(|v| !applied.contains(v))
        .collect())
}

/// Connects to `url` and runs `command`.
///
/// # Errors
/// [`Error::ConnectionLost`] when the server cannot be reached, [`Error::Config`] when
/// libpq cannot parse `url`, else as [`run`].
pub fn run_url(url: &DatabaseUrl, command: Command) -> Result<Report, Error> {
    run_url_with(url, command, &Options::default(), &|_| {})
}

/// Connects to `url` and runs `command` with `options`. After `up` (and `redo`), builds
/// the HNSW indexes of archival memory and passages where pgvector is installed (see
/// [`ensure_hnsw`]), reporting its progress through `progress`, for the options' dimension,
/// else the one `MEMGPT_EMBEDDING_DIM` configures ([`embedding_dim`]), else 1536.
///
/// # Errors
/// As [`run_url`]; [`Error::Config`] naming `MEMGPT_EMBEDDING_DIM` when it is malformed
/// (before anything is changed).
pub fn run_url_with(
    url: &DatabaseUrl,
    command: Command,
    options: &Options,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report, Error> {
    let builds = matches!(command, Command::Up | Command::Redo);
    let dim = match options.embedding_dim {
        Some(dim) => dim,
        None if builds => embedding_dim(&memgpt_core::config::Env)?,
        None => DEFAULT_EMBEDDING_DIM,
    };
    let mut conn = connect(url)?;
    let report = run_with(&mut conn, command, options)?;
    if builds {
        lock(&mut conn, None)?;
        let built = ensure_hnsw(&mut conn, url, dim, progress);
        let unlocked = unlock(&mut conn);
        built?;
        unlocked?;
    }
    Ok(report)
}

/// Connects to `url`. libpq's message never reaches the error as it is: it may quote a
/// raw piece of the string (`invalid percent-encoded token: "50%off"` for a password with
/// a bare `%`), so a string libpq cannot parse is [`Error::Config`] saying what is wrong in
/// words of ours, and any other message is scrubbed of every secret of the string.
fn connect(url: &DatabaseUrl) -> Result<PgConnection, Error> {
    PgConnection::establish(url.expose()).map_err(|e| {
        let message = e.to_string();
        match memgpt_core::config::connection_string_problem(&message) {
            Some(problem) => Error::Config {
                variable: "database URL".to_owned(),
                value: url.redacted(),
                reason: format!("libpq cannot parse the connection string: {problem}"),
            },
            None => Error::ConnectionLost {
                message: format!(
                    "cannot connect to {}: {}",
                    url.redacted(),
                    memgpt_core::config::scrub(
                        &message,
                        &memgpt_core::config::secrets(url.expose())
                    )
                ),
            },
        }
    })
}
