//! The same code on SQLite and PostgreSQL, picked by URL:
//!
//! ```sh
//! cargo run --example by_url                                    # a temporary SQLite file
//! MEMGPT_DATABASE_URL=sqlite://memory.db cargo run --example by_url
//! MEMGPT_DATABASE_URL=postgres://user@host/db cargo run --example by_url --features memgpt-examples/postgres
//! ```
//!
//! PostgreSQL needs the feature `postgres` (libpq); without it, a PostgreSQL URL is refused
//! with that advice and the example runs on SQLite alone.
//!
//! `remember` is written once against [`StorageConnector`]; only opening the store
//! depends on the backend.

use memgpt_core::{DatabaseUrl, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_migrate::Target;
#[cfg(feature = "postgres")]
use memgpt_pg::{PgConfig, PgStore};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

/// Stores a short exchange and reads it back: the same on every backend.
fn remember<C: StorageConnector<Record = Message>>(
    recall: &C,
) -> Result<(), Box<dyn std::error::Error>> {
    let scope = *recall.scope();
    let (user, agent) = (scope.user_id(), scope.agent_id().ok_or("an agent scope")?);
    let exchange = [
        (Role::User, "Remind me to water the tomatoes."),
        (Role::Assistant, "Noted: water the tomatoes."),
    ];
    for (role, text) in exchange {
        recall.insert(&Message::builder(user, agent, role).text(text).build()?)?;
    }
    println!("  {} messages", recall.size(&[])?);
    for m in recall.query_text("tomatoes", None, 0)? {
        println!("  {:<9} {}", m.role().as_str(), m.text().unwrap_or(""));
    }
    // Clean up: this agent is a demo.
    println!("  deleted {}", recall.delete(&[])?);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = DatabaseUrl::new(
        std::env::var("MEMGPT_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("by_url.db").display())),
    );
    println!("database: {}", url.redacted()); // never the password
    let scope = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    match Target::of(&url) {
        #[cfg(feature = "postgres")]
        Target::Postgres => {
            let store = PgStore::open(PgConfig::new(url))?;
            remember(&store.connector::<Message>(TableType::RecallMemory, scope)?)
        }
        #[cfg(not(feature = "postgres"))]
        target @ Target::Postgres => Err(format!(
            "{}: run `cargo run --example by_url --features memgpt-examples/postgres`",
            target.unsupported(&url)
        )
        .into()),
        Target::Sqlite(path) => {
            let store = SqliteStore::open(SqliteConfig::new(path))?;
            remember(&store.connector::<Message>(TableType::RecallMemory, scope)?)
        }
    }
}
