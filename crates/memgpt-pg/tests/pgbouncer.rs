//! Behind PgBouncer in transaction mode (`MEMGPT_TEST_PGBOUNCER_URL`, started by `cargo
//! xtask test`; 20 server connections per database): what a transaction pooler breaks —
//! startup options, session settings, prepared statements, temporary staging tables,
//! migrations under a session lock — handled. The conformance suite runs through it too
//! (`conformance pgbouncer::…`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Message, Role, Scope, StorageConnector, TableType};
use memgpt_migrate::Command;
use memgpt_pg::{PgConfig, PgStore, Pooler};
use memgpt_testing::{
    peak_connections, OwnPgBouncer, OwnServer, TempDatabase, PGBOUNCER, VECTOR_SERVER,
};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A database migrated directly, and the settings to reach it through PgBouncer.
fn migrated() -> (TempDatabase, PgConfig) {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    memgpt_migrate::postgres::run_url(db.url(), Command::Up).unwrap();
    let mut config = PgConfig::new(db.url_via(PGBOUNCER).unwrap());
    config.pooler = Pooler::Transaction;
    (db, config)
}

fn message(scope: Scope, text: &str) -> Message {
    Message::builder(scope.user_id(), scope.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

fn settings(app: &str, statement_timeout: &str) -> Vec<(String, String)> {
    vec![
        ("application_name".to_owned(), app.to_owned()),
        (
            "idle_in_transaction_session_timeout".to_owned(),
            "1min".to_owned(),
        ),
        ("jit".to_owned(), "off".to_owned()),
        ("statement_timeout".to_owned(), statement_timeout.to_owned()),
    ]
}

/// PgBouncer refuses the startup `options` a direct connection carries: the error names
/// the setting that fixes it, and no password.
#[test]
fn pgbouncer_without_the_setting_is_a_config_error_naming_it() {
    let (_db, mut config) = migrated();
    config.pooler = Pooler::Direct;
    let err = PgStore::open(config).unwrap_err();
    match &err {
        Error::Config {
            variable, reason, ..
        } => {
            assert_eq!(variable, "MEMGPT_PG_PGBOUNCER");
            assert!(reason.contains("MEMGPT_PG_PGBOUNCER=transaction"), "{err}");
            assert!(reason.contains("unsupported startup parameter"), "{err}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// Migrations hold a session advisory lock, which a transaction pooler would strand on a
/// server connection: opening through PgBouncer applies none, fails naming the pending
/// ones and where to run them, and leaves the database untouched.
#[test]
fn pgbouncer_open_applies_no_migration_and_says_to_run_them_directly() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(db.url_via(PGBOUNCER).unwrap());
    config.pooler = Pooler::Transaction;
    let err = PgStore::open(config.clone()).unwrap_err();
    let Error::Migration { message } = &err else {
        panic!("expected a migration error, got {err:?}");
    };
    assert!(message.starts_with("9 migration(s) pending"), "{message}");
    assert!(
        message.contains("behind PgBouncer in transaction mode (MEMGPT_PG_PGBOUNCER=transaction)"),
        "{message}"
    );
    assert!(message.contains("against the server directly"), "{message}");
    // The command a user of the crates has, not the repository's `cargo xtask`.
    assert!(
        message.contains("run `memgpt-store migrate up`"),
        "{message}"
    );
    assert!(!message.contains("xtask"), "{message}");
    let mut conn = db.connect().unwrap();
    assert_eq!(
        memgpt_migrate::postgres::pending(&mut conn).unwrap().len(),
        9
    );
    // In this database: other tests on the same server may hold theirs.
    let locks: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(locks[0].n, 0, "no advisory lock left behind");
    // Migrated directly, the same settings open.
    memgpt_migrate::postgres::run_url(db.url(), Command::Up).unwrap();
    PgStore::open(config).unwrap();
}

/// The server's defaults (statement_timeout 0, jit on) are not the store's: every call
/// sets them in its own transaction, and they hold — a call blocked behind a lock is
/// cancelled by the store's statement timeout, reads and writes alike.
#[test]
fn pgbouncer_every_call_runs_with_the_stores_settings() {
    let (db, mut config) = migrated();
    config.application_name = "memgpt-bouncer-settings".to_owned();
    config.statement_timeout = Duration::from_millis(400);
    config.pool_size = 2;
    let store = PgStore::open(config).unwrap();
    assert!(store.settings_per_call());
    assert_eq!(
        store.session_settings().unwrap(),
        settings("memgpt-bouncer-settings", "400ms")
    );
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    c.insert(&message(scope, "before the lock")).unwrap();

    // Another session locks the table; a watchdog releases it should a call hang (the
    // timeout not applied), so that the test fails rather than waits forever.
    let mut holder = db.connect().unwrap();
    holder
        .batch_execute("BEGIN; LOCK TABLE memgpt_recall_memory_agent IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let (done, watchdog) = mpsc::channel::<()>();
    let released = std::thread::spawn(move || {
        let hung = watchdog.recv_timeout(Duration::from_secs(30)).is_err();
        holder.batch_execute("ROLLBACK").unwrap();
        hung
    });
    let read = c.size(&[]);
    let write = c.insert(&message(scope, "during the lock"));
    done.send(()).unwrap();
    assert!(!released.join().unwrap(), "a call waited 30 s on the lock");
    assert!(matches!(read, Err(Error::Timeout { .. })), "{read:?}");
    assert!(matches!(write, Err(Error::Timeout { .. })), "{write:?}");
    assert_eq!(c.size(&[]).unwrap(), 1, "the cancelled write left nothing");
}

/// With the store's settings as the database's defaults, calls need no transaction of
/// their own: the store sees it at open.
#[test]
fn pgbouncer_matching_server_defaults_make_calls_one_statement() {
    let (db, config) = migrated();
    let mut conn = db.connect().unwrap();
    conn.batch_execute(&format!(
        "ALTER DATABASE {name} SET jit = off; \
         ALTER DATABASE {name} SET statement_timeout = 60000; \
         ALTER DATABASE {name} SET idle_in_transaction_session_timeout = 60000",
        name = db.name()
    ))
    .unwrap();
    let store = PgStore::open(config).unwrap();
    assert!(!store.settings_per_call());
    assert_eq!(
        store.session_settings().unwrap(),
        settings("memgpt-store", "1min")
    );
    let scope = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope)
        .unwrap();
    c.insert(&message(scope, "one")).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

/// Forty client connections share PgBouncer's twenty server connections: single inserts,
/// batches through the COPY path (a temporary staging table), reads and units of work from
/// forty threads. Named prepared statements or a staging table outliving its transaction
/// would fail here; the server never sees more than twenty connections of the database.
#[test]
fn pgbouncer_forty_threads_share_twenty_server_connections() {
    let (db, mut config) = migrated();
    config.pool_size = 40;
    config.max_overflow = 0;
    let store = PgStore::open(config).unwrap();
    let ((), peak) = peak_connections(&db, || {
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..40u128)
                .map(|t| {
                    let store = &store;
                    s.spawn(move || -> Result<(), Error> {
                        let scope =
                            Scope::agent(Uuid::from_u128(t % 4 + 1), Uuid::from_u128(t + 100));
                        let c = store.connector::<Message>(TableType::RecallMemory, scope)?;
                        for round in 0..5u64 {
                            c.insert(&message(scope, &format!("alone {round}")))?;
                            let batch: Vec<Message> = (0..1_200)
                                .map(|i| message(scope, &format!("batch {round} row {i}")))
                                .collect();
                            c.insert_many(batch, false)?;
                            store.transaction(|tx| {
                                let c = tx.connector::<Message>(TableType::RecallMemory, scope)?;
                                c.insert(&message(scope, &format!("in a unit {round}")))?;
                                assert_eq!(c.size(&[])?, (round + 1) * 1_202);
                                Ok(())
                            })?;
                            assert_eq!(c.size(&[])?, (round + 1) * 1_202);
                            assert_eq!(c.query_text("alone", None, 0)?.len() as u64, round + 1);
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                w.join().unwrap().unwrap();
            }
        })
    })
    .unwrap();
    assert!(
        peak <= 20,
        "the server saw {peak} connections of the database"
    );
    assert!(
        peak >= 2,
        "forty threads should have used several server connections"
    );
    assert_eq!(store.metrics().timeouts, 0);
}

/// PgBouncer refuses every connection with the SQLSTATE of a protocol violation (`08P01`)
/// and a text of its own: a wrong password there is still `Error::Authentication`, and
/// the password shows nowhere.
#[test]
fn pgbouncer_refusing_a_wrong_password_is_an_authentication_error() {
    let server = OwnServer::start("trust", "").unwrap();
    memgpt_migrate::postgres::run_url(&server.url(""), Command::Up).unwrap();
    let bouncer = OwnPgBouncer::start(&server, "richtig-S3cret").unwrap();
    let mut config = PgConfig::new(bouncer.url("falsch-S3cret"));
    config.pooler = Pooler::Transaction;
    let e = PgStore::open(config.clone()).unwrap_err();
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("S3cret"), "{e:?}");
    config.database_url = bouncer.url("richtig-S3cret");
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(s, "through PgBouncer")).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}
