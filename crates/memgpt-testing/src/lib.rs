//! Test support of memgpt-store, shared by the crates' tests and not published: a
//! throwaway PostgreSQL database per test, servers and PgBouncers of a test's own (feature
//! `postgres`, which links libpq), a tokio runtime that counts its threads, and the stores
//! of the documentation's examples (feature `sqlite`).

#[cfg(feature = "sqlite")]
pub mod docs;
pub mod figures;
#[cfg(feature = "postgres")]
mod pg;
pub mod runtime;

#[cfg(feature = "postgres")]
pub use pg::*;
