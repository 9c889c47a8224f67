//! The migrations, applied and reverted on real SQLite files and real PostgreSQL servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_migrate::{postgres, sqlite, Command};
use memgpt_testing::{TempDatabase, NO_VECTOR_SERVER, VECTOR_SERVER};

/// Migrations of SQLite (000006, the canonical `created_at` text, is SQLite's only).
const SQLITE_MIGRATIONS: usize = 7;
/// Migrations of PostgreSQL (its 000006, the compact embedding column, 000008, the
/// metadata index, and 000009, the cost of the full-text function, are PostgreSQL's only).
const PG_MIGRATIONS: usize = 9;

const TABLES: [&str; 4] = [
    "memgpt_archival_memory_agent",
    "memgpt_documents",
    "memgpt_passages",
    "memgpt_recall_memory_agent",
];

/// Every index of the seed, on each table that has the columns.
fn seed_indexes() -> Vec<String> {
    let mut v = Vec::new();
    for t in TABLES {
        let has_agent = t != "memgpt_documents";
        let passages = t == "memgpt_archival_memory_agent" || t == "memgpt_passages";
        let recall = t == "memgpt_recall_memory_agent";
        let mut names = vec!["user_id", "created_at", "user_id_created_at"];
        if has_agent {
            names.extend(["agent_id", "user_id_agent_id", "agent_id_created_at"]);
        }
        if recall {
            names.extend(["role", "tool_call_id", "role_created_at"]);
        }
        if passages || t == "memgpt_documents" {
            names.push("data_source");
        }
        if passages {
            names.push("doc_id");
        }
        v.extend(names.into_iter().map(|n| format!("{t}_{n}_idx")));
    }
    v.sort();
    v
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn sqlite_names(conn: &mut SqliteConnection, kind: &str) -> Vec<String> {
    let mut v: Vec<String> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = ? AND name LIKE 'memgpt_%' ORDER BY name",
    )
    .bind::<Text, _>(kind)
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect();
    v.sort();
    v
}

fn pg_names(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    let mut v: Vec<String> = diesel::sql_query(sql)
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    v.sort();
    v
}

const PG_INDEXES: &str = "SELECT indexname::text AS name FROM pg_indexes \
    WHERE schemaname = 'public' AND indexname LIKE 'memgpt_%_idx'";
const PG_TABLES: &str = "SELECT tablename::text AS name FROM pg_tables \
    WHERE schemaname = 'public' AND tablename LIKE 'memgpt_%'";

#[test]
fn sqlite_up_creates_every_table_and_index_and_down_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let report = sqlite::run_path(&path, Command::Up).unwrap();
    assert_eq!(report.applied.len(), SQLITE_MIGRATIONS);
    assert!(report.status.iter().all(|s| s.applied));
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let tables = sqlite_names(&mut conn, "table");
    for t in TABLES {
        assert!(
            tables.contains(&t.to_owned()),
            "{t} missing from {tables:?}"
        );
        assert!(tables.contains(&format!("{t}_fts")), "{t}_fts missing");
    }
    let indexes: Vec<String> = sqlite_names(&mut conn, "index")
        .into_iter()
        .filter(|n| n.ends_with("_idx"))
        .collect();
    assert_eq!(indexes, seed_indexes());
    // Three full-text triggers and two `created_at` triggers per table.
    assert_eq!(sqlite_names(&mut conn, "trigger").len(), 20);
    assert_eq!(sqlite_names(&mut conn, "view").len(), 4);
    // Idempotent: a second run applies nothing.
    assert!(sqlite::run_path(&path, Command::Up)
        .unwrap()
        .applied
        .is_empty());
    let report = sqlite::run_path(&path, Command::Redo).unwrap();
    assert_eq!(report.reverted, report.applied);
    let report = sqlite::run_path(&path, Command::Down).unwrap();
    assert_eq!(report.reverted.len(), SQLITE_MIGRATIONS);
    assert!(sqlite_names(&mut conn, "table").is_empty());
    assert!(sqlite_names(&mut conn, "index").is_empty());
    assert!(sqlite_names(&mut conn, "trigger").is_empty());
    assert!(sqlite_names(&mut conn, "view").is_empty());
}

#[test]
fn sqlite_concurrent_migrations_are_safe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let applied: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| sqlite::run_path(&path, Command::Up).unwrap().applied.len()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        applied.iter().sum::<usize>(),
        SQLITE_MIGRATIONS,
        "{applied:?}"
    );
    let status = sqlite::run_path(&path, Command::Status).unwrap().status;
    assert!(status.iter().all(|s| s.applied));
}

fn pg_roundtrip(server: &str, embedding_type: &str) {
    let db = TempDatabase::create(server).unwrap();
    let report = postgres::run_url(db.url(), Command::Up).unwrap();
    assert_eq!(report.applied.len(), PG_MIGRATIONS);
    let mut conn = db.connect().unwrap();
    assert_eq!(
        pg_names(&mut conn, PG_TABLES),
        TABLES.map(str::to_owned).to_vec()
    );
    let mut want = seed_indexes();
    want.extend(TABLES.iter().map(|t| format!("{t}_text_words_idx")));
    want.extend(
        TABLES
            .iter()
            .filter(|t| !t.contains("recall"))
            .map(|t| format!("{t}_metadata_idx")),
    );
    want.sort();
    assert_eq!(pg_names(&mut conn, PG_INDEXES), want);
    let types = pg_names(
        &mut conn,
        "SELECT format_type(atttypid, atttypmod) AS name FROM pg_attribute \
         WHERE attrelid = 'memgpt_passages'::regclass AND attname = 'embedding'",
    );
    assert_eq!(types, vec![embedding_type.to_owned()]);
    // Migration 000006: the embedding at its true dimension, stored with the row.
    for t in ["memgpt_archival_memory_agent", "memgpt_passages"] {
        let compact = pg_names(
            &mut conn,
            &format!(
                "SELECT format_type(atttypid, atttypmod) || ' ' || attstorage::text || ' ' || \
                 attgenerated::text AS name FROM pg_attribute \
                 WHERE attrelid = '{t}'::regclass AND attname = 'embedding_compact'"
            ),
        );
        let base = embedding_type.split('(').next().unwrap();
        assert_eq!(compact, vec![format!("{base} m s")], "{t}");
    }
    let report = postgres::run_url(db.url(), Command::Redo).unwrap();
    assert_eq!(report.reverted, report.applied);
    let report = postgres::run_url(db.url(), Command::Down).unwrap();
    assert_eq!(report.reverted.len(), PG_MIGRATIONS);
    assert!(pg_names(&mut conn, PG_TABLES).is_empty());
    assert!(pg_names(&mut conn, PG_INDEXES).is_empty());
}

#[test]
fn postgres_with_pgvector_up_redo_down() {
    pg_roundtrip(VECTOR_SERVER, "vector(4096)");
}

#[test]
fn postgres_without_pgvector_up_redo_down() {
    pg_roundtrip(NO_VECTOR_SERVER, "real[]");
}

#[test]
fn postgres_concurrent_migrations_are_safe() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let applied: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    postgres::run_url(db.url(), Command::Up)
                        .unwrap()
                        .applied
                        .len()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(applied.iter().sum::<usize>(), PG_MIGRATIONS, "{applied:?}");
}

/// MemGPT 0.3.x's DDL for recall memory on PostgreSQL, as SQLAlchemy emitted it.
const MEMGPT_PG_RECALL: &str = "CREATE TABLE memgpt_recall_memory_agent (
    id UUID NOT NULL, user_id UUID NOT NULL, agent_id UUID NOT NULL, role VARCHAR NOT NULL,
    text VARCHAR, model VARCHAR, name VARCHAR, tool_calls JSON, tool_call_id VARCHAR,
    embedding VECTOR(4096), embedding_dim BIGINT, embedding_model VARCHAR,
    created_at TIMESTAMP WITH TIME ZONE, PRIMARY KEY (id))";

/// MemGPT 0.3.x's DDL for archival memory on PostgreSQL, as SQLAlchemy emitted it.
const MEMGPT_PG_ARCHIVAL: &str = "CREATE TABLE memgpt_archival_memory_agent (
    id UUID NOT NULL, user_id UUID NOT NULL, text VARCHAR, doc_id UUID, agent_id UUID,
    data_source VARCHAR, embedding VECTOR(4096), embedding_dim BIGINT,
    embedding_model VARCHAR, metadata_ JSON, created_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id))";

#[test]
fn postgres_migrations_apply_to_a_memgpt_created_database() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut conn = db.connect().unwrap();
    diesel::sql_query("CREATE EXTENSION IF NOT EXISTS vector")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(MEMGPT_PG_RECALL)
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(MEMGPT_PG_ARCHIVAL)
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'user', 'hi', now())",
    )
    .execute(&mut conn)
    .unwrap();
    // A passage as MemGPT writes it: 3 dimensions zero-padded to 4096.
    diesel::sql_query(
        "INSERT INTO memgpt_archival_memory_agent (id, user_id, text, embedding, embedding_dim)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'p',
                 (ARRAY[1.5, -2, 3]::real[] || array_fill(0::real, ARRAY[4093]))::vector, 3)",
    )
    .execute(&mut conn)
    .unwrap();
    let report = postgres::run_url(db.url(), Command::Up).unwrap();
    assert_eq!(report.applied.len(), PG_MIGRATIONS);
    let n: Vec<Name> =
        diesel::sql_query("SELECT text::text AS name FROM memgpt_recall_memory_agent")
            .load(&mut conn)
            .unwrap();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].name, "hi");
    assert!(pg_names(&mut conn, PG_INDEXES)
        .contains(&"memgpt_recall_memory_agent_agent_id_created_at_idx".to_owned()));
    // Migration 000006 filled the compact column of the existing row.
    assert_eq!(
        pg_names(
            &mut conn,
            "SELECT embedding_compact::text AS name FROM memgpt_archival_memory_agent"
        ),
        vec!["[1.5,-2,3]".to_owned()]
    );
}

#[test]
fn missing_server_variable_is_a_config_error() {
    let err = TempDatabase::create("MEMGPT_TEST_NO_SUCH_VARIABLE").unwrap_err();
    assert!(matches!(err, memgpt_core::Error::Config { .. }));
}

#[test]
fn postgres_a_failing_migration_is_a_migration_error_and_rolls_back() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut conn = db.connect().unwrap();
    // An object of MemGPT's table name that is not a table: the index migration fails.
    diesel::sql_query("CREATE VIEW memgpt_documents AS SELECT 1 AS x")
        .execute(&mut conn)
        .unwrap();
    let err = postgres::run_url(db.url(), Command::Up).unwrap_err();
    assert!(
        matches!(err, memgpt_core::Error::Migration { .. }),
        "{err:?}"
    );
    let status = postgres::run_url(db.url(), Command::Status).unwrap().status;
    assert!(
        status[0].applied,
        "the table migration succeeded on its own"
    );
    assert!(
        !status[1].applied,
        "the failed index migration left nothing applied"
    );
    assert!(pg_names(&mut conn, PG_INDEXES).is_empty());
}

fn sqlite_count(conn: &mut SqliteConnection, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).load::<N>(conn).unwrap()[0].n
}

/// `down` and `redo` refuse to drop tables that hold rows, naming them and their counts;
/// `--drop-data` lets them. Tables MemGPT created and `up` adopted are protected alike.
#[test]
fn sqlite_down_refuses_to_drop_tables_holding_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    sqlite::run_path(&path, Command::Up).unwrap();
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    diesel::sql_query(
        "INSERT INTO memgpt_documents (id, user_id, text) VALUES ('a', 'u', 'x'), ('b', 'u', 'y')",
    )
    .execute(&mut conn)
    .unwrap();
    let e = sqlite::run_path(&path, Command::Down).unwrap_err();
    assert!(matches!(e, memgpt_core::Error::Migration { .. }));
    assert!(
        e.to_string().contains("memgpt_documents (2 rows)")
            && e.to_string().contains("--drop-data"),
        "{e}"
    );
    // Nothing was reverted.
    let status = sqlite::run_path(&path, Command::Status).unwrap().status;
    assert!(status.iter().all(|s| s.applied));
    assert_eq!(
        sqlite_count(&mut conn, "SELECT count(*) AS n FROM memgpt_documents"),
        2
    );
    // Redo reverts only the last migration, which drops no table: allowed.
    sqlite::run_path(&path, Command::Redo).unwrap();
    let options = memgpt_migrate::Options::default().with_drop_data(true);
    let report = sqlite::run_path_with(&path, Command::Down, &options).unwrap();
    assert_eq!(report.reverted.len(), SQLITE_MIGRATIONS);
    assert!(sqlite_names(&mut conn, "table").is_empty());
}

/// An index that existed before `up` (the operator's own, of one of this crate's names)
/// survives reverting the index migrations; the ones `up` created go.
#[test]
fn sqlite_down_keeps_the_operators_own_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    // MemGPT's tables, then the operator's index, then `up` adopts them.
    conn.batch_execute(include_str!(
        "../../../migrations/sqlite/2024-01-01-000001_create_tables/up.sql"
    ))
    .unwrap();
    conn.batch_execute(
        "CREATE INDEX memgpt_documents_user_id_idx ON memgpt_documents (user_id, text);",
    )
    .unwrap();
    sqlite::run_path(&path, Command::Up).unwrap();
    diesel::sql_query("INSERT INTO memgpt_documents (id, user_id, text) VALUES ('a', 'u', 'x')")
        .execute(&mut conn)
        .unwrap();
    // Everything but the tables.
    let report = sqlite::run_path(&path, Command::Revert(SQLITE_MIGRATIONS - 1)).unwrap();
    assert_eq!(report.reverted.len(), SQLITE_MIGRATIONS - 1);
    assert_eq!(
        sqlite_names(&mut conn, "index"),
        vec!["memgpt_documents_user_id_idx".to_owned()],
        "only the operator's index remains"
    );
    // The last step would drop a table holding a row.
    let e = sqlite::run_path(&path, Command::Revert(1)).unwrap_err();
    assert!(e.to_string().contains("memgpt_documents (1 rows)"), "{e}");
}

/// The same on PostgreSQL: `down` refuses while tables hold rows, and reverting the index
/// migrations keeps the operator's own index of one of this crate's names.
#[test]
fn postgres_down_refuses_to_drop_rows_and_keeps_the_operators_indexes() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut conn = db.connect().unwrap();
    diesel::sql_query("CREATE EXTENSION IF NOT EXISTS vector")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(MEMGPT_PG_RECALL)
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(
        "CREATE INDEX memgpt_recall_memory_agent_user_id_idx ON memgpt_recall_memory_agent (user_id, role)",
    )
    .execute(&mut conn)
    .unwrap();
    postgres::run_url(db.url(), Command::Up).unwrap();
    diesel::sql_query(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'user', 'hi', now())",
    )
    .execute(&mut conn)
    .unwrap();
    let e = postgres::run_url(db.url(), Command::Down).unwrap_err();
    assert!(
        e.to_string()
            .contains("memgpt_recall_memory_agent (1 rows)"),
        "{e}"
    );
    let status = postgres::run_url(db.url(), Command::Status).unwrap().status;
    assert!(status.iter().all(|s| s.applied), "nothing reverted");
    postgres::run_url(db.url(), Command::Revert(PG_MIGRATIONS - 1)).unwrap();
    assert_eq!(
        pg_names(&mut conn, PG_INDEXES),
        vec!["memgpt_recall_memory_agent_user_id_idx".to_owned()]
    );
    let options = memgpt_migrate::Options::default().with_drop_data(true);
    postgres::run_url_with(db.url(), Command::Down, &options, &|_| {}).unwrap();
    assert!(pg_names(&mut conn, PG_TABLES).is_empty());
}

/// A MemGPT database that already holds a text whose whole tsvector exceeds 1 MiB still
/// migrates (the full-text index covers a prefix), and the text is found by its start.
#[test]
fn postgres_migrates_a_memgpt_database_holding_a_huge_text() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut conn = db.connect().unwrap();
    diesel::sql_query("CREATE EXTENSION IF NOT EXISTS vector")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(MEMGPT_PG_RECALL)
        .execute(&mut conn)
        .unwrap();
    // 2.4 MB of distinct words.
    diesel::sql_query(
        "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at)
         SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'user',
                'firstword ' || string_agg('w' || g, ' '), now()
         FROM generate_series(1, 300000) AS g",
    )
    .execute(&mut conn)
    .unwrap();
    let whole = diesel::sql_query(
        "SELECT to_tsvector('english', text)::text AS name FROM memgpt_recall_memory_agent",
    )
    .load::<Name>(&mut conn);
    assert!(
        whole.is_err_and(|e| e.to_string().contains("too long for tsvector")),
        "the whole text cannot be indexed"
    );
    let report = postgres::run_url(db.url(), Command::Up).unwrap();
    assert_eq!(report.applied.len(), PG_MIGRATIONS);
    // Through the full-text index (migration 000007's expression).
    diesel::sql_query("SET enable_seqscan = off")
        .execute(&mut conn)
        .unwrap();
    let found = diesel::sql_query(
        "SELECT id::text AS name FROM memgpt_recall_memory_agent WHERE \
         array_to_tsvector(memgpt_text_words(left(coalesce(text, ''), 200000)) || \
         ARRAY['u:' || replace(user_id::text, '-', ''), 'a:' || replace(coalesce(agent_id::text, ''), '-', '')]) \
         @@ 'firstword'::tsquery",
    )
    .load::<Name>(&mut conn)
    .unwrap();
    assert_eq!(found.len(), 1);
}

/// `up` builds the HNSW indexes for the configured dimension, concurrently when the table
/// holds rows, reporting progress; a database migrated without them reports them missing.
#[test]
fn postgres_up_builds_the_hnsw_indexes_for_the_dimension() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut conn = db.connect().unwrap();
    postgres::run_pending(&mut conn).unwrap();
    assert_eq!(
        postgres::missing_hnsw(&mut conn, 8).unwrap(),
        vec![
            "memgpt_archival_memory_agent_embedding_hnsw_8".to_owned(),
            "memgpt_passages_embedding_hnsw_8".to_owned()
        ]
    );
    diesel::sql_query(
        "INSERT INTO memgpt_passages (id, user_id, text, embedding, embedding_dim, created_at)
         SELECT gen_random_uuid(), gen_random_uuid(), 'p' || g,
                (array_fill(0::real, ARRAY[4096]))::vector(4096), 8, now()
         FROM generate_series(1, 2000) AS g",
    )
    .execute(&mut conn)
    .unwrap();
    let lines = std::sync::Mutex::new(Vec::<String>::new());
    let options = memgpt_migrate::Options::default().with_embedding_dim(Some(8));
    postgres::run_url_with(db.url(), Command::Up, &options, &|l| {
        lines.lock().unwrap().push(l.to_owned())
    })
    .unwrap();
    assert!(postgres::missing_hnsw(&mut conn, 8).unwrap().is_empty());
    let lines = lines.into_inner().unwrap();
    assert!(
        lines.contains(&"built memgpt_passages_embedding_hnsw_8".to_owned()),
        "{lines:?}"
    );
    // Idempotent: nothing left to build.
    let again = std::sync::Mutex::new(0usize);
    postgres::run_url_with(db.url(), Command::Up, &options, &|_| {
        *again.lock().unwrap() += 1
    })
    .unwrap();
    assert_eq!(*again.lock().unwrap(), 0);
    let bad = memgpt_migrate::Options::default().with_embedding_dim(Some(4001));
    let e = postgres::run_url_with(db.url(), Command::Up, &bad, &|_| {}).unwrap_err();
    assert!(matches!(e, memgpt_core::Error::InvalidInput { .. }));
}

/// `created_at` texts of another writer and what migration 000006 makes of them: the
/// canonical `YYYY-MM-DD HH:MM:SS.ffffff` of the same instant (UTC), or, for a value no
/// SQLite date function reads, the value itself.
const FOREIGN_CREATED_AT: &[(&str, Option<&str>)] = &[
    (
        "2024-01-01 09:00:00.000000",
        Some("2024-01-01 09:00:00.000000"),
    ),
    ("2024-01-01 09:00:00", Some("2024-01-01 09:00:00.000000")),
    ("2024-01-01T09:00:01", Some("2024-01-01 09:00:01.000000")),
    ("2024-01-01T09:00:01Z", Some("2024-01-01 09:00:01.000000")),
    (
        "2024-01-01T11:00:01.5+02:00",
        Some("2024-01-01 09:00:01.500000"),
    ),
    (
        "2024-01-01 09:00:01.123456789",
        Some("2024-01-01 09:00:01.123456"),
    ),
    ("2024-01-01", Some("2024-01-01 00:00:00.000000")),
    ("not a time", Some("not a time")),
    ("2024-13-01", Some("2024-13-01")),
];

fn sqlite_created_at(conn: &mut SqliteConnection, table: &str) -> Vec<Option<String>> {
    #[derive(QueryableByName)]
    struct C {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        created_at: Option<String>,
    }
    diesel::sql_query(format!("SELECT created_at FROM {table} ORDER BY rowid"))
        .load::<C>(conn)
        .unwrap()
        .into_iter()
        .map(|c| c.created_at)
        .collect()
}

/// Rows written before migration 000006 (a MemGPT database, or one migrated up to 000005)
/// in every table: `up` rewrites each readable `created_at` as the canonical text of the
/// same instant and leaves NULL and unreadable values alone; reverting it drops its
/// triggers (the rewritten rows stay canonical: the same instants).
#[test]
fn sqlite_migration_000006_rewrites_existing_created_at_and_down_drops_its_triggers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    sqlite::run_path(&path, Command::Up).unwrap();
    // Back to 000005 (000007, the full-text rule, comes after 000006).
    let report = sqlite::run_path(&path, Command::Revert(2)).unwrap();
    assert_eq!(report.reverted.len(), 2);
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let insert = |conn: &mut SqliteConnection, table: &str, n: usize, at: Option<&str>| {
        let (agent_cols, agent_vals) = match table {
            "memgpt_recall_memory_agent" => (", agent_id, role", ", 'a', 'user'"),
            "memgpt_documents" => ("", ""),
            _ => (", agent_id", ", 'a'"),
        };
        let at = at.map_or("NULL".to_owned(), |a| format!("'{a}'"));
        conn.batch_execute(&format!(
            "INSERT INTO {table} (id, user_id, text, created_at{agent_cols}) \
             VALUES ('{n}', 'u', 'row {n}', {at}{agent_vals});"
        ))
        .unwrap();
    };
    for t in TABLES {
        for (n, (at, _)) in FOREIGN_CREATED_AT.iter().enumerate() {
            insert(&mut conn, t, n, Some(at));
        }
        insert(&mut conn, t, FOREIGN_CREATED_AT.len(), None);
    }
    // Up to 000005 nothing rewrites them.
    assert_eq!(
        sqlite_created_at(&mut conn, "memgpt_passages")[1].as_deref(),
        Some("2024-01-01 09:00:00")
    );
    let report = sqlite::run_path(&path, Command::Up).unwrap();
    assert_eq!(report.applied.len(), 2);
    assert!(report.status[SQLITE_MIGRATIONS - 2]
        .name
        .ends_with("_canonical_created_at"));
    let mut want: Vec<Option<String>> = FOREIGN_CREATED_AT
        .iter()
        .map(|(_, w)| w.map(str::to_owned))
        .collect();
    want.push(None);
    for t in TABLES {
        assert_eq!(sqlite_created_at(&mut conn, t), want, "{t}");
    }
    let created_at_triggers = |conn: &mut SqliteConnection| -> Vec<String> {
        sqlite_names(conn, "trigger")
            .into_iter()
            .filter(|n| n.contains("_created_at_"))
            .collect()
    };
    let mut expected: Vec<String> = TABLES
        .iter()
        .flat_map(|t| [format!("{t}_created_at_ai"), format!("{t}_created_at_au")])
        .collect();
    expected.sort();
    assert_eq!(created_at_triggers(&mut conn), expected);
    // Down drops the triggers and only them (000007 reverted first: migration 000005's
    // full-text triggers, three per table, stay).
    sqlite::run_path(&path, Command::Revert(2)).unwrap();
    assert!(created_at_triggers(&mut conn).is_empty());
    assert_eq!(sqlite_names(&mut conn, "trigger").len(), 12);
    insert(
        &mut conn,
        "memgpt_documents",
        100,
        Some("2024-01-01T09:00:00"),
    );
    assert_eq!(
        sqlite_created_at(&mut conn, "memgpt_documents")
            .last()
            .unwrap()
            .as_deref(),
        Some("2024-01-01T09:00:00")
    );
    for t in TABLES {
        assert_eq!(
            sqlite_created_at(&mut conn, t)[..want.len()],
            want[..],
            "{t}"
        );
    }
}

/// `migrate up --embedding-dim 3072` (OpenAI's text-embedding-3-large) indexes archival
/// memory and passages as `halfvec(3072)` (pgvector indexes `vector` up to 2,000
/// dimensions), built concurrently over rows already there; a row whose components halfvec
/// cannot hold is still written; a global nearest-neighbour search ordering by the same
/// expression walks it. 4,001 is refused.
#[test]
fn embeddings_wider_than_2000_are_indexed_as_halfvec() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let mut conn = db.connect().unwrap();
    postgres::run_pending(&mut conn).unwrap();
    diesel::sql_query(
        "INSERT INTO memgpt_passages (id, user_id, text, embedding, embedding_dim, created_at)
         SELECT gen_random_uuid(), gen_random_uuid(), 'p' || g,
                (array_fill((g % 7)::real, ARRAY[4096]))::vector(4096), 3072, now()
         FROM generate_series(1, 500) AS g",
    )
    .execute(&mut conn)
    .unwrap();
    let options = memgpt_migrate::Options::default().with_embedding_dim(Some(3072));
    postgres::run_url_with(db.url(), Command::Up, &options, &|_| {}).unwrap();
    assert!(postgres::missing_hnsw(&mut conn, 3072).unwrap().is_empty());
    let defs = pg_names(
        &mut conn,
        "SELECT indexdef::text AS name FROM pg_indexes WHERE indexname LIKE '%_embedding_hnsw_3072'",
    );
    assert_eq!(defs.len(), 2, "{defs:?}");
    for d in &defs {
        assert!(
            d.contains("::halfvec(3072)") && d.contains("halfvec_l2_ops"),
            "{d}"
        );
    }
    // A component past what halfvec holds (65,504) is still written: the row is left out
    // of the approximate index, never refused.
    diesel::sql_query(
        "INSERT INTO memgpt_passages (id, user_id, text, embedding, embedding_dim, created_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'wide',
                 (array_fill(70000::real, ARRAY[4096]))::vector(4096), 3072, now())",
    )
    .execute(&mut conn)
    .unwrap();
    let (expression, _) = postgres::hnsw_expression(3072);
    let query = format!(
        "[{}]",
        std::iter::repeat_n("0.5", 3072)
            .collect::<Vec<_>>()
            .join(",")
    );
    conn.batch_execute("SET enable_seqscan = off").unwrap();
    #[derive(QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let plan: Vec<PlanLine> = diesel::sql_query(format!(
        "EXPLAIN SELECT id FROM memgpt_passages ORDER BY {expression} <-> \
         '{query}'::halfvec(3072) LIMIT 10"
    ))
    .load(&mut conn)
    .unwrap();
    let plan: Vec<String> = plan.into_iter().map(|l| l.line).collect();
    assert!(
        plan.iter()
            .any(|l| l.contains("memgpt_passages_embedding_hnsw_3072")),
        "{plan:#?}"
    );
    let too_wide = memgpt_migrate::Options::default().with_embedding_dim(Some(4001));
    let e = postgres::run_url_with(db.url(), Command::Up, &too_wide, &|_| {}).unwrap_err();
    assert!(
        matches!(e, memgpt_core::Error::InvalidInput { .. }),
        "{e:?}"
    );
}
