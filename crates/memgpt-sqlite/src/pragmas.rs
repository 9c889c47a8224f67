//! Per-connection settings, applied when the writer connection opens.

use crate::SqliteConfig;
use diesel::connection::SimpleConnection;
use diesel::SqliteConnection;

/// Applies the configured PRAGMAs — `busy_timeout` first, so that the others wait for a
/// lock instead of failing — and registers the distance functions.
#[derive(Debug, Clone)]
pub(crate) struct Customizer {
    pub config: SqliteConfig,
}

impl r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Customizer {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        let c = &self.config;
        // Values are numbers and fixed keywords from typed settings, never caller text.
        let pragmas = format!(
            "PRAGMA busy_timeout = {busy};
             PRAGMA journal_mode = {journal};
             PRAGMA synchronous = {sync};
             PRAGMA mmap_size = {mmap};
             PRAGMA cache_size = -{cache};
             PRAGMA temp_store = {temp};
             PRAGMA foreign_keys = ON;
             {max_pages}",
            busy = c.busy_timeout.as_millis(),
            journal = c.journal_mode.as_str(),
            sync = c.synchronous.as_str(),
            mmap = c.mmap_size,
            cache = c.cache_size_kib,
            temp = c.temp_store.as_str(),
            max_pages = c
                .max_page_count
                .map(|n| format!("PRAGMA max_page_count = {n};"))
                .unwrap_or_default(),
        );
        conn.batch_execute(&pragmas)
            .map_err(diesel::r2d2::Error::QueryError)?;
        crate::vector::register(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The settings of a read-only connection: `busy_timeout` first, the same cache, mmap and
/// temp store as the writer, `query_only` (it can never write), and the distance
/// functions. The journal mode is the database's, set by the writer.
#[derive(Debug, Clone)]
pub(crate) struct ReaderCustomizer {
    pub config: SqliteConfig,
}

impl r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for ReaderCustomizer {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        let c = &self.config;
        let pragmas = format!(
            "PRAGMA busy_timeout = {busy};
             PRAGMA mmap_size = {mmap};
             PRAGMA cache_size = -{cache};
             PRAGMA temp_store = {temp};
             PRAGMA query_only = ON;",
            busy = c.busy_timeout.as_millis(),
            mmap = c.mmap_size,
            cache = c.cache_size_kib,
            temp = c.temp_store.as_str(),
        );
        conn.batch_execute(&pragmas)
            .map_err(diesel::r2d2::Error::QueryError)?;
        crate::vector::register(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}
