//! Archival memory: text passages with embeddings.

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{check_text, normalize_timestamp, now, Embedding, Record};
use crate::error::{Error, Result};
use crate::table::TableType;

/// A passage of archival memory or of a loaded data source (MemGPT's `Passage`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    id: Uuid,
    user_id: Uuid,
    agent_id: Option<Uuid>,
    text: String,
    doc_id: Option<Uuid>,
    data_source: Option<String>,
    embedding: Option<Embedding>,
    embedding_model: Option<String>,
    metadata: Map<String, Value>,
    created_at: DateTime<Utc>,
}

/// MemGPT 0.3.x's default passage id: the UUID whose 16 bytes are the MD5 digest of
/// `text + str(agent_id) + str(user_id)` (Python's `str(None)` is `"None"`). Inserting the
/// same text for the same agent again therefore lands on the same row.
pub(crate) fn memgpt_passage_id(text: &str, agent_id: Option<Uuid>, user_id: Uuid) -> Uuid {
    let mut h = Md5::new();
    h.update(text.as_bytes());
    match agent_id {
        Some(a) => h.update(a.hyphenated().to_string().as_bytes()),
        None => h.update(b"None"),
    }
    h.update(user_id.hyphenated().to_string().as_bytes());
    Uuid::from_bytes(h.finalize().into())
}

impl Passage {
    /// Starts a passage of `text` owned by `user_id`. The id defaults to MemGPT's hash of
    /// text, agent and user (see [`Passage::memgpt_id`]); `created_at` to now.
    pub fn builder(user_id: Uuid, text: impl Into<String>) -> PassageBuilder {
        PassageBuilder {
            id: None,
            user_id,
            agent_id: None,
            text: text.into(),
            doc_id: None,
            data_source: None,
            embedding: None,
            embedding_model: None,
            metadata: Map::new(),
            created_at: None,
        }
    }

    /// MemGPT's default id for a passage: the UUID of `md5(text + str(agent_id) +
    /// str(user_id))` (`"None"` for no agent), as MemGPT 0.3.x computes it.
    pub fn memgpt_id(text: &str, agent_id: Option<Uuid>, user_id: Uuid) -> Uuid {
        memgpt_passage_id(text, agent_id, user_id)
    }

    /// A builder holding this passage's values, to change some and build again.
    pub fn to_builder(&self) -> PassageBuilder {
        PassageBuilder {
            id: Some(self.id),
            user_id: self.user_id,
            agent_id: self.agent_id,
            text: self.text.clone(),
            doc_id: self.doc_id,
            data_source: self.data_source.clone(),
            embedding: self.embedding.as_ref().map(|e| e.as_slice().to_vec()),
            embedding_model: self.embedding_model.clone(),
            metadata: self.metadata.clone(),
            created_at: Some(self.created_at),
        }
    }

    /// The document it came from.
    pub fn doc_id(&self) -> Option<Uuid> {
        self.doc_id
    }
    /// Its data source.
    pub fn data_source(&self) -> Option<&str> {
        self.data_source.as_deref()
    }
    /// The embedding's dimension (MemGPT's `embedding_dim`).
    pub fn embedding_dim(&self) -> Option<usize> {
        self.embedding.as_ref().map(Embedding::dim)
    }
    /// The model that produced the embedding.
    pub fn embedding_model(&self) -> Option<&str> {
        self.embedding_model.as_deref()
    }
    /// Free-form metadata (MemGPT's `metadata_`).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }
}

impl Record for Passage {
    const COLUMNS: &'static [&'static str] = super::stored::PASSAGE_COLUMNS;

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
        self.agent_id
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn text(&self) -> Option<&str> {
        Some(&self.text)
    }
    fn embedding(&self) -> Option<&Embedding> {
        self.embedding.as_ref()
    }
    fn stored_in(table: TableType) -> bool {
        matches!(table, TableType::ArchivalMemory | TableType::Passages)
    }
}

/// Builds a validated [`Passage`]; see [`Passage::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PassageBuilder {
    id: Option<Uuid>,
    user_id: Uuid,
    agent_id: Option<Uuid>,
    text: String,
    doc_id: Option<Uuid>,
    data_source: Option<String>,
    embedding: Option<Vec<f32>>,
    embedding_model: Option<String>,
    metadata: Map<String, Value>,
    created_at: Option<DateTime<Utc>>,
}

impl PassageBuilder {
    /// Sets the id (default: MemGPT's hash of text, agent and user).
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }
    /// Sets the owning agent.
    pub fn agent_id(mut self, agent_id: Uuid) -> Self {
        self.agent_id = Some(agent_id);
        self
    }
    /// Sets the text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }
    /// Sets the source document.
    pub fn doc_id(mut self, doc_id: Uuid) -> Self {
        self.doc_id = Some(doc_id);
        self
    }
    /// Sets the data source.
    pub fn data_source(mut self, source: impl Into<String>) -> Self {
        self.data_source = Some(source.into());
        self
    }
    /// Sets the embedding and the model that produced it.
    pub fn embedding(mut self, values: Vec<f32>, model: impl Into<String>) -> Self {
        self.embedding = Some(values);
        self.embedding_model = Some(model.into());
        self
    }
    /// Sets the embedding without naming a model.
    pub fn embedding_values(mut self, values: Vec<f32>) -> Self {
        self.embedding = Some(values);
        self
    }
    /// Sets or clears the embedding model.
    pub fn embedding_model(mut self, model: impl Into<String>) -> Self {
        self.embedding_model = Some(model.into());
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

    /// Validates and builds the passage.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field: a NUL byte in text, data source, embedding
    /// model or metadata; an embedding that is empty, longer than 4096 or not finite; a
    /// `created_at` outside years 1..=9999.
    pub fn build(self) -> Result<Passage> {
        check_text("text", Some(&self.text))?;
        check_text("data_source", self.data_source.as_deref())?;
        check_text("embedding_model", self.embedding_model.as_deref())?;
        check_json_text("metadata", &Value::Object(self.metadata.clone()))?;
        let embedding = self.embedding.map(Embedding::new).transpose()?;
        let created_at = match self.created_at {
            Some(t) => normalize_timestamp(t)?,
            None => now(),
        };
        let id = self
            .id
            .unwrap_or_else(|| memgpt_passage_id(&self.text, self.agent_id, self.user_id));
        Ok(Passage {
            id,
            user_id: self.user_id,
            agent_id: self.agent_id,
            text: self.text,
            doc_id: self.doc_id,
            data_source: self.data_source,
            embedding,
            embedding_model: self.embedding_model,
            metadata: self.metadata,
            created_at,
        })
    }
}

/// Rejects JSON holding a NUL character in any key or string (PostgreSQL's `json` rejects
/// `\u0000` in text it must convert).
pub(crate) fn check_json_text(field: &str, v: &Value) -> Result<()> {
    match v {
        Value::String(s) if s.contains('\0') => {
            Err(Error::invalid(field, "a string contains a NUL byte"))
        }
        Value::Array(a) => a.iter().try_for_each(|x| check_json_text(field, x)),
        Value::Object(o) => o.iter().try_for_each(|(k, x)| {
            if k.contains('\0') {
                Err(Error::invalid(field, "a key contains a NUL byte"))
            } else {
                check_json_text(field, x)
            }
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_id_is_memgpts_md5() {
        // Expected values computed with MemGPT 0.3.x's create_uuid_from_string in Python:
        // uuid.UUID(hex=hashlib.md5((text + str(agent_id) + str(user_id)).encode()).hexdigest())
        let user = Uuid::from_u128(1);
        let p = Passage::builder(user, "hello world").build().unwrap();
        assert_eq!(p.id().to_string(), "71236a77-5f50-280a-3850-3cdb6edd404d");
        let p = Passage::builder(user, "hello world")
            .agent_id(Uuid::from_u128(2))
            .build()
            .unwrap();
        assert_eq!(p.id().to_string(), "3efc0a12-5186-7ca0-2337-0b638736be39");
    }

    #[test]
    fn invalid_embeddings_are_errors() {
        let user = Uuid::from_u128(1);
        for (v, why) in [
            (vec![], "is empty"),
            (vec![0.0; 4097], "more than the maximum"),
            (vec![1.0, f32::NAN], "NaN"),
            (vec![f32::INFINITY], "inf"),
        ] {
            let err = Passage::builder(user, "x")
                .embedding_values(v)
                .build()
                .unwrap_err();
            assert!(
                matches!(&err, Error::InvalidInput { field, reason } if field == "embedding" && reason.contains(why)),
                "{err}"
            );
        }
        let err = Passage::builder(user, "a\0b").build().unwrap_err();
        assert!(matches!(&err, Error::InvalidInput { field, .. } if field == "text"));
    }
}
