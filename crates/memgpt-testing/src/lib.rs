//! Test support of memgpt-store, shared by the crates' tests and not published: a
//! throwaway PostgreSQL database per test, servers and PgBouncers of a test's own (feature
//! `postgres`, which links libpq), and a tokio runtime that counts its threads.

pub mod figures;
#[cfg(feature = "postgres")]
mod pg;
pub mod runtime;

#[cfg(feature = "postgres")]
pub use pg::*;
