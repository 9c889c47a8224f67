//! An agent definition whose dynamic context is an agent's archival memory in
//! memgpt-store: `cargo run -p memgpt-rig --example agent`.
//!
//! Runs without a network: a deterministic local embedding model and rig's scripted
//! completion model stand in for a provider's (for a real one, depend on `rig-core =
//! "=0.40.0"` with its TLS feature and use its OpenAI client, say). It prints the notes rig
//! put into the model's request.

#[path = "../tests/toy/mod.rs"]
mod toy;

use memgpt_core::asynchronous::AsyncStore;
use memgpt_core::uuid::Uuid;
use memgpt_core::{Passage, Scope, TableType};
use memgpt_rig::rig::agent::AgentBuilder;
use memgpt_rig::rig::completion::Prompt;
use memgpt_rig::rig::embeddings::{EmbedError, EmbeddingsBuilder, TextEmbedder};
use memgpt_rig::rig::test_utils::MockCompletionModel;
use memgpt_rig::rig::vector_store::InsertDocuments;
use memgpt_rig::rig::Embed;
use memgpt_rig::MemoryIndex;
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use serde::Serialize;

/// A note the agent keeps: its text is embedded, its fields are the passage's metadata.
#[derive(Serialize)]
struct Note {
    title: &'static str,
    text: &'static str,
}

impl Embed for Note {
    fn embed(&self, embedder: &mut TextEmbedder) -> Result<(), EmbedError> {
        embedder.embed(self.text.to_owned());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent.db");
    let store =
        tokio::task::spawn_blocking(move || SqliteStore::open(SqliteConfig::new(path))).await??;
    let store = AsyncStore::new(store);
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let archival =
        store.connector::<Passage>(TableType::ArchivalMemory, Scope::agent(user, agent))?;

    let embedder = toy::Toy { dims: 32 };
    let memory = MemoryIndex::new(archival, embedder.clone(), "toy-32");
    let notes = [
        ("rye", "rye bread with caraway seeds"),
        ("brioche", "brioche bread on sundays with butter"),
        ("tomatoes", "water the tomatoes every morning"),
    ]
    .map(|(title, text)| Note { title, text });
    let embedded = EmbeddingsBuilder::new(embedder)
        .documents(notes)?
        .build()
        .await?;
    memory.insert_documents(embedded).await?;

    // The agent definition: each prompt brings the two nearest notes into the request.
    let model = MockCompletionModel::text("You like rye bread with caraway.");
    let assistant = AgentBuilder::new(model.clone())
        .preamble("You answer from the user's notes.")
        .dynamic_context(2, memory)
        .build();
    let answer = assistant
        .prompt("which bread with caraway do I like?")
        .await?;
    println!("answer: {answer}");
    for request in model.requests() {
        for document in request.documents {
            println!(
                "context {}: {}",
                document.id,
                document.text.replace('\n', " ")
            );
        }
    }
    Ok(())
}
