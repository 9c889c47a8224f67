//! Bulk loads: one binary `COPY` straight into the table (`direct.rs`) and, for a call the
//! table refuses there or too large for one statement, the staging path — binary `COPY`
//! (`binary.rs`) into a temporary staging table, then `INSERT … SELECT … ON CONFLICT` into
//! the real table, in id ranges of bounded size.
//!
//! COPY has no `ON CONFLICT`, so the staging path streams records into a staging table
//! that lives until the call ends; the staging rows carry their index in the batch
//! (`ord`), which finds repeated ids (the last wins, or [`Error::DuplicateId`] names both)
//! without holding the batch in memory. Records are encoded as they are pulled from the
//! caller's iterator and sent in COPY statements of a few MiB each: memory stays flat
//! however many there are.

use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::batch::Conflict;
use memgpt_core::Result;
use uuid::Uuid;

use crate::binary::{copy_rows, header, row, staged_row, trailer, Layout, COPY_BYTES};
use crate::direct::{Direct, Rest};
use crate::error::map;
use crate::store::PgStore;
use memgpt_core::Scoped;
use memgpt_core::{Record, TableType};

#[derive(QueryableByName)]
struct DupRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    first: i64,
    #[diesel(sql_type = BigInt)]
    second: i64,
}

/// The bulk path: binary COPY straight into the table ([`crate::direct`]); should the
/// table refuse a statement, binary COPY of every record into the staging table, then
/// `INSERT … SELECT` (the last record of each id) into the table, 50,000 ids a statement.
pub(crate) fn copy_many<R>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    exists_ok: bool,
) -> Result<u64>
where
    R: Record,
{
    let (layout, rest) = match crate::direct::load(target, conn, records)? {
        (_, Direct::Written(n)) => return Ok(n),
        (layout, Direct::Staged(rest)) => (layout, rest),
    };
    stage(target, conn, records, layout, rest)?;
    let merged = merge(target, conn, exists_ok)?;
    conn.batch_execute(&format!("DROP TABLE {}", staging(target.table())))
        .map_err(map)?;
    Ok(merged)
}

/// Fills the staging table: the rows a direct load encoded, then the rest of the records.
fn stage<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    layout: Layout,
    rest: Rest,
) -> Result<()> {
    // The staging table has the table's own columns, in the record's order, after `ord`
    // (embeddings as `real[]` when the table's type is one COPY does not send).
    // A staging table of this name on the session would mean another bulk call of this
    // connection under way (a call holds its connection from start to end, so none is):
    // creating it fails rather than take that call's rows. It is dropped when the call
    // ends (a unit of work may make more bulk calls), on rollback with the savepoint, and
    // at the latest with the transaction.
    let columns = R::COLUMNS
        .iter()
        .map(|&c| match (c, layout) {
            ("embedding", Layout::Cast) => "embedding::real[] AS embedding",
            _ => c,
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (staging, table) = (staging(target.table()), target.table().table_name());
    conn.batch_execute(&format!(
        "CREATE TEMP TABLE {staging} ON COMMIT DROP AS \
         SELECT 0::bigint AS ord, {columns} FROM {table} WITH NO DATA;"
    ))
    .map_err(map)?;
    let mut buf = Vec::with_capacity(COPY_BYTES + 64 * 1024);
    // The rows encoded already: one statement, then their buffer goes.
    let chunk = rest.chunk;
    if !chunk.rows.is_empty() {
        header(&mut buf);
        for k in 0..chunk.rows.len() {
            staged_row(&mut buf, chunk.rows[k].1, chunk.row(k));
        }
        trailer(&mut buf);
        drop(chunk);
        copy_rows(target.table(), true, conn, || std::iter::once(&buf[..])).map_err(map)?;
    }
    loop {
        buf.clear();
        header(&mut buf);
        let mut rows = 0usize;
        let mut more = true;
        while buf.len() < COPY_BYTES {
            if let Some(one) = records.next() {
                target.check_owners([&one])?;
                let binds = one.1.values::<PgStore>(target.table());
                row(&mut buf, Some(one.0), &binds, layout);
            } else {
                more = false;
                break;
            }
            rows += 1;
        }
        trailer(&mut buf);
        if rows > 0 {
            copy_rows(target.table(), true, conn, || std::iter::once(&buf[..])).map_err(map)?;
        }
        if !more {
            return Ok(());
        }
    }
}

/// Moves the staged records into the table; returns the rows written. A record that could
/// not be written — without `exists_ok`, the second record of an id or one whose id is in
/// the table; with it, one whose id is another tenant's — is a [`Conflict`], and the first
/// of them decides the error ([`Conflict::first`], [`Conflict::error`]).
fn merge<R>(target: &Scoped<PgStore, R>, conn: &mut PgConnection, exists_ok: bool) -> Result<u64>
where
    R: Record,
{
    let repeat = if exists_ok {
        None
    } else {
        first_repeat(target, conn)?
    };
    if let Some(repeat) = repeat {
        // The call fails: only a record before the repeat whose id is in the table can
        // fail first. Nothing is merged.
        let existing = existing_before(target, conn, repeat.index)?;
        let first = Conflict::first(Some(repeat), existing).unwrap_or(repeat);
        return Err(first.error(target.table()));
    }
    conn.batch_execute(&format!(
        "CREATE INDEX ON {} (id, ord DESC)",
        staging(target.table())
    ))
    .map_err(map)?;
    match merge_ranges(target, conn, exists_ok)? {
        (written, None) => Ok(written),
        (_, Some(conflict)) => Err(conflict.error(target.table())),
    }
}

/// The [`Conflict`] of the first staged record (in call order) before index `before` whose
/// id is in the table (any tenant's); `None` when none is.
fn existing_before<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    before: usize,
) -> Result<Option<Conflict>> {
    let found: Vec<Refused> = diesel::sql_query(format!(
        "SELECT s.id, s.ord FROM {} s JOIN {} t ON t.id = s.id WHERE s.ord < $1 \
         ORDER BY s.ord LIMIT 1",
        staging(target.table()),
        target.table().table_name()
    ))
    .bind::<BigInt, _>(i64::try_from(before).unwrap_or(i64::MAX))
    .load(conn)
    .map_err(map)?;
    Ok(found.into_iter().next().map(|r| Conflict {
        index: usize::try_from(r.ord).unwrap_or_default(),
        id: r.id,
        earlier: None,
    }))
}

/// A staged record: its id and index in the call.
#[derive(QueryableByName)]
struct Refused {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    ord: i64,
}

/// Without `exists_ok`: the [`Conflict`] of the second record of the first repeated id of
/// the staged records (by the index of the repeat); `None` when no id repeats.
fn first_repeat<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
) -> Result<Option<Conflict>> {
    let dups: Vec<DupRow> = diesel::sql_query(format!(
        "SELECT id, (array_agg(ord ORDER BY ord))[1] AS first, \
         (array_agg(ord ORDER BY ord))[2] AS second FROM {} \
         GROUP BY id HAVING count(*) > 1 ORDER BY second LIMIT 1",
        staging(target.table())
    ))
    .load(conn)
    .map_err(map)?;
    Ok(dups.into_iter().next().map(|d| Conflict {
        index: usize::try_from(d.second).unwrap_or_default(),
        id: d.id,
        earlier: Some(usize::try_from(d.first).unwrap_or_default()),
    }))
}

/// Writes one record of each staged id, [`MERGE_IDS`] ids a statement in id order (each
/// statement's work bounded, so that a call of any size stays under the statement
/// timeout; concurrent calls lock rows in one order): the last record of an id with
/// `exists_ok` (an upsert), else its only one (a repeat was refused before). Each statement reports the rows it wrote and, only when it wrote fewer
/// than its ids, the staged record with the smallest index among those of the ids it did
/// not write. Returns the rows written and the first such record.
fn merge_ranges<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    exists_ok: bool,
) -> Result<(u64, Option<Conflict>)> {
    let (staging, table) = (staging(target.table()), target.table().table_name());
    let cols = R::COLUMNS.join(", ");
    let on_conflict = target.shapes().on_conflict(R::COLUMNS, exists_ok);
    let order = if exists_ok { "DESC" } else { "ASC" };
    let range = |after: &str| {
        format!(
            "WITH chunk AS MATERIALIZED (SELECT DISTINCT ON (id) {cols} FROM {staging} {after}\
             ORDER BY id, ord {order} LIMIT {MERGE_IDS}), \
             written AS (INSERT INTO {table} ({cols}) SELECT {cols} FROM chunk ORDER BY id\
             {on_conflict} RETURNING id), \
             counts AS MATERIALIZED (SELECT (SELECT count(*) FROM written) AS n, \
             (SELECT count(*) FROM chunk) AS k, \
             (SELECT id FROM chunk ORDER BY id DESC LIMIT 1) AS last) \
             SELECT c.n, c.last, r.id AS refused, r.ord AS refused_at FROM counts c \
             LEFT JOIN LATERAL (SELECT s.id, s.ord FROM {staging} s WHERE c.n < c.k \
             AND s.id IN (SELECT id FROM chunk) AND s.id NOT IN (SELECT id FROM written) \
             ORDER BY s.ord LIMIT 1) r ON true"
        )
    };
    // Every staged record belongs to the connector's tenant (checked as it was staged); the
    // tenant's predicate says so to the planner too (and to a distributed PostgreSQL, which
    // routes by user_id).
    let (first, next) = (
        range("WHERE user_id = $1 "),
        range("WHERE user_id = $1 AND id > $2 "),
    );
    let user = target.scope().user_id();
    let (mut written, mut refused) = (0u64, None);
    let mut last: Option<Uuid> = None;
    loop {
        let query = diesel::sql_query(if last.is_none() { &first } else { &next })
            .bind::<diesel::sql_types::Uuid, _>(user);
        let rows: Vec<Merged> = match last {
            None => query.load(conn),
            Some(id) => query.bind::<diesel::sql_types::Uuid, _>(id).load(conn),
        }
        .map_err(map)?;
        let Some(m) = rows.into_iter().next() else {
            return Ok((written, refused));
        };
        written += u64::try_from(m.n).unwrap_or_default();
        if let (Some(id), Some(at)) = (m.refused, m.refused_at) {
            let index = usize::try_from(at).unwrap_or_default();
            let this = Conflict {
                index,
                id,
                earlier: None,
            };
            refused = Conflict::first(refused, Some(this));
        }
        match m.last {
            Some(id) => last = Some(id),
            None => return Ok((written, refused)),
        }
    }
}

/// Distinct ids merged by one statement of [`merge_ranges`].
const MERGE_IDS: usize = 50_000;

/// What one range of [`merge_ranges`] wrote, its last id (none when the range was empty),
/// and the first staged record of an id it did not write.
#[derive(QueryableByName)]
struct Merged {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    last: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    refused: Option<Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    refused_at: Option<i64>,
}

/// The staging table of bulk loads into `table` (`ord`, then the stored columns),
/// schema-qualified.
fn staging(table: TableType) -> &'static str {
    match table {
        TableType::RecallMemory => "pg_temp.memgpt_staging_messages",
        TableType::ArchivalMemory | TableType::Passages => "pg_temp.memgpt_staging_passages",
        TableType::Documents => "pg_temp.memgpt_staging_documents",
    }
}
