//! The connection pool: SQLAlchemy's QueuePool semantics on r2d2.
//!
//! r2d2 has no overflow, so it is built from two of its settings: `max_size` is
//! `pool_size + max_overflow`, `min_idle` is `pool_size`, and `idle_timeout`
//! (`MEMGPT_PG_IDLE_TIMEOUT`) closes idle connections, after which r2d2 reopens connections
//! up to `min_idle`. The pool therefore keeps `pool_size` connections, grows to
//! `pool_size + max_overflow` under load, and shrinks back once the extra connections sit
//! idle (r2d2's reaper runs every 30 s).

use std::sync::Arc;

use crate::{PgConfig, Pooler};
use diesel::connection::{CacheSize, Connection};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::PgConnection;
use memgpt_core::Error;

use crate::metrics::{Counters, EventHandler};

pub(crate) type Manager = ConnectionManager<PgConnection>;
pub(crate) type Pooled = PooledConnection<Manager>;

/// Builds the pool on the connection string `conninfo` (see
/// [`connection_info`](crate::url::connection_info)). Opens no connection on the caller's
/// thread: r2d2 opens the first `pool_size` in the background.
pub(crate) fn build(
    config: &PgConfig,
    conninfo: String,
    counters: Arc<Counters>,
) -> Result<Pool<Manager>, Error> {
    let pool = Pool::builder()
        .max_size(config.pool_size.saturating_add(config.max_overflow))
        .min_idle(Some(config.pool_size))
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
    Ok(pool.build_unchecked(Manager::new(conninfo)))
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
