//! The pool's figures reach a `metrics` recorder (installed for the whole process, as an
//! exporter is: r2d2 opens connections on threads of its own). Alone in its test binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use memgpt_core::{DatabaseUrl, Error, Message, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::figures::labelled;
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use uuid::Uuid;

/// Every figure so far, as `name{label=value,…}` → value (a histogram: its samples), added
/// into `totals`: a snapshot of the debugging recorder hands over what moved since the last
/// one.
fn figures(snapshotter: &Snapshotter, totals: &mut BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let value = match value {
            DebugValue::Counter(n) => n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(h) => h.len() as f64,
        };
        *totals.entry(labelled(key.key())).or_default() += value;
    }
    totals.clone()
}

/// What `name` moved by from `before` to `after`.
fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, name: &str) -> f64 {
    after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
}

/// A pool of 2 with 1 overflow: three units of work hold three connections (one of them
/// overflow), a fourth call times out; when they let go the overflow connection closes.
/// Every step shows in the figures, exactly.
#[test]
fn the_pool_figures_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    (config.pool_size, config.max_overflow) = (2, 1);
    config.pool_timeout = Duration::from_secs(1);
    let store = PgStore::open(config).unwrap();
    let recall = store
        .connector::<Message>(
            TableType::RecallMemory,
            Scope::agent(Uuid::new_v4(), Uuid::new_v4()),
        )
        .unwrap();
    let mut totals = BTreeMap::new();
    let before = figures(&snapshotter, &mut totals);
    let pool = |name: &str| format!("memgpt_store_pool_{name}{{pool=postgres}}");
    assert_eq!(before.get(&pool("connections")), Some(&2.0), "{before:#?}");

    let totals = &mut totals;
    let (busy, timed_out) = std::thread::scope(|s| {
        // Inside the scope: a panic here drops the senders, and the holders end.
        let (held_tx, held) = mpsc::channel();
        let mut release = Vec::new();
        for _ in 0..3 {
            let (go, go_rx) = mpsc::channel::<()>();
            release.push(go);
            let (store, held_tx) = (&store, held_tx.clone());
            s.spawn(move || {
                store.transaction(|_| {
                    held_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    Ok(())
                })
            });
        }
        drop(held_tx);
        for _ in 0..3 {
            held.recv().unwrap();
        }
        let busy = figures(&snapshotter, totals);
        let timed_out = recall.size(&[]);
        // Let go before any assertion: a panic here would wait for the holders forever.
        for go in release.drain(..) {
            go.send(()).unwrap();
        }
        (busy, timed_out)
    });
    assert_eq!(
        [&pool("connections"), &pool("in_use"), &pool("overflow")].map(|k| busy.get(k)),
        [Some(&3.0), Some(&3.0), Some(&1.0)],
        "{busy:#?}"
    );
    assert!(matches!(timed_out, Err(Error::PoolTimeout { .. })));

    let after = figures(&snapshotter, totals);
    let table = "table=memgpt_recall_memory_agent";
    assert_eq!(
        [
            moved(&before, &after, &pool("opened_total")),
            moved(&before, &after, &pool("closed_total")),
            moved(&before, &after, &pool("timeouts_total")),
            moved(
                &before,
                &after,
                &format!("memgpt_store_calls_total{{op=size,outcome=PoolTimeout,{table}}}")
            ),
            moved(
                &before,
                &after,
                "memgpt_store_checkouts_total{outcome=PoolTimeout,pool=postgres}"
            ),
            moved(
                &before,
                &after,
                "memgpt_store_checkouts_total{outcome=ok,pool=postgres}"
            ),
        ],
        [1.0, 1.0, 1.0, 1.0, 1.0, 3.0],
        "{after:#?}"
    );
    assert_eq!(
        [
            &pool("connections"),
            &pool("in_use"),
            &pool("overflow"),
            &pool("waiting")
        ]
        .map(|k| after.get(k).copied()),
        [Some(2.0), Some(0.0), Some(0.0), Some(0.0)],
        "{after:#?}"
    );
}
