//! Each wait of one call for connections counts from one start, within one pool timeout.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Result, Role, Scope, StorageConnector, TableType};
use memgpt_testing::{OwnServer, TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

use crate::pool::Lease;
use crate::{PgConfig, PgStore};

/// The one column of the statements below.
#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// Polls `done` every 5 ms for at most 30 s.
fn until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "not within 30 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A store on a database of its own: a pool of one, `timeout`, every connection within
/// the pre-ping bypass (the pool hands it over unpinged; the call checks it).
fn pool_of_one(timeout: Duration) -> (TempDatabase, PgStore) {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    (config.pool_size, config.max_overflow) = (1, 0);
    config.pool_timeout = timeout;
    config.pre_ping_bypass = Duration::from_secs(600);
    let store = PgStore::open(config).unwrap();
    (db, store)
}

/// Ends session `pid` and waits until the server has let it go.
fn terminate(admin: &mut PgConnection, pid: i32) {
    diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
        .execute(admin)
        .unwrap();
    let gone = format!("SELECT pid FROM pg_stat_activity WHERE pid = {pid}");
    until(|| {
        diesel::sql_query(&gone)
            .load::<Pid>(admin)
            .unwrap()
            .is_empty()
    });
}

/// A connection to the server's own database (a database's sessions cannot close it).
fn admin() -> PgConnection {
    PgConnection::establish(&std::env::var(VECTOR_SERVER).unwrap()).unwrap()
}

/// On a pool of one (timeout 4 s), the only connection is held while the server ends
/// its session and the database is closed to new connections — or, with
/// `slow_logins`, each new session takes 2 s to log in. `call` waits 2.5 s for it (the
/// time it spends is the scenario, not a synchronisation), gets it back gone, and
/// cannot open another in time: it fails with the loss within the 4 s (plus a margin),
/// not after 2.5 s and a fresh 4 s, and not as a pool timeout.
fn waits_within_one_pool_timeout(
    slow_logins: bool,
    call: impl Fn(&PgStore, Scope) -> Result<()> + Sync,
) {
    let timeout = Duration::from_secs(4);
    let (db, store) = pool_of_one(timeout);
    let scope = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let mut held = store.checkout().unwrap();
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut *held)
        .unwrap()
        .pid;
    let mut admin = admin();
    let allow = |on: bool| format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {on}", db.name());
    if slow_logins {
        let mut own = PgConnection::establish(db.url().expose()).unwrap();
        own.batch_execute(
            "CREATE FUNCTION slow_login() RETURNS event_trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(2); END $$; \
             CREATE EVENT TRIGGER slow_login ON login EXECUTE FUNCTION slow_login();",
        )
        .unwrap();
    } else {
        diesel::sql_query(allow(false)).execute(&mut admin).unwrap();
    }
    terminate(&mut admin, pid);
    let (elapsed, got) = std::thread::scope(|s| {
        let caller = s.spawn(|| {
            let start = Instant::now();
            let got = call(&store, scope);
            (start.elapsed(), got)
        });
        until(|| store.metrics().waiting > 0);
        std::thread::sleep(Duration::from_millis(2_500));
        drop(held);
        caller.join().unwrap()
    });
    diesel::sql_query(allow(true)).execute(&mut admin).unwrap();
    assert!(matches!(got, Err(Error::ConnectionLost { .. })), "{got:?}");
    let within = timeout..timeout + Duration::from_millis(750);
    assert!(within.contains(&elapsed), "waited {elapsed:?}");
}

fn read(store: &PgStore, scope: Scope) -> Result<()> {
    read_size(store, scope).map(drop)
}

fn write(store: &PgStore, scope: Scope) -> Result<()> {
    let recall = store.connector::<Message>(TableType::RecallMemory, scope)?;
    let agent = scope.agent_id().unwrap_or_default();
    let m = Message::builder(scope.user_id(), agent, Role::User)
        .text("never written")
        .build()?;
    recall.insert(&m)
}

#[test]
fn a_unit_of_work_replacing_a_connection_found_gone_waits_one_pool_timeout() {
    waits_within_one_pool_timeout(false, |store, _| store.checkout().map(drop));
}

/// The connection found gone is the error, not a pool timeout, when no other could be
/// opened in what was left of the wait (before: `PoolTimeout` naming a pool with no
/// connection open, which says every connection was busy).
#[test]
fn a_connection_found_gone_with_none_opened_in_time_is_the_error() {
    waits_within_one_pool_timeout(true, |store, _| store.checkout().map(drop));
}

#[test]
fn a_read_run_again_waits_within_its_first_checkouts_pool_timeout() {
    waits_within_one_pool_timeout(false, read);
}

#[test]
fn a_read_run_again_with_none_opened_in_time_fails_with_the_loss() {
    waits_within_one_pool_timeout(true, read);
}

#[test]
fn a_write_run_again_waits_within_its_first_checkouts_pool_timeout() {
    waits_within_one_pool_timeout(false, write);
}

/// The time a call ran on its connection before the loss is not a wait: a read blocked
/// 2.5 s behind another session's lock (past its 2 s pool timeout; the time is the
/// scenario), whose session is then ended, runs again on a new connection and answers.
#[test]
fn a_read_that_ran_past_the_pool_timeout_before_its_loss_runs_again() {
    let (db, store) = pool_of_one(Duration::from_secs(2));
    let scope = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let mut locker = PgConnection::establish(db.url().expose()).unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE memgpt_recall_memory_agent IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut admin = admin();
    let got = std::thread::scope(|s| {
        let reader = s.spawn(|| read_size(&store, scope));
        let blocked = format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
            db.name()
        );
        let mut pid = None;
        until(|| {
            pid = diesel::sql_query(&blocked)
                .load::<Pid>(&mut admin)
                .unwrap()
                .first()
                .map(|p| p.pid);
            pid.is_some()
        });
        std::thread::sleep(Duration::from_millis(2_500));
        terminate(&mut admin, pid.unwrap());
        locker.batch_execute("ROLLBACK").unwrap();
        reader.join().unwrap()
    });
    assert_eq!(got.unwrap(), 0);
    assert_eq!(store.metrics().reruns, 1);
}

fn read_size(store: &PgStore, scope: Scope) -> Result<u64> {
    store
        .connector::<Message>(TableType::RecallMemory, scope)?
        .size(&[])
}

/// A store of `size + overflow` connections (2 s pool timeout) on a primary with a
/// streaming replica, and `held` leases of the replica's pool taken.
fn on_a_busy_replica(
    size: u32,
    overflow: u32,
    held: usize,
) -> (Vec<OwnServer>, PgStore, Vec<Lease>) {
    let primary = OwnServer::start("trust", "").unwrap();
    let replica = primary.replica().unwrap();
    let mut config = PgConfig::new(primary.url(""));
    config.replica_urls = vec![replica.url("")];
    (config.pool_size, config.max_overflow) = (size, overflow);
    config.pool_timeout = Duration::from_secs(2);
    let store = PgStore::open(config).unwrap();
    // The replica serves once it has replayed the migrations.
    let mut leases = Vec::new();
    until(|| {
        let reads = store.metrics().replica_reads;
        let lease = store.read_checkout().unwrap();
        if store.metrics().replica_reads > reads {
            leases.push(lease);
        }
        leases.len() == held
    });
    (vec![primary, replica], store, leases)
}

/// A read's wait for a busy replica and then for the primary fits in one pool timeout:
/// pools of one (timeout 2 s), the replica's connection and the primary's held, a third
/// read is a pool timeout within 2 s (plus a margin), not after 2 s on the replica and
/// 2 s more on the primary.
#[test]
fn a_read_waiting_for_a_replica_then_the_primary_waits_one_pool_timeout() {
    let (_servers, store, held) = on_a_busy_replica(1, 0, 1);
    let on_primary = store.checkout().unwrap();
    let start = Instant::now();
    let got = store.read_checkout().map(drop);
    let elapsed = start.elapsed();
    drop((held, on_primary));
    assert!(matches!(got, Err(Error::PoolTimeout { .. })), "{got:?}");
    let within = Duration::from_secs(2)..Duration::from_millis(2_750);
    assert!(within.contains(&elapsed), "waited {elapsed:?}");
}

/// A read that waited for a busy replica still has time to open a connection on the
/// primary, where there is room: pools of 1 + 1, the replica's two connections and the
/// primary's one held, the read is served by a new primary connection.
#[test]
fn a_read_after_a_busy_replica_opens_a_connection_on_the_primary() {
    let (_servers, store, held) = on_a_busy_replica(1, 1, 2);
    let on_primary = store.checkout().unwrap();
    let fallbacks = store.metrics().replica_fallbacks;
    let got = store.read_checkout().map(drop);
    drop((held, on_primary));
    assert!(got.is_ok(), "{got:?}");
    assert_eq!(store.metrics().replica_fallbacks, fallbacks + 1);
}
