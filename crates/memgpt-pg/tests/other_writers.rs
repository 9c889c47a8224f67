//! Rows other tools wrote, and columns a user changed, read as a JSON reader reads them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use memgpt_core::{
    DatabaseUrl, Filter, Message, Passage, Record, Scope, StorageConnector, TableType, ToolCall,
};
use memgpt_pg::{PgConfig, PgStore};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};
use uuid::Uuid;

fn store(db: &TempDatabase) -> PgStore {
    PgStore::open(PgConfig::new(DatabaseUrl::new(db.url().expose()))).unwrap()
}

/// PostgreSQL's `json` keeps a key given twice; the last one wins, as in any JSON reader
/// (the row does not make the agent's history unreadable).
#[test]
fn a_tool_call_with_a_repeated_key_reads_with_the_last_value() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let s = store(&db);
    let (user, agent) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let mut conn = PgConnection::establish(db.url().expose()).unwrap();
    conn.batch_execute(&format!(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, tool_calls, \
         created_at) VALUES ('{}', '{user}', '{agent}', 'assistant', 'hi', \
         '[{{\"id\": \"a\", \"id\": \"b\", \"tool_call_type\": \"function\", \
         \"function\": {{\"name\": \"f\", \"arguments\": \"{{}}\"}}}}]', now())",
        Uuid::from_u128(3)
    ))
    .unwrap();
    let c = s
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let got = c.get(Uuid::from_u128(3)).unwrap().unwrap();
    assert_eq!(
        got.tool_calls().unwrap(),
        &[ToolCall::function("b", "f", "{}")][..]
    );
}

/// A `metadata_` column a user changed to `jsonb` is written and read as before.
#[test]
fn a_metadata_column_changed_to_jsonb_reads_and_writes() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let s = store(&db);
    let mut conn = PgConnection::establish(db.url().expose()).unwrap();
    conn.batch_execute(
        "ALTER TABLE memgpt_passages ALTER metadata_ TYPE jsonb USING metadata_::jsonb",
    )
    .unwrap();
    let user = Uuid::from_u128(1);
    let c = s
        .connector::<Passage>(TableType::Passages, Scope::user(user))
        .unwrap();
    let mut metadata = serde_json::Map::new();
    metadata.insert("source".to_owned(), serde_json::json!({"page": 3}));
    let p = Passage::builder(user, "text")
        .metadata(metadata)
        .build()
        .unwrap();
    c.insert(&p).unwrap();
    assert_eq!(c.get(p.id()).unwrap(), Some(p.clone()));
    // Metadata filters read the jsonb column as it is.
    let page = |n: i64| [Filter::metadata_path(["source", "page"]).eq(n)];
    assert_eq!(c.get_all(&page(3), None).unwrap(), [p]);
    assert!(c.get_all(&page(4), None).unwrap().is_empty());
}

/// MemGPT's `json` column takes the escape `\u0000`, which `jsonb` cannot hold: such a row
/// (written by MemGPT, not by this library, which refuses NUL) matches no metadata test
/// instead of failing the query (the row itself does not decode: this library's records
/// hold no NUL).
#[test]
fn a_memgpt_row_whose_metadata_jsonb_cannot_hold_matches_no_metadata_test() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let s = store(&db);
    let mut conn = PgConnection::establish(db.url().expose()).unwrap();
    let user = Uuid::from_u128(1);
    conn.batch_execute(&format!(
        "INSERT INTO memgpt_passages (id, user_id, text, metadata_, created_at) VALUES \
         ('00000000-0000-0000-0000-000000000001', '{user}', 'nul', \
          '{{\"k\": \"a\\u0000b\", \"n\": 1}}', now()), \
         ('00000000-0000-0000-0000-000000000002', '{user}', 'plain', '{{\"n\": 1}}', now()), \
         ('00000000-0000-0000-0000-000000000003', '{user}', 'surrogate', \
          '{{\"k\": \"\\ud83d\", \"n\": 1}}', now())"
    ))
    .unwrap();
    let c = s
        .connector::<Passage>(TableType::Passages, Scope::user(user))
        .unwrap();
    let n = Filter::metadata("n");
    let found = c.get_all(&[n.clone().eq(1)], None).unwrap();
    assert_eq!(
        found.iter().map(|p| p.id().as_u128()).collect::<Vec<_>>(),
        [2]
    );
    assert_eq!(c.size(&[n.clone().eq(1)]).unwrap(), 1);
    assert_eq!(c.size(&[n.clone().exists()]).unwrap(), 1);
    assert_eq!(c.size(&[Filter::not(n.eq(1))]).unwrap(), 2);
    assert_eq!(c.size(&[]).unwrap(), 3);
}

/// Records another writer left without a `created_at` are neither counted nor removed by
/// `KeepNewest`; the dated records are pruned around them.
#[test]
fn keep_newest_leaves_records_without_created_at_alone() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let s = store(&db);
    let mut conn = PgConnection::establish(db.url().expose()).unwrap();
    let (user, agent) = (Uuid::from_u128(1), Uuid::from_u128(2));
    conn.batch_execute(&format!(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at) \
         SELECT ('00000000-0000-0000-0000-00000000000' || g)::uuid, '{user}', '{agent}', 'user', \
         'm', CASE WHEN g < 3 THEN NULL ELSE timestamp '2024-01-01' + g * interval '1 s' END \
         FROM generate_series(1, 6) AS g"
    ))
    .unwrap();
    let c = s
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    let pruned = c
        .prune(&memgpt_core::retention::Retention::KeepNewest(1), 10)
        .unwrap();
    assert_eq!(pruned.deleted, 3, "records 3, 4, 5 go; 6 is the newest");
    let n: Vec<memgpt_migrate::rows::Count> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT count(*) AS n FROM memgpt_recall_memory_agent"),
        &mut conn,
    )
    .unwrap();
    assert_eq!(n[0].n, 3);
}

/// `timestamptz` values another tool wrote read back to the microsecond, on either side of
/// PostgreSQL's epoch (2000) and the Unix epoch, and at the ends of the years a record may
/// hold; `infinity` is a value that does not decode, naming its column.
#[test]
fn timestamps_other_tools_wrote_read_to_the_microsecond() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let s = store(&db);
    let (user, agent) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let mut conn = PgConnection::establish(db.url().expose()).unwrap();
    let written = [
        (
            "1999-12-31 23:59:59.999999+00",
            "1999-12-31T23:59:59.999999Z",
        ),
        ("2000-01-01 00:00:00+00", "2000-01-01T00:00:00Z"),
        (
            "2000-01-01 00:00:00.000001+00",
            "2000-01-01T00:00:00.000001Z",
        ),
        ("1969-07-20 20:17:40.5-02", "1969-07-20T22:17:40.500Z"),
        ("0001-01-01 00:00:00+00", "0001-01-01T00:00:00Z"),
        (
            "9999-12-31 23:59:59.999999+00",
            "9999-12-31T23:59:59.999999Z",
        ),
        (
            "2024-03-01 12:30:45.123456+05:30",
            "2024-03-01T07:00:45.123456Z",
        ),
    ];
    let c = s
        .connector::<Message>(TableType::RecallMemory, Scope::agent(user, agent))
        .unwrap();
    for (i, (value, expected)) in written.iter().enumerate() {
        let id = Uuid::from_u128(100 + i as u128);
        conn.batch_execute(&format!(
            "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, \
             created_at) VALUES ('{id}', '{user}', '{agent}', 'user', 'hi', '{value}')"
        ))
        .unwrap();
        let got = c.get(id).unwrap().unwrap();
        let expected: chrono::DateTime<chrono::Utc> = expected.parse().unwrap();
        assert_eq!(got.created_at(), expected, "{value}");
    }
    for (n, value) in [(98u128, "infinity"), (99, "-infinity")] {
        let id = Uuid::from_u128(n);
        conn.batch_execute(&format!(
            "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, \
             created_at) VALUES ('{id}', '{user}', '{agent}', 'user', 'hi', '{value}')"
        ))
        .unwrap();
        let e = c.get(id).unwrap_err();
        assert!(
            matches!(&e, memgpt_core::Error::Database { message }
                if message.contains("memgpt_recall_memory_agent.created_at holds a value that does not decode")),
            "{value}: {e:?}"
        );
    }
}
