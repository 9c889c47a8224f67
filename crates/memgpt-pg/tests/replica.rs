//! Read replicas: reads go to a streaming replica (`pg_basebackup -R` of a server of the
//! test's own), writes and units of work to the primary; read-your-writes sessions; a
//! replica lagging past `MEMGPT_PG_REPLICA_MAX_LAG` or killed mid-run is skipped and the
//! primary serves. Replication is awaited by polling the replica's WAL positions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::sql_types::{Bool, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Role, Scope, StorageConnector, TableType};
use memgpt_migrate::testing::OwnServer;
use memgpt_migrate::Command;
use memgpt_pg::{PgConfig, PgStore};
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
    let mut rconn = connect(&replica.url(""));
    let deadline = Instant::now() + Duration::from_secs(30);
    while diesel::sql_query("SELECT current_setting('recovery_min_apply_delay') AS lsn")
        .load::<Lsn>(&mut rconn)
        .unwrap()[0]
        .lsn
        != "1h"
    {
        assert!(Instant::now() < deadline, "the delay never took effect");
        std::thread::sleep(Duration::from_millis(20));
    }

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
