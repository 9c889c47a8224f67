//! The L2 distance functions registered on every connection.
//!
//! `memgpt_l2(embedding, query)` reads raw little-endian float32 blobs (archival memory,
//! passages); `memgpt_l2_base64(embedding, query)` reads MemGPT's base64 encoding (recall
//! memory). Both return the squared L2 distance, treating missing components as zero, or
//! NULL for a NULL or undecodable embedding. Squared distance orders as distance does.

#[allow(unused_imports)]
use diesel::sql_types::{Binary, Double, Nullable};
use diesel::SqliteConnection;

use crate::codec::{base64_to_f32, f32_from_bytes};

diesel::define_sql_function! {
    /// Squared L2 distance of two raw float32 blobs.
    fn memgpt_l2(embedding: Nullable<Binary>, query: Binary) -> Nullable<Double>;
}

diesel::define_sql_function! {
    /// Squared L2 distance of a base64 float32 blob and a raw float32 blob.
    fn memgpt_l2_base64(embedding: Nullable<Binary>, query: Binary) -> Nullable<Double>;
}

/// Squared L2 distance over raw little-endian bytes, without allocating.
fn l2_raw(a: &[u8], b: &[u8]) -> Option<f64> {
    if !a.len().is_multiple_of(4) || !b.len().is_multiple_of(4) {
        return None;
    }
    let read = |s: &[u8], i: usize| -> f32 {
        s.get(i * 4..i * 4 + 4)
            .map_or(0.0, |c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    };
    let n = a.len().max(b.len()) / 4;
    let mut sum = 0.0f64;
    for i in 0..n {
        let d = f64::from(read(a, i)) - f64::from(read(b, i));
        sum += d * d;
    }
    Some(sum)
}

/// Registers both functions on `conn`.
pub(crate) fn register(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    memgpt_l2_utils::register_impl(conn, |e: Option<Vec<u8>>, q: Vec<u8>| {
        e.and_then(|e| l2_raw(&e, &q))
    })?;
    memgpt_l2_base64_utils::register_impl(conn, |e: Option<Vec<u8>>, q: Vec<u8>| {
        let e = base64_to_f32(&e?)?;
        let q = f32_from_bytes(&q)?;
        Some(memgpt_core::Embedding::l2_squared(&e, &q))
    })?;
    Ok(())
}
