//! The rig vector store driven through rig's own traits and types, on SQLite and on
//! PostgreSQL with pgvector: inserts through `EmbeddingsBuilder` + `InsertDocuments`,
//! searches through `VectorStoreIndex` with rig's filters and threshold, and an agent's
//! dynamic context through `VectorStoreIndexDyn`, with a deterministic local embedding
//! model and rig's scripted completion model (no network).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod toy;

use memgpt_core::asynchronous::{AsyncConnector, AsyncStore};
use memgpt_core::backend::Backend;
use memgpt_core::{Passage, Record, Scope, TableType};
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

/// A document embedded twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pair {
    title: String,
    texts: [String; 2],
}

impl Embed for Pair {
    fn embed(&self, embedder: &mut TextEmbedder) -> Result<(), EmbedError> {
        for text in &self.texts {
            embedder.embed(text.clone());
        }
        Ok(())
    }
}

fn note(title: &str, text: &str) -> Note {
    Note {
        title: title.into(),
        text: text.into(),
        topic: "bread".into(),
        year: 2020,
    }
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
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
    let expected: Vec<(f64, String)> = found.iter().map(|(s, id, _)| (*s, id.clone())).collect();
    assert_eq!(ids, expected);
    scores_are_one_over_one_plus_distance(query, &found);
    filters(&index, &archival, &all, &found).await;
    refusals(&index).await;

    // The threshold leaves out what scores lower and keeps what scores exactly it; zero
    // samples find nothing; more than MAX_SAMPLES is refused.
    let second = found[1].0;
    let with_threshold = |t: f64| {
        VectorSearchRequest::builder()
            .query(query)
            .samples(3)
            .threshold(t)
            .build()
    };
    let above = index.top_n::<Note>(with_threshold(second + 1e-9)).await;
    assert_eq!(above.unwrap().len(), 1);
    let at = index.top_n::<Note>(with_threshold(second)).await;
    assert_eq!(at.unwrap().len(), 2);
    assert!(index
        .top_n_ids(request(query, 0, None))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        index.top_n_ids(request(query, 10_001, None)).await,
        Err(VectorStoreError::BuilderError(_))
    ));

    tenants(&store, &index, user, agent, query).await;
    documents(&store, &model, user).await;
    memgpt_rows(&index, &archival, user, agent, query).await;
    dynamic_context(&index, &all).await;
}

fn scores_are_one_over_one_plus_distance(query: &str, found: &[(f64, String, Note)]) {
    let q = f32s(&toy::embed(query, DIMS));
    for (score, _, note) in found {
        let v = f32s(&toy::embed(&note.text, DIMS));
        let d: f64 = q
            .iter()
            .zip(&v)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((score - 1.0 / (1.0 + d)).abs() < 1e-9, "{score} vs {d}");
    }
}

/// rig's filters, applied by the database: metadata keys, `@` columns, chains.
async fn filters<S: Backend>(
    index: &MemoryIndex<S, Toy>,
    archival: &AsyncConnector<S, Passage>,
    all: &[Note],
    found: &[(f64, String, Note)],
) {
    let pick =
        |f: &dyn Fn(&Note) -> bool| -> Vec<Note> { all.iter().filter(|n| f(n)).cloned().collect() };
    let q = "tomatoes and bread";
    let cases = [
        (
            Filter::eq("topic", json!("bread")),
            pick(&|n| n.topic == "bread"),
        ),
        (Filter::gt("year", json!(2020)), pick(&|n| n.year > 2020)),
        (
            Filter::eq("topic", json!("garden")).or(Filter::lt("year", json!(2020))),
            pick(&|n| n.topic == "garden" || n.year < 2020),
        ),
        (
            Filter::eq("topic", json!("bread")).and(Filter::gt("year", json!(2020))),
            pick(&|n| n.topic == "bread" && n.year > 2020),
        ),
        (Filter::eq("@data_source", json!("notes")), all.to_vec()),
        (Filter::eq("@data_source", json!("other")), vec![]),
        (Filter::eq("@doc_id", json!(null)), vec![]),
        // A long chain of or (rig nests pairs) is one test of all its parts.
        (
            (0..18)
                .map(|i| Filter::eq("year", json!(2010 + i)))
                .reduce(Filter::or)
                .unwrap(),
            pick(&|n| (2010..2028).contains(&n.year)),
        ),
    ];
    for (filter, matching) in cases {
        let got = titles(index, q, 5, Some(filter.clone())).await;
        assert_eq!(got, nearest_titles(q, &matching, 5), "{filter:?}");
    }
    // Columns by `@`: the document's id, a passage's id, the creation instant.
    let (_, first_id, first) = &found[0];
    let by_doc = Filter::eq("@doc_id", json!(first_id));
    let by_doc = index
        .top_n::<Note>(request(q, 5, Some(by_doc)))
        .await
        .unwrap();
    assert_eq!(by_doc.len(), 1);
    assert_eq!(&by_doc[0].2, first);
    let passages = archival.get_all(vec![], None).await.unwrap();
    let passage = passages
        .iter()
        .find(|p| p.doc_id().map(|d| d.to_string()).as_ref() == Some(first_id))
        .unwrap();
    let by_id = Filter::eq("@id", json!(passage.id().to_string()));
    assert_eq!(
        titles(index, q, 5, Some(by_id)).await,
        vec![first.title.clone()]
    );
    let created = json!(passage.created_at().to_rfc3339());
    // The instant itself, after it, before it: the passage is in the first only.
    let at = titles(
        index,
        q,
        5,
        Some(Filter::eq("@created_at", created.clone())),
    )
    .await;
    assert!(at.contains(&first.title), "{at:?}");
    for other_side in [
        Filter::gt("@created_at", created.clone()),
        Filter::lt("@created_at", created),
    ] {
        let got = titles(index, q, 5, Some(other_side)).await;
        assert!(!got.contains(&first.title), "{got:?}");
    }
}

/// What has no exact translation is an error, never dropped.
async fn refusals<S: Backend>(index: &MemoryIndex<S, Toy>) {
    let q = "bread";
    for refused in [
        Filter::gt("@doc_id", json!(Uuid::nil().to_string())),
        Filter::eq("@doc_id", json!("not a uuid")),
        Filter::eq("topic", json!(["bread"])),
        Filter::eq("@data_source", json!(3)),
        Filter::lt("@created_at", json!("yesterday")),
        Filter::eq("@nope", json!(1)),
        Filter::eq("", json!(1)),
        Filter::eq("a\"b", json!(1)),
        Filter::gt("topic", json!(null)),
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
    let past = Filter::gt("year", json!(1u64 << 60));
    let e = index
        .top_n::<Note>(request(q, 5, Some(past)))
        .await
        .unwrap_err();
    let VectorStoreError::DatastoreError(inner) = e else {
        panic!("{e}")
    };
    assert!(matches!(
        inner.downcast_ref::<memgpt_core::Error>(),
        Some(memgpt_core::Error::InvalidInput { .. })
    ));
}

/// Another tenant's index (another agent, another user) sees none of it, not even by
/// naming a passage's id.
async fn tenants<S: Backend>(
    store: &AsyncStore<S>,
    index: &MemoryIndex<S, Toy>,
    user: Uuid,
    agent: Uuid,
    query: &str,
) {
    let ids = index.top_n_ids(request(query, 5, None)).await.unwrap();
    let passages = index.connector().get_all(vec![], None).await.unwrap();
    assert_eq!(ids.len(), 5);
    for scope in [
        Scope::agent(user, Uuid::new_v4()),
        Scope::agent(Uuid::new_v4(), agent),
    ] {
        let other = store
            .connector::<Passage>(TableType::ArchivalMemory, scope)
            .unwrap();
        let other_index = MemoryIndex::new(other, Toy { dims: DIMS }, "toy");
        assert!(titles(&other_index, query, 5, None).await.is_empty());
        for p in &passages {
            let probe = Filter::eq("@id", json!(p.id().to_string()));
            assert!(titles(&other_index, query, 5, Some(probe)).await.is_empty());
        }
    }
}

/// A document that is not an object writes nothing; two documents of the same text are two
/// documents; a document of two embeddings counts once, by its nearer one, under its id; a
/// user's passages (no agent) work as archival memory does.
async fn documents<S: Backend>(store: &AsyncStore<S>, model: &Toy, user: Uuid) {
    let passages = store
        .connector::<Passage>(TableType::Passages, Scope::user(user))
        .unwrap();
    let index = MemoryIndex::new(passages.clone(), model.clone(), "toy").with_data_source("loaf");
    let words = EmbeddingsBuilder::new(model.clone())
        .documents(vec!["a plain string".to_owned()])
        .unwrap()
        .build()
        .await
        .unwrap();
    assert!(index.insert_documents(words).await.is_err());
    assert_eq!(passages.size(vec![]).await.unwrap(), 0);
    let twins = vec![
        note("twin a", "pumpernickel loaf"),
        note("twin b", "pumpernickel loaf"),
    ];
    let twins = EmbeddingsBuilder::new(model.clone())
        .documents(twins)
        .unwrap()
        .build()
        .await
        .unwrap();
    index.insert_documents(twins).await.unwrap();
    let pair = Pair {
        title: "pair".into(),
        texts: [
            "pumpernickel rye loaf".into(),
            "pumpernickel loaf crust".into(),
        ],
    };
    let pair = EmbeddingsBuilder::new(model.clone())
        .documents(vec![pair])
        .unwrap()
        .build()
        .await
        .unwrap();
    index.insert_documents(pair).await.unwrap();
    assert_eq!(passages.size(vec![]).await.unwrap(), 4);
    let three = index
        .top_n::<Value>(request("pumpernickel loaf", 3, None))
        .await
        .unwrap();
    let mut names: Vec<&str> = three
        .iter()
        .map(|(_, _, d)| d["title"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["pair", "twin a", "twin b"]);
    let ids: std::collections::HashSet<&String> = three.iter().map(|(_, id, _)| id).collect();
    assert_eq!(ids.len(), 3);
}

/// MemGPT's own archival passages (empty metadata) read as their text; passages of another
/// embedding model are not compared with the index's.
async fn memgpt_rows<S: Backend>(
    index: &MemoryIndex<S, Toy>,
    archival: &AsyncConnector<S, Passage>,
    user: Uuid,
    agent: Uuid,
    query: &str,
) {
    let text = "the user likes caraway rye bread";
    let memgpt = Passage::builder(user, text)
        .agent_id(agent)
        .embedding(f32s(&toy::embed(text, DIMS)), "toy")
        .build()
        .unwrap();
    let foreign = Passage::builder(user, query)
        .agent_id(agent)
        .embedding(f32s(&toy::embed(query, DIMS)), "another-model")
        .build()
        .unwrap();
    archival
        .insert_many(vec![memgpt, foreign], false)
        .await
        .unwrap();
    let docs = index.top_n::<Value>(request(text, 1, None)).await.unwrap();
    assert_eq!(docs[0].2, json!({ "text": text }));
    let everything = index
        .top_n::<Value>(request(query, 100, None))
        .await
        .unwrap();
    assert_eq!(
        everything.len(),
        6,
        "the five notes and MemGPT's passage, not the foreign one"
    );
    archival
        .delete(vec![memgpt_core::Filter::eq(
            memgpt_core::Column::DocId,
            memgpt_core::FilterValue::Null,
        )])
        .await
        .unwrap();
}

/// An agent's dynamic context: rig asks the index with the prompt, and the documents reach
/// the completion model.
async fn dynamic_context<S: Backend>(index: &MemoryIndex<S, Toy>, all: &[Note]) {
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
    assert_eq!(context, nearest_titles(prompt, all, 2));
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
