//! `memgpt-store migrate` as a user runs it: two processes at the same moment (fault
//! matrix row 23), on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_migrate::testing::{TempDatabase, VECTOR_SERVER};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Starts two `memgpt-store migrate --database-url URL up` processes together and waits
/// for both.
fn two_at_once(url: &str) -> [Output; 2] {
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_memgpt-store"))
            .args(["migrate", "--database-url", url, "up"])
            .env_remove("MEMGPT_EMBEDDING_DIM")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()]
}

fn applied_lines(outputs: &[Output]) -> usize {
    outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.starts_with("applied"))
                .count()
        })
        .sum()
}

#[test]
fn two_processes_migrate_one_sqlite_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    let outputs = two_at_once(path.to_str().unwrap());
    assert_eq!(applied_lines(&outputs), 6, "each migration applied once");
    let n: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .load(&mut SqliteConnection::establish(path.to_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(n[0].n, 6);
}

#[test]
fn two_processes_migrate_one_postgres_database_at_once() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let outputs = two_at_once(db.url().expose());
    assert_eq!(applied_lines(&outputs), 6, "each migration applied once");
    let n: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .load(&mut db.connect().unwrap())
        .unwrap();
    assert_eq!(n[0].n, 6);
    // The passwords of the URL never show: the URL here has none, the redacted form does.
    for o in &outputs {
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("migrating "));
    }
}
