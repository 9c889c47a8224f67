//! The backend-generic conformance suite on PostgreSQL: on the throwaway PostgreSQL 18 with
//! pgvector, and on the machine's PostgreSQL without it. Each test gets its own database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use memgpt_conformance::Backend;
use memgpt_core::{DatabaseUrl, Document, Message, Passage, Result, Scope, TableType};
use memgpt_migrate::testing::{TempDatabase, NO_VECTOR_SERVER, VECTOR_SERVER};
use memgpt_pg::PgConfig;
use memgpt_pg::{PgConnector, PgStore};

struct PgBackend {
    store: PgStore,
    _db: TempDatabase,
}

fn fresh(server: &str, vector: bool) -> PgBackend {
    let db = TempDatabase::create(server).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 2;
    config.max_overflow = 8;
    let store = PgStore::open(config).unwrap();
    assert_eq!(
        store.vector_search(),
        vector,
        "pgvector presence on {server}"
    );
    PgBackend { store, _db: db }
}

impl Backend for PgBackend {
    type Recall = PgConnector<'static, Message>;
    type Passages = PgConnector<'static, Passage>;
    type Documents = PgConnector<'static, Document>;
    type RecallTx<'t> = PgConnector<'t, Message>;

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
        self.store.vector_search()
    }
}

mod with_pgvector {
    use super::*;
    memgpt_conformance::conformance_tests!(fresh(VECTOR_SERVER, true));
}

mod without_pgvector {
    use super::*;
    memgpt_conformance::conformance_tests!(fresh(NO_VECTOR_SERVER, false));
}
