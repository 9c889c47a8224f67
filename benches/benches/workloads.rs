//! Criterion's view of W1 and W4 on the embedded SQLite default, running the suite's own
//! workload code (`memgpt_benches::{loads, w4, raw, naive, ceiling}`), so that the two
//! views measure the same thing: W1's load through the library beside the naive way (an
//! `INSERT` per record) and the ceiling (the `sqlite3` shell's `.import`), and each W4 call
//! through the library beside the same call by hand on rusqlite (`raw`).
//!
//! ```text
//! cargo bench -p memgpt-benches --bench workloads [-- FILTER]
//! ```
#![allow(missing_docs, clippy::expect_used)]

use std::time::{Duration, Instant};

use anyhow::Result;
use criterion::{Criterion, Throughput};
use memgpt_benches::data::{messages, tenants};
use memgpt_benches::loads::insert_by_agent;
use memgpt_benches::naive::{self, Naive};
use memgpt_benches::raw::Raw;
use memgpt_benches::target::{Database, Env};
use memgpt_benches::{ceiling, w4};
use memgpt_core::{Message, TableType};

/// W1's records: 10 users x 10 agents.
const W1_ROWS: usize = 10_000;
/// W4's agents (x 1,000 messages each).
const W4_AGENTS: usize = 100;

fn main() -> Result<()> {
    let mut c = Criterion::default().configure_from_args();
    let env = Env {
        pg_admin: None,
        quick: true,
        pgbouncer: None,
        replica: None,
    };
    w1(&mut c, &env)?;
    w4(&mut c, &env)?;
    c.final_summary();
    Ok(())
}

/// The time of `iters` runs of `one`, each returning the part of its time to count.
fn timed(iters: u64, mut one: impl FnMut() -> Result<Duration>) -> Duration {
    (0..iters).map(|_| one().expect("a W1 run")).sum()
}

/// W1: 10,000 messages over 100 agents into a fresh indexed table, each way.
fn w1(c: &mut Criterion, env: &Env) -> Result<()> {
    let msgs: Vec<Message> = messages(tenants(10, 10), W1_ROWS).collect();
    let csv_dir = tempfile::tempdir()?;
    let csv = csv_dir.path().join("rows.csv");
    naive::write_csv(&csv, &msgs)?;
    let mut g = c.benchmark_group(format!("W1_{W1_ROWS}_messages"));
    g.sample_size(10)
        .throughput(Throughput::Elements(W1_ROWS as u64));
    g.bench_function("library", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let fresh = env.fresh(Database::Sqlite, "w1")?;
                insert_by_agent(&fresh, TableType::RecallMemory, &msgs, false)
            })
        })
    });
    g.bench_function("naive", |b| {
        b.iter_custom(|iters| {
            timed(iters, || {
                let dir = tempfile::tempdir()?;
                let mut naive = Naive::open(&dir.path().join("naive.db"))?;
                let start = Instant::now();
                naive.insert_each(&msgs)?;
                Ok(start.elapsed())
            })
        })
    });
    if ceiling::available("sqlite3") {
        g.bench_function("ceiling_sqlite3_import", |b| {
            b.iter_custom(|iters| {
                timed(iters, || {
                    let fresh = env.fresh(Database::Sqlite, "w1")?;
                    let table = TableType::RecallMemory.table_name();
                    ceiling::sqlite_import(&fresh.location, table, &csv)
                })
            })
        });
    } else {
        ceiling::skipped("sqlite3");
    }
    g.finish();
    Ok(())
}

/// W4: each call of `w4::CASES` on 100 agents x 1,000 messages, agents in turn.
fn w4(c: &mut Criterion, env: &Env) -> Result<()> {
    let fresh = env.fresh(Database::Sqlite, "w4")?;
    let loaded = w4::load(&fresh, W4_AGENTS)?;
    fresh.settle(TableType::RecallMemory.table_name())?;
    let mut raw = Raw::open(Database::Sqlite, &fresh.location)?;
    let mut g = c.benchmark_group("W4");
    for case in w4::CASES {
        let mut i = 0;
        g.bench_function(format!("{case}/library"), |b| {
            b.iter(|| {
                i += 1;
                w4::library(&fresh.store, case, &loaded.call(i)).expect("a W4 call")
            })
        });
        g.bench_function(format!("{case}/raw"), |b| {
            b.iter(|| {
                i += 1;
                w4::raw(&mut raw, case, &loaded.call(i)).expect("a W4 call")
            })
        });
    }
    g.finish();
    Ok(())
}
