//! The store's views of the server for monitoring: this application's sessions, the
//! settings its calls run under, prepared statements and index usage.

use diesel::sql_types::Text;
use diesel::RunQueryDsl;
use memgpt_core::Result;

use crate::error::map;
use crate::metrics::{Activity, IndexUsage};
use crate::store::PgStore;

impl PgStore {
    /// This application's rows of `pg_stat_activity` (by `application_name`).
    ///
    /// # Errors
    /// What the database reports.
    pub fn activity(&self) -> Result<Vec<Activity>> {
        let mut conn = self.checkout()?;
        diesel::sql_query(
            "SELECT pid, state, wait_event, \
             extract(epoch FROM now() - query_start)::float8 AS query_seconds, \
             left(query, 200) AS query FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid() ORDER BY pid",
        )
        .bind::<Text, _>(&self.config().application_name)
        .load(&mut *conn)
        .map_err(map)
    }

    /// The settings every call runs under (behind a transaction pooler, inside a call's
    /// transaction): `application_name`,
    /// `idle_in_transaction_session_timeout`, `jit`, `statement_timeout` (as `SHOW` prints
    /// them), by name.
    ///
    /// # Errors
    /// What the database reports.
    pub fn session_settings(&self) -> Result<Vec<(String, String)>> {
        let mut conn = self.checkout()?;
        let rows: Vec<crate::session::Setting> = self.with_settings(&mut conn, |c| {
            diesel::sql_query(
                "SELECT name, current_setting(name) AS setting FROM pg_settings \
                 WHERE name IN ('application_name', 'idle_in_transaction_session_timeout', \
                 'jit', 'statement_timeout') ORDER BY name",
            )
            .load(c)
            .map_err(map)
        })?;
        Ok(rows.into_iter().map(|s| (s.name, s.setting)).collect())
    }

    /// The named prepared statements a pooled connection of the primary holds
    /// (`pg_prepared_statements` on the connection a checkout gives; with a pool of one,
    /// always the same). Reads of a fixed shape are kept prepared on each connection, once
    /// per shape; statements whose text varies with a number of values (`IN (…)` lists,
    /// multi-row `INSERT`s) are never kept (see
    /// [`Statement::is_cacheable`](memgpt_core::statement::Statement::is_cacheable)), so
    /// this count is bounded by the shapes the connectors use, whatever the batch sizes.
    /// Behind a transaction pooler diesel's cache is off: 0.
    ///
    /// # Errors
    /// What the database reports; as a checkout ([`Error::PoolTimeout`](memgpt_core::Error::PoolTimeout)).
    pub fn prepared_statements(&self) -> Result<u64> {
        let mut conn = self.checkout()?;
        let rows: Vec<memgpt_migrate::rows::Count> =
            diesel::sql_query("SELECT count(*) AS n FROM pg_prepared_statements")
                .load(&mut *conn)
                .map_err(map)?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.n).unwrap_or(0)))
    }

    /// Index usage of memgpt's tables (`pg_stat_user_indexes`).
    ///
    /// # Errors
    /// What the database reports.
    pub fn index_usage(&self) -> Result<Vec<IndexUsage>> {
        let mut conn = self.checkout()?;
        diesel::sql_query(
            "SELECT relname::text AS table, indexrelname::text AS index, idx_scan AS scans, \
             pg_relation_size(indexrelid) AS bytes FROM pg_stat_user_indexes \
             WHERE relname LIKE 'memgpt\\_%' ORDER BY relname, indexrelname",
        )
        .load(&mut *conn)
        .map_err(map)
    }
}
