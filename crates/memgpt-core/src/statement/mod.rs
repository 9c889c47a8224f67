//! Backend-neutral SQL statement shapes.
//!
//! Every backend issues the same statements, differing only in what its [`Dialect`] says:
//! placeholder syntax, how a value is encoded, the spelling of "no limit" and of null-safe
//! equality. A [`Statement`] is SQL text plus the values of its placeholders; the text is
//! assembled only from fixed identifiers (table names from [`TableType`](crate::TableType), column names from
//! [`Column`](crate::Column), column lists of the backends) and placeholders, and every
//! value a caller supplies is a bound parameter. The functions of this module build every
//! read and write a connector issues; each backend turns a [`Statement`] into its driver's
//! query.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::filter::MetadataTest;
use crate::keyset::Keyset;

mod filters;
mod shapes;
pub use shapes::Shapes;

/// A backend-neutral value of a placeholder; each backend's bind type converts from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A UUID or NULL.
    Uuid(Option<Uuid>),
    /// Text or NULL.
    Text(Option<String>),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// An integer or NULL.
    Int(Option<i64>),
    /// JSON text or NULL: serialized once, as the record's types order their keys
    /// (MemGPT's order for tool calls).
    Json(Option<String>),
}

/// A backend's SQL dialect, as far as the shared statements differ: the backend owns its
/// placeholders and value encodings (as in sqlx's `Arguments::format_placeholder`).
pub trait Dialect {
    /// A value bound to a placeholder, in the backend's encoding.
    type Bind: From<Param>;
    /// `LIMIT` with no limit, before an `OFFSET` (`LIMIT -1`, `LIMIT ALL`).
    const NO_LIMIT: &'static str;
    /// Null-safe equality (`IS`, `IS NOT DISTINCT FROM`).
    const NULL_SAFE_EQ: &'static str;
    /// What opens and closes a subquery of ids matched by primary key, read once and then
    /// probed in the `id` index whatever the table's size (`id IN (` … `)`; PostgreSQL's
    /// `id = ANY(ARRAY(` … `))`, which its planner never answers with a table scan).
    const ID_IN_SELECT: (&'static str, &'static str) = ("id IN (", ")");
    /// What is written around the placeholder of a bound `LIMIT` or `OFFSET` count: nothing,
    /// or SQLite's `(` … ` + 0)`, an expression its planner does not read. SQLite's planner
    /// reads a bare bound `LIMIT`, and then any new binding of it expires the prepared
    /// statement: it was prepared again on every call (`sqlite3_stmt_status` counts it).
    /// `OFFSET` is written the same way, one rule for both counts. The plans of every
    /// statement shape were the same either way (docs/BENCHMARKS.md).
    const BOUND_COUNT: (&'static str, &'static str) = ("", "");
    /// Appends the placeholder of the `n`-th bound value (1-based) to `sql`.
    fn placeholder(n: usize, sql: &mut String);
    /// Appends a test of the value at `path` of the `metadata_` column ([`MetadataTest`]),
    /// every key and value bound: the one place a backend says how it reads JSON
    /// (PostgreSQL's `jsonb`, SQLite's `json_*`). The expression may be NULL where the test
    /// fails unless `under_not` (it is inside a `NOT`, where it must be false instead): a
    /// bare form lets an index serve it. Never called with [`MetadataTest::In`]: core
    /// renders a list as equalities ORed.
    fn metadata_test(
        sql: &mut Statement<Self>,
        path: &[String],
        test: &MetadataTest,
        under_not: bool,
    ) where
        Self: Sized;
    /// The value of a record's `embedding` column in `table` (or NULL), in the encoding
    /// the backend stores there.
    fn embedding(
        table: crate::table::TableType,
        e: Option<&crate::embedding::Embedding>,
    ) -> Self::Bind;
}

/// A piece of a statement's text and the value of the placeholder after it (none after
/// the last piece); see [`Statement::pieces`].
pub type Piece<'s, D> = (&'s str, Option<&'s <D as Dialect>::Bind>);

/// SQL text and the values of its placeholders, in order.
pub struct Statement<D: Dialect> {
    /// The SQL text.
    pub text: String,
    /// The values of the placeholders, in order.
    pub binds: Vec<D::Bind>,
    /// Where each placeholder lies in `text` (byte ranges), for [`Statement::pieces`].
    spans: Vec<std::ops::Range<usize>>,
    /// Whether the text was built from a number of values (an `IN (…)` list, the rows of
    /// a multi-row `INSERT`, a filter list repeating a column): such texts are unbounded in
    /// number; see [`Statement::is_cacheable`].
    variable: bool,
    dialect: PhantomData<fn() -> D>,
}

impl<D: Dialect> std::fmt::Debug for Statement<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bound values may be caller data: only their count is shown.
        f.debug_struct("Statement")
            .field("text", &self.text)
            .field("binds", &self.binds.len())
            .finish()
    }
}

impl<D: Dialect> Statement<D> {
    /// A statement starting with `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Statement {
            text: text.into(),
            binds: Vec::new(),
            spans: Vec::new(),
            variable: false,
            dialect: PhantomData,
        }
    }

    /// Appends fixed SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends the next placeholder and binds `b` to it.
    pub fn bind(&mut self, b: D::Bind) -> &mut Self {
        self.binds.push(b);
        let start = self.text.len();
        D::placeholder(self.binds.len(), &mut self.text);
        self.spans.push(start..self.text.len());
        self
    }

    /// The text between placeholders, each piece with the value of the placeholder that
    /// follows it (the last piece with none): for drivers that write each placeholder
    /// themselves as they bind its value (diesel's `AstPass::push_bind_param`). `None`
    /// when `text` was changed other than through this type's methods, so that the
    /// placeholders can no longer be found.
    pub fn pieces(&self) -> Option<impl Iterator<Item = Piece<'_, D>> + '_> {
        // Checked once here: the pieces then need no allocation (diesel walks them often).
        let text = self.text.as_str();
        let end = self.spans.iter().try_fold(0, |at, span| {
            let between = at <= span.start && text.get(at..span.start).is_some();
            (between && text.get(span.clone()).is_some()).then_some(span.end)
        });
        let valid = self.spans.len() == self.binds.len()
            && end.is_some_and(|end| text.get(end..).is_some());
        valid.then(|| {
            let starts = std::iter::once(0).chain(self.spans.iter().map(|span| span.end));
            let ends = (self.spans.iter().map(|span| span.start)).chain([text.len()]);
            let binds = self.binds.iter().map(Some).chain([None]);
            starts
                .zip(ends)
                .zip(binds)
                .map(|((at, end), bind)| (text.get(at..end).unwrap_or_default(), bind))
        })
    }

    /// Appends the next placeholder and binds a backend-neutral value to it.
    pub fn param(&mut self, p: Param) -> &mut Self {
        self.bind(D::Bind::from(p))
    }

    /// Marks the text as built from a number of values (as [`list`](Self::list) does):
    /// the statement is then not [cacheable](Self::is_cacheable).
    pub fn varies(&mut self) -> &mut Self {
        self.variable = true;
        self
    }

    /// Appends ` (?, ?, …)`, one placeholder per value, each bound: an `IN` list. The
    /// text then varies with the number of values, so the statement is not
    /// [cacheable](Self::is_cacheable).
    pub fn list(&mut self, values: impl IntoIterator<Item = Param>) -> &mut Self {
        self.variable = true;
        self.push(" (");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.param(v);
        }
        self.push(")")
    }

    /// Whether the statement only reads (`SELECT …`, `WITH …`).
    pub fn is_read(&self) -> bool {
        self.text.starts_with("SELECT ") || self.text.starts_with("WITH ")
    }

    /// Whether a backend may keep the statement prepared on a connection, keyed by its
    /// text — the one rule both backends apply to their statement caches. A statement is
    /// cacheable when it reads ([`is_read`](Self::is_read)) and its text is one of a fixed
    /// set of shapes: not built from a number of values (an `IN (…)` list of
    /// [`list`](Self::list), the rows of [`Shapes::insert`], a filter list repeating a
    /// column), whose texts would fill every connection's cache — and the server's memory —
    /// as callers vary their batch sizes. Writes are prepared for each call (kept prepared,
    /// a write's first prepare blocked behind a lock would, if its session is ended, report
    /// libpq's words instead of the server's: diesel prepares with the synchronous
    /// `PQprepare`).
    pub fn is_cacheable(&self) -> bool {
        self.is_read() && !self.variable
    }

    /// Prefixes the text (`EXPLAIN …`); placeholders keep their numbers.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.text.insert_str(0, prefix);
        for span in &mut self.spans {
            *span = span.start + prefix.len()..span.end + prefix.len();
        }
        self
    }

    /// ` AND (created_at, id) <op> (?, ?)`.
    pub fn keyset(&mut self, op: &str, k: &Keyset) -> &mut Self {
        self.push(&format!(" AND (created_at, id) {op} ("))
            .param(Param::Time(k.created_at))
            .push(", ")
            .param(Param::Uuid(Some(k.id)))
            .push(")")
    }

    /// ` LIMIT ? [OFFSET ?]`; without a limit nothing (the dialect's [`Dialect::NO_LIMIT`]
    /// before an offset): SQLite sorts under any `LIMIT`, even `-1`, into a B-tree keeping
    /// the first rows, where without one its merge sorter costs 11% less (W4 `query_text`).
    pub fn limit_offset(&mut self, limit: Option<usize>, offset: usize) -> &mut Self {
        match limit {
            Some(l) => {
                self.push(" LIMIT ")
                    .bound_count(u64::try_from(l).unwrap_or(u64::MAX));
            }
            None if offset > 0 => {
                self.push(" ").push(D::NO_LIMIT);
            }
            None => {}
        }
        if offset > 0 {
            self.push(" OFFSET ")
                .bound_count(u64::try_from(offset).unwrap_or(u64::MAX));
        }
        self
    }

    /// Appends a bound `LIMIT` or `OFFSET` count, as the dialect writes one
    /// ([`Dialect::BOUND_COUNT`]).
    pub fn bound_count(&mut self, n: u64) -> &mut Self {
        let (open, close) = D::BOUND_COUNT;
        self.push(open)
            .param(Param::Int(Some(i64::try_from(n).unwrap_or(i64::MAX))))
            .push(close)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::Filter;
    use crate::scope::Scope;
    use crate::table::TableType;
    use crate::Column;

    /// A dialect of `?` placeholders.
    struct Question;
    impl Dialect for Question {
        type Bind = Param;
        const NO_LIMIT: &'static str = "LIMIT -1";
        const NULL_SAFE_EQ: &'static str = "IS";
        fn placeholder(_: usize, sql: &mut String) {
            sql.push('?');
        }
        fn embedding(_: TableType, e: Option<&crate::embedding::Embedding>) -> Param {
            Param::Text(e.map(|e| format!("{:?}", e.as_slice())))
        }
        fn metadata_test(
            sql: &mut Statement<Self>,
            path: &[String],
            _: &crate::filter::MetadataTest,
            _: bool,
        ) {
            sql.push("meta(")
                .param(Param::Text(Some(path.join("."))))
                .push(")");
        }
    }

    /// A dialect of `$n` placeholders.
    struct Dollar;
    impl Dialect for Dollar {
        type Bind = Param;
        const NO_LIMIT: &'static str = "LIMIT ALL";
        const NULL_SAFE_EQ: &'static str = "IS NOT DISTINCT FROM";
        fn placeholder(n: usize, sql: &mut String) {
            sql.push_str(&format!("${n}"));
        }
        fn embedding(_: TableType, e: Option<&crate::embedding::Embedding>) -> Param {
            Param::Text(e.map(|e| format!("{:?}", e.as_slice())))
        }
        fn metadata_test(
            sql: &mut Statement<Self>,
            path: &[String],
            _: &crate::filter::MetadataTest,
            _: bool,
        ) {
            sql.push("meta(")
                .param(Param::Text(Some(path.join("."))))
                .push(")");
        }
    }

    fn recent<D: Dialect<Bind = Param>>() -> Statement<D> {
        let scope = Scope::agent(Uuid::nil(), Uuid::nil());
        Shapes::<D>::new(TableType::RecallMemory, &scope, "x")
            .recent(&[Filter::eq(Column::Role, "user")], None)
    }

    #[test]
    fn pieces_put_each_value_where_its_placeholder_was() {
        let s = recent::<Dollar>().prefixed("EXPLAIN ");
        let pieces: Vec<_> = s.pieces().unwrap().collect();
        assert_eq!(
            pieces.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            vec![
                "EXPLAIN SELECT x FROM memgpt_recall_memory_agent WHERE user_id = ",
                " AND agent_id = ",
                " AND role = ",
                " ORDER BY created_at DESC, id DESC",
            ]
        );
        assert_eq!(pieces[2].1, Some(&Param::Text(Some("user".to_owned()))));
        assert_eq!(pieces[3].1, None);
        // Rebuilt with the dialect's placeholders, the text is the statement's.
        let mut again = String::new();
        for (n, (text, bind)) in pieces.iter().enumerate() {
            again.push_str(text);
            if bind.is_some() {
                Dollar::placeholder(n + 1, &mut again);
            }
        }
        assert_eq!(again, s.text);
        // Text changed behind the methods' back: no pieces, rather than wrong ones.
        let mut t = recent::<Question>();
        t.text = "SELECT 1".to_owned();
        assert!(t.pieces().is_none());
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        let s = recent::<Question>();
        assert_eq!(
            s.text,
            "SELECT x FROM memgpt_recall_memory_agent WHERE user_id = ? AND agent_id = ? \
             AND role = ? ORDER BY created_at DESC, id DESC"
        );
        assert_eq!(s.binds[2], Param::Text(Some("user".to_owned())));
        let s = recent::<Dollar>();
        assert_eq!(
            s.text,
            "SELECT x FROM memgpt_recall_memory_agent WHERE user_id = $1 AND agent_id = $2 \
             AND role = $3 ORDER BY created_at DESC, id DESC"
        );
        assert_eq!(s.binds.len(), 3);
    }

    /// The one caching rule: reads of a fixed shape are cacheable; writes, `IN (…)` lists,
    /// multi-row INSERTs (of any number of rows) and filter lists repeating a column are
    /// not — whatever the dialect.
    /// Column filters in any order make one text, each value bound to its column.
    #[test]
    fn column_filters_in_any_order_are_one_statement() {
        let scope = Scope::agent(Uuid::nil(), Uuid::nil());
        let s = Shapes::<Dollar>::new(TableType::Passages, &scope, "x");
        let (source, doc) = (
            Filter::eq(Column::DataSource, "s"),
            Filter::is_null(Column::DocId),
        );
        let agent = Filter::eq(Column::AgentId, Uuid::from_u128(7));
        let one = s.count(&[source.clone(), doc.clone(), agent.clone()]);
        let other = s.count(&[agent, doc, source]);
        assert_eq!((&one.text, &one.binds), (&other.text, &other.binds));
        let sorted = "$1 AND agent_id = $2 AND data_source = $3 AND doc_id IS NULL";
        assert!(
            one.is_cacheable() && one.text.ends_with(sorted),
            "{}",
            one.text
        );
    }

    #[test]
    fn only_reads_of_a_fixed_shape_are_cacheable() {
        fn check<D: Dialect<Bind = Param>>() {
            let scope = Scope::agent(Uuid::nil(), Uuid::nil());
            let s = Shapes::<D>::new(TableType::Passages, &scope, "x");
            let t0 = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
            let k = Keyset {
                created_at: t0,
                id: Uuid::nil(),
            };
            let two = [
                Filter::eq(Column::DataSource, "s"),
                Filter::is_null(Column::DocId),
            ];
            for read in [
                s.recent(&two, Some(3)),
                s.page(&two, Some(&k), 10),
                s.cursor(&[], Some(&k), Some(&k), 10, true),
                s.by_id(Uuid::nil()),
                s.keyset_of(Uuid::nil()),
                s.count(&two),
                s.dates(t0, t0, None, 2),
                s.sources(),
            ] {
                assert!(read.is_read() && read.is_cacheable(), "{}", read.text);
            }
            let row = || vec![Param::Int(Some(1)), Param::Int(Some(2))];
            for (write, read) in [
                (s.delete(&two), false),
                (s.update(&["id", "text"], row(), Uuid::nil()), false),
                (s.insert(&["id", "text"], [row()], false), false),
                (s.insert(&["id", "text"], [row(), row()], true), false),
                (s.count(&[two[0].clone(), two[0].clone()]), true),
            ] {
                assert_eq!(write.is_read(), read, "{}", write.text);
                assert!(!write.is_cacheable(), "{}", write.text);
            }
            let mut lookup = Statement::<D>::new("SELECT id FROM t WHERE id IN");
            lookup.list([Param::Uuid(Some(Uuid::nil()))]);
            assert!(lookup.is_read() && !lookup.is_cacheable());
            assert!(!lookup.prefixed("EXPLAIN ").is_cacheable());
        }
        check::<Question>();
        check::<Dollar>();
        let mut lookup = Statement::<Dollar>::new("SELECT id FROM t WHERE id IN");
        lookup.list((0..3).map(|i| Param::Int(Some(i))));
        assert_eq!(lookup.text, "SELECT id FROM t WHERE id IN ($1, $2, $3)");
        assert_eq!(lookup.pieces().unwrap().count(), 4);
    }
}
