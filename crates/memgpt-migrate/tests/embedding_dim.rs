//! `run_url` builds the HNSW indexes at the dimension `MEMGPT_EMBEDDING_DIM` configures, as
//! the store looks for them. A test binary of its own: it sets the process environment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use memgpt_migrate::{postgres, Command};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};

#[test]
fn postgres_run_url_builds_the_hnsw_indexes_at_memgpt_embedding_dim() {
    std::env::set_var("MEMGPT_EMBEDDING_DIM", "8");
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    memgpt_migrate::run_url(db.url(), Command::Up).unwrap();
    let mut conn = db.connect().unwrap();
    assert_eq!(
        postgres::missing_hnsw(&mut conn, 8).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        postgres::missing_hnsw(&mut conn, 1536).unwrap(),
        [
            "memgpt_archival_memory_agent_embedding_hnsw_1536",
            "memgpt_passages_embedding_hnsw_1536"
        ]
    );

    // A malformed dimension is refused naming the variable, before anything is changed.
    std::env::set_var("MEMGPT_EMBEDDING_DIM", "4001");
    let fresh = TempDatabase::create(VECTOR_SERVER).unwrap();
    let e = memgpt_migrate::run_url(fresh.url(), Command::Up).unwrap_err();
    assert!(
        matches!(&e, memgpt_core::Error::Config { variable, value, .. }
            if variable == "MEMGPT_EMBEDDING_DIM" && value == "4001"),
        "{e:?}"
    );
    assert_eq!(
        postgres::pending(&mut fresh.connect().unwrap())
            .unwrap()
            .len(),
        9,
        "nothing migrated (of the nine migrations)"
    );
}
