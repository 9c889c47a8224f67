//! The storage connector trait: MemGPT's connector operations, scoped to one tenant.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use crate::cursor::{CursorPage, CursorRequest, OrderBy};
pub use crate::keyset::Keyset;
pub use paginated::Paginated;

mod paginated;

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::filter::Filter;
use crate::hybrid::HybridOptions;
use crate::record::Record;
use crate::retention::{Pruned, Retention};
use crate::scope::Scope;
use crate::table::TableType;

/// The operations of a MemGPT storage connector, bound to one [`TableType`] and one
/// [`Scope`].
///
/// Every backend implements it through [`Connector`](crate::Connector), checked by the
/// conformance suite against the same exact expectations. Each operation is confined to the
/// connector's scope: records of other tenants are invisible, and an insert of a record
/// owned by another tenant is [`Error::InvalidInput`].
///
/// The stable order of a table is ascending `(created_at, id)`.
///
/// The examples of its methods start (in hidden lines) as this one does, on a new SQLite
/// store: `recall` an agent's recall memory and `say` a maker of its user messages; or
/// `archival` its archival memory and `passage(text, x, y)` a maker of its passages.
/// ```
/// use memgpt_core::{uuid::Uuid, Message, Role, Scope, StorageConnector, TableType};
/// use memgpt_sqlite::{SqliteConfig, SqliteStore};
/// # let dir = tempfile::tempdir().map_err(memgpt_core::Error::database)?;
/// let store = SqliteStore::open(SqliteConfig::new(dir.path().join("memory.db")))?;
/// let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
/// let recall = store.connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))?;
/// let say = |text: &str| Message::builder(user, agent, Role::User).text(text).build();
/// recall.insert(&say("hello")?)?;
/// assert_eq!(recall.size(&[])?, 1);
/// # Ok::<(), memgpt_core::Error>(())
/// ```
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
    /// ```
    /// # use memgpt_core::{Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// for text in ["one", "two", "three"] {
    ///     recall.insert(&say(text)?)?;
    /// }
    /// let first = recall.get_page(&[], None, 2)?;
    /// let after = first.last().map(memgpt_core::Record::keyset);
    /// assert_eq!((first.len(), recall.get_page(&[], after.as_ref(), 2)?.len()), (2, 1));
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    #[track_caller]
    fn get_page(
        &self,
        filters: &[Filter],
        after: Option<&Keyset>,
        limit: usize,
    ) -> Result<Vec<Self::Record>>;

    /// MemGPT's `get_all_cursor`: a page of records relative to a cursor record, with its
    /// last id for the next call.
    /// ```
    /// # use memgpt_core::{CursorRequest, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// recall.insert_many([say("one")?, say("two")?, say("three")?], false)?;
    /// let page = recall.get_all_cursor(&CursorRequest::new().limit(2))?;
    /// let rest = CursorRequest::new().after(page.last_id);
    /// assert_eq!((page.records.len(), recall.get_all_cursor(&rest)?.records.len()), (2, 1));
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] when `after` or `before` names no record in the scope.
    #[track_caller]
    fn get_all_cursor(&self, request: &CursorRequest) -> Result<CursorPage<Self::Record>>;

    /// The `limit` most recent records matching `filters` (all of them without a limit),
    /// newest first.
    /// ```
    /// # use memgpt_core::{Column, Filter, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let asked = say("hello")?;
    /// let answer = say("hi")?.to_builder().role(Role::Assistant).build()?;
    /// recall.insert_many([asked.clone(), answer], false)?;
    /// assert_eq!(recall.get_all(&[Filter::eq(Column::Role, Role::User)], Some(10))?, vec![asked]);
    /// assert_eq!(recall.get_all(&[], None)?.len(), 2);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    #[track_caller]
    fn get_all(&self, filters: &[Filter], limit: Option<usize>) -> Result<Vec<Self::Record>>;

    /// The record with this id, if it exists in the scope.
    /// ```
    /// # use memgpt_core::{uuid::Uuid, Record, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let said = say("hello")?;
    /// recall.insert(&said)?;
    /// assert_eq!(recall.get(said.id())?, Some(said));
    /// assert_eq!(recall.get(Uuid::new_v4())?, None);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    #[track_caller]
    fn get(&self, id: Uuid) -> Result<Option<Self::Record>>;

    /// The number of records matching `filters`.
    /// ```
    /// # use memgpt_core::{Column, Filter, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// recall.insert_many([say("one")?, say("two")?], false)?;
    /// assert_eq!(recall.size(&[])?, 2);
    /// assert_eq!(recall.size(&[Filter::eq(Column::Role, Role::Assistant)])?, 0);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    #[track_caller]
    fn size(&self, filters: &[Filter]) -> Result<u64>;

    /// Inserts one record, replacing a record of the same id (MemGPT's `insert`, which
    /// upserts).
    /// ```
    /// # use memgpt_core::{Record, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let said = say("hello")?;
    /// recall.insert(&said)?;
    /// recall.insert(&said.to_builder().text("hello again").build()?)?;
    /// assert_eq!(recall.get(said.id())?.as_ref().and_then(Record::text), Some("hello again"));
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    #[track_caller]
    fn insert(&self, record: &Self::Record) -> Result<()>;

    /// Inserts many records in one transaction: all or nothing. With `exists_ok`, a record
    /// whose id exists already replaces it (and of one id given twice, the last wins);
    /// without, an existing id is [`Error::AlreadyExists`] and an id given twice is
    /// [`Error::DuplicateId`]. Records may come from an iterator of any length: backends
    /// write in chunks and do not hold the whole input. Returns the number of records
    /// written. All or nothing also when the iterator panics: nothing of the call is kept.
    /// ```
    /// # use memgpt_core::{Error, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let said = (0..1_200).map(|i| say(&format!("message {i}")));
    /// assert_eq!(recall.insert_many(said.collect::<Result<Vec<_>, Error>>()?, false)?, 1_200);
    /// let again = recall.get_all(&[], Some(1))?;
    /// assert!(matches!(recall.insert_many(again, false), Err(Error::AlreadyExists { .. })));
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// The iterator is `Send`. It may read the store (through another connection: a
    /// second pooled connection on PostgreSQL, a reader of the WAL on SQLite), but it
    /// cannot reach a unit of work, whose connectors are not `Send`: a call of a unit of
    /// work holds its connection from start to end. To copy within a unit of work, read a
    /// page, write it, and read the next (the example of `SqliteStore::transaction`). A
    /// non-`Send` iterator of your own (over an `Rc`, a `RefCell` borrow, a lock guard):
    /// collect the records into a `Vec` first.
    #[track_caller]
    fn insert_many<I>(&self, records: I, exists_ok: bool) -> Result<u64>
    where
        I: IntoIterator<Item = Self::Record>,
        I::IntoIter: Send;

    /// Replaces the stored record of the same id.
    /// ```
    /// # use memgpt_core::{Error, Record, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let said = say("hello")?;
    /// recall.insert(&said)?;
    /// recall.update(&said.to_builder().text("edited").build()?)?;
    /// assert_eq!(recall.get(said.id())?.as_ref().and_then(Record::text), Some("edited"));
    /// assert!(matches!(recall.update(&say("never stored")?), Err(Error::NotFound { .. })));
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotFound`] when no record of that id exists in the scope.
    #[track_caller]
    fn update(&self, record: &Self::Record) -> Result<()>;

    /// The `top_k` records nearest to `embedding` by L2 distance, nearest first (ties by
    /// id). Records without an embedding are not returned. Components missing from the
    /// shorter of two vectors count as zero, as MemGPT's zero padding makes them.
    /// ```
    /// # use memgpt_core::StorageConnector;
    /// # let (_dir, archival, passage) = memgpt_testing::docs::archival()?;
    /// let (near, far) = (passage("near", 1.0, 0.0)?, passage("far", 0.0, 9.0)?);
    /// archival.insert_many([near.clone(), far], false)?;
    /// assert_eq!(archival.query(&[0.9, 0.1], 1, &[])?, vec![near]);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
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
    /// ```
    /// # use memgpt_core::StorageConnector;
    /// # let (_dir, archival, passage) = memgpt_testing::docs::archival()?;
    /// let (cats, dogs) = (passage("cats purr", 1.0, 0.0)?, passage("dogs bark", 0.0, 1.0)?);
    /// archival.insert_many([cats.clone(), dogs.clone()], false)?;
    /// assert_eq!(archival.hybrid("cats", &[0.0, 1.0], 2, &[])?, vec![cats, dogs]);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
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
    /// ```
    /// # use memgpt_core::{hybrid::HybridOptions, StorageConnector};
    /// # let (_dir, archival, passage) = memgpt_testing::docs::archival()?;
    /// let (cats, dogs) = (passage("cats purr", 1.0, 0.0)?, passage("dogs bark", 0.0, 1.0)?);
    /// archival.insert_many([cats.clone(), dogs.clone()], false)?;
    /// let vector_only = HybridOptions::new().weights(0.0, 1.0);
    /// let found = archival.hybrid_with("cats", &[0.0, 1.0], 2, &[], &vector_only)?;
    /// assert_eq!(found, vec![dogs, cats]);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
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
    /// ```
    /// # use memgpt_core::{chrono::{Duration, Utc}, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let said = say("hello")?;
    /// recall.insert(&said)?;
    /// let (now, hour) = (Utc::now(), Duration::hours(1));
    /// assert_eq!(recall.query_date(now - hour, now + hour, None, 0)?, vec![said]);
    /// assert_eq!(recall.query_date(now - hour * 2, now - hour, None, 0)?, vec![]);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
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
    /// ```
    /// # use memgpt_core::{Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let said = say("Où est la gare ?")?;
    /// recall.insert(&said)?;
    /// assert_eq!(recall.query_text("GARE ou", None, 0)?, vec![said]);
    /// assert_eq!(recall.query_text("gares", None, 0)?, vec![]);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
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
    /// ```
    /// # use memgpt_core::{Column, Filter, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// recall.insert(&say("the meeting is at noon")?)?;
    /// let assistant = [Filter::eq(Column::Role, Role::Assistant)];
    /// assert_eq!(recall.query_text_with("meeting", &assistant, None, 0)?, vec![]);
    /// assert_eq!(recall.query_text_with("meeting", &[], None, 0)?.len(), 1);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
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
    /// ```
    /// # use memgpt_core::{Column, Filter, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// let answer = say("hi")?.to_builder().role(Role::Assistant).build()?;
    /// recall.insert_many([say("hello")?, answer], false)?;
    /// assert_eq!(recall.delete(&[Filter::eq(Column::Role, Role::Assistant)])?, 1);
    /// assert_eq!(recall.size(&[])?, 1);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    #[track_caller]
    fn delete(&self, filters: &[Filter]) -> Result<u64>;

    /// Deletes every record of the scope. MemGPT dropped the whole shared table here; this
    /// library never touches other tenants' rows. Returns how many were deleted.
    /// ```
    /// # use memgpt_core::{Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// recall.insert_many([say("one")?, say("two")?], false)?;
    /// assert_eq!(recall.delete_table()?, 2);
    /// assert_eq!(recall.size(&[])?, 0);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
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
    /// ```
    /// # use memgpt_core::{retention::Retention, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// recall.insert_many([say("one")?, say("two")?, say("three")?], false)?;
    /// assert_eq!(recall.prune_batch(&Retention::KeepNewest(1), 1)?, 1);
    /// assert_eq!(recall.size(&[])?, 2);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a batch of 0 or above
    /// [`MAX_PRUNE_BATCH`](crate::retention::MAX_PRUNE_BATCH), or a data source on recall
    /// memory.
    #[track_caller]
    fn prune_batch(&self, rule: &Retention, batch: usize) -> Result<u64>;

    /// Deletes every record `rule` selects, in batches of at most `batch` rows, each its
    /// own transaction ([`prune_batch`](Self::prune_batch)); returns what it removed.
    /// ```
    /// # use memgpt_core::{retention::Retention, Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// recall.insert_many([say("one")?, say("two")?, say("three")?], false)?;
    /// let pruned = recall.prune(&Retention::KeepNewest(1), 1)?;
    /// assert_eq!((pruned.deleted, pruned.batches, recall.size(&[])?), (2, 2, 1));
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`prune_batch`](Self::prune_batch); batches done before an error stay deleted.
    #[track_caller]
    fn prune(&self, rule: &Retention, batch: usize) -> Result<Pruned> {
        Pruned::until_done(batch, || self.prune_batch(rule, batch))
    }

    /// The distinct data sources of the scope's records, sorted.
    /// ```
    /// # use memgpt_core::StorageConnector;
    /// # let (_dir, archival, passage) = memgpt_testing::docs::archival()?;
    /// let notes = passage("a note", 1.0, 0.0)?.to_builder().data_source("notes").build()?;
    /// let web = passage("a page", 0.0, 1.0)?.to_builder().data_source("web").build()?;
    /// archival.insert_many([web, notes], false)?;
    /// assert_eq!(archival.list_data_sources()?, vec!["notes", "web"]);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    #[track_caller]
    fn list_data_sources(&self) -> Result<Vec<String>>;

    /// Every record matching `filters` in ascending `(created_at, id)` order, fetched in
    /// pages of `page_size` by keyset pagination (no OFFSET scans). The order is stable
    /// while records are inserted.
    /// ```
    /// # use memgpt_core::{Role, StorageConnector};
    /// # let (_dir, recall, say) = memgpt_testing::docs::recall()?;
    /// recall.insert_many([say("one")?, say("two")?, say("three")?], false)?;
    /// let pages = recall.get_all_paginated(&[], 2)?.collect::<memgpt_core::Result<Vec<_>>>()?;
    /// assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
    /// # Ok::<(), memgpt_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `page_size` is 0.
    fn get_all_paginated(&self, filters: &[Filter], page_size: usize) -> Result<Paginated<'_, Self>>
    where
        Self: Sized,
    {
        Paginated::new(self, filters, page_size)
    }
}
