//! How each record type maps onto its SQLite table.

use diesel::QueryableByName;
use memgpt_core::{Document, Error, Message, Passage, Record, Role, TableType, ToolCall};

use crate::codec::{
    embedding_from_base64, embedding_from_raw, embedding_to_base64, f32_bytes, time_from_text,
    time_to_text, uuid_from_text, uuid_to_text,
};
use crate::error::corrupt;
use crate::sql::{Bind, Sql};
use crate::store::SqliteStore;
use diesel::SqliteConnection;
use memgpt_core::backend::Stores;
use memgpt_core::Scoped;

/// How a record decodes from its row; the rest of its mapping is its
/// [`Stores`](memgpt_core::backend::Stores) impl below.
pub(crate) trait FromRow: Sized {
    /// The row as read from the table.
    type Row: QueryableByName<diesel::sqlite::Sqlite> + 'static;
    /// Decodes a row.
    fn from_row(row: Self::Row, table: TableType) -> Result<Self, Error>;
}

fn text(s: Option<&str>) -> Bind {
    Bind::Text(s.map(str::to_owned))
}

fn dim(d: Option<usize>) -> Bind {
    Bind::Int(d.map(|d| i64::try_from(d).unwrap_or(i64::MAX)))
}

fn built<T>(table: TableType, r: Result<T, Error>) -> Result<T, Error> {
    r.map_err(|e| corrupt(table.table_name(), "row", e))
}

/// A row of `memgpt_recall_memory_agent`.
#[doc(hidden)]
#[derive(QueryableByName)]
#[diesel(table_name = crate::schema::memgpt_recall_memory_agent, check_for_backend(diesel::sqlite::Sqlite))]
pub struct MessageRow {
    id: String,
    user_id: String,
    agent_id: String,
    role: String,
    text: Option<String>,
    model: Option<String>,
    name: Option<String>,
    tool_calls: Option<String>,
    tool_call_id: Option<String>,
    embedding: Option<Vec<u8>>,
    embedding_dim: Option<i64>,
    embedding_model: Option<String>,
    created_at: Option<String>,
}

impl Stores<Message> for SqliteStore {
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_recall_memory_agent: id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model, created_at);
    const SELECT: &'static str = "id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model, created_at";

    fn binds(record: &Message) -> Vec<Bind> {
        let tool_calls = record
            .tool_calls()
            .and_then(|c| serde_json::to_string(c).ok());
        vec![
            Bind::Text(Some(uuid_to_text(&record.id()))),
            Bind::Text(Some(uuid_to_text(&record.user_id()))),
            Bind::Text(record.agent_id().as_ref().map(uuid_to_text)),
            Bind::Text(Some(record.role().as_str().to_owned())),
            text(Record::text(record)),
            text(record.model()),
            text(record.name()),
            Bind::Text(tool_calls),
            text(record.tool_call_id()),
            Bind::Blob(record.embedding().map(embedding_to_base64)),
            dim(record.embedding_dim()),
            text(record.embedding_model()),
            Bind::Text(Some(time_to_text(&record.created_at()))),
        ]
    }

    fn load(
        conn: &mut SqliteConnection,
        sql: Sql,
        table: TableType,
    ) -> Result<Vec<Message>, Error> {
        crate::backend::load(conn, sql, table)
    }

    fn bulk_insert(
        &self,
        target: &Scoped<SqliteStore, Message>,
        conn: &mut SqliteConnection,
        records: &mut dyn Iterator<Item = (usize, Message)>,
        exists_ok: bool,
    ) -> Option<Result<u64, Error>> {
        crate::bulk::insert_many(target, conn, records, exists_ok)
    }
}

impl FromRow for Message {
    type Row = MessageRow;

    fn from_row(r: MessageRow, table: TableType) -> Result<Self, Error> {
        let t = table.table_name();
        let user = uuid_from_text(t, "user_id", &r.user_id)?;
        let agent = uuid_from_text(t, "agent_id", &r.agent_id)?;
        let role: Role = r.role.parse().map_err(|e| corrupt(t, "role", e))?;
        let mut b = Message::builder(user, agent, role)
            .id(uuid_from_text(t, "id", &r.id)?)
            .maybe_text(r.text)
            .created_at(time_from_text(
                t,
                r.created_at
                    .as_deref()
                    .ok_or_else(|| corrupt(t, "created_at", "NULL"))?,
            )?)
            .embedding_model(r.embedding_model)
            .maybe_model(r.model)
            .maybe_name(r.name)
            .maybe_tool_call_id(r.tool_call_id);
        if let Some(json) = r.tool_calls.filter(|j| j != "null") {
            let calls: Vec<ToolCall> =
                serde_json::from_str(&json).map_err(|e| corrupt(t, "tool_calls", e))?;
            b = b.tool_calls(calls);
        }
        if let Some(e) = r.embedding {
            let e = embedding_from_base64(t, &e, r.embedding_dim)?;
            b = b.embedding_values(e.into());
        }
        built(table, b.build())
    }
}

/// A row of `memgpt_archival_memory_agent` or `memgpt_passages`.
#[doc(hidden)]
#[derive(QueryableByName)]
#[diesel(table_name = crate::schema::memgpt_passages, check_for_backend(diesel::sqlite::Sqlite))]
pub struct PassageRow {
    id: String,
    user_id: String,
    text: Option<String>,
    doc_id: Option<String>,
    agent_id: Option<String>,
    data_source: Option<String>,
    embedding: Option<Vec<u8>>,
    embedding_model: Option<String>,
    metadata_: Option<String>,
    created_at: Option<String>,
}

fn metadata_from(
    t: &str,
    json: Option<String>,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    match json.as_deref() {
        None | Some("null") => Ok(serde_json::Map::new()),
        Some(j) => serde_json::from_str(j).map_err(|e| corrupt(t, "metadata_", e)),
    }
}

fn metadata_to(m: &serde_json::Map<String, serde_json::Value>) -> Bind {
    Bind::Text(serde_json::to_string(m).ok())
}

impl Stores<Passage> for SqliteStore {
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_passages: id, user_id, text, doc_id, agent_id, data_source, embedding, embedding_dim, embedding_model, metadata_, created_at);
    const SELECT: &'static str = "id, user_id, text, doc_id, agent_id, data_source, embedding, embedding_dim, embedding_model, metadata_, created_at";

    fn binds(record: &Passage) -> Vec<Bind> {
        vec![
            Bind::Text(Some(uuid_to_text(&record.id()))),
            Bind::Text(Some(uuid_to_text(&record.user_id()))),
            text(Record::text(record)),
            Bind::Text(record.doc_id().as_ref().map(uuid_to_text)),
            Bind::Text(record.agent_id().as_ref().map(uuid_to_text)),
            text(record.data_source()),
            Bind::Blob(record.embedding().map(|e| f32_bytes(e.as_slice()))),
            dim(record.embedding_dim()),
            text(record.embedding_model()),
            metadata_to(record.metadata()),
            Bind::Text(Some(time_to_text(&record.created_at()))),
        ]
    }

    fn load(
        conn: &mut SqliteConnection,
        sql: Sql,
        table: TableType,
    ) -> Result<Vec<Passage>, Error> {
        crate::backend::load(conn, sql, table)
    }

    fn bulk_insert(
        &self,
        target: &Scoped<SqliteStore, Passage>,
        conn: &mut SqliteConnection,
        records: &mut dyn Iterator<Item = (usize, Passage)>,
        exists_ok: bool,
    ) -> Option<Result<u64, Error>> {
        crate::bulk::insert_many(target, conn, records, exists_ok)
    }
}

impl FromRow for Passage {
    type Row = PassageRow;

    fn from_row(r: PassageRow, table: TableType) -> Result<Self, Error> {
        let t = table.table_name();
        let mut b = Passage::builder(
            uuid_from_text(t, "user_id", &r.user_id)?,
            r.text.unwrap_or_default(),
        )
        .id(uuid_from_text(t, "id", &r.id)?)
        .metadata(metadata_from(t, r.metadata_)?)
        .created_at(time_from_text(
            t,
            r.created_at
                .as_deref()
                .ok_or_else(|| corrupt(t, "created_at", "NULL"))?,
        )?);
        if let Some(a) = r.agent_id {
            b = b.agent_id(uuid_from_text(t, "agent_id", &a)?);
        }
        if let Some(d) = r.doc_id {
            b = b.doc_id(uuid_from_text(t, "doc_id", &d)?);
        }
        if let Some(s) = r.data_source {
            b = b.data_source(s);
        }
        if let Some(e) = r.embedding {
            b = b.embedding_values(embedding_from_raw(t, &e)?.into());
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
#[diesel(table_name = crate::schema::memgpt_documents, check_for_backend(diesel::sqlite::Sqlite))]
pub struct DocumentRow {
    id: String,
    user_id: String,
    text: Option<String>,
    data_source: Option<String>,
    metadata_: Option<String>,
    created_at: Option<String>,
}

impl Stores<Document> for SqliteStore {
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_documents: id, user_id, text, data_source, metadata_, created_at);
    const SELECT: &'static str = "id, user_id, text, data_source, metadata_, created_at";

    fn binds(record: &Document) -> Vec<Bind> {
        vec![
            Bind::Text(Some(uuid_to_text(&record.id()))),
            Bind::Text(Some(uuid_to_text(&record.user_id()))),
            text(Record::text(record)),
            text(record.data_source()),
            metadata_to(record.metadata()),
            Bind::Text(Some(time_to_text(&record.created_at()))),
        ]
    }

    fn load(
        conn: &mut SqliteConnection,
        sql: Sql,
        table: TableType,
    ) -> Result<Vec<Document>, Error> {
        crate::backend::load(conn, sql, table)
    }

    fn bulk_insert(
        &self,
        target: &Scoped<SqliteStore, Document>,
        conn: &mut SqliteConnection,
        records: &mut dyn Iterator<Item = (usize, Document)>,
        exists_ok: bool,
    ) -> Option<Result<u64, Error>> {
        crate::bulk::insert_many(target, conn, records, exists_ok)
    }
}

impl FromRow for Document {
    type Row = DocumentRow;

    fn from_row(r: DocumentRow, table: TableType) -> Result<Self, Error> {
        let t = table.table_name();
        let mut b = Document::builder(
            uuid_from_text(t, "user_id", &r.user_id)?,
            r.text.unwrap_or_default(),
        )
        .id(uuid_from_text(t, "id", &r.id)?)
        .metadata(metadata_from(t, r.metadata_)?)
        .created_at(time_from_text(
            t,
            r.created_at
                .as_deref()
                .ok_or_else(|| corrupt(t, "created_at", "NULL"))?,
        )?);
        if let Some(s) = r.data_source {
            b = b.data_source(s);
        }
        built(table, b.build())
    }
}
