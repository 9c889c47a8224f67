//! Bulk loads straight into the table: binary `COPY` of the records in call order, as
//! `psql \copy` would, for a call whose records the table takes as they are — the common
//! case, new ids. PostgreSQL's COPY writes rows a page at a time; the staging path
//! (`copy.rs`) writes every row twice, then inserts them one by one in id order.
//!
//! Each COPY statement (a few MiB of records) runs in a savepoint with a short
//! `lock_timeout` ([`NO_WAIT`]). A statement the table refuses — a repeated id, an id in
//! the table, a row another session holds (a lock wait past [`NO_WAIT`]), a deadlock — is
//! rolled back alone, and the call goes on by the staging path, which decides what the
//! call does with every record (`Conflict`, the duplicate rule): the rows of the
//! statements before it are taken out of the table again into the staging table, at
//! their places in the call ([`LOADED`]); so are those of a call of more than
//! [`STATEMENTS`] statements. A direct COPY never waits on another session, so
//! two loads of the same ids never deadlock through it; see docs/RELIABILITY.md for the
//! one case that can.

use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Record, Result, Scoped};
use uuid::Uuid;

use crate::copy::{copy_rows, Layout, COPY_BYTES};
use crate::error::map;
use crate::store::PgStore;

/// The `lock_timeout` of a direct COPY: a statement that waits this long for a row or a
/// lock another session holds gives up, and the call goes on by the staging path — well
/// before PostgreSQL looks for a deadlock (`deadlock_timeout`, 1 s by default), and long
/// enough to ride out a wait to extend the table behind another load.
const NO_WAIT: &str = "200ms";

/// The most COPY statements a call sends straight to the table (of [`COPY_BYTES`] each,
/// about 480 MiB): each is a subtransaction, and a transaction of more than 64 overflows
/// PostgreSQL's per-session cache of them (other sessions' snapshots then look each one up
/// in `pg_subtrans` until it ends). A call that goes on past them is finished by the
/// staging path, as though its next statement had been refused.
const STATEMENTS: usize = 60;

/// Where the rows of a call's earlier COPY statements are listed (`ord`, the record's
/// index in the call; `loaded`, its id) once a second statement is needed.
pub(crate) const LOADED: &str = "pg_temp.memgpt_loaded";

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
    /// A statement was refused (or the table's layout keeps the call off this path): the
    /// staging path takes the call from here.
    Refused(Rest),
}

/// Where a refused direct load stands.
pub(crate) struct Rest {
    /// The rows of the call's earlier statements are in the table, listed in [`LOADED`].
    pub(crate) loaded: bool,
    /// The refused statement's rows (none when nothing was sent).
    pub(crate) chunk: Chunk,
}

/// One row: the session's `lock_timeout`, the type of the table's `embedding` column
/// (empty when it has none).
#[derive(QueryableByName)]
struct Before {
    #[diesel(sql_type = Text)]
    wait: String,
    #[diesel(sql_type = Text)]
    embedding: String,
}

/// Loads `records` straight into the table, statement by statement, until they are all
/// written or one is refused. Every record is checked to be the tenant's first (a
/// foreign record fails the call before anything of it is sent).
pub(crate) fn load<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
) -> Result<(Layout, Direct)> {
    let before: Vec<Before> = diesel::sql_query(
        "SELECT current_setting('lock_timeout') AS wait, COALESCE((SELECT \
         format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = to_regclass($1) \
         AND attname = 'embedding' AND NOT attisdropped), '') AS embedding",
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
    let refused = |chunk| {
        Direct::Refused(Rest {
            loaded: false,
            chunk,
        })
    };
    if layout == Layout::Cast {
        return Ok((layout, refused(Chunk::default())));
    }
    conn.batch_execute(&format!("SET LOCAL lock_timeout = '{NO_WAIT}'"))
        .map_err(map)?;
    // A call that fails is rolled back with its setting.
    let direct = statements(target, conn, records, layout)?;
    // The session's own wait, for the rest of the call and of its transaction.
    diesel::sql_query("SELECT set_config('lock_timeout', $1, true) AS wait, '' AS embedding")
        .bind::<Text, _>(&before.wait)
        .load::<Before>(conn)
        .map_err(map)?;
    Ok((layout, direct))
}

/// The statements of [`load`], each in a savepoint.
fn statements<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    layout: Layout,
) -> Result<Direct> {
    let table = target.table();
    let (mut written, mut loaded, mut sent) = (0u64, false, 0usize);
    let mut chunk = Chunk {
        buf: Vec::with_capacity(COPY_BYTES + 64 * 1024),
        rows: Vec::new(),
    };
    loop {
        let more = fill(target, &mut chunk, records, layout)?;
        if chunk.rows.is_empty() {
            return written_all(conn, written, loaded);
        }
        if sent == STATEMENTS {
            return Ok(Direct::Refused(Rest { loaded, chunk }));
        }
        sent += 1;
        let data = &chunk.buf;
        match conn.transaction(|c| copy_rows(table, false, c, data)) {
            Ok(_) => {}
            Err(e) if refused(&e) => return Ok(Direct::Refused(Rest { loaded, chunk })),
            Err(e) => return Err(map(e)),
        }
        written += chunk.rows.len() as u64;
        if !more {
            return written_all(conn, written, loaded);
        }
        // The buffer is about to take the next records: list where these went, should a
        // later statement be refused.
        if !loaded {
            conn.batch_execute(&format!(
                "CREATE TEMP TABLE {LOADED} (ord bigint, loaded uuid) ON COMMIT DROP"
            ))
            .map_err(map)?;
            loaded = true;
        }
        let (ords, ids): (Vec<i64>, Vec<Uuid>) =
            chunk.rows.iter().map(|&(_, i, id)| (i as i64, id)).unzip();
        diesel::sql_query(format!(
            "INSERT INTO {LOADED} SELECT * FROM unnest($1::bigint[], $2::uuid[])"
        ))
        .bind::<Array<BigInt>, _>(ords)
        .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
        .execute(conn)
        .map_err(map)?;
    }
}

/// Every record written: the list of [`LOADED`] goes (a unit of work may make more bulk
/// calls).
fn written_all(conn: &mut PgConnection, written: u64, loaded: bool) -> Result<Direct> {
    if loaded {
        conn.batch_execute(&format!("DROP TABLE {LOADED}"))
            .map_err(map)?;
    }
    Ok(Direct::Written(written))
}

/// Encodes records into `chunk` (emptied first) until it holds [`COPY_BYTES`] or the
/// records end; returns whether more may follow.
fn fill<R: Record>(
    target: &Scoped<PgStore, R>,
    chunk: &mut Chunk,
    records: &mut dyn Iterator<Item = (usize, R)>,
    layout: Layout,
) -> Result<bool> {
    chunk.buf.clear();
    chunk.rows.clear();
    crate::copy::header(&mut chunk.buf);
    while chunk.buf.len() < COPY_BYTES {
        let Some(one) = records.next() else {
            crate::copy::trailer(&mut chunk.buf);
            return Ok(false);
        };
        target.check_owners([&one])?;
        chunk.rows.push((chunk.buf.len(), one.0, one.1.id()));
        let binds = one.1.values::<PgStore>(target.table());
        crate::copy::row(&mut chunk.buf, None, &binds, layout);
    }
    crate::copy::trailer(&mut chunk.buf);
    Ok(true)
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
