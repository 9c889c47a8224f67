//! Keep an agent's chat history and page through it: `cargo run --example chat_history`.
//!
//! Runs on the embedded SQLite default, in a file of a temporary folder (set
//! `MEMGPT_SQLITE_PATH` to keep it).

use memgpt_core::chrono::{Duration, Utc};
use memgpt_core::{
    Column, CursorRequest, Filter, Message, Record, Role, Scope, StorageConnector, TableType,
};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = std::env::var_os("MEMGPT_SQLITE_PATH")
        .map(Into::into)
        .unwrap_or_else(|| dir.path().join("chat.db"));
    let store = SqliteStore::open(SqliteConfig::new(&path))?; // migrates on open
    println!("store: {}", path.display());

    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let recall = store.connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))?;

    // A conversation of 250 turns, one minute apart, written in one call (500-record
    // chunks in one transaction).
    let start = Utc::now() - Duration::minutes(250);
    let turns = (0..250).map(|i| {
        let (role, text) = if i % 2 == 0 {
            (Role::User, format!("question {i}: what about bread?"))
        } else {
            (
                Role::Assistant,
                format!("answer {i}: bake it at 220 degrees"),
            )
        };
        Message::builder(user, agent, role)
            .text(text)
            .created_at(start + Duration::minutes(i))
            .build()
    });
    let turns: Vec<Message> = turns.collect::<Result<_, _>>()?;
    println!("stored {} messages", recall.insert_many(turns, false)?);
    println!("size: {}", recall.size(&[])?);

    // The newest five, newest first: what an agent puts back in its context window.
    for m in recall.get_all(&[], Some(5))? {
        println!(
            "  recent  {:<9} {}",
            m.role().as_str(),
            m.text().unwrap_or("")
        );
    }

    // The whole history in pages of 100, oldest first (keyset pagination: every page
    // costs the same, however deep).
    for (n, page) in recall.get_all_paginated(&[], 100)?.enumerate() {
        let page = page?;
        println!(
            "  page {n}: {} messages, first: {}",
            page.len(),
            page[0].text().unwrap_or("")
        );
    }

    // Only the user's turns, with a cursor: the 3 after the 10th message.
    let tenth = recall.get_all_cursor(&CursorRequest::new().limit(10))?;
    let after = recall.get_all_cursor(
        &CursorRequest::new()
            .filters(vec![Filter::eq(Column::Role, Role::User.as_str())])
            .after(tenth.last_id)
            .limit(3),
    )?;
    for m in &after.records {
        println!("  cursor  {}", m.text().unwrap_or(""));
    }

    // Full-text search and a time window.
    println!(
        "'bake' matches {} messages",
        recall.query_text("bake", None, 0)?.len()
    );
    let last_hour = recall.query_date(Utc::now() - Duration::hours(1), Utc::now(), None, 0)?;
    println!("{} messages in the last hour", last_hour.len());
    Ok(())
}
