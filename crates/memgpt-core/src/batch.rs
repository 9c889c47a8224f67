//! Helpers shared by the backends' batch writers.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::Error;
use crate::record::Record;
use crate::table::TableType;

/// A record of an `insert_many` call that could not be written, as a write path found it:
/// the write paths report what they met as conflicts, and [`Conflict::first`] and
/// [`Conflict::error`] alone decide what the call reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict {
    /// The record's index in the call.
    pub index: usize,
    /// Its id.
    pub id: Uuid,
    /// The index of an earlier record of the same call that has (or wrote) this id;
    /// `None` when the id was in the table before the call (or is another tenant's).
    pub earlier: Option<usize>,
}

impl Conflict {
    /// The conflict the call fails on: of two, the one of the record with the smaller
    /// index (the call is written in order, so that record fails first).
    pub fn first(a: Option<Conflict>, b: Option<Conflict>) -> Option<Conflict> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.index < a.index { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// What the call reports: [`Error::DuplicateId`] naming both records when an earlier
    /// record of the call has the id, else [`Error::AlreadyExists`].
    pub fn error(self, table: TableType) -> Error {
        match self.earlier {
            Some(first) => Error::DuplicateId {
                id: self.id,
                first,
                second: self.index,
            },
            None => Error::AlreadyExists { table, id: self.id },
        }
    }
}

/// The one rule for ids repeated in one `insert_many` call, applied to the whole call
/// however it is chunked: with `exists_ok` the last record of an id wins (written in the
/// position of the first); without, the second record of an id is a [`Conflict`] naming
/// both indexes, found before that chunk reaches the database.
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
    /// whole call. Returns the records to write, each id once, with the index of its first
    /// record, in call order.
    ///
    /// # Errors
    /// Without `exists_ok`, the [`Conflict`] of the first record of `chunk` whose id came
    /// earlier in the call.
    pub fn fold<R: Record>(
        &mut self,
        chunk: Vec<(usize, R)>,
    ) -> std::result::Result<Vec<(usize, R)>, Conflict> {
        let mut position: HashMap<Uuid, usize> = HashMap::with_capacity(chunk.len());
        let mut out: Vec<(usize, R)> = Vec::with_capacity(chunk.len());
        for (index, record) in chunk {
            let id = record.id();
            if let Some(&first) = self.first_index.get(&id) {
                if !self.exists_ok {
                    return Err(Conflict {
                        index,
                        id,
                        earlier: Some(first),
                    });
                }
            } else {
                self.first_index.insert(id, index);
            }
            match position.get(&id) {
                Some(&p) => out[p].1 = record,
                None => {
                    position.insert(id, out.len());
                    out.push((index, record));
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

#[cfg(test)]
mod tests {
    use super::Conflict;
    use crate::error::Error;
    use crate::table::TableType;
    use uuid::Uuid;

    fn at(index: usize, earlier: Option<usize>) -> Option<Conflict> {
        Some(Conflict {
            index,
            id: Uuid::from_u128(index as u128),
            earlier,
        })
    }

    #[test]
    fn the_record_with_the_smallest_index_decides_the_error() {
        let table = TableType::RecallMemory;
        let (repeat, existing) = (at(7, Some(2)), at(5, None));
        assert_eq!(Conflict::first(repeat, existing), existing);
        assert_eq!(Conflict::first(existing, repeat), existing);
        assert_eq!(Conflict::first(None, repeat), repeat);
        assert_eq!(Conflict::first(repeat, None), repeat);
        assert_eq!(Conflict::first(None, None), None);
        let e = repeat.unwrap().error(table);
        assert!(
            matches!(e, Error::DuplicateId { first: 2, second: 7, id } if id == Uuid::from_u128(7))
        );
        let e = existing.unwrap().error(table);
        assert!(
            matches!(e, Error::AlreadyExists { table: TableType::RecallMemory, id } if id == Uuid::from_u128(5))
        );
    }
}
