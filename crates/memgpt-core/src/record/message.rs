//! Recall memory: chat messages.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{check_text, normalize_timestamp, now, Embedding, Record};
use crate::error::{Error, Result};
use crate::table::TableType;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system prompt.
    System,
    /// The human user.
    User,
    /// The model.
    Assistant,
    /// A tool's answer to a tool call.
    Tool,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 4] = [Role::System, Role::User, Role::Assistant, Role::Tool];

    /// The stored name (`system`, `user`, `assistant`, `tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!("unknown role {s:?} (expected system, user, assistant or tool)"),
                )
            })
    }
}

/// The function a tool call invokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    pub name: String,
    /// Its arguments, as the model wrote them (usually JSON text).
    pub arguments: String,
}

/// A tool call made by an assistant message.
///
/// Stored as MemGPT 0.3.x stores it: `{"id": …, "tool_call_type": …, "function": {"name": …,
/// "arguments": …}}`. The OpenAI spelling `"type"` is accepted on input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, answered by a tool message's `tool_call_id`.
    pub id: String,
    /// The call's type (`"function"`).
    #[serde(alias = "type")]
    pub tool_call_type: String,
    /// The function called.
    pub function: FunctionCall,
}

impl ToolCall {
    /// A `"function"` tool call.
    pub fn function(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            tool_call_type: "function".to_owned(),
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.into(),
            },
        }
    }

    fn validate(&self, i: usize) -> Result<()> {
        let parts = [
            ("id", &self.id),
            ("tool_call_type", &self.tool_call_type),
            ("function.name", &self.function.name),
            ("function.arguments", &self.function.arguments),
        ];
        // The field's name is written only for the error.
        parts
            .into_iter()
            .try_for_each(|(name, v)| match v.contains('\0') {
                true => check_text(&format!("tool_calls[{i}].{name}"), Some(v)),
                false => Ok(()),
            })
    }
}

/// A chat message of recall memory (MemGPT's `Message`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    id: Uuid,
    user_id: Uuid,
    agent_id: Uuid,
    role: Role,
    text: Option<String>,
    model: Option<String>,
    name: Option<String>,
    created_at: DateTime<Utc>,
    tool_calls: Option<Vec<ToolCall>>,
    tool_call_id: Option<String>,
    embedding: Option<Embedding>,
    embedding_model: Option<String>,
}

impl Message {
    /// Starts a message of `role` by `user_id`'s agent `agent_id`. The id defaults to a
    /// random UUID and `created_at` to now.
    pub fn builder(user_id: Uuid, agent_id: Uuid, role: Role) -> MessageBuilder {
        MessageBuilder {
            id: None,
            user_id,
            agent_id,
            role,
            text: None,
            model: None,
            name: None,
            created_at: None,
            tool_calls: None,
            tool_call_id: None,
            embedding: None,
            embedding_model: None,
        }
    }

    /// A builder holding this message's values, to change some and build again.
    pub fn to_builder(&self) -> MessageBuilder {
        MessageBuilder {
            id: Some(self.id),
            user_id: self.user_id,
            agent_id: self.agent_id,
            role: self.role,
            text: self.text.clone(),
            model: self.model.clone(),
            name: self.name.clone(),
            created_at: Some(self.created_at),
            tool_calls: self.tool_calls.clone(),
            tool_call_id: self.tool_call_id.clone(),
            embedding: self.embedding.as_ref().map(|e| e.as_slice().to_vec()),
            embedding_model: self.embedding_model.clone(),
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The model that wrote the message.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// The author's name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// Tool calls made by the message.
    pub fn tool_calls(&self) -> Option<&[ToolCall]> {
        self.tool_calls.as_deref()
    }
    /// The tool call a tool message answers.
    pub fn tool_call_id(&self) -> Option<&str> {
        self.tool_call_id.as_deref()
    }
    /// The embedding's dimension (MemGPT's `embedding_dim`).
    pub fn embedding_dim(&self) -> Option<usize> {
        self.embedding.as_ref().map(Embedding::dim)
    }
    /// The model that produced the embedding.
    pub fn embedding_model(&self) -> Option<&str> {
        self.embedding_model.as_deref()
    }
}

impl Record for Message {
    const COLUMNS: &'static [&'static str] = super::stored::MESSAGE_COLUMNS;

    fn values<D: crate::statement::Dialect>(&self, table: TableType) -> Vec<D::Bind> {
        self.stored_values::<D>(table)
    }

    fn id(&self) -> Uuid {
        self.id
    }
    fn user_id(&self) -> Uuid {
        self.user_id
    }
    fn agent_id(&self) -> Option<Uuid> {
        Some(self.agent_id)
    }
    fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
    fn embedding(&self) -> Option<&Embedding> {
        self.embedding.as_ref()
    }
    fn stored_in(table: TableType) -> bool {
        table == TableType::RecallMemory
    }
}

/// Builds a validated [`Message`]; see [`Message::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MessageBuilder {
    id: Option<Uuid>,
    user_id: Uuid,
    agent_id: Uuid,
    role: Role,
    text: Option<String>,
    model: Option<String>,
    name: Option<String>,
    created_at: Option<DateTime<Utc>>,
    tool_calls: Option<Vec<ToolCall>>,
    tool_call_id: Option<String>,
    embedding: Option<Vec<f32>>,
    embedding_model: Option<String>,
}

impl MessageBuilder {
    /// Sets the id (default: a random UUID).
    pub fn id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }
    /// Sets the role.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }
    /// Sets the text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }
    /// Sets or clears the text.
    pub fn maybe_text(mut self, text: Option<String>) -> Self {
        self.text = text;
        self
    }
    /// Sets or clears the model (as read from a row).
    pub fn maybe_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }
    /// Sets or clears the author's name (as read from a row).
    pub fn maybe_name(mut self, name: Option<String>) -> Self {
        self.name = name;
        self
    }
    /// Sets or clears the id of the tool call answered (as read from a row).
    pub fn maybe_tool_call_id(mut self, id: Option<String>) -> Self {
        self.tool_call_id = id;
        self
    }
    /// Sets the model that wrote the message.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
    /// Sets the author's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Sets the creation time (default: now). Stored with microsecond precision.
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }
    /// Sets the tool calls made by the message.
    pub fn tool_calls(mut self, calls: Vec<ToolCall>) -> Self {
        self.tool_calls = Some(calls);
        self
    }
    /// Sets the tool call a tool message answers (required for, and only for, role tool).
    pub fn tool_call_id(mut self, id: impl Into<String>) -> Self {
        self.tool_call_id = Some(id.into());
        self
    }
    /// Sets the embedding and the model that produced it.
    pub fn embedding(mut self, values: Vec<f32>, model: impl Into<String>) -> Self {
        self.embedding = Some(values);
        self.embedding_model = Some(model.into());
        self
    }
    /// Sets the embedding without naming a model.
    pub fn embedding_values(mut self, values: Vec<f32>) -> Self {
        self.embedding = Some(values);
        self
    }
    /// Sets or clears the embedding model.
    pub fn embedding_model(mut self, model: Option<String>) -> Self {
        self.embedding_model = model;
        self
    }

    /// Validates and builds the message.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the field: a NUL byte in any text, an embedding that is
    /// empty, longer than 4096 or not finite, a tool message without `tool_call_id` or
    /// another role with one, a `created_at` outside years 1..=9999.
    pub fn build(self) -> Result<Message> {
        check_text("text", self.text.as_deref())?;
        check_text("model", self.model.as_deref())?;
        check_text("name", self.name.as_deref())?;
        check_text("tool_call_id", self.tool_call_id.as_deref())?;
        check_text("embedding_model", self.embedding_model.as_deref())?;
        match (self.role, self.tool_call_id.is_some()) {
            (Role::Tool, false) => {
                return Err(Error::invalid(
                    "tool_call_id",
                    "a tool message must name the tool call it answers",
                ))
            }
            (role, true) if role != Role::Tool => {
                return Err(Error::invalid(
                    "tool_call_id",
                    format!("only tool messages answer a tool call, this one is {role}"),
                ))
            }
            _ => {}
        }
        if let Some(calls) = &self.tool_calls {
            for (i, c) in calls.iter().enumerate() {
                c.validate(i)?;
            }
        }
        let embedding = self.embedding.map(Embedding::new).transpose()?;
        let created_at = match self.created_at {
            Some(t) => normalize_timestamp(t)?,
            None => now(),
        };
        Ok(Message {
            id: self.id.unwrap_or_else(Uuid::new_v4),
            user_id: self.user_id,
            agent_id: self.agent_id,
            role: self.role,
            text: self.text,
            model: self.model,
            name: self.name,
            created_at,
            tool_calls: self.tool_calls,
            tool_call_id: self.tool_call_id,
            embedding,
            embedding_model: self.embedding_model,
        })
    }
}

impl From<Role> for crate::filter::FilterValue {
    fn from(v: Role) -> Self {
        crate::filter::FilterValue::Text(v.as_str().to_owned())
    }
}
