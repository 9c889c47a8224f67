//! Query plans, as the backends' `explain()` report them.

use crate::table::TableType;

/// The plan the database chose for one query pattern of a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// The plan `plan` of `operation` on `table`, as a backend's `explain` reads it.
    pub fn new(
        table: TableType,
        operation: &'static str,
        plan: String,
        uses_index: bool,
        full_scan: bool,
    ) -> Self {
        QueryPlan {
            table,
            operation,
            plan,
            uses_index,
            full_scan,
        }
    }

    /// Whether the plan is what memgpt-store promises: an index, no full scan.
    pub fn is_indexed(&self) -> bool {
        self.uses_index && !self.full_scan
    }
}
