//! Documents of a data source.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::passage::check_json_text;
use super::{check_text, normalize_timestamp, now, Embedding, Record};
use crate::error::Result;
use crate::table::TableType;

/// A document loaded from a data source (MemGPT's `Document`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Document {
    id: Uuid,
    user_id: Uuid,
    text: String,
    data_source: Option<String>,
    metadata: Map<String, Value>,
    created_at: DateTime<Utc>,
}

impl Document {
    /// Starts a document of `text` owned by `user_id`. The id defaults to a random UUID and
    /// `created_at` to now.
    pub fn builder(user_id: Uuid, text: impl Into<String>) -> DocumentBuilder {
        DocumentBuilder {
            id: None,
            user_id,
            text: text.into(),
            data_source: None,
            metadata: Map::new(),
            created_at: None,
        }
    }

    /// A builder holding this document's values, to change some and build again.
    pub fn to_builder(&self) -> DocumentBuilder {
        DocumentBuilder {
            id: Some(self.id),
            user_id: self.user_id,
            text: self.text.clone(),
            data_source: self.data_source.clone(),
            metadata: self.metadata.clone(),
            created_at: Some(self.created_at),
        }
    }

    /// Its data source.
    pub fn data_source(&self) -> Option<&str> {
        self.data_source.as_deref()
    }
    /// Free-form metadata.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }
}

impl Record for Document {
    const COLUMNS: &'static [&'static str] = super::stored::DOCUMENT_COLUMNS;

    fn values<D: crate::statement::Dialect>(&self, table: TableType) -> Vec<D::Bind> {
        self.stored_values::<D>(table)
    }

    fn id(&self) -> Uuid {
        self.id
    }
    fn user_id(&self) -> Uuid {
        self.user_id
    }
    fn agent_id(&self) -> Option<Uuid> {
        None
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn text(&self) -> Option<&str> {
        Some(&self.text)
    }
    fn embedding(&self) -> Option<&Embedding> {
        None
    }
    fn stored_in(table: TableType) -> bool {
        table == TableType::Documents
    }
}

/// Builds a validated [`Document`]; see [`Document::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DocumentBuilder {
    id: Option<Uuid>,
    user_id: Uuid,
    text: String,
    data_source: Option<String>,
    metadata: Map<String, Value>,
    created_at: Option<DateTime<Utc>>,
}

impl DocumentBuilder {
    /// Sets the id (default: a random UUID).
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }
    /// Sets the text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }
    /// Sets the data source.
    pub fn data_source(mut self, source: impl Into<String>) -> Self {
        self.data_source = Some(source.into());
        self
    }
    /// Sets the metadata object.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }
    /// Sets the creation time (default: now). Stored with microsecond precision.
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Validates and builds the document.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for a NUL byte in text, data
    /// source or metadata, or a `created_at` outside years 1..=9999.
    pub fn build(self) -> Result<Document> {
        check_text("text", Some(&self.text))?;
        check_text("data_source", self.data_source.as_deref())?;
        check_json_text("metadata", &Value::Object(self.metadata.clone()))?;
        let created_at = match self.created_at {
            Some(t) => normalize_timestamp(t)?,
            None => now(),
        };
        Ok(Document {
            id: self.id.unwrap_or_else(Uuid::new_v4),
            user_id: self.user_id,
            text: self.text,
            data_source: self.data_source,
            metadata: self.metadata,
            created_at,
        })
    }
}
