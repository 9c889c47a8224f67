//! The workloads of `../shared/WORKLOADS.md` on PostgreSQL (`cargo xtask bench --pg`, which
//! starts the throwaway PostgreSQL 18 + pgvector and sets `MEMGPT_BENCH_PG_URL`):
//!
//! * W1 — `insert_many` of messages into the indexed table, beside the naive way (one
//!   INSERT per record in autocommit into MemGPT's table with no secondary index) and the
//!   ceiling (`psql \copy` from CSV into the same indexed table);
//! * W5 — vector top-10 by L2 on 50,000 clustered 1536-d passages through the HNSW index:
//!   p50/p99 latency and recall@10 against exact search.
//!
//! Each case runs in the same process on the same server; figures are printed at the end.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Nullable, Text};
use diesel::{Connection, PgConnection, RunQueryDsl};
use memgpt_benches::data::{messages, passages, tenants, vector_query, SEED};
use memgpt_benches::naive;
use memgpt_benches::stats::p50_p99;
use memgpt_core::{
    DatabaseUrl, Embedding, Message, Passage, Record, Scope, StorageConnector, TableType,
};
use memgpt_pg::PgConfig;
use memgpt_pg::PgStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{db}")
}

fn fresh_database(admin: &str, name: &str) -> String {
    let mut conn = PgConnection::establish(admin).unwrap();
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    conn.batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    with_db(admin, name)
}

/// The store, after `migrate up` has built the HNSW indexes for `embedding_dim` (as
/// `cargo xtask migrate up --embedding-dim` does).
fn store(url: &str, embedding_dim: u32) -> PgStore {
    let options = memgpt_migrate::Options {
        embedding_dim: Some(embedding_dim),
        ..Default::default()
    };
    memgpt_migrate::postgres::run_url_with(
        &DatabaseUrl::new(url),
        memgpt_migrate::Command::Up,
        &options,
        &|_| {},
    )
    .unwrap();
    let mut config = PgConfig::new(DatabaseUrl::new(url));
    config.embedding_dim = embedding_dim;
    let store = PgStore::open(config).unwrap();
    assert!(store.missing_indexes().unwrap().is_empty());
    store
}

fn by_agent(msgs: &[Message]) -> BTreeMap<(Uuid, Uuid), Vec<Message>> {
    let mut m: BTreeMap<(Uuid, Uuid), Vec<Message>> = BTreeMap::new();
    for x in msgs {
        m.entry((x.user_id(), x.agent_id().unwrap_or_default()))
            .or_default()
            .push(x.clone());
    }
    m
}

fn optimized(store: &PgStore, msgs: &[Message]) -> Duration {
    let groups = by_agent(msgs);
    let start = Instant::now();
    for ((u, a), batch) in groups {
        store
            .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))
            .unwrap()
            .insert_many(batch, true)
            .unwrap();
    }
    start.elapsed()
}

const NAIVE_INSERT: &str = "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, \
    text, model, name, tool_calls, tool_call_id, created_at) \
    VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, NULL, $7::json, $8, $9::timestamptz)";

fn naive_insert(conn: &mut PgConnection, msgs: &[Message]) -> Duration {
    let start = Instant::now();
    for m in msgs {
        let mut q = diesel::sql_query(NAIVE_INSERT).into_boxed();
        for c in naive::columns(m) {
            q = q.bind::<Nullable<Text>, _>(c);
        }
        q.execute(conn).unwrap();
    }
    start.elapsed()
}

fn ceiling(url: &str, csv: &std::path::Path) -> Duration {
    let start = Instant::now();
    let out = Command::new("psql")
        .arg(url)
        .arg("-q")
        .arg("-c")
        .arg(format!(
            "\\copy memgpt_recall_memory_agent (id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model, created_at) FROM '{}' WITH (FORMAT csv)",
            csv.display()
        ))
        .output()
        .expect("psql is needed for the ceiling");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

fn w1(admin: &str, n: usize, report: &mut Vec<String>) {
    let msgs: Vec<Message> = messages(tenants(10, 10), n).collect();
    let opt_url = fresh_database(admin, "memgpt_bench_w1");
    let store = store(&opt_url, 1536);
    let mut truncate = PgConnection::establish(&opt_url).unwrap();
    let runs = 3;
    let mut opt = Vec::new();
    for _ in 0..runs {
        truncate
            .batch_execute("TRUNCATE memgpt_recall_memory_agent")
            .unwrap();
        opt.push(optimized(&store, &msgs));
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("w1.csv");
    naive::write_csv(&csv, &msgs).unwrap();
    let mut ceil = Vec::new();
    for _ in 0..runs {
        truncate
            .batch_execute("TRUNCATE memgpt_recall_memory_agent")
            .unwrap();
        ceil.push(ceiling(&opt_url, &csv));
    }
    let naive_url = fresh_database(admin, "memgpt_bench_w1_naive");
    let mut naive_conn = PgConnection::establish(&naive_url).unwrap();
    naive_conn
        .batch_execute(
            &naive::RECALL_DDL
                .replace("CHAR(36)", "UUID")
                .replace("BLOB", "BYTEA")
                .replace("DATETIME", "TIMESTAMPTZ"),
        )
        .unwrap();
    let naive_runs = if n > 10_000 { 1 } else { runs };
    let mut nv = Vec::new();
    for _ in 0..naive_runs {
        naive_conn
            .batch_execute("TRUNCATE memgpt_recall_memory_agent")
            .unwrap();
        nv.push(naive_insert(&mut naive_conn, &msgs));
    }
    let best = |v: &[Duration]| *v.iter().min().unwrap();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    report.push(format!(
        "W1 PG insert_many {n:>6} messages: optimized {:>8.0} rows/s | naive {:>7.0} rows/s | ceiling (psql \\copy) {:>8.0} rows/s | optimized/naive {:.1}x, {:.2}x of ceiling  (best of {runs}; naive best of {naive_runs})",
        rate(best(&opt)),
        rate(best(&nv)),
        rate(best(&ceil)),
        best(&nv).as_secs_f64() / best(&opt).as_secs_f64(),
        best(&ceil).as_secs_f64() / best(&opt).as_secs_f64(),
    ));
}

fn w5(admin: &str, report: &mut Vec<String>) {
    let url = fresh_database(admin, "memgpt_bench_w5");
    let store = store(&url, 1536);
    let tenants = tenants(10, 10);
    let (all, embeddings) = passages(&tenants, 50_000, 1536);
    let start = Instant::now();
    for (u, a) in &tenants {
        let mine: Vec<Passage> = all
            .iter()
            .filter(|p| p.user_id() == *u && p.agent_id() == Some(*a))
            .cloned()
            .collect();
        store
            .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(*u, *a))
            .unwrap()
            .insert_many(mine, true)
            .unwrap();
    }
    let load = start.elapsed();
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute("ANALYZE memgpt_archival_memory_agent")
        .unwrap();
    report.push(format!(
        "W5 PG load 50,000 passages (1536-d, HNSW maintained): {load:.1?} ({:.0} rows/s)",
        50_000.0 / load.as_secs_f64()
    ));
    let mut rng = StdRng::seed_from_u64(SEED ^ 9);
    let rounds = 200;
    let (mut lat, mut hits, mut total) = (Vec::new(), 0usize, 0usize);
    for _ in 0..rounds {
        let k = rng.random_range(0..all.len());
        let q = vector_query(&mut rng, &embeddings[k]);
        let (u, a) = (all[k].user_id(), all[k].agent_id().unwrap());
        let c = store
            .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(u, a))
            .unwrap();
        let t = Instant::now();
        let got = c.query(&q, 10, &[]).unwrap();
        lat.push(t.elapsed());
        // Exact top-10 of the same agent, computed here from the generated vectors.
        let mut exact: Vec<(f64, Uuid)> = all
            .iter()
            .zip(&embeddings)
            .filter(|(p, _)| p.user_id() == u && p.agent_id() == Some(a))
            .map(|(p, e)| (Embedding::l2_squared(e, &q), p.id()))
            .collect();
        exact.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let want: HashSet<Uuid> = exact.iter().take(10).map(|x| x.1).collect();
        hits += got.iter().filter(|p| want.contains(&p.id())).count();
        total += want.len();
    }
    let (p50, p99) = p50_p99(lat);
    report.push(format!(
        "W5 PG top-10 one agent (500 of 50,000 passages; the planner ranks them exactly through the (user_id, agent_id) index): p50 {:.2?} p99 {:.2?}, recall@10 {:.3} ({rounds} queries)",
        p50,
        p99,
        hits as f64 / total as f64
    ));
    w5_all_agents(&url, &all, &embeddings, report);
}

#[derive(diesel::QueryableByName)]
struct Hit {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

/// The HNSW index itself over all 50,000 passages (no tenant filter, which the connector API
/// never issues): the same expression the connectors query, in a transaction with the
/// connectors' settings.
fn w5_all_agents(url: &str, all: &[Passage], embeddings: &[Vec<f32>], report: &mut Vec<String>) {
    let mut conn = PgConnection::establish(url).unwrap();
    let mut rng = StdRng::seed_from_u64(SEED ^ 11);
    let rounds = 100;
    let (mut lat, mut hits, mut total) = (Vec::new(), 0usize, 0usize);
    let sql = "SELECT id FROM memgpt_archival_memory_agent ORDER BY \
               subvector(embedding, 1, 1536)::vector(1536) <-> $1 LIMIT 10";
    let mut plan = String::new();
    for round in 0..rounds {
        let k = rng.random_range(0..all.len());
        let q = vector_query(&mut rng, &embeddings[k]);
        let v = pgvector::Vector::from(q.clone());
        let t = Instant::now();
        let got: Vec<Hit> = conn
            .transaction(|c| {
                c.batch_execute("SET LOCAL hnsw.ef_search = 100")?;
                if round == 0 {
                    #[derive(diesel::QueryableByName)]
                    struct Line {
                        #[diesel(sql_type = Text)]
                        #[diesel(column_name = "QUERY PLAN")]
                        line: String,
                    }
                    let lines: Vec<Line> = diesel::sql_query(format!("EXPLAIN {sql}"))
                        .bind::<pgvector::sql_types::Vector, _>(v.clone())
                        .load(c)?;
                    plan = lines
                        .into_iter()
                        .map(|l| l.line)
                        .collect::<Vec<_>>()
                        .join(" | ");
                }
                diesel::sql_query(sql)
                    .bind::<pgvector::sql_types::Vector, _>(v)
                    .load(c)
            })
            .unwrap();
        lat.push(t.elapsed());
        let mut exact: Vec<(f64, Uuid)> = all
            .iter()
            .zip(embeddings)
            .map(|(p, e)| (Embedding::l2_squared(e, &q), p.id()))
            .collect();
        exact.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let want: HashSet<Uuid> = exact.iter().take(10).map(|x| x.1).collect();
        hits += got.iter().filter(|h| want.contains(&h.id)).count();
        total += want.len();
    }
    let (p50, p99) = p50_p99(lat);
    report.push(format!(
        "W5 PG top-10 over all 50,000 passages, HNSW (m 16, ef_construction 64, ef_search 100): p50 {:.2?} p99 {:.2?}, recall@10 {:.3} ({rounds} queries; plan: {})",
        p50,
        p99,
        hits as f64 / total as f64,
        if plan.contains("hnsw") { "HNSW index scan" } else { "NOT the HNSW index" }
    ));
}

fn main() {
    let Ok(admin) = std::env::var("MEMGPT_BENCH_PG_URL") else {
        println!("MEMGPT_BENCH_PG_URL is not set: run `cargo xtask bench --pg`");
        return;
    };
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |w: &str| {
        filter
            .as_deref()
            .is_none_or(|f| f.starts_with(w) || w.starts_with(f))
    };
    let mut report = Vec::new();
    if wanted("W1") {
        w1(&admin, 5_000, &mut report);
        w1(&admin, 100_000, &mut report);
    }
    if wanted("W5") {
        w5(&admin, &mut report);
    }
    println!("\n== memgpt-store on PostgreSQL: WORKLOADS.md figures (same run) ==");
    for r in report {
        println!("{r}");
    }
}
