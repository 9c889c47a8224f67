//! W5 on SQLite: exact vector top-10 by L2 with the distance function memgpt-sqlite
//! registers (Rust, through diesel) against sqlite-vec's `vec_distance_l2` (C, loaded as an
//! extension), on the same 50,000 clustered 1536-d passages, in the same run.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use diesel::sql_types::{Binary, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_benches::data::{passages, tenants, vector_query, SEED};
use memgpt_benches::stats::p50_p99;
use memgpt_core::{Passage, Record, Scope, StorageConnector, TableType};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::SqliteStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[allow(unsafe_code)]
fn load_sqlite_vec() {
    // SAFETY: sqlite3_vec_init has the signature of an SQLite extension entry point, which
    // is what sqlite3_auto_extension expects; registration happens before any connection
    // of this process opens.
    unsafe {
        libsqlite3_sys::sqlite3_auto_extension(Some(std::mem::transmute::<
            *const (),
            unsafe extern "C" fn(
                *mut libsqlite3_sys::sqlite3,
                *mut *mut std::os::raw::c_char,
                *const libsqlite3_sys::sqlite3_api_routines,
            ) -> std::os::raw::c_int,
        >(
            sqlite_vec::sqlite3_vec_init as *const ()
        )));
    }
}

#[derive(QueryableByName)]
struct Hit {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    text: String,
    #[diesel(sql_type = Binary)]
    embedding: Vec<u8>,
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn main() {
    load_sqlite_vec();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w5.db");
    let store = SqliteStore::open(SqliteConfig::new(&path)).unwrap();
    let tenants = tenants(10, 10);
    let (all, embeddings) = passages(&tenants, 50_000, 1536);
    let start = Instant::now();
    for (u, a) in &tenants {
        let c = store
            .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(*u, *a))
            .unwrap();
        let mine: Vec<Passage> = all
            .iter()
            .filter(|p| p.user_id() == *u && p.agent_id() == Some(*a))
            .cloned()
            .collect();
        c.insert_many(mine, true).unwrap();
    }
    let load = start.elapsed();
    println!(
        "W5 SQLite: loaded 50,000 passages (1536-d) in {load:.1?} ({:.0} rows/s)",
        50_000.0 / load.as_secs_f64()
    );
    let mut raw = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    let mut rng = StdRng::seed_from_u64(SEED ^ 7);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut same = 0;
    let rounds = 200;
    for _ in 0..rounds {
        let k = rng.random_range(0..all.len());
        let q = vector_query(&mut rng, &embeddings[k]);
        let (u, a) = (all[k].user_id(), all[k].agent_id().unwrap());
        let c = store
            .connector::<Passage>(TableType::ArchivalMemory, Scope::agent(u, a))
            .unwrap();
        let t = Instant::now();
        let got = c.query(&q, 10, &[]).unwrap();
        ours.push(t.elapsed());
        let t = Instant::now();
        let hits: Vec<Hit> = diesel::sql_query(
            "SELECT id, text, embedding FROM memgpt_archival_memory_agent \
             WHERE user_id = ? AND agent_id = ? AND embedding IS NOT NULL \
             ORDER BY vec_distance_l2(embedding, ?), id LIMIT 10",
        )
        .bind::<Text, _>(u.to_string())
        .bind::<Text, _>(a.to_string())
        .bind::<Binary, _>(f32_bytes(&q))
        .load(&mut raw)
        .unwrap();
        theirs.push(t.elapsed());
        assert!(hits
            .iter()
            .all(|h| !h.text.is_empty() && h.embedding.len() == 1536 * 4));
        let got_ids: Vec<String> = got.iter().map(|p| p.id().to_string()).collect();
        let hit_ids: Vec<String> = hits.into_iter().map(|h| h.id).collect();
        if got_ids == hit_ids {
            same += 1;
        }
    }
    let (o50, o99) = p50_p99(ours);
    let (t50, t99) = p50_p99(theirs);
    println!("W5 SQLite, one agent (500 passages), exact top-10, {rounds} queries:");
    println!("  registered Rust memgpt_l2 (connector.query): p50 {o50:.2?} p99 {o99:.2?}");
    println!("  sqlite-vec vec_distance_l2 (same SQL):        p50 {t50:.2?} p99 {t99:.2?}");
    println!("  identical top-10 in {same}/{rounds} queries (both exact: recall@10 = 1.0)");
}
