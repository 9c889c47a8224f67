//! How each record type maps onto its PostgreSQL table (MemGPT's column types).

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::sql_types::{Array, BigInt, Float4, Json, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use memgpt_core::{
    Document, Embedding, Error, Message, Passage, Record, Role, TableType, ToolCall,
    MAX_EMBEDDING_DIM,
};
use uuid::Uuid;

use crate::error::corrupt;
use crate::sql::Bind;

mod sealed {
    pub trait Sealed {}
    impl Sealed for memgpt_core::Message {}
    impl Sealed for memgpt_core::Passage {}
    impl Sealed for memgpt_core::Document {}
}

/// A record type the PostgreSQL backend stores: [`Message`], [`Passage`] or [`Document`].
/// Sealed: its items are the backend's own.
pub trait PgRecord: Record + sealed::Sealed {
    /// The row as read from the table.
    #[doc(hidden)]
    type Row: QueryableByName<Pg> + 'static;
    /// The stored columns, in the order of [`binds`](Self::binds).
    #[doc(hidden)]
    const COLUMNS: &'static [&'static str];
    /// The select list (embeddings read as `real[]`, whatever the column's type).
    #[doc(hidden)]
    const SELECT: &'static str;
    /// The staging table of bulk loads (`ord` then [`COLUMNS`](Self::COLUMNS)).
    #[doc(hidden)]
    const STAGING: &'static str;
    /// Creates the staging table for this transaction.
    #[doc(hidden)]
    const STAGING_DDL: &'static str;
    /// Runs the binary COPY into the staging table.
    #[doc(hidden)]
    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error>;
    /// The values of [`COLUMNS`](Self::COLUMNS).
    #[doc(hidden)]
    fn binds(&self) -> Vec<Bind>;
    /// Decodes a row.
    #[doc(hidden)]
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
pub struct MessageRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    user_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    agent_id: Uuid,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Nullable<Text>)]
    text: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    model: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = Nullable<Json>)]
    tool_calls: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Text>)]
    tool_call_id: Option<String>,
    #[diesel(sql_type = Nullable<Array<Float4>>)]
    embedding: Option<Vec<f32>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    embedding_dim: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    embedding_model: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
}

impl PgRecord for Message {
    type Row = MessageRow;
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "user_id",
        "agent_id",
        "role",
        "text",
        "model",
        "name",
        "tool_calls",
        "tool_call_id",
        "embedding",
        "embedding_dim",
        "embedding_model",
        "created_at",
    ];
    const SELECT: &'static str = "id, user_id, agent_id, role, text, model, name, tool_calls, \
        tool_call_id, embedding::real[] AS embedding, embedding_dim, embedding_model, created_at";
    const STAGING: &'static str = "memgpt_staging_messages";
    const STAGING_DDL: &'static str = "DROP TABLE IF EXISTS pg_temp.memgpt_staging_messages; \
        CREATE TEMP TABLE memgpt_staging_messages (ord bigint, id uuid, user_id uuid, \
        agent_id uuid, role varchar, text varchar, model varchar, name varchar, tool_calls json, \
        tool_call_id varchar, embedding real[], embedding_dim bigint, embedding_model varchar, \
        created_at timestamptz) ON COMMIT DROP;";

    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error> {
        crate::copy::copy_messages(conn, feed)
    }

    fn binds(&self) -> Vec<Bind> {
        vec![
            Bind::Uuid(Some(self.id())),
            Bind::Uuid(Some(self.user_id())),
            Bind::Uuid(self.agent_id()),
            Bind::Text(Some(self.role().as_str().to_owned())),
            text(Record::text(self)),
            text(self.model()),
            text(self.name()),
            Bind::Json(self.tool_calls().and_then(|c| serde_json::to_value(c).ok())),
            text(self.tool_call_id()),
            padded(self.embedding()),
            dim(self.embedding_dim()),
            text(self.embedding_model()),
            Bind::Time(self.created_at()),
        ]
    }

    fn from_row(r: MessageRow, table: TableType) -> Result<Self, Error> {
        let t = table.table_name();
        let role: Role = r.role.parse().map_err(|e| corrupt(t, "role", e))?;
        let mut b = Message::builder(r.user_id, r.agent_id, role)
            .id(r.id)
            .maybe_text(r.text)
            .created_at(created(t, r.created_at)?)
            .embedding_model(r.embedding_model);
        if let Some(m) = r.model {
            b = b.model(m);
        }
        if let Some(n) = r.name {
            b = b.name(n);
        }
        if let Some(id) = r.tool_call_id {
            b = b.tool_call_id(id);
        }
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
pub struct PassageRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    user_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    text: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    doc_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    agent_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    data_source: Option<String>,
    #[diesel(sql_type = Nullable<Array<Float4>>)]
    embedding: Option<Vec<f32>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    embedding_dim: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    embedding_model: Option<String>,
    #[diesel(sql_type = Nullable<Json>)]
    metadata_: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
}

impl PgRecord for Passage {
    type Row = PassageRow;
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "user_id",
        "text",
        "doc_id",
        "agent_id",
        "data_source",
        "embedding",
        "embedding_dim",
        "embedding_model",
        "metadata_",
        "created_at",
    ];
    const SELECT: &'static str = "id, user_id, text, doc_id, agent_id, data_source, \
        embedding::real[] AS embedding, embedding_dim, embedding_model, metadata_, created_at";
    const STAGING: &'static str = "memgpt_staging_passages";
    const STAGING_DDL: &'static str = "DROP TABLE IF EXISTS pg_temp.memgpt_staging_passages; \
        CREATE TEMP TABLE memgpt_staging_passages (ord bigint, id uuid, user_id uuid, \
        text varchar, doc_id uuid, agent_id uuid, data_source varchar, embedding real[], \
        embedding_dim bigint, embedding_model varchar, metadata_ json, created_at timestamptz) \
        ON COMMIT DROP;";

    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error> {
        crate::copy::copy_passages(conn, feed)
    }

    fn binds(&self) -> Vec<Bind> {
        vec![
            Bind::Uuid(Some(self.id())),
            Bind::Uuid(Some(self.user_id())),
            text(Record::text(self)),
            Bind::Uuid(self.doc_id()),
            Bind::Uuid(self.agent_id()),
            text(self.data_source()),
            padded(self.embedding()),
            dim(self.embedding_dim()),
            text(self.embedding_model()),
            Bind::Json(Some(serde_json::Value::Object(self.metadata().clone()))),
            Bind::Time(self.created_at()),
        ]
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
pub struct DocumentRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    user_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    text: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    data_source: Option<String>,
    #[diesel(sql_type = Nullable<Json>)]
    metadata_: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
}

impl PgRecord for Document {
    type Row = DocumentRow;
    const COLUMNS: &'static [&'static str] = &[
        "id",
        "user_id",
        "text",
        "data_source",
        "metadata_",
        "created_at",
    ];
    const SELECT: &'static str = "id, user_id, text, data_source, metadata_, created_at";
    const STAGING: &'static str = "memgpt_staging_documents";
    const STAGING_DDL: &'static str = "DROP TABLE IF EXISTS pg_temp.memgpt_staging_documents; \
        CREATE TEMP TABLE memgpt_staging_documents (ord bigint, id uuid, user_id uuid, \
        text varchar, data_source varchar, metadata_ json, created_at timestamptz) \
        ON COMMIT DROP;";

    fn copy(
        conn: &mut diesel::PgConnection,
        feed: crate::copy::Feed<'_>,
    ) -> Result<usize, diesel::result::Error> {
        crate::copy::copy_documents(conn, feed)
    }

    fn binds(&self) -> Vec<Bind> {
        vec![
            Bind::Uuid(Some(self.id())),
            Bind::Uuid(Some(self.user_id())),
            text(Record::text(self)),
            text(self.data_source()),
            Bind::Json(Some(serde_json::Value::Object(self.metadata().clone()))),
            Bind::Time(self.created_at()),
        ]
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
