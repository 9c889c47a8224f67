//! How each record type maps onto its SQLite table.

use diesel::QueryableByName;
use memgpt_core::{Document, Error, Message, Passage, Record, Role, TableType, ToolCall};

use crate::codec::{
    embedding_from_base64, embedding_from_raw, embedding_to_base64, f32_bytes, time_from_text,
    time_to_text, uuid_from_text, uuid_to_text,
};
use crate::error::corrupt;
use crate::sql::Bind;

mod sealed {
    pub trait Sealed {}
    impl Sealed for memgpt_core::Message {}
    impl Sealed for memgpt_core::Passage {}
    impl Sealed for memgpt_core::Document {}
}

/// A record type the SQLite backend stores: [`Message`], [`Passage`] or [`Document`].
/// Sealed: its items are the backend's own.
pub trait SqliteRecord: Record + sealed::Sealed {
    /// The row as read from the table.
    #[doc(hidden)]
    type Row: QueryableByName<diesel::sqlite::Sqlite> + 'static;
    /// The stored columns, in the order of [`binds`](Self::binds).
    #[doc(hidden)]
    const COLUMNS: &'static [&'static str];
    /// The select list of a whole record ([`COLUMNS`](Self::COLUMNS), joined).
    #[doc(hidden)]
    const SELECT: &'static str;
    /// The name of the SQL function that computes the L2 distance of the stored embedding;
    /// `None` for records without embeddings.
    #[doc(hidden)]
    const DISTANCE_FN: Option<&'static str>;
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

impl SqliteRecord for Message {
    type Row = MessageRow;
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_recall_memory_agent: id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model, created_at);
    const SELECT: &'static str = "id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model, created_at";
    const DISTANCE_FN: Option<&'static str> = Some("memgpt_l2_base64");

    fn binds(&self) -> Vec<Bind> {
        let tool_calls = self
            .tool_calls()
            .and_then(|c| serde_json::to_string(c).ok());
        vec![
            Bind::Text(Some(uuid_to_text(&self.id()))),
            Bind::Text(Some(uuid_to_text(&self.user_id()))),
            Bind::Text(self.agent_id().as_ref().map(uuid_to_text)),
            Bind::Text(Some(self.role().as_str().to_owned())),
            text(Record::text(self)),
            text(self.model()),
            text(self.name()),
            Bind::Text(tool_calls),
            text(self.tool_call_id()),
            Bind::Blob(self.embedding().map(embedding_to_base64)),
            dim(self.embedding_dim()),
            text(self.embedding_model()),
            Bind::Text(Some(time_to_text(&self.created_at()))),
        ]
    }

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

impl SqliteRecord for Passage {
    type Row = PassageRow;
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_passages: id, user_id, text, doc_id, agent_id, data_source, embedding, embedding_dim, embedding_model, metadata_, created_at);
    const SELECT: &'static str = "id, user_id, text, doc_id, agent_id, data_source, embedding, embedding_dim, embedding_model, metadata_, created_at";
    const DISTANCE_FN: Option<&'static str> = Some("memgpt_l2");

    fn binds(&self) -> Vec<Bind> {
        vec![
            Bind::Text(Some(uuid_to_text(&self.id()))),
            Bind::Text(Some(uuid_to_text(&self.user_id()))),
            text(Record::text(self)),
            Bind::Text(self.doc_id().as_ref().map(uuid_to_text)),
            Bind::Text(self.agent_id().as_ref().map(uuid_to_text)),
            text(self.data_source()),
            Bind::Blob(self.embedding().map(|e| f32_bytes(e.as_slice()))),
            dim(self.embedding_dim()),
            text(self.embedding_model()),
            metadata_to(self.metadata()),
            Bind::Text(Some(time_to_text(&self.created_at()))),
        ]
    }

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

impl SqliteRecord for Document {
    type Row = DocumentRow;
    const COLUMNS: &'static [&'static str] = memgpt_core::checked_columns!(crate::schema::memgpt_documents: id, user_id, text, data_source, metadata_, created_at);
    const SELECT: &'static str = "id, user_id, text, data_source, metadata_, created_at";
    const DISTANCE_FN: Option<&'static str> = None;

    fn binds(&self) -> Vec<Bind> {
        vec![
            Bind::Text(Some(uuid_to_text(&self.id()))),
            Bind::Text(Some(uuid_to_text(&self.user_id()))),
            text(Record::text(self)),
            text(self.data_source()),
            metadata_to(self.metadata()),
            Bind::Text(Some(time_to_text(&self.created_at()))),
        ]
    }

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
