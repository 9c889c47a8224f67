//! The arguments and result of
//! [`StorageConnector::get_all_cursor`](crate::StorageConnector::get_all_cursor): MemGPT's
//! cursor pagination.

use uuid::Uuid;

use crate::filter::Filter;

/// The order of [`StorageConnector::get_all_cursor`](crate::StorageConnector::get_all_cursor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OrderBy {
    /// By creation time, ties broken by id.
    #[default]
    CreatedAt,
}

/// The arguments of
/// [`StorageConnector::get_all_cursor`](crate::StorageConnector::get_all_cursor), as
/// MemGPT's `get_all_cursor` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

impl CursorRequest {
    /// MemGPT's defaults: no filters, no bounds, 1,000 records, oldest first.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only records matching `filters` (ANDed, inside the scope).
    pub fn filters(mut self, filters: Vec<Filter>) -> Self {
        self.filters = filters;
        self
    }

    /// Only records after the record `id` (none: no lower bound).
    pub fn after(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.after = id.into();
        self
    }

    /// Only records before the record `id` (none: no upper bound).
    pub fn before(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.before = id.into();
        self
    }

    /// At most `limit` records.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The order.
    pub fn order_by(mut self, order_by: OrderBy) -> Self {
        self.order_by = order_by;
        self
    }

    /// Newest first: the `limit` latest records of the range, latest first.
    pub fn reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }
}

/// One page of [`StorageConnector::get_all_cursor`](crate::StorageConnector::get_all_cursor).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CursorPage<R> {
    /// Id of the page's last record: pass it as `after` (or `before` when reversed) to get
    /// the next page. `None` when the page is empty.
    pub last_id: Option<Uuid>,
    /// The records, in the requested order.
    pub records: Vec<R>,
}
