//! The store: the process-wide pool, migrations, units of work, vector support, monitoring.

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::Pool;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::unit_of_work::{self, TxHooks, UnitOfWork};
use memgpt_core::{Error, PgConfig, PoolState, Result, Scope, TableType};

use crate::connector::{PgConnector, Source};
use crate::error::map;
use crate::metrics::{Activity, Counters, IndexUsage, PoolMetrics};
use crate::pool::{self, Manager, Pooled};
use crate::record::PgRecord;

/// The PostgreSQL backend: one pool per process, shared by every connector.
///
/// Cheap to clone (an `Arc` inside) and safe to share across threads.
#[derive(Clone, Debug)]
pub struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool<Manager>,
    config: PgConfig,
    /// The connection's passwords, scrubbed from every message that leaves the store.
    secrets: Secrets,
    counters: Arc<Counters>,
    vector: bool,
}

#[derive(QueryableByName)]
struct TypeName {
    #[diesel(sql_type = Text)]
    name: String,
}

impl PgStore {
    /// Builds the pool, applies pending migrations (under an advisory lock, so processes
    /// starting together are safe), detects pgvector and makes sure the HNSW indexes on
    /// `subvector(embedding, 1, MEMGPT_EMBEDDING_DIM)` exist.
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] or [`Error::PoolTimeout`] when the server cannot be reached
    /// within the pool timeout; [`Error::Migration`] when a migration fails.
    pub fn open(config: PgConfig) -> Result<Self> {
        Self::start(config, true)
    }

    /// Builds the pool and detects pgvector, changing nothing in the database: for tools
    /// that inspect a database (`cargo xtask pg stats`, `cargo xtask doctor`). The tables
    /// must exist.
    ///
    /// # Errors
    /// As [`PgStore::open`], and [`Error::Database`] when the tables do not exist.
    pub fn connect(config: PgConfig) -> Result<Self> {
        Self::start(config, false)
    }

    fn start(config: PgConfig, migrate: bool) -> Result<Self> {
        let counters = Arc::new(Counters::default());
        let info = crate::url::connection_info(&config)?;
        let secrets = Secrets(info.secrets());
        let pool = pool::build(&config, info.to_conninfo(), counters.clone())?;
        let mut store = PgStore {
            inner: Arc::new(Inner {
                pool,
                config,
                secrets,
                counters,
                vector: false,
            }),
        };
        let vector = {
            let mut conn = store.checkout()?;
            if migrate {
                memgpt_migrate::postgres::run_pending(&mut conn)?;
            }
            let types: Vec<TypeName> = diesel::sql_query(
                "SELECT format_type(atttypid, atttypmod) AS name FROM pg_attribute \
                 WHERE attrelid = 'memgpt_passages'::regclass AND attname = 'embedding'",
            )
            .load(&mut **conn)
            .map_err(map)?;
            let vector = types.first().is_some_and(|t| t.name.starts_with("vector"));
            if vector && migrate {
                store.ensure_hnsw(&mut conn)?;
            }
            vector
        };
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.vector = vector;
        }
        Ok(store)
    }

    /// Creates the HNSW indexes of archival memory and passages if they are missing.
    fn ensure_hnsw(&self, conn: &mut Lease) -> Result<()> {
        let d = self.inner.config.embedding_dim;
        for t in [TableType::ArchivalMemory, TableType::Passages] {
            let t = t.table_name();
            // Identifiers and the dimension are ours (a validated integer), not user text.
            diesel::sql_query(format!(
                "CREATE INDEX IF NOT EXISTS {t}_embedding_hnsw_{d} ON {t} USING hnsw \
                 ((subvector(embedding, 1, {d})::vector({d})) vector_l2_ops) \
                 WITH (m = 16, ef_construction = 64)"
            ))
            .execute(&mut ***conn)
            .map_err(map)?;
        }
        Ok(())
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &PgConfig {
        &self.inner.config
    }

    /// Whether the server has pgvector (and so vector search).
    pub fn vector_search(&self) -> bool {
        self.inner.vector
    }

    /// A connector of `table` bound to `scope`. Opens nothing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it.
    pub fn connector<R: PgRecord>(
        &self,
        table: TableType,
        scope: Scope,
    ) -> Result<PgConnector<'static, R>> {
        PgConnector::new(Source::Store(self.clone()), table, scope)
    }

    /// Runs `f` as one unit of work on one connection in one transaction, committed when
    /// `f` returns `Ok`. An error or a panic inside `f` rolls everything back (the panic then
    /// continues), and the connection goes back clean.
    ///
    /// Each connector call inside runs in its own savepoint: a call that fails (a lock
    /// timeout, a constraint) is undone alone and its error returned, and the closure may
    /// go on; the rest commits. When the transaction itself is lost (the connection drops,
    /// the server aborts it), every later call fails at once and the unit of work returns
    /// [`Error::Aborted`]: it never reports success for writes that were not committed.
    /// The connectors of a unit of work may be used re-entrantly on its thread (an
    /// iterator reading the unit of work feeding its `insert_many`) and from other threads,
    /// one call at a time.
    ///
    /// # Errors
    /// The error `f` returned; [`Error::Aborted`]; the database's on begin or commit.
    #[track_caller]
    pub fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&PgTx<'_>) -> Result<T>,
    {
        let mut conn = self.checkout()?;
        AnsiTransactionManager::begin_transaction(&mut **conn).map_err(map)?;
        unit_of_work::run(conn, HOOKS, |uow| f(&PgTx { uow, store: self }))
    }

    /// A snapshot of the pool's state and counters.
    pub fn metrics(&self) -> PoolMetrics {
        let c = &self.inner.config;
        PoolMetrics::new(
            &self.inner.counters,
            self.inner.pool.state(),
            c.pool_size,
            c.pool_size.saturating_add(c.max_overflow),
        )
    }

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
        .bind::<Text, _>(&self.inner.config.application_name)
        .load(&mut *conn)
        .map_err(map)
    }

    /// The settings in force on a pooled connection: `application_name`,
    /// `idle_in_transaction_session_timeout`, `jit`, `statement_timeout` (as `SHOW` prints
    /// them), by name.
    ///
    /// # Errors
    /// What the database reports.
    pub fn session_settings(&self) -> Result<Vec<(String, String)>> {
        #[derive(QueryableByName)]
        struct Setting {
            #[diesel(sql_type = Text)]
            name: String,
            #[diesel(sql_type = Text)]
            setting: String,
        }
        let mut conn = self.checkout()?;
        let rows: Vec<Setting> = diesel::sql_query(
            "SELECT name, current_setting(name) AS setting FROM pg_settings \
             WHERE name IN ('application_name', 'idle_in_transaction_session_timeout', 'jit', \
             'statement_timeout') ORDER BY name",
        )
        .load(&mut *conn)
        .map_err(map)?;
        Ok(rows.into_iter().map(|s| (s.name, s.setting)).collect())
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

    /// Checks a connection out, waiting at most the pool timeout. The lease remembers where
    /// it was taken, for the leak warning.
    #[track_caller]
    pub(crate) fn checkout(&self) -> Result<Lease> {
        let site = std::panic::Location::caller();
        let start = Instant::now();
        let conn = self.inner.pool.get().map_err(|e| {
            let waited = start.elapsed().max(Duration::from_millis(1));
            let state = self.inner.pool.state();
            let message = crate::url::scrub(&e.to_string(), &self.inner.secrets.0);
            // r2d2 appends the last connection error, if any, to its timeout message: then
            // the server could not be reached, rather than every connection being busy.
            if let Some((_, cause)) = message.split_once(": ") {
                Error::ConnectionLost {
                    message: format!("no connection within {waited:?}: {cause}"),
                }
            } else {
                Error::PoolTimeout {
                    waited,
                    state: PoolState {
                        connections: state.connections,
                        idle: state.idle_connections,
                        max: self.inner.pool.max_size(),
                    },
                }
            }
        })?;
        Ok(Lease {
            conn,
            taken: Instant::now(),
            site,
            threshold: self.inner.config.leak_threshold,
            counters: self.inner.counters.clone(),
        })
    }
}

/// Secret values; never shown by `Debug`.
struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} redacted]", self.0.len())
    }
}

/// A checked-out connection. Dropping it returns the connection to the pool, after a
/// warning when it was held longer than the leak threshold.
pub(crate) struct Lease {
    conn: Pooled,
    taken: Instant,
    site: &'static std::panic::Location<'static>,
    threshold: Option<Duration>,
    counters: Arc<Counters>,
}

impl std::ops::Deref for Lease {
    type Target = Pooled;
    fn deref(&self) -> &Pooled {
        &self.conn
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Pooled {
        &mut self.conn
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(threshold) = self.threshold {
            let held = self.taken.elapsed();
            if held > threshold {
                self.counters.record_leak();
                log::warn!(
                    "memgpt-pg: a connection was held for {held:?} (threshold {threshold:?}); \
                     it was taken at {}",
                    self.site
                );
            }
        }
    }
}

/// The SQL of a unit of work on PostgreSQL.
const HOOKS: TxHooks<Lease> = TxHooks {
    execute: |c, sql| c.batch_execute(sql).map_err(map),
    commit: |c| AnsiTransactionManager::commit_transaction(&mut ***c).map_err(map),
    rollback: |c| {
        AnsiTransactionManager::rollback_transaction(&mut ***c).map_err(|e| {
            // The connection, still in a transaction, is then discarded by the pool.
            log::warn!("memgpt-pg: rolling back a unit of work failed: {e}");
            map(e)
        })
    },
};

/// A unit of work in progress; see [`PgStore::transaction`].
pub struct PgTx<'t> {
    uow: &'t UnitOfWork<Lease>,
    store: &'t PgStore,
}

impl std::fmt::Debug for PgTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTx")
            .field("database", &self.store.config().database_url)
            .finish_non_exhaustive()
    }
}

impl<'t> PgTx<'t> {
    /// A connector of `table` bound to `scope` that works inside this unit of work.
    ///
    /// # Errors
    /// As [`PgStore::connector`].
    pub fn connector<R: PgRecord>(
        &self,
        table: TableType,
        scope: Scope,
    ) -> Result<PgConnector<'t, R>> {
        PgConnector::new(
            Source::Tx {
                uow: self.uow,
                store: self.store.clone(),
            },
            table,
            scope,
        )
    }
}
