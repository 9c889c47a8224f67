//! The tables of MemGPT 0.3.x.

use std::fmt;

/// Which kind of record a connector stores, and so which table it uses.
///
/// The table names are MemGPT 0.3.x's own, so a database MemGPT created is read and written
/// as it is. All agents share one table per kind; a connector's [`Scope`](crate::Scope)
/// selects the tenant's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableType {
    /// Archival memory: [`Passage`](crate::Passage)s of one agent.
    ArchivalMemory,
    /// Recall memory: the [`Message`](crate::Message)s of one agent.
    RecallMemory,
    /// Passages of loaded data sources: [`Passage`](crate::Passage)s of one user.
    Passages,
    /// [`Document`](crate::Document)s of one user.
    Documents,
}

impl TableType {
    /// Every table type.
    pub const ALL: [TableType; 4] = [
        TableType::ArchivalMemory,
        TableType::RecallMemory,
        TableType::Passages,
        TableType::Documents,
    ];

    /// The SQL table name (MemGPT's).
    pub fn table_name(self) -> &'static str {
        match self {
            TableType::ArchivalMemory => "memgpt_archival_memory_agent",
            TableType::RecallMemory => "memgpt_recall_memory_agent",
            TableType::Passages => "memgpt_passages",
            TableType::Documents => "memgpt_documents",
        }
    }

    /// Whether connectors of this table are scoped to one agent as well as one user.
    pub fn is_agent_scoped(self) -> bool {
        matches!(self, TableType::ArchivalMemory | TableType::RecallMemory)
    }
}

impl fmt::Display for TableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.table_name())
    }
}
