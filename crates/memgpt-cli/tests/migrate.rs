//! `memgpt-store migrate` as a user runs it: two processes at the same moment (fault
//! matrix row 23), on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use diesel::sql_types::BigInt;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_testing::{TempDatabase, VECTOR_SERVER};

/// The migrations of SQLite.
const SQLITE_MIGRATIONS: usize = 7;
/// The migrations of PostgreSQL (000008, the metadata index, and 000009, the cost of the
/// full-text function, are PostgreSQL's alone).
const PG_MIGRATIONS: usize = 9;

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
    assert_eq!(
        applied_lines(&outputs),
        SQLITE_MIGRATIONS,
        "each migration applied once"
    );
    let n: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .load(&mut SqliteConnection::establish(path.to_str().unwrap()).unwrap())
        .unwrap();
    assert_eq!(n[0].n, SQLITE_MIGRATIONS as i64);
}

#[test]
fn two_processes_migrate_one_postgres_database_at_once() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let outputs = two_at_once(db.url().expose());
    assert_eq!(
        applied_lines(&outputs),
        PG_MIGRATIONS,
        "each migration applied once"
    );
    let n: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .load(&mut db.connect().unwrap())
        .unwrap();
    assert_eq!(n[0].n, PG_MIGRATIONS as i64);
    // The passwords of the URL never show: the URL here has none, the redacted form does.
    for o in &outputs {
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("migrating "));
    }
}

/// `url` with `password` in its userinfo (the test server trusts its clients, so it never
/// asks for it: it is there to be hidden).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    assert!(!user.contains(':'), "{url} has a password already");
    format!("{scheme}://{user}:{password}@{host}")
}

/// With only `MEMGPT_PG_URL` set (the library's first choice), `migrate up` migrates that
/// PostgreSQL database, and says so on stderr (password hidden) naming the variable; no
/// SQLite file appears under `$HOME`. With `MEMGPT_DATABASE_URL` set too, `MEMGPT_PG_URL`
/// still wins, as in the library.
#[test]
fn postgres_named_by_memgpt_pg_url_alone_is_the_database_migrated() {
    let db = TempDatabase::create(VECTOR_SERVER).unwrap();
    let url = with_password(db.url().expose(), "S3cret-pw");
    let redacted = memgpt_core::DatabaseUrl::new(url.as_str()).redacted();
    assert!(redacted.contains(":***@"), "{redacted}");
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_memgpt-store"));
        for (k, _) in std::env::vars() {
            if k.starts_with("MEMGPT_") {
                c.env_remove(k);
            }
        }
        let o = c
            .args(args)
            .envs(env.iter().copied())
            .env("HOME", home.path())
            .current_dir(home.path())
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "{args:?}: {out}{err}");
        assert!(!format!("{out}{err}").contains("S3cret-pw"), "{out}{err}");
        (out, err)
    };

    let (out, err) = run(&["migrate", "up"], &[("MEMGPT_PG_URL", &url)]);
    assert_eq!(
        err.lines().next(),
        Some(format!("memgpt-store: migrate up: {redacted} (from MEMGPT_PG_URL)").as_str()),
        "{err}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("applied")).count(),
        PG_MIGRATIONS
    );
    let n: Vec<Count> = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .load(&mut db.connect().unwrap())
        .unwrap();
    assert_eq!(n[0].n, PG_MIGRATIONS as i64);

    let other = format!("sqlite://{}", home.path().join("other.db").display());
    let (out, err) = run(
        &["migrate", "status"],
        &[("MEMGPT_DATABASE_URL", &other), ("MEMGPT_PG_URL", &url)],
    );
    assert!(
        err.starts_with(&format!(
            "memgpt-store: migrate status: {redacted} (from MEMGPT_PG_URL)"
        )),
        "{err}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("[x]")).count(),
        PG_MIGRATIONS
    );
    // No SQLite file anywhere under $HOME: neither the default nor the other one.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}
