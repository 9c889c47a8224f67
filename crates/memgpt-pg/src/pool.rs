//! The connection pool: SQLAlchemy's QueuePool semantics on r2d2.
//!
//! QueuePool keeps at most `pool_size` idle connections, opens up to `max_overflow` more
//! under load, and closes a connection that comes back while `pool_size` others are idle.
//! r2d2 has no overflow, so it is built from its settings and one rule of ours:
//! `max_size` is `pool_size + max_overflow`; `min_idle` is 0 (r2d2's `min_idle` counts
//! *idle* connections, so keeping `pool_size` of them would open `pool_size` more besides
//! every busy one); connections open on demand; and [`Manager::has_broken`], which r2d2
//! asks about every connection coming back, closes it when `pool_size` connections are
//! idle already (read from the pool itself, which the manager reaches through a weak
//! reference: the store holds the pool in an `Arc`). `idle_timeout` (`MEMGPT_PG_IDLE_TIMEOUT`) closes connections idle that
//! long (r2d2's reaper runs every 30 s).

use std::sync::{Arc, OnceLock, Weak};

use crate::{PgConfig, Pooler};
use diesel::connection::{CacheSize, Connection};
use diesel::r2d2::PooledConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection};
use diesel::PgConnection;
use memgpt_core::Error;

use crate::metrics::{Counters, EventHandler};

pub(crate) type Pooled = PooledConnection<Manager>;

/// A pool of the store (the primary's, or a replica's), shared.
pub(crate) type Pool<M> = Arc<r2d2::Pool<M>>;

/// diesel's connection manager, which closes a connection coming back to a pool whose
/// `keep` idle connections are there already (see the module documentation).
#[derive(Debug)]
pub(crate) struct Manager {
    inner: ConnectionManager<PgConnection>,
    pool: Arc<OnceLock<Weak<r2d2::Pool<Manager>>>>,
    keep: u32,
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        self.inner.connect()
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        self.inner.is_valid(conn)
    }

    /// r2d2 asks this of each connection coming back, before it joins the idle ones: it
    /// is closed when `keep` connections are idle already.
    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.inner.has_broken(conn)
            || self
                .pool
                .get()
                .and_then(Weak::upgrade)
                .is_some_and(|pool| pool.state().idle_connections >= self.keep)
    }
}

/// Builds the pool on the connection string `conninfo` (see
/// [`connection_info`](crate::url::connection_info)). Opens no connection: connections
/// open on demand.
pub(crate) fn build(
    config: &PgConfig,
    conninfo: String,
    counters: Arc<Counters>,
) -> Result<Pool<Manager>, Error> {
    let slot = Arc::new(OnceLock::new());
    let manager = Manager {
        inner: ConnectionManager::new(conninfo),
        pool: slot.clone(),
        keep: config.pool_size,
    };
    let pool = r2d2::Pool::builder()
        .max_size(config.pool_size.saturating_add(config.max_overflow))
        .min_idle(Some(0))
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
    let pool = Arc::new(pool.build_unchecked(manager));
    let _ = slot.set(Arc::downgrade(&pool));
    Ok(pool)
}

/// Behind PgBouncer in transaction mode a named prepared statement would stay on the server
/// connection that prepared it while the next transaction runs on another: diesel's
/// statement cache is turned off, and every statement goes as an unnamed one, parsed,
/// bound and run in one round trip.
#[derive(Debug)]
struct NoStatementCache;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for NoStatementCache {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        Ok(())
    }
}
