//! The async facade under overload, alone in its test binary (it counts the process's
//! worker threads): tasks past the pool's size wait without a thread.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{mpsc, Arc, RwLock};
use std::time::Duration;

use memgpt_core::asynchronous::AsyncStore;
use memgpt_core::{DatabaseUrl, Error, Message, Role, Scope, TableType};
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::runtime::{peak_threads_named, CountedRuntime};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

const TASKS: usize = 2_000;
const POOL: u32 = 5;
/// The name of the facade's worker threads.
const WORKERS: &str = "memgpt-async";

fn store(db: &TempDatabase, pool_timeout: Duration) -> PgStore {
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = POOL;
    config.max_overflow = 0;
    config.pool_timeout = pool_timeout;
    PgStore::open(config).unwrap()
}

fn message(scope: Scope, i: usize) -> Message {
    Message::builder(scope.user_id(), scope.agent_id().unwrap(), Role::User)
        .text(format!("task {i}"))
        .build()
        .unwrap()
}

/// 2,000 tasks at once on a pool of 5 without overflow, on a runtime of 2 workers: while
/// units of work on other threads hold every connection, each task ends in
/// `Error::PoolTimeout` after the pool timeout; once they let go, each ends in success;
/// and no more threads block than the pool has connections: the facade's workers never
/// outnumber them and tokio starts no blocking thread at all — before, every waiting task
/// held one of tokio's 512 blocking threads.
#[test]
fn two_thousand_tasks_on_a_pool_of_five_wait_without_a_thread_each() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let scope = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let runtime = CountedRuntime::new(2).unwrap();

    // 1. Every connection held elsewhere: all time out, none hangs.
    let held = store(&db, Duration::from_secs(1));
    let release = Arc::new(RwLock::new(()));
    let closed = release.write().unwrap();
    let (holding_tx, holding) = mpsc::channel();
    let holders: Vec<_> = (0..POOL)
        .map(|_| {
            let (store, release, holding_tx) = (held.clone(), release.clone(), holding_tx.clone());
            std::thread::spawn(move || {
                store.transaction(|_| {
                    holding_tx.send(()).unwrap();
                    drop(release.read().unwrap());
                    Ok(())
                })
            })
        })
        .collect();
    // Only the holders hold senders now: one that fails fails the test, not hangs it.
    drop(holding_tx);
    for _ in 0..POOL {
        holding.recv().unwrap();
    }
    let recall = AsyncStore::new(held.clone())
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    runtime.reset();
    let (results, workers) = peak_threads_named(WORKERS, || {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|_| {
                    let recall = recall.clone();
                    tokio::spawn(async move { recall.size(vec![]).await })
                })
                .collect();
            let mut results = Vec::with_capacity(TASKS);
            for t in tasks {
                results.push(t.await.unwrap());
            }
            results
        })
    })
    .unwrap();
    let timeouts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::PoolTimeout { .. })))
        .count();
    assert_eq!(timeouts, TASKS, "{:?}", results.iter().find(|r| r.is_ok()));
    assert!(workers <= POOL as usize, "{workers} worker threads");
    assert_eq!(runtime.peak_blocking_threads(), 0);
    drop(closed);
    for h in holders {
        h.join().unwrap().unwrap();
    }

    // 2. The pool free: every task succeeds, still on as few threads.
    let free = AsyncStore::new(store(&db, Duration::from_secs(120)));
    let recall = free
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    runtime.reset();
    // The first phase's workers (of the other store) stay alive a while, idle.
    let before = memgpt_testing::runtime::threads_named(WORKERS).unwrap();
    let (written, workers) = peak_threads_named(WORKERS, || {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| {
                    let recall = recall.clone();
                    tokio::spawn(async move { recall.insert(message(scope, i)).await })
                })
                .collect();
            let mut written = 0;
            for t in tasks {
                t.await.unwrap().unwrap();
                written += 1;
            }
            written
        })
    })
    .unwrap();
    assert_eq!(written, TASKS);
    assert!(
        workers.saturating_sub(before) <= POOL as usize,
        "{workers} worker threads, {before} before"
    );
    assert_eq!(runtime.peak_blocking_threads(), 0);
    let n = runtime.block_on(recall.size(vec![])).unwrap();
    assert_eq!(n, TASKS as u64);
}
