//! The async facade under overload, alone in its test binary: it counts the process's
//! worker threads, which other tests' stores would add to.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use memgpt_core::asynchronous::AsyncStore;
use memgpt_core::{Message, Role, Scope, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use memgpt_testing::runtime::{peak_threads_named, CountedRuntime};
use uuid::Uuid;

fn message(user: Uuid, agent: Uuid, text: String) -> Message {
    Message::builder(user, agent, Role::User)
        .text(text)
        .build()
        .unwrap()
}

/// 2,000 writing tasks at once on one writer (and four readers), on a runtime of 2
/// workers: every write lands, and no more threads block than the store has connections
/// (the facade's workers never outnumber them; tokio starts no blocking thread) — before,
/// each task waiting for the writer held one of tokio's 512 blocking threads.
#[test]
fn two_thousand_writing_tasks_wait_without_a_thread_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("burst.db"));
    config.read_connections = 4;
    config.pool_timeout = std::time::Duration::from_secs(120);
    let store = AsyncStore::new(SqliteStore::open(config).unwrap());
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let recall = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let runtime = CountedRuntime::new(2).unwrap();
    let (written, workers) = peak_threads_named("memgpt-async", || {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..2_000)
                .map(|i| {
                    let recall = recall.clone();
                    tokio::spawn(async move {
                        recall.insert(message(user, agent, format!("m{i}"))).await
                    })
                })
                .collect();
            let mut written = 0u64;
            for t in tasks {
                t.await.unwrap().unwrap();
                written += 1;
            }
            written
        })
    })
    .unwrap();
    assert_eq!(written, 2_000);
    assert!(workers <= 5, "{workers} worker threads");
    assert_eq!(runtime.peak_blocking_threads(), 0);
    assert_eq!(runtime.block_on(recall.size(vec![])).unwrap(), 2_000);

    // A wrapper per request (of clones of the store) shares the store's places and
    // workers: 500 of them at once still run on at most 5 threads.
    let sync = store.store().clone();
    let (sizes, workers) = peak_threads_named("memgpt-async", || {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..500)
                .map(|_| {
                    let per_request = AsyncStore::new(sync.clone());
                    let recall = per_request
                        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
                        .unwrap();
                    tokio::spawn(async move { recall.size(vec![]).await })
                })
                .collect();
            let mut sizes = Vec::new();
            for t in tasks {
                sizes.push(t.await.unwrap().unwrap());
            }
            sizes
        })
    })
    .unwrap();
    assert!(sizes.iter().all(|&n| n == 2_000));
    assert!(workers <= 5, "{workers} worker threads");
}
