//! W8: retrieval on real text with real embeddings — the labelled set of
//! `benches/fixtures/w8` (the Rust standard library's documentation and The Rust
//! Programming Language, 256-dimension WordLlama embeddings; provenance in its
//! PROVENANCE.md). Every passage goes into one agent's archival memory; each query (an
//! item's one-line summary) runs as vector search (`query`), text search (the text side of
//! `hybrid` alone: weights 1 and 0) and `hybrid` (default options), top 10. Reported per
//! variant: recall@10 (the share of the item's passages in the top 10, of at most 10),
//! MRR@10 (1 / the rank of the first of them, 0 when none is in the top 10), p50 and p99.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use memgpt_core::hybrid::HybridOptions;
use memgpt_core::{Passage, Record, Scope, StorageConnector, TableType};
use uuid::Uuid;

use crate::report::Report;
use crate::stats::p50_p99;
use crate::target::{Database, Env};
use crate::with_connector;

/// The embedding width of the fixture.
pub const DIM: usize = 256;

/// One query of the set: its text, its embedding and the indexes of its relevant passages.
pub struct Query {
    /// The item's one-line summary.
    pub text: String,
    /// Its embedding.
    pub embedding: Vec<f32>,
    /// The passages that answer it (indexes into [`Set::passages`]).
    pub relevant: Vec<usize>,
}

/// The labelled set.
pub struct Set {
    /// The passages' texts and embeddings, in the fixture's order.
    pub passages: Vec<(String, Vec<f32>)>,
    /// The queries.
    pub queries: Vec<Query>,
}

#[derive(serde::Deserialize)]
struct Line {
    text: String,
    #[serde(default)]
    relevant: Vec<usize>,
}

/// The fixture's directory.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/w8")
}

/// Reads the set from `dir`.
pub fn load(dir: &Path) -> Result<Set> {
    let read = |name: &str| -> Result<(Vec<Line>, Vec<Vec<f32>>)> {
        let lines = std::fs::read_to_string(dir.join(format!("{name}.jsonl")))
            .with_context(|| format!("reading {name}.jsonl"))?;
        let lines: Vec<Line> = lines
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        let bytes = std::fs::read(dir.join(format!("{name}.f16")))?;
        ensure!(
            bytes.len() == lines.len() * DIM * 2,
            "{name}.f16: wrong size"
        );
        let floats: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        Ok((lines, floats.chunks(DIM).map(<[f32]>::to_vec).collect()))
    };
    let (passages, pe) = read("passages")?;
    let (queries, qe) = read("queries")?;
    Ok(Set {
        passages: passages.into_iter().map(|l| l.text).zip(pe).collect(),
        queries: queries
            .into_iter()
            .zip(qe)
            .map(|(l, embedding)| Query {
                text: l.text,
                embedding,
                relevant: l.relevant,
            })
            .collect(),
    })
}

/// An IEEE half float, widened exactly.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (exp, frac) = (i32::from((h >> 10) & 0x1f), f32::from(h & 0x3ff));
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        _ => (1.0 + frac / 1024.0) * 2f32.powi(exp - 15),
    }
}

/// The three ways W8 searches.
const VARIANTS: [&str; 3] = ["vector", "text", "hybrid"];

/// W8 on `backend`.
pub fn w8(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let set = load(&fixture_dir())?;
    let (user, agent) = (Uuid::from_u128(0x77), Uuid::from_u128(0x78));
    let scope = Scope::agent(user, agent);
    let ids: Vec<Uuid> = (0..set.passages.len())
        .map(|i| Uuid::from_u128(0x8000_0000 + i as u128))
        .collect();
    let records = set
        .passages
        .iter()
        .zip(&ids)
        .map(|((text, e), id)| {
            Passage::builder(user, text.as_str())
                .id(*id)
                .agent_id(agent)
                .data_source("rust-docs")
                .embedding(e.clone(), "wordllama-l2-supercat-256")
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let fresh = env.fresh_dim(backend, "w8", DIM as u32)?;
    let text_only = HybridOptions::new().weights(1.0, 0.0);
    let queries = if env.quick {
        &set.queries[..200]
    } else {
        &set.queries[..]
    };
    let mut found: [Vec<(Duration, Vec<Uuid>)>; 3] = Default::default();
    with_connector!(
        &fresh.store,
        Passage,
        TableType::ArchivalMemory,
        scope,
        |c| {
            c.insert_many(records, false)?;
            fresh.settle("memgpt_archival_memory_agent")?;
            for q in queries {
                let timed = |r: memgpt_core::Result<Vec<Passage>>, t: Instant| {
                    r.map(|hits| (t.elapsed(), hits.iter().map(Record::id).collect()))
                };
                let t = Instant::now();
                found[0].push(timed(c.query(&q.embedding, 10, &[]), t)?);
                let t = Instant::now();
                let r = c.hybrid_with(&q.text, &[], 10, &[], &text_only);
                found[1].push(timed(r, t)?);
                let t = Instant::now();
                found[2].push(timed(c.hybrid(&q.text, &q.embedding, 10, &[]), t)?);
            }
        }
    );
    for (variant, runs) in VARIANTS.into_iter().zip(found) {
        let (mut recall, mut mrr, mut lat) = (0.0, 0.0, Vec::new());
        for (q, (took, got)) in queries.iter().zip(runs) {
            let relevant: Vec<Uuid> = q.relevant.iter().map(|&i| ids[i]).collect();
            let hits = got.iter().filter(|id| relevant.contains(id)).count();
            recall += hits as f64 / relevant.len().clamp(1, 10) as f64;
            if let Some(rank) = got.iter().position(|id| relevant.contains(id)) {
                mrr += 1.0 / (rank + 1) as f64;
            }
            lat.push(took);
        }
        let n = queries.len() as f64;
        let (p50, p99) = p50_p99(lat);
        let size = set.passages.len() as u64;
        for (metric, value) in [
            ("recall_at_10", recall / n),
            ("mrr_at_10", mrr / n),
            ("p50_ms", p50.as_secs_f64() * 1e3),
            ("p99_ms", p99.as_secs_f64() * 1e3),
        ] {
            report.add(
                "W8",
                "rust_docs",
                backend.name(),
                variant,
                size,
                metric,
                value,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_widen_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65_504.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
    }

    #[test]
    fn the_fixture_reads_whole() -> Result<()> {
        let set = load(&fixture_dir())?;
        assert_eq!((set.passages.len(), set.queries.len()), (6_000, 1_000));
        for q in &set.queries {
            assert!(!q.relevant.is_empty());
            assert!(q.relevant.iter().all(|&i| i < set.passages.len()));
            let norm: f32 = q.embedding.iter().map(|x| x * x).sum();
            assert!((norm - 1.0).abs() < 0.01, "{norm}");
        }
        Ok(())
    }
}
