//! Typed equality filters.
//!
//! A filter names a column through the [`Column`] enum and carries its value as a
//! [`FilterValue`], which backends always send as a bound parameter. No caller-supplied
//! string ever becomes SQL text.

use uuid::Uuid;

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

/// The value a filter compares with.
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

impl From<crate::record::Role> for FilterValue {
    fn from(v: crate::record::Role) -> Self {
        FilterValue::Text(v.as_str().to_owned())
    }
}

/// An equality test: `column = value` (or `column IS NULL`). Filters given together are
/// combined with AND, inside the connector's scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Filter {
    column: Column,
    value: FilterValue,
}

impl Filter {
    /// `column = value`.
    pub fn eq(column: Column, value: impl Into<FilterValue>) -> Self {
        Filter {
            column,
            value: value.into(),
        }
    }

    /// `column IS NULL`.
    pub fn is_null(column: Column) -> Self {
        Filter {
            column,
            value: FilterValue::Null,
        }
    }

    /// The column tested.
    pub fn column(&self) -> Column {
        self.column
    }

    /// The value compared with.
    pub fn value(&self) -> &FilterValue {
        &self.value
    }

    /// Checks that the column exists in `table`, that the value's type fits the column,
    /// and that text holds no NUL byte.
    pub fn validate_for(&self, table: TableType) -> Result<()> {
        let field = format!("filter.{}", self.column.name());
        if !self.column.exists_in(table) {
            return Err(Error::invalid(field, format!("{table} has no such column")));
        }
        match (&self.value, self.column.is_uuid()) {
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
}

/// Validates every filter of a list for `table`.
pub fn validate_all(filters: &[Filter], table: TableType) -> Result<()> {
    filters.iter().try_for_each(|f| f.validate_for(table))
}
