//! Helpers shared by the backends' batch writers.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::record::Record;

/// The one rule for ids repeated in one `insert_many` call, applied to the whole call
/// however it is chunked: with `exists_ok` the last record of an id wins (written in the
/// position of the first); without, the second record of an id is [`Error::DuplicateId`]
/// naming both indexes, raised before that chunk reaches the database (and so, the call
/// being one transaction, before anything is committed).
///
/// It remembers every id of the call (about 40 bytes each), not the records.
#[derive(Debug)]
pub struct BatchIds {
    first_index: HashMap<Uuid, usize>,
    exists_ok: bool,
}

impl BatchIds {
    /// The tracker of one call.
    pub fn new(exists_ok: bool) -> Self {
        BatchIds {
            first_index: HashMap::new(),
            exists_ok,
        }
    }

    /// Folds the next chunk of the call. `chunk` pairs each record with its index in the
    /// whole call. Returns the records to write, each id once.
    ///
    /// # Errors
    /// [`Error::DuplicateId`] without `exists_ok`, when an id of `chunk` came earlier in
    /// the call.
    pub fn fold<R: Record>(&mut self, chunk: Vec<(usize, R)>) -> Result<Vec<R>> {
        let mut position: HashMap<Uuid, usize> = HashMap::with_capacity(chunk.len());
        let mut out: Vec<R> = Vec::with_capacity(chunk.len());
        for (index, record) in chunk {
            let id = record.id();
            if let Some(&first) = self.first_index.get(&id) {
                if !self.exists_ok {
                    return Err(Error::DuplicateId {
                        id,
                        first,
                        second: index,
                    });
                }
            } else {
                self.first_index.insert(id, index);
            }
            match position.get(&id) {
                Some(&p) => out[p] = record,
                None => {
                    position.insert(id, out.len());
                    out.push(record);
                }
            }
        }
        Ok(out)
    }

    /// The number of distinct ids seen so far: what the call reports as written.
    pub fn distinct(&self) -> u64 {
        self.first_index.len() as u64
    }
}
