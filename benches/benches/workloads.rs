//! Criterion's view of the workloads of docs/BENCHMARKS.md (W1, W4), on the embedded SQLite
//! default: each workload beside its naive baseline (and, for loads, the ceiling: the
//! `sqlite3` shell's `.import`), measured in the same run.
//!
//! Criterion measures each case; a closing report prints rows/s, p50/p99 latencies and the
//! ratios against the naive way from timed runs of the same cases.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use memgpt_benches::data::{self, messages, tenants};
use memgpt_benches::naive::{self, Naive};
use memgpt_benches::stats::p50_p99;
use memgpt_core::{Message, Record, Scope, StorageConnector, TableType};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::SqliteStore;
use uuid::Uuid;

fn store_at(dir: &Path) -> SqliteStore {
    SqliteStore::open(SqliteConfig::new(dir.join("memgpt.db"))).unwrap()
}

/// Inserts every message through per-tenant connectors (insert_many is scoped), grouped
/// per agent in chunks, as an agent's batch arrives in practice.
fn optimized_insert(store: &SqliteStore, msgs: &[Message]) {
    let mut by_agent: std::collections::BTreeMap<(Uuid, Uuid), Vec<Message>> = Default::default();
    for m in msgs {
        by_agent
            .entry((m.user_id(), m.agent_id().unwrap_or_default()))
            .or_default()
            .push(m.clone());
    }
    for ((u, a), batch) in by_agent {
        let c = store
            .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
            .unwrap();
        c.insert_many(batch, true).unwrap();
    }
}

/// The ceiling: the sqlite3 shell's `.import` into the same indexed table.
fn ceiling_import(db: &Path, csv: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(".mode csv")
        .arg(format!(
            ".import {} memgpt_recall_memory_agent",
            csv.display()
        ))
        .output()
        .expect("the sqlite3 shell (Debian package sqlite3) is needed for the ceiling");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

struct Row {
    name: String,
    figure: String,
}

static REPORT: std::sync::Mutex<Vec<Row>> = std::sync::Mutex::new(Vec::new());

fn report(name: impl Into<String>, figure: impl Into<String>) {
    REPORT.lock().unwrap().push(Row {
        name: name.into(),
        figure: figure.into(),
    });
}

fn rows_per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn w1(c: &mut Criterion, n: usize, with_naive: bool) {
    let msgs: Vec<Message> = messages(tenants(10, 10), n).collect();
    let mut g = c.benchmark_group(format!("W1_insert_{n}_messages"));
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    g.bench_function("optimized", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = store_at(dir.path());
                (dir, store)
            },
            |(dir, store)| {
                optimized_insert(&store, &msgs);
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    let csv_dir = tempfile::tempdir().unwrap();
    let csv = csv_dir.path().join("rows.csv");
    naive::write_csv(&csv, &msgs).unwrap();
    g.bench_function("ceiling_sqlite3_import", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                drop(store_at(dir.path()));
                total += ceiling_import(&dir.path().join("memgpt.db"), &csv);
            }
            total
        })
    });
    if with_naive {
        g.bench_function("naive", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    let mut nv = Naive::open(&dir.path().join("naive.db")).unwrap();
                    let start = Instant::now();
                    nv.insert_each(msgs.iter().cloned()).unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();

    // The closing report: one timed run of each, same data.
    let dir = tempfile::tempdir().unwrap();
    let store = store_at(dir.path());
    let start = Instant::now();
    optimized_insert(&store, &msgs);
    let opt = start.elapsed();
    assert_eq!(
        msgs.iter()
            .map(|m| (m.user_id(), m.agent_id().unwrap_or_default()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|(u, a)| store
                .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
                .unwrap()
                .size(&[])
                .unwrap())
            .sum::<u64>(),
        n as u64
    );
    drop(store);
    let cdir = tempfile::tempdir().unwrap();
    drop(store_at(cdir.path()));
    let ceil = ceiling_import(&cdir.path().join("memgpt.db"), &csv);
    let mut line = format!(
        "optimized {:>9.0} rows/s | ceiling {:>9.0} rows/s ({:.2}x of ceiling)",
        rows_per_sec(n, opt),
        rows_per_sec(n, ceil),
        ceil.as_secs_f64() / opt.as_secs_f64()
    );
    if with_naive {
        let ndir = tempfile::tempdir().unwrap();
        let mut nv = Naive::open(&ndir.path().join("naive.db")).unwrap();
        let start = Instant::now();
        nv.insert_each(msgs.iter().cloned()).unwrap();
        let naive = start.elapsed();
        line.push_str(&format!(
            " | naive {:>7.0} rows/s | optimized/naive {:.1}x",
            rows_per_sec(n, naive),
            naive.as_secs_f64() / opt.as_secs_f64()
        ));
    }
    report(format!("W1 insert_many {n} messages"), line);
}

struct W4 {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    naive: std::sync::Mutex<Naive>,
    tenants: Vec<(Uuid, Uuid)>,
    ids: Vec<Uuid>,
}

const W4_ROWS: usize = 1_000_000;

fn w4_data() -> &'static W4 {
    static DATA: OnceLock<W4> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tenants = tenants(10, 100);
        eprintln!("W4: loading {W4_ROWS} messages into the optimized and the naive table…");
        let store = store_at(dir.path());
        let start = Instant::now();
        let mut ids = Vec::new();
        // Agent i's messages are records i, i + 1000, i + 2000, … of the workload.
        let mut by_agent: Vec<Vec<Message>> = vec![Vec::new(); tenants.len()];
        for (n, m) in messages(tenants.clone(), W4_ROWS).enumerate() {
            by_agent[n % tenants.len()].push(m);
        }
        for ((u, a), mine) in tenants.iter().zip(by_agent) {
            let c = store
                .connector::<Message>(TableType::RecallMemory, Scope::agent(*u, *a))
                .unwrap();
            ids.push(mine[mine.len() / 2].id());
            c.insert_many(mine, true).unwrap();
        }
        eprintln!("W4: optimized table loaded in {:.1?}", start.elapsed());
        let mut naive = Naive::open(&dir.path().join("naive.db")).unwrap();
        naive.load_fast(messages(tenants.clone(), W4_ROWS)).unwrap();
        W4 {
            _dir: dir,
            store,
            naive: std::sync::Mutex::new(naive),
            tenants,
            ids,
        }
    })
}

fn w4(c: &mut Criterion) {
    let d = w4_data();
    let conn = |i: usize| {
        let (u, a) = d.tenants[i % d.tenants.len()];
        d.store
            .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
            .unwrap()
    };
    let hour_start = data::start() + chrono::Duration::seconds(400_000);
    let hour_end = hour_start + chrono::Duration::hours(1);
    let fmt = |t: chrono::DateTime<chrono::Utc>| {
        t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    };
    let (hs, he) = (fmt(hour_start), fmt(hour_end));
    type Op<'a> = Box<dyn Fn(usize) + 'a>;
    let cases: Vec<(&str, Op<'_>, Op<'_>)> = vec![
        (
            "get_all_100_newest",
            Box::new(|i| assert_eq!(conn(i).get_all(&[], Some(100)).unwrap().len(), 100)),
            Box::new(|i| {
                let (u, a) = d.tenants[i % d.tenants.len()];
                assert_eq!(d.naive.lock().unwrap().get_all(u, a, 100).unwrap(), 100)
            }),
        ),
        (
            "paginate_agent_pages_of_100",
            Box::new(|i| {
                let n: usize = conn(i)
                    .get_all_paginated(&[], 100)
                    .unwrap()
                    .map(|p| p.unwrap().len())
                    .sum();
                assert_eq!(n, 1000)
            }),
            Box::new(|i| {
                let (u, a) = d.tenants[i % d.tenants.len()];
                assert_eq!(d.naive.lock().unwrap().paginate(u, a, 100).unwrap(), 1000)
            }),
        ),
        (
            "size_agent",
            Box::new(|i| assert_eq!(conn(i).size(&[]).unwrap(), 1000)),
            Box::new(|i| {
                let (u, a) = d.tenants[i % d.tenants.len()];
                assert_eq!(d.naive.lock().unwrap().size(u, a).unwrap(), 1000)
            }),
        ),
        (
            "query_date_one_hour",
            Box::new(|i| {
                conn(i).query_date(hour_start, hour_end, None, 0).unwrap();
            }),
            Box::new(|i| {
                let (u, a) = d.tenants[i % d.tenants.len()];
                d.naive.lock().unwrap().query_date(u, a, &hs, &he).unwrap();
            }),
        ),
        (
            "query_text_one_word",
            Box::new(|i| {
                conn(i).query_text("lantern", None, 0).unwrap();
            }),
            Box::new(|i| {
                let (u, a) = d.tenants[i % d.tenants.len()];
                d.naive.lock().unwrap().query_text(u, a, "lantern").unwrap();
            }),
        ),
        (
            "get_by_id",
            Box::new(|i| assert!(conn(i).get(d.ids[i % d.ids.len()]).unwrap().is_some())),
            Box::new(|i| {
                assert_eq!(
                    d.naive.lock().unwrap().get(d.ids[i % d.ids.len()]).unwrap(),
                    1
                )
            }),
        ),
    ];
    for (name, opt, nv) in &cases {
        let mut g = c.benchmark_group(format!("W4_{name}"));
        g.sample_size(10).measurement_time(Duration::from_secs(3));
        let mut i = 0usize;
        g.bench_function("optimized", |b| {
            b.iter(|| {
                i += 1;
                opt(i)
            })
        });
        let mut j = 0usize;
        g.bench_function("naive", |b| {
            b.iter(|| {
                j += 1;
                nv(j)
            })
        });
        g.finish();
        let timed = |f: &Op<'_>, n: usize| {
            let v: Vec<Duration> = (0..n)
                .map(|k| {
                    let s = Instant::now();
                    f(k * 7 + 3);
                    s.elapsed()
                })
                .collect();
            p50_p99(v)
        };
        let (op50, op99) = timed(opt, 200);
        let (np50, np99) = timed(nv, 20);
        report(
            format!("W4 {name} (1M messages)"),
            format!(
                "optimized p50 {op50:>10.2?} p99 {op99:>10.2?} | naive p50 {np50:>10.2?} p99 {np99:>10.2?} | p50 ratio {:.1}x",
                np50.as_secs_f64() / op50.as_secs_f64()
            ),
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    // A criterion filter (`cargo xtask bench W4`) also selects which workloads run.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |w: &str| {
        filter
            .as_deref()
            .is_none_or(|f| f.starts_with(w) || w.starts_with(f))
    };
    if wanted("W1") {
        w1(&mut c, 5_000, true);
        // The naive way at 100,000 rows costs one fsync per row (minutes); opt in with
        // MEMGPT_BENCH_NAIVE_100K=1.
        w1(
            &mut c,
            100_000,
            std::env::var_os("MEMGPT_BENCH_NAIVE_100K").is_some(),
        );
    }
    if wanted("W4") {
        w4(&mut c);
    }
    c.final_summary();
    println!("\n== memgpt-store on SQLite: docs/BENCHMARKS.md figures (same run) ==");
    for r in REPORT.lock().unwrap().iter() {
        println!("{:<42} {}", r.name, r.figure);
    }
}
