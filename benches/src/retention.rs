//! W6 under retention: W6's mixed rounds — 200 threads, each {insert 1 message;
//! `get_all(agent, 20)`; `size(agent)`}, each round on the next of the thread's own agents
//! (as S1) — against W4's table of 1,000,000
//! messages (1,000 agents x 1,000; `--quick`: 100,000), first alone (W6's 50 rounds a
//! thread), then while one thread prunes the older half of every agent's messages
//! (`prune(OlderThan(the middle instant), 1,000)` agent by agent: 500,000 rows) and the
//! rounds go on until the prune ends. Reported as W6R cases `mixed_1m` and
//! `mixed_1m_pruning` (ops/s, p99, errors; the size is the rounds whose three calls all
//! succeeded) and `prune` (rows/s, rows removed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Result};
use chrono::{DateTime, Utc};
use memgpt_core::retention::Retention;
use memgpt_core::{Message, Role, Scope, StorageConnector, TableType};
use uuid::Uuid;

use crate::concurrency::{Outcome, THREADS};
use crate::data::start;
use crate::report::Report;
use crate::target::{Database, Env, Store};
use crate::w4::{self, PER_AGENT};
use crate::with_connector;

/// Rows a prune batch deletes at most.
const BATCH: usize = 1_000;

/// W6 beside pruning, on `backend`.
pub fn w6_prune(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let b = backend.name();
    let agents = env.size(1_000, 100);
    let rows = agents * PER_AGENT;
    let fresh = env.fresh(backend, "w6_prune")?;
    let loaded = w4::load(&fresh, agents)?;
    fresh.settle("memgpt_recall_memory_agent")?;
    // Message n was created n seconds after the start: the first half is older than this.
    let cutoff = start() + chrono::Duration::seconds((rows / 2) as i64);
    let rounds = env.size(50, 10);

    eprintln!("W6 {b} on {rows} messages: {THREADS} threads x {rounds} rounds");
    let done = AtomicBool::new(false);
    let (outcome, wall) = mixed(&fresh.store, &loaded.tenants, Some(rounds), &done)?;
    outcome.report_as(("W6R", "mixed_1m"), b, "optimized", rounds, wall, report);

    eprintln!("W6 {b} while pruning {} of {rows} messages", rows / 2);
    let (load, pruned) = std::thread::scope(|s| {
        let pruner = s.spawn(|| {
            // Whatever happens, a panic too, the load stops when the pruner does.
            let _stop = Stop(&done);
            let t = Instant::now();
            prune_all(&fresh.store, &loaded.tenants, cutoff).map(|n| (n, t.elapsed()))
        });
        let load = mixed(&fresh.store, &loaded.tenants, None, &done);
        let pruned = pruner.join().map_err(|_| anyhow!("the pruner panicked"));
        (load, pruned)
    });
    let ((outcome, wall), (removed, took)) = (load?, pruned??);
    ensure!(
        removed == (rows / 2) as u64,
        "pruned {removed} of {} rows",
        rows / 2
    );
    let calls = outcome.latencies.lock().map_or(0, |l| l.len());
    let done_rounds = calls / (3 * THREADS);
    let case = ("W6R", "mixed_1m_pruning");
    outcome.report_as(case, b, "optimized", done_rounds, wall, report);
    let rate = removed as f64 / took.as_secs_f64();
    report.add(
        "W6R",
        "prune",
        b,
        "optimized",
        rows as u64,
        "rows_per_s",
        rate,
    );
    report.add(
        "W6R",
        "prune",
        b,
        "optimized",
        rows as u64,
        "rows",
        removed as f64,
    );
    Ok(())
}

/// Sets its flag when dropped.
struct Stop<'a>(&'a AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Prunes every agent's messages older than `cutoff`, agent by agent, in batches of
/// [`BATCH`]; returns the rows removed.
fn prune_all(store: &Store, tenants: &[(Uuid, Uuid)], cutoff: DateTime<Utc>) -> Result<u64> {
    let rule = Retention::OlderThan(cutoff);
    let mut removed = 0;
    for &(u, a) in tenants {
        removed += with_connector!(
            store,
            Message,
            TableType::RecallMemory,
            Scope::agent(u, a),
            |c| c.prune(&rule, BATCH)?.deleted
        );
    }
    Ok(removed)
}

/// W6's rounds from [`THREADS`] threads, each round on the next of the thread's own agents
/// (thread `t` takes agents `t`, `t + 200`, …, as S1 does: no agent's history grows
/// without bound however long the load runs): `rounds` rounds each, or (with `None`)
/// until `done`. Returns the outcome and the wall time.
fn mixed(
    store: &Store,
    agents: &[(Uuid, Uuid)],
    rounds: Option<usize>,
    done: &AtomicBool,
) -> Result<(Outcome, Duration)> {
    let outcome = Outcome::default();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let outcome = &outcome;
            let mine: Vec<(Uuid, Uuid)> = agents
                .iter()
                .skip(t % agents.len())
                .step_by(THREADS)
                .copied()
                .collect();
            s.spawn(move || {
                let mut lat = Vec::new();
                let mut r = 0;
                while rounds.map_or(!done.load(Ordering::Acquire), |n| r < n) {
                    let (u, a) = mine[r % mine.len()];
                    let round = |lat: &mut Vec<Duration>| -> Result<()> {
                        with_connector!(
                            store,
                            Message,
                            TableType::RecallMemory,
                            Scope::agent(u, a),
                            |c| {
                                let m = Message::builder(u, a, Role::User)
                                    .text(format!("thread {t} round {r}"))
                                    .build();
                                outcome.call(|| Ok(c.insert(&m?)?), lat);
                                outcome.call(|| Ok(c.get_all(&[], Some(20)).map(|_| ())?), lat);
                                outcome.call(|| Ok(c.size(&[]).map(|_| ())?), lat);
                            }
                        );
                        Ok(())
                    };
                    if round(&mut lat).is_err() {
                        outcome.call(|| anyhow::bail!("no connector"), &mut lat);
                    }
                    r += 1;
                }
                if let Ok(mut all) = outcome.latencies.lock() {
                    all.extend(lat);
                }
            });
        }
    });
    Ok((outcome, start.elapsed()))
}
