//! The connection pool: SQLAlchemy's QueuePool semantics on r2d2.
//!
//! QueuePool keeps at most `pool_size` idle connections, opens up to `max_overflow` more
//! under load, and closes a connection that comes back while `pool_size` others are idle.
//! r2d2 has no overflow, so it is built from its settings and one rule of ours:
//! `max_size` is `pool_size + max_overflow`; `min_idle` is 0 (r2d2's `min_idle` counts
//! *idle* connections, so keeping `pool_size` of them would open `pool_size` more besides
//! every busy one); connections open on demand; and [`Manager::has_broken`], which r2d2
//! asks about every connection coming back, closes it when `pool_size` idle connections
//! hold a place already and no caller waits for one (the places are counted atomically,
//! for r2d2 asks before it takes its own lock; [`Pool`]'s count of waiting
//! callers, for r2d2 wakes no waiter when it closes a connection, so closing one that a
//! waiter could have had would leave the waiter to time out with room in the pool).
//! `PgStore::open` opens `pool_size` connections before it returns ([`Pool::warm`]), so
//! that a new store's first calls do not wait for connects. `idle_timeout`
//! (`MEMGPT_PG_IDLE_TIMEOUT`) closes connections idle that long (r2d2's reaper runs every
//! 30 s).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{PgConfig, Pooler};
use diesel::connection::{CacheSize, Connection};
use diesel::r2d2::PooledConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::PgConnection;
use memgpt_core::{DatabaseUrl, Error};

use crate::metrics::{Counters, EventHandler};

pub(crate) type Pooled = PooledConnection<Manager>;

/// A pool of the store (the primary's, or a replica's), shared: r2d2's pool and the count
/// of callers waiting in [`Pool::get_timeout`].
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    inner: Arc<r2d2::Pool<Manager>>,
    returns: Arc<Returns>,
    /// The pool's label in the exported figures ([`memgpt_core::telemetry`]).
    label: &'static str,
}

impl Pool {
    /// A connection, waiting at most `timeout` (r2d2's `get_timeout`), counted among the
    /// waiting callers meanwhile.
    pub(crate) fn get_timeout(&self, timeout: Duration) -> Result<Pooled, r2d2::Error> {
        use memgpt_core::telemetry::{step, PoolGauge};
        self.returns.waiting.fetch_add(1, Ordering::SeqCst);
        step(PoolGauge::Waiting, self.label, 1.0);
        let got = self.inner.get_timeout(timeout);
        step(PoolGauge::Waiting, self.label, -1.0);
        self.returns.waiting.fetch_sub(1, Ordering::SeqCst);
        got
    }

    /// Connections open and idle now.
    pub(crate) fn state(&self) -> r2d2::State {
        self.inner.state()
    }

    /// Opens connections until `n` are open, then leaves them idle: the store's first
    /// calls find the pool as a long-running process has it (at open, nobody else holds a
    /// connection; one that cannot be had within `timeout` ends the warming, which is
    /// best-effort).
    pub(crate) fn warm(&self, n: u32, timeout: Duration) {
        let held: Vec<Pooled> = (0..n)
            .map_while(|_| self.inner.get_timeout(timeout).ok())
            .collect();
        drop(held);
    }

    /// Callers waiting in [`get_timeout`](Self::get_timeout) now.
    pub(crate) fn waiting(&self) -> u32 {
        u32::try_from(self.returns.waiting.load(Ordering::SeqCst)).unwrap_or(u32::MAX)
    }

    /// The most connections open at once.
    pub(crate) fn max_size(&self) -> u32 {
        self.inner.max_size()
    }
}

/// A pooled connection: diesel's, when it last came back to the pool, and whether the
/// checkout that handed it out pinged it.
pub(crate) struct Conn {
    pub(crate) pg: PgConnection,
    returned: Instant,
    checked: bool,
    /// Closed when it goes back to the pool ([`Conn::forget`]).
    pub(crate) gone: bool,
    /// Its place among the idle connections, while it is idle ([`Returns`]).
    place: Option<Place>,
}

impl Conn {
    /// Whether the checkout that handed this connection out pinged it (a connection opened
    /// less than the bypass ago counts as unchecked too).
    pub(crate) fn checked(&self) -> bool {
        self.checked
    }

    /// Pings it now (diesel's `SELECT 1`) unless its checkout did; a connection that does
    /// not answer is closed when it goes back to the pool.
    pub(crate) fn check_unchecked(&mut self) -> Result<(), diesel::result::Error> {
        if self.checked {
            return Ok(());
        }
        let pinged = self.pg.ping();
        self.checked = pinged.is_ok();
        self.gone = pinged.is_err();
        pinged
    }

    /// Closed when it goes back to the pool: it was found gone.
    pub(crate) fn forget(&mut self) {
        self.gone = true;
    }
}

impl std::ops::Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.pg
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.pg
    }
}

/// diesel's connection manager, which closes a connection coming back to a pool whose
/// `keep` idle connections are there already (see the module documentation).
#[derive(Debug)]
pub(crate) struct Manager {
    inner: ConnectionManager<PgConnection>,
    /// The connection string again, for [`refusal::diagnosed`](crate::refusal::diagnosed).
    conninfo: DatabaseUrl,
    connect_timeout: Duration,
    /// The last refusal's message, as diesel gave it and as diagnosed.
    last_refusal: Mutex<Option<(String, String)>>,
    returns: Arc<Returns>,
    /// A connection back in the pool for less than this is handed out unpinged.
    bypass: Duration,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = diesel::r2d2::Error;

    /// diesel's connect; a refusal in words of the server's language carries its
    /// SQLSTATE, for the pool passes the error on as text ([`refusal`](crate::refusal)).
    /// The same refusal again (r2d2 retries in the background) reuses the code found.
    fn connect(&self) -> Result<Conn, Self::Error> {
        use diesel::r2d2::Error as E;
        use diesel::ConnectionError::BadConnection;
        let opened = self.inner.connect().map(|pg| Conn {
            pg,
            returned: Instant::now(),
            checked: true,
            gone: false,
            place: Some(self.returns.place().0),
        });
        opened.map_err(|e| match e {
            E::ConnectionError(BadConnection(message)) => {
                let known = self
                    .last_refusal
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                    .filter(|(said, _)| *said == message)
                    .map(|(_, diagnosed)| diagnosed.clone());
                let diagnosed = known.unwrap_or_else(|| {
                    let diagnosed = crate::refusal::diagnosed(
                        message.clone(),
                        self.conninfo.expose(),
                        self.connect_timeout,
                    );
                    *self
                        .last_refusal
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((message, diagnosed.clone()));
                    diagnosed
                });
                E::ConnectionError(BadConnection(diagnosed))
            }
            other => other,
        })
    }

    /// The pre-ping of a checkout (diesel's `SELECT 1`), but for a connection back in the
    /// pool for less than `bypass`: handed out unchecked (a read on it that finds it gone
    /// runs again on a checked one, as does a write whose `BEGIN` finds it gone; a unit of
    /// work pings it first, [`Conn::check_unchecked`]).
    fn is_valid(&self, conn: &mut Conn) -> Result<(), Self::Error> {
        // Handed out (r2d2 validates every checkout): no longer idle.
        conn.place = None;
        if conn.returned.elapsed() < self.bypass {
            conn.checked = false;
            return Ok(());
        }
        conn.checked = true;
        self.inner.is_valid(&mut conn.pg)
    }

    /// r2d2 asks this of each connection coming back, before it joins the idle ones: it
    /// is closed when found gone, or when `keep` connections are idle already and no caller
    /// waits.
    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.returned = Instant::now();
        conn.gone || self.inner.has_broken(&mut conn.pg) || self.returns.closes(conn)
    }
}

/// What the manager and the pool share: the callers waiting for a connection, and the
/// places held by idle connections.
///
/// r2d2 asks the manager about a connection coming back before it takes its own lock, so
/// connections coming back at the same moment are judged before any of them joins the
/// idle ones: a rule read from the pool's idle count let each see fewer than `keep` and
/// stay open. Instead, each idle connection holds a place, counted atomically when it
/// comes back (or opens) and given up when it is handed out or closed; one coming back
/// while `keep` are held is closed unless a caller waits.
#[derive(Debug)]
struct Returns {
    waiting: AtomicUsize,
    keep: u32,
    /// Places held now.
    held: AtomicU32,
}

/// The place of an idle connection, counted in [`Returns`]; freed when dropped.
#[derive(Debug)]
struct Place(Arc<Returns>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Returns {
    /// A place for a connection joining the idle ones, and how many were held before it.
    fn place(self: &Arc<Self>) -> (Place, u32) {
        let before = self.held.fetch_add(1, Ordering::SeqCst);
        (Place(self.clone()), before)
    }

    /// Whether `conn`, coming back, is closed: when `keep` places are held already and no
    /// caller waits (r2d2 wakes no waiter when it closes a connection, so closing one that
    /// a waiter could have had would leave the waiter to time out with room in the pool).
    /// A connection kept holds a place even beyond `keep`, so that every idle connection
    /// is counted.
    fn closes(self: &Arc<Self>, conn: &mut Conn) -> bool {
        if conn.place.is_some() {
            return false;
        }
        let (place, before) = self.place();
        if before >= self.keep && self.waiting.load(Ordering::SeqCst) == 0 {
            return true;
        }
        conn.place = Some(place);
        false
    }
}

/// What a pool keeps open when nothing uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Warm {
    /// Nothing: connections open on demand (the primary's pool).
    None,
    /// One idle connection, reopened by r2d2 when it goes (a replica's pool: an empty pool
    /// is how an unreachable replica shows, and a read must not wait for a connect to
    /// tell a healthy replica from a down one).
    One,
}

/// Builds the pool on the connection string `conninfo` (see
/// [`connection_info`](crate::url::connection_info)). Opens no connection on the caller's
/// thread: connections open on demand (and, with [`Warm::One`], one in the background;
/// see also [`Pool::warm`]).
pub(crate) fn build(
    config: &PgConfig,
    conninfo: String,
    counters: Arc<Counters>,
    warm: Warm,
    bypass: Duration,
) -> Result<Pool, Error> {
    let label = counters.pool;
    let returns = Arc::new(Returns {
        waiting: AtomicUsize::new(0),
        keep: config.pool_size,
        held: AtomicU32::new(0),
    });
    let manager = Manager {
        inner: ConnectionManager::new(conninfo.clone()),
        conninfo: DatabaseUrl::new(conninfo),
        connect_timeout: config.connect_timeout,
        last_refusal: Mutex::new(None),
        returns: returns.clone(),
        bypass,
    };
    let pool = r2d2::Pool::builder()
        .max_size(config.pool_size.saturating_add(config.max_overflow))
        .min_idle(Some(u32::from(warm == Warm::One)))
        .idle_timeout(Some(config.idle_timeout))
        .max_lifetime(Some(config.pool_recycle))
        .connection_timeout(config.pool_timeout)
        .test_on_check_out(true)
        .event_handler(Box::new(EventHandler(counters)))
        .error_handler(Box::new(r2d2::NopErrorHandler));
    let pool = if config.pooler == Pooler::Transaction {
        pool.connection_customizer(Box::new(NoStatementCache))
    } else {
        pool
    };
    let inner = Arc::new(pool.build_unchecked(manager));
    Ok(Pool {
        inner,
        returns,
        label,
    })
}

/// Behind PgBouncer in transaction mode a named prepared statement would stay on the server
/// connection that prepared it while the next transaction runs on another: diesel's
/// statement cache is turned off, and every statement goes as an unnamed one, parsed,
/// bound and run in one round trip.
#[derive(Debug)]
struct NoStatementCache;

impl CustomizeConnection<Conn, diesel::r2d2::Error> for NoStatementCache {
    fn on_acquire(&self, conn: &mut Conn) -> Result<(), diesel::r2d2::Error> {
        conn.pg
            .set_prepared_statement_cache_size(CacheSize::Disabled);
        Ok(())
    }
}
/// A connection checked out of the store's pool (it dereferences to diesel's
/// `PgConnection`). Dropping it returns the connection to the pool, after a warning when it
/// was held longer than the leak threshold.
pub struct Lease {
    pub(crate) conn: Pooled,
    pub(crate) taken: Instant,
    /// How long its caller waited for it: a call run again on another connection waits
    /// for that one within what is left of the pool timeout (the time the call ran on
    /// this one does not count).
    pub(crate) waited: Duration,
    pub(crate) site: &'static std::panic::Location<'static>,
    /// Held longer than this, it is reported as a leak when dropped.
    pub(crate) threshold: Option<Duration>,
    pub(crate) counters: Arc<Counters>,
}

impl std::ops::Deref for Lease {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(threshold) = self.threshold {
            let held = self.taken.elapsed();
            if held > threshold {
                self.counters.record_leak();
                tracing::warn!(
                    "memgpt-pg: a connection was held for {held:?} (threshold {threshold:?}); \
                     it was taken at {}",
                    self.site
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use memgpt_testing::{TempDatabase, VECTOR_SERVER};

    /// A pool of `size + overflow` on a database of its own (returned first: it must
    /// outlive the pool's connections), every checkout pinged.
    fn pool_of(size: u32, overflow: u32) -> (TempDatabase, Pool) {
        let db = TempDatabase::create(VECTOR_SERVER).unwrap();
        let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
        (config.pool_size, config.max_overflow) = (size, overflow);
        let info = crate::url::connection_info(&config).unwrap();
        let counters = Arc::new(Counters::new("postgres", size));
        let pool = build(
            &config,
            info.to_conninfo(),
            counters,
            Warm::None,
            Duration::ZERO,
        );
        (db, pool.unwrap())
    }

    /// r2d2 asks the manager about a connection coming back before it takes its own lock:
    /// connections coming back at the same moment are judged before any of them joins the
    /// idle ones. Three judged so, on a pool of 2 + 1: two stay, the third is closed, and
    /// the pool ends with two idle connections.
    #[test]
    fn connections_judged_before_any_joins_the_idle_ones_keep_pool_size() {
        let (_db, pool) = pool_of(2, 1);
        let mut held: Vec<Pooled> = (0..3)
            .map(|_| pool.get_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        let verdicts: Vec<bool> = held.iter_mut().map(|c| pool.returns.closes(c)).collect();
        assert_eq!(verdicts, [false, false, true]);
        drop(held);
        let state = pool.state();
        assert_eq!((state.connections, state.idle_connections), (2, 2));
    }

    /// A connection kept because a caller waited counts among the idle ones like any
    /// other: on a pool of 2 + 2, two connections judged at once take the two places while
    /// a third comes back to a waiting caller; once the pool has settled (a fourth closed,
    /// five checkouts and returns), two connections are idle, not three.
    #[test]
    fn a_connection_kept_for_a_waiting_caller_counts_among_the_idle_ones() {
        let (_db, pool) = pool_of(2, 2);
        let get = || pool.get_timeout(Duration::from_secs(5)).unwrap();
        let (mut a, mut b, c, d) = (get(), get(), get(), get());
        assert!(!pool.returns.closes(&mut a) && !pool.returns.closes(&mut b));
        pool.returns.waiting.fetch_add(1, Ordering::SeqCst);
        drop(c);
        pool.returns.waiting.fetch_sub(1, Ordering::SeqCst);
        drop((a, b, d));
        for _ in 0..5 {
            drop(get());
        }
        let state = pool.state();
        assert_eq!((state.connections, state.idle_connections), (2, 2));
    }
}
