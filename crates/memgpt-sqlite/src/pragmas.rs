//! Per-connection settings, applied when the writer connection opens.

use diesel::connection::SimpleConnection;
use diesel::SqliteConnection;
use memgpt_core::SqliteConfig;

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
             PRAGMA foreign_keys = ON;",
            busy = c.busy_timeout.as_millis(),
            journal = c.journal_mode.as_str(),
            sync = c.synchronous.as_str(),
            mmap = c.mmap_size,
            cache = c.cache_size_kib,
            temp = c.temp_store.as_str(),
        );
        conn.batch_execute(&pragmas)
            .map_err(diesel::r2d2::Error::QueryError)?;
        crate::vector::register(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}
