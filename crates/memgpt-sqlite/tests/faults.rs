//! The fault matrix on SQLite (docs/RELIABILITY.md): another writer holding the lock,
//! reads during a long write, processes writing one file in turn.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use memgpt_core::{Error, Message, Role, Scope, StorageConnector, TableType};
use memgpt_sqlite::{SqliteConfig, SqliteStore};
use uuid::Uuid;

fn message(s: &Scope, i: usize) -> Message {
    Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
        .text(format!("message {i}"))
        .build()
        .unwrap()
}

/// Row 15: another connection (as another process would) holds `BEGIN IMMEDIATE`: a write
/// gets `Error::Busy` after the 5 s busy timeout, never hangs, and succeeds once the lock
/// is released.
#[test]
fn another_writer_holding_the_lock_gives_busy_after_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let mut other = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    other.batch_execute("BEGIN IMMEDIATE;").unwrap();
    let start = Instant::now();
    let e = c.insert(&message(&s, 0)).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(e, Error::Busy { .. }), "{e:?}");
    assert!(
        waited >= Duration::from_millis(4_500) && waited <= Duration::from_millis(5_500),
        "{waited:?}"
    );
    other.batch_execute("ROLLBACK;").unwrap();
    c.insert(&message(&s, 1)).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

/// Row 27: while one `insert_many` holds the writer (its iterator waits until the readers
/// are done, so the write is in progress throughout), 8 threads read: every read is
/// served, none waits for the writer.
#[test]
fn reads_are_served_while_a_long_write_holds_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("wal.db"))).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert_many((0..100).map(|i| message(&s, i)), false)
        .unwrap();
    let (started, write_started) = mpsc::channel::<()>();
    let (reads_done, wait_reads) = mpsc::channel::<()>();
    let counts = std::thread::scope(|sc| {
        let writer = sc.spawn(|| {
            let wait_reads = wait_reads;
            let started = started;
            let writer = store
                .connector::<Message>(TableType::RecallMemory, s)
                .unwrap();
            // 600 records: the first chunk of 500 is written, then the iterator waits.
            let lazy = (100..700).map(move |i| {
                if i == 600 {
                    started.send(()).unwrap();
                    wait_reads
                        .recv_timeout(Duration::from_secs(20))
                        .expect("the readers finished");
                }
                message(&s, i)
            });
            writer.insert_many(lazy, false)
        });
        write_started
            .recv_timeout(Duration::from_secs(20))
            .expect("the write started");
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let store = &store;
                sc.spawn(move || {
                    let r = store
                        .connector::<Message>(TableType::RecallMemory, s)
                        .unwrap();
                    r.size(&[]).unwrap()
                })
            })
            .collect();
        let counts: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        reads_done.send(()).unwrap();
        assert_eq!(writer.join().unwrap().unwrap(), 600);
        counts
    });
    // Every reader saw the committed 100 rows, none of the write in progress.
    assert_eq!(counts, vec![100; 8]);
    assert_eq!(c.size(&[]).unwrap(), 700);
}

/// Row 17: a reader left open while 100,000 rows are written pins the write-ahead log
/// (it grows, and `stats()` shows it); once the reader closes, `checkpoint()` brings it
/// back to 0 bytes.
#[test]
fn a_checkpoint_after_a_long_reader_closes_truncates_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, 0)).unwrap();
    let mut reader = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM memgpt_recall_memory_agent;")
        .unwrap();
    c.insert_many((1..100_001).map(|i| message(&s, i)), false)
        .unwrap();
    let pinned = store.checkpoint().unwrap();
    assert!(
        pinned.wal_bytes > 4 * 1024 * 1024,
        "the open reader pins the log: {} bytes",
        pinned.wal_bytes
    );
    reader.batch_execute("COMMIT;").unwrap();
    drop(reader);
    assert_eq!(store.checkpoint().unwrap().wal_bytes, 0);
    assert_eq!(c.size(&[]).unwrap(), 100_001);
}

/// Messages of batch `batch`: 1,000 records of one agent of its own.
fn batch_of(batch: u128) -> (Scope, Vec<Message>) {
    let s = Scope::agent(Uuid::from_u128(7), Uuid::from_u128(batch + 1));
    (s, (0..1_000).map(|i| message(&s, i)).collect())
}

/// Writes batches of 1,000 records, one transaction each, printing `committed N` after
/// each commit. Run on its own, it writes 3 batches to a file of its own and checks
/// them; as the child process of
/// `kill_9_of_a_writing_process_loses_no_committed_batch` (`MEMGPT_CRASH_DB` set), it
/// writes from batch `MEMGPT_CRASH_FROM` on until it is killed.
#[test]
fn batch_writer() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let (path, from, count) = match std::env::var("MEMGPT_CRASH_DB") {
        Ok(p) => (
            std::path::PathBuf::from(p),
            std::env::var("MEMGPT_CRASH_FROM")
                .unwrap()
                .parse::<u128>()
                .unwrap(),
            u128::MAX,
        ),
        Err(_) => (dir.path().join("batches.db"), 0, 3),
    };
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let mut out = std::io::stdout();
    for batch in from..from.saturating_add(count) {
        let (s, records) = batch_of(batch);
        let c = store
            .connector::<Message>(TableType::RecallMemory, s)
            .unwrap();
        assert_eq!(c.insert_many(records, false).unwrap(), 1_000);
        writeln!(out, "committed {batch}").unwrap();
        out.flush().unwrap();
    }
    for batch in from..from + 3 {
        let (s, _) = batch_of(batch);
        let c = store
            .connector::<Message>(TableType::RecallMemory, s)
            .unwrap();
        assert_eq!(c.size(&[]).unwrap(), 1_000);
    }
}

/// Row 14: a child process commits 1,000-row batches and prints each batch it committed;
/// it is killed with SIGKILL at a varying point, 100 times. After each kill the file passes
/// `PRAGMA integrity_check`, every printed batch is there in full, and the batch that was
/// being written when the kill came is there in full or not at all.
#[test]
fn kill_9_of_a_writing_process_loses_no_committed_batch() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut next: u128 = 0;
    for round in 0..100u128 {
        let mut child = std::process::Command::new(&exe)
            .args(["batch_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env("MEMGPT_CRASH_DB", &path)
            .env("MEMGPT_CRASH_FROM", next.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill after 1 to 3 committed batches, varying with the round: the kill lands
        // while the next batch is being written.
        let wanted = 1 + (round % 3) as usize;
        let mut committed = Vec::new();
        while committed.len() < wanted {
            let line = lines.next().expect("the child printed").unwrap();
            if let Some(n) = line.strip_prefix("committed ") {
                committed.push(n.parse::<u128>().unwrap());
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        #[derive(diesel::QueryableByName)]
        struct Check {
            #[diesel(sql_type = diesel::sql_types::Text)]
            integrity_check: String,
        }
        let check: Vec<Check> =
            diesel::RunQueryDsl::load(diesel::sql_query("PRAGMA integrity_check"), &mut conn)
                .unwrap();
        assert_eq!(check[0].integrity_check, "ok", "round {round}");
        let rows_of = |conn: &mut SqliteConnection, batch: u128| -> i64 {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let (s, _) = batch_of(batch);
            let agent = s.agent_id().unwrap().to_string();
            let n: Vec<N> = diesel::RunQueryDsl::load(
                diesel::sql_query(
                    "SELECT count(*) AS n FROM memgpt_recall_memory_agent WHERE agent_id = ?",
                )
                .bind::<diesel::sql_types::Text, _>(agent),
                conn,
            )
            .unwrap();
            n[0].n
        };
        for batch in &committed {
            assert_eq!(
                rows_of(&mut conn, *batch),
                1_000,
                "round {round}: batch {batch} was printed"
            );
        }
        let interrupted = committed.last().unwrap() + 1;
        let partial = rows_of(&mut conn, interrupted);
        assert!(
            partial == 0 || partial == 1_000,
            "round {round}: {partial} rows of a batch"
        );
        next = interrupted + 1;
        // Start the next round small: the check reads the whole file.
        conn.batch_execute(
            "DELETE FROM memgpt_recall_memory_agent; PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .unwrap();
    }
}

/// Row 8: a bad record (another tenant's) at position 500,000 of a bulk insert: the whole
/// call fails naming that record, and zero rows are visible.
#[test]
fn a_bad_record_at_position_500000_fails_the_whole_bulk_insert() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(SqliteConfig::new(dir.path().join("bulk.db"))).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let other = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let records = (0..600_000usize).map(|i| message(if i == 500_000 { &other } else { &s }, i));
    let e = c.insert_many(records, false).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, .. } if field == "records[500000].user_id"),
        "{e:?}"
    );
    assert_eq!(c.size(&[]).unwrap(), 0);
}

/// Row 13: a store that enforces 1,536 values refuses an embedding of 1,535 inside a batch
/// (expected and found named, nothing of the batch written) and a query vector of another
/// length; empty, NaN and infinite embeddings cannot be built at all.
#[test]
fn embeddings_of_the_wrong_length_are_refused_when_the_dimension_is_enforced() {
    use memgpt_core::Passage;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SqliteConfig::new(dir.path().join("dim.db"));
    cfg.embedding_dim = Some(1536);
    let store = SqliteStore::open(cfg).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let p = store
        .connector::<Passage>(TableType::ArchivalMemory, s)
        .unwrap();
    let with = |n: usize, text: &str| {
        Passage::builder(s.user_id(), text)
            .agent_id(s.agent_id().unwrap())
            .embedding(vec![0.5; n], "m")
            .build()
            .unwrap()
    };
    let e = p
        .insert_many(
            vec![with(1536, "a"), with(1535, "b"), with(1536, "c")],
            false,
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { field, reason }
            if field == "records[1].embedding" && reason == "expected 1536 values, found 1535"),
        "{e:?}"
    );
    assert_eq!(p.size(&[]).unwrap(), 0);
    let e = p.query(&[0.5; 1535], 3, &[]).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidInput { reason, .. } if reason == "expected 1536 values, found 1535"),
        "{e:?}"
    );
    p.insert(&with(1536, "fits")).unwrap();
    assert_eq!(p.query(&[0.5; 1536], 3, &[]).unwrap().len(), 1);
    for bad in [vec![], vec![f32::NAN; 1536], vec![f32::INFINITY; 1536]] {
        let built = Passage::builder(s.user_id(), "x")
            .agent_id(s.agent_id().unwrap())
            .embedding(bad, "m")
            .build();
        assert!(
            matches!(built, Err(Error::InvalidInput { .. })),
            "{built:?}"
        );
    }
}

/// A line of this process's `/proc/self/status`, in KiB.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Row 18 (SQLite): 1,000,000 messages inserted from a lazy iterator and read back in
/// keyset pages grow this process's peak RSS by less than 64 MB. The memory map is off:
/// pages of the database file read through it count in RSS (up to `mmap_size`, 256 MB by
/// default) although they are the kernel's page cache, not memory the library holds.
#[test]
fn a_million_messages_in_and_out_keep_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SqliteConfig::new(dir.path().join("million.db"));
    config.mmap_size = 0;
    let store = SqliteStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let before = status_kib("VmHWM:");
    let lazy = (0..1_000_000usize).map(|i| {
        Message::builder(s.user_id(), s.agent_id().unwrap(), Role::User)
            .text(format!("message number {i} of a million"))
            .build()
            .unwrap()
    });
    assert_eq!(c.insert_many(lazy, false).unwrap(), 1_000_000);
    eprintln!(
        "after insert: hwm +{} MiB anon {} MiB file {} MiB",
        (status_kib("VmHWM:") - before) / 1024,
        status_kib("RssAnon:") / 1024,
        status_kib("RssFile:") / 1024
    );
    let mut read = 0usize;
    for page in c.get_all_paginated(&[], 10_000).unwrap() {
        read += page.unwrap().len();
    }
    assert_eq!(read, 1_000_000);
    let grown_mib = (status_kib("VmHWM:").saturating_sub(before)) / 1024;
    eprintln!(
        "peak RSS grew by {grown_mib} MiB; anon {} MiB file {} MiB",
        status_kib("RssAnon:") / 1024,
        status_kib("RssFile:") / 1024
    );
    assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
}

/// Processes of `six_processes_writing_one_file_take_turns_and_all_succeed`.
const CONTENDERS: u128 = 6;
/// Rounds of each of them: `insert_many` of 500, `get_all`, `size`.
const CONTENDER_ROUNDS: u64 = 100;

/// The scope of contender `n`: an agent of its own, so that its rows can be counted.
fn contender_scope(n: u128) -> Scope {
    Scope::agent(Uuid::from_u128(9), Uuid::from_u128(1_000 + n))
}

#[derive(diesel::QueryableByName)]
struct Rowid {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// One number read on `conn`.
fn number<Q>(conn: &mut SqliteConnection, sql: Q) -> i64
where
    Q: for<'a> diesel::query_dsl::LoadQuery<'a, SqliteConnection, Rowid>,
{
    diesel::RunQueryDsl::load::<Rowid>(sql, conn).unwrap()[0].n
}

/// A child process: the arguments that run test `name` alone and print nothing before
/// its own first line (`--quiet`: libtest prints no `test name ... ` ahead of it).
fn child_args(name: &str) -> [&str; 5] {
    [
        name,
        "--exact",
        "--nocapture",
        "--quiet",
        "--test-threads=1",
    ]
}

/// Waits for the line `wanted` among the child's lines.
fn wait_for_line(lines: &mut impl Iterator<Item = std::io::Result<String>>, wanted: &str) {
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the child ended before printing {wanted:?}"))
            .unwrap();
        if line == wanted {
            return;
        }
    }
}

/// One of the processes of `six_processes_writing_one_file_take_turns_and_all_succeed`
/// (`MEMGPT_CONTEND_DB` set): opens the store, prints `ready`, waits for a line on stdin
/// (the barrier), then makes `MEMGPT_CONTEND_ROUNDS` rounds of `insert_many` (500
/// messages), `get_all` and `size`, printing each failed call as `error …` and at the end
/// `done worst_ms=… most_overtaken=…`: the longest `insert_many`, and the most writes of
/// other processes committed between the start of one of its `insert_many` calls and its
/// own commit (the rows between the largest rowid before the call and its first row,
/// 500 a write). Run on its own, it makes 3 rounds on a file of its own.
#[test]
fn contending_writer() {
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let (path, n, rounds, barrier) = match std::env::var("MEMGPT_CONTEND_DB") {
        Ok(p) => (
            std::path::PathBuf::from(p),
            std::env::var("MEMGPT_CONTEND_N").unwrap().parse().unwrap(),
            std::env::var("MEMGPT_CONTEND_ROUNDS")
                .unwrap()
                .parse()
                .unwrap(),
            true,
        ),
        Err(_) => (dir.path().join("contend.db"), 0, 3, false),
    };
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let s = contender_scope(n);
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    let mut rowids = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    rowids.batch_execute("PRAGMA busy_timeout = 5000;").unwrap();
    let mut out = std::io::stdout();
    if barrier {
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        let mut go = String::new();
        std::io::stdin().lock().read_line(&mut go).unwrap();
        assert_eq!(go.trim(), "go");
    }
    let mut written = 0u64;
    let mut worst = Duration::ZERO;
    let mut most_overtaken = 0;
    for round in 0..rounds {
        let records: Vec<Message> = (0..500).map(|i| message(&s, i)).collect();
        let before = number(
            &mut rowids,
            diesel::sql_query(
                "SELECT coalesce(max(rowid), 0) AS n FROM memgpt_recall_memory_agent",
            ),
        );
        let start = Instant::now();
        let inserted = c.insert_many(records, false);
        worst = worst.max(start.elapsed());
        match inserted {
            Ok(500) => {
                written += 500;
                let first = number(
                    &mut rowids,
                    diesel::sql_query(
                        // `+agent_id`: walk the rowids from `before` on, not the
                        // agent's index.
                        "SELECT min(rowid) AS n FROM memgpt_recall_memory_agent \
                         WHERE rowid > ? AND +agent_id = ?",
                    )
                    .bind::<diesel::sql_types::BigInt, _>(before)
                    .bind::<diesel::sql_types::Text, _>(s.agent_id().unwrap().to_string()),
                );
                most_overtaken = most_overtaken.max((first - before - 1) / 500);
            }
            other => writeln!(out, "error insert_many round {round}: {other:?}").unwrap(),
        }
        match c.get_all(&[], Some(10)) {
            Ok(v) if v.len() as u64 == written.min(10) => {}
            Ok(v) => writeln!(out, "error get_all round {round}: {} records", v.len()).unwrap(),
            Err(e) => writeln!(out, "error get_all round {round}: {e:?}").unwrap(),
        }
        match c.size(&[]) {
            Ok(size) if size == written => {}
            other => writeln!(
                out,
                "error size round {round}: {other:?}, {written} written"
            )
            .unwrap(),
        }
        out.flush().unwrap();
    }
    writeln!(
        out,
        "done worst_ms={} most_overtaken={most_overtaken}",
        worst.as_millis()
    )
    .unwrap();
    out.flush().unwrap();
    if !barrier {
        assert_eq!(c.size(&[]).unwrap(), 1_500);
        assert_eq!(most_overtaken, 0);
    }
}

/// Row 34: six processes (as in the report) each make 100 rounds of `insert_many` (500
/// messages), `get_all` and `size` on one file with the default 5 s busy timeout,
/// released together by a barrier (each prints `ready` once its store is open and waits
/// for a line on stdin). No call fails, every process's 50,000 rows are there, and no
/// writer starves: no `insert_many` saw more than 25 writes of other processes (5 each)
/// commit before its own. Measured: at most 9 with priority for writers that waited
/// 100 ms; 45 to 153 in every run with SQLite's busy handler alone, which also failed
/// calls with `Busy` in 3 runs of 8.
#[test]
fn six_processes_writing_one_file_take_turns_and_all_succeed() {
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("contended.db");
    drop(SqliteStore::open(SqliteConfig::new(&path)).unwrap());
    let exe = std::env::current_exe().unwrap();
    let rounds = std::env::var("MEMGPT_CONTEND_ROUNDS")
        .ok()
        .map_or(CONTENDER_ROUNDS, |r| r.parse().unwrap());
    let mut children: Vec<_> = (0..CONTENDERS)
        .map(|n| {
            std::process::Command::new(&exe)
                .args(child_args("contending_writer"))
                .env("MEMGPT_CONTEND_DB", &path)
                .env("MEMGPT_CONTEND_N", n.to_string())
                .env("MEMGPT_CONTEND_ROUNDS", rounds.to_string())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outputs: Vec<_> = children
        .iter_mut()
        .map(|c| std::io::BufReader::new(c.stdout.take().unwrap()).lines())
        .collect();
    for lines in &mut outputs {
        wait_for_line(lines, "ready");
    }
    let started = Instant::now();
    for child in &mut children {
        writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let reports: Vec<Vec<String>> = std::thread::scope(|sc| {
        let readers: Vec<_> = outputs
            .into_iter()
            .map(|lines| {
                sc.spawn(move || {
                    lines
                        .map(Result::unwrap)
                        .filter(|l| l.starts_with("error") || l.starts_with("done"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for child in &mut children {
        assert!(child.wait().unwrap().success());
    }
    let elapsed = started.elapsed();
    let errors: Vec<&String> = reports
        .iter()
        .flatten()
        .filter(|l| l.starts_with("error"))
        .collect();
    let done: Vec<&String> = reports
        .iter()
        .flatten()
        .filter(|l| l.starts_with("done"))
        .collect();
    eprintln!("{CONTENDERS} processes x {rounds} rounds in {elapsed:?}: {done:?}");
    assert_eq!(errors, Vec::<&String>::new());
    assert_eq!(done.len(), CONTENDERS as usize);
    let overtaken: Vec<i64> = done
        .iter()
        .map(|l| l.rsplit_once("most_overtaken=").unwrap().1.parse().unwrap())
        .collect();
    assert!(
        overtaken.iter().all(|&o| o <= 5 * (CONTENDERS as i64 - 1)),
        "{overtaken:?}"
    );
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    for n in 0..CONTENDERS {
        let c = store
            .connector::<Message>(TableType::RecallMemory, contender_scope(n))
            .unwrap();
        assert_eq!(c.size(&[]).unwrap(), rounds * 500, "process {n}");
    }
    let mut conn = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    assert_eq!(
        number(
            &mut conn,
            diesel::sql_query("SELECT count(*) AS n FROM memgpt_recall_memory_agent")
        ),
        (CONTENDERS as i64) * (rounds as i64) * 500
    );
}

/// The sidecar beside `path` on which writers that waited long take priority.
fn sidecar_of(path: &std::path::Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-memgpt-writer.lock");
    name.into()
}

/// The child of `a_writer_killed_while_it_has_priority_holds_nobody_back`
/// (`MEMGPT_PRIORITY_DB` set): opens the store, prints `ready`, waits for a line on stdin
/// (the parent then holds SQLite's lock), then writes with a busy timeout of 60 s: it
/// waits, and takes priority after 100 ms, until it is killed. Run on its own, it writes
/// once to a file of its own.
#[test]
fn priority_holder() {
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let child = std::env::var("MEMGPT_PRIORITY_DB").ok();
    let path = child
        .as_ref()
        .map_or_else(|| dir.path().join("priority.db"), std::path::PathBuf::from);
    let mut config = SqliteConfig::new(&path);
    config.busy_timeout = Duration::from_secs(60);
    let store = SqliteStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    if child.is_some() {
        let mut out = std::io::stdout();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
        let mut go = String::new();
        std::io::stdin().lock().read_line(&mut go).unwrap();
        assert_eq!(go.trim(), "go");
    }
    c.insert(&message(&s, 0)).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 1);
}

/// Row 35: a process waiting for the write lock takes the sidecar's priority lock, and is
/// killed (SIGKILL) while it holds it. The kernel releases the lock with the process: the
/// sidecar can be locked at once, and the next write of another process goes through
/// (with a busy timeout of 1 s, a priority lock left behind would hold it back into
/// `Busy`). A lock file's mere existence would not be released.
#[test]
fn a_writer_killed_while_it_has_priority_holds_nobody_back() {
    use std::io::{BufRead as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let mut config = SqliteConfig::new(&path);
    config.busy_timeout = Duration::from_secs(1);
    let store = SqliteStore::open(config).unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(child_args("priority_holder"))
        .env("MEMGPT_PRIORITY_DB", &path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    wait_for_line(&mut lines, "ready");
    // SQLite's lock, held as another tool would: the child's write waits for it.
    let mut other = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    other.batch_execute("BEGIN IMMEDIATE;").unwrap();
    writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    // Handshake on the lock itself: the sidecar refuses a shared lock once the child
    // holds it exclusively.
    let sidecar = sidecar_of(&path);
    let asked = Instant::now();
    loop {
        if let Ok(f) = std::fs::File::open(&sidecar) {
            match f.try_lock_shared() {
                Err(std::fs::TryLockError::WouldBlock) => break,
                Ok(()) => f.unlock().unwrap(),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "no priority taken"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let f = std::fs::File::open(&sidecar).unwrap();
    f.try_lock().unwrap();
    f.unlock().unwrap();
    other.batch_execute("ROLLBACK;").unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, 0)).unwrap();
    store
        .transaction(|tx| {
            tx.connector::<Message>(TableType::RecallMemory, s)?
                .insert(&message(&s, 1))
        })
        .unwrap();
    assert_eq!(c.size(&[]).unwrap(), 2);
}

/// Row 35: the priority lock held by someone else (here this test, as `flock` on the
/// sidecar would) holds the store's writes back: `Error::Busy` naming the sidecar after
/// the 1 s busy timeout, never a hang; once released, writes go through. Reads never
/// wait for it.
#[test]
fn a_priority_lock_held_elsewhere_gives_busy_after_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.db");
    let mut config = SqliteConfig::new(&path);
    config.busy_timeout = Duration::from_secs(1);
    let store = SqliteStore::open(config).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, 0)).unwrap();
    let held = std::fs::File::open(sidecar_of(&path)).unwrap();
    held.lock().unwrap();
    let start = Instant::now();
    let e = c.insert(&message(&s, 1)).unwrap_err();
    let waited = start.elapsed();
    assert!(
        matches!(&e, Error::Busy { message } if message.contains("memgpt-writer.lock")),
        "{e:?}"
    );
    assert!(
        waited >= Duration::from_millis(1_000) && waited <= Duration::from_millis(3_000),
        "{waited:?}"
    );
    let e = store.transaction(|_| Ok(())).unwrap_err();
    assert!(matches!(e, Error::Busy { .. }), "{e:?}");
    assert_eq!(c.size(&[]).unwrap(), 1);
    assert_eq!(c.get_all(&[], None).unwrap().len(), 1);
    held.unlock().unwrap();
    c.insert(&message(&s, 2)).unwrap();
    assert_eq!(c.size(&[]).unwrap(), 2);
}

/// Where the sidecar cannot be opened (here a folder stands at its path), writers poll
/// for SQLite's lock without it: writes, units of work and a write waiting for another
/// connection's lock all go through.
#[test]
fn writers_go_on_without_a_usable_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nosidecar.db");
    std::fs::create_dir(sidecar_of(&path)).unwrap();
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let s = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
    let c = store
        .connector::<Message>(TableType::RecallMemory, s)
        .unwrap();
    c.insert(&message(&s, 0)).unwrap();
    store
        .transaction(|tx| {
            tx.connector::<Message>(TableType::RecallMemory, s)?
                .insert(&message(&s, 1))
        })
        .unwrap();
    // Another connection holds SQLite's lock until this write has started waiting (its
    // iterator is pulled before the lock is asked for), then lets go.
    let mut other = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    other.batch_execute("BEGIN IMMEDIATE;").unwrap();
    let (pulled, wait_pulled) = mpsc::channel::<()>();
    std::thread::scope(|sc| {
        let writer = sc.spawn(|| {
            let pulled = pulled;
            let records = (2..4).map(move |i| {
                if i == 2 {
                    pulled.send(()).unwrap();
                }
                message(&s, i)
            });
            c.insert_many(records, false)
        });
        wait_pulled.recv().unwrap();
        other.batch_execute("ROLLBACK;").unwrap();
        assert_eq!(writer.join().unwrap().unwrap(), 2);
    });
    assert_eq!(c.size(&[]).unwrap(), 4);
    assert!(sidecar_of(&path).is_dir());
}
