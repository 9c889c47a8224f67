//! `created_at` text that another writer stored — MemGPT's `CURRENT_TIMESTAMP` default
//! (`YYYY-MM-DD HH:MM:SS`), ISO writers (`…T…`, `Z`, `+02:00`), other fractions — sorts,
//! pages and filters as the instant it names, on real SQLite files (migration 000006 and
//! its triggers), with the `created_at` indexes still serving the reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::connection::SimpleConnection;
use diesel::sql_types::{Nullable, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_core::Record as _;
use memgpt_core::{Document, Error, Message, Passage, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

const USER: u128 = 0xaa;
const AGENT: u128 = 0xbb;

/// `2024-01-01 h:m:s` UTC.
fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, h, m, s).unwrap()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn scope() -> Scope {
    Scope::agent(id(USER), id(AGENT))
}

/// A connection of another tool: no function of this library registered, no setting but
/// a busy timeout.
fn raw(path: &std::path::Path) -> SqliteConnection {
    let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    c.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
    c
}

#[derive(QueryableByName)]
struct CreatedAt {
    #[diesel(sql_type = Nullable<Text>)]
    created_at: Option<String>,
}

/// The `created_at` text of row `id` as SQLite holds it.
fn stored(conn: &mut SqliteConnection, table: &str, id: Uuid) -> Option<String> {
    let rows: Vec<CreatedAt> =
        diesel::sql_query(format!("SELECT created_at FROM {table} WHERE id = ?"))
            .bind::<Text, _>(id.to_string())
            .load(conn)
            .unwrap();
    assert_eq!(rows.len(), 1, "{table} {id}");
    rows.into_iter().next().unwrap().created_at
}

fn ids<R: memgpt_core::Record>(records: &[R]) -> Vec<Uuid> {
    records.iter().map(memgpt_core::Record::id).collect()
}

/// The five messages of the report: 08:59:59, 09:00:00 (twice), 09:00:01, 23:00:00, ids 1
/// to 5 in that order.
fn five() -> Vec<Message> {
    [
        at(8, 59, 59),
        at(9, 0, 0),
        at(9, 0, 0),
        at(9, 0, 1),
        at(23, 0, 0),
    ]
    .into_iter()
    .zip(1u128..)
    .map(|(t, n)| {
        Message::builder(id(USER), id(AGENT), Role::User)
            .id(id(n))
            .text(format!("message {n}"))
            .created_at(t)
            .build()
            .unwrap()
    })
    .collect()
}

/// Every page of `get_all_paginated(&[], 1)`, at most 20 (the walk must end by itself).
fn pages(c: &impl StorageConnector<Record = Message>) -> Vec<Vec<Uuid>> {
    c.get_all_paginated(&[], 1)
        .unwrap()
        .take(20)
        .map(|p| ids(&p.unwrap()))
        .collect()
}

/// What the five messages must give, whatever form their `created_at` is stored in.
fn assert_reads_as_instants(c: &impl StorageConnector<Record = Message>, want: &[Message]) {
    assert_eq!(
        pages(c),
        [1, 2, 3, 4, 5].map(|n| vec![id(n)]).to_vec(),
        "each message once, in (created_at, id) order, and the walk ends"
    );
    let newest_first: Vec<Uuid> = [5, 4, 3, 2, 1].map(id).to_vec();
    assert_eq!(ids(&c.get_all(&[], None).unwrap()), newest_first);
    assert_eq!(ids(&c.get_all(&[], Some(2)).unwrap()), vec![id(5), id(4)]);
    let two: Vec<Vec<Uuid>> = c
        .get_all_paginated(&[], 2)
        .unwrap()
        .take(20)
        .map(|p| ids(&p.unwrap()))
        .collect();
    assert_eq!(
        two,
        vec![vec![id(1), id(2)], vec![id(3), id(4)], vec![id(5)]]
    );
    let window = |a, b| ids(&c.query_date(a, b, None, 0).unwrap());
    assert_eq!(window(at(9, 0, 0), at(9, 0, 1)), vec![id(2), id(3), id(4)]);
    assert_eq!(window(at(9, 0, 0), at(9, 0, 0)), vec![id(2), id(3)]);
    assert_eq!(
        window(at(9, 0, 0) + Duration::microseconds(1), at(9, 0, 1)),
        vec![id(4)]
    );
    assert_eq!(window(at(0, 0, 0), at(9, 0, 0)), vec![id(1), id(2), id(3)]);
    assert_eq!(window(at(9, 0, 1), at(23, 59, 59)), vec![id(4), id(5)]);
    assert_eq!(
        ids(&c
            .query_date(at(0, 0, 0), at(23, 59, 59), Some(2), 1)
            .unwrap()),
        vec![id(2), id(3)]
    );
    // Each record reads back as the instant it was written with.
    for m in want {
        assert_eq!(c.get(m.id()).unwrap().as_ref(), Some(m));
    }
}

/// The report's scenario: rows this library wrote, two of them then rewritten by another
/// tool in MemGPT's server-default form and an ISO form.
#[test]
fn foreign_created_at_written_by_update_sorts_pages_and_filters_as_instants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope())
        .unwrap();
    let five = five();
    c.insert_many(five.clone(), false).unwrap();
    let mut conn = raw(&path);
    conn.batch_execute(&format!(
        "UPDATE memgpt_recall_memory_agent SET created_at = '2024-01-01 09:00:00' WHERE id = '{}';
         UPDATE memgpt_recall_memory_agent SET created_at = '2024-01-01T09:00:01' WHERE id = '{}';",
        id(2),
        id(4)
    ))
    .unwrap();
    assert_reads_as_instants(&c, &five);
    assert_eq!(
        stored(&mut conn, "memgpt_recall_memory_agent", id(2)).as_deref(),
        Some("2024-01-01 09:00:00.000000")
    );
    assert_eq!(
        stored(&mut conn, "memgpt_recall_memory_agent", id(4)).as_deref(),
        Some("2024-01-01 09:00:01.000000")
    );
}

/// MemGPT's recall DDL of the releases whose `created_at` had a server default
/// (`server_default=func.now()`: SQLite's `CURRENT_TIMESTAMP`, `YYYY-MM-DD HH:MM:SS`).
const MEMGPT_SQLITE_RECALL_WITH_DEFAULT: &str = "CREATE TABLE memgpt_recall_memory_agent (
    id CHAR(36) NOT NULL, user_id CHAR(36) NOT NULL, agent_id CHAR(36) NOT NULL,
    role VARCHAR NOT NULL, text VARCHAR, model VARCHAR, name VARCHAR, tool_calls JSON,
    tool_call_id VARCHAR, embedding BLOB, embedding_dim BIGINT, embedding_model VARCHAR,
    created_at DATETIME DEFAULT (CURRENT_TIMESTAMP), PRIMARY KEY (id));";

/// MemGPT's own INSERT (its column list), one row.
fn memgpt_insert(conn: &mut SqliteConnection, n: u128, created_at: Option<&str>) {
    let (cols, value) = match created_at {
        Some(t) => (", created_at", format!(", '{t}'")),
        None => ("", String::new()),
    };
    conn.batch_execute(&format!(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, model, \
         name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model{cols}) \
         VALUES ('{}', '{}', '{}', 'user', 'message {n}', NULL, NULL, NULL, NULL, NULL, NULL, \
         NULL{value});",
        id(n),
        id(USER),
        id(AGENT)
    ))
    .unwrap();
}

/// Rows MemGPT's Python code inserts into a database this library migrated: each form is
/// stored as the canonical text by the triggers (built-ins only: no function of this
/// library is registered on MemGPT's connection), the column default included, and the
/// full-text triggers still index them.
#[test]
fn memgpt_inserts_in_foreign_forms_and_by_the_column_default_read_as_instants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memgpt.db");
    raw(&path)
        .batch_execute(MEMGPT_SQLITE_RECALL_WITH_DEFAULT)
        .unwrap();
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope())
        .unwrap();
    let mut conn = raw(&path);
    for (n, form) in [
        (1, "2024-01-01 08:59:59.000000"),
        (2, "2024-01-01 09:00:00"),
        (3, "2024-01-01 09:00:00.000000"),
        (4, "2024-01-01T09:00:01"),
        (5, "2024-01-01 23:00:00.000000"),
    ] {
        memgpt_insert(&mut conn, n, Some(form));
    }
    assert_reads_as_instants(&c, &five());
    assert_eq!(
        ids(&c.query_text("message", None, 0).unwrap()),
        [1, 2, 3, 4, 5].map(id).to_vec()
    );

    // The column default: CURRENT_TIMESTAMP's whole seconds, stored canonical.
    let before = Utc::now() - Duration::seconds(1);
    memgpt_insert(&mut conn, 6, None);
    let after = Utc::now();
    let text = stored(&mut conn, "memgpt_recall_memory_agent", id(6)).unwrap();
    assert!(text.ends_with(".000000") && text.len() == 26, "{text}");
    let got = c.get(id(6)).unwrap().unwrap().created_at();
    assert!(
        before <= got && got <= after,
        "{got} not in {before}..={after}"
    );
    assert_eq!(ids(&c.get_all(&[], Some(1)).unwrap()), vec![id(6)]);
}

/// Every form SQLite's date functions read, as the instant it names, by INSERT and by
/// UPDATE, in each of the four tables.
const FORMS: &[(&str, &str)] = &[
    ("2024-01-01 09:00:01.000000", "2024-01-01 09:00:01.000000"),
    ("2024-01-01 09:00:01", "2024-01-01 09:00:01.000000"),
    ("2024-01-01T09:00:01", "2024-01-01 09:00:01.000000"),
    ("2024-01-01T09:00:01Z", "2024-01-01 09:00:01.000000"),
    ("2024-01-01 09:00:01z", "2024-01-01 09:00:01.000000"),
    ("2024-01-01T11:00:01+02:00", "2024-01-01 09:00:01.000000"),
    ("2024-01-01 11:00:01 +02:00", "2024-01-01 09:00:01.000000"),
    ("2024-01-01T11:00:01.25+02:00", "2024-01-01 09:00:01.250000"),
    ("2023-12-31T23:30:00-09:30", "2024-01-01 09:00:00.000000"),
    ("2024-01-01T00:30:00.5+01:00", "2023-12-31 23:30:00.500000"),
    ("2024-01-01 09:00:01.123", "2024-01-01 09:00:01.123000"),
    ("2024-01-01T09:00:01.123Z", "2024-01-01 09:00:01.123000"),
    (
        "2024-01-01 09:00:01.123456789",
        "2024-01-01 09:00:01.123456",
    ),
    (
        "2024-01-01T09:00:01.999999999Z",
        "2024-01-01 09:00:01.999999",
    ),
    ("2024-01-01 09:00:01.1", "2024-01-01 09:00:01.100000"),
    // The canonical length and separators, yet not canonical.
    ("2024-01-01T09:00:01.123456", "2024-01-01 09:00:01.123456"),
    ("2024-01-01 09:00:01.12345Z", "2024-01-01 09:00:01.123450"),
    ("2024-01-01 09:00:01.1234 Z", "2024-01-01 09:00:01.123400"),
    ("2024-01-01 09:00", "2024-01-01 09:00:00.000000"),
    ("2024-01-01T09:00Z", "2024-01-01 09:00:00.000000"),
    ("2024-01-01", "2024-01-01 00:00:00.000000"),
];

/// Values no date function reads: kept as they are, and read back as a typed error
/// naming the column (never a panic, never a guess).
const UNREADABLE: &[&str] = &[
    "yesterday",
    "now",
    "2460311.5",
    "2024-13-01 00:00:00",
    "2024-01-01 09:00:00 x",
    "2024-01-01 09:60:00",
    "",
];

/// Parses `2024-01-01 09:00:01.250000` (the canonical form) as UTC.
fn canonical_instant(s: &str) -> DateTime<Utc> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.6f")
        .unwrap()
        .and_utc()
}

/// A row of `table` as another tool inserts it: the columns it must have and `created_at`.
fn insert_raw(conn: &mut SqliteConnection, table: TableType, n: u128, created_at: &str) {
    let t = table.table_name();
    let created_at = created_at.replace('\'', "''");
    let sql = match table {
        TableType::RecallMemory => format!(
            "INSERT INTO {t} (id, user_id, agent_id, role, text, created_at) \
             VALUES ('{}', '{}', '{}', 'user', 'form {n}', '{created_at}')",
            id(n),
            id(USER),
            id(AGENT)
        ),
        TableType::ArchivalMemory | TableType::Passages => format!(
            "INSERT INTO {t} (id, user_id, agent_id, text, created_at) \
             VALUES ('{}', '{}', '{}', 'form {n}', '{created_at}')",
            id(n),
            id(USER),
            id(AGENT)
        ),
        TableType::Documents => format!(
            "INSERT INTO {t} (id, user_id, text, created_at) \
             VALUES ('{}', '{}', 'form {n}', '{created_at}')",
            id(n),
            id(USER)
        ),
    };
    conn.batch_execute(&sql).unwrap();
}

fn set_raw(conn: &mut SqliteConnection, table: TableType, n: u128, created_at: &str) {
    conn.batch_execute(&format!(
        "UPDATE {} SET created_at = '{}' WHERE id = '{}'",
        table.table_name(),
        created_at.replace('\'', "''"),
        id(n)
    ))
    .unwrap();
}

/// The `created_at` the library reads for row `n` of `table`.
fn read_created_at(store: &SqliteStore, table: TableType, n: u128) -> Result<DateTime<Utc>, Error> {
    let agent = Scope::agent(id(USER), id(AGENT));
    let user = Scope::user(id(USER));
    let got = match table {
        TableType::RecallMemory => store
            .connector::<Message>(table, agent)?
            .get(id(n))?
            .map(|r| r.created_at()),
        TableType::ArchivalMemory => store
            .connector::<Passage>(table, agent)?
            .get(id(n))?
            .map(|r| r.created_at()),
        TableType::Passages => store
            .connector::<Passage>(table, user)?
            .get(id(n))?
            .map(|r| r.created_at()),
        TableType::Documents => store
            .connector::<Document>(table, user)?
            .get(id(n))?
            .map(|r| r.created_at()),
    };
    Ok(got.expect("the row exists"))
}

#[test]
fn every_accepted_form_is_stored_canonical_by_insert_and_by_update_in_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forms.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let mut conn = raw(&path);
    for table in TableType::ALL {
        let t = table.table_name();
        for (i, (form, canonical)) in FORMS.iter().enumerate() {
            // By INSERT.
            let n = 1000 + i as u128;
            insert_raw(&mut conn, table, n, form);
            assert_eq!(
                stored(&mut conn, t, id(n)).as_deref(),
                Some(*canonical),
                "{t} {form}"
            );
            assert_eq!(
                read_created_at(&store, table, n).unwrap(),
                canonical_instant(canonical),
                "{t} {form}"
            );
            // By UPDATE of a canonical row.
            let n = 2000 + i as u128;
            insert_raw(&mut conn, table, n, "2000-01-01 00:00:00.000000");
            set_raw(&mut conn, table, n, form);
            assert_eq!(
                stored(&mut conn, t, id(n)).as_deref(),
                Some(*canonical),
                "{t} {form}"
            );
        }
        for (i, bad) in UNREADABLE.iter().enumerate() {
            let n = 3000 + i as u128;
            insert_raw(&mut conn, table, n, bad);
            assert_eq!(
                stored(&mut conn, t, id(n)).as_deref(),
                Some(*bad),
                "{t} {bad:?}"
            );
            match read_created_at(&store, table, n) {
                Err(Error::Database { message }) => assert!(
                    message.contains(&format!("{t}.created_at")),
                    "{t} {bad:?}: {message}"
                ),
                other => panic!("{t} {bad:?}: {other:?}"),
            }
            let n = 4000 + i as u128;
            insert_raw(&mut conn, table, n, "2000-01-01 00:00:00.000000");
            set_raw(&mut conn, table, n, bad);
            assert_eq!(
                stored(&mut conn, t, id(n)).as_deref(),
                Some(*bad),
                "{t} {bad:?}"
            );
        }
        // NULL stays NULL (a row the library reports, as before, as a database error).
        conn.batch_execute(&format!(
            "UPDATE {t} SET created_at = NULL WHERE id = '{}'",
            id(4000)
        ))
        .unwrap();
        assert_eq!(stored(&mut conn, t, id(4000)), None);
    }
}

/// Rows with foreign `created_at` in a MemGPT-created file before this library ever
/// opened it: the migration rewrites them, so the first reads are already in time order.
#[test]
fn a_memgpt_file_with_foreign_timestamps_is_rewritten_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let mut conn = raw(&path);
        conn.batch_execute(MEMGPT_SQLITE_RECALL_WITH_DEFAULT)
            .unwrap();
        for (n, form) in [
            (1, "2024-01-01 08:59:59.000000"),
            (2, "2024-01-01 09:00:00"),
            (3, "2024-01-01 09:00:00.000000"),
            (4, "2024-01-01T09:00:01"),
            (5, "2024-01-01 23:00:00.000000"),
        ] {
            memgpt_insert(&mut conn, n, Some(form));
        }
    }
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let mut conn = raw(&path);
    assert_eq!(
        stored(&mut conn, "memgpt_recall_memory_agent", id(2)).as_deref(),
        Some("2024-01-01 09:00:00.000000")
    );
    assert_eq!(
        stored(&mut conn, "memgpt_recall_memory_agent", id(4)).as_deref(),
        Some("2024-01-01 09:00:01.000000")
    );
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope())
        .unwrap();
    assert_reads_as_instants(&c, &five());
}

/// The reads by time still walk the `created_at` indexes (no sort, no whole-table scan)
/// once foreign rows were normalized: the column holds the same text type as before.
#[test]
fn the_created_at_indexes_still_serve_the_reads_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let c = store
        .connector::<Message>(TableType::RecallMemory, scope())
        .unwrap();
    let t0 = at(0, 0, 0);
    for a in 0..20u128 {
        let c = store
            .connector::<Message>(
                TableType::RecallMemory,
                Scope::agent(id(USER), id(AGENT + a)),
            )
            .unwrap();
        c.insert_many(
            (0..100u128).map(|i| {
                Message::builder(id(USER), id(AGENT + a), Role::User)
                    .id(id(10_000 + a * 100 + i))
                    .text(format!("m {a} {i}"))
                    .created_at(t0 + Duration::seconds((a * 100 + i) as i64))
                    .build()
                    .unwrap()
            }),
            false,
        )
        .unwrap();
    }
    let mut conn = raw(&path);
    conn.batch_execute(
        "UPDATE memgpt_recall_memory_agent SET created_at = replace(substr(created_at, 1, 19), ' ', 'T') \
         WHERE rowid % 3 = 0;",
    )
    .unwrap();
    store.optimize().unwrap();
    let plans = c.explain().unwrap();
    for op in ["get_all", "get_page", "query_date"] {
        let p = plans.iter().find(|p| p.operation == op).unwrap();
        assert!(
            p.is_indexed() && p.plan.contains("created_at_idx") && !p.plan.contains("TEMP B-TREE"),
            "{op}:\n{}",
            p.plan
        );
    }
}

#[derive(QueryableByName)]
struct Changes {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Rows that `write` changed on `conn`, those changed by trigger programs included
/// (`total_changes()` counts them, `changes()` does not).
fn changes_by(conn: &mut SqliteConnection, write: impl FnOnce(&mut SqliteConnection)) -> i64 {
    let total = |c: &mut SqliteConnection| {
        diesel::sql_query("SELECT total_changes() AS n")
            .load::<Changes>(c)
            .unwrap()[0]
            .n
    };
    let before = total(conn);
    write(conn);
    total(conn) - before
}

/// A canonical value — what this library and SQLAlchemy write — fails the triggers' WHEN
/// clause, so inserting or updating it costs no UPDATE; a foreign one costs exactly one.
#[test]
fn canonical_values_cost_no_trigger_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cost.db");
    let _store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let mut conn = raw(&path);
    for table in TableType::ALL {
        let t = table.table_name();
        let canonical = changes_by(&mut conn, |c| {
            insert_raw(c, table, 1, "2024-01-01 09:00:00.000000")
        });
        let foreign = changes_by(&mut conn, |c| {
            insert_raw(c, table, 2, "2024-01-01T09:00:00")
        });
        assert_eq!(foreign, canonical + 1, "{t}: insert");
        let canonical = changes_by(&mut conn, |c| {
            set_raw(c, table, 1, "2024-01-02 09:00:00.000000")
        });
        let foreign = changes_by(&mut conn, |c| set_raw(c, table, 1, "2024-01-02T09:00:00"));
        assert_eq!((canonical, foreign), (1, 2), "{t}: update");
    }
}
