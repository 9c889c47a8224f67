//! The pre-ping bypass (`PgConfig::pre_ping_bypass`): a read outside a unit of work takes
//! a connection used a moment ago without pinging it, and when that connection turns out
//! gone, the read runs again on a checked one — the caller sees no error (fault matrix
//! row 3). A write's `BEGIN` is its check: should it find the connection gone, the write
//! runs on a checked one; a write that began never runs again. The bypass is set to an hour here, so
//! that every checkout after the first is within it, whatever the machine's speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use diesel::sql_types::{Integer, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgConnector, PgStore, Pooler};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// A store of `pool` connections whose checkouts all fall within the bypass, its
/// application name, an admin connection, one agent's recall memory, and their database
/// (the last field: fields drop in order, so the database goes after its connections).
struct Fixture {
    store: PgStore,
    app: String,
    admin: PgConnection,
    scope: Scope,
    recall: PgConnector<Message>,
    _db: TempDatabase,
}

fn fixture(pool: u32) -> Fixture {
    fixture_with(pool, |_| {})
}

/// [`fixture`], the store's configuration changed by `change` first.
fn fixture_with(pool: u32, change: impl FnOnce(&mut PgConfig)) -> Fixture {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let app = format!("memgpt-pre-ping-{}", Uuid::new_v4().simple());
    let mut c = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    c.application_name = app.clone();
    c.pool_size = pool;
    c.max_overflow = 0;
    c.pre_ping_bypass = Duration::from_secs(3600);
    change(&mut c);
    // Migrated first: a store behind a transaction pooler does not migrate at open.
    memgpt_migrate::postgres::run_url(db.url(), memgpt_migrate::Command::Up).unwrap();
    let store = PgStore::open(c).unwrap();
    let scope = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let recall = store.connector(TableType::RecallMemory, scope).unwrap();
    let admin = db.connect().unwrap();
    Fixture {
        store,
        app,
        admin,
        scope,
        recall,
        _db: db,
    }
}

fn pids(admin: &mut PgConnection, app: &str) -> BTreeSet<i32> {
    let rows: Vec<Pid> =
        diesel::sql_query("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
            .bind::<Text, _>(app)
            .load(admin)
            .unwrap();
    rows.into_iter().map(|p| p.pid).collect()
}

/// Terminates the store's `n` sessions and polls until the server has ended them.
fn terminate(admin: &mut PgConnection, app: &str, n: usize) -> BTreeSet<i32> {
    let before = pids(admin, app);
    assert_eq!(before.len(), n, "the pool's connections");
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind::<Text, _>(app)
    .execute(admin)
    .unwrap();
    let start = Instant::now();
    while !pids(admin, app).is_disjoint(&before) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the session did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    before
}

fn said(s: &Scope, text: &str) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

#[test]
fn a_read_that_finds_its_unchecked_connection_gone_runs_again_on_a_checked_one() {
    let mut f = fixture(1);
    let (store, app, s, recall) = (&f.store, f.app.as_str(), f.scope, &f.recall);
    let m = said(&s, "kept");
    recall.insert(&m).unwrap();
    for read in 0..4 {
        assert_eq!(recall.size(&[]).unwrap(), 1);
        let before = terminate(&mut f.admin, app, 1);
        let (checkouts, reruns) = (store.metrics().checkouts, store.metrics().reruns);
        let got = match read {
            0 => recall.get_all(&[], None).unwrap(),
            1 => recall.get(m.id()).unwrap().into_iter().collect(),
            2 => recall
                .get_all_paginated(&[], 10)
                .unwrap()
                .flat_map(Result::unwrap)
                .collect(),
            _ => recall.query_text("kept", None, 0).unwrap(),
        };
        assert_eq!(got, std::slice::from_ref(&m), "read {read}");
        // The unchecked connection, then a checked one on which the read ran again.
        assert_eq!(store.metrics().checkouts - checkouts, 2, "read {read}");
        assert_eq!(store.metrics().reruns - reruns, 1, "read {read}");
        assert!(pids(&mut f.admin, app).is_disjoint(&before));
    }
}

#[test]
fn a_write_whose_unchecked_connection_is_gone_runs_on_a_checked_one() {
    let mut f = fixture(1);
    let (store, app, s, recall) = (&f.store, f.app.as_str(), f.scope, &f.recall);
    recall.insert(&said(&s, "first")).unwrap();
    terminate(&mut f.admin, app, 1);
    let (checkouts, reruns) = (store.metrics().checkouts, store.metrics().reruns);
    recall.insert(&said(&s, "second")).unwrap();
    // The unchecked connection, found gone, then a checked one: one call run again.
    assert_eq!(store.metrics().checkouts - checkouts, 2);
    assert_eq!(store.metrics().reruns - reruns, 1);
    terminate(&mut f.admin, app, 1);
    recall
        .insert_many([said(&s, "third"), said(&s, "fourth")], false)
        .unwrap();
    terminate(&mut f.admin, app, 1);
    let units = store.transaction(|tx| {
        let c = tx.connector::<Message>(TableType::RecallMemory, s)?;
        c.insert(&said(&s, "fifth"))?;
        c.size(&[])
    });
    assert_eq!(units.unwrap(), 5);
}

#[test]
fn a_write_that_lost_its_connection_after_it_began_is_not_run_again() {
    let f = fixture(1);
    let (store, app, s, recall) = (&f.store, f.app.as_str(), f.scope, &f.recall);
    recall.insert(&said(&s, "first")).unwrap();
    let checkouts = store.metrics().checkouts;
    // 1,500 records: the first 1,001 are pulled before the call takes its connection, the
    // rest inside its transaction — where the 1,200th ends the connection.
    let mut admin = Some(f.admin);
    let (app2, s2) = (app.to_owned(), s);
    let records = (0..1_500).map(move |i| {
        if i == 1_200 {
            if let Some(mut admin) = admin.take() {
                terminate(&mut admin, &app2, 1);
            }
        }
        said(&s2, &format!("m{i}"))
    });
    let e = recall.insert_many(records, false).unwrap_err();
    assert!(
        matches!(e, memgpt_core::Error::ConnectionLost { .. }),
        "{e:?}"
    );
    // One connection: the write that began was not run again on another.
    assert_eq!(store.metrics().checkouts - checkouts, 1);
    assert_eq!(store.metrics().reruns, 0);
    assert_eq!(recall.size(&[]).unwrap(), 1);
}

/// A call whose unchecked connection is gone and that finds no other (the database now
/// refuses connections) fails with the refusal, and is not counted as run again.
#[test]
fn a_call_that_could_not_run_again_is_not_counted_as_run_again() {
    let mut f = fixture_with(1, |c| c.pool_timeout = Duration::from_secs(1));
    let (store, app, s, recall) = (&f.store, f.app.clone(), f.scope, &f.recall);
    recall.insert(&said(&s, "first")).unwrap();
    // From the server's own database: a database's sessions cannot close it to others.
    let server = std::env::var(memgpt_testing::VECTOR_SERVER).unwrap();
    let mut outside = <PgConnection as diesel::Connection>::establish(&server).unwrap();
    let allow = |on: bool| format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {on}", f._db.name());
    diesel::sql_query(allow(false))
        .execute(&mut outside)
        .unwrap();
    terminate(&mut f.admin, &app, 1);
    let (checkouts, reruns) = (store.metrics().checkouts, store.metrics().reruns);
    let e = recall.size(&[]).unwrap_err();
    diesel::sql_query(allow(true))
        .execute(&mut f.admin)
        .unwrap();
    assert!(
        matches!(e, memgpt_core::Error::ConnectionLost { .. }),
        "{e:?}"
    );
    assert_eq!(store.metrics().checkouts - checkouts, 1);
    assert_eq!(store.metrics().reruns, reruns);
    assert_eq!(recall.size(&[]).unwrap(), 1);
}

/// Behind a transaction pooler whose server defaults differ from the store's settings,
/// every call opens with `BEGIN; SET LOCAL …`: on a connection found gone there, a read and
/// a write run again on a checked one all the same.
#[test]
fn with_settings_per_call_a_call_whose_connection_is_gone_runs_on_a_checked_one() {
    let mut f = fixture_with(1, |c| {
        c.pooler = Pooler::Transaction;
        // The server's default is 0: the settings differ.
        c.statement_timeout = Duration::from_secs(7);
    });
    let (store, app, s, recall) = (&f.store, f.app.as_str(), f.scope, &f.recall);
    assert!(store.settings_per_call());
    recall.insert(&said(&s, "first")).unwrap();
    terminate(&mut f.admin, app, 1);
    let checkouts = store.metrics().checkouts;
    recall.insert(&said(&s, "second")).unwrap();
    assert_eq!(store.metrics().checkouts - checkouts, 2);
    terminate(&mut f.admin, app, 1);
    let checkouts = store.metrics().checkouts;
    assert_eq!(recall.size(&[]).unwrap(), 2);
    assert_eq!(store.metrics().checkouts - checkouts, 2);
}

#[test]
fn a_read_inside_a_unit_of_work_is_never_run_again_elsewhere() {
    let mut f = fixture(1);
    let (store, app, s, recall) = (&f.store, f.app.as_str(), f.scope, &f.recall);
    let done = store.transaction(|tx| {
        let c = tx.connector::<Message>(TableType::RecallMemory, s)?;
        c.insert(&said(&s, "not committed"))?;
        terminate(&mut f.admin, app, 1);
        // On another connection the read would not see the unit's own write: it fails.
        let read = c.size(&[]);
        assert!(read.is_err(), "{read:?}");
        read
    });
    assert!(
        matches!(
            done,
            Err(memgpt_core::Error::ConnectionLost { .. } | memgpt_core::Error::Aborted { .. })
        ),
        "{done:?}"
    );
    assert_eq!(recall.size(&[]).unwrap(), 0);
}

#[test]
fn reads_run_again_on_each_of_several_lost_connections() {
    let mut f = fixture(3);
    let (store, app, s, recall) = (&f.store, f.app.as_str(), f.scope, &f.recall);
    recall.insert(&said(&s, "kept")).unwrap();
    // The pool opens its three at open.
    let before = terminate(&mut f.admin, app, 3);
    let closed = store.metrics().closed;
    for _ in 0..6 {
        assert_eq!(recall.size(&[]).unwrap(), 1);
    }
    assert!(store.metrics().closed - closed >= 1);
    assert!(pids(&mut f.admin, app).is_disjoint(&before));
}

/// A panic of the caller's iterator unwinds through a write that began on an unchecked
/// connection: nothing of it is written, it is not run again, and the pool's one
/// connection is replaced for the next call.
#[test]
fn a_panic_unwinding_through_a_write_on_an_unchecked_connection_writes_nothing() {
    let f = fixture(1);
    let (store, s, recall) = (&f.store, f.scope, &f.recall);
    recall.insert(&said(&s, "first")).unwrap();
    let checkouts = store.metrics().checkouts;
    let records = (0..1_500).map(move |i| {
        assert!(i != 1_200, "the caller's iterator fails");
        said(&s, &format!("m{i}"))
    });
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        recall.insert_many(records, false)
    }));
    assert!(unwound.is_err());
    assert_eq!(store.metrics().checkouts - checkouts, 1);
    assert_eq!(store.metrics().reruns, 0);
    assert_eq!(recall.size(&[]).unwrap(), 1);
    recall.insert(&said(&s, "after")).unwrap();
    assert_eq!(recall.size(&[]).unwrap(), 2);
}

/// Threads share one store whose every connection the server ended: each thread's next
/// write finds its unchecked connection gone at `BEGIN` and runs on a checked one; every
/// record is written once.
#[test]
fn writes_from_threads_sharing_a_store_run_again_on_each_lost_connection() {
    let mut f = fixture(3);
    // The pool opens its three at open.
    let before = terminate(&mut f.admin, &f.app, 3);
    let (store, s) = (&f.store, f.scope);
    let start = std::sync::Barrier::new(3);
    std::thread::scope(|scope| {
        for t in 0..3 {
            let start = &start;
            scope.spawn(move || {
                let c: PgConnector<Message> = store.connector(TableType::RecallMemory, s).unwrap();
                start.wait();
                for i in 0..4 {
                    c.insert(&said(&s, &format!("t{t} m{i}"))).unwrap();
                }
            });
        }
    });
    assert_eq!(f.recall.size(&[]).unwrap(), 12);
    assert!(pids(&mut f.admin, &f.app).is_disjoint(&before));
    // Each gone connection was found either by a write's `BEGIN` (a rerun) or by the ping
    // of a rerun's checkout: at least the first write found one, at most three did.
    assert!(
        (1..=3).contains(&store.metrics().reruns),
        "{:?}",
        store.metrics()
    );
}

/// A read nested in a write's iterator, on a store whose connections the server ended:
/// the read finds its unchecked connection gone and runs again (one rerun); the write,
/// which takes its connection after the read gave a checked one back, is not run again;
/// every record is written once.
#[test]
fn a_read_nested_in_a_writes_iterator_runs_again_alone() {
    let mut f = fixture(2);
    terminate(&mut f.admin, &f.app, 2);
    let (store, s, recall) = (&f.store, f.scope, &f.recall);
    let sizes = std::sync::Mutex::new(Vec::new());
    let records = (0..3).map(|i| {
        if i == 0 {
            sizes.lock().unwrap().push(recall.size(&[]).unwrap());
        }
        said(&s, &format!("m{i}"))
    });
    assert_eq!(recall.insert_many(records, false).unwrap(), 3);
    assert_eq!(*sizes.lock().unwrap(), [0]);
    assert_eq!(store.metrics().reruns, 1);
    assert_eq!(recall.size(&[]).unwrap(), 3);
}

/// A write blocked behind a lock another session holds ends at the statement timeout
/// (`Error::Timeout`) and is not run again: it began.
#[test]
fn a_write_blocked_behind_another_sessions_lock_times_out_once() {
    let f = fixture_with(1, |c| c.statement_timeout = Duration::from_millis(300));
    let (store, s, recall) = (&f.store, f.scope, &f.recall);
    recall.insert(&said(&s, "first")).unwrap();
    let mut holder = f._db.connect().unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut holder,
        "BEGIN; LOCK TABLE memgpt_recall_memory_agent IN ACCESS EXCLUSIVE MODE",
    )
    .unwrap();
    let checkouts = store.metrics().checkouts;
    let e = recall.insert(&said(&s, "blocked")).unwrap_err();
    assert!(matches!(e, memgpt_core::Error::Timeout { .. }), "{e:?}");
    assert_eq!(store.metrics().checkouts - checkouts, 1);
    assert_eq!(store.metrics().reruns, 0);
    diesel::connection::SimpleConnection::batch_execute(&mut holder, "ROLLBACK").unwrap();
    assert_eq!(recall.size(&[]).unwrap(), 1);
}
