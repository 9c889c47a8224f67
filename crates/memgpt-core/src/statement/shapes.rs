//! The statements of one connector: every read and write it issues, in any [`Dialect`].

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Dialect, Param, Statement};
use crate::filter::Filter;
use crate::keyset::Keyset;
use crate::scope::Scope;
use crate::table::TableType;

/// The statements of one connector in dialect `D`: its table, scope and select list.
pub struct Shapes<'a, D> {
    /// The dialect.
    pub dialect: PhantomData<fn() -> D>,
    /// The table.
    pub table: TableType,
    /// The tenant.
    pub scope: &'a Scope,
    /// The select list of a whole record.
    pub select: &'a str,
}

impl<D> Clone for Shapes<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D> Copy for Shapes<'_, D> {}

impl<D> std::fmt::Debug for Shapes<'_, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shapes")
            .field("table", &self.table)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<'a, D: Dialect> Shapes<'a, D> {
    /// The tenant's word in the full-text indexes (migration 000005): `a` and the agent
    /// id's hex digits for a connector of agent memory bound to an agent, else `u` and the
    /// user id's. Built from a uuid, never from caller text.
    pub fn text_tenant(&self) -> String {
        match self.scope.agent_id() {
            Some(agent) if self.table.is_agent_scoped() => format!("a{}", agent.simple()),
            _ => format!("u{}", self.scope.user_id().simple()),
        }
    }

    /// The shapes of a connector of `table` bound to `scope`, whose record reads as
    /// `select`.
    pub fn new(table: TableType, scope: &'a Scope, select: &'a str) -> Self {
        Shapes {
            dialect: PhantomData,
            table,
            scope,
            select,
        }
    }

    fn name(&self) -> &'static str {
        self.table.table_name()
    }

    /// `SELECT <record> FROM <table>`.
    pub fn select(&self) -> Statement<D> {
        // Room for the scope, filters, order and limit that follow: one allocation.
        let mut text = String::with_capacity(self.select.len() + 256);
        text.push_str("SELECT ");
        text.push_str(self.select);
        text.push_str(" FROM ");
        text.push_str(self.name());
        Statement::new(text)
    }

    /// One keyset page: `(created_at, id) > after`, ascending.
    pub fn page(&self, filters: &[Filter], after: Option<&Keyset>, limit: usize) -> Statement<D> {
        let mut s = self.select();
        s.scope_where(self.table, self.scope, filters);
        if let Some(k) = after {
            s.keyset(">", k);
        }
        s.push(" ORDER BY created_at, id")
            .limit_offset(Some(limit), 0);
        s
    }

    /// A cursor page between two keysets, ascending or (`reverse`) descending.
    pub fn cursor(
        &self,
        filters: &[Filter],
        after: Option<&Keyset>,
        before: Option<&Keyset>,
        limit: usize,
        reverse: bool,
    ) -> Statement<D> {
        let mut s = self.select();
        s.scope_where(self.table, self.scope, filters);
        if let Some(k) = after {
            s.keyset(">", k);
        }
        if let Some(k) = before {
            s.keyset("<", k);
        }
        let dir = if reverse { "DESC" } else { "ASC" };
        s.push(&format!(" ORDER BY created_at {dir}, id {dir}"))
            .limit_offset(Some(limit), 0);
        s
    }

    /// The most recent records, newest first.
    pub fn recent(&self, filters: &[Filter], limit: Option<usize>) -> Statement<D> {
        let mut s = self.select();
        s.scope_where(self.table, self.scope, filters)
            .push(" ORDER BY created_at DESC, id DESC")
            .limit_offset(limit, 0);
        s
    }

    /// One record by id.
    pub fn by_id(&self, id: Uuid) -> Statement<D> {
        let mut s = self.select();
        s.scope_where(self.table, self.scope, &[])
            .push(" AND id = ")
            .param(Param::Uuid(Some(id)));
        s
    }

    /// The position `(created_at, id)` of one record.
    pub fn keyset_of(&self, id: Uuid) -> Statement<D> {
        let mut s = Statement::new(format!("SELECT created_at, id FROM {}", self.name()));
        s.scope_where(self.table, self.scope, &[])
            .push(" AND id = ")
            .param(Param::Uuid(Some(id)));
        s
    }

    /// `count(*) AS n`.
    pub fn count(&self, filters: &[Filter]) -> Statement<D> {
        let mut s = Statement::new(format!("SELECT count(*) AS n FROM {}", self.name()));
        s.scope_where(self.table, self.scope, filters);
        s
    }

    /// Records created in `start..=end`, oldest first.
    pub fn dates(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
        offset: usize,
    ) -> Statement<D> {
        let mut s = self.select();
        s.scope_where(self.table, self.scope, &[])
            .push(" AND created_at >= ")
            .param(Param::Time(start))
            .push(" AND created_at <= ")
            .param(Param::Time(end))
            .push(" ORDER BY created_at, id")
            .limit_offset(limit, offset);
        s
    }

    /// One bulk delete.
    pub fn delete(&self, filters: &[Filter]) -> Statement<D> {
        let mut s = Statement::new(format!("DELETE FROM {}", self.name()));
        s.scope_where(self.table, self.scope, filters);
        s
    }

    /// One batch of a prune ([`crate::retention`]): `DELETE … WHERE id IN (SELECT id …
    /// ORDER BY created_at, id LIMIT batch)` ([`Dialect::ID_IN_SELECT`]), the oldest rows of `filters` found through
    /// the scope's `(…, created_at)` index; with `keep_newest` only rows at or before the
    /// record after the newest `n`, read in the same statement (the same transaction, on
    /// the primary). A record without `created_at` (another writer's) is neither counted
    /// nor removed.
    pub fn prune_batch(
        &self,
        filters: &[Filter],
        keep_newest: Option<u64>,
        batch: usize,
    ) -> Statement<D> {
        let name = self.name();
        let (open, close) = D::ID_IN_SELECT;
        let mut s = Statement::new(format!(
            "DELETE FROM {name} WHERE {open}SELECT id FROM {name}"
        ));
        s.scope_where(self.table, self.scope, filters);
        if let Some(n) = keep_newest {
            s.push(&format!(
                " AND (created_at, id) <= (SELECT created_at, id FROM {name}"
            ))
            .scope_where(self.table, self.scope, &[])
            .push(" AND created_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ")
            .bound_count(n)
            .push(")");
        }
        s.push(" ORDER BY created_at, id")
            .limit_offset(Some(batch), 0)
            .push(close);
        s
    }

    /// The distinct data sources, sorted.
    pub fn sources(&self) -> Statement<D> {
        let mut s = Statement::new(format!("SELECT DISTINCT data_source FROM {}", self.name()));
        s.scope_where(self.table, self.scope, &[])
            .push(" AND data_source IS NOT NULL ORDER BY data_source");
        s
    }

    /// The read and delete statements every connector issues, with sample arguments, for
    /// `EXPLAIN`: `get_all`, `get_page`, `get`, `size`, `query_date`, `delete` and (where the
    /// table has data sources) `list_data_sources`. Backends add their own full-text and
    /// vector statements.
    pub fn explain_patterns(&self) -> Vec<(&'static str, Statement<D>)> {
        let t0 = DateTime::<Utc>::from_timestamp(1_704_067_200, 0).unwrap_or_default();
        let after = Keyset {
            created_at: t0,
            id: Uuid::nil(),
        };
        let mut patterns = vec![
            ("get_all", self.recent(&[], Some(100))),
            ("get_page", self.page(&[], Some(&after), 100)),
            ("get", self.by_id(Uuid::nil())),
            ("size", self.count(&[])),
            (
                "query_date",
                self.dates(t0, t0 + chrono::Duration::hours(1), None, 0),
            ),
            ("delete", self.delete(&[])),
        ];
        if self.table != TableType::RecallMemory {
            patterns.push(("list_data_sources", self.sources()));
        }
        patterns
    }

    /// `UPDATE … SET <columns but id> … WHERE <scope> AND id = ?`; `values` are the
    /// record's, `id` first.
    pub fn update(&self, columns: &[&str], values: Vec<D::Bind>, id: Uuid) -> Statement<D> {
        let mut s = Statement::new(format!("UPDATE {} SET ", self.name()));
        for (i, (col, v)) in columns.iter().zip(values).skip(1).enumerate() {
            if i > 0 {
                s.push(", ");
            }
            s.push(&format!("{col} = ")).bind(v);
        }
        s.scope_where(self.table, self.scope, &[])
            .push(" AND id = ")
            .param(Param::Uuid(Some(id)));
        s
    }

    /// A multi-row `INSERT`, with the tenant-safe upsert clause when `exists_ok`. Its text
    /// varies with the number of rows: never [cacheable](Statement::is_cacheable).
    pub fn insert(
        &self,
        columns: &[&str],
        rows: impl IntoIterator<Item = Vec<D::Bind>>,
        exists_ok: bool,
    ) -> Statement<D> {
        let mut s = Statement::new(format!(
            "INSERT INTO {} ({}) VALUES ",
            self.name(),
            columns.join(", ")
        ));
        s.variable = true;
        for (i, row) in rows.into_iter().enumerate() {
            s.push(if i == 0 { "(" } else { ", (" });
            for (j, v) in row.into_iter().enumerate() {
                if j > 0 {
                    s.push(", ");
                }
                s.bind(v);
            }
            s.push(")");
        }
        s.push(&self.on_conflict(columns, exists_ok));
        s
    }

    /// The conflict clause of a write: with `exists_ok` an upsert (` ON CONFLICT (id) DO
    /// UPDATE SET … WHERE <the existing row has the same tenant>`: it never overwrites
    /// another tenant's record), else ` ON CONFLICT (id) DO NOTHING`. Either way a record
    /// not written is a row the statement does not return: never an error.
    pub fn on_conflict(&self, columns: &[&str], exists_ok: bool) -> String {
        if exists_ok {
            self.upsert_clause(columns)
        } else {
            // An id that exists already writes nothing and fails nothing: the rows the
            // statement returns fall short, and core names the record (no savepoint needed
            // to go on after a unique violation, which PostgreSQL would abort the
            // transaction on).
            " ON CONFLICT (id) DO NOTHING".to_owned()
        }
    }

    /// The upsert clause of a write of `columns`: every column but `id` set from the new
    /// row, where the existing row is the tenant's (another tenant's row is left as it is,
    /// and the statement returns no row for it).
    fn upsert_clause(&self, columns: &[&str]) -> String {
        let t = self.name();
        let sets: Vec<String> = columns
            .iter()
            .filter(|c| **c != "id")
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let same_agent = format!(" AND {t}.agent_id {} excluded.agent_id", D::NULL_SAFE_EQ);
        format!(
            " ON CONFLICT (id) DO UPDATE SET {} WHERE {t}.user_id = excluded.user_id{}",
            sets.join(", "),
            if self.table.is_agent_scoped() {
                same_agent.as_str()
            } else {
                ""
            }
        )
    }
}
