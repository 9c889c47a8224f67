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
fn metadata_of(v: Option<Value>) -> Result<Map<String, Value>, Undecodable> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(Undecodable::new(
            "metadata_",
            format!("not an object: {other}"),
        )),
    }
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

impl Decode for Message {
    fn decode(r: &impl Row) -> Result<Self, Undecodable> {
        let role = required("role", r.text("role")?)?;
        let role: Role = role.parse().map_err(|e| Undecodable::new("role", e))?;
        let mut b = Message::builder(
            required("user_id", r.uuid("user_id")?)?,
            required("agent_id", r.uuid("agent_id")?)?,
            role,
        )
        .id(required("id", r.uuid("id")?)?)
        .maybe_text(r.text("text")?)
        .created_at(required("created_at", r.time("created_at")?)?)
        .embedding_model(r.text("embedding_model")?)
        .maybe_model(r.text("model")?)
        .maybe_name(r.text("name")?)
        .maybe_tool_call_id(r.text("tool_call_id")?);
        if let Some(json) = r.json("tool_calls")?.filter(|j| !j.is_null()) {
            let calls: Vec<ToolCall> =
                serde_json::from_value(json).map_err(|e| Undecodable::new("tool_calls", e))?;
            b = b.tool_calls(calls);
        }
        if let Some(e) = r.embedding(r.int("embedding_dim")?)? {
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

impl Decode for Passage {
    fn decode(r: &impl Row) -> Result<Self, Undecodable> {
        let mut b = Passage::builder(
            required("user_id", r.uuid("user_id")?)?,
            r.text("text")?.unwrap_or_default(),
        )
        .id(required("id", r.uuid("id")?)?)
        .metadata(metadata_of(r.json("metadata_")?)?)
        .created_at(required("created_at", r.time("created_at")?)?);
        if let Some(a) = r.uuid("agent_id")? {
            b = b.agent_id(a);
        }
        if let Some(d) = r.uuid("doc_id")? {
            b = b.doc_id(d);
        }
        if let Some(s) = r.text("data_source")? {
            b = b.data_source(s);
        }
        if let Some(e) = r.embedding(r.int("embedding_dim")?)? {
            b = b.embedding_values(e.into());
        }
        if let Some(m) = r.text("embedding_model")? {
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

impl Decode for Document {
    fn decode(r: &impl Row) -> Result<Self, Undecodable> {
        let mut b = Document::builder(
            required("user_id", r.uuid("user_id")?)?,
            r.text("text")?.unwrap_or_default(),
        )
        .id(required("id", r.uuid("id")?)?)
        .metadata(metadata_of(r.json("metadata_")?)?)
        .created_at(required("created_at", r.time("created_at")?)?);
        if let Some(s) = r.text("data_source")? {
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
