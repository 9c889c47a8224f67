//! Ten thousand agents, each with a connector of its own, driven from 200 threads: the
//! server's connections stay within the pool's maximum (50) directly, and within
//! PgBouncer's pool (20 server connections) behind it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::sql_types::BigInt;
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, Message, Record, Role, Scope, StorageConnector, TableType};
use memgpt_migrate::Command;
use memgpt_pg::{PgConfig, PgConnector, PgStore, Pooler};
use memgpt_testing::{peak_connections, TempDatabase, PGBOUNCER, VECTOR_SERVER};
use uuid::Uuid;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

const AGENTS: u128 = 10_000;
const THREADS: usize = 200;

/// Opens one connector per agent (100 users of 100 agents), drives them from 200 threads
/// (each agent: an insert, a read of its messages, a count), and returns the most server
/// connections of the database seen meanwhile.
fn drive(db: &TempDatabase, store: &PgStore) -> i64 {
    let connectors: Vec<(Scope, PgConnector<Message>)> = (0..AGENTS)
        .map(|a| {
            let scope = Scope::agent(Uuid::from_u128(a / 100 + 1), Uuid::from_u128(a + 1_000));
            let c = store
                .connector::<Message>(TableType::RecallMemory, scope)
                .unwrap();
            (scope, c)
        })
        .collect();
    let ((), peak) = peak_connections(db, || {
        std::thread::scope(|s| {
            let workers: Vec<_> = connectors
                .chunks(connectors.len() / THREADS)
                .map(|mine| {
                    s.spawn(move || -> Result<(), Error> {
                        for (scope, c) in mine {
                            let m = Message::builder(
                                scope.user_id(),
                                scope.agent_id().unwrap(),
                                Role::Assistant,
                            )
                            .text("hello")
                            .build()?;
                            c.insert(&m)?;
                            let got = c.get_all(&[], Some(10))?;
                            assert_eq!(got.iter().map(Record::id).collect::<Vec<_>>(), [m.id()]);
                            assert_eq!(c.size(&[])?, 1);
                        }
                        Ok(())
                    })
                })
                .collect();
            assert_eq!(workers.len(), THREADS);
            for w in workers {
                w.join().unwrap().unwrap();
            }
        })
    })
    .unwrap();
    let mut conn = db.connect().unwrap();
    let rows: Vec<Count> =
        diesel::sql_query("SELECT count(DISTINCT agent_id) AS n FROM memgpt_recall_memory_agent")
            .load(&mut conn)
            .unwrap();
    assert_eq!(rows[0].n, AGENTS as i64, "one message per agent");
    peak
}

#[test]
fn ten_thousand_agents_stay_within_the_pools_fifty_connections() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let store = PgStore::open(PgConfig::new(DatabaseUrl::new(db.url().expose()))).unwrap();
    let max = store.metrics().max;
    assert_eq!(max, 50);
    let peak = drive(&db, &store);
    assert!(
        peak <= 50,
        "the server saw {peak} connections (pool maximum 50)"
    );
    assert_eq!(store.metrics().timeouts, 0);
}

#[test]
fn ten_thousand_agents_through_pgbouncer_use_twenty_server_connections() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    memgpt_migrate::postgres::run_url(db.url(), Command::Up).unwrap();
    let mut config = PgConfig::new(db.url_via(PGBOUNCER).unwrap());
    config.pooler = Pooler::Transaction;
    let store = PgStore::open(config).unwrap();
    let peak = drive(&db, &store);
    assert!(
        peak <= 20,
        "the server saw {peak} connections (PgBouncer's pool: 20)"
    );
    assert_eq!(store.metrics().timeouts, 0);
}
