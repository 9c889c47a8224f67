//! The backend-generic conformance suite on PostgreSQL: on the throwaway PostgreSQL 18 with
//! pgvector, on the machine's PostgreSQL without it, and through PgBouncer in transaction
//! mode in front of the first (`pgbouncer::…`), and with a streaming replica of the first
//! serving reads (`replica::…`). Each test gets its own database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use memgpt_conformance::Subject;
use memgpt_core::{DatabaseUrl, Document, Message, Passage, Result, Scope, TableType};
use memgpt_pg::{PgConfig, Pooler};
use memgpt_pg::{PgConnector, PgStore};
use memgpt_testing::{TempDatabase, NO_VECTOR_SERVER, PGBOUNCER, REPLICA, VECTOR_SERVER};

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

/// A migrated database reached through PgBouncer in transaction mode
/// (`MEMGPT_TEST_PGBOUNCER_URL`); the migrations run against the server directly, as they
/// must.
fn through_pgbouncer() -> PgBackend {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    memgpt_migrate::postgres::run_url(db.url(), memgpt_migrate::Command::Up).unwrap();
    let mut config = PgConfig::new(db.url_via(PGBOUNCER).unwrap());
    config.pooler = Pooler::Transaction;
    config.pool_size = 2;
    config.max_overflow = 8;
    let store = PgStore::open(config).unwrap();
    assert!(store.vector_search());
    PgBackend { store, _db: db }
}

/// A database on the primary with the harness's streaming replica of it
/// (`MEMGPT_TEST_PG_REPLICA_URL`) serving reads, through a read-your-writes session: the
/// suite's reads after its writes see them, from the replica once it has replayed them,
/// else from the primary.
fn with_replica() -> PgBackend {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.replica_urls = vec![db.url_via(REPLICA).unwrap()];
    config.pool_size = 2;
    config.max_overflow = 8;
    let store = PgStore::open(config).unwrap().read_your_writes().unwrap();
    assert!(store.vector_search());
    PgBackend { store, _db: db }
}

impl Subject for PgBackend {
    type Recall = PgConnector<Message>;
    type Passages = PgConnector<Passage>;
    type Documents = PgConnector<Document>;
    type RecallTx<'t> = memgpt_pg::PgTxConnector<'t, Message>;

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

mod pgbouncer {
    use super::*;
    memgpt_conformance::conformance_tests!(through_pgbouncer());
}

mod replica {
    use super::*;
    memgpt_conformance::conformance_tests!(with_replica());
}
