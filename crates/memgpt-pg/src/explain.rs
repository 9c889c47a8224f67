//! `EXPLAIN` of every query pattern a connector issues: the check for missing indexes.

use diesel::sql_types::Text;
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Embedding, QueryPlan, Result, StorageConnector, TableType};

use crate::connector::PgConnector;
use crate::error::map;
use crate::record::PgRecord;
use crate::sql::{query, Sql};

fn plan(table: TableType, operation: &'static str, plan: String) -> QueryPlan {
    QueryPlan {
        uses_index: plan.contains("Index Scan")
            || plan.contains("Index Only Scan")
            || plan.contains("Bitmap Index Scan"),
        full_scan: plan.contains(&format!("Seq Scan on {}", table.table_name())),
        table,
        operation,
        plan,
    }
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

fn explain(conn: &mut PgConnection, sql: Sql) -> Result<String> {
    let lines: Vec<PlanLine> = query(sql.prefixed("EXPLAIN ")).load(conn).map_err(map)?;
    Ok(lines
        .into_iter()
        .map(|l| l.line)
        .collect::<Vec<_>>()
        .join("\n"))
}

impl<R: PgRecord> PgConnector<'_, R> {
    /// Runs `EXPLAIN` (never executing anything) on every query pattern this connector
    /// issues, with sample arguments in its scope. `cargo xtask doctor` prints these and
    /// flags any plan that reads a whole table.
    ///
    /// # Errors
    /// What the database reports.
    pub fn explain(&self) -> Result<Vec<QueryPlan>> {
        let table = self.table_type();
        let mut patterns: Vec<(&'static str, Sql)> = self.shapes().explain_patterns();
        patterns.push(("query_text", self.sql_text("memory", None, 0)));
        let vector = self.vector_enabled() && table != TableType::Documents;
        self.read(|conn| {
            let mut plans = Vec::new();
            for (operation, sql) in patterns {
                plans.push(plan(table, operation, explain(conn, sql)?));
            }
            if vector {
                let probe = Embedding::new(vec![0.0; 8])?;
                let sql = self.sql_nearest(&probe, 10, &[]);
                plans.push(plan(table, "query", explain(conn, sql)?));
            }
            Ok(plans)
        })
    }
}
