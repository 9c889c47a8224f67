//! W1 (`insert_many` of messages), W2 (of passages with embeddings) and W3 (upsert of the
//! same messages again): rows/s of this library, of the naive way and of the database's
//! own bulk loader on the same rows into the same indexed table.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Message, Record, Scope, StorageConnector, TableType};
use memgpt_pg::{PgConfig, PgStore};
use uuid::Uuid;

use crate::baseline::Baseline;
use crate::ceiling;
use crate::data::{messages, passages, tenants};
use crate::naive;
use crate::raw::Raw;
use crate::report::Report;
use crate::target::{Database, Env, Fresh, Store};
use crate::{on_baseline, with_connector};

/// Records grouped by (user, agent), in workload order within each.
pub fn by_agent<R: Record + Clone>(records: &[R]) -> BTreeMap<(Uuid, Uuid), Vec<R>> {
    let mut m: BTreeMap<(Uuid, Uuid), Vec<R>> = BTreeMap::new();
    for r in records {
        m.entry((r.user_id(), r.agent_id().unwrap_or_default()))
            .or_default()
            .push(r.clone());
    }
    m
}

/// One `insert_many` per agent's batch, timed.
pub fn insert_by_agent<R>(
    fresh: &Fresh,
    table: TableType,
    records: &[R],
    exists_ok: bool,
) -> Result<Duration>
where
    R: Record + Clone + Send + Sync + 'static,
{
    let groups = by_agent(records);
    let start = Instant::now();
    for ((u, a), batch) in groups {
        let n = batch.len() as u64;
        let written = with_connector!(&fresh.store, R, table, Scope::agent(u, a), |c| c
            .insert_many(batch, exists_ok)?);
        ensure!(written == n, "insert_many wrote {written} of {n}");
    }
    Ok(start.elapsed())
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// W1: messages into the empty indexed table, (a) spread over 100 agents, one call per
/// agent's batch, (b) one agent's records in one call.
pub fn w1(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let b = backend.name();
    let mut shapes = vec![("agents_100", env.size(5_000, 2_000))];
    if !env.quick {
        shapes.push(("agents_100", 100_000));
    }
    shapes.push(("one_agent", env.size(100_000, 5_000)));
    for (case, n) in shapes {
        let ts = if case == "one_agent" {
            tenants(1, 1)
        } else {
            tenants(10, 10)
        };
        let msgs: Vec<Message> = messages(ts, n).collect();
        eprintln!("W1 {case} {b}: {n} messages");
        let fresh = env.fresh(backend, "w1")?;
        let opt = insert_by_agent(&fresh, TableType::RecallMemory, &msgs, true)?;
        report.add(
            "W1",
            case,
            b,
            "optimized",
            n as u64,
            "rows_per_s",
            rate(n, opt),
        );
        drop(fresh);
        // The naive way costs one fsync per row; at 100,000 rows on SQLite, minutes.
        let naive = naive_timed(env, backend, |nv| {
            on_baseline!(nv, |x| x.insert_each(&msgs))
        })?;
        report.add(
            "W1",
            case,
            b,
            "naive",
            n as u64,
            "rows_per_s",
            rate(n, naive),
        );
        // The best load by hand: rusqlite / the postgres crate into the same migrated table,
        // in the workload's calls (one transaction per agent's batch, as the library's).
        let fresh = env.fresh(backend, "raw")?;
        let location = fresh.location.clone();
        drop(fresh.store);
        let mut raw = Raw::open(backend, &location)?;
        let groups = by_agent(&msgs);
        let start = Instant::now();
        for batch in groups.values() {
            raw.load(batch)?;
        }
        report.add(
            "W1",
            case,
            b,
            "raw",
            n as u64,
            "rows_per_s",
            rate(n, start.elapsed()),
        );
        drop(raw);
        if let Some(ceil) = message_ceiling(env, backend, &msgs)? {
            report.add(
                "W1",
                case,
                b,
                "ceiling",
                n as u64,
                "rows_per_s",
                rate(n, ceil),
            );
        }
    }
    Ok(())
}

/// Times `run` on a naive store of `backend` (a fresh database each time).
fn naive_timed(
    env: &Env,
    backend: Database,
    run: impl FnOnce(&mut Baseline) -> Result<u64>,
) -> Result<Duration> {
    let mut nv = Baseline::fresh(env, backend)?;
    let start = Instant::now();
    run(&mut nv)?;
    Ok(start.elapsed())
}

/// The bulk loader of `backend`: the `sqlite3` shell or `psql`.
fn loader(backend: Database) -> &'static str {
    match backend {
        Database::Sqlite => "sqlite3",
        Database::Postgres => "psql",
    }
}

/// The bulk loader into a fresh, migrated, indexed recall table.
fn message_ceiling(env: &Env, backend: Database, msgs: &[Message]) -> Result<Option<Duration>> {
    let tool = loader(backend);
    if !ceiling::available(tool) {
        ceiling::skipped(tool);
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let csv = dir.path().join("messages.csv");
    naive::write_csv(&csv, msgs)?;
    let fresh = env.fresh(backend, "ceiling")?;
    let location = fresh.location.clone();
    drop(fresh.store);
    let took = match backend {
        Database::Sqlite => ceiling::sqlite_import(&location, "memgpt_recall_memory_agent", &csv)?,
        Database::Postgres => ceiling::psql_copy(
            &location,
            "memgpt_recall_memory_agent",
            ceiling::MESSAGE_COLUMNS,
            &csv,
        )?,
    };
    Ok(Some(took))
}

/// W2: passages with 1536-d embeddings into the indexed archival table (HNSW maintained on
/// PostgreSQL), one call per agent's batch.
pub fn w2(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let b = backend.name();
    let n = env.size(10_000, 1_000);
    let (all, _) = passages(&tenants(10, 10), n, 1536);
    eprintln!("W2 {b}: {n} passages");
    let fresh = env.fresh(backend, "w2")?;
    let opt = insert_by_agent(&fresh, TableType::ArchivalMemory, &all, true)?;
    report.add(
        "W2",
        "all",
        b,
        "optimized",
        n as u64,
        "rows_per_s",
        rate(n, opt),
    );
    drop(fresh);
    if backend == Database::Postgres {
        spread(env, &all, report)?;
    }
    let naive = naive_timed(env, backend, |nv| {
        on_baseline!(nv, |x| x.insert_passages_each(&all))
    })?;
    report.add(
        "W2",
        "all",
        b,
        "naive",
        n as u64,
        "rows_per_s",
        rate(n, naive),
    );
    let tool = loader(backend);
    if !ceiling::available(tool) {
        ceiling::skipped(tool);
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let fresh = env.fresh(backend, "ceiling")?;
    let location = fresh.location.clone();
    drop(fresh.store);
    let took = match backend {
        Database::Sqlite => {
            let sql = dir.path().join("passages.sql");
            ceiling::passages_sql(&sql, &all)?;
            ceiling::sqlite_read(&location, &sql)?
        }
        Database::Postgres => {
            let csv = dir.path().join("passages.csv");
            ceiling::passages_csv(&csv, &all)?;
            ceiling::psql_copy(
                &location,
                "memgpt_archival_memory_agent",
                ceiling::PASSAGE_COLUMNS,
                &csv,
            )?
        }
    };
    report.add(
        "W2",
        "all",
        b,
        "ceiling",
        n as u64,
        "rows_per_s",
        rate(n, took),
    );
    Ok(())
}

/// W2 on PostgreSQL as case `spread`: the same calls with `load_connections` 2 (each
/// call's passages over two pooled connections, two-phase commit), when the server allows
/// prepared transactions (`cargo xtask pg start`'s does), checked to have spread; the
/// client machine's cores as case `spread`'s metric `cores`.
fn spread(env: &Env, all: &[memgpt_core::Passage], report: &mut Report) -> Result<()> {
    let mut fresh = env.fresh(Database::Postgres, "w2_spread")?;
    let mut conn = PgConnection::establish(&fresh.location)?;
    let allowed: i32 = diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
        "current_setting('max_prepared_transactions')::int",
    ))
    .get_result(&mut conn)?;
    if allowed < 3 {
        eprintln!("W2 postgres spread: skipped (max_prepared_transactions = {allowed}, below 3)");
        return Ok(());
    }
    let mut config = PgConfig::new(DatabaseUrl::new(fresh.location.as_str()));
    config.load_connections = 2;
    fresh.store = Store::Pg(PgStore::open(config)?);
    let took = insert_by_agent(&fresh, TableType::ArchivalMemory, all, true)?;
    // Spread indeed: each call's rows written by its parts' transactions, not one.
    let calls = all
        .iter()
        .map(|p| p.agent_id())
        .collect::<std::collections::HashSet<_>>()
        .len() as i64;
    let writers: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(DISTINCT xmin::text) FROM memgpt_archival_memory_agent)",
    ))
    .get_result(&mut conn)?;
    ensure!(
        writers > calls,
        "W2 spread: {writers} transactions wrote {calls} calls' rows: not spread"
    );
    let n = all.len();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for (metric, value) in [("rows_per_s", rate(n, took)), ("cores", cores as f64)] {
        report.add(
            "W2",
            "spread",
            "postgres",
            "optimized",
            n as u64,
            metric,
            value,
        );
    }
    Ok(())
}

/// W3: `insert_many` again over the same messages with changed text (`exists_ok`): every
/// row must come back updated.
pub fn w3(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let b = backend.name();
    let n = env.size(5_000, 1_000);
    let msgs: Vec<Message> = messages(tenants(10, 10), n).collect();
    let changed: Vec<Message> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| m.to_builder().text(format!("changed text {i}")).build())
        .collect::<memgpt_core::Result<_>>()?;
    eprintln!("W3 {b}: {n} messages upserted");
    let fresh = env.fresh(backend, "w3")?;
    insert_by_agent(&fresh, TableType::RecallMemory, &msgs, false)?;
    let opt = insert_by_agent(&fresh, TableType::RecallMemory, &changed, true)?;
    let mut updated = 0usize;
    for (u, a) in by_agent(&changed).keys() {
        let all = with_connector!(
            &fresh.store,
            Message,
            TableType::RecallMemory,
            Scope::agent(*u, *a),
            |c| c.get_all(&[], None)?
        );
        updated += all
            .iter()
            .filter(|m| m.text().is_some_and(|t| t.starts_with("changed text ")))
            .count();
    }
    ensure!(updated == n, "W3: {updated} of {n} rows updated");
    report.add(
        "W3",
        "all",
        b,
        "optimized",
        n as u64,
        "rows_per_s",
        rate(n, opt),
    );
    drop(fresh);
    let mut nv = Baseline::fresh(env, backend)?;
    on_baseline!(&mut nv, |x| x.load_fast(&msgs))?;
    let start = Instant::now();
    on_baseline!(&mut nv, |x| x.upsert_each(&changed))?;
    let naive = start.elapsed();
    report.add(
        "W3",
        "all",
        b,
        "naive",
        n as u64,
        "rows_per_s",
        rate(n, naive),
    );
    Ok(())
}
