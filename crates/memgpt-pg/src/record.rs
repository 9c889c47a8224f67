//! How each record type maps onto its PostgreSQL table (MemGPT's column types).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::QueryableByName;
use memgpt_core::{
    Document, Embedding, Error, Message, Passage, Record, Role, TableType, ToolCall,
    MAX_EMBEDDING_DIM,
};
use uuid::Uuid;

use crate::error::corrupt;
use crate::sql::{Bind, Sql};
use crate::store::PgStore;
use diesel::PgConnection;
use memgpt_core::backend::Stores;
use memgpt_core::Scoped;

/// How a record decodes from its row and where its bulk loads are staged; the rest of its
/// mapping is its [`Stores`](memgpt_core::backend::Stores) impl below.
pub(crate) trait PgRow: Sized {
    /// The row as read from the table.
    type Row: QueryableByName<Pg> + 'static;
    /// The staging table of bulk loads (`ord`, then the stored columns), schema-qualified.
    const STAGING: &'static str;
    /// Runs the binary COPY into the staging table.
    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error>;
    /// Decodes a row.
    fn from_row(row: Self::Row, table: TableType) -> Result<Self, Error>;
}

fn text(s: Option<&str>) -> Bind {
    Bind::Text(s.map(str::to_owned))
}

fn dim(d: Option<usize>) -> Bind {
    Bind::Int(d.map(|d| i64::try_from(d).unwrap_or(i64::MAX)))
}

/// MemGPT's storage: the embedding zero-padded to 4096.
fn padded(e: Option<&Embedding>) -> Bind {
    Bind::Floats(e.map(|e| e.padded(MAX_EMBEDDING_DIM)))
}

fn unpad(t: &str, v: Option<Vec<f32>>, dim: Option<i64>) -> Result<Option<Vec<f32>>, Error> {
    v.map(|v| {
        let dim = dim.map(|d| usize::try_from(d).unwrap_or(usize::MAX));
        Embedding::from_padded(v, dim)
            .map(Vec::from)
            .map_err(|e| corrupt(t, "embedding", e))
    })
    .transpose()
}

fn built<T>(table: TableType, r: Result<T, Error>) -> Result<T, Error> {
    r.map_err(|e| corrupt(table.table_name(), "row", e))
}

fn created(t: &str, v: Option<DateTime<Utc>>) -> Result<DateTime<Utc>, Error> {
    v.ok_or_else(|| corrupt(t, "created_at", "NULL"))
}

fn metadata(
    t: &str,
    v: Option<serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(m)) => Ok(m),
        Some(other) => Err(corrupt(t, "metadata_", format!("not an object: {other}"))),
    }
}

/// A row of `memgpt_recall_memory_agent`.
#[doc(hidden)]
#[derive(QueryableByName)]
#[diesel(table_name = crate::schema::memgpt_recall_memory_agent, check_for_backend(Pg))]
pub struct MessageRow {
    id: Uuid,
    user_id: Uuid,
    agent_id: Uuid,
    role: String,
    text: Option<String>,
    model: Option<String>,
    name: Option<String>,
    tool_calls: Option<serde_json::Value>,
    tool_call_id: Option<String>,
    embedding: Option<Vec<f32>>,
    embedding_dim: Option<i64>,
    embedding_model: Option<String>,
    created_at: Option<DateTime<Utc>>,
}

impl Stores<Message> for PgStore {
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_recall_memory_agent: id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model, created_at);
    const SELECT: &'static str = "id, user_id, agent_id, role, text, model, name, tool_calls, \
        tool_call_id, embedding::real[] AS embedding, embedding_dim, embedding_model, created_at";

    fn binds(record: &Message) -> Vec<Bind> {
        vec![
            Bind::Uuid(Some(record.id())),
            Bind::Uuid(Some(record.user_id())),
            Bind::Uuid(record.agent_id()),
            Bind::Text(Some(record.role().as_str().to_owned())),
            text(Record::text(record)),
            text(record.model()),
            text(record.name()),
            Bind::Json(
                record
                    .tool_calls()
                    .and_then(|c| serde_json::to_value(c).ok()),
            ),
            text(record.tool_call_id()),
            padded(record.embedding()),
            dim(record.embedding_dim()),
            text(record.embedding_model()),
            Bind::Time(record.created_at()),
        ]
    }

    fn load(conn: &mut PgConnection, sql: Sql, table: TableType) -> Result<Vec<Message>, Error> {
        crate::backend::load(conn, sql, table)
    }

    fn bulk_insert(
        &self,
        target: &Scoped<PgStore, Message>,
        conn: &mut PgConnection,
        records: &mut dyn Iterator<Item = (usize, Message)>,
        exists_ok: bool,
    ) -> Option<Result<u64, Error>> {
        Some(crate::copy::copy_many(target, conn, records, exists_ok))
    }
}

impl PgRow for Message {
    type Row = MessageRow;
    const STAGING: &'static str = "pg_temp.memgpt_staging_messages";

    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error> {
        crate::copy::copy_messages(conn, feed)
    }

    fn from_row(r: MessageRow, table: TableType) -> Result<Self, Error> {
        let t = table.table_name();
        let role: Role = r.role.parse().map_err(|e| corrupt(t, "role", e))?;
        let mut b = Message::builder(r.user_id, r.agent_id, role)
            .id(r.id)
            .maybe_text(r.text)
            .created_at(created(t, r.created_at)?)
            .embedding_model(r.embedding_model)
            .maybe_model(r.model)
            .maybe_name(r.name)
            .maybe_tool_call_id(r.tool_call_id);
        if let Some(json) = r.tool_calls.filter(|j| !j.is_null()) {
            let calls: Vec<ToolCall> =
                serde_json::from_value(json).map_err(|e| corrupt(t, "tool_calls", e))?;
            b = b.tool_calls(calls);
        }
        if let Some(e) = unpad(t, r.embedding, r.embedding_dim)? {
            b = b.embedding_values(e);
        }
        built(table, b.build())
    }
}

/// A row of `memgpt_archival_memory_agent` or `memgpt_passages`.
#[doc(hidden)]
#[derive(QueryableByName)]
#[diesel(table_name = crate::schema::memgpt_passages, check_for_backend(Pg))]
pub struct PassageRow {
    id: Uuid,
    user_id: Uuid,
    text: Option<String>,
    doc_id: Option<Uuid>,
    agent_id: Option<Uuid>,
    data_source: Option<String>,
    embedding: Option<Vec<f32>>,
    embedding_dim: Option<i64>,
    embedding_model: Option<String>,
    metadata_: Option<serde_json::Value>,
    created_at: Option<DateTime<Utc>>,
}

impl Stores<Passage> for PgStore {
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_passages: id, user_id, text, doc_id, agent_id, data_source, embedding, embedding_dim, embedding_model, metadata_, created_at);
    /// The embedding from `embedding_compact` (migration 000006, stored with the row) where
    /// the server filled it, else MemGPT's padded column.
    const SELECT: &'static str = "id, user_id, text, doc_id, agent_id, data_source, \
        COALESCE(embedding_compact,embedding)::real[] AS embedding, embedding_dim, embedding_model, metadata_, created_at";

    fn binds(record: &Passage) -> Vec<Bind> {
        vec![
            Bind::Uuid(Some(record.id())),
            Bind::Uuid(Some(record.user_id())),
            text(Record::text(record)),
            Bind::Uuid(record.doc_id()),
            Bind::Uuid(record.agent_id()),
            text(record.data_source()),
            padded(record.embedding()),
            dim(record.embedding_dim()),
            text(record.embedding_model()),
            Bind::Json(Some(serde_json::Value::Object(record.metadata().clone()))),
            Bind::Time(record.created_at()),
        ]
    }

    fn load(conn: &mut PgConnection, sql: Sql, table: TableType) -> Result<Vec<Passage>, Error> {
        crate::backend::load(conn, sql, table)
    }

    fn bulk_insert(
        &self,
        target: &Scoped<PgStore, Passage>,
        conn: &mut PgConnection,
        records: &mut dyn Iterator<Item = (usize, Passage)>,
        exists_ok: bool,
    ) -> Option<Result<u64, Error>> {
        Some(crate::copy::copy_many(target, conn, records, exists_ok))
    }
}

impl PgRow for Passage {
    type Row = PassageRow;
    const STAGING: &'static str = "pg_temp.memgpt_staging_passages";

    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error> {
        crate::copy::copy_passages(conn, feed)
    }

    fn from_row(r: PassageRow, table: TableType) -> Result<Self, Error> {
        let t = table.table_name();
        let mut b = Passage::builder(r.user_id, r.text.unwrap_or_default())
            .id(r.id)
            .metadata(metadata(t, r.metadata_)?)
            .created_at(created(t, r.created_at)?);
        if let Some(a) = r.agent_id {
            b = b.agent_id(a);
        }
        if let Some(d) = r.doc_id {
            b = b.doc_id(d);
        }
        if let Some(s) = r.data_source {
            b = b.data_source(s);
        }
        if let Some(e) = unpad(t, r.embedding, r.embedding_dim)? {
            b = b.embedding_values(e);
        }
        if let Some(m) = r.embedding_model {
            b = b.embedding_model(m);
        }
        built(table, b.build())
    }
}

/// A row of `memgpt_documents`.
#[doc(hidden)]
#[derive(QueryableByName)]
#[diesel(table_name = crate::schema::memgpt_documents, check_for_backend(Pg))]
pub struct DocumentRow {
    id: Uuid,
    user_id: Uuid,
    text: Option<String>,
    data_source: Option<String>,
    metadata_: Option<serde_json::Value>,
    created_at: Option<DateTime<Utc>>,
}

impl Stores<Document> for PgStore {
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_documents: id, user_id, text, data_source, metadata_, created_at);
    const SELECT: &'static str = "id, user_id, text, data_source, metadata_, created_at";

    fn binds(record: &Document) -> Vec<Bind> {
        vec![
            Bind::Uuid(Some(record.id())),
            Bind::Uuid(Some(record.user_id())),
            text(Record::text(record)),
            text(record.data_source()),
            Bind::Json(Some(serde_json::Value::Object(record.metadata().clone()))),
            Bind::Time(record.created_at()),
        ]
    }

    fn load(conn: &mut PgConnection, sql: Sql, table: TableType) -> Result<Vec<Document>, Error> {
        crate::backend::load(conn, sql, table)
    }

    fn bulk_insert(
        &self,
        target: &Scoped<PgStore, Document>,
        conn: &mut PgConnection,
        records: &mut dyn Iterator<Item = (usize, Document)>,
        exists_ok: bool,
    ) -> Option<Result<u64, Error>> {
        Some(crate::copy::copy_many(target, conn, records, exists_ok))
    }
}

impl PgRow for Document {
    type Row = DocumentRow;
    const STAGING: &'static str = "pg_temp.memgpt_staging_documents";

    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error> {
        crate::copy::copy_documents(conn, feed)
    }

    fn from_row(r: DocumentRow, table: TableType) -> Result<Self, Error> {
        let t = table.table_name();
        let mut b = Document::builder(r.user_id, r.text.unwrap_or_default())
            .id(r.id)
            .metadata(metadata(t, r.metadata_)?)
            .created_at(created(t, r.created_at)?);
        if let Some(s) = r.data_source {
            b = b.data_source(s);
        }
        built(table, b.build())
    }
}
