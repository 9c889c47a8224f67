//! The store: the process-wide pool, migrations, units of work, vector support, monitoring.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::open::PgVector;
use crate::PgConfig;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::PgConnection;
use memgpt_core::unit_of_work::{self, TxHooks};
use memgpt_core::{Error, Record, Result, Scope, TableType, Tx};

use crate::error::map;
use crate::metrics::{Counters, PoolMetrics};
use crate::pool::{self, Lease, Pool};
use crate::refusal::Secrets;
use crate::wal::{Required, SessionPosition, Wal};

mod checkout;

/// The PostgreSQL backend: one pool per process, shared by every connector.
///
/// Cheap to clone (an `Arc` inside) and safe to share across threads.
#[derive(Clone, Debug)]
pub struct PgStore {
    inner: Arc<Inner>,
    /// A read-your-writes session (see [`PgStore::read_your_writes`]).
    session: Option<Arc<SessionPosition>>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    config: PgConfig,
    /// The connection's passwords, scrubbed from every message that leaves the store.
    secrets: Secrets,
    counters: Arc<Counters>,
    vector: Option<PgVector>,
    /// Behind a transaction pooler whose server defaults differ from the settings: the
    /// `BEGIN; SET LOCAL …` every call's transaction opens with (see [`crate::session`]).
    begin: Option<String>,
    /// The read replicas (`MEMGPT_PG_REPLICA_URLS`).
    replicas: Option<crate::replica::Replicas>,
    /// What the async facade shares between the store's handles and sessions.
    async_slot: memgpt_core::backend::AsyncSlot,
}

impl PgStore {
    /// Builds the pool, applies pending migrations (under an advisory lock, so processes
    /// starting together are safe) and detects pgvector and its version. Builds no vector
    /// index: `memgpt-store migrate up` (or [`memgpt_migrate::postgres::ensure_hnsw`]) does,
    /// concurrently and with progress; when the HNSW indexes for `MEMGPT_EMBEDDING_DIM`
    /// are missing, opening logs a warning naming that command (see also
    /// [`PgStore::missing_indexes`] and `memgpt-store doctor`). Migrations at open wait at
    /// most [`PgConfig::migration_lock_timeout`] for the migration lock and for each table
    /// lock, and run without a statement timeout.
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] at once when the server cannot be reached,
    /// [`Error::Authentication`] when it refuses the credentials; [`Error::Migration`] when a
    /// migration fails, or when another session held the migration lock (it is named) or a
    /// table lock past `migration_lock_timeout`;
    /// [`Error::Config`] when libpq cannot parse the connection string.
    pub fn open(config: PgConfig) -> Result<Self> {
        Self::start(config, true)
    }

    /// Builds the pool and detects pgvector, changing nothing in the database: for tools
    /// that inspect a database (`memgpt-store stats`, `memgpt-store doctor`). The tables
    /// must exist.
    ///
    /// # Errors
    /// As [`PgStore::open`], and [`Error::Database`] when the tables do not exist.
    pub fn connect(config: PgConfig) -> Result<Self> {
        Self::start(config, false)
    }

    fn start(config: PgConfig, migrate: bool) -> Result<Self> {
        let counters = Arc::new(Counters::new("postgres", config.pool_size));
        let info = crate::url::connection_info(&config)?;
        let mut secrets = info.secrets();
        let pool = pool::build(
            &config,
            info.to_conninfo(),
            counters.clone(),
            pool::Warm::None,
            config.pre_ping_bypass,
        )?;
        let replicas = crate::replica::Replicas::build(&config, info.to_conninfo(), &mut secrets)?;
        let mut store = PgStore {
            inner: Arc::new(Inner {
                pool,
                config,
                secrets: Secrets(secrets),
                counters,
                vector: None,
                begin: None,
                replicas,
                async_slot: Default::default(),
            }),
            session: None,
        };
        let (vector, begin) = {
            // A server that cannot be reached or refuses the credentials fails the open
            // at once, with the server's own message, not after the pool timeout.
            let mut conn = store.checkout_with(true, std::panic::Location::caller())?;
            // Migrating takes as long as it takes: not a leak.
            conn.threshold = None;
            crate::open::prepare(&mut conn, &store.inner.config, migrate)?
        };
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.vector = vector;
            inner.begin = begin;
        }
        // The pool as a running process has it: `pool_size` connections, idle.
        store.inner.pool.warm(
            store.inner.config.pool_size,
            WARM_WAIT.min(store.inner.config.pool_timeout),
        );
        Ok(store)
    }

    /// The vector indexes (HNSW, for `MEMGPT_EMBEDDING_DIM`) that are missing or invalid;
    /// empty without pgvector.
    ///
    /// # Errors
    /// What the database reports.
    pub fn missing_indexes(&self) -> Result<Vec<String>> {
        let mut conn = self.checkout()?;
        memgpt_migrate::postgres::missing_hnsw(&mut conn, self.inner.config.embedding_dim)
    }

    /// The version of pgvector, when the server has it (and so vector search).
    pub fn pgvector(&self) -> Option<PgVector> {
        self.inner.vector
    }

    /// What the async facade shares between the store's handles.
    pub(crate) fn async_slot(&self) -> &memgpt_core::backend::AsyncSlot {
        &self.inner.async_slot
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &PgConfig {
        &self.inner.config
    }

    /// Whether the server has pgvector (and so vector search).
    pub fn vector_search(&self) -> bool {
        self.inner.vector.is_some()
    }

    /// A connector of `table` bound to `scope`. Opens nothing.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it.
    pub fn connector<R: Record>(
        &self,
        table: TableType,
        scope: Scope,
    ) -> Result<crate::PgConnector<R>> {
        crate::PgConnector::new(self.clone(), table, scope)
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
    ///
    /// A unit of work and its connectors belong to the thread that runs it (they are
    /// neither `Send` nor `Sync`), and a call holds the connection from its start to its
    /// end: two calls of one unit of work never run at once, and code that would make
    /// them — another thread, or an `insert_many` iterator that reads the same unit of
    /// work — does not compile. To copy within a unit of work, read a page, write it, and
    /// read the next, as the example of `memgpt_sqlite::SqliteStore::transaction` does.
    ///
    /// ```compile_fail,E0277
    /// # use memgpt_core::{Message, Scope, StorageConnector, TableType};
    /// # fn copy(store: &memgpt_pg::PgStore, s: Scope, t: Scope) -> memgpt_core::Result<u64> {
    /// store.transaction(|tx| {
    ///     let from = tx.connector::<Message>(TableType::RecallMemory, s)?;
    ///     let to = tx.connector::<Message>(TableType::RecallMemory, t)?;
    ///     // The iterator reads `from`, of the same unit of work: E0277, not `Send`.
    ///     let all = from.get_all_paginated(&[], 100)?.map_while(Result::ok).flatten();
    ///     to.insert_many(all, false)
    /// })
    /// # }
    /// ```
    ///
    /// ```compile_fail,E0277
    /// # use memgpt_core::{Message, Scope, StorageConnector, TableType};
    /// # fn count(store: &memgpt_pg::PgStore, s: Scope) -> memgpt_core::Result<()> {
    /// store.transaction(|tx| {
    ///     let c = tx.connector::<Message>(TableType::RecallMemory, s)?;
    ///     // A connector of the unit of work on another thread: E0277, not `Sync`.
    ///     std::thread::scope(|sc| sc.spawn(|| c.size(&[])).join().unwrap_or(Ok(0)))?;
    ///     Ok(())
    /// })
    /// # }
    /// ```
    ///
    /// # Errors
    /// The error `f` returned; [`Error::Aborted`]; the database's on begin or commit.
    #[track_caller]
    pub fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&PgTx<'_>) -> Result<T>,
    {
        let mut conn = self.checkout()?;
        match self.begin() {
            Some(begin) => AnsiTransactionManager::begin_transaction_sql(&mut *conn, begin),
            None => AnsiTransactionManager::begin_transaction(&mut *conn),
        }
        .map_err(map)?;
        let done = unit_of_work::run(conn, HOOKS, |uow| f(&Tx::new(uow, self.clone())))?;
        // Committed, and its connection back in the pool: the primary's position read now,
        // on the replicas' monitoring connection (never waiting for the pool), is past it.
        self.note_write(None);
        Ok(done)
    }

    /// This store as a read-your-writes session: connectors made from the returned handle
    /// (and its clones, shared by any number of threads) read from a replica only once that
    /// replica has replayed everything committed on the primary before the session began
    /// and every write of the session — the highest of their positions on the primary
    /// (`pg_current_wal_insert_lsn()` read after each commit: past the commit record even
    /// under `synchronous_commit = off`); until then the primary serves them. Other handles
    /// of the store keep reading from any replica within the maximum lag. Without
    /// replicas, the same store.
    ///
    /// # Errors
    /// With replicas, when the primary's position can be read neither on the replicas'
    /// monitoring connection nor on a checkout of the pool ([`Error::PoolTimeout`],
    /// [`Error::ConnectionLost`], [`Error::Database`]).
    pub fn read_your_writes(&self) -> Result<PgStore> {
        let position = SessionPosition::default();
        if let Some(replicas) = &self.inner.replicas {
            let start = match replicas.primary_position(Wal::Inserted) {
                Some(lsn) => lsn,
                None => {
                    let mut conn = self.checkout()?;
                    crate::wal::position(&mut conn, Wal::Inserted).ok_or_else(|| {
                        Error::database("the primary's WAL position could not be read")
                    })?
                }
            };
            position.note(start);
        }
        Ok(PgStore {
            inner: self.inner.clone(),
            session: Some(Arc::new(position)),
        })
    }

    /// After a committed write of a read-your-writes session: notes the primary's position
    /// (`pg_current_wal_insert_lsn()`, past the commit), read on `conn` (the write's
    /// connection of the primary) or else on the replicas' monitoring connection. Without
    /// replicas or a session, nothing. Never fails the committed write: when no position
    /// can be read, the session's reads go to the primary until a later position of the
    /// primary's covers this write ([`SessionPosition::note_unknown`]).
    pub(crate) fn note_write(&self, conn: Option<&mut PgConnection>) {
        let (Some(session), Some(replicas)) = (&self.session, &self.inner.replicas) else {
            return;
        };
        let lsn = conn
            .and_then(|c| crate::wal::position(c, Wal::Inserted))
            .or_else(|| replicas.primary_position(Wal::Inserted));
        match lsn {
            Some(lsn) => session.note(lsn),
            None => session.note_unknown(),
        }
    }

    /// A connection for a read outside a unit of work: a fit replica's when replicas are
    /// configured (see [`crate::replica`]), else the primary's; the waits for both
    /// within one pool timeout.
    #[track_caller]
    pub(crate) fn read_checkout(&self) -> Result<Lease> {
        let site = std::panic::Location::caller();
        let start = Instant::now();
        if let Some(replicas) = &self.inner.replicas {
            // A session's reads need a replica past its position; when a write's position
            // is unknown, the primary's position now covers it, else the primary serves.
            let after = match self.session.as_ref().map(|s| (s, s.required())) {
                None => Some(None),
                Some((_, Required::At(lsn))) => Some(Some(lsn)),
                Some((s, Required::Unknown(ticket))) => replicas
                    .primary_position(Wal::Inserted)
                    .and_then(|lsn| match s.resolve(ticket, lsn) {
                        Required::At(lsn) => Some(Some(lsn)),
                        Required::Unknown(_) => None,
                    }),
            };
            if let Some(conn) = after.and_then(|after| replicas.lease(after, start)) {
                self.inner.counters.record_replica_read();
                return Ok(self.lease(conn, site, start));
            }
            self.inner.counters.record_replica_fallback();
        }
        self.checkout_since(start, false, site)
    }

    /// Whether every call runs in a transaction of its own that sets `jit`,
    /// `statement_timeout` and `idle_in_transaction_session_timeout` first: behind a
    /// transaction pooler ([`Pooler::Transaction`](crate::Pooler::Transaction)) when the server's defaults for the role
    /// and database differ from the store's settings (checked at open). Reads then take three
    /// round trips instead of one; `ALTER ROLE … SET …` with the store's values avoids it.
    pub fn settings_per_call(&self) -> bool {
        self.inner.begin.is_some()
    }

    /// Behind a transaction pooler whose server defaults differ from the settings: the
    /// `BEGIN; SET LOCAL …` of every transaction.
    pub(crate) fn begin(&self) -> Option<&str> {
        self.inner.begin.as_deref()
    }

    /// Runs `f` on `conn` in a transaction that opens with the settings when
    /// [`begin`](Self::begin) says so, else directly (each statement on its own).
    pub(crate) fn with_settings<T>(
        &self,
        conn: &mut PgConnection,
        f: impl FnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        match self.begin() {
            Some(begin) => memgpt_migrate::in_transaction_mapped(
                |run| crate::session::transaction(conn, begin, run),
                f,
                map,
            ),
            None => f(conn),
        }
    }

    /// A snapshot of the pool's state and counters.
    pub fn metrics(&self) -> PoolMetrics {
        let c = &self.inner.config;
        PoolMetrics::new(
            &self.inner.counters,
            self.inner.pool.state(),
            self.inner.pool.waiting(),
            c.pool_size,
            c.pool_size.saturating_add(c.max_overflow),
        )
    }
}

/// How long warming the pool at open waits for each connection: it is best-effort, and a
/// server that refuses more connections (a role's connection limit, `max_connections`)
/// must not hold the open up for the pool timeout.
const WARM_WAIT: Duration = Duration::from_secs(1);

/// The SQL of a unit of work on PostgreSQL.
const HOOKS: TxHooks<Lease> = TxHooks {
    begin: |c| AnsiTransactionManager::begin_transaction(&mut **c).map_err(map),
    commit: |c| AnsiTransactionManager::commit_transaction(&mut **c).map_err(map),
    rollback: |c| {
        AnsiTransactionManager::rollback_transaction(&mut **c).map_err(|e| {
            // A transaction that cannot be rolled back leaves diesel's transaction
            // manager broken, and the pool closes the connection when it comes back.
            tracing::warn!("memgpt-pg: rolling back (in) a unit of work failed: {e}");
            map(e)
        })
    },
    depth: |c| memgpt_migrate::transaction_depth(&mut **c),
};

/// A unit of work in progress; see [`PgStore::transaction`]. Its
/// [`connector`](Tx::connector) makes connectors that work inside it.
pub type PgTx<'t> = Tx<'t, PgStore>;
