//! Bulk loads straight into the table (binary `COPY` in call order, `direct.rs`) and what
//! happens when the table refuses one of their statements: the call is decided by the
//! staging path as before — the rows of its earlier statements taken back — on the
//! throwaway PostgreSQL 18 + pgvector.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgConnector, PgStore};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

fn store(db: &TempDatabase) -> PgStore {
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 2;
    config.max_overflow = 2;
    PgStore::open(config).unwrap()
}

fn scope() -> Scope {
    Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2))
}

fn recall(store: &PgStore) -> PgConnector<Message> {
    store.connector(TableType::RecallMemory, scope()).unwrap()
}

/// Message `i` of `s` (id `1_000_000 + i`), its text `text` then `i`, model `text`.
fn message(s: Scope, i: usize, text: &str) -> Message {
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .id(Uuid::from_u128(1_000_000 + i as u128))
        .text(format!("{text} {i}"))
        .model(text)
        .created_at(t0 + chrono::Duration::seconds(i as i64))
        .build()
        .unwrap()
}

/// Message `i` of `s` as [`message`] makes it, with `pad` after its text.
fn padded(s: Scope, i: usize, text: &str, pad: &str) -> Message {
    let m = message(s, i, text);
    let long = format!("{} {pad}", m.text().unwrap());
    m.to_builder().text(long).build().unwrap()
}

/// 1,200 messages of 16 KiB each: about 19 MiB, three COPY statements of 8 MiB.
fn wide(text: &str) -> Vec<Message> {
    let pad = "w".repeat(16 * 1024);
    (0..1_200).map(|i| padded(scope(), i, text, &pad)).collect()
}

#[test]
fn a_repeat_in_a_later_copy_statement_follows_the_duplicate_rule() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    let c = recall(&store);
    let mut batch = wide("first");
    let again = batch[1_150].to_builder().id(batch[5].id()).build().unwrap();
    batch[1_150] = again.clone();
    match c.insert_many(batch.clone(), false) {
        Err(Error::DuplicateId { id, first, second }) => {
            assert_eq!((id, first, second), (again.id(), 5, 1_150));
        }
        other => panic!("expected a duplicate id, got {other:?}"),
    }
    assert_eq!(
        c.size(&[]).unwrap(),
        0,
        "nothing of the refused call is left"
    );
    assert_eq!(c.insert_many(batch.clone(), true).unwrap(), 1_199);
    assert_eq!(c.size(&[]).unwrap(), 1_199);
    assert_eq!(
        c.get(again.id()).unwrap(),
        Some(again),
        "the last record wins"
    );
    assert_eq!(c.get(batch[0].id()).unwrap().as_ref(), Some(&batch[0]));
    assert_eq!(
        c.get(batch[1_199].id()).unwrap().as_ref(),
        Some(&batch[1_199])
    );
}

#[test]
fn another_tenants_row_met_in_a_later_copy_statement_fails_the_call_whole() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    let theirs = Scope::agent(Uuid::from_u128(7), Uuid::from_u128(8));
    let other: PgConnector<Message> = store.connector(TableType::RecallMemory, theirs).unwrap();
    let victim = message(theirs, 1_100, "theirs");
    other.insert(&victim).unwrap();
    let c = recall(&store);
    let batch = wide("mine");
    let e = c.insert_many(batch.clone(), true).unwrap_err();
    assert!(
        matches!(e, Error::AlreadyExists { id, .. } if id == victim.id()),
        "{e:?}"
    );
    assert_eq!(other.get(victim.id()).unwrap(), Some(victim.clone()));
    assert_eq!(
        c.size(&[]).unwrap(),
        0,
        "nothing of the refused call is left"
    );
    // The session came back clean: the same load without that record completes.
    let rest: Vec<Message> = batch
        .into_iter()
        .filter(|m| m.id() != victim.id())
        .collect();
    assert_eq!(c.insert_many(rest, false).unwrap(), 1_199);
    assert_eq!(other.size(&[]).unwrap(), 1);
}

#[test]
fn an_own_row_met_in_a_later_copy_statement_is_updated_with_exists_ok() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    let c = recall(&store);
    let old = message(scope(), 1_100, "old");
    c.insert(&old).unwrap();
    let batch = wide("new");
    let e = c.insert_many(batch.clone(), false).unwrap_err();
    assert!(
        matches!(e, Error::AlreadyExists { id, .. } if id == old.id()),
        "{e:?}"
    );
    assert_eq!(c.size(&[]).unwrap(), 1);
    assert_eq!(c.get(old.id()).unwrap(), Some(old.clone()));
    assert_eq!(c.insert_many(batch.clone(), true).unwrap(), 1_200);
    assert_eq!(c.size(&[]).unwrap(), 1_200);
    assert_eq!(c.get(old.id()).unwrap().as_ref(), Some(&batch[1_100]));
}

#[test]
fn bulk_loads_of_several_copy_statements_follow_each_other_in_one_unit_of_work() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    let later = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(3));
    let (first, second) = store
        .transaction(|tx| {
            let a = tx.connector::<Message>(TableType::RecallMemory, scope())?;
            let b = tx.connector::<Message>(TableType::RecallMemory, later)?;
            let first = a.insert_many(wide("one"), false)?;
            // The same ids again, refused in the first statement: the staging path.
            let refused = a.insert_many(wide("two"), false).unwrap_err();
            assert!(
                matches!(refused, Error::AlreadyExists { .. }),
                "{refused:?}"
            );
            let pad = "w".repeat(16 * 1024);
            let mut batch: Vec<Message> = (2_000..3_200)
                .map(|i| padded(later, i, "three", &pad))
                .collect();
            // Refused in its third statement, after two were written.
            batch[1_100] = batch[1_100].to_builder().id(batch[3].id()).build().unwrap();
            let second = b.insert_many(batch, true)?;
            Ok((first, second))
        })
        .unwrap();
    assert_eq!((first, second), (1_200, 1_199));
    assert_eq!(recall(&store).size(&[]).unwrap(), 1_200);
    let b: PgConnector<Message> = store.connector(TableType::RecallMemory, later).unwrap();
    assert_eq!(b.size(&[]).unwrap(), 1_199);
}

/// A direct load sets a short `lock_timeout` for its statements; the call's later
/// statements, and the unit of work's later calls, wait as the session did before.
#[test]
fn a_direct_load_leaves_the_sessions_lock_wait_as_it_was() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let app = "memgpt-direct-lock-wait";
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.application_name = app.to_owned();
    let store = PgStore::open(config).unwrap();
    let held = message(scope(), 5_000, "held");
    let mut locker = db.connect().unwrap();
    let insert = format!(
        "BEGIN; INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role) \
         VALUES ('{}', '{}', '{}', 'user');",
        held.id(),
        scope().user_id(),
        scope().agent_id().unwrap()
    );
    locker.batch_execute(&insert).unwrap();
    std::thread::scope(|sc| {
        let waiter = sc.spawn(|| {
            store.transaction(|tx| {
                let c = tx.connector::<Message>(TableType::RecallMemory, scope())?;
                let loaded = c.insert_many((0..1_500).map(|i| message(scope(), i, "x")), false)?;
                // Waits for the locker's row.
                c.insert_many(vec![held.clone()], true)?;
                Ok(loaded)
            })
        });
        wait_for_lock(db.url(), app);
        // The wait goes on past the load's own 200 ms: scenario time, not a handshake.
        std::thread::sleep(Duration::from_millis(500));
        locker.batch_execute("ROLLBACK").unwrap();
        assert_eq!(waiter.join().unwrap().unwrap(), 1_500);
    });
    assert_eq!(recall(&store).size(&[]).unwrap(), 1_501);
}

/// Polls until a session of `application_name` `app` waits for a lock.
fn wait_for_lock(url: &DatabaseUrl, app: &str) {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = PgConnection::establish(url.expose()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: Vec<N> = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind::<diesel::sql_types::Text, _>(app)
        .load(&mut c)
        .unwrap();
        if n[0].n == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "no session of {app} waits");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Two loads of the same 1,500 ids, one in ascending and one in descending order, each
/// held by a trigger halfway through its COPY until both are: each then needs a row the
/// other wrote. Neither waits on the other inside its COPY (the statement gives up and
/// the call goes on by the staging path, in id order): both complete, every row is one
/// writer's whole record, and the server saw no deadlock.
#[test]
fn two_direct_loads_of_the_same_ids_in_opposite_orders_both_complete() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    let mut admin = db.connect().unwrap();
    admin
        .batch_execute(
            "CREATE TABLE gate_open (x int);
             CREATE FUNCTION hold_gate() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               IF NEW.text LIKE '%gate' THEN
                 WHILE NOT EXISTS (SELECT 1 FROM gate_open) LOOP
                   PERFORM pg_sleep(0.01);
                 END LOOP;
               END IF;
               RETURN NEW;
             END $$;
             CREATE TRIGGER hold_gate BEFORE INSERT ON memgpt_recall_memory_agent
               FOR EACH ROW EXECUTE FUNCTION hold_gate();",
        )
        .unwrap();
    let deadlocks = |c: &mut PgConnection| -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n: Vec<N> = diesel::sql_query(
            "SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()",
        )
        .load(c)
        .unwrap();
        n[0].n
    };
    let before = deadlocks(&mut admin);
    let load = |writer: &str, ids: Vec<usize>| {
        let records: Vec<Message> = ids
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let m = message(scope(), i, writer);
                if k == 750 {
                    m.to_builder()
                        .text(format!("{writer} gate"))
                        .build()
                        .unwrap()
                } else {
                    m
                }
            })
            .collect();
        recall(&store).insert_many(records, true)
    };
    std::thread::scope(|sc| {
        let a = sc.spawn(|| load("a", (0..1_500).collect()));
        let b = sc.spawn(|| load("b", (0..1_500).rev().collect()));
        poll_until(&mut admin, 2);
        admin
            .batch_execute("INSERT INTO gate_open VALUES (1)")
            .unwrap();
        assert_eq!(a.join().unwrap().unwrap(), 1_500);
        assert_eq!(b.join().unwrap().unwrap(), 1_500);
    });
    let c = recall(&store);
    assert_eq!(c.size(&[]).unwrap(), 1_500);
    for m in c.get_all(&[], None).unwrap() {
        let writer = m.model().unwrap();
        assert!(
            m.text().unwrap().starts_with(writer),
            "row {} mixes writers",
            m.id()
        );
    }
    assert_eq!(deadlocks(&mut admin), before, "the server saw a deadlock");
}

/// Polls until `n` sessions sleep in the trigger (a COPY, or the staging path's insert
/// of a load whose COPY gave up on a wait of its own before it came there).
fn poll_until(c: &mut PgConnection, n: i64) {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held: Vec<N> = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
        )
        .load(c)
        .unwrap();
        if held[0].n == n {
            return;
        }
        assert!(Instant::now() < deadline, "{} loads held", held[0].n);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A call of more COPY statements than the 60 a call sends straight to the table — 1,001
/// messages of 600 KiB, about 590 MiB, 73 statements of 8 MiB — is finished by the
/// staging path, so that its transaction never holds more than PostgreSQL's 64 cached
/// subtransactions (one a statement): every record is written, and the rows are those of
/// fewer than 64 subtransactions (73 when every statement stays in the table).
#[test]
fn a_load_past_sixty_copy_statements_is_finished_by_the_staging_path() {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    let c = recall(&store);
    let pad = "w".repeat(600 * 1024);
    let records = (0..1_001).map(|i| padded(scope(), i, "big", &pad));
    assert_eq!(c.insert_many(records, false).unwrap(), 1_001);
    assert_eq!(c.size(&[]).unwrap(), 1_001);
    let last = c.get(Uuid::from_u128(1_001_000)).unwrap().unwrap();
    assert_eq!(last, padded(scope(), 1_000, "big", &pad));
    let writers: Vec<N> =
        diesel::sql_query("SELECT count(DISTINCT xmin::text) AS n FROM memgpt_recall_memory_agent")
            .load(&mut db.connect().unwrap())
            .unwrap();
    assert!(
        writers[0].n < 64,
        "rows of {} subtransactions",
        writers[0].n
    );
}
