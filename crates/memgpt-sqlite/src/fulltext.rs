//! Full-text search on SQLite: `query_text` and the two statements of a hybrid search's
//! text side, each answered by the table's FTS5 index (migrations 000005 and 000007: the
//! tenant's word in its `scope` column, the text's words under the full-text rule of
//! [`memgpt_core::fulltext`] in its `text` column), never by reading the texts.
//!
//! Each word (folded by the rule: one FTS5 token, which the tokenizer leaves as it is)
//! becomes an FTS5 string (`"…"` with quotes doubled): matched literally, never read as
//! FTS5 syntax; the tenant is a uuid, never user text.

use memgpt_core::backend::{FullText, RankedText, TextQuery};
use memgpt_core::statement::{Param, Shapes};

use crate::sql::Sql;
use crate::store::SqliteStore;

impl FullText for SqliteStore {
    /// `query_text`: the tenant's word first (FTS5 walks its short posting list and skips
    /// through the words'), the words ANDed.
    fn text_match(shapes: &Shapes<'_, Self>, query: &TextQuery<'_>) -> Sql {
        let words: Vec<String> = query.words.iter().map(|w| quoted(w)).collect();
        let t = shapes.table.table_name();
        let mut sql = shapes.select();
        sql.scope_where(shapes.table, shapes.scope, query.filters)
            .push(&format!(" AND {}", in_fts(t)))
            .param(Param::Text(Some(fts(shapes, &words.join(" ")))))
            .push(") ORDER BY created_at, id")
            .limit_offset(query.limit, query.offset);
        sql
    }

    /// How many records of the scope and filters hold each word, and any (`word` -1): the
    /// scope's hits of any word (one FTS5 lookup), then counted per word by one FTS5 lookup
    /// each.
    fn text_frequencies(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql {
        let t = shapes.table.table_name();
        let mut sql = Sql::new(format!(
            "WITH hits AS MATERIALIZED (SELECT rowid AS r FROM {t}"
        ));
        sql.varies()
            .scope_where(shapes.table, shapes.scope, query.filters)
            .push(&format!(" AND {}", in_fts(t)))
            .param(Param::Text(Some(any_word(shapes, query.words))))
            .push(")) SELECT -1 AS word, count(*) AS n FROM hits");
        for (i, w) in query.words.iter().enumerate() {
            sql.push(&format!(
                " UNION ALL SELECT {i}, count(*) FROM hits WHERE r IN (SELECT rowid FROM {t}_fts \
                 WHERE {t}_fts MATCH "
            ))
            .param(Param::Text(Some(fts(shapes, &quoted(w)))))
            .push(")");
        }
        sql
    }

    /// The hits of any word, ranked by the sum of the weights of the words each holds: one FTS5
    /// lookup per word (`rowid IN (…)`, evaluated once per statement) times its weight, never a
    /// read of the texts. Whole rows are read for the `limit` ranked only. Integer weights:
    /// the sum is exact.
    fn text_ranked(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql {
        let t = shapes.table.table_name();
        let mut sql = Sql::new(format!(
            "SELECT {} FROM {t} JOIN (SELECT rowid AS memgpt_rowid, (",
            shapes.select
        ));
        sql.varies();
        debug_assert_eq!(query.words.len(), query.weights.len(), "a weight per word");
        for (i, (w, weight)) in query.words.iter().zip(query.weights).enumerate() {
            if i > 0 {
                sql.push(" + ");
            }
            sql.push(&format!("({}", in_fts(t)))
                .param(Param::Text(Some(fts(shapes, &quoted(w)))))
                .push(")) * ")
                .param(Param::Int(Some(*weight)));
        }
        sql.push(&format!(") AS matched FROM {t}"))
            .scope_where(shapes.table, shapes.scope, query.filters)
            .push(&format!(" AND {}", in_fts(t)))
            .param(Param::Text(Some(any_word(shapes, query.words))))
            .push(") ORDER BY matched DESC, id")
            .limit_offset(Some(query.limit), 0)
            .push(&format!(
                ") AS ranked ON {t}.rowid = ranked.memgpt_rowid ORDER BY ranked.matched DESC, {t}.id"
            ));
        sql
    }
}

/// `rowid IN (SELECT rowid FROM <t>_fts WHERE <t>_fts MATCH `, left open for the query.
fn in_fts(t: &str) -> String {
    format!("rowid IN (SELECT rowid FROM {t}_fts WHERE {t}_fts MATCH ")
}

/// The FTS5 query of the tenant and `text` (FTS5 strings).
fn fts(shapes: &Shapes<'_, SqliteStore>, text: &str) -> String {
    format!("scope:\"{}\" AND text:({text})", shapes.text_tenant())
}

/// The FTS5 query of the tenant and any of `words`.
fn any_word(shapes: &Shapes<'_, SqliteStore>, words: &[&str]) -> String {
    let any: Vec<String> = words.iter().map(|w| quoted(w)).collect();
    fts(shapes, &any.join(" OR "))
}

/// `w` as an FTS5 string.
fn quoted(w: &str) -> String {
    format!("\"{}\"", w.replace('"', "\"\""))
}
