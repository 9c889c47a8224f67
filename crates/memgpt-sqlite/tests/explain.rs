//! Every query pattern the SQLite connectors issue uses an index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, TimeZone, Utc};
use memgpt_core::{
    Document, Message, Passage, QueryPlan, Role, Scope, StorageConnector, TableType,
};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::SqliteStore;
use uuid::Uuid;

fn check(plans: Vec<QueryPlan>, expected: usize) {
    assert_eq!(plans.len(), expected);
    for p in &plans {
        assert!(
            p.is_indexed(),
            "{} {} does not use an index:\n{}",
            p.table,
            p.operation,
            p.plan
        );
    }
}

#[test]
fn every_query_pattern_uses_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("e.db"))).unwrap();
    let t0 = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    for a in 0..50u128 {
        let (user, agent) = (Uuid::from_u128(a % 5 + 1), Uuid::from_u128(100 + a));
        let scope = Scope::agent(user, agent);
        let recall = store
            .connector::<Message>(TableType::RecallMemory, scope)
            .unwrap();
        recall
            .insert_many(
                (0..200).map(|i| {
                    Message::builder(user, agent, Role::User)
                        .text(format!("memory {a} {i}"))
                        .created_at(t0 + Duration::seconds(i))
                        .build()
                        .unwrap()
                }),
                true,
            )
            .unwrap();
        let archival = store
            .connector::<Passage>(TableType::ArchivalMemory, scope)
            .unwrap();
        archival
            .insert_many(
                (0..50).map(|i| {
                    Passage::builder(user, format!("passage {a} {i}"))
                        .agent_id(agent)
                        .data_source(format!("s{}", i % 3))
                        .embedding_values(vec![i as f32, 1.0])
                        .created_at(t0 + Duration::seconds(i))
                        .build()
                        .unwrap()
                }),
                true,
            )
            .unwrap();
    }
    store.optimize().unwrap();
    let scope = Scope::agent(Uuid::from_u128(3), Uuid::from_u128(102));
    let user = Scope::user(Uuid::from_u128(3));
    check(
        store
            .connector::<Message>(TableType::RecallMemory, scope)
            .unwrap()
            .explain()
            .unwrap(),
        12,
    );
    check(
        store
            .connector::<Passage>(TableType::ArchivalMemory, scope)
            .unwrap()
            .explain()
            .unwrap(),
        14,
    );
    check(
        store
            .connector::<Passage>(TableType::Passages, user)
            .unwrap()
            .explain()
            .unwrap(),
        14,
    );
    check(
        store
            .connector::<Document>(TableType::Documents, user)
            .unwrap()
            .explain()
            .unwrap(),
        13,
    );
}
