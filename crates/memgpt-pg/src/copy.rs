//! Bulk loads: binary `COPY` into a temporary staging table, then one
//! `INSERT … SELECT … ON CONFLICT` into the real table.
//!
//! COPY has no `ON CONFLICT`, so records are streamed into a staging table that lives until
//! the transaction ends; the staging rows carry their index in the batch (`ord`), which
//! finds repeated ids (the last wins, or [`Error::DuplicateId`] names both) without holding
//! the batch in memory. Records are encoded as they are pulled from the caller's iterator
//! and sent in COPY statements of a few MiB each: memory stays flat however many there are.

use std::io::Write;

use diesel::pg::CopyFormat;
use diesel::result::Error as DieselError;
use diesel::ExecuteCopyFromDsl;
use diesel::PgConnection;

use crate::sql::Bind;

/// Binary COPY's fixed header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// OID of `float4`, the element type of embedding arrays.
const FLOAT4_OID: i32 = 700;

/// The staging tables, one per record shape. Created per transaction (`ON COMMIT DROP`).
pub(crate) mod staging {
    diesel::table! {
        use diesel::sql_types::*;
        memgpt_staging_messages (ord) {
            ord -> Int8,
            id -> Uuid,
            user_id -> Uuid,
            agent_id -> Uuid,
            role -> Text,
            text -> Nullable<Text>,
            model -> Nullable<Text>,
            name -> Nullable<Text>,
            tool_calls -> Nullable<Json>,
            tool_call_id -> Nullable<Text>,
            embedding -> Nullable<Array<Float4>>,
            embedding_dim -> Nullable<Int8>,
            embedding_model -> Nullable<Text>,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        memgpt_staging_passages (ord) {
            ord -> Int8,
            id -> Uuid,
            user_id -> Uuid,
            text -> Nullable<Text>,
            doc_id -> Nullable<Uuid>,
            agent_id -> Nullable<Uuid>,
            data_source -> Nullable<Text>,
            embedding -> Nullable<Array<Float4>>,
            embedding_dim -> Nullable<Int8>,
            embedding_model -> Nullable<Text>,
            metadata_ -> Nullable<Json>,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        use diesel::sql_types::*;
        memgpt_staging_documents (ord) {
            ord -> Int8,
            id -> Uuid,
            user_id -> Uuid,
            text -> Nullable<Text>,
            data_source -> Nullable<Text>,
            metadata_ -> Nullable<Json>,
            created_at -> Timestamptz,
        }
    }
}

/// The writer callback handed to diesel's COPY.
pub(crate) type Feed<'a> = &'a dyn Fn(&mut dyn Write) -> Result<(), DieselError>;

/// Runs `COPY <staging> FROM STDIN (FORMAT binary)` fed by `feed`.
pub(crate) fn copy_messages(conn: &mut PgConnection, feed: Feed<'_>) -> Result<usize, DieselError> {
    use staging::memgpt_staging_messages::table;
    diesel::copy_from(table)
        .from_raw_data(table, feed)
        .with_format(CopyFormat::Binary)
        .execute(conn)
}

/// As [`copy_messages`], for passages.
pub(crate) fn copy_passages(conn: &mut PgConnection, feed: Feed<'_>) -> Result<usize, DieselError> {
    use staging::memgpt_staging_passages::table;
    diesel::copy_from(table)
        .from_raw_data(table, feed)
        .with_format(CopyFormat::Binary)
        .execute(conn)
}

/// As [`copy_messages`], for documents.
pub(crate) fn copy_documents(
    conn: &mut PgConnection,
    feed: Feed<'_>,
) -> Result<usize, DieselError> {
    use staging::memgpt_staging_documents::table;
    diesel::copy_from(table)
        .from_raw_data(table, feed)
        .with_format(CopyFormat::Binary)
        .execute(conn)
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
        Bind::Json(Some(v)) => field(buf, v.to_string().as_bytes()),
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
