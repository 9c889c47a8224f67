//! Retention: removing a scope's old memory in bounded batches.
//!
//! A prune deletes the records a [`Retention`] rule selects, oldest first, in batches of a
//! bounded number of rows, each batch one short write transaction of its own (no long
//! lock, no large WAL): [`StorageConnector::prune_batch`](crate::StorageConnector::prune_batch)
//! deletes one batch, [`StorageConnector::prune`](crate::StorageConnector::prune) all of
//! them. Stopping between batches leaves every batch done deleted, and a later prune of the
//! same rule goes on from there: the rule describes what is left to delete, not a cursor.

use chrono::{DateTime, Utc};

use crate::backend::{Backend, Scoped, Sql};
use crate::error::{Error, Result};
use crate::filter::{validate_all, Cmp, Column, Filter};
use crate::record::Record;

/// Which of a scope's records a prune removes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retention {
    /// The records created before the instant.
    OlderThan(DateTime<Utc>),
    /// All but the newest `n` records (by `created_at`, then id). Records without a
    /// `created_at` (another writer's) are neither counted nor removed.
    KeepNewest(u64),
    /// The records of a data source (archival memory, passages, documents).
    DataSource(String),
}

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Pruned {
    /// Records deleted.
    pub deleted: u64,
    /// Batches (transactions) that deleted them.
    pub batches: u64,
}

impl Pruned {
    /// What `one` batch after another removed, until one deleted fewer than `batch` rows
    /// (nothing is left) or failed.
    pub(crate) fn until_done(batch: usize, mut one: impl FnMut() -> Result<u64>) -> Result<Self> {
        let mut pruned = Pruned::default();
        loop {
            let deleted = one()?;
            if deleted > 0 {
                pruned.deleted += deleted;
                pruned.batches += 1;
            }
            if deleted < batch as u64 {
                return Ok(pruned);
            }
        }
    }
}

/// The batch size `memgpt-store prune` uses unless told otherwise.
pub const DEFAULT_PRUNE_BATCH: usize = 1_000;
/// The largest batch.
pub const MAX_PRUNE_BATCH: usize = 50_000;

/// The statement of one batch of a prune of `t`'s records.
///
/// # Errors
/// [`Error::InvalidInput`] for a batch out of range, or a data source on recall memory.
pub(crate) fn prune_statement<B: Backend, R: Record>(
    t: &Scoped<B, R>,
    rule: &Retention,
    batch: usize,
) -> Result<Sql<B>> {
    if batch == 0 || batch > MAX_PRUNE_BATCH {
        return Err(Error::invalid(
            "batch",
            format!("must be between 1 and {MAX_PRUNE_BATCH}, not {batch}"),
        ));
    }
    let filters = match rule {
        Retention::OlderThan(at) => vec![Filter::created_at(Cmp::Lt, *at)],
        Retention::DataSource(source) => {
            let f = vec![Filter::eq(Column::DataSource, source.as_str())];
            validate_all(&f, t.table())?;
            f
        }
        Retention::KeepNewest(_) => Vec::new(),
    };
    let keep_newest = match rule {
        Retention::KeepNewest(n) => Some(*n),
        _ => None,
    };
    Ok(t.shapes().prune_batch(&filters, keep_newest, batch))
}
