//! Bulk loads straight into the table (binary `COPY` in call order, `direct.rs`) and the
//! staging path that takes a call the table refuses there, or one too large for one COPY
//! statement (8 MiB): every call ends as the staging path decides, on the throwaway
//! PostgreSQL 18 + pgvector. A statement-level trigger (`probe`) records which statement
//! wrote the rows of each committed call.

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

/// Records the first words of every statement that inserts into recall memory, in the
/// inserting transaction (a statement rolled back leaves no record).
fn install_probe(db: &TempDatabase) {
    db.connect()
        .unwrap()
        .batch_execute(
            "CREATE TABLE probe (q text);
             CREATE FUNCTION probe() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               INSERT INTO probe VALUES (left(current_query(), 40));
               RETURN NULL;
             END $$;
             CREATE TRIGGER probe AFTER INSERT ON memgpt_recall_memory_agent
               FOR EACH STATEMENT EXECUTE FUNCTION probe();",
        )
        .unwrap();
}

/// The probe's records since the last call, emptied.
fn probed(db: &TempDatabase) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Q {
        #[diesel(sql_type = diesel::sql_types::Text)]
        q: String,
    }
    let mut c = db.connect().unwrap();
    let rows: Vec<Q> = diesel::sql_query("DELETE FROM probe RETURNING q")
        .load(&mut c)
        .unwrap();
    rows.into_iter().map(|r| r.q).collect()
}

/// Asserts that the staging path's merge, and nothing else, wrote since the last look.
fn staged(db: &TempDatabase) {
    let seen = probed(db);
    assert!(
        !seen.is_empty() && seen.iter().all(|q| q.starts_with(MERGE)),
        "{seen:?}"
    );
}

/// Polls until `count_sql` (one column `n`) counts `want`.
fn poll(url: &DatabaseUrl, count_sql: &str, want: i64) {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = PgConnection::establish(url.expose()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: Vec<N> = diesel::sql_query(count_sql).load(&mut c).unwrap();
        if n[0].n == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {want}: {count_sql}",
            n[0].n
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sessions of the test's database waiting for a lock.
const LOCK_WAITS: &str = "SELECT count(*) AS n FROM pg_stat_activity \
     WHERE datname = current_database() AND wait_event_type = 'Lock'";

/// The first words of the direct path's COPY into recall memory.
const DIRECT: &str = "COPY \"memgpt_recall_memory_agent\"";
/// The first words of the staging path's merge.
const MERGE: &str = "WITH chunk AS MATERIALIZED";

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
fn a_call_that_fits_one_copy_statement_is_copied_straight_into_the_table() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    install_probe(&db);
    let c = recall(&store);
    let batch: Vec<Message> = (0..1_500).map(|i| message(scope(), i, "first")).collect();
    assert_eq!(c.insert_many(batch.clone(), false).unwrap(), 1_500);
    let seen = probed(&db);
    assert!(seen.len() == 1 && seen[0].starts_with(DIRECT), "{seen:?}");
    assert_eq!(c.size(&[]).unwrap(), 1_500);
    assert_eq!(c.get(batch[777].id()).unwrap().as_ref(), Some(&batch[777]));
    // The same ids again: the table refuses the COPY, which leaves nothing, and the
    // staging path updates every row.
    let again: Vec<Message> = (0..1_500).map(|i| message(scope(), i, "second")).collect();
    assert_eq!(c.insert_many(again.clone(), true).unwrap(), 1_500);
    staged(&db);
    assert_eq!(c.size(&[]).unwrap(), 1_500);
    assert_eq!(
        c.get(again[1_499].id()).unwrap().as_ref(),
        Some(&again[1_499])
    );
}

#[test]
fn a_repeat_past_the_first_copy_statement_follows_the_duplicate_rule() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    install_probe(&db);
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
    staged(&db);
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
fn another_tenants_row_past_the_first_copy_statement_fails_the_call_whole() {
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
fn an_own_row_past_the_first_copy_statement_is_updated_with_exists_ok() {
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

/// Bulk calls follow each other in one unit of work whatever path each takes: copied
/// straight in, refused there, staged for their size: each cleans up after itself.
#[test]
fn bulk_loads_by_either_path_follow_each_other_in_one_unit_of_work() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    install_probe(&db);
    let later = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(3));
    let small = |s: Scope, from: usize| -> Vec<Message> {
        (from..from + 1_500)
            .map(|i| message(s, i, "small"))
            .collect()
    };
    let counts = store
        .transaction(|tx| {
            let a = tx.connector::<Message>(TableType::RecallMemory, scope())?;
            let b = tx.connector::<Message>(TableType::RecallMemory, later)?;
            let first = a.insert_many(small(scope(), 0), false)?;
            // The same ids again: refused straight in, refused staged.
            let refused = a.insert_many(small(scope(), 0), false).unwrap_err();
            assert!(
                matches!(refused, Error::AlreadyExists { .. }),
                "{refused:?}"
            );
            let pad = "w".repeat(16 * 1024);
            let mut batch: Vec<Message> = (2_000..3_200)
                .map(|i| padded(later, i, "three", &pad))
                .collect();
            batch[1_100] = batch[1_100].to_builder().id(batch[3].id()).build().unwrap();
            let second = b.insert_many(batch, true)?;
            let third = b.insert_many(small(later, 5_000), false)?;
            Ok((first, second, third))
        })
        .unwrap();
    assert_eq!(counts, (1_500, 1_199, 1_500));
    let seen = probed(&db);
    assert_eq!(
        seen.iter().filter(|q| q.starts_with(DIRECT)).count(),
        2,
        "{seen:?}"
    );
    assert_eq!(recall(&store).size(&[]).unwrap(), 1_500);
    let b: PgConnector<Message> = store.connector(TableType::RecallMemory, later).unwrap();
    assert_eq!(b.size(&[]).unwrap(), 2_699);
}

/// A direct load changes nothing of the session's: the unit of work's next call waits for
/// a row another session holds as long as it must (here 500 ms) and completes.
#[test]
fn a_direct_load_leaves_the_sessions_lock_wait_as_it_was() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    install_probe(&db);
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
        poll(db.url(), LOCK_WAITS, 1);
        // The wait lasts: scenario time, not a handshake.
        std::thread::sleep(Duration::from_millis(500));
        locker.batch_execute("ROLLBACK").unwrap();
        assert_eq!(waiter.join().unwrap().unwrap(), 1_500);
    });
    let seen = probed(&db);
    assert!(seen.iter().any(|q| q.starts_with(DIRECT)), "{seen:?}");
    assert_eq!(recall(&store).size(&[]).unwrap(), 1_501);
}

/// Two loads of the same 1,500 ids, one in ascending and one in descending order, each
/// with a row halfway through its call held by a trigger until the test lets it go. Sent
/// in call order, each COPY would hold half the ids and wait for the other's half — a
/// deadlock, which the server here looks for only after an hour (`deadlock_timeout`), so
/// both would fail at the 10 s statement timeout. Sent in id order, one waits for the
/// other's first row, which commits first: both complete, every row one writer's whole
/// record.
#[test]
fn two_direct_loads_of_the_same_ids_in_opposite_orders_both_complete() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut admin = db.connect().unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET deadlock_timeout = '1h'",
            db.name()
        ))
        .unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 2;
    config.max_overflow = 2;
    config.statement_timeout = Duration::from_secs(10);
    let store = PgStore::open(config).unwrap();
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
        // Both held: in the trigger, or waiting for a row of the other.
        poll(
            db.url(),
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
             AND (wait_event = 'PgSleep' OR wait_event_type = 'Lock')",
            2,
        );
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
}

/// Messages with embeddings among others go straight in (pgvector's binary `vector`, or a
/// `real[]` where the server has no pgvector) and read back exactly.
#[test]
fn embeddings_copied_straight_into_the_table_read_back_exactly() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    install_probe(&db);
    let c = recall(&store);
    let batch: Vec<Message> = (0..1_100)
        .map(|i| {
            let m = message(scope(), i, "e");
            if i % 20 == 0 {
                let e = vec![i as f32 * 0.5, -1.0, f32::MIN_POSITIVE, 3.25];
                m.to_builder().embedding(e, "ada").build().unwrap()
            } else {
                m
            }
        })
        .collect();
    assert_eq!(c.insert_many(batch.clone(), false).unwrap(), 1_100);
    let seen = probed(&db);
    assert!(seen.len() == 1 && seen[0].starts_with(DIRECT), "{seen:?}");
    for m in [&batch[0], &batch[1], &batch[540], &batch[1_099]] {
        assert_eq!(c.get(m.id()).unwrap().as_ref(), Some(m));
    }
}

/// Row-level security on the table, forced, with a policy that admits every row, for a
/// role that is no superuser: PostgreSQL refuses COPY into such a table (`0A000`), and the
/// call goes by the staging path, whose `INSERT` the policy admits, as before.
#[test]
fn a_table_under_row_level_security_is_loaded_by_the_staging_path() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    memgpt_migrate::postgres::run_url(db.url(), memgpt_migrate::Command::Up).unwrap();
    install_probe(&db);
    let role = format!("memgpt_rls_{}", Uuid::new_v4().simple());
    db.connect()
        .unwrap()
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN; \
             GRANT CONNECT, TEMP ON DATABASE {db} TO {role}; \
             GRANT USAGE ON SCHEMA public TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; \
             ALTER TABLE memgpt_recall_memory_agent ENABLE ROW LEVEL SECURITY; \
             ALTER TABLE memgpt_recall_memory_agent FORCE ROW LEVEL SECURITY; \
             CREATE POLICY everyone ON memgpt_recall_memory_agent USING (true) WITH CHECK (true);",
            db = db.name()
        ))
        .unwrap();
    let url = db
        .url()
        .expose()
        .replacen("postgres@", &format!("{role}@"), 1);
    assert!(url.contains(&role), "the test URL names its user: {url}");
    let mut config = PgConfig::new(DatabaseUrl::new(url));
    config.pool_size = 1;
    let store = PgStore::open(config).unwrap();
    let c = recall(&store);
    let batch: Vec<Message> = (0..1_500).map(|i| message(scope(), i, "rls")).collect();
    assert_eq!(c.insert_many(batch.clone(), false).unwrap(), 1_500);
    staged(&db);
    assert_eq!(c.size(&[]).unwrap(), 1_500);
    assert_eq!(c.get(batch[9].id()).unwrap().as_ref(), Some(&batch[9]));
}

/// A load of 1,500 messages, one of whose ids another session has inserted and not yet
/// committed: the COPY waits for that session, which commits; the table then refuses the
/// COPY, and the staging path updates the row with `exists_ok`.
#[test]
fn a_direct_load_behind_a_row_another_session_holds_waits_and_then_updates_it() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    let batch: Vec<Message> = (0..1_500).map(|i| message(scope(), i, "load")).collect();
    let mut locker = db.connect().unwrap();
    locker
        .batch_execute(&format!(
            "BEGIN; INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text) \
             VALUES ('{}', '{}', '{}', 'user', 'theirs');",
            batch[700].id(),
            scope().user_id(),
            scope().agent_id().unwrap()
        ))
        .unwrap();
    std::thread::scope(|sc| {
        let load = sc.spawn(|| recall(&store).insert_many(batch.clone(), true));
        poll(db.url(), LOCK_WAITS, 1);
        locker.batch_execute("COMMIT").unwrap();
        assert_eq!(load.join().unwrap().unwrap(), 1_500);
    });
    let c = recall(&store);
    assert_eq!(c.size(&[]).unwrap(), 1_500);
    assert_eq!(c.get(batch[700].id()).unwrap().as_ref(), Some(&batch[700]));
}

/// A load whose iterator, past the records taken before a connection, starts a load of
/// other ids into the same table on the same handle: the inner load takes another pooled
/// connection and goes straight in; both complete, each row written once.
#[test]
fn a_direct_load_started_inside_another_direct_loads_iterator_writes_both() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = store(&db);
    install_probe(&db);
    let c = recall(&store);
    let inner: Vec<Message> = (10_000..11_500)
        .map(|i| message(scope(), i, "inner"))
        .collect();
    let outer = (0..1_500).map(|i| {
        if i == 1_200 {
            assert_eq!(c.insert_many(inner.clone(), false).unwrap(), 1_500);
        }
        message(scope(), i, "outer")
    });
    assert_eq!(c.insert_many(outer, false).unwrap(), 1_500);
    let seen = probed(&db);
    assert!(
        seen.len() == 2 && seen.iter().all(|q| q.starts_with(DIRECT)),
        "{seen:?}"
    );
    assert_eq!(c.size(&[]).unwrap(), 3_000);
    assert_eq!(c.get(inner[0].id()).unwrap().as_ref(), Some(&inner[0]));
}
