//! The two write paths of `insert_many` — multi-row INSERT up to 1,000 records, binary COPY
//! through a staging table above — at their boundary and at scale, with and without
//! `exists_ok`, on the throwaway PostgreSQL 18 + pgvector.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use memgpt_core::{
    Column, DatabaseUrl, Error, Filter, Message, Passage, Record, Role, Scope, StorageConnector,
    TableType,
};
use memgpt_pg::PgConfig;
use memgpt_pg::{PgConnector, PgStore};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

fn store() -> (PgStore, TempDatabase) {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
    config.pool_size = 2;
    config.max_overflow = 2;
    (PgStore::open(config).unwrap(), db)
}

fn scope() -> Scope {
    Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2))
}

fn recall(store: &PgStore) -> PgConnector<Message> {
    store.connector(TableType::RecallMemory, scope()).unwrap()
}

fn messages(n: usize, text: &str) -> impl Iterator<Item = Message> + '_ {
    let s = scope();
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..n).map(move |i| {
        Message::builder(s.user_id(), s.agent_id().unwrap(), Role::ALL[i % 4])
            .id(Uuid::from_u128(1_000_000 + i as u128))
            .text(format!("{text} {i}"))
            .created_at(t0 + Duration::seconds(i as i64))
            .maybe_tool_call_id_for(i)
            .build()
            .unwrap()
    })
}

trait ToolId {
    fn maybe_tool_call_id_for(self, i: usize) -> Self;
}

impl ToolId for memgpt_core::MessageBuilder {
    fn maybe_tool_call_id_for(self, i: usize) -> Self {
        if Role::ALL[i % 4] == Role::Tool {
            self.tool_call_id(format!("call_{i}"))
        } else {
            self
        }
    }
}

fn both_ways(n: usize) {
    let (store, _db) = store();
    let c = recall(&store);
    assert_eq!(
        c.insert_many(messages(n, "first"), false).unwrap(),
        n as u64
    );
    assert_eq!(c.size(&[]).unwrap(), n as u64);
    // Again without exists_ok: every id exists, nothing changes.
    let e = c.insert_many(messages(n, "second"), false).unwrap_err();
    assert!(
        matches!(e, Error::AlreadyExists { id, .. } if id == Uuid::from_u128(1_000_000)),
        "{e:?}"
    );
    // With exists_ok: every row is updated.
    assert_eq!(
        c.insert_many(messages(n, "second"), true).unwrap(),
        n as u64
    );
    assert_eq!(c.size(&[]).unwrap(), n as u64);
    let last = c
        .get(Uuid::from_u128(1_000_000 + n as u128 - 1))
        .unwrap()
        .unwrap();
    assert_eq!(last.text(), Some(format!("second {}", n - 1).as_str()));
    assert_eq!(
        c.query_text("second", None, 0).unwrap().len(),
        n,
        "the text index sees every updated row"
    );
    assert_eq!(
        c.size(&[Filter::eq(Column::Role, Role::Tool)]).unwrap(),
        (n / 4) as u64
    );
}

#[test]
fn insert_path_999() {
    both_ways(999);
}

#[test]
fn insert_path_1000() {
    both_ways(1_000);
}

#[test]
fn copy_path_1001() {
    both_ways(1_001);
}

#[test]
fn copy_path_70000() {
    both_ways(70_000);
}

#[test]
fn copy_path_is_all_or_nothing_on_a_foreign_record() {
    let (store, _db) = store();
    let c = recall(&store);
    let foreign = Message::builder(Uuid::from_u128(9), Uuid::from_u128(2), Role::User)
        .text("not yours")
        .build()
        .unwrap();
    let batch = messages(5_000, "x").chain(std::iter::once(foreign));
    let e = c.insert_many(batch, true).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "records[5000].user_id"),
        "{e:?}"
    );
    assert_eq!(c.size(&[]).unwrap(), 0);
    // The connection came back clean: the next bulk load works.
    assert_eq!(c.insert_many(messages(2_000, "y"), true).unwrap(), 2_000);
}

#[test]
fn copy_path_resolves_repeated_ids() {
    let (store, _db) = store();
    let c = recall(&store);
    let mut batch: Vec<Message> = messages(3_000, "v1").collect();
    let again = batch[10].to_builder().text("v2").build().unwrap();
    batch.push(again.clone());
    match c.insert_many(batch.clone(), false) {
        Err(Error::DuplicateId { id, first, second }) => {
            assert_eq!((id, first, second), (again.id(), 10, 3_000));
        }
        other => panic!("expected a duplicate id, got {other:?}"),
    }
    assert_eq!(c.size(&[]).unwrap(), 0);
    assert_eq!(c.insert_many(batch, true).unwrap(), 3_000);
    assert_eq!(c.get(again.id()).unwrap(), Some(again));
}

#[test]
fn copy_path_refuses_to_overwrite_another_tenants_row() {
    let (store, _db) = store();
    let theirs = Scope::agent(Uuid::from_u128(7), Uuid::from_u128(8));
    let other: PgConnector<Message> = store.connector(TableType::RecallMemory, theirs).unwrap();
    let victim = Message::builder(theirs.user_id(), theirs.agent_id().unwrap(), Role::User)
        .id(Uuid::from_u128(1_000_500))
        .text("theirs")
        .build()
        .unwrap();
    other.insert(&victim).unwrap();
    let c = recall(&store);
    let e = c.insert_many(messages(2_000, "mine"), true).unwrap_err();
    assert!(
        matches!(e, Error::AlreadyExists { id, .. } if id == victim.id()),
        "{e:?}"
    );
    assert_eq!(other.get(victim.id()).unwrap(), Some(victim));
    assert_eq!(c.size(&[]).unwrap(), 0);
    // The small path refuses the same way.
    let e = c.insert_many(messages(600, "mine"), true).unwrap_err();
    assert!(matches!(e, memgpt_core::Error::AlreadyExists { .. }));
}

#[test]
fn copy_path_round_trips_passages_exactly() {
    let (store, _db) = store();
    let c: PgConnector<Passage> = store.connector(TableType::ArchivalMemory, scope()).unwrap();
    let s = scope();
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let batch: Vec<Passage> = (0..1_500)
        .map(|i| {
            let mut meta = serde_json::Map::new();
            meta.insert("page".into(), serde_json::json!(i));
            Passage::builder(s.user_id(), format!("passage {i} ünïcode"))
                .agent_id(s.agent_id().unwrap())
                .doc_id(Uuid::from_u128(i as u128 % 10))
                .data_source(format!("source_{}", i % 5))
                .embedding(vec![i as f32 * 0.5, -1.0, f32::MIN_POSITIVE], "ada")
                .metadata(meta)
                .created_at(t0 + Duration::microseconds(i as i64 * 1_000_001))
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(c.insert_many(batch.clone(), false).unwrap(), 1_500);
    for p in [&batch[0], &batch[777], &batch[1_499]] {
        assert_eq!(c.get(p.id()).unwrap().as_ref(), Some(p));
    }
    let nearest = c.query(&[100.0, -1.0, 0.0], 3, &[]).unwrap();
    assert_eq!(
        nearest.iter().map(Record::id).collect::<Vec<_>>(),
        vec![batch[200].id(), batch[199].id(), batch[201].id()]
    );
}

/// Passages of `s` numbered from `from` (a distinct id and text each), with embeddings.
fn passages_of(s: Scope, from: usize, n: usize) -> Vec<Passage> {
    (from..from + n)
        .map(|i| {
            let mut b = Passage::builder(s.user_id(), format!("passage {i}"))
                .embedding(vec![i as f32, 1.0, -1.0], "ada");
            if let Some(agent) = s.agent_id() {
                b = b.agent_id(agent);
            }
            b.build().unwrap()
        })
        .collect()
}

/// The outside review's case: an archival-memory bulk load of 3,000 passages whose
/// iterator, at record 2,000, starts a passages bulk load of 1,500. Inside one unit of
/// work this no longer compiles (the `compile_fail` examples of `PgStore::transaction`).
/// On the store, the nested load takes a second pooled connection: both complete, each in
/// its own table, and no row lands in the other table or without an agent.
#[test]
fn a_bulk_load_started_inside_another_bulk_loads_iterator_writes_nothing_elsewhere() {
    let (store, db) = store();
    let agent = scope();
    let user = Scope::user(agent.user_id());
    let inner = passages_of(user, 10_000, 1_500);
    let archival = store
        .connector::<Passage>(TableType::ArchivalMemory, agent)
        .unwrap();
    let passages = store
        .connector::<Passage>(TableType::Passages, user)
        .unwrap();
    let records = passages_of(agent, 20_000, 3_000)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if i == 2_000 {
                assert_eq!(passages.insert_many(inner.clone(), true).unwrap(), 1_500);
            }
            p
        });
    assert_eq!(archival.insert_many(records, false).unwrap(), 3_000);
    assert_eq!(archival.size(&[]).unwrap(), 3_000);
    assert_eq!(passages.size(&[]).unwrap(), 1_500);
    let mut admin = diesel::PgConnection::establish(db.url().expose()).unwrap();
    let counts: Vec<memgpt_migrate::rows::Count> = diesel::sql_query(
        "SELECT (SELECT count(*) FROM memgpt_archival_memory_agent WHERE agent_id IS NULL) \
         + (SELECT count(*) FROM memgpt_passages WHERE user_id <> $1) AS n",
    )
    .bind::<diesel::sql_types::Uuid, _>(user.user_id())
    .load(&mut admin)
    .unwrap();
    assert_eq!(counts[0].n, 0);
}

/// A table named like the staging table earlier on the `search_path` than the session's
/// temporary schema receives nothing: the COPY path names `pg_temp.` everywhere.
#[test]
fn the_copy_path_stages_in_its_own_temporary_schema_whatever_the_search_path() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut admin = diesel::PgConnection::establish(db.url().expose()).unwrap();
    // Migrated by a first open, then the trap: a public table of the staging table's name
    // and shape, searched before pg_temp by every new session.
    drop(PgStore::open(PgConfig::new(DatabaseUrl::new(db.url().expose()))).unwrap());
    admin
        .batch_execute(
            "CREATE TABLE public.memgpt_staging_messages AS \
             SELECT 0::bigint AS ord, * FROM memgpt_recall_memory_agent WITH NO DATA; \
             GRANT ALL ON public.memgpt_staging_messages TO PUBLIC;",
        )
        .unwrap();
    let name: Vec<memgpt_migrate::rows::Name> =
        diesel::sql_query("SELECT current_database() AS name")
            .load(&mut admin)
            .unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET search_path = public, pg_temp",
            name[0].name
        ))
        .unwrap();
    let store = PgStore::open(PgConfig::new(DatabaseUrl::new(db.url().expose()))).unwrap();
    let c = recall(&store);
    // 26 MB: more than one COPY statement straight into the table, so staged.
    let long = "staged ".repeat(2_500);
    assert_eq!(c.insert_many(messages(1_500, &long), false).unwrap(), 1_500);
    assert_eq!(c.size(&[]).unwrap(), 1_500);
    let trapped: Vec<memgpt_migrate::rows::Count> =
        diesel::sql_query("SELECT count(*) AS n FROM public.memgpt_staging_messages")
            .load(&mut admin)
            .unwrap();
    assert_eq!(trapped[0].n, 0);
}
