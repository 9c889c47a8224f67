//! [`MemoryIndex`]: rig's `VectorStoreIndex` and `InsertDocuments` over one tenant's
//! archival memory or passages.

use memgpt_core::asynchronous::AsyncConnector;
use memgpt_core::backend::Backend;
use memgpt_core::{Column, Filter, Passage, Record};
use rig::embeddings::{Embedding, EmbeddingModel};
use rig::vector_store::request::VectorSearchRequest;
use rig::vector_store::{InsertDocuments, VectorStoreError, VectorStoreIndex};
use rig::{Embed, OneOrMany};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::filter::{translate, RigJsonFilter};

/// The most results (`samples`) one search returns, and the most passages it reads to find
/// them (a document of several embeddings counts once).
pub const MAX_SAMPLES: usize = 10_000;

/// A rig vector store over the records of one [`AsyncConnector`] of passages (archival
/// memory of one agent, or one user's passages), embedding queries with `M`.
///
/// * **Search** ([`VectorStoreIndex::top_n`]): the query embedded by `M`, then the
///   library's exact in-scope nearest-neighbour search (L2) among the passages embedded by
///   the index's model (`embedding_model` = its name), within rig's filter
///   ([`crate::filter`]: applied by the database, or refused). As in rig's own stores, a
///   document counts once, by its nearest embedding, and its id is the document's
///   (`doc_id`; a passage without one is a document of its own, its id the passage's). The
///   score is `1 / (1 + distance)`: higher is nearer, and rig's threshold leaves out lower
///   scores. The document is the passage's metadata deserialized as the caller's type; a
///   passage whose metadata is empty (MemGPT writes its archival memory so) reads as
///   `{"text": …}`. At most [`MAX_SAMPLES`] results.
/// * **Insert** ([`InsertDocuments::insert_documents`]): one passage per embedding of a
///   document, each with an id of its own — its text the embedded text, its metadata the
///   document (which must serialize to a JSON object), a `doc_id` shared by the document's
///   passages, the index's data source and model name — all in one call (one transaction).
#[derive(Debug, Clone)]
pub struct MemoryIndex<S, M> {
    connector: AsyncConnector<S, Passage>,
    model: M,
    model_name: String,
    data_source: Option<String>,
}

impl<S: Backend, M: EmbeddingModel> MemoryIndex<S, M> {
    /// An index over `connector`'s records embedded by `model`, whose name (as stored in
    /// the passages' `embedding_model`, and written on those it inserts) is `model_name`.
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
    /// `@data_source` to narrow them).
    #[must_use]
    pub fn with_data_source(mut self, data_source: impl Into<String>) -> Self {
        self.data_source = Some(data_source.into());
        self
    }

    /// The connector searched and written.
    pub fn connector(&self) -> &AsyncConnector<S, Passage> {
        &self.connector
    }

    /// The nearest documents of `req`: score, document id and the nearest passage of each,
    /// nearest first.
    async fn search(
        &self,
        req: &VectorSearchRequest<RigJsonFilter>,
    ) -> Result<Vec<(f64, String, Passage)>, VectorStoreError> {
        let mut filters = vec![Filter::eq(Column::EmbeddingModel, self.model_name.as_str())];
        if let Some(f) = req.filter() {
            filters.push(translate(f)?);
        }
        let want = usize::try_from(req.samples()).unwrap_or(usize::MAX);
        if want > MAX_SAMPLES {
            return Err(VectorStoreError::BuilderError(format!(
                "samples must be at most {MAX_SAMPLES} (got {want})"
            )));
        }
        if want == 0 {
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
        // A document of several embeddings counts once: read more passages until `want`
        // documents are found or the scope has no more.
        let mut candidates = want;
        loop {
            let found = self
                .connector
                .query(query.clone(), candidates, filters.clone())
                .await
                .map_err(datastore)?;
            let exhausted = found.len() < candidates;
            let mut seen = std::collections::HashSet::new();
            let best: Vec<(f64, String, Passage)> = found
                .into_iter()
                .filter_map(|p| {
                    let id = p.doc_id().unwrap_or_else(|| p.id()).to_string();
                    seen.insert(id.clone()).then(|| (score(&query, &p), id, p))
                })
                .take(want)
                .collect();
            if best.len() == want || exhausted || candidates >= MAX_SAMPLES {
                let threshold = req.threshold().filter(|t| !t.is_nan());
                return Ok(best
                    .into_iter()
                    .filter(|(s, _, _)| threshold.is_none_or(|t| *s >= t))
                    .collect());
            }
            candidates = candidates.saturating_mul(2).min(MAX_SAMPLES);
        }
    }
}

/// The document of a passage: its metadata, or `{"text": …}` when that is empty.
fn document(p: &Passage) -> Value {
    if p.metadata().is_empty() {
        serde_json::json!({ "text": p.text() })
    } else {
        Value::Object(p.metadata().clone())
    }
}

/// A library error as rig's datastore error (the [`memgpt_core::Error`] inside, for
/// `downcast_ref`).
fn datastore(e: memgpt_core::Error) -> VectorStoreError {
    VectorStoreError::DatastoreError(Box::new(e))
}

/// `1 / (1 + L2 distance)` between the query and the passage's embedding (0 without one,
/// which the search never returns); the shorter vector counts as zero-padded, as MemGPT
/// pads them.
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
            .map(|(score, id, p)| Ok((score, id, serde_json::from_value(document(&p))?)))
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
            .map(|(score, id, _)| (score, id))
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
                    .id(Uuid::new_v4())
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
