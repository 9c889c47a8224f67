//! Loads of passages spread over several connections (`PgConfig::load_connections`), all
//! or nothing by two-phase commit, on a server of the test's own that allows prepared
//! transactions: every record once, the one duplicate rule, a part's session ended, the
//! caller's session ended, a unit of work, a server without prepared transactions, and
//! parts left prepared by a process that ended.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Passage, Record, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgConnector, PgStore};
use memgpt_testing::OwnServer;
use uuid::Uuid;

const N: usize = 2_500;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(url: &DatabaseUrl, sql: &str) -> i64 {
    let mut c = PgConnection::establish(url.expose()).unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut c)
        .unwrap()
        .n
}

/// A server of the test's own, migrated; allowing 10 prepared transactions when `allow`.
fn server(allow: bool) -> (OwnServer, DatabaseUrl) {
    let mut server = OwnServer::start("trust", "").unwrap();
    if allow {
        server
            .restart_with("-c max_prepared_transactions=10")
            .unwrap();
    }
    let url = server.url("");
    memgpt_migrate::postgres::run_url(&url, memgpt_migrate::Command::Up).unwrap();
    (server, url)
}

fn store(url: &DatabaseUrl, connections: u32) -> PgStore {
    let mut config = PgConfig::new(url.clone());
    config.pool_size = 5;
    config.max_overflow = 0;
    config.load_connections = connections;
    PgStore::open(config).unwrap()
}

fn scope() -> Scope {
    Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2))
}

fn archival(store: &PgStore) -> PgConnector<Passage> {
    store.connector(TableType::ArchivalMemory, scope()).unwrap()
}

fn passage(i: usize, text: &str) -> Passage {
    let s = scope();
    Passage::builder(s.user_id(), format!("{text} {i}"))
        .id(Uuid::from_u128(1_000_000 + i as u128))
        .agent_id(s.agent_id().unwrap())
        .embedding(vec![i as f32, 1.0, -1.0], "ada")
        .created_at(chrono::DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap())
        .build()
        .unwrap()
}

fn passages(text: &str) -> Vec<Passage> {
    (0..N).map(|i| passage(i, text)).collect()
}

/// Transactions that wrote the table's rows (one per part of a spread load).
fn writers(url: &DatabaseUrl) -> i64 {
    count(
        url,
        "SELECT count(DISTINCT xmin::text) AS n FROM memgpt_archival_memory_agent",
    )
}

fn prepared(url: &DatabaseUrl) -> i64 {
    count(url, "SELECT count(*) AS n FROM pg_prepared_xacts")
}

fn rows(url: &DatabaseUrl) -> i64 {
    count(
        url,
        "SELECT count(*) AS n FROM memgpt_archival_memory_agent",
    )
}

fn sorted(mut v: Vec<Passage>) -> Vec<Passage> {
    v.sort_by_key(Record::id);
    v
}

#[test]
fn a_load_spread_over_three_connections_writes_every_record_once() {
    let (_server, url) = server(true);
    let store = store(&url, 3);
    let c = archival(&store);
    assert_eq!(c.insert_many(passages("first"), false).unwrap(), N as u64);
    assert_eq!(sorted(c.get_all(&[], None).unwrap()), passages("first"));
    assert_eq!((writers(&url), prepared(&url)), (3, 0));
    // Again as an upsert, every text changed.
    assert_eq!(c.insert_many(passages("second"), true).unwrap(), N as u64);
    assert_eq!(sorted(c.get_all(&[], None).unwrap()), passages("second"));
    assert_eq!((writers(&url), prepared(&url)), (3, 0));
}

/// The iterator of a spread load reads the store (on another pooled connection) past
/// the first chunk, in a pool that the caller and its three parts' connections fill.
#[test]
fn a_spread_loads_iterator_may_read_the_store() {
    let (_server, url) = server(true);
    let mut config = PgConfig::new(url.clone());
    (config.pool_size, config.max_overflow) = (4, 0);
    config.pool_timeout = Duration::from_secs(2);
    config.load_connections = 3;
    let store = PgStore::open(config).unwrap();
    let reader = archival(&store);
    let read = passages("p").into_iter().enumerate().map(|(i, p)| {
        if i == 2_000 {
            assert_eq!(reader.size(&[]).unwrap(), 0);
        }
        p
    });
    assert_eq!(archival(&store).insert_many(read, false).unwrap(), N as u64);
    assert_eq!(
        (rows(&url), writers(&url), prepared(&url)),
        (N as i64, 3, 0)
    );
}

#[test]
fn a_call_of_a_hundred_passages_is_spread_too() {
    let (_server, url) = server(true);
    let store = store(&url, 3);
    let few: Vec<Passage> = passages("p").into_iter().take(100).collect();
    assert_eq!(
        archival(&store).insert_many(few.clone(), false).unwrap(),
        100
    );
    assert_eq!(sorted(archival(&store).get_all(&[], None).unwrap()), few);
    assert_eq!((writers(&url), prepared(&url)), (3, 0));
}

#[test]
fn a_spread_load_fails_on_the_record_one_connection_fails_on_and_writes_nothing() {
    let (_server, url) = server(true);
    let spread = store(&url, 3);
    let one = store(&url, 1);
    let mut repeated = passages("p");
    repeated[1_700] = passage(300, "again");
    let err = archival(&spread)
        .insert_many(repeated.clone(), false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicateId {
                first: 300,
                second: 1_700,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        format!("{err:?}"),
        format!(
            "{:?}",
            archival(&one).insert_many(repeated, false).unwrap_err()
        )
    );
    assert_eq!((rows(&url), prepared(&url)), (0, 0));
    // A call of one chunk, taken by the bulk path only to be spread.
    let mut few: Vec<Passage> = passages("p").into_iter().take(500).collect();
    few[400] = passage(30, "again");
    let err = archival(&spread)
        .insert_many(few.clone(), false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicateId {
                first: 30,
                second: 400,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        format!("{err:?}"),
        format!("{:?}", archival(&one).insert_many(few, false).unwrap_err())
    );
    assert_eq!((rows(&url), prepared(&url)), (0, 0));
    archival(&one).insert(&passage(2_000, "before")).unwrap();
    let err = archival(&spread)
        .insert_many(passages("p"), false)
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { id, .. } if id == passage(2_000, "").id()),
        "{err:?}"
    );
    assert_eq!((rows(&url), prepared(&url)), (1, 0));
}

#[test]
fn a_server_without_prepared_transactions_loads_on_the_callers_connection() {
    let (_server, url) = server(false);
    let store = store(&url, 3);
    // Of one chunk (the multi-row INSERT), and of more (the COPY path).
    let few: Vec<Passage> = passages("p").into_iter().skip(N - 100).collect();
    assert_eq!(archival(&store).insert_many(few, false).unwrap(), 100);
    assert_eq!((rows(&url), writers(&url)), (100, 1));
    assert_eq!(
        archival(&store).insert_many(passages("p"), true).unwrap(),
        N as u64
    );
    assert_eq!((rows(&url), writers(&url)), (N as i64, 1));
}

#[test]
fn a_load_in_a_unit_of_work_stays_on_its_connection_and_rolls_back_with_it() {
    let (_server, url) = server(true);
    let store = store(&url, 3);
    let err = store
        .transaction(|tx| {
            let c = tx.connector::<Passage>(TableType::ArchivalMemory, scope())?;
            assert_eq!(c.insert_many(passages("p"), false)?, N as u64);
            Err::<(), _>(Error::Aborted {
                message: "the caller changed its mind".to_owned(),
            })
        })
        .unwrap_err();
    assert!(matches!(err, Error::Aborted { .. }), "{err:?}");
    assert_eq!((rows(&url), prepared(&url)), (0, 0));
    store
        .transaction(|tx| {
            let c = tx.connector::<Passage>(TableType::ArchivalMemory, scope())?;
            c.insert_many(passages("p").into_iter().take(100), false)?;
            c.insert_many(passages("p").into_iter().skip(100), false)
                .map(|_| ())
        })
        .unwrap();
    // Each call in a savepoint of the unit of work: one subtransaction each, no parts.
    assert_eq!((rows(&url), writers(&url)), (N as i64, 2));
}

/// Holds every part in a trigger (they alone run with `lock_timeout` 1 s) until `gate`
/// has a row.
fn gate_parts(url: &DatabaseUrl) {
    let mut c = PgConnection::establish(url.expose()).unwrap();
    c.batch_execute(
        "CREATE TABLE gate (open boolean);
         CREATE FUNCTION hold_parts() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_setting('lock_timeout') = '1s' THEN
             WHILE NOT EXISTS (SELECT FROM gate) LOOP PERFORM pg_sleep(0.01); END LOOP;
           END IF;
           RETURN NULL;
         END $$;
         CREATE TRIGGER hold_parts BEFORE INSERT ON memgpt_archival_memory_agent
           FOR EACH STATEMENT EXECUTE FUNCTION hold_parts();",
    )
    .unwrap();
}

/// The backends of the parts held in the trigger, once all `n` are.
fn held_parts(url: &DatabaseUrl, n: usize) -> Vec<i32> {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut c = PgConnection::establish(url.expose()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pids: Vec<Pid> = diesel::sql_query(
            "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' \
             AND query LIKE 'INSERT INTO memgpt_archival_memory_agent%'",
        )
        .load(&mut c)
        .unwrap();
        if pids.len() == n {
            return pids.into_iter().map(|p| p.pid).collect();
        }
        assert!(Instant::now() < deadline, "{} parts held", pids.len());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run(url: &DatabaseUrl, sql: &str) {
    PgConnection::establish(url.expose())
        .unwrap()
        .batch_execute(sql)
        .unwrap();
}

#[test]
fn a_part_whose_session_is_ended_is_written_again_on_the_callers_connection() {
    let (_server, url) = server(true);
    gate_parts(&url);
    let store = store(&url, 3);
    std::thread::scope(|s| {
        let load = s.spawn(|| archival(&store).insert_many(passages("p"), false));
        let pids = held_parts(&url, 3);
        run(&url, &format!("SELECT pg_terminate_backend({})", pids[1]));
        run(&url, "INSERT INTO gate VALUES (true)");
        assert_eq!(load.join().unwrap().unwrap(), N as u64);
    });
    assert_eq!(
        (rows(&url), writers(&url), prepared(&url)),
        (N as i64, 1, 0)
    );
}

#[test]
fn a_spread_load_whose_callers_session_is_ended_writes_nothing() {
    let (_server, url) = server(true);
    gate_parts(&url);
    let store = store(&url, 3);
    std::thread::scope(|s| {
        let load = s.spawn(|| archival(&store).insert_many(passages("p"), false));
        held_parts(&url, 3);
        // The caller waits for its parts, idle in its transaction.
        run(
            &url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE state = 'idle in transaction' AND application_name = 'memgpt-store'",
        );
        run(&url, "INSERT INTO gate VALUES (true)");
        let err = load.join().unwrap().unwrap_err();
        assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    });
    assert_eq!((rows(&url), prepared(&url)), (0, 0));
}

/// Leaves part `k` (passage `k`'s row) prepared under the name a load whose caller's
/// transaction is `xid` gives it, as a process that ended would.
fn leave_part(url: &DatabaseUrl, xid: &str, k: usize) {
    let mut c = PgConnection::establish(url.expose()).unwrap();
    c.batch_execute("BEGIN").unwrap();
    archival_row(&mut c, &passage(k, "left"));
    c.batch_execute(&format!(
        "PREPARE TRANSACTION 'memgpt_load:{xid}:{}:{k}'",
        Uuid::from_u128(k as u128).simple()
    ))
    .unwrap();
}

/// A transaction's id, the transaction left open.
fn xid(c: &mut PgConnection) -> String {
    #[derive(QueryableByName)]
    struct X {
        #[diesel(sql_type = diesel::sql_types::Text)]
        x: String,
    }
    c.batch_execute("BEGIN").unwrap();
    diesel::sql_query("SELECT pg_current_xact_id()::text AS x")
        .get_result::<X>(c)
        .unwrap()
        .x
}

/// The id of a transaction that committed.
fn committed_xid(url: &DatabaseUrl) -> String {
    let mut c = PgConnection::establish(url.expose()).unwrap();
    let x = xid(&mut c);
    c.batch_execute("COMMIT").unwrap();
    x
}

fn ids(store: &PgStore) -> Vec<Uuid> {
    sorted(archival(store).get_all(&[], None).unwrap())
        .iter()
        .map(Record::id)
        .collect()
}

#[test]
fn parts_left_prepared_are_finished_by_their_transactions_outcome_at_open() {
    let (_server, url) = server(true);
    drop(store(&url, 1));
    let committed = committed_xid(&url);
    let mut aborted = PgConnection::establish(url.expose()).unwrap();
    let a_xid = xid(&mut aborted);
    aborted.batch_execute("ROLLBACK").unwrap();
    let mut running = PgConnection::establish(url.expose()).unwrap();
    let r_xid = xid(&mut running);
    leave_part(&url, &committed, 1);
    leave_part(&url, &a_xid, 2);
    leave_part(&url, &r_xid, 3);
    assert_eq!((rows(&url), prepared(&url)), (0, 3));
    let store = store(&url, 1);
    assert_eq!(ids(&store), vec![passage(1, "").id()]);
    assert_eq!(
        prepared(&url),
        1,
        "the part of a transaction in progress stays"
    );
}

#[test]
fn a_name_like_a_parts_with_a_future_transaction_stops_nothing() {
    let (_server, url) = server(true);
    drop(store(&url, 1));
    // A transaction id a million past the server's next: pg_xact_status refuses it.
    let future = committed_xid(&url).parse::<u64>().unwrap() + 1_000_000;
    let mut foreign = PgConnection::establish(url.expose()).unwrap();
    foreign
        .batch_execute(&format!(
            "BEGIN; PREPARE TRANSACTION 'memgpt_load:{future}:{}:0'",
            Uuid::from_u128(7).simple()
        ))
        .unwrap();
    leave_part(&url, &committed_xid(&url), 1);
    let store = store(&url, 3);
    assert_eq!(ids(&store), vec![passage(1, "").id()]);
    let rest: Vec<Passage> = passages("p").into_iter().skip(2).collect();
    assert_eq!(
        archival(&store).insert_many(rest, false).unwrap(),
        N as u64 - 2
    );
    assert_eq!((rows(&url), prepared(&url)), (N as i64 - 1, 1));
}

#[test]
fn parts_left_prepared_are_finished_before_migrations_that_would_wait_for_them() {
    let (_server, url) = server(true);
    memgpt_migrate::postgres::run_url(&url, memgpt_migrate::Command::Revert(2)).unwrap();
    leave_part(&url, &committed_xid(&url), 1);
    let mut config = PgConfig::new(url.clone());
    config.migration_lock_timeout = Duration::from_secs(1);
    let store = PgStore::open(config).unwrap();
    assert_eq!(ids(&store), vec![passage(1, "").id()]);
    assert_eq!(prepared(&url), 0);
}

#[test]
fn spread_upserts_keep_the_last_of_an_id_and_stop_at_another_tenants_id() {
    let (_server, url) = server(true);
    let spread = store(&url, 3);
    let mut repeated = passages("p");
    repeated[1_700] = passage(300, "again");
    assert_eq!(
        archival(&spread).insert_many(repeated, true).unwrap(),
        N as u64 - 1
    );
    let texts: Vec<String> = sorted(archival(&spread).get_all(&[], None).unwrap())
        .iter()
        .map(|p| p.text().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts[300], "again 300");
    assert_eq!(
        (rows(&url), writers(&url), prepared(&url)),
        (N as i64 - 1, 3, 0)
    );
    // Another tenant's passage, then a load that names its id.
    let other = Scope::agent(Uuid::from_u128(8), Uuid::from_u128(9));
    let theirs = Passage::builder(other.user_id(), "theirs")
        .id(Uuid::from_u128(42))
        .agent_id(other.agent_id().unwrap())
        .build()
        .unwrap();
    spread
        .connector::<Passage>(TableType::ArchivalMemory, other)
        .unwrap()
        .insert(&theirs)
        .unwrap();
    let mut load = passages("q");
    load[1_234] = passage(1_234, "q")
        .to_builder()
        .id(theirs.id())
        .build()
        .unwrap();
    let err = archival(&spread)
        .insert_many(load.clone(), true)
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { id, .. } if id == theirs.id()),
        "{err:?}"
    );
    let one = store(&url, 1);
    assert_eq!(
        format!("{err:?}"),
        format!("{:?}", archival(&one).insert_many(load, true).unwrap_err())
    );
    assert_eq!((rows(&url), prepared(&url)), (N as i64, 0));
}

/// Inserts `p`'s id, tenant and text by hand (a part written by another process).
fn archival_row(c: &mut PgConnection, p: &Passage) {
    diesel::sql_query(
        "INSERT INTO memgpt_archival_memory_agent (id, user_id, agent_id, text, created_at) \
         VALUES ($1, $2, $3, $4, now())",
    )
    .bind::<diesel::sql_types::Uuid, _>(p.id())
    .bind::<diesel::sql_types::Uuid, _>(p.user_id())
    .bind::<diesel::sql_types::Uuid, _>(p.agent_id().unwrap())
    .bind::<diesel::sql_types::Text, _>(p.text().unwrap_or_default())
    .execute(c)
    .unwrap();
}

/// A TCP proxy in front of `port` that forwards every connection both ways, except that
/// the first server reply holding `tag` once armed is not forwarded: that connection is
/// cut there (both sockets shut), as a network that fails after the server did the work.
fn cutting_proxy(
    port: u16,
    tag: &'static [u8],
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let local = listener.local_addr().unwrap().port();
    let armed = Arc::new(AtomicBool::new(false));
    let arm = armed.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                return;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = c_in.read(&mut buf) {
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let armed = armed.clone();
            std::thread::spawn(move || {
                let (mut s_in, mut c_out) = (server, client);
                let mut buf = [0u8; 65536];
                while let Ok(n @ 1..) = s_in.read(&mut buf) {
                    let holds = buf[..n].windows(tag.len()).any(|w| w == tag);
                    if holds && armed.swap(false, Ordering::SeqCst) {
                        let _ = c_out.shutdown(Shutdown::Both);
                        let _ = s_in.shutdown(Shutdown::Both);
                        return;
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (local, arm)
}

/// A store through a [`cutting_proxy`] cutting the first reply holding `tag`, armed.
fn store_cut_at(
    url: &DatabaseUrl,
    tag: &'static [u8],
) -> (PgStore, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let port = url
        .expose()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap();
    let (proxy, arm) = cutting_proxy(port, tag);
    let mut config = PgConfig::new(DatabaseUrl::new(format!(
        "postgres://postgres@127.0.0.1:{proxy}/postgres"
    )));
    config.pool_size = 5;
    config.max_overflow = 0;
    config.load_connections = 3;
    // Were an orphan part waited for, the written-again call would end here.
    config.statement_timeout = Duration::from_secs(20);
    (PgStore::open(config).unwrap(), arm)
}

#[test]
fn a_part_prepared_whose_reply_is_lost_is_rolled_back_before_the_call_is_written_again() {
    let (_server, url) = server(true);
    let (store, arm) = store_cut_at(&url, b"PREPARE TRANSACTION\0");
    arm.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    assert_eq!(
        archival(&store).insert_many(passages("p"), false).unwrap(),
        N as u64
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (rows(&url), writers(&url), prepared(&url)),
        (N as i64, 1, 0)
    );
}

/// The caller's `COMMIT` done on the server, its reply lost: the call reports the lost
/// connection, and the parts follow what the server did — every row, nothing prepared.
#[test]
fn a_spread_load_whose_commit_reply_is_lost_finishes_its_parts_as_the_server_committed() {
    let (_server, url) = server(true);
    let (store, arm) = store_cut_at(&url, b"COMMIT\0");
    arm.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = archival(&store)
        .insert_many(passages("p"), false)
        .unwrap_err();
    assert!(matches!(err, Error::ConnectionLost { .. }), "{err:?}");
    assert_eq!(
        (rows(&url), writers(&url), prepared(&url)),
        (N as i64, 3, 0)
    );
}
