//! The backend-generic conformance suite, on a fresh SQLite file per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use memgpt_conformance::Subject;
use memgpt_core::{Document, Message, Passage, Result, Scope, TableType};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::{SqliteConnector, SqliteStore};

struct SqliteBackend {
    store: SqliteStore,
    _dir: tempfile::TempDir,
}

fn fresh() -> SqliteBackend {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("memgpt.db"))).expect("open");
    SqliteBackend { store, _dir: dir }
}

impl Subject for SqliteBackend {
    type Recall = SqliteConnector<Message>;
    type Passages = SqliteConnector<Passage>;
    type Documents = SqliteConnector<Document>;
    type RecallTx<'t> = memgpt_sqlite::SqliteTxConnector<'t, Message>;

    fn recall(&self, scope: Scope) -> Result<Self::Recall> {
        self.store.connector(TableType::RecallMemory, scope)
    }
    fn passages(&self, table: TableType, scope: Scope) -> Result<Self::Passages> {
        self.store.connector(table, scope)
    }
    fn documents(&self, scope: Scope) -> Result<Self::Documents> {
        self.store.connector(TableType::Documents, scope)
    }
    fn recall_transaction<T>(
        &self,
        scopes: &[Scope],
        f: impl FnOnce(&[Self::RecallTx<'_>]) -> Result<T>,
    ) -> Result<T> {
        self.store.transaction(|tx| {
            let connectors = scopes
                .iter()
                .map(|s| tx.connector::<Message>(TableType::RecallMemory, *s))
                .collect::<Result<Vec<_>>>()?;
            f(&connectors)
        })
    }
    fn vector_search(&self) -> bool {
        true
    }
}

memgpt_conformance::conformance_tests!(fresh());
