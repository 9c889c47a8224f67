//! `EXPLAIN QUERY PLAN` of every query pattern a connector issues.

use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_core::{Embedding, QueryPlan, Result, StorageConnector, TableType};

use crate::connector::SqliteConnector;
use crate::error::map;
use crate::record::SqliteRecord;
use crate::sql::{query, Sql};

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

fn explain(conn: &mut SqliteConnection, sql: Sql) -> Result<String> {
    let lines: Vec<PlanLine> = query(sql.prefixed("EXPLAIN QUERY PLAN "))
        .load(conn)
        .map_err(map)?;
    Ok(lines
        .into_iter()
        .map(|l| l.detail)
        .collect::<Vec<_>>()
        .join("\n"))
}

fn plan(table: TableType, operation: &'static str, plan: String) -> QueryPlan {
    let t = table.table_name();
    QueryPlan {
        uses_index: plan.contains("USING INDEX")
            || plan.contains("USING COVERING INDEX")
            || plan.contains("USING PRIMARY KEY")
            || plan.contains("VIRTUAL TABLE INDEX"),
        // "SCAN t" alone reads every row; "SCAN t USING INDEX …" walks an index in order.
        full_scan: plan.lines().any(|l| l.trim() == format!("SCAN {t}")),
        table,
        operation,
        plan,
    }
}

impl<R: SqliteRecord> SqliteConnector<'_, R> {
    /// Runs `EXPLAIN QUERY PLAN` (never executing anything) on every query pattern this
    /// connector issues, with sample arguments in its scope. `cargo xtask doctor` prints
    /// these and flags any plan that reads a whole table.
    ///
    /// # Errors
    /// What the database reports.
    pub fn explain(&self) -> Result<Vec<QueryPlan>> {
        let table = self.table_type();
        let mut patterns: Vec<(&'static str, Sql)> = self.shapes().explain_patterns();
        patterns.push(("query_text", self.sql_text(&["memory"], None, 0)));
        if table != TableType::Documents {
            patterns.push((
                "query",
                self.sql_nearest(&Embedding::new(vec![0.0; 8])?, 10, &[]),
            ));
        }
        self.read(|conn| {
            patterns
                .into_iter()
                .map(|(operation, sql)| Ok(plan(table, operation, explain(conn, sql)?)))
                .collect()
        })
    }
}
