//! `insert_many` of more than one chunk, with memory that does not grow with the call.
//!
//! A record that cannot be written is reported as a [`Conflict`] (core decides the error),
//! which needs to know, for an id met again, whether an earlier record of the same call
//! wrote it. Remembering every id of the call costs about
//! 40 bytes each (75 MB at the peak of a 1,000,000-record call); SQLite's rowids answer
//! instead. A new row gets a rowid one larger than the largest in the table, so the rows
//! this call adds are exactly those above the largest rowid at its start (`start`), in the
//! order they were written; a row this call updated keeps its old rowid.
//!
//! * Without `exists_ok` every record is written in call order, so the record at index
//!   `i` of the call gets rowid `start + 1 + i`: when a chunk meets an existing id, the row
//!   with that id says which earlier record wrote it ([`Error::DuplicateId`]), or that it
//!   was there before the call ([`Error::AlreadyExists`]).
//! * With `exists_ok` each chunk is an upsert `RETURNING` the rowids it wrote: above the
//!   chunk's starting watermark a new row, between `start` and the watermark a row of an
//!   earlier chunk (the last record wins, counted once), at or below `start` a row that
//!   existed before the call. Only the ids of those last rows are remembered, to count
//!   each once.
//!
//! Repeats inside one chunk are folded by [`BatchIds`] before SQL, as on the chunked path.

use std::collections::{HashMap, HashSet};

use diesel::SqliteConnection;
use memgpt_core::backend::{Backend, Written};
use memgpt_core::batch::{BatchIds, Conflict};
use memgpt_core::row::{required, Col, Count, Decode, Row, Undecodable};
use memgpt_core::statement::{Param, Statement};
use memgpt_core::Scoped;
use memgpt_core::{Error, Record, Result};
use uuid::Uuid;

use crate::sql::Sql;
use crate::store::SqliteStore;

/// A row's id and rowid (`id, rowid AS row_number`).
struct IdRowid {
    id: Uuid,
    row_number: i64,
}

impl Decode for IdRowid {
    fn decode(row: &impl Row) -> std::result::Result<Self, Undecodable> {
        let (id, row_number) = (Col::new(0, "id"), Col::new(1, "row_number"));
        Ok(IdRowid {
            id: required(id, row.uuid(id)?)?,
            row_number: required(row_number, row.int(row_number)?)?,
        })
    }
}

/// Writes a call of more than one chunk; `None` when the table's rowids are exhausted
/// (a rowid of `i64::MAX` exists, after which SQLite picks new rowids at random), which
/// leaves the call to the chunked path.
pub(crate) fn insert_many<R>(
    target: &Scoped<SqliteStore, R>,
    conn: &mut SqliteConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    exists_ok: bool,
) -> Option<Result<u64>>
where
    R: Record,
{
    let table = target.table();
    let sql: Sql = Statement::new(format!(
        "SELECT coalesce(max(rowid), 0) AS n FROM {}",
        table.table_name()
    ));
    let start = match SqliteStore::fetch::<Count>(conn, sql, table) {
        Ok(n) => i64::try_from(n.first().map_or(0, |n| n.0)).unwrap_or(i64::MAX),
        Err(e) => return Some(Err(e)),
    };
    if start == i64::MAX {
        return None;
    }
    Some(write(target, conn, records, exists_ok, start))
}

fn write<R>(
    target: &Scoped<SqliteStore, R>,
    conn: &mut SqliteConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    exists_ok: bool,
    start: i64,
) -> Result<u64>
where
    R: Record,
{
    let table = target.table();
    let size = target.store().chunk_size().max(1);
    let mut watermark = start;
    let mut written = 0u64;
    let mut existed: HashSet<Uuid> = HashSet::new();
    loop {
        let chunk: Vec<(usize, R)> = records.take(size).collect();
        if chunk.is_empty() {
            return Ok(written);
        }
        let keys: Vec<(usize, Uuid)> = chunk.iter().map(|(i, r)| (*i, r.id())).collect();
        let rows = fold(target, conn, chunk, exists_ok, (start, watermark))?;
        let values = rows.iter().map(|(_, r)| r.values::<SqliteStore>(table));
        let mut sql = target.shapes().insert(R::COLUMNS, values, exists_ok);
        if !exists_ok {
            match SqliteStore::execute(conn, sql)? {
                Written::Rows(n) if n == rows.len() => {
                    written += n as u64;
                    watermark += n as i64;
                }
                // An id in the table already (`ON CONFLICT (id) DO NOTHING`): the rows of
                // this statement, above the watermark, are not the ones met.
                _ => {
                    return Err(match taken(target, conn, &keys, start, watermark)? {
                        Some(conflict) => conflict.error(table),
                        None => Error::database("insert met an existing id that is not there"),
                    });
                }
            }
            continue;
        }
        sql.push(" RETURNING id, rowid AS row_number");
        let returned: Vec<IdRowid> = SqliteStore::fetch(conn, sql, table)?;
        if returned.len() < rows.len() {
            // An id of another tenant: the upsert's tenant guard wrote nothing for it.
            let keys: Vec<(usize, Uuid)> = rows.iter().map(|(i, r)| (*i, r.id())).collect();
            return Err(match target.existing(conn, &keys, true)? {
                Some(conflict) => conflict.error(table),
                None => Error::database("insert wrote fewer rows than given"),
            });
        }
        let mut top = watermark;
        for r in &returned {
            // A new row; or a row that existed before the call, counted once. A row of
            // an earlier chunk (between `start` and the watermark) was counted then.
            let new = r.row_number > watermark;
            if new || (r.row_number <= start && existed.insert(r.id)) {
                written += 1;
            }
            top = top.max(r.row_number);
        }
        watermark = top;
    }
}

/// Checks a chunk's owners and folds its repeated ids by [`BatchIds`]. On a repeat inside
/// the chunk, a record of the chunk whose id a row at or below the watermark holds may come
/// first ([`taken`], [`Conflict::first`]).
fn fold<R: Record>(
    target: &Scoped<SqliteStore, R>,
    conn: &mut SqliteConnection,
    chunk: Vec<(usize, R)>,
    exists_ok: bool,
    (start, watermark): (i64, i64),
) -> Result<Vec<(usize, R)>> {
    target.check_owners(&chunk)?;
    let keys: Vec<(usize, Uuid)> = chunk.iter().map(|(i, r)| (*i, r.id())).collect();
    match BatchIds::new(exists_ok).fold(chunk) {
        Ok(rows) => Ok(rows),
        Err(repeat) => {
            let earlier = taken(target, conn, &keys, start, watermark)?;
            let first = Conflict::first(Some(repeat), earlier).unwrap_or(repeat);
            Err(first.error(target.table()))
        }
    }
}

/// The [`Conflict`] of the first of `keys` (records of one chunk, each with its index in
/// the call, in call order) whose id is in a row at or below `ceiling` (written before this
/// chunk): by the earlier record of the call that wrote it (above `start`), or there before
/// the call; `None` when none is.
fn taken<R>(
    target: &Scoped<SqliteStore, R>,
    conn: &mut SqliteConnection,
    keys: &[(usize, Uuid)],
    start: i64,
    ceiling: i64,
) -> Result<Option<Conflict>>
where
    R: Record,
{
    if keys.is_empty() {
        return Ok(None);
    }
    let table = target.table();
    let mut sql: Sql = Statement::new(format!(
        "SELECT id, rowid AS row_number FROM {} WHERE id IN",
        table.table_name()
    ));
    sql.list(keys.iter().map(|(_, id)| Param::Uuid(Some(*id))));
    let found: Vec<IdRowid> = SqliteStore::fetch(conn, sql, table)?;
    let at: HashMap<Uuid, i64> = found.into_iter().map(|f| (f.id, f.row_number)).collect();
    Ok(keys.iter().find_map(|&(index, id)| {
        at.get(&id)
            .filter(|&&rowid| rowid <= ceiling)
            .map(|&rowid| Conflict {
                index,
                id,
                earlier: (rowid > start)
                    .then(|| usize::try_from(rowid - start - 1).unwrap_or(usize::MAX)),
            })
    }))
}
