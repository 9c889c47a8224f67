//! Bulk loads straight into the table: one binary `COPY`, as `psql \copy` would, for a
//! call whose records the table takes as they are — the common case, new ids — and that
//! fits in one COPY statement ([`COPY_BYTES`]). PostgreSQL's COPY writes rows a page at a
//! time; the staging path (`copy.rs`) writes every row twice, then inserts them one by one.
//!
//! Every record is pulled from the caller's iterator and encoded before anything is sent;
//! a call that does not fit goes to the staging path with what it encoded (nothing was
//! written). The rows are sent in id order, as every other insert of the library writes
//! them, so that two writers of the same ids wait on each other in one order and never
//! deadlock. A call with a repeated id is staged without a try. The COPY runs in a
//! savepoint; one the table refuses — an id in the table, a row no constraint of the
//! table admits, a table COPY cannot write (row-level security, a view) — is rolled back,
//! the call holds nothing of its own again, and the staging path, which decides what the
//! call does with every record (`Conflict`, the duplicate rule), takes the encoded rows.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Record, Result, Scoped};
use uuid::Uuid;

use crate::binary::{copy_rows, Layout, COPY_BYTES};
use crate::error::map;
use crate::store::PgStore;

/// Encoded rows of one COPY statement, in binary COPY's format.
#[derive(Default)]
pub(crate) struct Chunk {
    /// Header, rows, trailer.
    pub(crate) buf: Vec<u8>,
    /// Each row's start in `buf`, its record's index in the call and its id.
    pub(crate) rows: Vec<(usize, usize, Uuid)>,
}

impl Chunk {
    /// The bytes of row `k` (its field count, then its fields).
    pub(crate) fn row(&self, k: usize) -> &[u8] {
        let end = match self.rows.get(k + 1) {
            Some(next) => next.0,
            None => self.buf.len() - 2,
        };
        &self.buf[self.rows[k].0..end]
    }
}

/// What a direct load did.
pub(crate) enum Direct {
    /// Every record written; how many.
    Written(u64),
    /// Nothing written: the staging path takes the call from here.
    Staged(Rest),
}

/// Where a load the staging path takes over stands.
pub(crate) struct Rest {
    /// Rows encoded and not written (none when the table's layout kept the call off the
    /// direct path). The records after them, if any, are still in the caller's iterator
    /// (which core fuses: one that ended is not asked again).
    pub(crate) chunk: Chunk,
}

/// How the table stores embeddings: `vector` (pgvector's type), `real[]`, empty for no
/// `embedding` column, else `other` and the type's name.
#[derive(QueryableByName)]
struct Embedding {
    #[diesel(sql_type = Text)]
    embedding: String,
}

/// Loads `records` straight into the table in one COPY statement, when they fit in one
/// and the table takes them. Every record is checked to be the tenant's first (a foreign
/// record fails the call before anything is sent).
pub(crate) fn load<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
) -> Result<(Layout, Direct)> {
    let layout = layout(conn, target.table().table_name())?;
    if layout == Layout::Cast {
        let chunk = Chunk::default();
        return Ok((layout, Direct::Staged(Rest { chunk })));
    }
    let mut chunk = Chunk {
        buf: Vec::with_capacity(COPY_BYTES + 64 * 1024),
        rows: Vec::new(),
    };
    if fill(target, &mut chunk, records, layout)? {
        return Ok((layout, Direct::Staged(Rest { chunk })));
    }
    if chunk.rows.is_empty() {
        return Ok((layout, Direct::Written(0)));
    }
    let mut order: Vec<usize> = (0..chunk.rows.len()).collect();
    order.sort_unstable_by_key(|&k| chunk.rows[k].2);
    if order
        .windows(2)
        .any(|w| chunk.rows[w[0]].2 == chunk.rows[w[1]].2)
    {
        // A repeated id: the table would refuse it, and the staging path decides.
        return Ok((layout, Direct::Staged(Rest { chunk })));
    }
    let (head, tail) = chunk.buf.split_at(chunk.rows.first().map_or(0, |r| r.0));
    let trailer = &tail[tail.len() - 2..];
    let pieces = || {
        std::iter::once(head)
            .chain(order.iter().map(|&k| chunk.row(k)))
            .chain(std::iter::once(trailer))
    };
    let sent = conn.transaction(|c| copy_rows(target.table(), false, c, pieces));
    match sent {
        Ok(n) => Ok((layout, Direct::Written(n as u64))),
        // Rolled back with its savepoint.
        Err(e) if refused(&e) => Ok((layout, Direct::Staged(Rest { chunk }))),
        Err(e) => Err(map(e)),
    }
}

/// How `table` stores embeddings. pgvector's type is recognised by its extension, not by
/// its name, wherever the extension's schema is.
fn layout(conn: &mut PgConnection, table: &str) -> Result<Layout> {
    let found: Vec<Embedding> = diesel::sql_query(
        "SELECT COALESCE((SELECT CASE \
         WHEN a.atttypid = 'real[]'::regtype THEN 'real[]' \
         WHEN t.typname = 'vector' AND EXISTS (SELECT 1 FROM pg_depend d \
         JOIN pg_extension e ON e.oid = d.refobjid WHERE d.classid = 'pg_type'::regclass \
         AND d.objid = a.atttypid AND d.refclassid = 'pg_extension'::regclass \
         AND d.deptype = 'e' AND e.extname = 'vector') THEN 'vector' \
         ELSE 'other ' || t.typname END FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = to_regclass($1) AND a.attname = 'embedding' \
         AND NOT a.attisdropped), '') AS embedding",
    )
    .bind::<Text, _>(table)
    .load(conn)
    .map_err(map)?;
    Ok(Layout::of(
        found.first().map_or("", |f| f.embedding.as_str()),
    ))
}

/// Encodes records into `chunk` until it holds [`COPY_BYTES`] or the records end;
/// returns whether more may follow.
fn fill<R: Record>(
    target: &Scoped<PgStore, R>,
    chunk: &mut Chunk,
    records: &mut dyn Iterator<Item = (usize, R)>,
    layout: Layout,
) -> Result<bool> {
    crate::binary::header(&mut chunk.buf);
    let mut more = true;
    while chunk.buf.len() < COPY_BYTES {
        let Some(one) = records.next() else {
            more = false;
            break;
        };
        target.check_owners([&one])?;
        chunk.rows.push((chunk.buf.len(), one.0, one.1.id()));
        let binds = one.1.values::<PgStore>(target.table());
        crate::binary::row(&mut chunk.buf, None, &binds, layout);
    }
    crate::binary::trailer(&mut chunk.buf);
    Ok(more)
}

/// Whether a COPY's error is the table refusing it, which the staging path resolves or
/// reports as it always did, rather than an error of the call: a unique violation or any
/// other row the table's constraints refuse (class 23), a deadlock with a writer in
/// another order (a unit of work's), a table COPY cannot write into (`0A000`: row-level
/// security; `42809`: not a table).
fn refused(e: &DieselError) -> bool {
    use diesel::pg::sql_state as code;
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => true,
        DieselError::DatabaseError(_, info) => info.sqlstate().is_some_and(|s| {
            s.as_str().starts_with("23")
                || matches!(
                    s,
                    code::T_R_DEADLOCK_DETECTED
                        | code::FEATURE_NOT_SUPPORTED
                        | code::WRONG_OBJECT_TYPE
                )
        }),
        _ => false,
    }
}
