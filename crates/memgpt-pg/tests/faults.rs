//! The fault matrix on PostgreSQL (docs/RELIABILITY.md): killed connections, an exhausted
//! pool, a panic inside a unit of work, a statement past its timeout. Faults are real:
//! `pg_terminate_backend`, locks held by another session, threads that hold connections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The test configuration of the matrix: connection timeout 3 s, pool of 5, statement
/// timeout 2 s; a unique application name to find the pool's sessions by.
fn config(db: &TempDatabase) -> (PgConfig, String) {
    let app = format!("memgpt-faults-{}", Uuid::new_v4().simple());
    let mut c = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    c.application_name = app.clone();
    c.connect_timeout = Duration::from_secs(3);
    c.pool_size = 5;
    c.max_overflow = 0;
    c.statement_timeout = Duration::from_secs(2);
    (c, app)
}

fn pids(admin: &mut PgConnection, app: &str, state: Option<&str>) -> BTreeSet<i32> {
    let rows: Vec<Pid> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
         AND ($2 = '' OR state = $2)",
    )
    .bind::<Text, _>(app)
    .bind::<Text, _>(state.unwrap_or(""))
    .load(admin)
    .unwrap();
    rows.into_iter().map(|p| p.pid).collect()
}

/// Polls the server until `done` holds (a handshake with the server, not a sleep of a
/// guessed length); fails after 30 s.
fn until(admin: &mut PgConnection, app: &str, done: impl Fn(&BTreeSet<i32>) -> bool) {
    let start = Instant::now();
    while !done(&pids(admin, app, None)) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out polling pg_stat_activity"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn message(s: &Scope, text: &str) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

/// 2 x the pool's 5 connections: 10 writes, each of which must succeed.
fn twice_the_pool_succeeds(store: &PgStore) {
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    for i in 0..10 {
        c.insert(&message(&s, &format!("write {i}"))).unwrap();
    }
    assert_eq!(c.size(&[]).unwrap(), 10);
}

/// Opens `n` connections of `store`'s pool: `n` units of work at once, each waiting for
/// the others (a barrier) before it ends.
fn fill(store: &PgStore, n: usize) {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        for _ in 0..n {
            s.spawn(|| {
                store
                    .transaction(|_| {
                        barrier.wait();
                        Ok(())
                    })
                    .unwrap();
            });
        }
    });
}

/// Row 3: every pooled connection is terminated; the next 2 x pool-size operations all
/// succeed (each checkout pings its connection and replaces a dead one).
#[test]
fn every_pooled_connection_terminated_then_the_next_operations_succeed() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let (config, app) = config(&db);
    let store = PgStore::open(config).unwrap();
    let mut admin = db.connect().unwrap();
    // Connections open on demand: five callers at once open the pool's five, which stay.
    fill(&store, 5);
    until(&mut admin, &app, |p| p.len() == 5);
    let before = pids(&mut admin, &app, None);
    for pid in &before {
        diesel::sql_query("SELECT pg_terminate_backend($1)")
            .bind::<Integer, _>(*pid)
            .execute(&mut admin)
            .unwrap();
    }
    until(&mut admin, &app, |p| p.is_disjoint(&before) || p.is_empty());
    twice_the_pool_succeeds(&store);
    assert!(pids(&mut admin, &app, None).is_disjoint(&before));
}

/// Row 4: a pool of 5 and 200 threads each holding a connection 50 ms: no deadlock, never
/// more than 5 server connections, and every call succeeds or gets `PoolTimeout`.
#[test]
fn two_hundred_threads_on_a_pool_of_five_succeed_or_time_out() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let (mut config, app) = config(&db);
    config.pool_timeout = Duration::from_secs(2);
    let store = PgStore::open(config).unwrap();
    let done = AtomicBool::new(false);
    let peak = AtomicI64::new(0);
    let (ok, timeouts) = std::thread::scope(|sc| {
        sc.spawn(|| {
            let mut admin = db.connect().unwrap();
            while !done.load(Ordering::Relaxed) {
                let n: Vec<Count> = diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind::<Text, _>(&app)
                .load(&mut admin)
                .unwrap();
                peak.fetch_max(n[0].n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let workers: Vec<_> = (0..200)
            .map(|_| {
                let store = &store;
                sc.spawn(move || {
                    store.transaction(|_| {
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(())
                    })
                })
            })
            .collect();
        let mut ok = 0;
        let mut timeouts = 0;
        for w in workers {
            match w.join().unwrap() {
                Ok(()) => ok += 1,
                Err(Error::PoolTimeout { .. }) => timeouts += 1,
                Err(other) => panic!("expected success or a pool timeout, got {other:?}"),
            }
        }
        done.store(true, Ordering::Relaxed);
        (ok, timeouts)
    });
    assert_eq!(ok + timeouts, 200);
    assert!(ok >= 5, "{ok} succeeded");
    assert!(
        peak.load(Ordering::Relaxed) <= 5,
        "peak {}",
        peak.load(Ordering::Relaxed)
    );
}

/// Row 5: a panic inside a unit of work on a worker thread: the row is absent, that
/// connection is discarded (its server session ends), and no session is left "idle in
/// transaction".
#[test]
fn a_panic_inside_a_unit_of_work_discards_its_connection() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let (mut config, app) = config(&db);
    config.pool_size = 1;
    let store = PgStore::open(config).unwrap();
    let mut admin = db.connect().unwrap();
    until(&mut admin, &app, |p| p.len() == 1);
    let before = pids(&mut admin, &app, None);
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let m = message(&s, "never committed");
    let joined = std::thread::scope(|sc| {
        sc.spawn(|| {
            store.transaction(|tx| {
                tx.connector::<Message>(TableType::RecallMemory, s)?
                    .insert(&m)?;
                panic!("a bug inside the unit of work");
                #[allow(unreachable_code)]
                Ok(())
            })
        })
        .join()
    });
    assert!(joined.is_err(), "the panic reached the joining thread");
    // The discarded session ends (connections open on demand: the next call opens one).
    until(&mut admin, &app, |p| p.is_disjoint(&before));
    assert!(pids(&mut admin, &app, Some("idle in transaction")).is_empty());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    assert_eq!(c.get(memgpt_core::Record::id(&m)).unwrap(), None);
}

/// Row 6: a statement that cannot finish within the 2 s statement timeout (it waits on a
/// lock another session holds) fails with `Error::Timeout` after about 2 s, and the same
/// connection (a pool of one) works right after.
#[test]
fn a_statement_past_the_timeout_is_cancelled_and_the_connection_goes_on() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let (mut config, _app) = config(&db);
    config.pool_size = 1;
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let mut locker = db.connect().unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE memgpt_recall_memory_agent IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    let start = Instant::now();
    let e = c.size(&[]).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        waited >= Duration::from_millis(1_900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    locker.batch_execute("ROLLBACK;").unwrap();
    c.insert(&message(&s, "after the timeout")).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

/// Row 22: migrations run by the owner; the library run by a role with DML rights only
/// (and TEMP, for the COPY path's staging table) works — open, every operation, bulk
/// loads, full-text search — and a DDL attempt by that role is a permission error.
#[test]
fn a_role_with_dml_rights_only_runs_the_library_but_no_ddl() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    memgpt_migrate::postgres::run_url(db.url(), memgpt_migrate::Command::Up).unwrap();
    let role = format!("memgpt_dml_{}", Uuid::new_v4().simple());
    let mut admin = db.connect().unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; \
             GRANT CONNECT, TEMP ON DATABASE {db} TO {role}; \
             GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};",
            db = db.name()
        ))
        .unwrap();
    let url = db
        .url()
        .expose()
        .replacen("postgres@", &format!("{role}@"), 1);
    assert!(url.contains(&role), "the test URL names its user: {url}");
    let mut config = PgConfig::new(DatabaseUrl::new(url.clone()));
    config.pool_size = 1;
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, "one")).unwrap();
    c.insert_many((0..1_500).map(|i| message(&s, &format!("bulk {i}"))), false)
        .unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1_501);
    // Full-text search through migration 000007's index and function.
    let found = c.query_text("BULK 7", None, 0).unwrap();
    assert_eq!(
        found.iter().map(|m| m.text()).collect::<Vec<_>>(),
        [Some("bulk 7")]
    );
    assert_eq!(c.delete(&[]).unwrap(), 1_501);
    let e = memgpt_migrate::postgres::run_url(
        &DatabaseUrl::new(url),
        memgpt_migrate::Command::Revert(1),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("permission denied") || e.to_string().contains("must be owner"),
        "{e}"
    );
    drop(store);
    admin
        .batch_execute(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}; \
             REVOKE ALL ON SCHEMA public FROM {role}; \
             REVOKE ALL ON DATABASE {db} FROM {role};",
            db = db.name()
        ))
        .unwrap();
}

/// Row 8: a bad record (another tenant's) at position 500,000 of a bulk insert: the whole
/// call fails naming that record, and zero rows are visible.
#[test]
fn a_bad_record_at_position_500000_fails_the_whole_bulk_insert() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let (mut config, _app) = config(&db);
    config.statement_timeout = Duration::from_secs(600);
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let other = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let records = (0..600_000usize)
        .map(|i| message(if i == 500_000 { &other } else { &s }, &format!("bulk {i}")));
    let e = c.insert_many(records, false).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "records[500000].user_id"),
        "{e:?}"
    );
    assert_eq!(c.size(&[]).unwrap(), 0);
}

/// Row 3, the other half: the server's `idle_session_timeout` ends the pool's idle
/// sessions; the next 2 x pool-size operations all succeed.
#[test]
fn sessions_ended_by_idle_session_timeout_are_replaced() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut admin = db.connect().unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {} SET idle_session_timeout = '300ms'",
            db.name()
        ))
        .unwrap();
    let (config, app) = config(&db);
    let store = PgStore::open(config).unwrap();
    until(&mut admin, &app, |p| !p.is_empty());
    let first = pids(&mut admin, &app, None);
    // Handshake with the server: the first sessions were ended by the timeout.
    until(&mut admin, &app, |p| p.is_disjoint(&first));
    twice_the_pool_succeeds(&store);
}

/// This process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Row 18 (PostgreSQL): 1,000,000 messages inserted from a lazy iterator and read back
/// in keyset pages grow this process's peak RSS by less than 64 MB: neither direction
/// holds the whole set.
#[test]
fn a_million_messages_in_and_out_keep_memory_flat() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let (mut config, _app) = config(&db);
    config.statement_timeout = Duration::from_secs(600);
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let before = peak_rss_kib();
    let lazy = (0..1_000_000usize).map(|i| {
        Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
            .text(format!("message number {i} of a million"))
            .build()
            .unwrap()
    });
    assert_eq!(c.insert_many(lazy, false).unwrap(), 1_000_000);
    let mut read = 0usize;
    for page in c.get_all_paginated(&[], 10_000).unwrap() {
        read += page.unwrap().len();
    }
    assert_eq!(read, 1_000_000);
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!("peak RSS grew by {grown_mib} MiB");
    assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
}

/// Row 13: a store that enforces 1,536 values refuses an embedding of 1,535 in a batch
/// (through the COPY path too: expected and found named, nothing written) and a query
/// vector of another length.
#[test]
fn embeddings_of_the_wrong_length_are_refused_when_the_dimension_is_enforced() {
    use memgpt_core::Passage;
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let (mut config, _app) = config(&db);
    config.strict_embedding_dim = true;
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let p = store
        .connector::<Passage>(TableType::ArchivalMemory, s)
        .unwrap();
    let with = |n: usize, i: usize| {
        Passage::builder(s.user_id(), format!("passage {i}"))
            .agent_id(s.agent_id().unwrap())
            .embedding(vec![0.5; n], "m")
            .build()
            .unwrap()
    };
    for size in [3usize, 1_200] {
        let batch: Vec<Passage> = (0..size)
            .map(|i| with(if i == 1 { 1535 } else { 1536 }, i))
            .collect();
        let e = p.insert_many(batch, false).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidInput { field, reason }
                if field == "records[1].embedding" && reason == "expected 1536 values, found 1535"),
            "{size}: {e:?}"
        );
        assert_eq!(p.size(&[]).unwrap(), 0);
    }
    let e = p.query(&[0.5; 1535], 3, &[]).unwrap_err();
    assert!(matches!(&e, Error::InvalidInput { .. }), "{e:?}");
    p.insert(&with(1536, 0)).unwrap();
    assert_eq!(p.query(&[0.5; 1536], 3, &[]).unwrap().len(), 1);
}

/// `PgStore::open` of `config` on a thread of its own; its result within 60 s, or a
/// failure naming the hang.
fn open_within_a_minute(config: PgConfig) -> (Result<PgStore, Error>, Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let opened = PgStore::open(config);
        let _ = tx.send((opened, start.elapsed()));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("PgStore::open hung")
}

/// A session of another process holds the migration lock (a `migrate up` building an
/// index, or a lock left behind) while migrations are pending: open gives up after
/// `migration_lock_timeout` with an error naming the holder's pid and application name and
/// what to run, and succeeds once the lock is released.
#[test]
fn open_gives_up_on_a_held_migration_lock_and_names_its_holder() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut holder: PgConnection = diesel::Connection::establish(db.url().expose()).unwrap();
    holder
        .batch_execute(&format!(
            "SET application_name = 'a-migration-elsewhere'; SELECT pg_advisory_lock({})",
            memgpt_migrate::postgres::ADVISORY_LOCK_KEY
        ))
        .unwrap();
    let held: Vec<Pid> = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .load(&mut holder)
        .unwrap();
    let (mut c, _) = config(&db);
    c.migration_lock_timeout = Duration::from_secs(1);
    let (opened, took) = open_within_a_minute(c.clone());
    let e = match opened {
        Err(e @ Error::Migration { .. }) => e.to_string(),
        other => panic!("expected Error::Migration, got {:?}", other.map(|_| ())),
    };
    assert!(took >= Duration::from_secs(1), "{took:?}");
    let pid = held[0].pid;
    for part in [
        format!("pid {pid}"),
        "a-migration-elsewhere".to_owned(),
        format!("pg_terminate_backend({pid})"),
        "MEMGPT_PG_MIGRATION_LOCK_TIMEOUT".to_owned(),
    ] {
        assert!(e.contains(&part), "{part:?} not in {e}");
    }
    holder
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .unwrap();
    let (opened, _) = open_within_a_minute(c);
    opened.unwrap();
}

/// Reverts a migrated database's migrations down to before the compact embedding column
/// (migration 000006, which rewrites the passage tables), one at a time.
fn revert_last(db: &TempDatabase) -> PgConnection {
    let (c, _) = config(db);
    drop(PgStore::open(c).unwrap());
    let mut admin: PgConnection = diesel::Connection::establish(db.url().expose()).unwrap();
    for _ in 0..10 {
        let compact: Vec<Count> = diesel::sql_query(
            "SELECT count(*) AS n FROM information_schema.columns \
             WHERE table_name = 'memgpt_passages' AND column_name = 'embedding_compact'",
        )
        .load(&mut admin)
        .unwrap();
        if compact[0].n == 0 {
            return admin;
        }
        memgpt_migrate::postgres::run(&mut admin, memgpt_migrate::Command::Revert(1)).unwrap();
    }
    panic!("the compact embedding column survived ten reverts");
}

/// MemGPT's server holds a lock on one of its tables (a long transaction) while a
/// migration that alters that table is pending: open gives up after the lock timeout,
/// saying what to run, instead of queueing an `ALTER` that would hold every later query of
/// the table behind it; once the table is free, open applies the migration.
#[test]
fn open_gives_up_on_a_busy_table_and_says_what_to_run() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut admin = revert_last(&db);
    admin
        .batch_execute("BEGIN; LOCK TABLE memgpt_passages IN ACCESS SHARE MODE")
        .unwrap();
    let (mut c, _) = config(&db);
    c.migration_lock_timeout = Duration::from_secs(1);
    let (opened, _) = open_within_a_minute(c.clone());
    let e = match opened {
        Err(e @ Error::Migration { .. }) => e.to_string(),
        other => panic!("expected Error::Migration, got {:?}", other.map(|_| ())),
    };
    assert!(e.contains("memgpt-store migrate up"), "{e}");
    assert!(e.contains("MEMGPT_PG_MIGRATION_LOCK_TIMEOUT"), "{e}");
    admin.batch_execute("COMMIT").unwrap();
    let (opened, _) = open_within_a_minute(c);
    opened.unwrap();
    let applied: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.columns \
         WHERE table_name = 'memgpt_passages' AND column_name = 'embedding_compact'",
    )
    .load(&mut admin)
    .unwrap();
    assert_eq!(applied[0].n, 1);
}

/// A migration that rewrites a table of many rows takes longer than the connector's
/// statement timeout: it is not cut half way (and retried on every start).
#[test]
fn a_migration_at_open_is_not_cut_by_the_statement_timeout() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut admin = revert_last(&db);
    admin
        .batch_execute(
            "INSERT INTO memgpt_archival_memory_agent \
             (id, user_id, agent_id, text, embedding, embedding_dim) \
             SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'padded', \
             array_fill(0.5::real, ARRAY[4096])::vector, 1536 FROM generate_series(1, 4000)",
        )
        .unwrap();
    let (mut c, _) = config(&db);
    c.statement_timeout = Duration::from_millis(100);
    let (opened, took) = open_within_a_minute(c);
    assert!(took > Duration::from_millis(100), "{took:?}");
    opened.unwrap();
    let filled: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS n FROM memgpt_archival_memory_agent \
         WHERE embedding_compact IS NOT NULL",
    )
    .load(&mut admin)
    .unwrap();
    assert_eq!(filled[0].n, 4_000);
}
