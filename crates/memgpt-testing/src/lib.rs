//! Test support of memgpt-store, shared by the crates' tests, `cargo xtask` and the
//! benchmarks, and not published: PostgreSQL servers and PgBouncer as processes
//! ([`cluster`], the standard library only: all that `cargo xtask` takes); a throwaway
//! PostgreSQL database per test, servers and PgBouncers of a test's own (feature
//! `postgres`, which links libpq); a tokio runtime that counts its threads and the names of
//! metrics (feature `stores`, which both others turn on); and the stores of the
//! documentation's examples (feature `sqlite`).

pub mod cluster;
#[cfg(feature = "postgres")]
mod database;
#[cfg(feature = "sqlite")]
pub mod docs;
#[cfg(feature = "stores")]
pub mod figures;
#[cfg(feature = "postgres")]
mod own;
#[cfg(feature = "stores")]
pub mod runtime;

#[cfg(feature = "postgres")]
pub use database::*;
#[cfg(feature = "postgres")]
pub use own::*;
