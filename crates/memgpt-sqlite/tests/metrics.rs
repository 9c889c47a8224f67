//! The figures of `memgpt_core::telemetry` reach a `metrics` recorder: calls by table,
//! operation and outcome with their durations, checkouts by pool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use memgpt_core::{Error, Message, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use memgpt_testing::figures::labelled;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use uuid::Uuid;

/// The recorded figures as `name{label=value,…} kind value` lines, sorted.
fn lines(recorder: &DebuggingRecorder) -> Vec<String> {
    let mut out: Vec<String> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, name) = (key.kind(), labelled(key.key()));
            let value = match value {
                DebugValue::Counter(n) => format!("{n}"),
                DebugValue::Gauge(g) => format!("{}", g.into_inner()),
                DebugValue::Histogram(h) => format!("{} samples", h.len()),
            };
            format!("{name} {kind:?} {value}")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn calls_and_checkouts_are_counted_by_table_operation_outcome_and_pool() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("m.db"));
    config.pool_timeout = std::time::Duration::from_secs(1);
    let store = SqliteStore::open(config).unwrap();
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let recall = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        let m = Message::builder(user, agent, Role::User)
            .text("hello")
            .build()
            .unwrap();
        recall.insert(&m).unwrap();
        for text in ["a", "b"] {
            let other = Message::builder(user, agent, Role::User)
                .text(text)
                .build()
                .unwrap();
            recall.insert(&other).unwrap();
        }
        let never = Message::builder(user, agent, Role::User)
            .text("never stored")
            .build()
            .unwrap();
        assert!(matches!(recall.update(&never), Err(Error::NotFound { .. })));
        assert_eq!(recall.get_all(&[], None).unwrap().len(), 3);
        // The writer held by a unit of work on another thread: a write's checkout times out.
        let (held_tx, held) = std::sync::mpsc::channel();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let store = &store;
            s.spawn(move || {
                store.transaction(|_| {
                    held_tx.send(()).unwrap();
                    // Released when the sender drops.
                    let _ = done.recv();
                    Ok(())
                })
            });
            held.recv().unwrap();
            let timed_out = recall.delete(&[]);
            // Let go before asserting: a panic here would wait for the holder forever.
            drop(done_tx);
            assert!(matches!(timed_out, Err(Error::PoolTimeout { .. })));
        });
    });
    let t = "table=memgpt_recall_memory_agent";
    let want: Vec<String> = [
        format!("memgpt_store_call_duration_seconds{{op=delete,{t}}} Histogram 1 samples"),
        format!("memgpt_store_call_duration_seconds{{op=get_all,{t}}} Histogram 1 samples"),
        format!("memgpt_store_call_duration_seconds{{op=insert,{t}}} Histogram 3 samples"),
        format!("memgpt_store_call_duration_seconds{{op=update,{t}}} Histogram 1 samples"),
        format!("memgpt_store_calls_total{{op=delete,outcome=PoolTimeout,{t}}} Counter 1"),
        format!("memgpt_store_calls_total{{op=get_all,outcome=ok,{t}}} Counter 1"),
        format!("memgpt_store_calls_total{{op=insert,outcome=ok,{t}}} Counter 3"),
        format!("memgpt_store_calls_total{{op=update,outcome=NotFound,{t}}} Counter 1"),
        "memgpt_store_checkout_wait_seconds{pool=sqlite-readers} Histogram 1 samples".into(),
        "memgpt_store_checkout_wait_seconds{pool=sqlite-writer} Histogram 5 samples".into(),
        "memgpt_store_checkouts_total{outcome=PoolTimeout,pool=sqlite-writer} Counter 1".into(),
        "memgpt_store_checkouts_total{outcome=ok,pool=sqlite-readers} Counter 1".into(),
        "memgpt_store_checkouts_total{outcome=ok,pool=sqlite-writer} Counter 4".into(),
    ]
    .into();
    assert_eq!(lines(&recorder), want);
}
