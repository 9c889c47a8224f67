//! What the examples of the documentation start from, in their hidden lines: a SQLite
//! store in a temporary folder (deleted when the returned [`TempDir`] drops) and a connector
//! of one agent's table.

use memgpt_core::uuid::Uuid;
use memgpt_core::{Message, Passage, Result, Role, Scope, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteConnector, SqliteStore};
use tempfile::TempDir;

/// The folder of a store (first, so that it is dropped last), a connector of the store and
/// a maker of its records.
pub type Example<R, F> = (TempDir, SqliteConnector<R>, F);

/// A new store's folder (first: dropped last), the store, a new user and agent.
///
/// # Errors
/// The temporary folder or the store cannot be made.
pub fn store() -> Result<(TempDir, SqliteStore, Uuid, Uuid)> {
    let dir = tempfile::tempdir().map_err(memgpt_core::Error::database)?;
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("memory.db")))?;
    Ok((dir, store, Uuid::new_v4(), Uuid::new_v4()))
}

/// The recall memory of a new agent of a new store: the folder, the connector, a maker of
/// the agent's user messages.
///
/// # Errors
/// As [`store`].
pub fn recall() -> Result<Example<Message, impl Fn(&str) -> Result<Message>>> {
    let (dir, store, user, agent) = store()?;
    let c = store.connector(TableType::RecallMemory, Scope::agent(user, agent))?;
    let say = move |text: &str| Message::builder(user, agent, Role::User).text(text).build();
    Ok((dir, c, say))
}

/// The archival memory of a new agent of a new store: the folder, the connector, a maker
/// of the agent's passages (a text and the two components of its embedding).
///
/// # Errors
/// As [`store`].
#[expect(
    clippy::type_complexity,
    reason = "a closure is named by its signature"
)]
pub fn archival() -> Result<Example<Passage, impl Fn(&str, f32, f32) -> Result<Passage>>> {
    let (dir, store, user, agent) = store()?;
    let c = store.connector(TableType::ArchivalMemory, Scope::agent(user, agent))?;
    let passage = move |text: &str, x: f32, y: f32| {
        let p = Passage::builder(user, text).agent_id(agent);
        p.embedding(vec![x, y], "example").build()
    };
    Ok((dir, c, passage))
}
