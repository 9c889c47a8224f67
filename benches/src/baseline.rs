//! The naive table of either backend, so that a workload's naive variant is written once.

use anyhow::Result;

use crate::naive::Naive;
use crate::naive_pg::NaivePg;
use crate::target::{Database, Env, Fresh};

/// A naive store of either backend, with what keeps its database alive.
pub enum Baseline {
    /// A SQLite file with MemGPT's settings, in its own folder.
    Sqlite(Naive, #[allow(dead_code)] tempfile::TempDir),
    /// The naive tables in a PostgreSQL database (the database of `Fresh`, when given).
    Pg(NaivePg, #[allow(dead_code)] Option<Fresh>),
}

/// Runs `$body` with `$x` bound to the naive store of either backend.
#[macro_export]
macro_rules! on_baseline {
    ($b:expr, |$x:ident| $body:expr) => {
        match $b {
            $crate::baseline::Baseline::Sqlite($x, _) => $body,
            $crate::baseline::Baseline::Pg($x, _) => $body,
        }
    };
}

impl Baseline {
    /// A naive store on a fresh database of `backend`.
    pub fn fresh(env: &Env, backend: Database) -> Result<Self> {
        Ok(match backend {
            Database::Sqlite => {
                let dir = tempfile::tempdir()?;
                Baseline::Sqlite(Naive::open(&dir.path().join("naive.db"))?, dir)
            }
            Database::Postgres => {
                let fresh = env.fresh(backend, "naive")?;
                Baseline::Pg(NaivePg::open(&fresh.location)?, Some(fresh))
            }
        })
    }
}
