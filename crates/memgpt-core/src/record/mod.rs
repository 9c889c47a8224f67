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
    // One vectorised scan (every text of every row read passes here).
    match value.and_then(|v| memchr::memchr(0, v.as_bytes())) {
        Some(at) => Err(Error::invalid(
            field,
            format!("contains a NUL byte at offset {at}"),
        )),
        None => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::check_text;
    use crate::error::Error;

    #[test]
    fn a_nul_byte_is_named_by_its_byte_offset_anywhere_in_the_text() {
        assert!(check_text("text", None).is_ok());
        assert!(check_text("text", Some("")).is_ok());
        assert!(check_text("text", Some(&"é word ".repeat(100))).is_ok());
        // Before, inside and after the vectorised scan's 16- and 32-byte blocks.
        for at in [0usize, 1, 15, 16, 31, 32, 33, 299] {
            let mut text = "x".repeat(300);
            text.replace_range(at..=at, "\0");
            let e = check_text("name", Some(&text)).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput { field, reason }
                    if field == "name" && reason == &format!("contains a NUL byte at offset {at}")),
                "{e:?}"
            );
        }
        let e = check_text("text", Some("é\0")).unwrap_err();
        assert!(e.to_string().contains("offset 2"), "{e}");
    }
}
