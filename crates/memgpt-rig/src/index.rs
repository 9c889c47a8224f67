//! [`MemoryIndex`]: rig's `VectorStoreIndex` and `InsertDocuments` over one tenant's
//! archival memory or passages.

use memgpt_core::asynchronous::AsyncConnector;
use memgpt_core::backend::Backend;
use memgpt_core::{Filter, Passage, Record};
use rig::embeddings::{Embedding, EmbeddingModel};
use rig::vector_store::request::VectorSearchRequest;
use rig::vector_store::{InsertDocuments, VectorStoreError, VectorStoreIndex};
use rig::{Embed, OneOrMany};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::filter::{translate, RigJsonFilter};

/// A rig vector store over the records of one [`AsyncConnector`] of passages (archival
/// memory of one agent, or one user's passages), embedding queries with `M`.
///
/// * **Search** ([`VectorStoreIndex::top_n`]): the query embedded by `M`, then the
///   library's exact in-scope nearest-neighbour search (L2), nearest first, within rig's
///   filter ([`crate::filter`]: applied by the database, or refused). The score is
///   `1 / (1 + distance)`: higher is nearer, as rig's threshold expects; results scoring
///   below the threshold are left out. The id is the passage's id; the document is the
///   passage's metadata (`metadata_`), deserialized as the caller's type.
/// * **Insert** ([`InsertDocuments::insert_documents`]): one passage per embedding of a
///   document — its text the embedded text, its metadata the document (which must
///   serialize to a JSON object), a `doc_id` shared by the document's passages, the
///   index's data source and embedding model name — all in one call (one transaction).
#[derive(Debug, Clone)]
pub struct MemoryIndex<S, M> {
    connector: AsyncConnector<S, Passage>,
    model: M,
    model_name: String,
    data_source: Option<String>,
}

impl<S: Backend, M: EmbeddingModel> MemoryIndex<S, M> {
    /// An index over `connector`'s records, embedding with `model` (recorded in the
    /// passages it writes as `model_name`).
    pub fn new(
        connector: AsyncConnector<S, Passage>,
        model: M,
        model_name: impl Into<String>,
    ) -> Self {
        MemoryIndex {
            connector,
            model,
            model_name: model_name.into(),
            data_source: None,
        }
    }

    /// Writes `data_source` on the passages it inserts (MemGPT's passages name the source
    /// they were loaded from); searches stay over the whole scope (filter on
    /// `data_source` to narrow them).
    #[must_use]
    pub fn with_data_source(mut self, data_source: impl Into<String>) -> Self {
        self.data_source = Some(data_source.into());
        self
    }

    /// The connector searched and written.
    pub fn connector(&self) -> &AsyncConnector<S, Passage> {
        &self.connector
    }

    /// The nearest passages of `req` with their scores, nearest first.
    async fn search(
        &self,
        req: &VectorSearchRequest<RigJsonFilter>,
    ) -> Result<Vec<(f64, Passage)>, VectorStoreError> {
        let filters: Vec<Filter> = req
            .filter()
            .as_ref()
            .map(translate)
            .transpose()?
            .into_iter()
            .collect();
        let top_k = usize::try_from(req.samples()).unwrap_or(usize::MAX);
        if top_k == 0 {
            return Ok(Vec::new());
        }
        let query: Vec<f32> = self
            .model
            .embed_text(req.query())
            .await?
            .vec
            .iter()
            .map(|&x| x as f32)
            .collect();
        let found = self
            .connector
            .query(query.clone(), top_k, filters)
            .await
            .map_err(datastore)?;
        Ok(found
            .into_iter()
            .map(|p| (score(&query, &p), p))
            .filter(|(s, _)| req.threshold().is_none_or(|t| *s >= t))
            .collect())
    }
}

/// A library error as rig's datastore error (the [`memgpt_core::Error`] inside, for
/// `downcast_ref`).
fn datastore(e: memgpt_core::Error) -> VectorStoreError {
    VectorStoreError::DatastoreError(Box::new(e))
}

/// `1 / (1 + L2 distance)` between the query and the passage's embedding (0 without one);
/// the shorter vector counts as zero-padded, as MemGPT pads them.
fn score(query: &[f32], passage: &Passage) -> f64 {
    let Some(stored) = passage.embedding() else {
        return 0.0;
    };
    let stored = stored.as_slice();
    let len = query.len().max(stored.len());
    let at = |v: &[f32], i: usize| f64::from(v.get(i).copied().unwrap_or(0.0));
    let squares: f64 = (0..len)
        .map(|i| (at(query, i) - at(stored, i)).powi(2))
        .sum();
    1.0 / (1.0 + squares.sqrt())
}

impl<S: Backend, M: EmbeddingModel> VectorStoreIndex for MemoryIndex<S, M> {
    type Filter = RigJsonFilter;

    async fn top_n<T: for<'a> Deserialize<'a> + Send>(
        &self,
        req: VectorSearchRequest<RigJsonFilter>,
    ) -> Result<Vec<(f64, String, T)>, VectorStoreError> {
        self.search(&req)
            .await?
            .into_iter()
            .map(|(score, p)| {
                let document = serde_json::from_value(Value::Object(p.metadata().clone()))?;
                Ok((score, p.id().to_string(), document))
            })
            .collect()
    }

    async fn top_n_ids(
        &self,
        req: VectorSearchRequest<RigJsonFilter>,
    ) -> Result<Vec<(f64, String)>, VectorStoreError> {
        Ok(self
            .search(&req)
            .await?
            .into_iter()
            .map(|(score, p)| (score, p.id().to_string()))
            .collect())
    }
}

impl<S: Backend, M: EmbeddingModel> InsertDocuments for MemoryIndex<S, M> {
    async fn insert_documents<Doc: Serialize + Embed + Send>(
        &self,
        documents: Vec<(Doc, OneOrMany<Embedding>)>,
    ) -> Result<(), VectorStoreError> {
        let scope = *self.connector.scope();
        let mut passages = Vec::new();
        for (document, embeddings) in documents {
            let Value::Object(metadata) = serde_json::to_value(&document)? else {
                return Err(datastore(memgpt_core::Error::invalid(
                    "document",
                    "must serialize to a JSON object: its fields are the passage's metadata",
                )));
            };
            let doc_id = Uuid::new_v4();
            for embedding in embeddings {
                let mut passage = Passage::builder(scope.user_id(), embedding.document)
                    .doc_id(doc_id)
                    .metadata(metadata.clone())
                    .embedding(
                        embedding.vec.iter().map(|&x| x as f32).collect(),
                        self.model_name.clone(),
                    );
                if let Some(agent) = scope.agent_id() {
                    passage = passage.agent_id(agent);
                }
                if let Some(source) = &self.data_source {
                    passage = passage.data_source(source.clone());
                }
                passages.push(passage.build().map_err(datastore)?);
            }
        }
        self.connector
            .insert_many(passages, false)
            .await
            .map(drop)
            .map_err(datastore)
    }
}
