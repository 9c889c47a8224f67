//! The rig vector store driven through rig's own traits and types, on SQLite and on
//! PostgreSQL with pgvector: inserts through `EmbeddingsBuilder` + `InsertDocuments`,
//! searches through `VectorStoreIndex` with rig's filters and threshold, and an agent's
//! dynamic context through `VectorStoreIndexDyn`, with a deterministic local embedding
//! model and rig's scripted completion model (no network).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod toy;

use memgpt_core::asynchronous::AsyncStore;
use memgpt_core::backend::Backend;
use memgpt_core::{Passage, Scope, TableType};
use memgpt_rig::rig::agent::AgentBuilder;
use memgpt_rig::rig::completion::Prompt;
use memgpt_rig::rig::embeddings::{EmbedError, EmbeddingsBuilder, TextEmbedder};
use memgpt_rig::rig::test_utils::MockCompletionModel;
use memgpt_rig::rig::vector_store::request::{Filter, SearchFilter, VectorSearchRequest};
use memgpt_rig::rig::vector_store::{InsertDocuments, VectorStoreError, VectorStoreIndex};
use memgpt_rig::rig::Embed;
use memgpt_rig::MemoryIndex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use toy::Toy;
use uuid::Uuid;

const DIMS: usize = 32;

/// A note an agent keeps: its text is embedded, every field is metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    title: String,
    text: String,
    topic: String,
    year: i64,
}

impl Embed for Note {
    fn embed(&self, embedder: &mut TextEmbedder) -> Result<(), EmbedError> {
        embedder.embed(self.text.clone());
        Ok(())
    }
}

fn notes() -> Vec<Note> {
    [
        ("rye", "rye bread with caraway seeds", "bread", 2019),
        (
            "brioche",
            "brioche bread on sundays with butter",
            "bread",
            2023,
        ),
        (
            "sourdough",
            "sourdough bread needs a starter",
            "bread",
            2024,
        ),
        (
            "tomatoes",
            "water the tomatoes every morning",
            "garden",
            2022,
        ),
        ("basil", "basil grows next to the tomatoes", "garden", 2018),
    ]
    .into_iter()
    .map(|(title, text, topic, year)| Note {
        title: title.into(),
        text: text.into(),
        topic: topic.into(),
        year,
    })
    .collect()
}

/// The titles of `notes` nearest to `query` by the toy embedding, nearest first (ties by
/// title: no two notes tie here).
fn nearest_titles(query: &str, notes: &[Note], n: usize) -> Vec<String> {
    let q = toy::embed(query, DIMS);
    let mut scored: Vec<(f64, String)> = notes
        .iter()
        .map(|note| {
            let v = toy::embed(&note.text, DIMS);
            let d: f64 = q.iter().zip(&v).map(|(a, b)| (a - b).powi(2)).sum();
            (d, note.title.clone())
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(n).map(|(_, t)| t).collect()
}

fn request(query: &str, samples: u64, filter: Option<Filter<Value>>) -> VectorSearchRequest {
    let builder = VectorSearchRequest::builder().query(query).samples(samples);
    match filter {
        Some(f) => builder.filter(f).build(),
        None => builder.build(),
    }
}

async fn titles<S: Backend>(
    index: &MemoryIndex<S, Toy>,
    query: &str,
    n: u64,
    filter: Option<Filter<Value>>,
) -> Vec<String> {
    index
        .top_n::<Note>(request(query, n, filter))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, _, note)| note.title)
        .collect()
}

/// Everything the index promises, on one store.
async fn exercise<S: Backend>(store: AsyncStore<S>) {
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let archival = store
        .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(user, agent))
        .unwrap();
    let model = Toy { dims: DIMS };
    let index = MemoryIndex::new(archival.clone(), model.clone(), "toy").with_data_source("notes");
    let all = notes();
    let embedded = EmbeddingsBuilder::new(model.clone())
        .documents(all.clone())
        .unwrap()
        .build()
        .await
        .unwrap();
    index.insert_documents(embedded).await.unwrap();
    assert_eq!(archival.size(vec![]).await.unwrap(), 5);

    // Nearest first, the documents as inserted, ids and scores consistent with top_n_ids.
    let query = "bread with butter and caraway";
    let found = index.top_n::<Note>(request(query, 3, None)).await.unwrap();
    let want = nearest_titles(query, &all, 3);
    let got: Vec<String> = found.iter().map(|(_, _, n)| n.title.clone()).collect();
    assert_eq!(got, want);
    assert!(found.iter().all(|(_, _, n)| all.contains(n)));
    assert!(found.windows(2).all(|w| w[0].0 >= w[1].0), "{found:?}");
    let ids = index.top_n_ids(request(query, 3, None)).await.unwrap();
    assert_eq!(
        ids,
        found
            .iter()
            .map(|(s, id, _)| (*s, id.clone()))
            .collect::<Vec<_>>()
    );

    // rig's filters, applied by the database.
    let bread: Vec<Note> = all.iter().filter(|n| n.topic == "bread").cloned().collect();
    let recent: Vec<Note> = all.iter().filter(|n| n.year > 2020).cloned().collect();
    let q = "tomatoes and bread";
    assert_eq!(
        titles(&index, q, 5, Some(Filter::eq("topic", json!("bread")))).await,
        nearest_titles(q, &bread, 5)
    );
    assert_eq!(
        titles(&index, q, 5, Some(Filter::gt("year", json!(2020)))).await,
        nearest_titles(q, &recent, 5)
    );
    let either = Filter::eq("topic", json!("garden")).or(Filter::lt("year", json!(2020)));
    let either_notes: Vec<Note> = all
        .iter()
        .filter(|n| n.topic == "garden" || n.year < 2020)
        .cloned()
        .collect();
    assert_eq!(
        titles(&index, q, 5, Some(either)).await,
        nearest_titles(q, &either_notes, 5)
    );
    let both = Filter::eq("topic", json!("bread")).and(Filter::gt("year", json!(2020)));
    assert_eq!(titles(&index, q, 5, Some(both)).await.len(), 2);
    assert_eq!(
        titles(
            &index,
            q,
            5,
            Some(Filter::eq("data_source", json!("notes")))
        )
        .await
        .len(),
        5
    );
    assert!(titles(
        &index,
        q,
        5,
        Some(Filter::eq("data_source", json!("other")))
    )
    .await
    .is_empty());

    // What has no exact translation is an error, never dropped.
    for refused in [
        Filter::gt("doc_id", json!(Uuid::nil().to_string())),
        Filter::eq("topic", json!(["bread"])),
        Filter::eq("data_source", json!(3)),
        Filter::lt("created_at", json!("yesterday")),
        Filter::eq("a..b", json!(1)),
    ] {
        let e = index
            .top_n::<Note>(request(q, 5, Some(refused.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(e, VectorStoreError::FilterError(_)),
            "{refused:?}: {e}"
        );
    }
    // A filter the database refuses (a number past 2^53) is the library's InvalidInput.
    let e = index
        .top_n::<Note>(request(q, 5, Some(Filter::gt("year", json!(1u64 << 60)))))
        .await
        .unwrap_err();
    let VectorStoreError::DatastoreError(inner) = e else {
        panic!("{e}")
    };
    assert!(matches!(
        inner.downcast_ref::<memgpt_core::Error>(),
        Some(memgpt_core::Error::InvalidInput { .. })
    ));

    // The threshold leaves out what scores lower; zero samples find nothing.
    let second = found[1].0;
    let above = VectorSearchRequest::builder()
        .query(query)
        .samples(3)
        .threshold(second + 1e-9)
        .build();
    assert_eq!(index.top_n::<Note>(above).await.unwrap().len(), 1);
    assert!(index
        .top_n_ids(request(query, 0, None))
        .await
        .unwrap()
        .is_empty());

    // Another tenant's index sees none of it; a document that is not an object writes
    // nothing.
    let other = store
        .connector::<Passage>(
            TableType::ArchivalMemory,
            Scope::agent(user, Uuid::new_v4()),
        )
        .unwrap();
    let other_index = MemoryIndex::new(other.clone(), model.clone(), "toy");
    assert!(titles(&other_index, query, 5, None).await.is_empty());
    let words = EmbeddingsBuilder::new(model.clone())
        .documents(vec!["a plain string".to_owned()])
        .unwrap()
        .build()
        .await
        .unwrap();
    assert!(other_index.insert_documents(words).await.is_err());
    assert_eq!(other.size(vec![]).await.unwrap(), 0);

    // An agent's dynamic context: rig asks the index with the prompt, and the documents
    // reach the completion model.
    let completion = MockCompletionModel::text("noted");
    let agent = AgentBuilder::new(completion.clone())
        .preamble("You remember the user's notes.")
        .dynamic_context(2, index.clone())
        .build();
    let prompt = "what bread with caraway do I like";
    assert_eq!(agent.prompt(prompt).await.unwrap(), "noted");
    let requests = completion.requests();
    assert_eq!(requests.len(), 1);
    let context: Vec<String> = requests[0]
        .documents
        .iter()
        .map(|d| serde_json::from_str::<Note>(&d.text).unwrap().title)
        .collect();
    assert_eq!(context, nearest_titles(prompt, &all, 2));
    let context_ids: Vec<&str> = requests[0]
        .documents
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    let expected_ids = index.top_n_ids(request(prompt, 2, None)).await.unwrap();
    assert_eq!(
        context_ids,
        expected_ids
            .iter()
            .map(|(_, id)| id.as_str())
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_answers_rigs_traits_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let config = memgpt_sqlite::SqliteConfig::new(dir.path().join("rig.db"));
    let store = tokio::task::spawn_blocking(move || memgpt_sqlite::SqliteStore::open(config))
        .await
        .unwrap()
        .unwrap();
    exercise(AsyncStore::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_answers_rigs_traits_on_postgres() {
    let db = memgpt_testing::TempDatabase::create(memgpt_testing::VECTOR_SERVER).unwrap();
    let config = memgpt_pg::PgConfig::new(memgpt_core::DatabaseUrl::new(db.url().expose()));
    let store = tokio::task::spawn_blocking(move || memgpt_pg::PgStore::open(config))
        .await
        .unwrap()
        .unwrap();
    exercise(AsyncStore::new(store)).await;
}
