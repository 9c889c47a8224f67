//! The store: the writer connection, migrations, units of work and statistics.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::SqliteConfig;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::SqliteConnection;
use memgpt_core::unit_of_work::{self, TxHooks};
use memgpt_core::{Error, Record, Result, Scope, TableType, Tx};

use crate::error::{map, pool_timeout};
use crate::pragmas::{Customizer, ReaderCustomizer};
use crate::write_lock::Writers;

pub(crate) type Manager = ConnectionManager<SqliteConnection>;
pub(crate) type Pooled = PooledConnection<Manager>;

/// An open SQLite database: the single writer connection, a few read-only connections and
/// the configuration.
///
/// Cheap to clone (an `Arc` inside) and safe to share across threads: every write checks
/// the one writer connection out for its duration, so the store's writers never contend
/// for SQLite's lock and never see "database is locked" (writers of other processes are
/// waited for in turn, up to the busy timeout); reads outside a unit of work use the
/// read-only connections, so they run while a write is in progress (WAL) — an
/// `insert_many` fed by an iterator that reads the same store works. Dropping the last
/// clone runs `PRAGMA optimize`.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool<Manager>,
    readers: Pool<Manager>,
    config: SqliteConfig,
    /// The thread running a unit of work, which holds the writer.
    writer_owner: Mutex<Option<ThreadId>>,
    /// How writes wait for SQLite's write lock held by other processes.
    writers: Writers,
    /// What the async facade shares between the store's handles.
    async_slot: memgpt_core::backend::AsyncSlot,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(mut conn) = self.pool.try_get() {
            // Best effort on close: an error here has nobody to report to.
            let _ = conn.batch_execute("PRAGMA optimize;");
        }
    }
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the database file of `config`, applies
    /// the connection settings and any pending migrations.
    /// ```
    /// # let dir = tempfile::tempdir().map_err(memgpt_core::Error::database)?;
    /// use memgpt_sqlite::{SqliteConfig, SqliteStore};
    /// let store = SqliteStore::open(SqliteConfig::new(dir.path().join("agents/memory.db")))?;
    /// assert_eq!(store.settings()?.journal_mode, "wal");
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] when the file cannot be opened or a setting is refused;
    /// [`Error::Migration`] when a migration fails.
    pub fn open(config: SqliteConfig) -> Result<Self> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::ConnectionLost {
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let store = Self::build(config, true)?;
        {
            let mut conn = store.checkout()?;
            memgpt_migrate::sqlite::run_pending(&mut conn)?;
        }
        Ok(store)
    }

    /// Opens an existing, migrated database file for reading, changing nothing: no file
    /// or folder is created, no migration runs, and the writer connection is opened only if
    /// a write is made. For tools that inspect a database (`memgpt-store doctor`).
    ///
    /// # Errors
    /// [`Error::ConnectionLost`] when the file does not exist or cannot be opened;
    /// [`Error::Database`] when it holds no memgpt tables.
    pub fn connect(config: SqliteConfig) -> Result<Self> {
        if !config.path.is_file() {
            return Err(Error::ConnectionLost {
                message: format!("{} does not exist", config.path.display()),
            });
        }
        let store = Self::build(config, false)?;
        let mut conn = store.read_checkout()?;
        conn.batch_execute("SELECT 1 FROM memgpt_recall_memory_agent LIMIT 0;")
            .map_err(|e| {
                Error::database(format!(
                    "{} holds no memgpt tables ({e}): run `memgpt-store migrate up` first",
                    store.inner.config.path.display()
                ))
            })?;
        drop(conn);
        Ok(store)
    }

    /// The pools of `config`: the writer opened now (`writer_now`) or on first write, the
    /// readers on first read.
    fn build(config: SqliteConfig, writer_now: bool) -> Result<Self> {
        let path = config.path.to_str().ok_or_else(|| Error::Config {
            variable: "MEMGPT_SQLITE_PATH".to_owned(),
            value: config.path.display().to_string(),
            reason: "not valid UTF-8".to_owned(),
        })?;
        let writer = Pool::builder()
            .max_size(1)
            .min_idle(Some(u32::from(writer_now)))
            .idle_timeout(None)
            .max_lifetime(None)
            .test_on_check_out(false)
            .connection_timeout(config.pool_timeout)
            .connection_customizer(Box::new(Customizer {
                config: config.clone(),
            }));
        let pool = if writer_now {
            writer
                .build(Manager::new(path))
                .map_err(|e| Error::ConnectionLost {
                    message: format!("cannot open {}: {e}", config.path.display()),
                })?
        } else {
            writer.build_unchecked(Manager::new(path))
        };
        // Opened on first use, after the writer has set up WAL and migrated.
        let readers = Pool::builder()
            .max_size(config.read_connections.max(1))
            .min_idle(Some(0))
            .test_on_check_out(false)
            .connection_timeout(config.pool_timeout)
            .connection_customizer(Box::new(ReaderCustomizer {
                config: config.clone(),
            }))
            .build_unchecked(Manager::new(path));
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                pool,
                readers,
                writer_owner: Mutex::new(None),
                writers: Writers::new(&config.path, config.busy_timeout),
                async_slot: Default::default(),
                config,
            }),
        })
    }

    /// What the async facade shares between the store's handles.
    pub(crate) fn async_slot(&self) -> &memgpt_core::backend::AsyncSlot {
        &self.inner.async_slot
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &SqliteConfig {
        &self.inner.config
    }

    /// A connector of `table` bound to `scope`. Opens nothing: it uses the store's
    /// connection for each call.
    /// ```
    /// # use memgpt_core::{uuid::Uuid, Document, Error, Message, Scope, TableType};
    /// # let (_dir, store, user, agent) = memgpt_testing::docs::store()?;
    /// let recall = store.connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))?;
    /// let documents = store.connector::<Document>(TableType::Documents, Scope::user(user))?;
    /// // Recall memory is an agent's: a user's scope does not fit it.
    /// let refused = store.connector::<Message>(TableType::RecallMemory, Scope::user(user));
    /// assert!(matches!(refused, Err(Error::InvalidInput { .. })));
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it (archival and recall memory need [`Scope::agent`], documents
    /// [`Scope::user`]).
    pub fn connector<R: Record>(
        &self,
        table: TableType,
        scope: Scope,
    ) -> Result<crate::SqliteConnector<R>> {
        crate::SqliteConnector::new(self.clone(), table, scope)
    }

    /// Runs `f` as one unit of work: every connector made from the [`SqliteTx`] uses the
    /// writer connection inside one `BEGIN IMMEDIATE` transaction, committed when `f`
    /// returns `Ok`. An error or a panic inside `f` rolls everything back (the panic then
    /// continues), and the connection goes back clean.
    ///
    /// Each connector call inside runs in its own savepoint: a call that fails is undone
    /// alone and reported, and the closure may go on. When SQLite ends the transaction by
    /// itself (a full disk, an I/O error, an interrupt), every later call fails at once and
    /// the unit of work returns [`Error::Aborted`], so no later write commits on its own.
    /// While it runs, the writer is the unit of work's: a write through a store connector
    /// on the same thread fails at once with [`Error::InvalidInput`] instead of waiting for
    /// itself.
    ///
    /// A unit of work and its connectors belong to the thread that runs it (they are
    /// neither `Send` nor `Sync`), and a call holds the connection from its start to its
    /// end: two calls of one unit of work never run at once, and code that would make
    /// them — another thread, or an `insert_many` iterator that reads the same unit of
    /// work — does not compile. To copy within a unit of work, read a page, write it, and
    /// read the next (see [`StorageConnector::insert_many`](memgpt_core::StorageConnector::insert_many)).
    ///
    /// ```
    /// # use memgpt_core::{Message, Record, Role, Scope, StorageConnector, TableType};
    /// # use memgpt_core::uuid::Uuid;
    /// # let dir = tempfile::tempdir().map_err(memgpt_core::Error::database)?;
    /// # let store = memgpt_sqlite::SqliteStore::open(
    /// #     memgpt_sqlite::SqliteConfig::new(dir.path().join("memory.db")))?;
    /// let (user, (a, b)) = (Uuid::new_v4(), (Uuid::new_v4(), Uuid::new_v4()));
    /// let (s, t) = (Scope::agent(user, a), Scope::agent(user, b));
    /// let said = (0..250).map(|i| Message::builder(user, a, Role::User).text(format!("{i}")).build());
    /// store.connector::<Message>(TableType::RecallMemory, s)?
    ///     .insert_many(said.collect::<Result<Vec<_>, _>>()?, false)?;
    /// // Agent s's messages, copied to agent t within one unit of work, a page at a time.
    /// let copied = store.transaction(|tx| {
    ///     let from = tx.connector::<Message>(TableType::RecallMemory, s)?;
    ///     let to = tx.connector::<Message>(TableType::RecallMemory, t)?;
    ///     let (mut copied, mut after) = (0, None);
    ///     loop {
    ///         let page = from.get_page(&[], after.as_ref(), 100)?;
    ///         let Some(last) = page.last() else { return Ok(copied) };
    ///         after = Some(last.keyset());
    ///         let moved = page.iter().map(|m| {
    ///             let to_t = Message::builder(user, b, m.role());
    ///             to_t.maybe_text(m.text().map(str::to_owned)).build()
    ///         });
    ///         copied += to.insert_many(moved.collect::<Result<Vec<_>, _>>()?, false)?;
    ///     }
    /// })?;
    /// assert_eq!(copied, 250);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// ```compile_fail,E0277
    /// # use memgpt_core::{Message, Scope, StorageConnector, TableType};
    /// # fn copy(store: &memgpt_sqlite::SqliteStore, s: Scope, t: Scope) -> memgpt_core::Result<u64> {
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
    /// # fn count(store: &memgpt_sqlite::SqliteStore, s: Scope) -> memgpt_core::Result<()> {
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
    pub fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&SqliteTx<'_>) -> Result<T>,
    {
        let mut conn = self.checkout()?;
        self.inner.writers.begin_immediate(&mut conn)?;
        let _owner = OwnerGuard::set(&self.inner.writer_owner);
        unit_of_work::run(conn, HOOKS, |uow| f(&Tx::new(uow, self.clone())))
    }

    /// The state of the writer connection's pool.
    pub(crate) fn writer_state(&self) -> diesel::r2d2::State {
        self.inner.pool.state()
    }

    /// How this store's writes wait for SQLite's write lock (`write_lock`).
    pub(crate) fn writers(&self) -> &Writers {
        &self.inner.writers
    }

    /// Checks the writer connection out, waiting at most the pool timeout.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] at once when a unit of work of this thread holds the writer;
    /// [`Error::PoolTimeout`].
    pub(crate) fn checkout(&self) -> Result<Pooled> {
        let me = std::thread::current().id();
        if *self
            .inner
            .writer_owner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            == Some(me)
        {
            return Err(Error::invalid(
                "connector",
                "a unit of work of this thread holds the writer connection: write through \
                 a connector made by its SqliteTx::connector",
            ));
        }
        Self::get("sqlite-writer", &self.inner.pool)
    }

    /// Checks a read-only connection out, waiting at most the pool timeout.
    pub(crate) fn read_checkout(&self) -> Result<Pooled> {
        Self::get("sqlite-readers", &self.inner.readers)
    }

    fn get(name: &'static str, pool: &Pool<Manager>) -> Result<Pooled> {
        memgpt_core::trace::checkout(name, || {
            let start = Instant::now();
            pool.get().map_err(|e| {
                let message = e.to_string();
                // r2d2 appends the last connection error to its timeout message: then the
                // file could not be opened, rather than every connection being busy.
                match message.split_once(": ") {
                    Some((_, cause)) => Error::ConnectionLost {
                        message: cause.to_owned(),
                    },
                    None => pool_timeout(
                        start.elapsed().max(Duration::from_millis(1)),
                        pool.state(),
                        pool.max_size(),
                    ),
                }
            })
        })
    }

    pub(crate) fn batch_size(&self) -> usize {
        self.inner.config.batch_size
    }
}

/// The SQL of a unit of work on SQLite.
const HOOKS: TxHooks<Pooled> = TxHooks {
    begin: |c| AnsiTransactionManager::begin_transaction(&mut **c).map_err(map),
    commit: |c| AnsiTransactionManager::commit_transaction(&mut **c).map_err(map),
    rollback,
    depth: |c| memgpt_migrate::transaction_depth(&mut **c),
};

/// Rolls back to the innermost savepoint, or the transaction. When SQLite has rolled the
/// transaction back by itself (a full disk, an I/O error), diesel finds no transaction
/// left, and there is nothing to undo: the connection is clean and stays in the pool.
fn rollback(c: &mut Pooled) -> Result<()> {
    match AnsiTransactionManager::rollback_transaction(&mut **c) {
        Ok(()) | Err(diesel::result::Error::NotInTransaction) => Ok(()),
        Err(e) => {
            tracing::warn!("memgpt-sqlite: rolling back (in) a unit of work failed: {e}");
            Err(map(e))
        }
    }
}

/// Marks the writer as held by this thread's unit of work, until dropped.
struct OwnerGuard<'a>(&'a Mutex<Option<ThreadId>>);

impl<'a> OwnerGuard<'a> {
    fn set(slot: &'a Mutex<Option<ThreadId>>) -> Self {
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(std::thread::current().id());
        OwnerGuard(slot)
    }
}

impl Drop for OwnerGuard<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// A unit of work in progress; see [`SqliteStore::transaction`]. Its
/// [`connector`](Tx::connector) makes connectors that work inside it.
pub type SqliteTx<'t> = Tx<'t, SqliteStore>;
