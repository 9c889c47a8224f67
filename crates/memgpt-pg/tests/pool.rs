//! The pool: sizes and overflow under load, timeouts, settings, unreachable servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_pg::PgConfig;
use memgpt_pg::PgStore;
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[test]
fn two_hundred_threads_on_twenty_plus_thirty_never_exceed_fifty_connections() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let app = format!("memgpt-pool-{}", Uuid::new_v4().simple());
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.application_name = app.clone();
    assert_eq!((config.pool_size, config.max_overflow), (20, 30));
    let store = PgStore::open(config).unwrap();
    let done = AtomicBool::new(false);
    let peak = AtomicI64::new(0);
    std::thread::scope(|s| {
        // The server's count of this application's connections, sampled throughout.
        s.spawn(|| {
            let mut conn = db.connect().unwrap();
            while !done.load(Ordering::Relaxed) {
                let n: Vec<Count> = diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind::<Text, _>(&app)
                .load(&mut conn)
                .unwrap();
                peak.fetch_max(n[0].n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let workers: Vec<_> = (0..200u128)
            .map(|t| {
                let store = &store;
                s.spawn(move || -> Result<(), Error> {
                    let scope = Scope::agent(Uuid::from_u128(t % 10 + 1), Uuid::from_u128(t + 100));
                    let c = store.connector::<Message>(TableType::RecallMemory, scope)?;
                    for r in 0..20 {
                        let m = Message::builder(
                            scope.user_id(),
                            scope.agent_id().unwrap(),
                            Role::User,
                        )
                        .text(format!("round {r}"))
                        .build()?;
                        c.insert(&m)?;
                        assert_eq!(
                            c.get_all(&[], Some(20))?.first().map(Record::id),
                            Some(m.id())
                        );
                        assert_eq!(c.size(&[])?, r + 1);
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let peak = peak.load(Ordering::Relaxed);
    let m = store.metrics();
    assert!(peak <= 50, "the server saw {peak} connections");
    assert!(m.opened <= 50 + m.closed, "{m:?}");
    assert!(m.connections <= 50, "{m:?}");
    assert_eq!(m.timeouts, 0, "{m:?}");
    assert!(m.checkouts >= 200 * 20 * 3, "{m:?}");
    assert!(
        peak > 20,
        "200 threads should have pushed the pool into overflow (peak {peak})"
    );
}

#[test]
fn an_exhausted_pool_times_out_with_its_state() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 1;
    config.max_overflow = 0;
    config.pool_timeout = Duration::from_secs(1);
    let store = PgStore::open(config).unwrap();
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let barrier = std::sync::Barrier::new(2);
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(|| {
            let wait_done = wait_done;
            store
                .transaction(|_| {
                    barrier.wait();
                    // Held until the other thread has seen its pool timeout.
                    wait_done.recv().unwrap();
                    Ok(())
                })
                .unwrap();
        });
        barrier.wait();
        let c = store
            .connector::<Message>(TableType::RecallMemory, scope)
            .unwrap();
        let outcome = c.size(&[]);
        done.send(()).unwrap();
        match outcome {
            Err(Error::PoolTimeout { waited, state }) => {
                assert!(waited >= Duration::from_millis(900), "{waited:?}");
                assert_eq!((state.connections, state.idle, state.max), (1, 0, 1));
            }
            other => panic!("expected a pool timeout, got {other:?}"),
        }
    });
    assert_eq!(store.metrics().timeouts, 1);
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    assert_eq!(c.size(&[]).unwrap(), 0);
}

#[test]
fn every_connection_runs_with_the_configured_settings() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 2;
    config.application_name = "memgpt-settings-test".to_owned();
    config.statement_timeout = Duration::from_millis(12_345);
    let store = PgStore::open(config).unwrap();
    assert_eq!(
        store.session_settings().unwrap(),
        vec![
            (
                "application_name".to_owned(),
                "memgpt-settings-test".to_owned()
            ),
            (
                "idle_in_transaction_session_timeout".to_owned(),
                "1min".to_owned()
            ),
            ("jit".to_owned(), "off".to_owned()),
            ("statement_timeout".to_owned(), "12345ms".to_owned()),
        ]
    );
    // Connections open on demand: the one a unit of work holds shows in the activity
    // read on another.
    let activity = store.transaction(|_| store.activity()).unwrap();
    assert!(
        !activity.is_empty(),
        "the pool's busy connection shows in pg_stat_activity"
    );
}

/// A URL that carries `options=` of its own keeps them, and the library's settings still
/// apply: merged, never replaced. The user's own setting of the same name wins.
#[test]
fn a_url_with_options_keeps_them_and_the_librarys_settings() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let url = format!(
        "{}{}options=-c%20statement_timeout%3D777",
        db.url().expose(),
        if db.url().expose().contains('?') {
            "&"
        } else {
            "?"
        }
    );
    let mut config = PgConfig::new(DatabaseUrl::new(url));
    config.pool_size = 1;
    config.application_name = "memgpt-options-test".to_owned();
    config.idle_in_transaction_timeout = Duration::from_millis(4_321);
    let store = PgStore::open(config).unwrap();
    assert_eq!(
        store.session_settings().unwrap(),
        vec![
            (
                "application_name".to_owned(),
                "memgpt-options-test".to_owned()
            ),
            (
                "idle_in_transaction_session_timeout".to_owned(),
                "4321ms".to_owned()
            ),
            ("jit".to_owned(), "off".to_owned()),
            ("statement_timeout".to_owned(), "777ms".to_owned()),
        ]
    );
}

#[test]
fn an_unreachable_server_is_connection_lost_without_the_password() {
    let mut config = PgConfig::new(DatabaseUrl::new(
        "postgres://postgres:s3cret-pw@127.0.0.1:1/nowhere",
    ));
    config.pool_timeout = Duration::from_secs(1);
    config.connect_timeout = Duration::from_secs(1);
    let err = PgStore::open(config.clone()).unwrap_err();
    assert!(
        matches!(err, memgpt_core::Error::ConnectionLost { .. }),
        "{err:?}"
    );
    for text in [err.to_string(), format!("{err:?}"), format!("{config:?}")] {
        assert!(!text.contains("s3cret-pw"), "{text}");
    }
}

#[test]
fn a_connection_held_past_the_leak_threshold_is_counted() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 1;
    // Far above a quick call's time even on a loaded machine: only the held one counts.
    config.leak_threshold = Some(Duration::from_secs(1));
    let store = PgStore::open(config).unwrap();
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    c.size(&[]).unwrap();
    assert_eq!(store.metrics().leaks, 0);
    store
        .transaction(|_| {
            // The hold is what is measured: past the threshold, whatever the machine.
            std::thread::sleep(Duration::from_millis(1_200));
            Ok(())
        })
        .unwrap();
    assert_eq!(store.metrics().leaks, 1);
}

/// Overflow connections close when they come back: eight callers at once on a pool of
/// 2 + 6 open eight connections, and the six returned while two are idle are closed at
/// once (QueuePool's rule), not after an idle timeout.
#[test]
fn overflow_connections_close_when_they_come_back() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 2;
    config.max_overflow = 6;
    let store = PgStore::open(config).unwrap();
    let barrier = std::sync::Barrier::new(8);
    let busy = std::thread::scope(|s| {
        let all: Vec<_> = (0..8)
            .map(|i| {
                let (store, barrier) = (&store, &barrier);
                s.spawn(move || {
                    store
                        .transaction(|_| {
                            // All eight hold a connection at once: six are overflow.
                            barrier.wait();
                            let m = store.metrics();
                            // The last one out of the barrier is in a settled pool.
                            barrier.wait();
                            Ok((i, m))
                        })
                        .unwrap()
                })
            })
            .collect();
        all.into_iter()
            .map(|h| h.join().unwrap().1)
            .collect::<Vec<_>>()
    });
    for m in busy {
        assert_eq!((m.connections, m.in_use, m.overflow), (8, 8, 6), "{m:?}");
    }
    let m = store.metrics();
    assert_eq!((m.connections, m.idle, m.overflow), (2, 2, 0), "{m:?}");
    assert!(m.closed >= 6, "{m:?}");
}

/// Under steady load the pool holds the busy connections and no idle ones besides: five
/// units of work busy on a pool of 5 + 20 are five server connections (r2d2's `min_idle`
/// would have opened five idle ones more), `metrics()` reports no overflow, and the
/// server never sees more, while the five stay busy through 200 polls of
/// `pg_stat_activity`.
#[test]
fn five_busy_callers_on_a_pool_of_five_hold_five_connections() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let app = format!("memgpt-pool-{}", Uuid::new_v4().simple());
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.application_name = app.clone();
    config.pool_size = 5;
    config.max_overflow = 20;
    let store = PgStore::open(config).unwrap();
    let held = std::sync::Barrier::new(6);
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let mut admin = db.connect().unwrap();
    let count = |admin: &mut diesel::PgConnection| -> i64 {
        diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1")
            .bind::<Text, _>(&app)
            .load::<Count>(admin)
            .unwrap()[0]
            .n
    };
    std::thread::scope(|s| {
        // Owned here: a failed assertion drops it while unwinding, which ends the waits.
        let release = release;
        for t in 0..5u128 {
            let (store, held, released) = (&store, &held, &released);
            s.spawn(move || {
                let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(t + 10));
                store
                    .transaction(|tx| {
                        tx.connector::<Message>(TableType::RecallMemory, scope)?
                            .size(&[])?;
                        held.wait();
                        released.lock().unwrap().recv().unwrap();
                        Ok(())
                    })
                    .unwrap();
            });
        }
        held.wait();
        let mut peak = 0;
        for _ in 0..200 {
            peak = peak.max(count(&mut admin));
            let m = store.metrics();
            assert_eq!((m.connections, m.in_use, m.overflow), (5, 5, 0), "{m:?}");
        }
        assert_eq!(
            peak, 5,
            "the server saw {peak} connections for five busy callers"
        );
        for _ in 0..5 {
            release.send(()).unwrap();
        }
    });
    let m = store.metrics();
    assert_eq!((m.connections, m.idle), (5, 5), "{m:?}");
    assert_eq!(count(&mut admin), 5);
}

/// Two connections come back at the same moment while two callers wait on a full pool
/// of 1 + 1: neither is closed while a caller waits (r2d2 wakes no waiter when it closes a
/// connection, so closing the second would leave the second caller to time out with room
/// in the pool). Each caller holds its connection until both were served.
#[test]
fn connections_coming_back_to_waiting_callers_are_never_closed() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 1;
    config.max_overflow = 1;
    config.pool_timeout = Duration::from_secs(2);
    let store = PgStore::open(config).unwrap();
    for round in 0..100 {
        let holding = std::sync::Barrier::new(3);
        let release = std::sync::Barrier::new(3);
        let (served_tx, served) = std::sync::mpsc::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel::<()>();
        let done = std::sync::Mutex::new(done);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (store, holding, release) = (&store, &holding, &release);
                s.spawn(move || {
                    store
                        .transaction(|_| {
                            holding.wait();
                            // Both come back together, once both callers wait.
                            release.wait();
                            Ok(())
                        })
                        .unwrap();
                });
            }
            holding.wait();
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let (store, served_tx, done) = (&store, served_tx.clone(), &done);
                    s.spawn(move || {
                        store.transaction(|_| {
                            served_tx.send(()).unwrap();
                            // Held until both callers were served (or the test gave up).
                            let _ = done.lock().unwrap().recv_timeout(Duration::from_secs(10));
                            Ok(())
                        })
                    })
                })
                .collect();
            while store.metrics().waiting < 2 {
                std::thread::yield_now();
            }
            release.wait();
            let both = (0..2).all(|_| served.recv_timeout(Duration::from_secs(5)).is_ok());
            drop(done_tx);
            let outcomes: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
            assert!(both, "round {round}: a caller was not served: {outcomes:?}");
        });
    }
}

/// A role limited to two connections opens a store of pool size 5 (pool timeout 30 s):
/// the open warms what it can and returns without waiting out the pool timeout, and the
/// store works within the limit.
#[test]
fn open_on_a_role_out_of_connection_slots_does_not_wait_the_pool_timeout() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    drop(PgStore::open(PgConfig::new(DatabaseUrl::new(db.url().expose()))).unwrap());
    let role = format!("memgpt_limited_{}", Uuid::new_v4().simple());
    let mut admin = db.connect().unwrap();
    diesel::connection::SimpleConnection::batch_execute(
        &mut admin,
        &format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 2; \
             GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}; \
             GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT TEMP ON DATABASE \"{}\" TO {role};",
            db.name()
        ),
    )
    .unwrap();
    let url = db
        .url()
        .expose()
        .replacen("postgres@", &format!("{role}@"), 1);
    let mut config = PgConfig::new(DatabaseUrl::new(url));
    config.pool_size = 5;
    config.max_overflow = 0;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let opened = PgStore::open(config).map(|s| {
            let c = s
                .connector::<Message>(
                    TableType::RecallMemory,
                    Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2)),
                )
                .and_then(|c| c.size(&[]));
            (s.metrics().connections, c)
        });
        let _ = tx.send((opened, start.elapsed()));
    });
    let (opened, took) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("PgStore::open hung");
    let (connections, size) = opened.unwrap();
    assert_eq!(connections, 2);
    assert_eq!(size.unwrap(), 0);
    assert!(took < Duration::from_secs(20), "open took {took:?}");
}

/// A canary password in every form libpq accepts never shows in the errors of an
/// unreachable server, nor in `Debug` of the configuration, nor in a migration's error; nor
/// in any form libpq refuses (a bare `%`, `%zz`, `%4` at the end, unquoted spaces in a
/// key=value string), whose raw piece libpq quotes in its own message.
#[test]
fn a_canary_password_never_shows_in_any_form() {
    for (url, parses) in [
        ("postgres://postgres:S3cret@127.0.0.1:1/nowhere", true),
        (
            "postgres://postgres@127.0.0.1:1/nowhere?sslpassword=x&password=S3cret",
            true,
        ),
        ("postgres://postgres:S%33cret@127.0.0.1:1/nowhere", true),
        ("postgres://postgres:pa?S3cret@127.0.0.1:1/nowhere", true),
        ("postgres://postgres:p@S3cret@127.0.0.1:1/nowhere", true),
        (
            "host=127.0.0.1 port=1 user=postgres password='S3cret' dbname=nowhere",
            true,
        ),
        (
            "host=127.0.0.1 port=1 user=postgres password='se S3cret' dbname=nowhere",
            true,
        ),
        (
            "postgres://postgres:50%offS3cret@127.0.0.1:1/nowhere",
            false,
        ),
        ("postgres://postgres:S3cret%zz@127.0.0.1:1/nowhere", false),
        ("postgres://postgres:S3cret%4@127.0.0.1:1/nowhere", false),
        (
            "postgres://postgres@127.0.0.1:1/nowhere?password=S3cret%4",
            false,
        ),
        (
            "postgres://postgres@127.0.0.1:1/nowhere?password=S3cret%zz&sslmode=disable",
            false,
        ),
        (
            "host=127.0.0.1 port=1 user=postgres password=se S3cret dbname=nowhere",
            false,
        ),
        (
            "host=127.0.0.1 port=1 user=postgres password=se S3cret=1 dbname=nowhere",
            false,
        ),
    ] {
        let mut config = PgConfig::new(DatabaseUrl::new(url));
        config.pool_timeout = Duration::from_secs(1);
        config.connect_timeout = Duration::from_secs(1);
        let err = PgStore::open(config.clone()).unwrap_err();
        if parses {
            assert!(
                matches!(err, memgpt_core::Error::ConnectionLost { .. }),
                "{url}: {err:?}"
            );
        } else {
            assert!(
                matches!(&err, memgpt_core::Error::Config { reason, .. }
                    if reason.starts_with("libpq cannot parse the connection string: ")),
                "{url}: {err:?}"
            );
        }
        let migrate = memgpt_migrate::postgres::run_url(
            &DatabaseUrl::new(url),
            memgpt_migrate::Command::Status,
        )
        .unwrap_err();
        for text in [
            err.to_string(),
            format!("{err:?}"),
            format!("{config:?}"),
            migrate.to_string(),
            format!("{migrate:?}"),
            DatabaseUrl::new(url).redacted(),
        ] {
            assert!(
                !text.contains("S3cret") && !text.contains("S%33cret"),
                "{url}: {text}"
            );
        }
    }
}

/// Statements whose text varies with a number of values — the multi-row `INSERT` of a
/// batch, the `IN (…)` lookup of the ids that already exist — are never kept prepared on a
/// connection: on a pool of one (every call on the same connection), 1,000 calls of sizes
/// 1 to 1,000 (a batch written, a batch refused on an existing id, a batch refused on a
/// repeated id, in turn) leave exactly the named prepared statements the first six left.
/// Reads are still kept: a new read shape adds one, and running it again adds none.
#[test]
fn prepared_statements_stay_bounded_whatever_the_batch_sizes() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 1;
    config.max_overflow = 0;
    let store = PgStore::open(config).unwrap();
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
                // The last record's id exists: the call looks up which of its ids do.
                records[n - 1] = taken.clone();
                let e = c.insert_many(records, false).unwrap_err();
                assert!(
                    matches!(e, Error::AlreadyExists { id, .. } if id == taken.id()),
                    "{e:?}"
                );
            }
            _ => {
                // The last record repeats the first: the records before it are looked up.
                records[n - 1] = records[0].clone();
                let e = c.insert_many(records, false).unwrap_err();
                assert!(
                    matches!(e, Error::DuplicateId { first: 0, second, .. } if second == n - 1),
                    "{e:?}"
                );
            }
        }
    };
    for n in 1..=6 {
        call(n);
    }
    let fixed = store.prepared_statements().unwrap();
    for n in 7..=1_000 {
        call(n);
    }
    assert_eq!(store.prepared_statements().unwrap(), fixed);
    // Reads are kept, once per shape: each new one adds one, running it again none.
    let written: u64 = (1..=1_000u64).filter(|n| n % 3 == 0).sum::<u64>() + 1;
    for _ in 0..2 {
        assert_eq!(c.size(&[]).unwrap(), written);
        assert_eq!(store.prepared_statements().unwrap(), fixed + 1);
    }
    for _ in 0..2 {
        assert_eq!(c.get_all(&[], Some(5)).unwrap().len(), 5);
        assert_eq!(store.prepared_statements().unwrap(), fixed + 2);
    }
    // Writes are prepared for each call, one record's too: an update adds none.
    for i in 0..2 {
        let changed = taken
            .to_builder()
            .text(format!("taken {i}"))
            .build()
            .unwrap();
        c.update(&changed).unwrap();
        assert_eq!(store.prepared_statements().unwrap(), fixed + 2);
    }
}
