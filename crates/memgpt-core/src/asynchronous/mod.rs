//! The async facade (feature `tokio`): every call of the synchronous API, made on a
//! thread of its own while the task waits, as deadpool-diesel's `interact` does. The
//! synchronous API stays the core; this adds no behaviour of its own but how a call waits.
//!
//! A call first waits for a place among the store's connections
//! ([`Backend::capacity`]) *asynchronously*, as
//! deadpool's pools wait: a burst of tasks past the pool's size holds no thread while it
//! waits, and a task that finds no place within the pool timeout ends in
//! [`Error::PoolTimeout`](crate::Error::PoolTimeout). With a place, the call runs on one of
//! the store's worker threads (named `memgpt-async`: at most one per place, started on
//! demand, ended after 10 s idle; never tokio's blocking pool, whose threads a burst could
//! exhaust), where it checks a connection out — at once, unless synchronous callers of the
//! same store hold them, when it waits for the pool timeout once more — and makes its round
//! trips. A wait needs the runtime's timer (`enable_time`, which `#[tokio::main]` turns on).
//!
//! [`AsyncStore`] wraps a store; its [`AsyncConnector`]s take owned arguments. The
//! backend crates re-export both under their own `tokio` feature; `memgpt-sqlite`'s docs
//! show them at work, and `examples/axum_memory.rs` in an axum service.
//!
//! A future that is dropped does not cancel its call: a blocking call cannot be stopped
//! half-way, so it runs to its end (a write commits or rolls back as a whole) and its
//! result is discarded — unless the process ends first: the worker threads are not the
//! runtime's, and dropping the runtime does not wait for them (await the calls whose writes
//! must land before the process exits). A call runs inside the runtime's context
//! (`Handle::current()` works in `interact`). Under tokio's paused test clock
//! (`start_paused`) the wait for a place is measured on that clock, which advances while
//! the workers run: tests that overload a store need a real clock.

use crate::hybrid::HybridOptions;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(crate) use crate::backend::workers::Gate;
use crate::backend::Backend;
use crate::{
    Connector, CursorPage, CursorRequest, Filter, Keyset, Record, Result, Scope, StorageConnector,
    TableType,
};

/// An async handle on a store (`SqliteStore`, `PgStore`): cheap to clone, `Send + Sync`.
///
/// Every `AsyncStore` of one store — of its clones and sessions too — shares one admission
/// of calls ([`Backend::capacity`]) and one set of worker threads, kept in the store
/// ([`Backend::async_slot`]): wrapping a store per request costs no thread.
#[derive(Debug, Clone)]
pub struct AsyncStore<S> {
    store: S,
    gate: Arc<Gate>,
}

impl<S: Backend> AsyncStore<S> {
    /// Wraps a store.
    pub fn new(store: S) -> Self {
        let gate = store
            .async_slot()
            .gate
            .get_or_init(|| Arc::new(Gate::new(store.capacity())))
            .clone();
        AsyncStore { store, gate }
    }

    /// The synchronous store inside.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Runs `f` with the store on a worker thread: any synchronous work, a unit of
    /// work (`store.transaction(…)`) included.
    ///
    /// # Errors
    /// The error `f` returns; [`Error::PoolTimeout`](crate::Error::PoolTimeout) when no
    /// place among the store's connections came free within the pool timeout (a call can
    /// wait that long for a place, then as long again for a connection that synchronous
    /// callers of the same store hold);
    /// [`Error::Database`](crate::Error::Database) when no worker thread could be started.
    /// A panic in `f` resumes on the caller's task.
    pub async fn interact<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&S) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        self.gate.run(move || f(&store)).await
    }

    /// An async connector of `table` bound to `scope`. Opens nothing.
    ///
    /// # Errors
    /// As the synchronous connector: [`Error::InvalidInput`](crate::Error::InvalidInput) when `R` is not the record
    /// type of `table`, or the scope does not fit it.
    pub fn connector<R: Record>(
        &self,
        table: TableType,
        scope: Scope,
    ) -> Result<AsyncConnector<S, R>> {
        // Checked now, as the synchronous connector checks them.
        Connector::<S, R>::new(self.store.clone(), table, scope)?;
        Ok(AsyncConnector {
            store: self.store.clone(),
            gate: self.gate.clone(),
            table,
            scope,
            record: PhantomData,
        })
    }
}

/// The async form of a connector: each method runs the [`StorageConnector`] call of the
/// same name on a worker thread. Arguments are owned, so the call can move to
/// another thread. [`StorageConnector::get_all_paginated`]'s iterator has its async form
/// in [`get_page`](Self::get_page): each page one call, the next after the last record's
/// [`keyset`](Record::keyset).
#[derive(Debug)]
pub struct AsyncConnector<S, R> {
    store: S,
    gate: Arc<Gate>,
    table: TableType,
    scope: Scope,
    record: PhantomData<fn() -> R>,
}

impl<S: Clone, R> Clone for AsyncConnector<S, R> {
    fn clone(&self) -> Self {
        AsyncConnector {
            store: self.store.clone(),
            gate: self.gate.clone(),
            table: self.table,
            scope: self.scope,
            record: PhantomData,
        }
    }
}

impl<S: Backend, R: Record> AsyncConnector<S, R> {
    /// The table.
    pub fn table_type(&self) -> TableType {
        self.table
    }

    /// The tenant.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Runs `f` with the synchronous connector on a worker thread.
    ///
    /// # Errors
    /// As [`AsyncStore::interact`].
    pub async fn interact<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connector<S, R>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (store, table, scope) = (self.store.clone(), self.table, self.scope);
        self.gate
            .run(move || f(&Connector::new(store, table, scope)?))
            .await
    }

    /// [`StorageConnector::get_all`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn get_all(&self, filters: Vec<Filter>, limit: Option<usize>) -> Result<Vec<R>> {
        self.interact(move |c| c.get_all(&filters, limit)).await
    }

    /// [`StorageConnector::get_page`]: one keyset page after `after` (`None`: the first),
    /// oldest first; the next page starts after the last record's
    /// [`keyset`](Record::keyset).
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn get_page(
        &self,
        filters: Vec<Filter>,
        after: Option<Keyset>,
        limit: usize,
    ) -> Result<Vec<R>> {
        self.interact(move |c| c.get_page(&filters, after.as_ref(), limit))
            .await
    }

    /// [`StorageConnector::get_all_cursor`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn get_all_cursor(&self, request: CursorRequest) -> Result<CursorPage<R>> {
        self.interact(move |c| c.get_all_cursor(&request)).await
    }

    /// [`StorageConnector::get`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn get(&self, id: Uuid) -> Result<Option<R>> {
        self.interact(move |c| c.get(id)).await
    }

    /// [`StorageConnector::size`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn size(&self, filters: Vec<Filter>) -> Result<u64> {
        self.interact(move |c| c.size(&filters)).await
    }

    /// [`StorageConnector::insert`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn insert(&self, record: R) -> Result<()> {
        self.interact(move |c| c.insert(&record)).await
    }

    /// [`StorageConnector::insert_many`]: the records, in one call (chunked, one
    /// transaction).
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn insert_many(&self, records: Vec<R>, exists_ok: bool) -> Result<u64> {
        self.interact(move |c| c.insert_many(records, exists_ok))
            .await
    }

    /// [`StorageConnector::update`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn update(&self, record: R) -> Result<()> {
        self.interact(move |c| c.update(&record)).await
    }

    /// [`StorageConnector::query`] (vector search).
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn query(
        &self,
        embedding: Vec<f32>,
        top_k: usize,
        filters: Vec<Filter>,
    ) -> Result<Vec<R>> {
        self.interact(move |c| c.query(&embedding, top_k, &filters))
            .await
    }

    /// [`StorageConnector::hybrid_with`] (hybrid search; [`HybridOptions::default`] for
    /// [`StorageConnector::hybrid`]).
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn hybrid(
        &self,
        text: String,
        embedding: Vec<f32>,
        top_k: usize,
        filters: Vec<Filter>,
        options: HybridOptions,
    ) -> Result<Vec<R>> {
        self.interact(move |c| c.hybrid_with(&text, &embedding, top_k, &filters, &options))
            .await
    }

    /// [`StorageConnector::prune_batch`] (retention): one batch, so that a caller can stop
    /// between batches.
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn prune_batch(
        &self,
        rule: crate::retention::Retention,
        batch: usize,
    ) -> Result<u64> {
        self.interact(move |c| c.prune_batch(&rule, batch)).await
    }

    /// [`StorageConnector::prune`] (retention), every batch on a worker thread in one
    /// call.
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn prune(
        &self,
        rule: crate::retention::Retention,
        batch: usize,
    ) -> Result<crate::retention::Pruned> {
        self.interact(move |c| c.prune(&rule, batch)).await
    }

    /// [`StorageConnector::query_date`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn query_date(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        self.interact(move |c| c.query_date(start, end, limit, offset))
            .await
    }

    /// [`StorageConnector::query_text`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn query_text(
        &self,
        query: String,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        self.interact(move |c| c.query_text(&query, limit, offset))
            .await
    }

    /// [`StorageConnector::query_text_with`]: [`query_text`](Self::query_text) within
    /// `filters`.
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn query_text_with(
        &self,
        query: String,
        filters: Vec<Filter>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        self.interact(move |c| c.query_text_with(&query, &filters, limit, offset))
            .await
    }

    /// [`StorageConnector::delete`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn delete(&self, filters: Vec<Filter>) -> Result<u64> {
        self.interact(move |c| c.delete(&filters)).await
    }

    /// [`StorageConnector::delete_table`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn delete_table(&self) -> Result<u64> {
        self.interact(|c| c.delete_table()).await
    }

    /// [`StorageConnector::list_data_sources`].
    ///
    /// # Errors
    /// As the synchronous call.
    pub async fn list_data_sources(&self) -> Result<Vec<String>> {
        self.interact(|c| c.list_data_sources()).await
    }
}
