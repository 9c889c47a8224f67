//! Maintenance and monitoring of a store: `PRAGMA optimize`, checkpoints, rebuilding the
//! full-text indexes, file sizes and the settings in force.

use diesel::connection::SimpleConnection;
use diesel::SqliteConnection;
use memgpt_core::{Error, Result, TableType};

use crate::error::map;
use crate::store::SqliteStore;
use crate::write_lock;

/// The settings in force on the writer connection, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedSettings {
    /// `PRAGMA journal_mode` (lowercase, e.g. `wal`).
    pub journal_mode: String,
    /// `PRAGMA synchronous` (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA).
    pub synchronous: i64,
    /// `PRAGMA mmap_size` in bytes.
    pub mmap_size: i64,
    /// `PRAGMA cache_size` (negative: KiB).
    pub cache_size: i64,
    /// `PRAGMA temp_store` (1 FILE, 2 MEMORY).
    pub temp_store: i64,
    /// `PRAGMA busy_timeout` in milliseconds.
    pub busy_timeout_ms: i64,
    /// `PRAGMA foreign_keys` (1 on).
    pub foreign_keys: i64,
}

#[derive(diesel::QueryableByName)]
struct PragmaText {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

#[derive(diesel::QueryableByName)]
struct MmapRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    mmap_size: i64,
}

#[derive(diesel::QueryableByName)]
struct PragmaInt {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    v: i64,
}

/// Figures of an open store, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Size of the database file in bytes.
    pub db_bytes: u64,
    /// Size of the write-ahead log (`-wal` file) in bytes; 0 without one.
    pub wal_bytes: u64,
    /// Whether the writer connection is open.
    pub connection_open: bool,
    /// Whether the writer connection is idle (not checked out) right now.
    pub connection_idle: bool,
}

impl SqliteStore {
    /// Runs `PRAGMA optimize` (also run when the store closes).
    ///
    /// # Errors
    /// What the database reports.
    pub fn optimize(&self) -> Result<()> {
        self.checkout()?
            .batch_execute("PRAGMA optimize;")
            .map_err(map)
    }

    /// Checkpoints the write-ahead log into the database file and truncates it
    /// (`PRAGMA wal_checkpoint(TRUNCATE)`), waiting for the writer connection. A reader of
    /// another connection that still holds an old snapshot keeps the log from being
    /// truncated: then `wal_bytes` of [`stats`](Self::stats) stays above 0.
    ///
    /// # Errors
    /// What the database reports; [`Error::PoolTimeout`] when the writer stays busy.
    pub fn checkpoint(&self) -> Result<StoreStats> {
        self.checkout()?
            .batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(map)?;
        self.stats()
    }

    /// Rebuilds the full-text indexes from the tables, in one write transaction. Needed
    /// only after `VACUUM`, which may renumber the rowids the FTS5 indexes refer to.
    ///
    /// # Errors
    /// What the database reports; [`Error::Busy`] when other processes held the write lock
    /// for the whole busy timeout.
    pub fn rebuild_text_index(&self) -> Result<()> {
        let mut conn = self.checkout()?;
        write_lock::immediate_transaction(self.writers(), &mut conn, |c| {
            for t in TableType::ALL {
                let fts = format!("{}_fts", t.table_name());
                c.batch_execute(&format!("INSERT INTO {fts}({fts}) VALUES ('rebuild');"))
                    .map_err(map)?;
            }
            Ok(())
        })
    }

    /// Sizes of the database file and its write-ahead log, and the connection's state.
    ///
    /// # Errors
    /// [`Error::Database`] when the files cannot be read.
    pub fn stats(&self) -> Result<StoreStats> {
        let size = |p: &std::path::Path| match std::fs::metadata(p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::database(format!("cannot stat {}: {e}", p.display()))),
        };
        let path = &self.config().path;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let state = self.writer_state();
        Ok(StoreStats {
            db_bytes: size(path)?,
            wal_bytes: size(std::path::Path::new(&wal))?,
            connection_open: state.connections > 0,
            connection_idle: state.idle_connections > 0,
        })
    }

    /// The settings SQLite reports on the writer connection.
    ///
    /// # Errors
    /// What the database reports.
    pub fn settings(&self) -> Result<AppliedSettings> {
        use diesel::RunQueryDsl;
        let mut conn = self.checkout()?;
        let int = |c: &mut SqliteConnection, name: &str| -> Result<i64> {
            let rows: Vec<PragmaInt> =
                diesel::sql_query(format!("SELECT {name} AS v FROM pragma_{name}"))
                    .load(c)
                    .map_err(map)?;
            rows.first()
                .map(|r| r.v)
                .ok_or_else(|| Error::database(format!("PRAGMA {name} returned nothing")))
        };
        let journal: Vec<PragmaText> =
            diesel::sql_query("SELECT journal_mode AS v FROM pragma_journal_mode")
                .load(&mut *conn)
                .map_err(map)?;
        let busy: Vec<PragmaInt> =
            diesel::sql_query("SELECT timeout AS v FROM pragma_busy_timeout")
                .load(&mut *conn)
                .map_err(map)?;
        Ok(AppliedSettings {
            journal_mode: journal.first().map(|r| r.v.clone()).unwrap_or_default(),
            synchronous: int(&mut conn, "synchronous")?,
            mmap_size: {
                // mmap_size has no table-valued form.
                let rows: Vec<MmapRow> = diesel::sql_query("PRAGMA mmap_size")
                    .load(&mut *conn)
                    .map_err(map)?;
                rows.first().map_or(0, |r| r.mmap_size)
            },
            cache_size: int(&mut conn, "cache_size")?,
            temp_store: int(&mut conn, "temp_store")?,
            busy_timeout_ms: busy.first().map_or(0, |r| r.v),
            foreign_keys: int(&mut conn, "foreign_keys")?,
        })
    }
}
