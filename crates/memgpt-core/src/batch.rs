//! Helpers shared by the backends' batch writers.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::record::Record;

/// Folds records of one chunk that share an id. `chunk` pairs each record with its index in
/// the whole batch. With `exists_ok` the last record of an id wins (in the position of the
/// first); without, a repeated id is [`Error::DuplicateId`] naming both indexes.
pub fn fold_duplicates<R: Record>(chunk: Vec<(usize, R)>, exists_ok: bool) -> Result<Vec<R>> {
    let mut seen: HashMap<Uuid, (usize, usize)> = HashMap::with_capacity(chunk.len());
    let mut out: Vec<R> = Vec::with_capacity(chunk.len());
    for (index, record) in chunk {
        match seen.get(&record.id()) {
            Some(&(position, first)) => {
                if !exists_ok {
                    return Err(Error::DuplicateId {
                        id: record.id(),
                        first,
                        second: index,
                    });
                }
                out[position] = record;
            }
            None => {
                seen.insert(record.id(), (out.len(), index));
                out.push(record);
            }
        }
    }
    Ok(out)
}

/// The words of a full-text query: whitespace-separated pieces that hold at least one letter
/// or digit. A query without any is empty and matches nothing.
pub fn query_words(query: &str) -> Result<Vec<&str>> {
    if query.contains('\0') {
        return Err(Error::invalid("query", "contains a NUL byte"));
    }
    Ok(query
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect())
}
