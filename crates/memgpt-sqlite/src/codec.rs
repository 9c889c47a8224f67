//! How values are encoded in SQLite.
//!
//! * uuid: 36-character lowercase text (MemGPT's `CommonUUID`);
//! * timestamps: `YYYY-MM-DD HH:MM:SS.ffffff` in UTC (SQLAlchemy's SQLite `DATETIME`), which
//!   sorts as text in time order;
//! * recall memory embeddings: base64 of the float32 bytes of the vector zero-padded to 4096
//!   (MemGPT's `CommonVector`);
//! * archival memory embeddings: raw little-endian float32 bytes of the true vector.

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use memgpt_core::{Embedding, Error, MAX_EMBEDDING_DIM};
use uuid::Uuid;

use crate::error::corrupt;

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

pub(crate) fn time_to_text(t: &DateTime<Utc>) -> String {
    t.naive_utc().format(TIME_FORMAT).to_string()
}

pub(crate) fn time_from_text(table: &str, s: &str) -> Result<DateTime<Utc>, Error> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .map(|n| n.and_utc())
        .map_err(|e| corrupt(table, "created_at", format!("{s:?}: {e}")))
}

pub(crate) fn uuid_to_text(u: &Uuid) -> String {
    u.hyphenated().to_string()
}

pub(crate) fn uuid_from_text(table: &str, column: &str, s: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(s.trim()).map_err(|e| corrupt(table, column, format!("{s:?}: {e}")))
}

pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

pub(crate) fn f32_from_bytes(b: &[u8]) -> Option<Vec<f32>> {
    if !b.len().is_multiple_of(4) {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// MemGPT's recall encoding: base64 of the float32 bytes, padded to 4096.
pub(crate) fn embedding_to_base64(e: &Embedding) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(f32_bytes(&e.padded(MAX_EMBEDDING_DIM)))
        .into_bytes()
}

pub(crate) fn base64_to_f32(b: &[u8]) -> Option<Vec<f32>> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    f32_from_bytes(&raw)
}

pub(crate) fn embedding_from_base64(
    table: &str,
    b: &[u8],
    dim: Option<i64>,
) -> Result<Embedding, Error> {
    let v = base64_to_f32(b).ok_or_else(|| corrupt(table, "embedding", "not base64 float32"))?;
    let dim = dim.map(|d| usize::try_from(d).unwrap_or(usize::MAX));
    Embedding::from_padded(v, dim).map_err(|e| corrupt(table, "embedding", e))
}

pub(crate) fn embedding_from_raw(table: &str, b: &[u8]) -> Result<Embedding, Error> {
    let v = f32_from_bytes(b).ok_or_else(|| corrupt(table, "embedding", "not float32 bytes"))?;
    Embedding::new(v).map_err(|e| corrupt(table, "embedding", e))
}
