//! Load a document's passages and search them: `cargo run --example passages_search`.
//!
//! A document is split into passages, each with an embedding (a toy one here, so that
//! the example needs no model), written in one call, then searched by vector (exact on
//! SQLite) and by text, and filtered by data source. Runs on the embedded SQLite default.

use memgpt_core::{Column, Document, Filter, Passage, Record, Scope, StorageConnector, TableType};
use memgpt_examples::embed;
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

const DIM: usize = 256;

const MANUAL: &str = "\
Sourdough needs a lively starter fed the day before. \
Mix flour, water and salt, then rest the dough for an hour. \
Fold the dough every thirty minutes for two hours. \
Shape the loaf and proof it overnight in the fridge. \
Bake in a covered pot at 250 degrees for twenty minutes. \
Uncover and bake until the crust is deep brown. \
Let the bread cool for an hour before slicing.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("passages.db")))?;
    let user = Uuid::new_v4();

    // The document, then its passages (one per sentence), all from one data source.
    let documents = store.connector::<Document>(TableType::Documents, Scope::user(user))?;
    let doc = Document::builder(user, MANUAL)
        .data_source("baking-manual")
        .build()?;
    documents.insert(&doc)?;

    let passages = store.connector::<Passage>(TableType::Passages, Scope::user(user))?;
    let chunks: Vec<Passage> = MANUAL
        .split_inclusive(". ")
        .map(|sentence| {
            Passage::builder(user, sentence.trim())
                .doc_id(doc.id())
                .data_source("baking-manual")
                .embedding(embed(sentence, DIM), "toy-embedding")
                .build()
        })
        .collect::<Result<_, _>>()?;
    println!("stored {} passages", passages.insert_many(chunks, false)?);

    // Nearest passages to a question (exact L2 distance on SQLite, HNSW on PostgreSQL).
    let question = "how long to bake the bread in the pot";
    println!("top 3 for {question:?}:");
    for p in passages.query(&embed(question, DIM), 3, &[])? {
        println!("  {}", p.text().unwrap_or(""));
    }

    // Full-text search (FTS5), and the same restricted to one document.
    let by_doc = [Filter::eq(Column::DocId, doc.id())];
    println!("passages of this document: {}", passages.size(&by_doc)?);
    for p in passages.query_text("dough", None, 0)? {
        println!("  text match: {}", p.text().unwrap_or(""));
    }
    println!("data sources: {:?}", passages.list_data_sources()?);
    Ok(())
}
