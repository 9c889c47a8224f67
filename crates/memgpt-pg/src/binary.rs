//! PostgreSQL's binary `COPY`: the stream's header and trailer, one row of a record's
//! binds, how embeddings are sent (`Layout`), and one `COPY … FROM STDIN` of a stream
//! into a table or its staging table (`copy_rows`).

use std::io::Write;

use diesel::pg::CopyFormat;
use diesel::result::Error as DieselError;
use diesel::{ExecuteCopyFromDsl, PgConnection};
use memgpt_core::TableType;

use crate::sql::Bind;

/// Bytes of binary COPY data encoded before they are sent as one `COPY`: records are
/// pulled from the caller's iterator between COPY statements, never during one, so the
/// iterator may read this store (on another pooled connection), and memory stays bounded.
pub(crate) const COPY_BYTES: usize = 8 * 1024 * 1024;

/// The writer callback handed to diesel's COPY.
type Feed<'a> = &'a dyn Fn(&mut dyn Write) -> Result<(), DieselError>;

/// Runs `COPY <table> FROM STDIN (FORMAT binary)` with the pieces `data` yields, one after
/// another (header, rows, trailer): into `table`'s staging table when `staged`, else into
/// the table itself. Returns the rows the server took.
pub(crate) fn copy_rows<'d, D>(
    table: TableType,
    staged: bool,
    conn: &mut PgConnection,
    data: impl Fn() -> D,
) -> Result<usize, DieselError>
where
    D: Iterator<Item = &'d [u8]>,
{
    use crate::schema::memgpt_staging_passages as sp;
    use crate::schema::{memgpt_archival_memory_agent as a, memgpt_passages as p};
    use crate::schema::{memgpt_documents as d, memgpt_recall_memory_agent as m};
    use crate::schema::{memgpt_staging_documents as sd, memgpt_staging_messages as sm};
    let feed: Feed<'_> = &|w: &mut dyn Write| {
        data()
            .try_for_each(|piece| w.write_all(piece))
            .map_err(|e| DieselError::SerializationError(Box::new(e)))
    };
    /// One diesel COPY into the `table!` `$t`.
    macro_rules! copy {
        ($t:ident) => {
            diesel::copy_from($t::table)
                .from_raw_data($t::table, feed)
                .with_format(CopyFormat::Binary)
                .execute(conn)
        };
    }
    match (table, staged) {
        (TableType::RecallMemory, true) => copy!(sm),
        (TableType::ArchivalMemory | TableType::Passages, true) => copy!(sp),
        (TableType::Documents, true) => copy!(sd),
        (TableType::RecallMemory, false) => copy!(m),
        (TableType::ArchivalMemory, false) => copy!(a),
        (TableType::Passages, false) => copy!(p),
        (TableType::Documents, false) => copy!(d),
    }
}

/// How a table stores embeddings, and so how COPY sends them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Layout {
    /// pgvector's `vector`: its binary format.
    Vector,
    /// `real[]`, or no embedding column: float4 arrays.
    Floats,
    /// Another type: staged as `real[]` for the server's assignment cast, never sent
    /// straight to the table.
    Cast,
}

impl Layout {
    /// The layout of an `embedding` column as `direct.rs`'s query names its type
    /// (`vector` for pgvector's, `real[]`, empty for no column).
    pub(crate) fn of(name: &str) -> Layout {
        match name {
            "vector" => Layout::Vector,
            "real[]" | "" => Layout::Floats,
            _ => Layout::Cast,
        }
    }
}

/// Binary COPY's fixed header: signature, flags, header extension length.
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// OID of `float4`, the element type of embedding arrays.
const FLOAT4_OID: i32 = 700;

fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

fn null(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i32).to_be_bytes());
}

/// Appends one value in PostgreSQL's binary format; embeddings as `layout` says.
fn encode(buf: &mut Vec<u8>, b: &Bind, layout: Layout) {
    match b {
        Bind::Text(Some(s)) => field(buf, s.as_bytes()),
        Bind::Uuid(Some(u)) => field(buf, u.as_bytes()),
        Bind::Time(t) => field(
            buf,
            &(t.timestamp_micros() - PG_EPOCH_OFFSET_US).to_be_bytes(),
        ),
        Bind::Int(Some(i)) => field(buf, &i.to_be_bytes()),
        Bind::Json(Some(v)) => field(buf, v.0.as_bytes()),
        Bind::Floats(Some(v)) if layout == Layout::Vector => vector(buf, v),
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
        Bind::Vector(v) => vector(buf, v.as_slice()),
        Bind::Text(None)
        | Bind::Uuid(None)
        | Bind::Int(None)
        | Bind::Json(None)
        | Bind::Floats(None) => null(buf),
    }
}

/// Appends pgvector's binary `vector`: dimensions, an unused word, each float4.
fn vector(buf: &mut Vec<u8>, v: &[f32]) {
    buf.extend_from_slice(&((4 + v.len() * 4) as i32).to_be_bytes());
    buf.extend_from_slice(&(v.len() as i16).to_be_bytes());
    buf.extend_from_slice(&0i16.to_be_bytes());
    for x in v {
        buf.extend_from_slice(&x.to_be_bytes());
    }
}

/// Starts a binary COPY stream.
pub(crate) fn header(buf: &mut Vec<u8>) {
    buf.extend_from_slice(HEADER);
}

/// Appends one row: its index in the batch first when `ord` is given (a staging row),
/// then its values.
pub(crate) fn row(buf: &mut Vec<u8>, ord: Option<usize>, binds: &[Bind], layout: Layout) {
    let count = binds.len() + usize::from(ord.is_some());
    buf.extend_from_slice(&(count as i16).to_be_bytes());
    if let Some(index) = ord {
        field(buf, &(index as i64).to_be_bytes());
    }
    for b in binds {
        encode(buf, b, layout);
    }
}

/// Appends the staging row of `stored`, a row [`row`] encoded without its index.
pub(crate) fn staged_row(buf: &mut Vec<u8>, ord: usize, stored: &[u8]) {
    let count = i16::from_be_bytes([stored[0], stored[1]]) + 1;
    buf.extend_from_slice(&count.to_be_bytes());
    field(buf, &(ord as i64).to_be_bytes());
    buf.extend_from_slice(&stored[2..]);
}

/// Ends a binary COPY stream.
pub(crate) fn trailer(buf: &mut Vec<u8>) {
    buf.extend_from_slice(&(-1i16).to_be_bytes());
}
