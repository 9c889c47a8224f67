//! Query plans, as the backends' `explain()` report them.

use crate::table::TableType;

/// The plan the database chose for one query pattern of a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPlan {
    /// The table queried.
    pub table: TableType,
    /// The connector operation (`get_all`, `get_page`, `size`, …).
    pub operation: &'static str,
    /// The plan, as the database prints it.
    pub plan: String,
    /// Whether the plan reads the table through an index.
    pub uses_index: bool,
    /// Whether the plan reads the whole table.
    pub full_scan: bool,
}

impl QueryPlan {
    /// Whether the plan is what memgpt-store promises: an index, no full scan.
    pub fn is_indexed(&self) -> bool {
        self.uses_index && !self.full_scan
    }
}
