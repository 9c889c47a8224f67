//! The key of keyset pagination: a record's place in a table's stable order.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A position in the stable order `(created_at, id)` of a table: the key of keyset
/// pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Keyset {
    /// Creation time of the record at this position.
    pub created_at: DateTime<Utc>,
    /// Id of the record at this position (breaks ties of equal `created_at`).
    pub id: Uuid,
}
