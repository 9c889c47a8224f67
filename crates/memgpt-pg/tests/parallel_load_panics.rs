//! Panics through a load spread over several connections (diesel instrumentation — user
//! code that runs inside every statement — panicking at a chosen one), on a server of the
//! test's own that allows prepared transactions: nothing written, no part left prepared,
//! no connection given back inside a transaction.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Passage, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::OwnServer;
use uuid::Uuid;

/// Armed: the `PREPARE TRANSACTION` of part 0 panics before it is sent.
static ON_PREPARE: AtomicBool = AtomicBool::new(false);
/// Armed: the next `COMMIT` of a transaction (the caller's) panics before it is sent.
static ON_COMMIT: AtomicBool = AtomicBool::new(false);
/// Armed: the `COMMIT PREPARED` of part 1 panics before it is sent (the caller committed).
static ON_FINISH: AtomicBool = AtomicBool::new(false);

struct Panicking;

impl Instrumentation for Panicking {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                let text = query.to_string();
                if text.starts_with("PREPARE TRANSACTION")
                    && text.ends_with(":0'")
                    && ON_PREPARE.swap(false, Ordering::SeqCst)
                {
                    panic!("instrumentation panicked as part 0 prepared");
                }
                if text.starts_with("COMMIT PREPARED")
                    && text.ends_with(":1'")
                    && ON_FINISH.swap(false, Ordering::SeqCst)
                {
                    panic!("instrumentation panicked as part 1 was committed");
                }
            }
            InstrumentationEvent::CommitTransaction { depth, .. }
                if depth.get() == 1 && ON_COMMIT.swap(false, Ordering::SeqCst) =>
            {
                panic!("instrumentation panicked as the caller committed");
            }
            _ => {}
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(url: &DatabaseUrl, sql: &str) -> i64 {
    let mut c = PgConnection::establish(url.expose()).unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut c)
        .unwrap()
        .n
}

fn passages(s: &Scope, text: &str) -> Vec<Passage> {
    (0..2_500)
        .map(|i| {
            Passage::builder(s.user_id(), format!("{text} {i}"))
                .agent_id(s.agent_id().unwrap())
                .build()
                .unwrap()
        })
        .collect()
}

/// A panic in part 0 as it prepares, then one in the caller's `COMMIT` after every part
/// prepared: each unwinds out of `insert_many`; nothing is written, no part stays
/// prepared, and the store's connections serve calls at once (none given back inside a
/// transaction, within the pre-ping bypass), from four threads. Then a panic as part 1
/// is committed after the caller's commit: every part committed all the same.
#[test]
fn panics_through_a_spread_load_write_nothing_and_leave_nothing_prepared() {
    diesel::connection::set_default_instrumentation(|| Some(Box::new(Panicking))).unwrap();
    let mut server = OwnServer::start("trust", "").unwrap();
    server
        .restart_with("-c max_prepared_transactions=10")
        .unwrap();
    let url = server.url("");
    memgpt_migrate::postgres::run_url(&url, memgpt_migrate::Command::Up).unwrap();
    let mut config = PgConfig::new(url.clone());
    config.pool_size = 5;
    config.max_overflow = 0;
    config.load_connections = 3;
    let store = PgStore::open(config).unwrap();
    let s = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let c = store
        .connector::<Passage>(TableType::ArchivalMemory, s)
        .unwrap();
    for armed in [&ON_PREPARE, &ON_COMMIT] {
        armed.store(true, Ordering::SeqCst);
        let caught = catch_unwind(AssertUnwindSafe(|| c.insert_many(passages(&s, "p"), false)));
        assert!(caught.is_err(), "the panic unwinds out of the call");
        assert!(!armed.load(Ordering::SeqCst), "the armed panic happened");
        assert_eq!(
            count(&url, "SELECT count(*) AS n FROM pg_prepared_xacts"),
            0
        );
        assert_eq!(
            count(
                &url,
                "SELECT count(*) AS n FROM memgpt_archival_memory_agent"
            ),
            0
        );
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..10 {
                        assert_eq!(c.size(&[]).unwrap(), 0);
                    }
                });
            }
        });
    }
    // And a load goes through afterwards.
    assert_eq!(c.insert_many(passages(&s, "p"), false).unwrap(), 2_500);
    // A panic as part 1 is committed, after the caller's commit: the call unwinds, and
    // the parts not yet committed are committed as the server says the caller was.
    ON_FINISH.store(true, Ordering::SeqCst);
    let caught = catch_unwind(AssertUnwindSafe(|| c.insert_many(passages(&s, "q"), false)));
    assert!(caught.is_err(), "the panic unwinds out of the call");
    assert!(
        !ON_FINISH.load(Ordering::SeqCst),
        "the armed panic happened"
    );
    assert_eq!(
        count(&url, "SELECT count(*) AS n FROM pg_prepared_xacts"),
        0
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) AS n FROM memgpt_archival_memory_agent"
        ),
        5_000
    );
}
