//! Tracing: one span per connector call and per pool checkout, at debug level.
//!
//! A connector call runs in a span `memgpt_store::call` with the fields `table`, `op`
//! (the operation), `records` (records returned or written, where the call counts them),
//! `duration_us` and `outcome` (`ok`, or the name of the [`Error`] variant). A checkout
//! runs in a span `memgpt_store::checkout` with `pool` and `wait_us`. No field ever holds a
//! value of a record, a filter, a query or a secret.
//!
//! Without a `tracing` subscriber, spans and events are emitted as `log` records (the
//! `tracing` crate's `log` feature), so users of `log` see them as before.

use std::time::Instant;

use crate::{CursorPage, Error, Result, TableType};

/// What a call's result says about how many records it returned or wrote.
pub(crate) trait Counted {
    /// The count, when the result has one.
    fn count(&self) -> Option<u64>;
}

impl<T> Counted for Vec<T> {
    fn count(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

impl<T> Counted for Option<T> {
    fn count(&self) -> Option<u64> {
        Some(u64::from(self.is_some()))
    }
}

impl Counted for u64 {
    fn count(&self) -> Option<u64> {
        Some(*self)
    }
}

impl Counted for () {
    fn count(&self) -> Option<u64> {
        None
    }
}

impl<T> Counted for CursorPage<T> {
    fn count(&self) -> Option<u64> {
        Some(self.records.len() as u64)
    }
}

/// Runs the connector call `op` on `table` in its span.
pub(crate) fn call<T: Counted>(
    table: TableType,
    op: &'static str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let span = tracing::debug_span!(
        "memgpt_store::call",
        table = table.table_name(),
        op,
        records = tracing::field::Empty,
        duration_us = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let _entered = span.enter();
    let start = Instant::now();
    let result = f();
    let duration_us = micros(start);
    let (records, outcome) = match &result {
        Ok(v) => (v.count(), "ok"),
        Err(e) => (None, outcome(e)),
    };
    crate::telemetry::call(table.table_name(), op, outcome, duration_us as f64 / 1e6);
    // All three in one record: one line for a user of `log`.
    if let Some(meta) = span.metadata() {
        let fields = meta.fields();
        if let (Some(r), Some(d), Some(o)) = (
            fields.field("records"),
            fields.field("duration_us"),
            fields.field("outcome"),
        ) {
            span.record_all(&fields.value_set(&[
                (&r, records.as_ref().map(|n| n as &dyn tracing::Value)),
                (&d, Some(&duration_us as &dyn tracing::Value)),
                (&o, Some(&outcome as &dyn tracing::Value)),
            ]));
        }
    }
    result
}

/// Checks a connection out of the pool named `pool` in a `memgpt_store::checkout` span
/// that records the wait; a timeout is also a warning event. For backend crates.
pub fn checkout<T>(pool: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let span = tracing::debug_span!(
        "memgpt_store::checkout",
        pool,
        wait_us = tracing::field::Empty
    );
    let _entered = span.enter();
    let start = Instant::now();
    let result = f();
    let wait_us = micros(start);
    span.record("wait_us", wait_us);
    let done = match &result {
        Ok(_) => "ok",
        Err(e) => outcome(e),
    };
    crate::telemetry::checkout(pool, done, wait_us as f64 / 1e6);
    if let Err(e @ (Error::PoolTimeout { .. } | Error::ConnectionLost { .. })) = &result {
        tracing::warn!(pool, wait_us, "memgpt-store: no connection: {e}");
    }
    result
}

fn micros(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The name of an error's variant: what a span may say of a failure (its message may
/// quote a value).
fn outcome(e: &Error) -> &'static str {
    match e {
        Error::PoolTimeout { .. } => "PoolTimeout",
        Error::ConnectionLost { .. } => "ConnectionLost",
        Error::Authentication { .. } => "Authentication",
        Error::Busy { .. } => "Busy",
        Error::Timeout { .. } => "Timeout",
        Error::NotFound { .. } => "NotFound",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::InvalidInput { .. } => "InvalidInput",
        Error::DuplicateId { .. } => "DuplicateId",
        Error::Config { .. } => "Config",
        Error::VectorUnavailable { .. } => "VectorUnavailable",
        Error::Migration { .. } => "Migration",
        Error::Aborted { .. } => "Aborted",
        Error::Database { .. } => "Database",
    }
}
