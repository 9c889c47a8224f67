//! Typed filters: equality on fixed columns, tests of a record's `metadata_` keys and of
//! `created_at`, combined with and / or / not.
//!
//! A filter names a column through the [`Column`] enum, a metadata key as data (a path of
//! keys), and carries its values as [`FilterValue`]s and [`Scalar`]s, which backends always
//! send as bound parameters. No caller-supplied string ever becomes SQL text. A filter the
//! backends cannot apply exactly the same way is refused ([`Filter::validate_for`]), never
//! dropped.

mod metadata;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use metadata::check_metadata;
pub use metadata::{MetadataKey, MetadataTest, Scalar};

use crate::error::{Error, Result};
use crate::table::TableType;

/// A column a filter may test. The tenant columns (`user_id`, and `agent_id` where the table
/// is agent-scoped) are set by the connector's [`Scope`](crate::Scope), never by a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Column {
    /// The record id.
    Id,
    /// The agent (passages only: archival and recall memory are agent-scoped already).
    AgentId,
    /// The message role (recall memory).
    Role,
    /// The model that wrote a message (recall memory).
    Model,
    /// The name of a message's author (recall memory).
    Name,
    /// The tool call a tool message answers (recall memory).
    ToolCallId,
    /// The document a passage came from (archival memory, passages).
    DocId,
    /// The data source of a passage or document.
    DataSource,
    /// The model that produced the embedding (messages and passages).
    EmbeddingModel,
}

impl Column {
    /// The SQL column name.
    pub fn name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::AgentId => "agent_id",
            Column::Role => "role",
            Column::Model => "model",
            Column::Name => "name",
            Column::ToolCallId => "tool_call_id",
            Column::DocId => "doc_id",
            Column::DataSource => "data_source",
            Column::EmbeddingModel => "embedding_model",
        }
    }

    /// Whether `table` has this column.
    pub fn exists_in(self, table: TableType) -> bool {
        use Column::*;
        match table {
            TableType::RecallMemory => matches!(
                self,
                Id | AgentId | Role | Model | Name | ToolCallId | EmbeddingModel
            ),
            TableType::ArchivalMemory | TableType::Passages => {
                matches!(self, Id | AgentId | DocId | DataSource | EmbeddingModel)
            }
            TableType::Documents => matches!(self, Id | DataSource),
        }
    }

    /// Whether the column holds a UUID (and so takes [`FilterValue::Uuid`]).
    pub fn is_uuid(self) -> bool {
        matches!(self, Column::Id | Column::AgentId | Column::DocId)
    }
}

/// The value a column filter compares with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterValue {
    /// A UUID, for id columns.
    Uuid(Uuid),
    /// A text value.
    Text(String),
    /// SQL NULL: the filter matches rows where the column is null (`IS NULL`).
    Null,
}

impl From<Uuid> for FilterValue {
    fn from(v: Uuid) -> Self {
        FilterValue::Uuid(v)
    }
}

impl From<&str> for FilterValue {
    fn from(v: &str) -> Self {
        FilterValue::Text(v.to_owned())
    }
}

impl From<String> for FilterValue {
    fn from(v: String) -> Self {
        FilterValue::Text(v)
    }
}

/// An order comparison of `created_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// Before the instant.
    Lt,
    /// At or before.
    Le,
    /// After.
    Gt,
    /// At or after.
    Ge,
}

impl Cmp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// What a filter tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Column {
        column: Column,
        value: FilterValue,
    },
    Metadata {
        path: Vec<String>,
        test: MetadataTest,
    },
    CreatedAt {
        cmp: Cmp,
        at: DateTime<Utc>,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// A test of a record: `column = value` (or `column IS NULL`), a test of a `metadata_` key
/// ([`Filter::metadata`]), a comparison of `created_at` ([`Filter::created_at`]), or filters
/// combined ([`Filter::and`], [`Filter::or`], [`Filter::not`]). Filters given together are
/// combined with AND, inside the connector's scope, and applied by the database before any
/// limit.
///
/// ```
/// use memgpt_core::{Filter, Column};
/// use memgpt_core::filter::Cmp;
/// use memgpt_core::chrono::{TimeZone, Utc};
/// let since = Utc.timestamp_opt(1_704_067_200, 0).single().unwrap_or_default(); // 2024-01-01
/// let filters = [
///     Filter::eq(Column::DataSource, "notes"),
///     Filter::created_at(Cmp::Ge, since),
///     Filter::or([
///         Filter::metadata("topic").eq("rust"),
///         Filter::metadata_path(["scores", "relevance"]).gt(0.8),
///         Filter::not(Filter::metadata("tags").contains("draft")),
///     ]),
/// ];
/// # let _ = filters;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub(crate) kind: Kind,
}

/// The deepest nesting of [`Filter::and`] / [`Filter::or`] / [`Filter::not`], and the
/// longest metadata key path, that a filter may have.
pub const MAX_FILTER_DEPTH: usize = 16;
/// The most tests the filters of one call may hold together (each value of an `is_in`
/// counts as one): within every backend's bound-parameter and expression-depth limits.
pub const MAX_FILTER_TESTS: usize = 256;

impl Filter {
    /// `column = value`.
    pub fn eq(column: Column, value: impl Into<FilterValue>) -> Self {
        Filter {
            kind: Kind::Column {
                column,
                value: value.into(),
            },
        }
    }

    /// `column IS NULL`.
    pub fn is_null(column: Column) -> Self {
        Filter {
            kind: Kind::Column {
                column,
                value: FilterValue::Null,
            },
        }
    }

    /// A top-level key of `metadata_` (archival memory, passages, documents), to test:
    /// `Filter::metadata("topic").eq("rust")`. The key is data, never SQL.
    pub fn metadata(key: impl Into<String>) -> MetadataKey {
        MetadataKey {
            path: vec![key.into()],
        }
    }

    /// A nested key of `metadata_`, by the keys that lead to it:
    /// `Filter::metadata_path(["scores", "relevance"])`.
    pub fn metadata_path<S: Into<String>>(path: impl IntoIterator<Item = S>) -> MetadataKey {
        MetadataKey {
            path: path.into_iter().map(Into::into).collect(),
        }
    }

    /// `created_at <cmp> at`.
    pub fn created_at(cmp: Cmp, at: DateTime<Utc>) -> Self {
        Filter {
            kind: Kind::CreatedAt { cmp, at },
        }
    }

    /// Every one of `filters` (none: every record).
    pub fn and(filters: impl IntoIterator<Item = Filter>) -> Self {
        Filter {
            kind: Kind::And(filters.into_iter().collect()),
        }
    }

    /// At least one of `filters` (none: no record).
    pub fn or(filters: impl IntoIterator<Item = Filter>) -> Self {
        Filter {
            kind: Kind::Or(filters.into_iter().collect()),
        }
    }

    /// Not `filter`: every record it does not match (a record without a metadata key
    /// included).
    #[allow(clippy::should_implement_trait)]
    pub fn not(filter: Filter) -> Self {
        Filter {
            kind: Kind::Not(Box::new(filter)),
        }
    }

    /// The column an equality filter tests; `None` for the other filters.
    pub fn column(&self) -> Option<Column> {
        match &self.kind {
            Kind::Column { column, .. } => Some(*column),
            _ => None,
        }
    }

    /// The value an equality filter compares with; `None` for the other filters.
    pub fn value(&self) -> Option<&FilterValue> {
        match &self.kind {
            Kind::Column { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Checks the filter against `table`: columns and metadata the table has, values of
    /// the column's type, no NUL byte, numbers below 2^53 in magnitude, metadata keys every
    /// backend can address (not empty, no `"` or `\`), order tests on numbers or strings
    /// only, within [`MAX_FILTER_DEPTH`] and [`MAX_FILTER_TESTS`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the filter (`filter.<column>`,
    /// `filter.metadata_.<key>…`, `filter`).
    pub fn validate_for(&self, table: TableType) -> Result<()> {
        let mut tests = 0usize;
        self.check(table, 0, &mut tests)
    }

    fn check(&self, table: TableType, depth: usize, tests: &mut usize) -> Result<()> {
        *tests += match &self.kind {
            Kind::Metadata {
                test: MetadataTest::In(vs),
                ..
            } => vs.len().max(1),
            _ => 1,
        };
        if depth > MAX_FILTER_DEPTH || *tests > MAX_FILTER_TESTS {
            return Err(Error::invalid(
                "filter",
                format!(
                    "nested deeper than {MAX_FILTER_DEPTH} or more than {MAX_FILTER_TESTS} tests"
                ),
            ));
        }
        match &self.kind {
            Kind::Column { column, value } => check_column(*column, value, table),
            Kind::Metadata { path, test } => check_metadata(path, test, table),
            Kind::CreatedAt { .. } => Ok(()),
            Kind::And(fs) | Kind::Or(fs) => {
                fs.iter().try_for_each(|f| f.check(table, depth + 1, tests))
            }
            Kind::Not(f) => f.check(table, depth + 1, tests),
        }
    }

    /// Whether this is a plain column test (the filters whose statement text is one of a
    /// fixed set).
    pub(crate) fn is_column(&self) -> bool {
        matches!(self.kind, Kind::Column { .. })
    }
}

fn check_column(column: Column, value: &FilterValue, table: TableType) -> Result<()> {
    let field = format!("filter.{}", column.name());
    if !column.exists_in(table) {
        return Err(Error::invalid(field, format!("{table} has no such column")));
    }
    match (value, column.is_uuid()) {
        (FilterValue::Uuid(_), false) => {
            Err(Error::invalid(field, "a text column compared with a UUID"))
        }
        (FilterValue::Text(_), true) => {
            Err(Error::invalid(field, "a UUID column compared with text"))
        }
        (FilterValue::Text(t), false) if t.contains('\0') => {
            Err(Error::invalid(field, "text contains a NUL byte"))
        }
        _ => Ok(()),
    }
}

/// Validates every filter of a list for `table` ([`Filter::validate_for`]); the list
/// together holds at most [`MAX_FILTER_TESTS`] tests (each value of an `is_in` one).
///
/// # Errors
/// As [`Filter::validate_for`].
pub fn validate_all(filters: &[Filter], table: TableType) -> Result<()> {
    let mut tests = 0usize;
    filters
        .iter()
        .try_for_each(|f| f.check(table, 0, &mut tests))
}
