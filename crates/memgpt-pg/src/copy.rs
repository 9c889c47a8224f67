//! Bulk loads: binary `COPY` into a temporary staging table, then `INSERT … SELECT … ON
//! CONFLICT` into the real table, in id ranges of bounded size.
//!
//! COPY has no `ON CONFLICT`, so records are streamed into a staging table that lives until
//! the transaction ends; the staging rows carry their index in the batch (`ord`), which
//! finds repeated ids (the last wins, or [`Error::DuplicateId`] names both) without holding
//! the batch in memory. Records are encoded as they are pulled from the caller's iterator
//! and sent in COPY statements of a few MiB each: memory stays flat however many there are.

use std::io::Write;

use diesel::connection::SimpleConnection;
use diesel::pg::CopyFormat;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use diesel::{Connection, ExecuteCopyFromDsl, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Result};
use uuid::Uuid;

use crate::error::map;
use crate::sql::{Bind, Sql};
use crate::store::PgStore;
use memgpt_core::backend::Backend;
use memgpt_core::row::Id;
use memgpt_core::statement::{Param, Statement};
use memgpt_core::Scoped;
use memgpt_core::{Record, TableType};
use memgpt_migrate::rows::Count;

/// Bytes of binary COPY data encoded before they are sent as one `COPY`: records are
/// pulled from the caller's iterator between COPY statements, never during one, so the
/// iterator may read this store (on another pooled connection), and memory stays bounded.
const COPY_BYTES: usize = 8 * 1024 * 1024;

#[derive(QueryableByName)]
struct DupRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = BigInt)]
    first: i64,
    #[diesel(sql_type = BigInt)]
    second: i64,
}

/// The bulk path: binary COPY of every record into the staging table, then `INSERT …
/// SELECT` (the last record of each id) into the table, 50,000 ids a statement.
pub(crate) fn copy_many<R>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    exists_ok: bool,
) -> Result<u64>
where
    R: Record,
{
    // The staging table has the columns the connector reads, in the same order, from the
    // table itself: `ord`, then the select list (embeddings as real[]).
    // A staging table of this name on the session would mean another bulk call of this
    // connection under way (a call holds its connection from start to end, so none is):
    // creating it fails rather than take that call's rows. It is dropped when the call
    // ends (a unit of work may make more bulk calls), on rollback with the savepoint, and
    // at the latest with the transaction.
    let ddl = format!(
        "CREATE TEMP TABLE {staging} ON COMMIT DROP AS \
         SELECT 0::bigint AS ord, {select} FROM {table} WITH NO DATA;",
        staging = staging(target.table()),
        select = PgStore::select(target.table()),
        table = target.table().table_name(),
    );
    conn.batch_execute(&ddl).map_err(map)?;
    let mut buf = Vec::with_capacity(COPY_BYTES + 64 * 1024);
    loop {
        buf.clear();
        header(&mut buf);
        let mut rows = 0usize;
        let mut more = true;
        while buf.len() < COPY_BYTES {
            let Some(one) = records.next() else {
                more = false;
                break;
            };
            target.check_owners([&one])?;
            row(&mut buf, one.0, &one.1.values::<PgStore>(target.table()));
            rows += 1;
        }
        trailer(&mut buf);
        if rows > 0 {
            let data = &buf;
            copy_into(target.table(), conn, &|w: &mut dyn Write| {
                w.write_all(data)
                    .map_err(|e| DieselError::SerializationError(Box::new(e)))
            })
            .map_err(map)?;
        }
        if !more {
            break;
        }
    }
    drop(buf);
    let merged = merge(target, conn, exists_ok)?;
    conn.batch_execute(&format!("DROP TABLE {}", staging(target.table())))
        .map_err(map)?;
    Ok(merged)
}

/// Moves the staged records into the table: the last record of each id, upserted with
/// `exists_ok`; the first repeated id is [`Error::DuplicateId`] without.
fn merge<R>(target: &Scoped<PgStore, R>, conn: &mut PgConnection, exists_ok: bool) -> Result<u64>
where
    R: Record,
{
    let staging = staging(target.table());
    if !exists_ok {
        if let Some(e) = first_repeat(target, conn)? {
            return Err(e);
        }
    }
    let distinct: Vec<Count> =
        diesel::sql_query(format!("SELECT count(DISTINCT id) AS n FROM {staging}"))
            .load(conn)
            .map_err(map)?;
    let distinct = distinct.first().map_or(0, |c| c.n.max(0) as usize);
    // In ranges of MERGE_IDS ids, in id order (concurrent calls lock rows in one order):
    // each statement's work is bounded, so a call of any size stays under the
    // statement timeout, which a single merge of 1,000,000 rows exceeded.
    conn.batch_execute(&format!("CREATE INDEX ON {staging} (id, ord DESC)"))
        .map_err(map)?;
    match merge_ranges(target, conn, exists_ok) {
        Ok(n) if n == distinct => Ok(n as u64),
        Ok(_) => Err(staged_existing(target, conn, true)?),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(staged_existing(target, conn, false)?)
        }
        Err(e) => Err(map(e)),
    }
}

/// Without `exists_ok`: the error of the first repeated id of the staged records, by the
/// index of its repeat — [`Error::AlreadyExists`] when a record before the repeat has an id
/// in the table, else [`Error::DuplicateId`] naming both; `None` when no id repeats.
fn first_repeat<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
) -> Result<Option<Error>> {
    let dups: Vec<DupRow> = diesel::sql_query(format!(
        "SELECT id, (array_agg(ord ORDER BY ord))[1] AS first, \
         (array_agg(ord ORDER BY ord))[2] AS second FROM {} \
         GROUP BY id HAVING count(*) > 1 ORDER BY second LIMIT 1",
        staging(target.table())
    ))
    .load(conn)
    .map_err(map)?;
    let Some(d) = dups.into_iter().next() else {
        return Ok(None);
    };
    // A record before the repeat whose id is in the table fails first.
    if let Some(id) = staged_existing_before(target, conn, d.second)? {
        return Ok(Some(Error::AlreadyExists {
            table: target.table(),
            id,
        }));
    }
    Ok(Some(Error::DuplicateId {
        id: d.id,
        first: usize::try_from(d.first).unwrap_or_default(),
        second: usize::try_from(d.second).unwrap_or_default(),
    }))
}

/// Writes the last staged record of each id, [`MERGE_IDS`] ids a statement in id order, in
/// a savepoint (a unique violation without `exists_ok` leaves the transaction usable to
/// name the id); returns the rows written.
fn merge_ranges<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    exists_ok: bool,
) -> std::result::Result<usize, DieselError> {
    let (staging, table) = (staging(target.table()), target.table().table_name());
    let cols = R::COLUMNS.join(", ");
    let upsert = if exists_ok {
        target.shapes().upsert_clause(R::COLUMNS)
    } else {
        String::new()
    };
    let range = |after: &str| {
        format!(
            "WITH chunk AS MATERIALIZED (SELECT DISTINCT ON (id) {cols} FROM {staging} {after}\
             ORDER BY id, ord DESC LIMIT {MERGE_IDS}), \
             written AS (INSERT INTO {table} ({cols}) SELECT {cols} FROM chunk ORDER BY id{upsert} \
             RETURNING 1) \
             SELECT (SELECT count(*) FROM written) AS n, \
             (SELECT id FROM chunk ORDER BY id DESC LIMIT 1) AS last"
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
    conn.transaction(|c| {
        let mut written = 0usize;
        let mut last: Option<Uuid> = None;
        loop {
            let rows: Vec<Merged> = match last {
                None => diesel::sql_query(&first)
                    .bind::<diesel::sql_types::Uuid, _>(user)
                    .load(c)?,
                Some(id) => diesel::sql_query(&next)
                    .bind::<diesel::sql_types::Uuid, _>(user)
                    .bind::<diesel::sql_types::Uuid, _>(id)
                    .load(c)?,
            };
            let Some(m) = rows.into_iter().next() else {
                return Ok(written);
            };
            written += usize::try_from(m.n).unwrap_or_default();
            match m.last {
                Some(id) => last = Some(id),
                None => return Ok(written),
            }
        }
    })
}

/// Distinct ids merged by one statement of [`merge_ranges`].
const MERGE_IDS: usize = 50_000;

/// What one range of [`merge_ranges`] wrote, and its last id (none when the range was empty).
#[derive(QueryableByName)]
struct Merged {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    last: Option<Uuid>,
}

/// The [`Error::AlreadyExists`] naming the first staged record (in batch order) whose id
/// exists already (only under another tenant when `foreign`).
fn staged_existing<R>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    foreign: bool,
) -> Result<Error>
where
    R: Record,
{
    let table = target.table();
    let t = table.table_name();
    let owner = if !foreign {
        ""
    } else if table.is_agent_scoped() {
        " AND NOT (t.user_id = s.user_id AND t.agent_id IS NOT DISTINCT FROM s.agent_id)"
    } else {
        " AND t.user_id <> s.user_id"
    };
    let mut sql: Sql = Statement::new(format!(
        "SELECT s.id FROM {} s JOIN {t} t ON t.id = s.id WHERE true{owner} ORDER BY s.ord LIMIT 1",
        staging(table)
    ));
    sql.once();
    let id = PgStore::fetch::<Id>(conn, sql, table)?
        .first()
        .map(|r| r.0)
        .ok_or_else(|| Error::database("bulk insert wrote fewer rows than given"))?;
    Ok(Error::AlreadyExists { table, id })
}

/// The first staged record (in batch order) before index `before` whose id is in the table.
fn staged_existing_before<R>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    before: i64,
) -> Result<Option<Uuid>>
where
    R: Record,
{
    let mut sql: Sql = Statement::new(format!(
        "SELECT s.id FROM {} s JOIN {} t ON t.id = s.id WHERE s.ord < ",
        staging(target.table()),
        target.table().table_name()
    ));
    sql.param(Param::Int(Some(before)))
        .push(" ORDER BY s.ord LIMIT 1")
        .once();
    let rows = PgStore::fetch::<Id>(conn, sql, target.table())?;
    Ok(rows.first().map(|r| r.0))
}

/// Binary COPY's fixed header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// OID of `float4`, the element type of embedding arrays.
const FLOAT4_OID: i32 = 700;

/// The writer callback handed to diesel's COPY.
type Feed<'a> = &'a dyn Fn(&mut dyn Write) -> Result<(), DieselError>;

/// The staging table of bulk loads into `table` (`ord`, then the stored columns),
/// schema-qualified.
fn staging(table: TableType) -> &'static str {
    match table {
        TableType::RecallMemory => "pg_temp.memgpt_staging_messages",
        TableType::ArchivalMemory | TableType::Passages => "pg_temp.memgpt_staging_passages",
        TableType::Documents => "pg_temp.memgpt_staging_documents",
    }
}

/// Runs `COPY <staging of table> FROM STDIN (FORMAT binary)` fed by `feed`.
fn copy_into(
    table: TableType,
    conn: &mut PgConnection,
    feed: Feed<'_>,
) -> Result<usize, DieselError> {
    use crate::schema::memgpt_staging_passages as p;
    use crate::schema::{memgpt_staging_documents as d, memgpt_staging_messages as m};
    match table {
        TableType::RecallMemory => diesel::copy_from(m::table)
            .from_raw_data(m::table, feed)
            .with_format(CopyFormat::Binary)
            .execute(conn),
        TableType::ArchivalMemory | TableType::Passages => diesel::copy_from(p::table)
            .from_raw_data(p::table, feed)
            .with_format(CopyFormat::Binary)
            .execute(conn),
        TableType::Documents => diesel::copy_from(d::table)
            .from_raw_data(d::table, feed)
            .with_format(CopyFormat::Binary)
            .execute(conn),
    }
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

/// Appends one value in PostgreSQL's binary format.
fn encode(buf: &mut Vec<u8>, b: &Bind) {
    match b {
        Bind::Text(Some(s)) => field(buf, s.as_bytes()),
        Bind::Uuid(Some(u)) => field(buf, u.as_bytes()),
        Bind::Time(t) => field(
            buf,
            &(t.timestamp_micros() - PG_EPOCH_OFFSET_US).to_be_bytes(),
        ),
        Bind::Int(Some(i)) => field(buf, &i.to_be_bytes()),
        Bind::Json(Some(v)) => field(buf, v.0.as_bytes()),
        Bind::Floats(Some(v)) => {
            // One-dimensional float4 array: ndim, has-null flag, element type, length,
            // lower bound, then each element's length and value.
            let len = 20 + v.len() * 8;
            buf.extend_from_slice(&(len as i32).to_be_bytes());
            for h in [1, 0, FLOAT4_OID, v.len() as i32, 1] {
                buf.extend_from_slice(&h.to_be_bytes());
            }
            for x in v {
                buf.extend_from_slice(&4i32.to_be_bytes());
                buf.extend_from_slice(&x.to_be_bytes());
            }
        }
        Bind::Vector(v) => {
            let s = v.as_slice();
            let mut bytes = Vec::with_capacity(4 + s.len() * 4);
            bytes.extend_from_slice(&(s.len() as i16).to_be_bytes());
            bytes.extend_from_slice(&0i16.to_be_bytes());
            for x in s {
                bytes.extend_from_slice(&x.to_be_bytes());
            }
            field(buf, &bytes);
        }
        Bind::Text(None)
        | Bind::Uuid(None)
        | Bind::Int(None)
        | Bind::Json(None)
        | Bind::Floats(None) => null(buf),
    }
}

/// Starts a binary COPY stream.
pub(crate) fn header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(HEADER);
}

/// Appends one staging row: its index in the batch, then its values.
pub(crate) fn row(buf: &mut Vec<u8>, index: usize, binds: &[Bind]) {
    buf.extend_from_slice(&((binds.len() + 1) as i16).to_be_bytes());
    field(buf, &(index as i64).to_be_bytes());
    for b in binds {
        encode(buf, b);
    }
}

/// Ends a binary COPY stream.
pub(crate) fn trailer(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i16).to_be_bytes());
}
