//! Shared pieces of the benchmark suite: the deterministic data of WORKLOADS.md and the
//! naive baselines it is measured against.

pub mod data;
pub mod naive;
pub mod stats;
