//! The records agents keep: messages, passages and documents.
//!
//! Every record is built through a builder whose `build()` validates the input, so a value
//! of these types is always storable: ids are set, text holds no NUL byte, an embedding has
//! 1 to [`MAX_EMBEDDING_DIM`] finite components, a tool message names its tool call.

mod document;
mod message;
mod passage;
mod stored;

use chrono::{DateTime, Datelike, Utc};
use uuid::Uuid;

pub use crate::embedding::{Embedding, MAX_EMBEDDING_DIM};
pub use document::{Document, DocumentBuilder};
pub use message::{FunctionCall, Message, MessageBuilder, Role, ToolCall};
pub use passage::{Passage, PassageBuilder};
#[doc(hidden)]
pub use stored::{columns, select_list};

use crate::error::{Error, Result};
use crate::keyset::Keyset;
use crate::row::Decode;
use crate::statement::Dialect;
use crate::table::TableType;

/// What every stored record has. Implemented by [`Message`], [`Passage`] and [`Document`]
/// only (its hidden items say how each is stored, [`crate::row`]);
/// backends are generic over it.
pub trait Record: Decode + Clone + std::fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The stored columns, in the order of [`values`](Self::values).
    #[doc(hidden)]
    const COLUMNS: &'static [&'static str];

    /// The values of [`COLUMNS`](Self::COLUMNS), bound in dialect `D`, the embedding in
    /// `table`'s encoding.
    #[doc(hidden)]
    fn values<D: Dialect>(&self, table: TableType) -> Vec<D::Bind>;

    /// The record's id (the primary key).
    fn id(&self) -> Uuid;
    /// The owning user.
    fn user_id(&self) -> Uuid;
    /// The owning agent, where the record has one.
    fn agent_id(&self) -> Option<Uuid>;
    /// When the record was created (microsecond precision, UTC).
    fn created_at(&self) -> DateTime<Utc>;
    /// The record's text.
    fn text(&self) -> Option<&str>;
    /// The record's embedding, where it has one.
    fn embedding(&self) -> Option<&Embedding>;
    /// Whether records of this type are stored in `table`.
    fn stored_in(table: TableType) -> bool;

    /// The record's position in the stable order `(created_at, id)` used by pagination.
    fn keyset(&self) -> Keyset {
        Keyset {
            created_at: self.created_at(),
            id: self.id(),
        }
    }
}

/// Checks that an optional piece of text holds no NUL byte (PostgreSQL's `text` cannot).
pub(crate) fn check_text(field: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if v.contains('\0') => Err(Error::invalid(
            field,
            format!(
                "contains a NUL byte at offset {}",
                v.find('\0').unwrap_or_default()
            ),
        )),
        _ => Ok(()),
    }
}

/// Truncates a timestamp to microseconds (what both databases store) and checks its year
/// lies in 1..=9999, so that it round-trips exactly through either backend.
pub fn normalize_timestamp(t: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if !(1..=9999).contains(&t.year()) {
        return Err(Error::invalid(
            "created_at",
            format!("year {} is outside 1..=9999", t.year()),
        ));
    }
    DateTime::<Utc>::from_timestamp_micros(t.timestamp_micros())
        .ok_or_else(|| Error::invalid("created_at", "timestamp out of range"))
}

/// The current time, truncated to microseconds.
pub(crate) fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::<Utc>::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}
