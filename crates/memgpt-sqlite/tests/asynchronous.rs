//! The async facade on a real SQLite file: many tasks at once, a panic, a dropped future.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;

use memgpt_core::asynchronous::AsyncStore;
use memgpt_core::{Column, Filter, Message, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn message(user: Uuid, agent: Uuid, text: String) -> Message {
    Message::builder(user, agent, Role::User)
        .text(text)
        .build()
        .unwrap()
}

#[test]
fn fifty_tasks_write_and_read_through_the_facade() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        AsyncStore::new(SqliteStore::open(SqliteConfig::new(dir.path().join("a.db"))).unwrap());
    let user = Uuid::new_v4();
    let agents: Vec<Uuid> = (0..50).map(|_| Uuid::new_v4()).collect();
    runtime().block_on(async {
        let tasks: Vec<_> = agents
            .iter()
            .map(|&agent| {
                let recall = store
                    .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
                    .unwrap();
                tokio::spawn(async move {
                    let batch = (0..20)
                        .map(|i| message(user, agent, format!("note {i} about apples")))
                        .collect();
                    assert_eq!(recall.insert_many(batch, false).await.unwrap(), 20);
                    recall
                        .insert(message(user, agent, "one more pear".into()))
                        .await
                        .unwrap();
                    assert_eq!(recall.size(vec![]).await.unwrap(), 21);
                    assert_eq!(recall.get_all(vec![], Some(5)).await.unwrap().len(), 5);
                    assert_eq!(
                        recall
                            .query_text("pear".into(), None, 0)
                            .await
                            .unwrap()
                            .len(),
                        1
                    );
                    let role = |r: &str| vec![Filter::eq(Column::Role, r)];
                    let apples = |r| recall.query_text_with("apples".into(), role(r), None, 0);
                    assert_eq!(apples("user").await.unwrap().len(), 20);
                    assert_eq!(apples("assistant").await.unwrap().len(), 0);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    // Every write is there, seen through the synchronous API.
    let total: u64 = agents
        .iter()
        .map(|&a| {
            store
                .store()
                .connector::<Message>(TableType::RecallMemory, Scope::agent(user, a))
                .unwrap()
                .size(&[])
                .unwrap()
        })
        .sum();
    assert_eq!(total, 50 * 21);
}

#[test]
fn a_wrong_table_is_refused_at_once_and_a_panic_reaches_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        AsyncStore::new(SqliteStore::open(SqliteConfig::new(dir.path().join("p.db"))).unwrap());
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    assert!(matches!(
        store.connector::<Message>(TableType::ArchivalMemory, Scope::agent(user, agent)),
        Err(memgpt_core::Error::InvalidInput { .. })
    ));
    let rt = runtime();
    let s = store.clone();
    let joined = rt.block_on(rt.spawn(async move {
        s.interact(|_| -> memgpt_core::Result<()> { panic!("inside the blocking call") })
            .await
    }));
    assert!(joined.unwrap_err().is_panic());
    // A call runs in the runtime's context, as on tokio's blocking pool.
    let s = store.clone();
    let inside = rt.block_on(async move {
        s.interact(|_| {
            tokio::runtime::Handle::try_current()
                .map(drop)
                .map_err(|e| memgpt_core::Error::database(e.to_string()))
        })
        .await
    });
    assert!(inside.is_ok(), "{inside:?}");
}

/// A future dropped while its call runs does not cancel the call: the write commits whole.
#[test]
fn a_dropped_future_lets_its_write_finish() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        AsyncStore::new(SqliteStore::open(SqliteConfig::new(dir.path().join("d.db"))).unwrap());
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let scope = Scope::agent(user, agent);
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel::<()>();
    let (done_tx, done) = mpsc::channel();
    let rt = runtime();
    let s = store.clone();
    let task = rt.spawn(async move {
        s.interact(move |store| {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            let recall = store.connector::<Message>(TableType::RecallMemory, scope)?;
            let n = recall.insert_many(
                (0..5_000).map(|i| message(user, agent, format!("m{i}"))),
                false,
            );
            done_tx.send(()).unwrap();
            n
        })
        .await
    });
    started.recv().unwrap();
    task.abort();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    go.send(()).unwrap();
    done.recv().unwrap();
    let recall = store
        .store()
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    assert_eq!(recall.size(&[]).unwrap(), 5_000);
}

/// `get_page` walks an agent's history in keyset pages from async code, as the
/// synchronous connector does: every record once, oldest first.
#[test]
fn async_pages_walk_the_whole_history_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        AsyncStore::new(SqliteStore::open(SqliteConfig::new(dir.path().join("p.db"))).unwrap());
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let recall = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let start = chrono::DateTime::from_timestamp(1_704_067_200, 0).unwrap();
    let all: Vec<Message> = (0..25)
        .map(|i| {
            Message::builder(user, agent, Role::User)
                .text(format!("note {i}"))
                .created_at(start + chrono::Duration::seconds(i))
                .build()
                .unwrap()
        })
        .collect();
    runtime().block_on(async {
        recall.insert_many(all.clone(), false).await.unwrap();
        let (mut seen, mut after) = (Vec::new(), None);
        loop {
            let page = recall.get_page(vec![], after, 10).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(memgpt_core::Record::keyset(last));
            seen.extend(page);
        }
        assert_eq!(seen, all);
    });
}

/// A store of two places (one reader, the writer): a call whose future is dropped while it
/// waits for a place never runs, and a call that panics gives its place back.
#[test]
fn a_call_dropped_while_waiting_never_runs_and_a_panic_gives_its_place_back() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("w.db"));
    config.read_connections = 1;
    // A place lost for good shows at once as a timeout.
    config.pool_timeout = std::time::Duration::from_secs(1);
    let store = AsyncStore::new(SqliteStore::open(config).unwrap());
    let (user, agent) = (Uuid::new_v4(), Uuid::new_v4());
    let scope = Scope::agent(user, agent);
    let recall = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    let rt = runtime();
    // Both places held by calls that wait for a word from the test.
    let (started_tx, started) = mpsc::channel();
    let mut release = Vec::new();
    let mut holders = Vec::new();
    for _ in 0..2 {
        let (go, go_rx) = mpsc::channel::<()>();
        let started_tx = started_tx.clone();
        release.push(go);
        let s = store.clone();
        holders.push(rt.spawn(async move {
            s.interact(move |_| {
                started_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                Ok(())
            })
            .await
        }));
    }
    started.recv().unwrap();
    started.recv().unwrap();
    rt.block_on(async {
        let mut waiting = std::pin::pin!(recall.insert(message(user, agent, "never".into())));
        let poll = waiting
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        assert!(matches!(poll, Poll::Pending));
    });
    for go in release {
        go.send(()).unwrap();
    }
    for h in holders {
        rt.block_on(h).unwrap().unwrap();
    }
    for _ in 0..3 {
        let s = store.clone();
        let joined = rt.block_on(rt.spawn(async move {
            s.interact(|_| -> memgpt_core::Result<()> { panic!("inside the call") })
                .await
        }));
        assert!(joined.unwrap_err().is_panic());
    }
    // Both places free again; the dropped call wrote nothing.
    assert_eq!(rt.block_on(recall.size(vec![])).unwrap(), 0);
}
