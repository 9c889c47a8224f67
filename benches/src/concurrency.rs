//! W6: 200 threads, each rounds of {insert 1 message; `get_all(agent, 20)`; `size(agent)`}
//! through one connector with the default pool, beside a new connection per call
//! (PostgreSQL) or MemGPT's settings (SQLite); on SQLite also 8 readers while one writer
//! loads, beside a single connection for everything.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use diesel::{Connection, PgConnection};
use memgpt_core::{Message, Role, Scope, StorageConnector, TableType};
use uuid::Uuid;

use crate::data::{messages, tenants};
use crate::naive::Naive;
use crate::naive_pg::{self, NaivePg};
use crate::report::Report;
use crate::stats::p50_p99;
use crate::target::{Database, Env};
use crate::with_connector;

/// Threads of W6 (and of the scale-out workload S1).
pub(crate) const THREADS: usize = 200;

/// Latencies of every call and the number that failed, over all threads.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) latencies: Mutex<Vec<Duration>>,
    errors: AtomicU64,
}

impl Outcome {
    /// Runs one call, keeping its latency in `mine` or counting its failure.
    pub(crate) fn call(&self, f: impl FnOnce() -> Result<()>, mine: &mut Vec<Duration>) {
        let t = Instant::now();
        match f() {
            Ok(()) => mine.push(t.elapsed()),
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn report(
        self,
        b: &'static str,
        variant: &'static str,
        rounds: usize,
        wall: Duration,
        report: &mut Report,
    ) {
        self.report_as(("W6", "mixed"), b, variant, rounds, wall, report);
    }

    /// Ops per second, p99 and errors of `THREADS * rounds` rounds as `workload`'s `case`.
    pub(crate) fn report_as(
        self,
        (workload, case): (&'static str, &'static str),
        b: &'static str,
        variant: &'static str,
        rounds: usize,
        wall: Duration,
        report: &mut Report,
    ) {
        let lat = self.latencies.into_inner().unwrap_or_default();
        let ops = lat.len() as f64 / wall.as_secs_f64();
        let (_, p99) = p50_p99(lat);
        let size = (THREADS * rounds) as u64;
        report.add(workload, case, b, variant, size, "ops_per_s", ops);
        report.add(
            workload,
            case,
            b,
            variant,
            size,
            "p99_ms",
            p99.as_secs_f64() * 1e3,
        );
        report.add(
            workload,
            case,
            b,
            variant,
            size,
            "errors",
            self.errors.into_inner() as f64,
        );
    }
}

fn one(u: Uuid, a: Uuid, t: usize, r: usize) -> Result<Message> {
    Ok(Message::builder(u, a, Role::User)
        .text(format!("thread {t} round {r}"))
        .build()?)
}

/// W6.
pub fn w6(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let b = backend.name();
    let rounds = env.size(50, 10);
    let (u, a) = tenants(1, 1)[0];
    eprintln!("W6 {b}: {THREADS} threads x {rounds} rounds");
    let fresh = env.fresh(backend, "w6")?;
    let outcome = Outcome::default();
    let start = Instant::now();
    with_connector!(
        &fresh.store,
        Message,
        TableType::RecallMemory,
        Scope::agent(u, a),
        |c| {
            std::thread::scope(|s| {
                for t in 0..THREADS {
                    let (c, outcome) = (&c, &outcome);
                    s.spawn(move || {
                        let mut mine = Vec::with_capacity(rounds * 3);
                        for r in 0..rounds {
                            outcome.call(|| Ok(c.insert(&one(u, a, t, r)?)?), &mut mine);
                            outcome.call(
                                || c.get_all(&[], Some(20)).map(|_| ()).map_err(Into::into),
                                &mut mine,
                            );
                            outcome.call(|| c.size(&[]).map(|_| ()).map_err(Into::into), &mut mine);
                        }
                        if let Ok(mut all) = outcome.latencies.lock() {
                            all.extend(mine);
                        }
                    });
                }
            })
        }
    );
    outcome.report(b, "optimized", rounds, start.elapsed(), report);
    drop(fresh);

    // The naive way: a new connection per call.
    let naive = env.fresh(backend, "naive")?;
    let location = naive.location.clone();
    let dir = tempfile::tempdir()?;
    let sqlite_path = dir.path().join("naive.db");
    match backend {
        Database::Postgres => drop(NaivePg::open(&location)?),
        Database::Sqlite => drop(Naive::open(&sqlite_path)?),
    }
    let outcome = Outcome::default();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (outcome, location, path) = (&outcome, &location, &sqlite_path);
            s.spawn(move || {
                let mut mine = Vec::with_capacity(rounds * 3);
                for r in 0..rounds {
                    match backend {
                        Database::Postgres => {
                            let conn = || PgConnection::establish(location);
                            outcome.call(
                                || naive_pg::insert_one(&mut conn()?, &one(u, a, t, r)?),
                                &mut mine,
                            );
                            outcome.call(
                                || naive_pg::get_all(&mut conn()?, u, a, 20).map(|_| ()),
                                &mut mine,
                            );
                            outcome
                                .call(|| naive_pg::size(&mut conn()?, u, a).map(|_| ()), &mut mine);
                        }
                        Database::Sqlite => {
                            outcome.call(
                                || {
                                    Naive::open(path)?
                                        .insert_each([one(u, a, t, r)?])
                                        .map(|_| ())
                                },
                                &mut mine,
                            );
                            outcome.call(
                                || Naive::open(path)?.get_all(u, a, 20).map(|_| ()),
                                &mut mine,
                            );
                            outcome.call(|| Naive::open(path)?.size(u, a).map(|_| ()), &mut mine);
                        }
                    }
                }
                if let Ok(mut all) = outcome.latencies.lock() {
                    all.extend(mine);
                }
            });
        }
    });
    outcome.report(b, "naive", rounds, start.elapsed(), report);
    if backend == Database::Sqlite {
        reads_during_load(env, report)?;
    }
    Ok(())
}

const READERS: usize = 8;

/// SQLite: 8 threads run `get_all(agent, 20)` while one writer loads messages into another
/// agent; reads per second during the load. Optimized: the store (readers on their own
/// connections, WAL). Naive: the same settings, index and 500-record transactions on one
/// connection for everything (reads wait for each chunk).
fn reads_during_load(env: &Env, report: &mut Report) -> Result<()> {
    let n = env.size(100_000, 5_000);
    let ts = tenants(1, 2);
    let ((u, writer_agent), (_, reader_agent)) = (ts[0], ts[1]);
    let load: Vec<Message> = messages(vec![(u, writer_agent)], n).collect();
    // Ids of the same generator, past the load's.
    let seed: Vec<Message> = messages(vec![(u, reader_agent)], n + 100).skip(n).collect();
    eprintln!("W6 reads_during_load sqlite: {READERS} readers while {n} messages load");

    let fresh = env.fresh(Database::Sqlite, "w6_reads")?;
    let (reads, wall) = with_connector!(
        &fresh.store,
        Message,
        TableType::RecallMemory,
        Scope::agent(u, reader_agent),
        |r| {
            r.insert_many(seed.clone(), false)?;
            with_connector!(
                &fresh.store,
                Message,
                TableType::RecallMemory,
                Scope::agent(u, writer_agent),
                |w| {
                    during(
                        || {
                            w.insert_many(load.clone(), false)
                                .map(|_| ())
                                .map_err(Into::into)
                        },
                        || r.get_all(&[], Some(20)).map(|_| ()).map_err(Into::into),
                    )?
                }
            )
        }
    );
    report.add(
        "W6",
        "reads_during_load",
        "sqlite",
        "optimized",
        n as u64,
        "ops_per_s",
        reads as f64 / wall.as_secs_f64(),
    );

    let dir = tempfile::tempdir()?;
    let mut nv = Naive::open_single(&dir.path().join("single.db"))?;
    nv.load_fast(seed)?;
    let single = Mutex::new(nv);
    let (reads, wall) = during(
        || {
            for chunk in load.chunks(500) {
                let mut c = single.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                c.insert_chunk(chunk.iter().cloned())?;
            }
            Ok(())
        },
        || {
            let mut c = single.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            c.get_all(u, reader_agent, 20).map(|_| ())
        },
    )?;
    report.add(
        "W6",
        "reads_during_load",
        "sqlite",
        "naive",
        n as u64,
        "ops_per_s",
        reads as f64 / wall.as_secs_f64(),
    );
    Ok(())
}

/// Runs `write` once while `READERS` threads run `read` until it returns; the reads done
/// and the write's duration.
fn during(
    write: impl FnOnce() -> Result<()> + Send,
    read: impl Fn() -> Result<()> + Sync,
) -> Result<(u64, Duration)> {
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let start = Instant::now();
    let result = std::thread::scope(|s| {
        for _ in 0..READERS {
            s.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    if read().is_ok() && !done.load(Ordering::Acquire) {
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        let r = write();
        done.store(true, Ordering::Release);
        r
    });
    result?;
    Ok((reads.into_inner(), start.elapsed()))
}
