//! The figures a store reports through the [`metrics`](https://docs.rs/metrics) crate's
//! facade (feature `metrics`), for any exporter to scrape (Prometheus:
//! `metrics-exporter-prometheus`, as `examples/axum_memory.rs` serves them on `/metrics`).
//! Without the feature every function here is empty and nothing links `metrics`.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `memgpt_store_calls_total` | counter | `table`, `op`, `outcome` (`ok` or the error's variant) |
//! | `memgpt_store_call_duration_seconds` | histogram | `table`, `op` |
//! | `memgpt_store_checkouts_total` | counter | `pool`, `outcome` |
//! | `memgpt_store_checkout_wait_seconds` | histogram | `pool` |
//! | `memgpt_store_async_wait_seconds` | histogram | (a call's wait for a place, [`crate::asynchronous`]) |
//! | `memgpt_store_async_timeouts_total` | counter | |
//! | `memgpt_store_pool_connections` | gauge | `pool` (PostgreSQL: open now) |
//! | `memgpt_store_pool_in_use` | gauge | `pool` (checked out now) |
//! | `memgpt_store_pool_waiting` | gauge | `pool` (callers waiting for a connection) |
//! | `memgpt_store_pool_overflow` | gauge | `pool` (open beyond `pool_size`) |
//! | `memgpt_store_pool_timeouts_total` | counter | `pool` |
//! | `memgpt_store_pool_opened_total`, `…_closed_total` | counter | `pool` |
//! | `memgpt_store_pool_leaks_total` | counter | `pool` (held past the leak threshold) |
//! | `memgpt_store_pool_reruns_total` | counter | `pool` (calls run again: their connection was gone) |
//! | `memgpt_store_replica_reads_total`, `…_fallbacks_total` | counter | |
//!
//! `pool` is `postgres`, `postgres-replica`, `sqlite-writer` or `sqlite-readers` (SQLite
//! reports checkouts, not the pool gauges and counters, which are PostgreSQL's). Gauges move
//! by steps, so the stores of one process add up, and a store that is dropped takes its
//! connections off them: install the recorder (the exporter) before opening the stores,
//! or the gauges miss what opened before. An async call that finds no place counts in
//! `memgpt_store_async_timeouts_total` (it never became a call). No label ever holds a
//! value of a record, a filter or a secret.

/// Counters of a pool, by name (more may come: not to be matched exhaustively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolCounter {
    /// `memgpt_store_pool_timeouts_total`.
    Timeouts,
    /// `memgpt_store_pool_opened_total`.
    Opened,
    /// `memgpt_store_pool_closed_total`.
    Closed,
    /// `memgpt_store_pool_leaks_total`.
    Leaks,
    /// `memgpt_store_replica_reads_total` (no `pool` label).
    ReplicaReads,
    /// `memgpt_store_replica_fallbacks_total` (no `pool` label).
    ReplicaFallbacks,
    /// `memgpt_store_pool_reruns_total`: calls run again on a checked connection after the
    /// unchecked one they were given was found gone (nothing of them had run).
    Reruns,
}

/// Gauges of a pool, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolGauge {
    /// `memgpt_store_pool_connections`.
    Connections,
    /// `memgpt_store_pool_in_use`.
    InUse,
    /// `memgpt_store_pool_waiting`.
    Waiting,
    /// `memgpt_store_pool_overflow`.
    Overflow,
}

/// A connector call of `op` on `table` that ended in `outcome` after `seconds`.
pub(crate) fn call(table: &'static str, op: &'static str, outcome: &'static str, seconds: f64) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("memgpt_store_calls_total", "table" => table, "op" => op, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("memgpt_store_call_duration_seconds", "table" => table, "op" => op)
            .record(seconds);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (table, op, outcome, seconds);
}

/// A checkout of `pool` that ended in `outcome` after waiting `seconds`.
pub(crate) fn checkout(pool: &'static str, outcome: &'static str, seconds: f64) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("memgpt_store_checkouts_total", "pool" => pool, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("memgpt_store_checkout_wait_seconds", "pool" => pool).record(seconds);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (pool, outcome, seconds);
}

/// An async call's wait of `seconds` for a place; `timed_out` when it found none.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn async_wait(seconds: f64, timed_out: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::histogram!("memgpt_store_async_wait_seconds").record(seconds);
        if timed_out {
            metrics::counter!("memgpt_store_async_timeouts_total").increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (seconds, timed_out);
}

/// One more of `counter` for `pool`. For backend crates.
pub fn count(counter: PoolCounter, pool: &'static str) {
    #[cfg(feature = "metrics")]
    match counter {
        PoolCounter::Timeouts => {
            metrics::counter!("memgpt_store_pool_timeouts_total", "pool" => pool).increment(1);
        }
        PoolCounter::Opened => {
            metrics::counter!("memgpt_store_pool_opened_total", "pool" => pool).increment(1);
        }
        PoolCounter::Closed => {
            metrics::counter!("memgpt_store_pool_closed_total", "pool" => pool).increment(1);
        }
        PoolCounter::Leaks => {
            metrics::counter!("memgpt_store_pool_leaks_total", "pool" => pool).increment(1);
        }
        PoolCounter::ReplicaReads => {
            metrics::counter!("memgpt_store_replica_reads_total").increment(1);
        }
        PoolCounter::ReplicaFallbacks => {
            metrics::counter!("memgpt_store_replica_fallbacks_total").increment(1);
        }
        PoolCounter::Reruns => {
            metrics::counter!("memgpt_store_pool_reruns_total", "pool" => pool).increment(1);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (counter, pool);
}

/// Moves `gauge` of `pool` by `delta`. For backend crates.
pub fn step(gauge: PoolGauge, pool: &'static str, delta: f64) {
    #[cfg(feature = "metrics")]
    {
        let name = match gauge {
            PoolGauge::Connections => "memgpt_store_pool_connections",
            PoolGauge::InUse => "memgpt_store_pool_in_use",
            PoolGauge::Waiting => "memgpt_store_pool_waiting",
            PoolGauge::Overflow => "memgpt_store_pool_overflow",
        };
        metrics::gauge!(name, "pool" => pool).increment(delta);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (gauge, pool, delta);
}
