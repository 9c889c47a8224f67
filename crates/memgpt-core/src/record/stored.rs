//! How each record type is stored, once for every backend: its columns, their values
//! ([`Param`]s, which each backend binds in its own encoding) and its decoding from a
//! [`Row`]. MemGPT's tables: the same column names on both databases.

use serde_json::{Map, Value};

use super::{Document, Embedding, Message, Passage, Record, Role, ToolCall};
use crate::row::{required, Decode, Row, Undecodable};
use crate::statement::{Dialect, Param};
use crate::table::TableType;

/// The stored columns of recall memory, in the order of [`Message`]'s values.
pub(crate) const MESSAGE_COLUMNS: &[&str] = &[
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

/// The stored columns of archival memory and passages.
pub(crate) const PASSAGE_COLUMNS: &[&str] = &[
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

/// The stored columns of documents.
pub(crate) const DOCUMENT_COLUMNS: &[&str] = &[
    "id",
    "user_id",
    "text",
    "data_source",
    "metadata_",
    "created_at",
];

/// The stored columns of `table`, as a select list (`id, user_id, …`).
pub fn select_list(table: TableType) -> &'static str {
    match table {
        TableType::RecallMemory => {
            "id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, \
             embedding, embedding_dim, embedding_model, created_at"
        }
        TableType::ArchivalMemory | TableType::Passages => {
            "id, user_id, text, doc_id, agent_id, data_source, embedding, embedding_dim, \
             embedding_model, metadata_, created_at"
        }
        TableType::Documents => "id, user_id, text, data_source, metadata_, created_at",
    }
}

/// The stored columns of `table`.
pub fn columns(table: TableType) -> &'static [&'static str] {
    match table {
        TableType::RecallMemory => MESSAGE_COLUMNS,
        TableType::ArchivalMemory | TableType::Passages => PASSAGE_COLUMNS,
        TableType::Documents => DOCUMENT_COLUMNS,
    }
}

fn text(s: Option<&str>) -> Param {
    Param::Text(s.map(str::to_owned))
}

fn dim(e: Option<&Embedding>) -> Param {
    Param::Int(e.map(|e| i64::try_from(e.dim()).unwrap_or(i64::MAX)))
}

fn metadata(m: &Map<String, Value>) -> Param {
    Param::Json(serde_json::to_string(m).ok())
}

/// Binds `params` in dialect `D`, the embedding (at `at`) in `table`'s encoding.
fn bind<D: Dialect>(
    table: TableType,
    params: Vec<Param>,
    at: Option<usize>,
    e: Option<&Embedding>,
) -> Vec<D::Bind> {
    let mut binds: Vec<D::Bind> = params.into_iter().map(D::Bind::from).collect();
    if let Some(at) = at {
        binds.insert(at, D::embedding(table, e));
    }
    binds
}

/// A `metadata_` value: an object, or nothing (`NULL`, JSON `null`) read as empty.
fn metadata_of(text: Option<String>) -> Result<Map<String, Value>, Undecodable> {
    let v: Option<Value> = text
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| Undecodable::new("metadata_", e))?;
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(Undecodable::new(
            "metadata_",
            format!("not an object: {other}"),
        )),
    }
}

/// The tool calls of a `tool_calls` text; none for JSON `null` (MemGPT's none). Parsed
/// straight into their type; text that does not parse so (a key given twice, which
/// PostgreSQL's `json` and SQLite keep) is read as a JSON value first, where the last of a
/// repeated key wins, as any JSON reader does.
fn tool_calls(json: &str) -> Result<Option<Vec<ToolCall>>, Undecodable> {
    serde_json::from_str(json).or_else(|_| {
        serde_json::from_str::<Value>(json)
            .and_then(serde_json::from_value)
            .map_err(|e| Undecodable::new("tool_calls", e))
    })
}

/// A record rebuilt from its row, or the reason its values are not a valid record.
fn built<T>(r: crate::error::Result<T>) -> Result<T, Undecodable> {
    r.map_err(|e| Undecodable::new("row", e))
}

impl Message {
    pub(super) fn stored_values<D: Dialect>(&self, table: TableType) -> Vec<D::Bind> {
        let tool_calls = self
            .tool_calls()
            .and_then(|c| serde_json::to_string(c).ok());
        let params = vec![
            Param::Uuid(Some(self.id())),
            Param::Uuid(Some(self.user_id())),
            Param::Uuid(self.agent_id()),
            Param::Text(Some(self.role().as_str().to_owned())),
            text(Record::text(self)),
            text(self.model()),
            text(self.name()),
            Param::Json(tool_calls),
            text(self.tool_call_id()),
            // The embedding goes here.
            dim(self.embedding()),
            text(self.embedding_model()),
            Param::Time(self.created_at()),
        ];
        bind::<D>(table, params, Some(9), self.embedding())
    }
}

/// Message columns, by their place in [`MESSAGE_COLUMNS`].
mod m {
    use super::MESSAGE_COLUMNS as C;
    use crate::row::Col;
    pub(super) const ID: Col = Col::of(C, "id");
    pub(super) const USER: Col = Col::of(C, "user_id");
    pub(super) const AGENT: Col = Col::of(C, "agent_id");
    pub(super) const ROLE: Col = Col::of(C, "role");
    pub(super) const TEXT: Col = Col::of(C, "text");
    pub(super) const MODEL: Col = Col::of(C, "model");
    pub(super) const NAME: Col = Col::of(C, "name");
    pub(super) const TOOL_CALLS: Col = Col::of(C, "tool_calls");
    pub(super) const TOOL_CALL_ID: Col = Col::of(C, "tool_call_id");
    pub(super) const EMBEDDING: Col = Col::of(C, "embedding");
    pub(super) const DIM: Col = Col::of(C, "embedding_dim");
    pub(super) const EMBEDDING_MODEL: Col = Col::of(C, "embedding_model");
    pub(super) const CREATED_AT: Col = Col::of(C, "created_at");
}

impl Decode for Message {
    fn decode(r: &impl Row) -> Result<Self, Undecodable> {
        let role = required(m::ROLE, r.text(m::ROLE)?)?;
        let role: Role = role.parse().map_err(|e| Undecodable::new("role", e))?;
        let mut b = Message::builder(
            required(m::USER, r.uuid(m::USER)?)?,
            required(m::AGENT, r.uuid(m::AGENT)?)?,
            role,
        )
        .id(required(m::ID, r.uuid(m::ID)?)?)
        .maybe_text(r.text(m::TEXT)?)
        .created_at(required(m::CREATED_AT, r.time(m::CREATED_AT)?)?)
        .embedding_model(r.text(m::EMBEDDING_MODEL)?)
        .maybe_model(r.text(m::MODEL)?)
        .maybe_name(r.text(m::NAME)?)
        .maybe_tool_call_id(r.text(m::TOOL_CALL_ID)?);
        if let Some(json) = r.json(m::TOOL_CALLS)? {
            if let Some(calls) = tool_calls(&json)? {
                b = b.tool_calls(calls);
            }
        }
        if let Some(e) = r.embedding(m::EMBEDDING, r.int(m::DIM)?)? {
            b = b.embedding_values(e.into());
        }
        built(b.build())
    }
}

impl Passage {
    pub(super) fn stored_values<D: Dialect>(&self, table: TableType) -> Vec<D::Bind> {
        let params = vec![
            Param::Uuid(Some(self.id())),
            Param::Uuid(Some(self.user_id())),
            text(Record::text(self)),
            Param::Uuid(self.doc_id()),
            Param::Uuid(self.agent_id()),
            text(self.data_source()),
            // The embedding goes here.
            dim(self.embedding()),
            text(self.embedding_model()),
            metadata(self.metadata()),
            Param::Time(self.created_at()),
        ];
        bind::<D>(table, params, Some(6), self.embedding())
    }
}

/// Passage columns, by their place in [`PASSAGE_COLUMNS`].
mod p {
    use super::PASSAGE_COLUMNS as C;
    use crate::row::Col;
    pub(super) const ID: Col = Col::of(C, "id");
    pub(super) const USER: Col = Col::of(C, "user_id");
    pub(super) const TEXT: Col = Col::of(C, "text");
    pub(super) const DOC: Col = Col::of(C, "doc_id");
    pub(super) const AGENT: Col = Col::of(C, "agent_id");
    pub(super) const SOURCE: Col = Col::of(C, "data_source");
    pub(super) const EMBEDDING: Col = Col::of(C, "embedding");
    pub(super) const DIM: Col = Col::of(C, "embedding_dim");
    pub(super) const EMBEDDING_MODEL: Col = Col::of(C, "embedding_model");
    pub(super) const METADATA: Col = Col::of(C, "metadata_");
    pub(super) const CREATED_AT: Col = Col::of(C, "created_at");
}

impl Decode for Passage {
    fn decode(r: &impl Row) -> Result<Self, Undecodable> {
        let mut b = Passage::builder(
            required(p::USER, r.uuid(p::USER)?)?,
            r.text(p::TEXT)?.unwrap_or_default(),
        )
        .id(required(p::ID, r.uuid(p::ID)?)?)
        .metadata(metadata_of(r.json(p::METADATA)?)?)
        .created_at(required(p::CREATED_AT, r.time(p::CREATED_AT)?)?);
        if let Some(a) = r.uuid(p::AGENT)? {
            b = b.agent_id(a);
        }
        if let Some(d) = r.uuid(p::DOC)? {
            b = b.doc_id(d);
        }
        if let Some(s) = r.text(p::SOURCE)? {
            b = b.data_source(s);
        }
        if let Some(e) = r.embedding(p::EMBEDDING, r.int(p::DIM)?)? {
            b = b.embedding_values(e.into());
        }
        if let Some(m) = r.text(p::EMBEDDING_MODEL)? {
            b = b.embedding_model(m);
        }
        built(b.build())
    }
}

impl Document {
    pub(super) fn stored_values<D: Dialect>(&self, table: TableType) -> Vec<D::Bind> {
        let params = vec![
            Param::Uuid(Some(self.id())),
            Param::Uuid(Some(self.user_id())),
            text(Record::text(self)),
            text(self.data_source()),
            metadata(self.metadata()),
            Param::Time(self.created_at()),
        ];
        bind::<D>(table, params, None, None)
    }
}

/// Document columns, by their place in [`DOCUMENT_COLUMNS`].
mod d {
    use super::DOCUMENT_COLUMNS as C;
    use crate::row::Col;
    pub(super) const ID: Col = Col::of(C, "id");
    pub(super) const USER: Col = Col::of(C, "user_id");
    pub(super) const TEXT: Col = Col::of(C, "text");
    pub(super) const SOURCE: Col = Col::of(C, "data_source");
    pub(super) const METADATA: Col = Col::of(C, "metadata_");
    pub(super) const CREATED_AT: Col = Col::of(C, "created_at");
}

impl Decode for Document {
    fn decode(r: &impl Row) -> Result<Self, Undecodable> {
        let mut b = Document::builder(
            required(d::USER, r.uuid(d::USER)?)?,
            r.text(d::TEXT)?.unwrap_or_default(),
        )
        .id(required(d::ID, r.uuid(d::ID)?)?)
        .metadata(metadata_of(r.json(d::METADATA)?)?)
        .created_at(required(d::CREATED_AT, r.time(d::CREATED_AT)?)?);
        if let Some(s) = r.text(d::SOURCE)? {
            b = b.data_source(s);
        }
        built(b.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    /// A dialect whose binds are the neutral values themselves (the embedding as its
    /// length).
    struct Neutral;
    impl Dialect for Neutral {
        type Bind = Param;
        const NO_LIMIT: &'static str = "";
        const NULL_SAFE_EQ: &'static str = "IS";
        fn placeholder(_: usize, sql: &mut String) {
            sql.push('?');
        }
        fn embedding(_: TableType, e: Option<&Embedding>) -> Param {
            Param::Int(e.map(|e| e.dim() as i64))
        }
        fn metadata_test(
            sql: &mut crate::statement::Statement<Self>,
            path: &[String],
            _: &crate::filter::MetadataTest,
            _: bool,
        ) {
            sql.push("meta(")
                .param(Param::Text(Some(path.join("."))))
                .push(")");
        }
    }

    /// Every record binds one value per stored column, the embedding in its column.
    #[test]
    fn each_record_binds_one_value_per_column() {
        let (u, a) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let m = Message::builder(u, a, Role::User)
            .text("hi")
            .embedding(vec![0.5; 3], "m")
            .build()
            .unwrap();
        let p = Passage::builder(u, "p")
            .embedding(vec![0.5; 3], "m")
            .build()
            .unwrap();
        let d = Document::builder(u, "d").build().unwrap();
        let embedding_at = |columns: &[&str], values: &[Param]| {
            let at = columns.iter().position(|c| *c == "embedding");
            at.map(|i| values[i].clone())
        };
        let mv = m.values::<Neutral>(TableType::RecallMemory);
        assert_eq!(mv.len(), Message::COLUMNS.len());
        assert_eq!(
            embedding_at(Message::COLUMNS, &mv),
            Some(Param::Int(Some(3)))
        );
        let pv = p.values::<Neutral>(TableType::Passages);
        assert_eq!(pv.len(), Passage::COLUMNS.len());
        assert_eq!(
            embedding_at(Passage::COLUMNS, &pv),
            Some(Param::Int(Some(3)))
        );
        assert_eq!(
            d.values::<Neutral>(TableType::Documents).len(),
            Document::COLUMNS.len()
        );
    }

    #[test]
    fn each_select_list_names_the_stored_columns_in_order() {
        for table in TableType::ALL {
            assert_eq!(select_list(table), columns(table).join(", "), "{table}");
        }
    }
}
