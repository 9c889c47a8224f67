//! `memgpt-store` as a script uses it: help of every command, exit codes, migrating and
//! checking an SQLite file, no secret in any output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use diesel::{Connection, RunQueryDsl, SqliteConnection};

/// Runs `memgpt-store ARGS` with no `MEMGPT_*` variable of the caller's environment.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memgpt-store"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MEMGPT_") {
            c.env_remove(k);
        }
    }
    c.args(args).envs(env.iter().copied()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_command_has_help() {
    for (args, expected) in [
        (&["--help"][..], "migrate"),
        (&["migrate", "--help"], "--embedding-dim"),
        (
            &["migrate", "up", "--help"],
            "Apply every pending migration",
        ),
        (&["migrate", "down", "--help"], "--drop-data"),
        (
            &["migrate", "status", "--help"],
            "Print which migrations are applied",
        ),
        (&["migrate", "redo", "--help"], "apply it again"),
        (&["migrate", "revert", "--help"], "[N]"),
        (&["doctor", "--help"], "--database-url"),
        (&["stats", "--help"], "--database-url"),
        (&["prune", "--help"], "--keep-newest"),
    ] {
        let o = run(args, &[]);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(stdout(&o).contains(expected), "{args:?}: {}", stdout(&o));
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["bogus"][..],
        &[],
        &["migrate"],
        &["migrate", "sideways"],
        &["migrate", "revert", "two"],
        &["migrate", "up", "--embedding-dim", "many"],
    ] {
        let o = run(args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

/// Runs `memgpt-store ARGS` as [`run`] does, in `dir`, with `HOME` pointed at it.
fn run_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memgpt-store"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MEMGPT_") {
            c.env_remove(k);
        }
    }
    c.current_dir(dir)
        .env("HOME", dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// A canary password in URLs libpq accepts and in ones it refuses (a bare `%`, `%zz`, `%4`
/// at the end: libpq quotes the raw token), in key=value strings (quoted, and unquoted
/// with a space), given as `--database-url`, `MEMGPT_DATABASE_URL` or `MEMGPT_PG_URL`:
/// every command fails (no server there) and prints no part of it, on stdout or stderr.
#[test]
fn the_url_password_never_shows() {
    let url = "postgres://someone:hunter2-secret@127.0.0.1:9/nowhere?connect_timeout=1";
    // In --help (clap would print the variable's value).
    for var in ["MEMGPT_DATABASE_URL", "MEMGPT_PG_URL"] {
        let o = run(&["stats", "--help"], &[(var, url)]);
        assert_eq!(o.status.code(), Some(0));
        assert!(!stdout(&o).contains("hunter2"), "{}", stdout(&o));
    }
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://someone:hunter2-secret@127.0.0.1:9/nowhere?connect_timeout=1",
        "postgres://someone:50%offhunter2@127.0.0.1:9/nowhere",
        "postgres://someone:hunter2%zz@127.0.0.1:9/nowhere",
        "postgres://someone:hunter2%4@127.0.0.1:9/nowhere",
        "postgres://someone@127.0.0.1:9/nowhere?password=hunter2%4",
        "postgres://someone:p@hunter2@127.0.0.1:9/nowhere?connect_timeout=1",
        "host=127.0.0.1 port=9 user=someone password='se hunter2' dbname=nowhere",
        "host=127.0.0.1 port=9 user=someone password=se hunter2 dbname=nowhere",
    ] {
        for args in [
            &["migrate", "up"][..],
            &["migrate", "status"],
            &["migrate", "down"],
            &["doctor"],
            &["doctor", "--json"],
            &["stats"],
            &["stats", "--json"],
        ] {
            for how in ["--database-url", "MEMGPT_DATABASE_URL", "MEMGPT_PG_URL"] {
                let o = if how == "--database-url" {
                    let mut with_url = args.to_vec();
                    with_url.extend(["--database-url", url]);
                    run_in(dir.path(), &with_url, &[])
                } else {
                    run_in(dir.path(), args, &[(how, url)])
                };
                let all = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
                assert_eq!(o.status.code(), Some(1), "{url} {args:?} {how}: {all}");
                assert!(!all.contains("hunter2"), "{url} {args:?} {how}: {all}");
            }
        }
    }
    // Nothing was created (a key=value string is a server, not a file name).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn migrate_an_sqlite_file_then_doctor_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());

    let o = run(&["migrate", "--database-url", &url, "up"], &[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(
        stdout(&o)
            .lines()
            .filter(|l| l.starts_with("applied"))
            .count(),
        7
    );
    // The URL from the environment, the flag after the action.
    let o = run(&["migrate", "status"], &[("MEMGPT_DATABASE_URL", &url)]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("[x]")).count(),
        7
    );

    let o = run(&["doctor", "--database-url", &url], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("every query pattern uses an index"));
    let o = run(&["doctor", "--json", "--database-url", &url], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (&report["clean"], &report["problems"], &report["vector"]),
        (&true.into(), &0.into(), &serde_json::Value::Null)
    );
    let plans = report["plans"].as_array().unwrap();
    // The query patterns of recall memory, archival memory, passages and documents.
    assert_eq!(plans.len(), 12 + 14 + 14 + 13);
    assert!(plans
        .iter()
        .all(|p| p["indexed"] == true && p["plan"].is_string()));

    // Without the recall memory's agent index, doctor finds a whole-table read: exit 3.
    let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let indexes: Vec<String> = diesel::dsl::sql::<diesel::sql_types::Text>(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'memgpt_recall_memory_agent' \
         AND sql IS NOT NULL",
    )
    .load(&mut c)
    .unwrap();
    assert!(!indexes.is_empty());
    for i in &indexes {
        diesel::sql_query(format!("DROP INDEX \"{i}\""))
            .execute(&mut c)
            .unwrap();
    }
    drop(c);
    let o = run(&["doctor", "--database-url", &url], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("SCAN"), "{}", stdout(&o));
    let o = run(&["doctor", "--json", "--database-url", &url], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let scans = report["plans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["indexed"] == false)
        .count();
    assert!(scans > 0, "{report}");
    assert_eq!(
        (&report["clean"], &report["problems"]),
        (&false.into(), &scans.into())
    );

    // A file that does not exist is not created by doctor: exit 1.
    let missing = dir.path().join("missing.db");
    let o = run(
        &["doctor", "--database-url", missing.to_str().unwrap()],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(!missing.exists());
}

/// `prune` deletes one tenant's records in batches and prints each; stopped, the same
/// command goes on; it needs one rule.
#[test]
fn prune_deletes_a_tenants_records_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let url = path.to_str().unwrap().to_owned();
    assert_eq!(
        run(&["migrate", "--database-url", &url, "up"], &[])
            .status
            .code(),
        Some(0)
    );
    let mut c = SqliteConnection::establish(&url).unwrap();
    let (user, agent) = (
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
    );
    let other = "00000000-0000-0000-0000-000000000009";
    let rows = (0..10)
        .map(|i| (format!("00000000-0000-0000-0000-0000000001{i:02}"), user, i))
        .chain([("00000000-0000-0000-0000-000000000900".to_owned(), other, 0)]);
    for (id, u, i) in rows {
        diesel::sql_query(format!(
            "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, text, created_at) \
             VALUES ('{id}', '{u}', '{agent}', 'user', 'm', '2024-01-01 00:00:{i:02}')"
        ))
        .execute(&mut c)
        .unwrap();
    }
    let prune = |extra: &[&str]| {
        let mut args = vec![
            "prune",
            "--database-url",
            &url,
            "--table",
            "recall",
            "--user",
            user,
            "--agent",
            agent,
        ];
        args.extend_from_slice(extra);
        run(&args, &[])
    };
    let o = prune(&["--older-than", "2024-01-01T00:00:05Z", "--batch", "2"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(
        stdout(&o),
        "batch 1: 2 deleted (2 in all)\nbatch 2: 2 deleted (4 in all)\n\
         batch 3: 1 deleted (5 in all)\npruned: 5 record(s) in 3 batch(es)\n"
    );
    let o = prune(&["--keep-newest", "2"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        stdout(&o).ends_with("pruned: 3 record(s) in 1 batch(es)\n"),
        "{}",
        stdout(&o)
    );
    let left: Vec<String> = diesel::dsl::sql::<diesel::sql_types::Text>(
        "SELECT substr(created_at, 1, 19) FROM memgpt_recall_memory_agent ORDER BY created_at",
    )
    .load(&mut c)
    .unwrap();
    assert_eq!(
        left,
        [
            "2024-01-01 00:00:00",
            "2024-01-01 00:00:08",
            "2024-01-01 00:00:09"
        ],
        "the other tenant's record and the newest two"
    );
    let o = prune(&[]);
    assert_eq!(o.status.code(), Some(2), "no rule: a usage error");
    let o = prune(&["--keep-newest", "1", "--data-source", "x"]);
    assert_eq!(o.status.code(), Some(2), "two rules: a usage error");
    let o = prune(&["--data-source", "x"]);
    assert_eq!(o.status.code(), Some(1), "recall memory has no data source");
    for batch in ["0", "50001"] {
        let o = prune(&["--keep-newest", "1", "--batch", batch]);
        assert_eq!(o.status.code(), Some(2), "--batch {batch}: a usage error");
    }
}

/// `doctor --json` and `stats --json` on a migrated PostgreSQL database with pgvector: one
/// JSON object each, saying what the lines say.
#[test]
fn postgres_doctor_and_stats_answer_in_json() {
    let db = memgpt_testing::TempDatabase::create(memgpt_testing::VECTOR_SERVER).unwrap();
    let url = db.url().expose().to_owned();
    let o = run(&["migrate", "--database-url", &url, "up"], &[]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");

    let o = run(&["doctor", "--json", "--database-url", &url], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (&report["clean"], &report["problems"]),
        (&true.into(), &0.into())
    );
    let vector = &report["vector"];
    assert_eq!(
        (&vector["dimension"], &vector["type"], &vector["missing"]),
        (&1536.into(), &"vector".into(), &serde_json::json!([]))
    );
    assert!(vector["pgvector"].is_string(), "{report}");
    assert_eq!(report["plans"].as_array().unwrap().len(), 12 + 14 + 14 + 13);

    let o = run(&["stats", "--json", "--database-url", &url], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stats: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(stats["pgvector"], true);
    assert_eq!(
        (&stats["pool"]["pool_size"], &stats["pool"]["max"]),
        (&1.into(), &1.into())
    );
    assert!(stats["activity"].is_array() && stats["index_usage"].as_array().unwrap().len() > 10);
    assert!(!stats["server"].as_str().unwrap().is_empty());
}
