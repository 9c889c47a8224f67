//! W4 (reads over a table of messages, beside the unindexed naive table) and W5 (vector
//! top-10 through the connector, and over all rows through PostgreSQL's HNSW index).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_core::{Embedding, Passage, Record, Scope, StorageConnector, TableType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::baseline::Baseline;
use crate::data::{messages, passages, tenants, vector_query, SEED};
use crate::loads::insert_by_agent;
use crate::naive::Naive;
use crate::naive_pg::NaivePg;
use crate::progress::Progress;
use crate::raw::Raw;
use crate::report::Report;
use crate::stats::p50_p99;
use crate::target::{Database, Env, Fresh};
use crate::{on_baseline, with_connector};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn timed(calls: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<(Duration, Duration)> {
    let mut v = Vec::with_capacity(calls);
    for k in 0..calls {
        let s = Instant::now();
        f(k * 7 + 3)?;
        v.push(s.elapsed());
    }
    Ok(p50_p99(v))
}

/// `calls` calls of `a` and of `b` side by side, call by call, the one that goes first
/// alternating: both see the machine (its caches, its other load) in the same state. The
/// p50/p99 of each.
fn side_by_side(
    calls: usize,
    mut a: impl FnMut(usize) -> Result<()>,
    mut b: impl FnMut(usize) -> Result<()>,
) -> Result<((Duration, Duration), (Duration, Duration))> {
    let (mut ta, mut tb) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    for k in 0..calls {
        let i = k * 7 + 3;
        for first in [k % 2 == 0, k % 2 == 1] {
            let s = Instant::now();
            if first {
                a(i)?;
                ta.push(s.elapsed());
            } else {
                b(i)?;
                tb.push(s.elapsed());
            }
        }
    }
    Ok((p50_p99(ta), p50_p99(tb)))
}

/// W4: 1,000 agents x 1,000 messages (`--quick`: 100 x 1,000); each call's p50/p99 through
/// the connector and on the naive table (no index beyond the primary key, OFFSET pages,
/// `LIKE`).
pub fn w4(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let b = backend.name();
    let agents = env.size(1_000, 100);
    let rows = agents * crate::w4::PER_AGENT;
    let fresh = env.fresh(backend, "w4")?;
    let w4 = crate::w4::load(&fresh, agents)?;
    let ts = &w4.tenants;
    let mut naive = load_naive(backend, &fresh, rows, ts)?;
    // What autovacuum (or the store's `optimize`) would have done before anyone reads: the
    // visibility map for index-only scans, statistics for the planner.
    match &fresh.store {
        crate::target::Store::Pg(_) => {
            // One statement per call: VACUUM cannot run in the implicit transaction of a
            // multi-statement query.
            let mut c = PgConnection::establish(&fresh.location)?;
            c.batch_execute("VACUUM ANALYZE memgpt_recall_memory_agent")?;
            c.batch_execute("VACUUM ANALYZE naive_recall_memory")?;
        }
        crate::target::Store::Sqlite(s) => s.optimize()?,
    }
    let fmt = |t: chrono::DateTime<chrono::Utc>| match backend {
        Database::Sqlite => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        Database::Postgres => t.to_rfc3339(),
    };
    let (hs, he) = (fmt(w4.hour.0), fmt(w4.hour.1));
    let mut raw = Raw::open(backend, &fresh.location)?;
    for case in crate::w4::CASES {
        // The library and raw call by call (the same agents, the machine in the same state),
        // then the naive way.
        let ((p50, p99), raw_times) = side_by_side(
            200,
            |i| crate::w4::library(&fresh.store, case, &w4.call(i)),
            |i| crate::w4::raw(&mut raw, case, &w4.call(i)),
        )?;
        report.add("W4", case, b, "optimized", rows as u64, "p50_ms", ms(p50));
        report.add("W4", case, b, "optimized", rows as u64, "p99_ms", ms(p99));
        let (p50, p99) = timed(20, |i| {
            let call = w4.call(i);
            let (u, a) = (call.user, call.agent);
            on_baseline!(&mut naive, |n| {
                match case {
                    "get_all_100" => ensure!(n.get_all(u, a, 100)? == 100),
                    "pages_100" => ensure!(n.paginate(u, a, 100)? == 1_000),
                    "size" => ensure!(n.size(u, a)? == 1_000),
                    "query_date_1h" => {
                        n.query_date(u, a, &hs, &he)?;
                    }
                    "query_text_word" => {
                        n.query_text(u, a, "lantern")?;
                    }
                    _ => ensure!(n.get(call.id)? == 1),
                }
            });
            Ok(())
        })?;
        report.add("W4", case, b, "naive", rows as u64, "p50_ms", ms(p50));
        report.add("W4", case, b, "naive", rows as u64, "p99_ms", ms(p99));
        // The same queries by hand on the driver a user would pick instead.
        let (p50, p99) = raw_times;
        report.add("W4", case, b, "raw", rows as u64, "p50_ms", ms(p50));
        report.add("W4", case, b, "raw", rows as u64, "p99_ms", ms(p99));
    }
    Ok(())
}

fn load_naive(
    backend: Database,
    fresh: &Fresh,
    rows: usize,
    ts: &[(Uuid, Uuid)],
) -> Result<Baseline> {
    let mut p = Progress::new(
        format!("W4 {}: loading the naive table", backend.name()),
        rows as u64,
    );
    let naive = match backend {
        Database::Sqlite => {
            let dir = tempfile::tempdir()?;
            let mut nv = Naive::open(&dir.path().join("naive.db"))?;
            nv.load_fast(messages(ts.to_vec(), rows))?;
            Baseline::Sqlite(nv, dir)
        }
        Database::Postgres => {
            let mut nv = NaivePg::open(&fresh.location)?;
            nv.load_from_library()?;
            Baseline::Pg(nv, None)
        }
    };
    p.add(rows as u64);
    p.finish();
    Ok(naive)
}

#[derive(diesel::QueryableByName)]
struct Hit {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

/// W5: vector top-10 by L2 on 50,000 clustered 1536-d passages (`--quick`: 5,000): within
/// one agent through the connector (exact), and on PostgreSQL over all rows through the
/// HNSW index (`global`); p50/p99 and recall@10 against exact search.
pub fn w5(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let b = backend.name();
    let n = env.size(50_000, 2_000);
    let ts = tenants(10, 10);
    let (all, embeddings) = passages(&ts, n, 1536);
    let fresh = env.fresh(backend, "w5")?;
    let mut p = Progress::new(format!("W5 {b}: loading {n} passages"), n as u64);
    for chunk in all.chunks(1_000) {
        insert_by_agent(&fresh, TableType::ArchivalMemory, chunk, false)?;
        p.add(chunk.len() as u64);
    }
    p.finish();
    if backend == Database::Postgres {
        PgConnection::establish(&fresh.location)?
            .batch_execute("ANALYZE memgpt_archival_memory_agent")?;
    }
    let optimized = W5Variant {
        backend: b,
        case: "all",
        variant: "optimized",
        seed: SEED ^ 9,
        rounds: 200,
        scoped: true,
    };
    w5_variant(report, &all, &embeddings, optimized, |q, u, a| {
        Ok(with_connector!(
            &fresh.store,
            Passage,
            TableType::ArchivalMemory,
            Scope::agent(u, a),
            |c| {
                let t = Instant::now();
                let got = c.query(q, 10, &[])?;
                (t.elapsed(), got.iter().map(Record::id).collect())
            }
        ))
    })?;
    if backend == Database::Postgres {
        padded_raw(&fresh.location, &all, &embeddings, report)?;
        global(&fresh.location, &all, &embeddings, ("all", 1536), report)?;
        drop(fresh);
        wide(env, report)?;
    }
    Ok(())
}

/// W5 `global` at 3,072 dimensions (OpenAI's text-embedding-3-large), past the 2,000 that
/// pgvector's HNSW indexes as `vector`: the same count of clustered passages, migrated with
/// `--embedding-dim 3072` (an HNSW index of the `halfvec` expression), as case `dim_3072`.
fn wide(env: &Env, report: &mut Report) -> Result<()> {
    let n = env.size(50_000, 2_000);
    let (all, embeddings) = passages(&tenants(10, 10), n, 3072);
    let fresh = env.fresh_dim(Database::Postgres, "w5_3072", 3072)?;
    let mut p = Progress::new(
        format!("W5 postgres: loading {n} passages of 3072"),
        n as u64,
    );
    for chunk in all.chunks(1_000) {
        insert_by_agent(&fresh, TableType::ArchivalMemory, chunk, false)?;
        p.add(chunk.len() as u64);
    }
    p.finish();
    PgConnection::establish(&fresh.location)?
        .batch_execute("ANALYZE memgpt_archival_memory_agent")?;
    global(
        &fresh.location,
        &all,
        &embeddings,
        ("dim_3072", 3072),
        report,
    )
}

/// W5 `raw` on PostgreSQL: the same exact top-10 within one agent, written by hand with the
/// `postgres` crate against MemGPT's own layout — the padded `vector(4096)` column, read from
/// TOAST for every row of the agent (the layout before migration 000006's
/// `embedding_compact`). The same queries as the optimized variant (same seed), rows decoded.
fn padded_raw(
    url: &str,
    all: &[Passage],
    embeddings: &[Vec<f32>],
    report: &mut Report,
) -> Result<()> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    let stmt = client.prepare(
        "SELECT id, user_id, text, doc_id, agent_id, data_source, embedding::real[], \
         embedding_dim, embedding_model, metadata_, created_at \
         FROM memgpt_archival_memory_agent \
         WHERE user_id = $1 AND agent_id = $2 AND embedding IS NOT NULL \
         ORDER BY embedding <-> $3 LIMIT 10",
    )?;
    let raw = W5Variant {
        backend: "postgres",
        case: "all",
        variant: "raw",
        seed: SEED ^ 9,
        rounds: 200,
        scoped: true,
    };
    w5_variant(report, all, embeddings, raw, |q, u, a| {
        let mut padded = q.to_vec();
        padded.resize(memgpt_core::MAX_EMBEDDING_DIM, 0.0);
        let v = pgvector::Vector::from(padded);
        let t = Instant::now();
        let mut got = Vec::new();
        for r in client.query(&stmt, &[&u, &a, &v])? {
            let mut e: Vec<f32> = r.try_get(6)?;
            let dim: Option<i64> = r.try_get(7)?;
            e.truncate(dim.and_then(|d| usize::try_from(d).ok()).unwrap_or(e.len()));
            let text: Option<String> = r.try_get(2)?;
            let meta: Option<serde_json::Value> = r.try_get(9)?;
            let created: Option<chrono::DateTime<chrono::Utc>> = r.try_get(10)?;
            std::hint::black_box((e, text, meta, created));
            got.push(r.try_get::<_, Uuid>(0)?);
        }
        Ok((t.elapsed(), got))
    })
}

/// One W5 variant: who reports it, and its queries.
struct W5Variant {
    backend: &'static str,
    /// `all` (1,536 dimensions) or `dim_3072`.
    case: &'static str,
    variant: &'static str,
    /// The seed of the queries: variants with the same seed answer the same queries.
    seed: u64,
    rounds: usize,
    /// Whether the exact answer is within the passage's agent (else over all rows).
    scoped: bool,
}

/// Runs `v.rounds` queries (a stored passage's embedding plus noise) through `search`
/// (given the query, the passage's user and agent; returning its time and the ids found),
/// scores them against the exact top-10 and reports p50/p99 and recall@10.
fn w5_variant(
    report: &mut Report,
    all: &[Passage],
    embeddings: &[Vec<f32>],
    v: W5Variant,
    mut search: impl FnMut(&[f32], Uuid, Uuid) -> Result<(Duration, Vec<Uuid>)>,
) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(v.seed);
    let (mut lat, mut hits, mut total) = (Vec::new(), 0usize, 0usize);
    for _ in 0..v.rounds {
        let k = rng.random_range(0..all.len());
        let q = vector_query(&mut rng, &embeddings[k]);
        let (u, a) = (all[k].user_id(), all[k].agent_id().unwrap_or_default());
        let (took, got) = search(&q, u, a)?;
        lat.push(took);
        let want = exact_top10(all, embeddings, &q, v.scoped.then_some((u, a)));
        hits += got.iter().filter(|id| want.contains(id)).count();
        total += want.len();
    }
    let (p50, p99) = p50_p99(lat);
    let recall = hits as f64 / total as f64;
    let size = all.len() as u64;
    for (metric, value) in [
        ("p50_ms", ms(p50)),
        ("p99_ms", ms(p99)),
        ("recall_at_10", recall),
    ] {
        report.add("W5", v.case, v.backend, v.variant, size, metric, value);
    }
    Ok(())
}

fn exact_top10(
    all: &[Passage],
    embeddings: &[Vec<f32>],
    q: &[f32],
    scope: Option<(Uuid, Uuid)>,
) -> HashSet<Uuid> {
    let mut exact: Vec<(f64, Uuid)> = all
        .iter()
        .zip(embeddings)
        .filter(|(p, _)| scope.is_none_or(|(u, a)| p.user_id() == u && p.agent_id() == Some(a)))
        .map(|(p, e)| (Embedding::l2_squared(e, q), p.id()))
        .collect();
    exact.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    exact.iter().take(10).map(|x| x.1).collect()
}

/// The HNSW index over all rows (no tenant filter, which the connector never issues): the
/// expression the index is built on (`vector` up to 2,000 dimensions, `halfvec` above),
/// `hnsw.ef_search = 100`, table scans off.
fn global(
    url: &str,
    all: &[Passage],
    embeddings: &[Vec<f32>],
    (case, dim): (&'static str, usize),
    report: &mut Report,
) -> Result<()> {
    let mut conn = PgConnection::establish(url)?;
    let kind = if dim > 2_000 { "halfvec" } else { "vector" };
    let (indexed, _) = memgpt_migrate::postgres::hnsw_expression(dim as u32);
    let sql = format!(
        "SELECT id FROM memgpt_archival_memory_agent ORDER BY \
         {indexed} <-> $1::{kind}({dim}) LIMIT 10"
    );
    let global = W5Variant {
        backend: "postgres",
        case,
        variant: "global",
        seed: SEED ^ 11,
        rounds: 100,
        scoped: false,
    };
    w5_variant(report, all, embeddings, global, |q, _, _| {
        let v = pgvector::Vector::from(q.to_vec());
        let t = Instant::now();
        let got: Vec<Hit> = conn.transaction(|c| {
            // The planner's cost model misses what a table scan costs here (every row's
            // padded embedding read from TOAST and cut): at 3,072 dimensions it prefers
            // the scan, 1.3 s a query on 50,000 passages. `global` measures the index.
            c.batch_execute("SET LOCAL hnsw.ef_search = 100; SET LOCAL enable_seqscan = off")?;
            diesel::sql_query(&sql)
                .bind::<pgvector::sql_types::Vector, _>(v)
                .load(c)
        })?;
        Ok((t.elapsed(), got.into_iter().map(|h| h.id).collect()))
    })
}
