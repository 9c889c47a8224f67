//! The store itself: connection settings, MemGPT file compatibility, statistics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::sql_types::{Binary, Nullable, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_core::{Message, Record, Role, Scope, StorageConnector, TableType, ToolCall};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::SqliteStore;
use memgpt_sqlite::{JournalMode, Synchronous};
use uuid::Uuid;

#[test]
fn the_seeds_settings_are_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("a.db"))).unwrap();
    let s = store.settings().unwrap();
    assert_eq!(s.journal_mode, "wal");
    assert_eq!(s.synchronous, 1);
    assert_eq!(s.mmap_size, 268_435_456);
    assert_eq!(s.cache_size, -10_240);
    assert_eq!(s.temp_store, 2);
    assert_eq!(s.busy_timeout_ms, 5_000);
    assert_eq!(s.foreign_keys, 1);
}

#[test]
fn settings_are_overridable() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SqliteConfig::new(dir.path().join("a.db"));
    cfg.journal_mode = JournalMode::Delete;
    cfg.synchronous = Synchronous::Full;
    cfg.mmap_size = 0;
    let s = SqliteStore::open(cfg).unwrap().settings().unwrap();
    assert_eq!(
        (s.journal_mode.as_str(), s.synchronous, s.mmap_size),
        ("delete", 2, 0)
    );
}

#[test]
fn stats_report_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("a.db"))).unwrap();
    let (u, a) = (Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
        .unwrap();
    c.insert(
        &Message::builder(u, a, Role::User)
            .text("x")
            .build()
            .unwrap(),
    )
    .unwrap();
    let st = store.stats().unwrap();
    assert!(st.wal_bytes > 0, "{st:?}");
    assert!(st.db_bytes > 0, "{st:?}");
    assert!(st.connection_open && st.connection_idle, "{st:?}");
}

/// MemGPT 0.3.x's SQLite DDL for recall memory, as SQLAlchemy emitted it.
const MEMGPT_SQLITE_RECALL: &str = "CREATE TABLE memgpt_recall_memory_agent (
    id CHAR(36) NOT NULL, user_id CHAR(36) NOT NULL, agent_id CHAR(36) NOT NULL,
    role VARCHAR NOT NULL, text VARCHAR, model VARCHAR, name VARCHAR, tool_calls JSON,
    tool_call_id VARCHAR, embedding BLOB, embedding_dim BIGINT, embedding_model VARCHAR,
    created_at DATETIME, PRIMARY KEY (id));";

#[derive(QueryableByName)]
struct Raw {
    #[diesel(sql_type = Text)]
    created_at: String,
    #[diesel(sql_type = Nullable<Text>)]
    tool_calls: Option<String>,
    #[diesel(sql_type = Nullable<Binary>)]
    embedding: Option<Vec<u8>>,
}

#[test]
fn a_memgpt_created_file_is_read_and_written_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sqlite.db");
    let (user, agent) = (
        Uuid::parse_str("00000000-0000-0000-0000-0000000000aa").unwrap(),
        Uuid::parse_str("00000000-0000-0000-0000-0000000000bb").unwrap(),
    );
    // A row exactly as MemGPT 0.3.x wrote it: str(uuid), SQLAlchemy's DATETIME text,
    // tool_calls as vars(ToolCall), embedding as base64 of the float32 bytes padded to
    // 4096 (here: [1.0, 2.0] + zeros).
    let mut raw = vec![0u8; 4096 * 4];
    raw[0..4].copy_from_slice(&1.0f32.to_le_bytes());
    raw[4..8].copy_from_slice(&2.0f32.to_le_bytes());
    use base64_encode::encode;
    {
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        conn.batch_execute(MEMGPT_SQLITE_RECALL).unwrap();
        diesel::sql_query(
            "INSERT INTO memgpt_recall_memory_agent VALUES (
             '00000000-0000-0000-0000-000000000001', ?, ?, 'assistant', 'hello from memgpt',
             'gpt-4', NULL,
             '[{\"id\": \"call_1\", \"tool_call_type\": \"function\", \"function\": {\"name\": \"send_message\", \"arguments\": \"{}\"}}]',
             NULL, ?, 2, 'text-embedding-ada-002', '2024-03-01 12:30:45.123456')",
        )
        .bind::<Text, _>(user.to_string())
        .bind::<Text, _>(agent.to_string())
        .bind::<Binary, _>(encode(&raw).into_bytes())
        .execute(&mut conn)
        .unwrap();
    }
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let c = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let got = c.get(Uuid::from_u128(1)).unwrap().expect("MemGPT's row");
    let want = Message::builder(user, agent, Role::Assistant)
        .id(Uuid::from_u128(1))
        .text("hello from memgpt")
        .model("gpt-4")
        .tool_calls(vec![ToolCall::function("call_1", "send_message", "{}")])
        .embedding(vec![1.0, 2.0], "text-embedding-ada-002")
        .created_at(
            Utc.with_ymd_and_hms(2024, 3, 1, 12, 30, 45).unwrap()
                + chrono::Duration::microseconds(123_456),
        )
        .build()
        .unwrap();
    assert_eq!(got, want);
    // The FTS index was built over the existing row by the migration.
    assert_eq!(c.query_text("memgpt", None, 0).unwrap(), vec![want.clone()]);
    // What this library writes, MemGPT reads: the same encodings.
    let mine = want.to_builder().id(Uuid::from_u128(2)).build().unwrap();
    c.insert(&mine).unwrap();
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let rows: Vec<Raw> = diesel::sql_query(
        "SELECT created_at, tool_calls, embedding FROM memgpt_recall_memory_agent \
         WHERE id = '00000000-0000-0000-0000-000000000002'",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(rows[0].created_at, "2024-03-01 12:30:45.123456");
    let calls: serde_json::Value =
        serde_json::from_str(rows[0].tool_calls.as_deref().unwrap()).unwrap();
    assert_eq!(
        calls,
        serde_json::json!([{"id": "call_1", "tool_call_type": "function",
                            "function": {"name": "send_message", "arguments": "{}"}}])
    );
    // In MemGPT's key order (`vars(ToolCall)`: id, tool_call_type, function), not sorted.
    assert_eq!(
        rows[0].tool_calls.as_deref(),
        Some(
            r#"[{"id":"call_1","tool_call_type":"function","function":{"name":"send_message","arguments":"{}"}}]"#
        )
    );
    assert_eq!(rows[0].embedding.as_deref(), Some(encode(&raw).as_bytes()));
}

/// Standard base64, written out here so the test does not lean on the crate under test.
mod base64_encode {
    pub fn encode(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[test]
fn a_held_writer_times_out_other_writers_with_the_pool_state_while_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SqliteConfig::new(dir.path().join("a.db"));
    cfg.pool_timeout = std::time::Duration::from_secs(1);
    let store = SqliteStore::open(cfg).unwrap();
    let (u, a) = (Uuid::new_v4(), Uuid::new_v4());
    let barrier = std::sync::Barrier::new(2);
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(|| {
            let wait_done = wait_done;
            store
                .transaction(|_tx| {
                    barrier.wait();
                    wait_done.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        barrier.wait();
        let c = store
            .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
            .unwrap();
        // Reads use their own connections: the held writer does not stop them.
        assert_eq!(c.size(&[]).unwrap(), 0);
        let m = Message::builder(u, a, Role::User)
            .text("x")
            .build()
            .unwrap();
        match c.insert(&m) {
            Err(memgpt_core::Error::PoolTimeout { waited, state }) => {
                assert!(
                    waited >= std::time::Duration::from_millis(900),
                    "{waited:?}"
                );
                assert_eq!((state.connections, state.idle, state.max), (1, 0, 1));
            }
            other => panic!("expected a pool timeout, got {other:?}"),
        }
        done.send(()).unwrap();
    });
    // Once the holder is done, the store works again.
    let c = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
        .unwrap();
    let m = Message::builder(u, a, Role::User)
        .text("x")
        .build()
        .unwrap();
    c.insert(&m).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
    let mut cfg = SqliteConfig::new(&path);
    cfg.pool_timeout = std::time::Duration::from_secs(1);
    let err = SqliteStore::open(cfg).unwrap_err();
    assert!(
        matches!(
            err,
            memgpt_core::Error::ConnectionLost { .. } | memgpt_core::Error::Migration { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[test]
fn a_write_lock_held_by_another_store_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let holder = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let mut cfg = SqliteConfig::new(&path);
    cfg.busy_timeout = std::time::Duration::from_millis(100);
    let other = SqliteStore::open(cfg).unwrap();
    let (u, a) = (Uuid::new_v4(), Uuid::new_v4());
    let scope = Scope::agent(u, a);
    let m = Message::builder(u, a, Role::User)
        .text("x")
        .build()
        .unwrap();
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            holder
                .transaction(|tx| {
                    tx.connector::<Message>(TableType::RecallMemory, scope)?
                        .insert(&m)?;
                    barrier.wait();
                    // Holds the lock until the other store has been refused.
                    barrier.wait();
                    Ok(())
                })
                .unwrap();
        });
        barrier.wait();
        let c = other
            .connector::<Message>(TableType::RecallMemory, scope)
            .unwrap();
        let err = c
            .insert(
                &Message::builder(u, a, Role::User)
                    .text("y")
                    .build()
                    .unwrap(),
            )
            .unwrap_err();
        barrier.wait();
        assert!(matches!(err, memgpt_core::Error::Busy { .. }), "{err:?}");
    });
    // Once the holder committed, the other store writes and sees its row.
    let c = other
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    c.insert(
        &Message::builder(u, a, Role::User)
            .text("z")
            .build()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(c.size(&[]).unwrap(), 2);
}

/// `connect` changes nothing: it creates no file, runs no migration, and explains through
/// read-only connections.
#[test]
fn connect_opens_an_existing_database_without_changing_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let e = SqliteStore::connect(SqliteConfig::new(&missing)).unwrap_err();
    assert!(
        matches!(e, memgpt_core::Error::ConnectionLost { .. }),
        "{e}"
    );
    assert!(!missing.exists(), "no file was created");

    let empty = dir.path().join("empty.db");
    drop(SqliteConnection::establish(empty.to_str().unwrap()).unwrap());
    let e = SqliteStore::connect(SqliteConfig::new(&empty)).unwrap_err();
    assert!(e.to_string().contains("migrate up"), "{e}");
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let tables: Vec<N> = diesel::sql_query("SELECT count(*) AS n FROM sqlite_master")
        .load(&mut SqliteConnection::establish(empty.to_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(tables[0].n, 0, "no migration ran");

    let path = dir.path().join("m.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).unwrap());
    let store = SqliteStore::connect(SqliteConfig::new(&path)).unwrap();
    let (u, a) = (Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
        .unwrap();
    assert!(!c.explain().unwrap().is_empty());
    assert_eq!(c.size(&[]).unwrap(), 0);
}

/// The statements each connection of this process keeps in diesel's cache, counted from
/// diesel's `CacheQuery` event (SQLite offers no list of a connection's statements without
/// `SQLITE_ENABLE_STMTVTAB`, which the bundled build lacks): one entry per connection, with
/// the URL it was opened on.
static CACHED: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

/// A connection's [`CACHED`] entry.
struct CacheCounter(Option<usize>);

impl diesel::connection::Instrumentation for CacheCounter {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent;
        let mut cached = CACHED.lock().unwrap();
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                cached.push((url.to_owned(), 0));
                self.0 = Some(cached.len() - 1);
            }
            InstrumentationEvent::CacheQuery { .. } => {
                if let Some(i) = self.0 {
                    cached[i].1 += 1;
                }
            }
            _ => {}
        }
    }
}

/// The statements kept by the connections opened on a path containing `path`.
fn cached_on(path: &str) -> usize {
    CACHED
        .lock()
        .unwrap()
        .iter()
        .filter(|(url, _)| url.contains(path))
        .map(|(_, n)| n)
        .sum()
}

/// Statements whose text varies with a number of values — the multi-row `INSERT` of a
/// chunk, the `IN (…)` lookups of the ids already in the table (of a one-chunk call, and
/// of the multi-chunk path's chunks) — are never kept in a connection's statement cache:
/// 1,000 calls of sizes 1 to 1,000 (a batch written, a batch refused on an existing id, a
/// batch refused on a repeated id, in turn; above 500 records, in chunks) leave exactly the
/// statements the first calls of each path left. Reads are still kept: a new read shape
/// adds one, and running it again adds none.
#[test]
fn cached_statements_stay_bounded_whatever_the_batch_sizes() {
    diesel::connection::set_default_instrumentation(|| Some(Box::new(CacheCounter(None)))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let mut cfg = SqliteConfig::new(&path);
    cfg.read_connections = 1;
    let store = SqliteStore::open(cfg).unwrap();
    let path = path.to_str().unwrap().to_owned();
    let scope = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    let message = |text: String| {
        Message::builder(scope.user_id(), scope.agent_id().unwrap(), Role::User)
            .text(text)
            .build()
            .unwrap()
    };
    let taken = message("taken".to_owned());
    c.insert(&taken).unwrap();
    let call = |n: usize| {
        let mut records: Vec<Message> = (0..n).map(|i| message(format!("{n}/{i}"))).collect();
        match n % 3 {
            0 => assert_eq!(c.insert_many(records, false).unwrap(), n as u64),
            1 => {
                records[n - 1] = taken.clone();
                let e = c.insert_many(records, false).unwrap_err();
                assert!(
                    matches!(e, memgpt_core::Error::AlreadyExists { id, .. } if id == taken.id()),
                    "{e:?}"
                );
            }
            _ => {
                records[n - 1] = records[0].clone();
                let e = c.insert_many(records, false).unwrap_err();
                assert!(
                    matches!(e, memgpt_core::Error::DuplicateId { first: 0, second, .. }
                        if second == n - 1),
                    "{e:?}"
                );
            }
        }
    };
    // Each kind of call, in one chunk and in chunks of 500 (the multi-chunk path).
    let first: Vec<usize> = (1..=6).chain(501..=506).collect();
    for &n in &first {
        call(n);
    }
    let fixed = cached_on(&path);
    assert!(fixed > 0);
    for n in (1..=1_000).filter(|n| !first.contains(n)) {
        call(n);
    }
    assert_eq!(cached_on(&path), fixed);
    // Reads are kept, once per shape (one read connection): each new one adds one,
    // running it again none.
    let written: u64 = (1..=1_000u64).filter(|n| n % 3 == 0).sum::<u64>() + 1;
    for _ in 0..2 {
        assert_eq!(c.size(&[]).unwrap(), written);
        assert_eq!(cached_on(&path), fixed + 1);
    }
    for _ in 0..2 {
        assert_eq!(c.get_all(&[], Some(5)).unwrap().len(), 5);
        assert_eq!(cached_on(&path), fixed + 2);
    }
    // Writes are prepared for each call, one record's too: an update and a delete by one
    // filter add none.
    for i in 0..2 {
        let changed = taken
            .to_builder()
            .text(format!("taken {i}"))
            .build()
            .unwrap();
        c.update(&changed).unwrap();
        let tool = memgpt_core::Filter::eq(memgpt_core::Column::Role, "tool");
        assert_eq!(c.delete(&[tool]).unwrap(), 0);
        assert_eq!(cached_on(&path), fixed + 2);
    }
}

/// Records another writer left without a `created_at` are neither counted nor removed by
/// `KeepNewest` (as on PostgreSQL); the dated records are pruned around them.
#[test]
fn keep_newest_leaves_records_without_created_at_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let (user, agent) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    for g in 1..=6 {
        let created = if g < 3 {
            "NULL".to_owned()
        } else {
            format!("'2024-01-01 00:00:0{g}'")
        };
        conn.batch_execute(&format!(
            "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at) \
             VALUES ('00000000-0000-0000-0000-00000000000{g}', '{user}', '{agent}', 'user', 'm', {created})"
        ))
        .unwrap();
    }
    let c = store
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let pruned = c
        .prune(&memgpt_core::retention::Retention::KeepNewest(1), 10)
        .unwrap();
    assert_eq!(pruned.deleted, 3, "records 3, 4, 5 go; 6 is the newest");
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: Vec<N> = diesel::sql_query("SELECT count(*) AS n FROM memgpt_recall_memory_agent")
        .load(&mut conn)
        .unwrap();
    assert_eq!(n[0].n, 3);
}
