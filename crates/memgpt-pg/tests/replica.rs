//! Read replicas: reads go to a streaming replica (`pg_basebackup -R` of a server of the
//! test's own), writes and units of work to the primary; read-your-writes sessions, shared
//! by threads, on a primary committing asynchronously; a replica lagging past
//! `MEMGPT_PG_REPLICA_MAX_LAG` (with the primary's pool saturated, too), promoted, or
//! killed mid-run is skipped and the primary serves. Replication is awaited by polling the
//! replica's WAL positions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use diesel::sql_types::{Bool, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_migrate::Command;
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::OwnServer;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Lsn {
    #[diesel(sql_type = Text)]
    lsn: String,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    v: bool,
}

#[derive(QueryableByName)]
struct Activity {
    #[diesel(sql_type = Text)]
    query: String,
}

/// A migrated primary and its streaming replica.
fn pair() -> (OwnServer, OwnServer) {
    let primary = OwnServer::start("trust", "").unwrap();
    memgpt_migrate::postgres::run_url(&primary.url(""), Command::Up).unwrap();
    let replica = primary.replica().unwrap();
    (primary, replica)
}

fn config(primary: &OwnServer, replica: &OwnServer, app: &str) -> PgConfig {
    let mut c = PgConfig::new(primary.url(""));
    c.replica_urls = vec![replica.url("")];
    c.application_name = app.to_owned();
    c.pool_size = 2;
    c.max_overflow = 8;
    c
}

fn connect(url: &DatabaseUrl) -> PgConnection {
    PgConnection::establish(url.expose()).unwrap()
}

fn primary_lsn(primary: &OwnServer) -> String {
    diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
        .load::<Lsn>(&mut connect(&primary.url("")))
        .unwrap()
        .remove(0)
        .lsn
}

/// Polls the replica until `function()` (a WAL position) reaches `lsn`.
fn await_replica(replica: &OwnServer, function: &str, lsn: &str) {
    let mut conn = connect(&replica.url(""));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: Vec<Flag> = diesel::sql_query(format!(
            "SELECT coalesce({function}() >= $1::pg_lsn, false) AS v"
        ))
        .bind::<Text, _>(lsn)
        .load(&mut conn)
        .unwrap();
        if done[0].v {
            return;
        }
        assert!(Instant::now() < deadline, "{function} never reached {lsn}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn message(scope: Scope, text: &str) -> Message {
    Message::builder(scope.user_id(), scope.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

/// The last statements of this application's connections on a server (but diesel's own
/// `SET`s of a new connection).
fn last_statements(server: &OwnServer, app: &str) -> Vec<String> {
    diesel::sql_query(
        "SELECT coalesce(query, '') AS query FROM pg_stat_activity \
         WHERE application_name = $1 AND query <> '' AND query NOT LIKE 'SET %'",
    )
    .bind::<Text, _>(app)
    .load::<Activity>(&mut connect(&server.url("")))
    .unwrap()
    .into_iter()
    .map(|a| a.query)
    .collect()
}

#[test]
fn replica_serves_the_reads_and_the_primary_the_writes() {
    let (primary, replica) = pair();
    let app = "memgpt-replica-routing";
    let store = PgStore::open(config(&primary, &replica, app)).unwrap();
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    for i in 0..10 {
        c.insert(&message(scope, &format!("rivers {i}"))).unwrap();
    }
    await_replica(&replica, "pg_last_wal_replay_lsn", &primary_lsn(&primary));
    assert_eq!(c.get_all(&[], None).unwrap().len(), 10);
    assert_eq!(c.size(&[]).unwrap(), 10);
    assert_eq!(c.query_text("rivers", None, 0).unwrap().len(), 10);
    let pages: usize = c
        .get_all_paginated(&[], 4)
        .unwrap()
        .map(|p| p.unwrap().len())
        .sum();
    assert_eq!(pages, 10);
    let m = store.metrics();
    assert!(m.replica_reads >= 6, "{m:?}");
    assert_eq!(m.replica_fallbacks, 0, "{m:?}");
    // A read-your-writes session reads from the replica once it has replayed the write.
    let session = store.read_your_writes().unwrap();
    let mine = session
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    mine.insert(&message(scope, "mine")).unwrap();
    await_replica(&replica, "pg_last_wal_replay_lsn", &primary_lsn(&primary));
    let before = store.metrics();
    assert_eq!(mine.size(&[]).unwrap(), 11);
    let after = store.metrics();
    assert_eq!(
        (
            after.replica_reads - before.replica_reads,
            after.replica_fallbacks
        ),
        (1, 0)
    );
    // Where each kind of call went, as each server saw it.
    let on_replica = last_statements(&replica, app);
    assert!(!on_replica.is_empty());
    assert!(
        on_replica
            .iter()
            .all(|q| q.starts_with("SELECT") || q.starts_with("WITH")),
        "{on_replica:?}"
    );
    // The primary's connections last ran writes (a write's transaction ends in COMMIT),
    // the open's catalog checks or the pool's pre-ping — no read of a table.
    let on_primary = last_statements(&primary, app);
    assert!(!on_primary.is_empty());
    assert!(
        on_primary.iter().all(|q| !q.contains("FROM memgpt_")),
        "{on_primary:?}"
    );
}

/// A replica that has received a write but not applied it (`recovery_min_apply_delay`):
/// the store's plain reads see the replica's older state; a read-your-writes session's
/// read after its write is served by the primary; with a maximum lag the replica exceeds,
/// every read goes to the primary.
#[test]
fn replica_lagging_read_your_writes_and_the_maximum_lag() {
    let (primary, replica) = pair();
    let app = "memgpt-replica-lag";
    let mut cfg = config(&primary, &replica, app);
    cfg.replica_max_lag = Duration::from_secs(3600);
    let store = PgStore::open(cfg.clone()).unwrap();
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let plain = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    plain.insert(&message(scope, "before the delay")).unwrap();
    await_replica(&replica, "pg_last_wal_replay_lsn", &primary_lsn(&primary));

    // From now on the replica receives the primary's WAL but applies it an hour late.
    replica
        .reload_with("recovery_min_apply_delay", "1h")
        .unwrap();
    await_setting(&replica, "recovery_min_apply_delay", "1h");

    let session = store.read_your_writes().unwrap();
    let mine = session
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    mine.insert(&message(scope, "after the delay")).unwrap();
    await_replica(&replica, "pg_last_wal_receive_lsn", &primary_lsn(&primary));

    let before = store.metrics();
    assert_eq!(
        plain.size(&[]).unwrap(),
        1,
        "a plain read: the replica, behind"
    );
    assert_eq!(mine.size(&[]).unwrap(), 2, "read-your-writes: the primary");
    let after = store.metrics();
    assert_eq!(after.replica_reads - before.replica_reads, 1);
    assert_eq!(after.replica_fallbacks - before.replica_fallbacks, 1);

    // A maximum lag the replica exceeds: the primary serves every read.
    cfg.replica_max_lag = Duration::ZERO;
    cfg.application_name = "memgpt-replica-max-lag".to_owned();
    let strict = PgStore::open(cfg).unwrap();
    let c = strict
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(c.size(&[]).unwrap(), 2);
    }
    let m = strict.metrics();
    assert_eq!((m.replica_reads, m.replica_fallbacks), (0, 3), "{m:?}");
}

/// The replica is killed while eight threads read: reads in flight on it may fail with
/// `ConnectionLost`, none with anything else, none hangs; every read after the kill is
/// served by the primary.
#[test]
fn replica_killed_mid_run_the_primary_serves() {
    let (primary, replica) = pair();
    let store = PgStore::open(config(&primary, &replica, "memgpt-replica-kill")).unwrap();
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    c.insert(&message(scope, "one")).unwrap();
    await_replica(&replica, "pg_last_wal_replay_lsn", &primary_lsn(&primary));

    let stop = AtomicBool::new(false);
    let killed = AtomicBool::new(false);
    let failures: Mutex<Vec<Error>> = Mutex::new(Vec::new());
    let after_kill = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let was_killed = killed.load(Ordering::SeqCst);
                    match c.size(&[]) {
                        Ok(n) => {
                            assert_eq!(n, 1);
                            if was_killed {
                                after_kill.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            });
        }
        // Handshake: the replica has served reads, then it dies.
        let deadline = Instant::now() + Duration::from_secs(60);
        while store.metrics().replica_reads < 100 {
            assert!(Instant::now() < deadline, "no reads reached the replica");
            std::thread::sleep(Duration::from_millis(5));
        }
        replica.stop("immediate").unwrap();
        killed.store(true, Ordering::SeqCst);
        let fallbacks = store.metrics().replica_fallbacks;
        while store.metrics().replica_fallbacks < fallbacks + 200 {
            assert!(Instant::now() < deadline, "the primary did not take over");
            std::thread::sleep(Duration::from_millis(5));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.len() <= 8, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|e| matches!(e, Error::ConnectionLost { .. })),
        "{failures:?}"
    );
    // 200 reads fell back to the primary after the kill; those begun after it succeeded
    // (a few were still in flight when the run stopped).
    assert!(after_kill.load(Ordering::Relaxed) >= 150);
    assert_eq!(c.size(&[]).unwrap(), 1);
}

/// Polls a new connection of `server` until `name` reads `value` (after
/// [`OwnServer::reload_with`]).
fn await_setting(server: &OwnServer, name: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now: Vec<Lsn> = diesel::sql_query("SELECT current_setting($1) AS lsn")
            .bind::<Text, _>(name)
            .load(&mut connect(&server.url("")))
            .unwrap();
        if now[0].lsn == value {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never became {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Commits a transaction with `synchronous_commit = on` on the primary, which flushes all
/// WAL before it, and returns the flushed position: a replica that has replayed it has
/// replayed every commit made before this call.
fn flush(primary: &OwnServer) -> String {
    let mut conn = connect(&primary.url(""));
    diesel::sql_query("SET synchronous_commit = on")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("CREATE TABLE IF NOT EXISTS test_flush (x int)")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("INSERT INTO test_flush VALUES (1)")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("SELECT pg_current_wal_flush_lsn()::text AS lsn")
        .load::<Lsn>(&mut conn)
        .unwrap()
        .remove(0)
        .lsn
}

/// Eight threads share one read-your-writes session; in each of four rounds each inserts a
/// row and reads it back at once, then (once the replica has replayed the round, awaited by
/// its replay position) reads it again. The primary commits asynchronously
/// (`synchronous_commit = off`, the WAL writer every 10 s: `pg_current_wal_lsn()` after a
/// commit may lie before its commit record) and the replica applies commits 300 ms late
/// (`recovery_min_apply_delay`). Every read finds the thread's own row; the reads after
/// the replay are the replica's, exactly eight per round.
#[test]
fn eight_threads_sharing_a_session_each_read_their_own_write() {
    let (primary, replica) = pair();
    primary.reload_with("synchronous_commit", "off").unwrap();
    primary.reload_with("wal_writer_delay", "10s").unwrap();
    await_setting(&primary, "synchronous_commit", "off");
    await_setting(&primary, "wal_writer_delay", "10s");
    replica
        .reload_with("recovery_min_apply_delay", "300ms")
        .unwrap();
    await_setting(&replica, "recovery_min_apply_delay", "300ms");
    // A commit replayed: a replica that has replayed none since it started, with WAL left
    // to replay, is judged behind (the age of its last replayed commit is unknown).
    await_replica(&replica, "pg_last_wal_replay_lsn", &flush(&primary));
    let mut cfg = config(&primary, &replica, "memgpt-replica-ryw-threads");
    cfg.replica_max_lag = Duration::from_secs(3600);
    let store = PgStore::open(cfg).unwrap();
    let session = store.read_your_writes().unwrap();
    const THREADS: usize = 8;
    const ROUNDS: usize = 4;
    let barrier = Barrier::new(THREADS + 1);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (session, barrier, failures) = (&session, &barrier, &failures);
            s.spawn(move || {
                let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(100 + t as u128));
                let mine = session
                    .connector::<Message>(TableType::RecallMemory, scope)
                    .unwrap();
                let fail = |what: String| failures.lock().unwrap().push(what);
                for r in 0..ROUNDS {
                    let m = message(scope, &format!("thread {t} round {r}"));
                    // A failure is recorded, never a panic: the others wait at the barrier.
                    let wrote = mine.insert(&m);
                    match (wrote, mine.get(m.id())) {
                        (Ok(()), Ok(Some(got))) if got.id() == m.id() => {}
                        other => fail(format!("thread {t} round {r}, right after: {other:?}")),
                    }
                    barrier.wait(); // every write of the round is in
                    barrier.wait(); // and replayed on the replica
                    match mine.get(m.id()) {
                        Ok(Some(got)) if got.id() == m.id() => {}
                        other => fail(format!("thread {t} round {r}, once replayed: {other:?}")),
                    }
                    barrier.wait(); // every second read is done
                    barrier.wait(); // and counted: the next round's reads come after
                }
            });
        }
        // Never a panic between barriers either (the threads would wait forever).
        for r in 0..ROUNDS {
            barrier.wait();
            let replayed = std::panic::catch_unwind(|| {
                await_replica(&replica, "pg_last_wal_replay_lsn", &flush(&primary));
            });
            let before = store.metrics();
            barrier.wait();
            barrier.wait();
            let after = store.metrics();
            barrier.wait();
            let served = (
                after.replica_reads - before.replica_reads,
                after.replica_fallbacks - before.replica_fallbacks,
            );
            if replayed.is_err() || served != (THREADS as u64, 0) {
                failures.lock().unwrap().push(format!(
                    "round {r}: once the replica replayed every write ({}), it serves the \
                     second reads: (replica, primary) = {served:?}",
                    replayed.is_ok()
                ));
            }
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A replica promoted (`pg_promote`) no longer receives the primary's writes: a server not
/// in recovery is no replica, and the store refuses it (with a warning) — a
/// read-your-writes read after a write, and a plain read of a store that meets the server
/// first after its promotion, are the primary's and see the write.
#[test]
fn a_promoted_replica_serves_no_reads() {
    let (primary, replica) = pair();
    let app = "memgpt-replica-promoted";
    let store = PgStore::open(config(&primary, &replica, app)).unwrap();
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let session = store.read_your_writes().unwrap();
    let mine = session
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    mine.insert(&message(scope, "before")).unwrap();
    await_replica(&replica, "pg_last_wal_replay_lsn", &primary_lsn(&primary));
    assert_eq!(mine.size(&[]).unwrap(), 1);
    assert_eq!(store.metrics().replica_reads, 1, "the replica served it");

    let promoted: Vec<Flag> = diesel::sql_query("SELECT pg_promote(true, 60) AS v")
        .load(&mut connect(&replica.url("")))
        .unwrap();
    assert!(promoted[0].v);
    let recovering: Vec<Flag> = diesel::sql_query("SELECT pg_is_in_recovery() AS v")
        .load(&mut connect(&replica.url("")))
        .unwrap();
    assert!(!recovering[0].v);

    mine.insert(&message(scope, "after the promotion")).unwrap();
    let before = store.metrics();
    assert_eq!(mine.size(&[]).unwrap(), 2, "read-your-writes after a write");
    let after = store.metrics();
    assert_eq!(
        (
            after.replica_reads - before.replica_reads,
            after.replica_fallbacks - before.replica_fallbacks
        ),
        (0, 1)
    );
    // A store whose first read meets the promoted server.
    let fresh = PgStore::open(config(&primary, &replica, app)).unwrap();
    let c = fresh
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    for _ in 0..3 {
        assert_eq!(c.size(&[]).unwrap(), 2, "a plain read");
    }
    let m = fresh.metrics();
    assert_eq!((m.replica_reads, m.replica_fallbacks), (0, 3), "{m:?}");
}

/// Every connection of the primary's pool is held (two units of work on a pool of 2 + 0)
/// while the replica falls an hour behind (`recovery_min_apply_delay`) with a maximum lag
/// of 1 s: the primary's position is still sampled (on a connection of its own), so the
/// replica is soon measured behind and serves no further read — reads fall back to the
/// saturated primary and time out instead of returning the replica's state from before
/// the write. A read-your-writes read never takes the replica.
#[test]
fn a_saturated_primary_still_bounds_a_lagging_replica() {
    let (primary, replica) = pair();
    let mut cfg = config(&primary, &replica, "memgpt-replica-saturated");
    cfg.pool_size = 2;
    cfg.max_overflow = 0;
    cfg.pool_timeout = Duration::from_millis(500);
    cfg.replica_max_lag = Duration::from_secs(1);
    let store = PgStore::open(cfg).unwrap();
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let plain = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    plain.insert(&message(scope, "before")).unwrap();
    await_replica(&replica, "pg_last_wal_replay_lsn", &primary_lsn(&primary));
    assert_eq!(plain.size(&[]).unwrap(), 1);
    assert_eq!(store.metrics().replica_reads, 1);

    replica
        .reload_with("recovery_min_apply_delay", "1h")
        .unwrap();
    await_setting(&replica, "recovery_min_apply_delay", "1h");
    let session = store.read_your_writes().unwrap();
    let mine = session
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    mine.insert(&message(scope, "after")).unwrap();
    await_replica(&replica, "pg_last_wal_receive_lsn", &primary_lsn(&primary));

    let release = Barrier::new(3);
    let (held, holding) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (store, release, held) = (&store, &release, held.clone());
            s.spawn(move || {
                store
                    .transaction(|_| {
                        held.send(()).unwrap();
                        release.wait();
                        Ok(())
                    })
                    .unwrap();
            });
        }
        holding.recv().unwrap();
        holding.recv().unwrap();
        // The checks, their panic caught so that the holders are released either way.
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let m = store.metrics();
            assert_eq!((m.connections, m.idle), (2, 0), "{m:?}");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut skipped = 0;
            while skipped < 3 {
                let before = store.metrics().replica_fallbacks;
                let read = plain.size(&[]);
                let fell_back = store.metrics().replica_fallbacks > before;
                match read {
                    Ok(1) if skipped == 0 => {}
                    Err(Error::PoolTimeout { .. }) if fell_back => skipped += 1,
                    other => panic!("after {skipped} reads skipped the replica: {other:?}"),
                }
                assert!(
                    Instant::now() < deadline,
                    "the replica, an hour behind, still served reads after 30 s"
                );
            }
            assert!(matches!(mine.size(&[]), Err(Error::PoolTimeout { .. })));
        }));
        release.wait();
        if let Err(panic) = checked {
            std::panic::resume_unwind(panic);
        }
    });
    assert_eq!(plain.size(&[]).unwrap(), 2);
    assert_eq!(mine.size(&[]).unwrap(), 2);
}
