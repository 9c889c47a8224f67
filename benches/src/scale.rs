//! S1 (PostgreSQL): W6's mixed rounds — {insert 1 message; `get_all(agent, 20)`;
//! `size(agent)`} — from 200 threads over 1,000 agents (each thread its own five), by three
//! routes to the same server: directly (the default pool, 20 + 30 connections), through
//! PgBouncer in transaction mode (20 server connections) with the server's default
//! settings (each call sets the store's in a transaction of its own), and through PgBouncer
//! with the store's settings as the database's defaults (each read one statement). Then
//! reads only — {`get_all(agent, 20)`; `size(agent)`} over the same 1,000 agents — from the
//! primary alone and spread over the primary and a streaming replica (`--replica-url`).

use std::time::Instant;

use anyhow::{Context, Result};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use memgpt_core::{DatabaseUrl, Message, Role, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgStore, Pooler};

use crate::concurrency::{Outcome, THREADS};
use crate::data::tenants;
use crate::report::Report;
use crate::target::{fresh_database, migrate_pg, pg_store, with_db, Database, Env};

const AGENTS: usize = 1_000;

/// S1; PostgreSQL only, and only with PgBouncer (`--pgbouncer-url`).
pub fn s1(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    if backend != Database::Postgres {
        eprintln!("S1: PostgreSQL only");
        return Ok(());
    }
    let Some(bouncer) = env.pgbouncer.as_deref() else {
        eprintln!("S1: needs PgBouncer (`cargo xtask bench --pg` starts one; or --pgbouncer-url)");
        return Ok(());
    };
    let admin = env.pg_admin.as_deref().context("no PostgreSQL server")?;
    let rounds = env.size(20, 4);
    // Each route on a fresh database of its own, migrated directly.
    let fresh = |name: &str, defaults: bool| -> Result<String> {
        let url = fresh_database(admin, name)?;
        migrate_pg(&url)?;
        if defaults {
            PgConnection::establish(&url)?.batch_execute(&format!(
                "ALTER DATABASE {name} SET jit = off; \
                 ALTER DATABASE {name} SET statement_timeout = 60000; \
                 ALTER DATABASE {name} SET idle_in_transaction_session_timeout = 60000"
            ))?;
        }
        Ok(url)
    };
    let through = |name: &str| -> Result<PgStore> {
        let mut config = PgConfig::new(DatabaseUrl::new(with_db(bouncer, name)));
        config.embedding_dim = 1536;
        config.pooler = Pooler::Transaction;
        Ok(PgStore::open(config)?)
    };

    eprintln!("S1 direct: {THREADS} threads x {rounds} rounds over {AGENTS} agents");
    let url = fresh("memgpt_bench_s1_direct", false)?;
    run(&pg_store(&url)?, rounds, "direct", report)?;

    eprintln!("S1 pgbouncer, settings per call");
    fresh("memgpt_bench_s1_bouncer", false)?;
    let store = through("memgpt_bench_s1_bouncer")?;
    anyhow::ensure!(store.settings_per_call(), "expected settings per call");
    run(&store, rounds, "pgbouncer_settings_per_call", report)?;
    drop(store);

    eprintln!("S1 pgbouncer, the settings as the database's defaults");
    fresh("memgpt_bench_s1_defaults", true)?;
    let store = through("memgpt_bench_s1_defaults")?;
    anyhow::ensure!(
        !store.settings_per_call(),
        "expected one statement per read"
    );
    run(&store, rounds, "pgbouncer_database_defaults", report)?;
    drop(store);

    let Some(replica) = env.replica.as_deref() else {
        eprintln!(
            "S1 reads: needs a replica (`cargo xtask bench --pg` starts one; or --replica-url)"
        );
        return Ok(());
    };
    // The direct route's database, loaded above: reads only.
    eprintln!("S1 reads: the primary alone, then the primary and a replica");
    reads(&pg_store(&url)?, rounds, "reads_primary", report)?;
    let mut config = PgConfig::new(DatabaseUrl::new(&url));
    config.embedding_dim = 1536;
    config.replica_urls = vec![DatabaseUrl::new(with_db(replica, "memgpt_bench_s1_direct"))];
    let store = PgStore::open(config)?;
    reads(&store, rounds, "reads_primary_and_replica", report)?;
    let m = store.metrics();
    eprintln!(
        "  replica reads {}, primary fallbacks {}",
        m.replica_reads, m.replica_fallbacks
    );
    Ok(())
}

/// Reads only: each round {`get_all(agent, 20)`; `size(agent)`} on every agent of a thread.
fn reads(store: &PgStore, rounds: usize, case: &'static str, report: &mut Report) -> Result<()> {
    rounds_of(store, rounds, false, case, report)
}

/// W6's mixed rounds: {insert one message; `get_all(agent, 20)`; `size(agent)`}.
fn run(store: &PgStore, rounds: usize, case: &'static str, report: &mut Report) -> Result<()> {
    rounds_of(store, rounds, true, case, report)
}

/// `rounds` rounds over every agent of each of the 200 threads (five each), with or without
/// the insert, reported as S1's `case`.
fn rounds_of(
    store: &PgStore,
    rounds: usize,
    write: bool,
    case: &'static str,
    report: &mut Report,
) -> Result<()> {
    let agents = tenants(10, AGENTS / 10);
    let outcome = Outcome::default();
    let start = Instant::now();
    std::thread::scope(|s| {
        for (t, mine) in agents.chunks(AGENTS / THREADS).enumerate() {
            let outcome = &outcome;
            s.spawn(move || {
                let mut lat = Vec::with_capacity(rounds * mine.len() * 3);
                let connectors: Vec<_> = mine
                    .iter()
                    .filter_map(|&(u, a)| {
                        store
                            .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
                            .ok()
                            .map(|c| (u, a, c))
                    })
                    .collect();
                for r in 0..rounds {
                    for (u, a, c) in &connectors {
                        if write {
                            outcome.call(
                                || {
                                    let m = Message::builder(*u, *a, Role::User)
                                        .text(format!("thread {t} round {r}"))
                                        .build()?;
                                    Ok(c.insert(&m)?)
                                },
                                &mut lat,
                            );
                        }
                        outcome.call(|| Ok(c.get_all(&[], Some(20)).map(|_| ())?), &mut lat);
                        outcome.call(|| Ok(c.size(&[]).map(|_| ())?), &mut lat);
                    }
                }
                if let Ok(mut all) = outcome.latencies.lock() {
                    all.extend(lat);
                }
            });
        }
    });
    outcome.report_as(
        ("S1", case),
        "postgres",
        "optimized",
        rounds * AGENTS / THREADS,
        start.elapsed(),
        report,
    );
    Ok(())
}
