//! The tenant and filter part of a statement's `WHERE`: the one place a [`Filter`] tree
//! becomes SQL.

use super::{Dialect, Param, Statement};
use crate::filter::{Filter, FilterValue, Kind, MetadataTest};
use crate::scope::Scope;
use crate::table::TableType;

impl<D: Dialect> Statement<D> {
    /// ` WHERE user_id = ? [AND agent_id = ?] [AND col = ? | col IS NULL …]`: the scope,
    /// then the filters (validated by the caller).
    pub fn scope_where(
        &mut self,
        table: TableType,
        scope: &Scope,
        filters: &[Filter],
    ) -> &mut Self {
        self.push(" WHERE user_id = ")
            .param(Param::Uuid(Some(scope.user_id())));
        if table.is_agent_scoped() {
            if let Some(agent) = scope.agent_id() {
                self.push(" AND agent_id = ")
                    .param(Param::Uuid(Some(agent)));
            }
        }
        // A column filtered twice, or any other test than a column's: the text grows with
        // the filters.
        if filters.iter().any(|f| !f.is_column())
            || filters.iter().enumerate().any(|(i, f)| {
                filters[..i]
                    .iter()
                    .any(|g| g.column().is_some() && g.column() == f.column())
            })
        {
            self.variable = true;
        }
        // Each column once: in one order whatever the caller's, so that a set of column
        // filters is one statement text (one prepared statement), not one per order.
        let mut ordered: Vec<&Filter> = filters.iter().collect();
        if !self.variable {
            ordered.sort_by_key(|f| f.column().map(|c| c.name()));
        }
        for f in ordered {
            match &f.kind {
                Kind::Column { column, value } => {
                    let col = column.name();
                    match value {
                        FilterValue::Null => {
                            self.push(&format!(" AND {col} IS NULL"));
                        }
                        FilterValue::Uuid(u) => {
                            self.push(&format!(" AND {col} = "))
                                .param(Param::Uuid(Some(*u)));
                        }
                        FilterValue::Text(t) => {
                            self.push(&format!(" AND {col} = "))
                                .param(Param::Text(Some(t.clone())));
                        }
                    }
                }
                _ => {
                    self.push(" AND ");
                    self.predicate(f, false);
                }
            }
        }
        self
    }

    /// Appends `f` as a boolean expression. Under a `NOT` (`under_not`) it is never NULL,
    /// so that `NOT` of it holds exactly where it does not; elsewhere NULL and false select
    /// the same rows, and a bare comparison lets an index serve it.
    fn predicate(&mut self, f: &Filter, under_not: bool) {
        match &f.kind {
            Kind::Column { column, value } => self.column_test(column.name(), value, under_not),
            // A list is equality with any of its values, decided here for every backend.
            Kind::Metadata {
                path,
                test: MetadataTest::In(values),
            } => {
                let each = values.iter().map(|v| MetadataTest::Eq(v.clone()));
                self.joined(each, " OR ", "false", |sql, t| {
                    D::metadata_test(sql, path, &t, under_not)
                });
            }
            Kind::Metadata { path, test } => D::metadata_test(self, path, test, under_not),
            Kind::CreatedAt { cmp, at } if under_not => {
                // Another writer's NULL created_at is false under a NOT too.
                self.push(&format!("COALESCE(created_at {} ", cmp.sql()))
                    .param(Param::Time(*at))
                    .push(", false)");
            }
            Kind::CreatedAt { cmp, at } => {
                // Bare: a range of the scope's (…, created_at) index.
                self.push(&format!("created_at {} ", cmp.sql()))
                    .param(Param::Time(*at));
            }
            Kind::And(fs) => self.joined(fs.iter(), " AND ", "true", |sql, g| {
                sql.predicate(g, under_not)
            }),
            Kind::Or(fs) => self.joined(fs.iter(), " OR ", "false", |sql, g| {
                sql.predicate(g, under_not)
            }),
            Kind::Not(g) => {
                self.push("NOT (");
                self.predicate(g, true);
                self.push(")");
            }
        }
    }

    /// `col = value` (`IS NULL` for a null value); never NULL under a `NOT`.
    fn column_test(&mut self, col: &str, value: &FilterValue, under_not: bool) {
        let param = match value {
            FilterValue::Null => {
                self.push(&format!("{col} IS NULL"));
                return;
            }
            FilterValue::Uuid(u) => Param::Uuid(Some(*u)),
            FilterValue::Text(t) => Param::Text(Some(t.clone())),
        };
        if under_not {
            self.push(&format!("({col} IS NOT NULL AND {col} = "))
                .param(param)
                .push(")");
        } else {
            self.push(&format!("{col} = ")).param(param);
        }
    }

    /// Each of `items` written by `write`, joined by `op` in parentheses; `empty` (the
    /// operator's identity) when there is none.
    fn joined<T>(
        &mut self,
        items: impl ExactSizeIterator<Item = T>,
        op: &str,
        empty: &str,
        mut write: impl FnMut(&mut Self, T),
    ) {
        if items.len() == 0 {
            self.push(empty);
            return;
        }
        self.push("(");
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.push(op);
            }
            write(self, item);
        }
        self.push(")");
    }
}
