//! Pool monitoring: checkout waits, timeouts, connections opened and closed,
//! and the server's view (`pg_stat_activity`, `pg_stat_user_indexes`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use memgpt_core::telemetry::{self, PoolCounter, PoolGauge};

/// Counters fed by the pool's events, and reported through the `metrics` facade too (with
/// memgpt-core's feature `metrics`: [`memgpt_core::telemetry`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// The pool's label in the exported figures.
    pub(crate) pool: &'static str,
    /// Connections kept (`pool_size`): more open are overflow.
    keep: u32,
    /// Connections open now.
    open: AtomicU32,
    checkouts: AtomicU64,
    wait_total_us: AtomicU64,
    wait_max_us: AtomicU64,
    /// Checkout waits by power of two of microseconds: bucket i holds waits < 2^i µs.
    wait_buckets: [AtomicU64; 32],
    timeouts: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
    leaks: AtomicU64,
    replica_reads: AtomicU64,
    replica_fallbacks: AtomicU64,
    reruns: AtomicU64,
}

impl Counters {
    /// The counters of the pool labelled `pool` that keeps `keep` connections.
    pub(crate) fn new(pool: &'static str, keep: u32) -> Self {
        let mut counters = Counters::default();
        (counters.pool, counters.keep) = (pool, keep);
        counters
    }

    pub(crate) fn record_wait(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.checkouts.fetch_add(1, Ordering::Relaxed);
        self.wait_total_us.fetch_add(us, Ordering::Relaxed);
        self.wait_max_us.fetch_max(us, Ordering::Relaxed);
        let bucket = (64 - us.leading_zeros()) as usize;
        self.wait_buckets[bucket.min(31)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_leak(&self) {
        self.leaks.fetch_add(1, Ordering::Relaxed);
        telemetry::count(PoolCounter::Leaks, self.pool);
    }

    /// A read a replica served.
    pub(crate) fn record_replica_read(&self) {
        self.replica_reads.fetch_add(1, Ordering::Relaxed);
        telemetry::count(PoolCounter::ReplicaReads, self.pool);
    }

    /// A read the primary served although replicas are configured: none was up, caught up
    /// to within the maximum lag, or (read-your-writes) past the session's last write.
    pub(crate) fn record_replica_fallback(&self) {
        self.replica_fallbacks.fetch_add(1, Ordering::Relaxed);
        telemetry::count(PoolCounter::ReplicaFallbacks, self.pool);
    }

    /// A call run again on a checked connection: the unchecked one it was given was gone.
    pub(crate) fn record_rerun(&self) {
        self.reruns.fetch_add(1, Ordering::Relaxed);
        telemetry::count(PoolCounter::Reruns, self.pool);
        tracing::debug!(
            pool = self.pool,
            "memgpt-pg: a connection was found gone; the call runs again on a checked one"
        );
    }

    pub(crate) fn record_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        telemetry::count(PoolCounter::Timeouts, self.pool);
    }

    /// A connection opened: one more open, beyond `keep` one more of overflow.
    fn record_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        telemetry::count(PoolCounter::Opened, self.pool);
        telemetry::step(PoolGauge::Connections, self.pool, 1.0);
        if self.open.fetch_add(1, Ordering::SeqCst) >= self.keep {
            telemetry::step(PoolGauge::Overflow, self.pool, 1.0);
        }
    }

    /// A connection closed.
    fn record_closed(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
        telemetry::count(PoolCounter::Closed, self.pool);
        telemetry::step(PoolGauge::Connections, self.pool, -1.0);
        if self.open.fetch_sub(1, Ordering::SeqCst) > self.keep {
            telemetry::step(PoolGauge::Overflow, self.pool, -1.0);
        }
    }

    /// The upper bound of the bucket holding the 99th percentile wait.
    fn wait_p99(&self) -> Duration {
        let counts: Vec<u64> = self
            .wait_buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let target = total - total / 100;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Duration::from_micros(1u64 << i.min(63));
            }
        }
        Duration::MAX
    }
}

/// The pool is gone (r2d2 reports no release of the connections it drops with it): its
/// connections leave the exported gauges.
impl Drop for Counters {
    fn drop(&mut self) {
        let open = self.open.load(Ordering::SeqCst);
        telemetry::step(PoolGauge::Connections, self.pool, -f64::from(open));
        telemetry::step(
            PoolGauge::Overflow,
            self.pool,
            -f64::from(open.saturating_sub(self.keep)),
        );
    }
}

/// Forwards r2d2's pool events to [`Counters`].
#[derive(Debug)]
pub(crate) struct EventHandler(pub std::sync::Arc<Counters>);

impl r2d2::HandleEvent for EventHandler {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        self.0.record_opened();
    }
    fn handle_release(&self, _: r2d2::event::ReleaseEvent) {
        self.0.record_closed();
    }
    fn handle_checkout(&self, e: r2d2::event::CheckoutEvent) {
        self.0.record_wait(e.duration());
        telemetry::step(PoolGauge::InUse, self.0.pool, 1.0);
    }
    fn handle_checkin(&self, _: r2d2::event::CheckinEvent) {
        telemetry::step(PoolGauge::InUse, self.0.pool, -1.0);
    }
    fn handle_timeout(&self, _: r2d2::event::TimeoutEvent) {
        self.0.record_timeout();
    }
}

/// A snapshot of the pool, from [`PgStore::metrics`](crate::PgStore::metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// Connections kept (`MEMGPT_PG_POOL_SIZE`).
    pub pool_size: u32,
    /// Most connections ever open at once (`pool_size + max_overflow`).
    pub max: u32,
    /// Connections open now.
    pub connections: u32,
    /// Connections open and idle.
    pub idle: u32,
    /// Connections checked out now.
    pub in_use: u32,
    /// Callers waiting for a connection now.
    pub waiting: u32,
    /// Connections open beyond `pool_size` (overflow).
    pub overflow: u32,
    /// Checkouts so far.
    pub checkouts: u64,
    /// Total time callers waited for a connection.
    pub wait_total: Duration,
    /// Longest wait.
    pub wait_max: Duration,
    /// 99th percentile wait (upper bound of its power-of-two bucket).
    pub wait_p99: Duration,
    /// Checkouts that gave up after the pool timeout.
    pub timeouts: u64,
    /// Connections opened so far.
    pub opened: u64,
    /// Connections closed so far.
    pub closed: u64,
    /// Checkouts held longer than the leak threshold (`MEMGPT_PG_LEAK_THRESHOLD_MS`).
    pub leaks: u64,
    /// Reads served by a replica (`MEMGPT_PG_REPLICA_URLS`).
    pub replica_reads: u64,
    /// Reads the primary served although replicas are configured: each replica was down,
    /// further behind than `MEMGPT_PG_REPLICA_MAX_LAG`, or (read-your-writes) not yet past
    /// the session's last write.
    pub replica_fallbacks: u64,
    /// Calls run again on a checked connection because the connection handed out unchecked
    /// (within `MEMGPT_PG_PRE_PING_BYPASS_MS`) was found gone before anything of them ran.
    pub reruns: u64,
}

impl PoolMetrics {
    pub(crate) fn new(
        c: &Counters,
        state: r2d2::State,
        waiting: u32,
        pool_size: u32,
        max: u32,
    ) -> Self {
        PoolMetrics {
            waiting,
            pool_size,
            max,
            connections: state.connections,
            idle: state.idle_connections,
            in_use: state.connections.saturating_sub(state.idle_connections),
            overflow: state.connections.saturating_sub(pool_size),
            checkouts: c.checkouts.load(Ordering::Relaxed),
            wait_total: Duration::from_micros(c.wait_total_us.load(Ordering::Relaxed)),
            wait_max: Duration::from_micros(c.wait_max_us.load(Ordering::Relaxed)),
            wait_p99: c.wait_p99(),
            timeouts: c.timeouts.load(Ordering::Relaxed),
            opened: c.opened.load(Ordering::Relaxed),
            closed: c.closed.load(Ordering::Relaxed),
            leaks: c.leaks.load(Ordering::Relaxed),
            replica_reads: c.replica_reads.load(Ordering::Relaxed),
            replica_fallbacks: c.replica_fallbacks.load(Ordering::Relaxed),
            reruns: c.reruns.load(Ordering::Relaxed),
        }
    }
}

/// One row of `pg_stat_activity` for this application's connections.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName)]
#[non_exhaustive]
pub struct Activity {
    /// Backend process id.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub pid: i32,
    /// `active`, `idle`, `idle in transaction`, …
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub state: Option<String>,
    /// What the backend waits on, if anything.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub wait_event: Option<String>,
    /// Seconds since the current query (or the last one) started.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    pub query_seconds: Option<f64>,
    /// The current or last query, first 200 characters.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub query: Option<String>,
}

/// One row of `pg_stat_user_indexes` for memgpt's tables.
#[derive(Debug, Clone, PartialEq, Eq, diesel::QueryableByName)]
#[non_exhaustive]
pub struct IndexUsage {
    /// The table.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub table: String,
    /// The index.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub index: String,
    /// Index scans so far.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub scans: i64,
    /// Size in bytes.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub bytes: i64,
}
