//! Bulk loads straight into the table: binary `COPY` of the records in call order, as
//! `psql \copy` would, for a call whose records the table takes as they are — the common
//! case, new ids — and that fits in one COPY statement ([`COPY_BYTES`]). PostgreSQL's
//! COPY writes rows a page at a time; the staging path (`copy.rs`) writes every row twice,
//! then inserts them one by one in id order.
//!
//! Every record is pulled from the caller's iterator and encoded before anything is sent;
//! a call that does not fit goes to the staging path with what it encoded (nothing was
//! written). The statement runs in a savepoint under a short `lock_timeout`
//! ([`NO_WAIT`]). A statement the table refuses — a repeated id, an id in the table, a row
//! another session holds (a wait past [`NO_WAIT`]), a deadlock — is rolled back, the call
//! holds nothing of its own again, and the staging path, which decides what the call does
//! with every record (`Conflict`, the duplicate rule), takes its encoded rows. Only one
//! statement ever holds rows in call order, and never waits long on another session
//! while it does: loads of the same ids do not deadlock through it.

use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Record, Result, Scoped};

use crate::binary::{copy_rows, Layout, COPY_BYTES};
use crate::error::map;
use crate::store::PgStore;

/// The `lock_timeout` of a direct COPY: a statement that waits this long for a row or a
/// lock another session holds gives up, and the call goes on by the staging path — well
/// before PostgreSQL looks for a deadlock (`deadlock_timeout`, 1 s by default), and long
/// enough to ride out a wait to extend the table behind another load.
const NO_WAIT: &str = "200ms";

/// Encoded rows of one COPY statement, in binary COPY's format.
#[derive(Default)]
pub(crate) struct Chunk {
    /// Header, rows, trailer.
    pub(crate) buf: Vec<u8>,
    /// Each row's start in `buf` and its record's index in the call.
    pub(crate) rows: Vec<(usize, usize)>,
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

/// One row: the session's `lock_timeout`, and how the table stores embeddings: `vector`
/// (pgvector's type), `real[]`, empty for no `embedding` column, else the type's name.
#[derive(QueryableByName)]
struct Before {
    #[diesel(sql_type = Text)]
    wait: String,
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
    let before: Vec<Before> = diesel::sql_query(
        "SELECT current_setting('lock_timeout') AS wait, COALESCE((SELECT CASE \
         WHEN a.atttypid = 'real[]'::regtype THEN 'real[]' \
         WHEN EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid \
         WHERE d.classid = 'pg_type'::regclass AND d.objid = a.atttypid \
         AND e.extname = 'vector' AND t.typname = 'vector') THEN 'vector' \
         ELSE 'other ' || t.typname END FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = to_regclass($1) AND a.attname = 'embedding' \
         AND NOT a.attisdropped), '') AS embedding",
    )
    .bind::<Text, _>(target.table().table_name())
    .load(conn)
    .map_err(map)?;
    let Some(before) = before.into_iter().next() else {
        return Err(memgpt_core::Error::Database {
            message: "no row from the layout query".to_owned(),
        });
    };
    let layout = Layout::of(&before.embedding);
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
    let data = &chunk.buf;
    let sent = conn.transaction(|c| {
        c.batch_execute(&format!("SET LOCAL lock_timeout = '{NO_WAIT}'"))?;
        copy_rows(target.table(), false, c, data)
    });
    match sent {
        Ok(_) => {}
        // Rolled back with its savepoint, the setting too.
        Err(e) if refused(&e) => return Ok((layout, Direct::Staged(Rest { chunk }))),
        Err(e) => return Err(map(e)),
    }
    // The session's own wait, for the rest of its transaction.
    diesel::sql_query("SELECT set_config('lock_timeout', $1, true) AS wait, '' AS embedding")
        .bind::<Text, _>(&before.wait)
        .load::<Before>(conn)
        .map_err(map)?;
    Ok((layout, Direct::Written(chunk.rows.len() as u64)))
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
        chunk.rows.push((chunk.buf.len(), one.0));
        let binds = one.1.values::<PgStore>(target.table());
        crate::binary::row(&mut chunk.buf, None, &binds, layout);
    }
    crate::binary::trailer(&mut chunk.buf);
    Ok(more)
}

/// Whether a COPY's error is the table refusing its rows — a unique violation, a lock
/// wait past [`NO_WAIT`], a deadlock — which the staging path resolves, rather than an
/// error of the call.
fn refused(e: &DieselError) -> bool {
    use diesel::pg::sql_state as code;
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => true,
        DieselError::DatabaseError(_, info) => matches!(
            info.sqlstate(),
            Some(code::LOCK_NOT_AVAILABLE | code::T_R_DEADLOCK_DETECTED)
        ),
        _ => false,
    }
}
