//! The fault matrix on SQLite (docs/RELIABILITY.md): another writer holding the lock,
//! reads during a long write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use memgpt_core::{Error, Message, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

fn message(s: &Scope, i: usize) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(format!("message {i}"))
        .build()
        .unwrap()
}

/// Row 15: another connection (as another process would) holds `BEGIN IMMEDIATE`: a write
/// gets `Error::Busy` after the 5 s busy timeout, never hangs, and succeeds once the lock
/// is released.
#[test]
fn another_writer_holding_the_lock_gives_busy_after_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let mut other = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    other.batch_execute("BEGIN IMMEDIATE;").unwrap();
    let start = Instant::now();
    let e = c.insert(&message(&s, 0)).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(e, Error::Busy { .. }), "{e:?}");
    assert!(
        waited >= Duration::from_millis(4_500) && waited <= Duration::from_millis(5_500),
        "{waited:?}"
    );
    other.batch_execute("ROLLBACK;").unwrap();
    c.insert(&message(&s, 1)).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

/// Row 27: while one `insert_many` holds the writer (its iterator waits until the readers
/// are done, so the write is in progress throughout), 8 threads read: every read is
/// served, none waits for the writer.
#[test]
fn reads_are_served_while_a_long_write_holds_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("wal.db"))).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert_many((0..100).map(|i| message(&s, i)), false)
        .unwrap();
    let (started, write_started) = mpsc::channel::<()>();
    let (reads_done, wait_reads) = mpsc::channel::<()>();
    let counts = std::thread::scope(|sc| {
        let writer = sc.spawn(|| {
            let wait_reads = wait_reads;
            let started = started;
            let writer = store
                .connector::<Message>(TableType::RecallMemory, s)
                .unwrap();
            // 600 records: the first chunk of 500 is written, then the iterator waits.
            let lazy = (100..700).map(move |i| {
                if i == 600 {
                    started.send(()).unwrap();
                    wait_reads
                        .recv_timeout(Duration::from_secs(20))
                        .expect("the readers finished");
                }
                message(&s, i)
            });
            writer.insert_many(lazy, false)
        });
        write_started
            .recv_timeout(Duration::from_secs(20))
            .expect("the write started");
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let store = &store;
                sc.spawn(move || {
                    let r = store
                        .connector::<Message>(TableType::RecallMemory, s)
                        .unwrap();
                    r.size(&[]).unwrap()
                })
            })
            .collect();
        let counts: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        reads_done.send(()).unwrap();
        assert_eq!(writer.join().unwrap().unwrap(), 600);
        counts
    });
    // Every reader saw the committed 100 rows, none of the write in progress.
    assert_eq!(counts, vec![100; 8]);
    assert_eq!(c.size(&[]).unwrap(), 700);
}

/// Row 17: a reader left open while 100,000 rows are written pins the write-ahead log
/// (it grows, and `stats()` shows it); once the reader closes, `checkpoint()` brings it
/// back to 0 bytes.
#[test]
fn a_checkpoint_after_a_long_reader_closes_truncates_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, 0)).unwrap();
    let mut reader = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM memgpt_recall_memory_agent;")
        .unwrap();
    c.insert_many((1..100_001).map(|i| message(&s, i)), false)
        .unwrap();
    let pinned = store.checkpoint().unwrap();
    assert!(
        pinned.wal_bytes > 4 * 1024 * 1024,
        "the open reader pins the log: {} bytes",
        pinned.wal_bytes
    );
    reader.batch_execute("COMMIT;").unwrap();
    drop(reader);
    assert_eq!(store.checkpoint().unwrap().wal_bytes, 0);
    assert_eq!(c.size(&[]).unwrap(), 100_001);
}
