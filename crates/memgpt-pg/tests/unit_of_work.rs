//! Units of work when the server fails a statement or loses the connection mid-way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Integer, Text};
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::{
    DatabaseUrl, Document, Message, Record, Role, Scope, StorageConnector, TableType,
};
use memgpt_pg::PgConfig;
use memgpt_pg::PgStore;
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

fn store(db: &TempDatabase, app: &str) -> PgStore {
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.application_name = app.to_owned();
    config.pool_size = 2;
    config.max_overflow = 2;
    config.statement_timeout = Duration::from_millis(300);
    PgStore::open(config).unwrap()
}

fn message(s: &Scope, text: &str) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(text)
        .build()
        .unwrap()
}

/// The reproduction: a read inside the unit of work fails at the server (a lock
/// held by another session, then the statement timeout); the closure ignores the error.
/// The failed read is rolled back alone, and the write before it commits: `Ok` means
/// committed.
#[test]
fn a_failed_read_inside_a_unit_of_work_rolls_back_alone_and_the_write_commits() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let app = format!("memgpt-uow-{}", Uuid::new_v4().simple());
    let store = store(&db, &app);
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let m = message(&s, "kept");
    let mut locker = db.connect().unwrap();
    locker
        .batch_execute("BEGIN; LOCK TABLE memgpt_documents IN ACCESS EXCLUSIVE MODE;")
        .unwrap();
    let read_error = store
        .transaction(|tx| {
            let recall = tx.connector::<Message>(TableType::RecallMemory, s)?;
            let docs = tx.connector::<Document>(TableType::Documents, Scope::user(s.user_id()))?;
            recall.insert(&m)?;
            let read = docs.get_all(&[], None);
            // The unit of work goes on after the failed statement.
            assert_eq!(recall.size(&[])?, 1);
            Ok(read.unwrap_err())
        })
        .unwrap();
    assert!(
        read_error.to_string().contains("statement timeout"),
        "{read_error}"
    );
    locker.batch_execute("ROLLBACK;").unwrap();
    let recall = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    assert_eq!(recall.get(m.id()).unwrap(), Some(m));
}

/// The unit of work's own connection is terminated between two writes: the second write
/// fails, the closure ignores it and returns `Ok`, and the unit of work reports
/// `Aborted` — neither write is in the table — and the store goes on working.
#[test]
fn a_connection_lost_inside_a_unit_of_work_is_reported_as_aborted() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let app = format!("memgpt-uow-{}", Uuid::new_v4().simple());
    let store = store(&db, &app);
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let (m1, m2) = (message(&s, "first"), message(&s, "second"));
    let mut admin = db.connect().unwrap();
    let e = store
        .transaction(|tx| {
            let recall = tx.connector::<Message>(TableType::RecallMemory, s)?;
            recall.insert(&m1)?;
            let pids: Vec<Pid> = diesel::sql_query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
                 AND state = 'idle in transaction'",
            )
            .bind::<Text, _>(&app)
            .load(&mut admin)
            .unwrap();
            assert_eq!(pids.len(), 1, "the unit of work's backend");
            diesel::sql_query("SELECT pg_terminate_backend($1)")
                .bind::<Integer, _>(pids[0].pid)
                .execute(&mut admin)
                .unwrap();
            let lost = recall.insert(&m2).unwrap_err();
            assert!(
                matches!(lost, memgpt_core::Error::ConnectionLost { .. }),
                "{lost}"
            );
            // A later call fails at once.
            assert!(matches!(
                recall.size(&[]).unwrap_err(),
                memgpt_core::Error::Aborted { .. }
            ));
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(e, memgpt_core::Error::Aborted { .. }), "{e}");
    let recall = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    assert_eq!(recall.size(&[]).unwrap(), 0);
    recall.insert(&m1).unwrap();
    assert_eq!(recall.size(&[]).unwrap(), 1);
}

/// `idle_in_transaction_session_timeout` is set on every pooled connection.
#[test]
fn pooled_connections_end_idle_transactions() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db, "memgpt-uow-settings");
    let settings = store.session_settings().unwrap();
    assert!(
        settings.contains(&(
            "idle_in_transaction_session_timeout".to_owned(),
            "1min".to_owned()
        )),
        "{settings:?}"
    );
}
