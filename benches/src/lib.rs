//! The benchmark suite of memgpt-store on the workloads of docs/BENCHMARKS.md: the
//! deterministic data, the naive baselines, the bulk-loader ceilings, the hand-written
//! `raw` variant on rusqlite and the postgres crate, each workload on
//! either backend, and the report (JSON and a table).

pub mod baseline;
pub mod ceiling;
pub mod concurrency;
pub mod data;
pub mod loads;
pub mod memory;
pub mod naive;
pub mod naive_pg;
pub mod progress;
pub mod raw;
pub mod reads;
pub mod report;
pub mod retention;
pub mod scale;
pub mod stats;
pub mod target;
pub mod targets;
pub mod w4;
pub mod w8;
