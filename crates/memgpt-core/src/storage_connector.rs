//! The storage connector trait: MemGPT's connector operations, scoped to one tenant.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::hybrid::HybridOptions;
use crate::record::Record;
use crate::retention::{Pruned, Retention};
use crate::scope::Scope;
use crate::table::TableType;

/// A position in the stable order `(created_at, id)` of a table: the key of keyset
/// pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyset {
    /// Creation time of the record at this position.
    pub created_at: DateTime<Utc>,
    /// Id of the record at this position (breaks ties of equal `created_at`).
    pub id: Uuid,
}

/// The order of [`StorageConnector::get_all_cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OrderBy {
    /// By creation time, ties broken by id.
    #[default]
    CreatedAt,
}

/// The arguments of [`StorageConnector::get_all_cursor`], as MemGPT's `get_all_cursor`
/// takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorRequest {
    /// Equality filters, combined with AND inside the scope.
    pub filters: Vec<Filter>,
    /// Only records after this record (in ascending `(created_at, id)` order).
    pub after: Option<Uuid>,
    /// Only records before this record (in ascending `(created_at, id)` order).
    pub before: Option<Uuid>,
    /// At most this many records (MemGPT's default: 1000).
    pub limit: usize,
    /// The order.
    pub order_by: OrderBy,
    /// Newest first: the page holds the `limit` latest records of the range, latest first.
    pub reverse: bool,
}

impl Default for CursorRequest {
    fn default() -> Self {
        CursorRequest {
            filters: Vec::new(),
            after: None,
            before: None,
            limit: 1000,
            order_by: OrderBy::CreatedAt,
            reverse: false,
        }
    }
}

/// One page of [`StorageConnector::get_all_cursor`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CursorPage<R> {
    /// Id of the page's last record: pass it as `after` (or `before` when reversed) to get
    /// the next page. `None` when the page is empty.
    pub last_id: Option<Uuid>,
    /// The records, in the requested order.
    pub records: Vec<R>,
}

/// The operations of a MemGPT storage connector, bound to one [`TableType`] and one
/// [`Scope`].
///
/// Every backend implements it; the conformance suite (feature `conformance`) checks any
/// implementation against the same exact expectations. Each operation is confined to the
/// connector's scope: records of other tenants are invisible, and an insert of a record
/// owned by another tenant is [`Error::InvalidInput`].
///
/// The stable order of a table is ascending `(created_at, id)`.
pub trait StorageConnector {
    /// The record type stored (messages for recall memory, passages for archival memory and
    /// passages, documents for documents).
    type Record: Record;

    /// The table this connector reads and writes.
    fn table_type(&self) -> TableType;

    /// The tenant this connector is bound to.
    fn scope(&self) -> &Scope;

    /// Up to `limit` records after `after` (exclusive) in ascending `(created_at, id)`
    /// order: one step of keyset pagination. Backs [`get_all_paginated`](Self::get_all_paginated).
    #[track_caller]
    fn get_page(
        &self,
        filters: &[Filter],
        after: Option<&Keyset>,
        limit: usize,
    ) -> Result<Vec<Self::Record>>;

    /// MemGPT's `get_all_cursor`: a page of records relative to a cursor record, with its
    /// last id for the next call.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `after` or `before` names no record in the scope.
    #[track_caller]
    fn get_all_cursor(&self, request: &CursorRequest) -> Result<CursorPage<Self::Record>>;

    /// The `limit` most recent records matching `filters` (all of them without a limit),
    /// newest first.
    #[track_caller]
    fn get_all(&self, filters: &[Filter], limit: Option<usize>) -> Result<Vec<Self::Record>>;

    /// The record with this id, if it exists in the scope.
    #[track_caller]
    fn get(&self, id: Uuid) -> Result<Option<Self::Record>>;

    /// The number of records matching `filters`.
    #[track_caller]
    fn size(&self, filters: &[Filter]) -> Result<u64>;

    /// Inserts one record, replacing a record of the same id (MemGPT's `insert`, which
    /// upserts).
    #[track_caller]
    fn insert(&self, record: &Self::Record) -> Result<()>;

    /// Inserts many records in one transaction: all or nothing. With `exists_ok`, a record
    /// whose id exists already replaces it (and of one id given twice, the last wins);
    /// without, an existing id is [`Error::AlreadyExists`] and an id given twice is
    /// [`Error::DuplicateId`]. Records may come from an iterator of any length: backends
    /// write in chunks and do not hold the whole input. Returns the number of records
    /// written. All or nothing also when the iterator panics: nothing of the call is kept.
    ///
    /// The iterator is `Send`. It may read the store (through another connection: a
    /// second pooled connection on PostgreSQL, a reader of the WAL on SQLite), but it
    /// cannot reach a unit of work, whose connectors are not `Send`: a call of a unit of
    /// work holds its connection from start to end. To copy within a unit of work, read a
    /// page, write it, and read the next:
    ///
    /// ```
    /// # use memgpt_core::{Result, StorageConnector, Keyset, Record};
    /// /// Writes to `to` what `adapt` makes of each record of `from` (another tenant's
    /// /// copy, say), a page at a time.
    /// fn copy<C: StorageConnector>(
    ///     from: &C,
    ///     to: &C,
    ///     adapt: impl Fn(&C::Record) -> C::Record + Sync,
    /// ) -> Result<u64> {
    ///     let (mut copied, mut after): (u64, Option<Keyset>) = (0, None);
    ///     loop {
    ///         let page = from.get_page(&[], after.as_ref(), 500)?;
    ///         let Some(last) = page.last() else { return Ok(copied) };
    ///         after = Some(last.keyset());
    ///         copied += to.insert_many(page.iter().map(&adapt), false)?;
    ///     }
    /// }
    /// ```
    ///
    /// A non-`Send` iterator of your own (over an `Rc`, a `RefCell` borrow, a lock guard):
    /// collect the records into a `Vec` first.
    #[track_caller]
    fn insert_many<I>(&self, records: I, exists_ok: bool) -> Result<u64>
    where
        I: IntoIterator<Item = Self::Record>,
        I::IntoIter: Send;

    /// Replaces the stored record of the same id.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no record of that id exists in the scope.
    #[track_caller]
    fn update(&self, record: &Self::Record) -> Result<()>;

    /// The `top_k` records nearest to `embedding` by L2 distance, nearest first (ties by
    /// id). Records without an embedding are not returned. Components missing from the
    /// shorter of two vectors count as zero, as MemGPT's zero padding makes them.
    ///
    /// # Errors
    /// [`Error::VectorUnavailable`] where the database cannot search vectors;
    /// [`Error::InvalidInput`] for an empty, too long or non-finite query vector.
    #[track_caller]
    fn query(
        &self,
        embedding: &[f32],
        top_k: usize,
        filters: &[Filter],
    ) -> Result<Vec<Self::Record>>;

    /// Hybrid search with the default [`HybridOptions`]: the `top_k` records of the scope
    /// (and `filters`) best ranked by full-text and vector search together, fused by
    /// reciprocal-rank fusion ([`crate::hybrid`]): the same records in the same order on
    /// every backend. A side with nothing to rank (no word of `text` matches; no record
    /// has an embedding) leaves the other's ranking. Its statements (the text side's word
    /// counts and ranking, the vector ranking) run one after another on one connection,
    /// each reading what is committed when it starts: writes committed meanwhile may show
    /// in one and not another (inside a unit of work, they read its own state).
    ///
    /// # Errors
    /// As [`query`](Self::query) (for documents, or with the vector side weighted 0, the
    /// query vector is not used, and not checked) and [`query_text`](Self::query_text);
    /// [`Error::InvalidInput`] for a text of more than
    /// [`MAX_WORDS`](crate::hybrid::MAX_WORDS) distinct words.
    #[track_caller]
    fn hybrid(
        &self,
        text: &str,
        embedding: &[f32],
        top_k: usize,
        filters: &[Filter],
    ) -> Result<Vec<Self::Record>> {
        self.hybrid_with(text, embedding, top_k, filters, &HybridOptions::default())
    }

    /// [`hybrid`](Self::hybrid) with options: the fusion constant, a weight per side, the
    /// candidates each side contributes.
    ///
    /// # Errors
    /// As [`hybrid`](Self::hybrid); [`Error::InvalidInput`] for options out of range
    /// ([`HybridOptions::validate`]).
    #[track_caller]
    fn hybrid_with(
        &self,
        text: &str,
        embedding: &[f32],
        top_k: usize,
        filters: &[Filter],
        options: &HybridOptions,
    ) -> Result<Vec<Self::Record>>;

    /// Records created in `start..=end`, oldest first, skipping `offset` and returning at
    /// most `limit`.
    #[track_caller]
    fn query_date(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<Self::Record>>;

    /// Records whose text contains every word of `query` (whole words, case and Latin
    /// accents folded, no stop words, no stemming: the rule of [`crate::fulltext`], the
    /// same on every backend), oldest first, skipping `offset` and returning at most
    /// `limit`. A query without any word matches nothing.
    #[track_caller]
    fn query_text(
        &self,
        query: &str,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<Self::Record>> {
        self.query_text_with(query, &[], limit, offset)
    }

    /// [`query_text`](Self::query_text) within `filters`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a filter that cannot apply
    /// ([`Filter::validate_for`](crate::Filter::validate_for)).
    #[track_caller]
    fn query_text_with(
        &self,
        query: &str,
        filters: &[Filter],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<Self::Record>>;

    /// Deletes the records matching `filters` (all of the scope's records without filters)
    /// in one statement. Returns how many were deleted.
    #[track_caller]
    fn delete(&self, filters: &[Filter]) -> Result<u64>;

    /// Deletes every record of the scope. MemGPT dropped the whole shared table here; this
    /// library never touches other tenants' rows. Returns how many were deleted.
    #[track_caller]
    fn delete_table(&self) -> Result<u64> {
        self.delete(&[])
    }

    /// Deletes one batch of the records `rule` selects ([`crate::retention`]): at most
    /// `batch` rows, the oldest first, in one write transaction of its own (inside a unit
    /// of work: a savepoint of it). Returns the rows deleted; fewer than `batch` means the
    /// rule found no more (or another caller deleted some of the same rows meanwhile).
    /// Calling it until then prunes; stopping in between leaves what was deleted deleted,
    /// and the next call goes on.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a batch of 0 or above
    /// [`MAX_PRUNE_BATCH`](crate::retention::MAX_PRUNE_BATCH), or a data source on recall
    /// memory.
    #[track_caller]
    fn prune_batch(&self, rule: &Retention, batch: usize) -> Result<u64>;

    /// Deletes every record `rule` selects, in batches of at most `batch` rows, each its
    /// own transaction ([`prune_batch`](Self::prune_batch)); returns what it removed.
    ///
    /// # Errors
    /// As [`prune_batch`](Self::prune_batch); batches done before an error stay deleted.
    #[track_caller]
    fn prune(&self, rule: &Retention, batch: usize) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        loop {
            let deleted = self.prune_batch(rule, batch)?;
            if deleted > 0 {
                pruned.deleted += deleted;
                pruned.batches += 1;
            }
            if deleted < batch as u64 {
                return Ok(pruned);
            }
        }
    }

    /// The distinct data sources of the scope's records, sorted.
    #[track_caller]
    fn list_data_sources(&self) -> Result<Vec<String>>;

    /// Every record matching `filters` in ascending `(created_at, id)` order, fetched in
    /// pages of `page_size` by keyset pagination (no OFFSET scans). The order is stable
    /// while records are inserted.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `page_size` is 0.
    fn get_all_paginated(&self, filters: &[Filter], page_size: usize) -> Result<Paginated<'_, Self>>
    where
        Self: Sized,
    {
        if page_size == 0 {
            return Err(Error::invalid("page_size", "must be at least 1"));
        }
        crate::filter::validate_all(filters, self.table_type())?;
        Ok(Paginated {
            connector: self,
            filters: filters.to_vec(),
            after: None,
            page_size,
            done: false,
        })
    }
}

/// Iterator over the pages of [`StorageConnector::get_all_paginated`]. Each item is one
/// non-empty page; the iterator ends after the last page, or after the first error.
#[derive(Debug)]
pub struct Paginated<'c, C: StorageConnector> {
    connector: &'c C,
    filters: Vec<Filter>,
    after: Option<Keyset>,
    page_size: usize,
    done: bool,
}

impl<C: StorageConnector> Iterator for Paginated<'_, C> {
    type Item = Result<Vec<C::Record>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self
            .connector
            .get_page(&self.filters, self.after.as_ref(), self.page_size)
        {
            Ok(page) => {
                if page.len() < self.page_size {
                    self.done = true;
                }
                match page.last() {
                    Some(last) => {
                        self.after = Some(last.keyset());
                        Some(Ok(page))
                    }
                    None => None,
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
