//! Full-text search on PostgreSQL: `query_text` and the two statements of a hybrid
//! search's text side, each answered by the GIN index of migration 000007 (the words of a
//! text under the full-text rule of [`memgpt_core::fulltext`] and the tenant's lexemes),
//! never by reading the texts.

use memgpt_core::backend::{FullText, RankedText, TextQuery};
use memgpt_core::statement::{Param, Shapes};
use memgpt_core::TableType;

use crate::sql::Sql;
use crate::store::PgStore;

impl FullText for PgStore {
    /// `query_text`: the words come folded by the full-text rule; the query is one `tsquery`
    /// of the tenant's lexeme and every word, ANDed, each a quoted lexeme (never operator
    /// syntax), matched against the GIN index: the words of the text's first
    /// [`FULL_TEXT_INDEXED_CHARS`](memgpt_core::FULL_TEXT_INDEXED_CHARS) characters by
    /// `memgpt_text_words` and the tenant's lexemes.
    fn text_match(shapes: &Shapes<'_, Self>, query: &TextQuery<'_>) -> Sql {
        // The index holds the words and the tenant's lexemes: the CTE asks for both, so GIN's
        // fast scan walks the tenant's short posting list and skips through a common word's.
        // MATERIALIZED keeps the planner from answering it with the scope's btree index
        // instead, which recomputes every row's words; the CTE has no other predicate, so no
        // join: the outer query only applies the exact scope and the order to the tenant's
        // hits.
        let t = shapes.table.table_name();
        let indexed = text_index_expression(shapes.table);
        let mut sql = Sql::new(format!(
            "WITH hits AS MATERIALIZED (SELECT {} FROM {t} WHERE {indexed} @@ ",
            shapes.select
        ));
        sql.param(Param::Text(Some(text_tsquery(
            &tenant(shapes),
            query.words,
        ))))
        .push("::tsquery) SELECT * FROM hits");
        sql.scope_where(shapes.table, shapes.scope, query.filters)
            .push(" ORDER BY created_at, id")
            .limit_offset(query.limit, query.offset);
        sql
    }

    /// How many records of the scope and filters hold each word, and any (`word` -1): one GIN
    /// lookup per word (the tenant's lexeme and the word), joined to the table by id for the
    /// exact scope and filters, counted per word.
    fn text_frequencies(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql {
        let t = shapes.table.table_name();
        let mut sql = Sql::new("WITH words AS MATERIALIZED (");
        lookups(&mut sql, shapes, query.words, |sql, i| {
            sql.push(&format!("SELECT {i} AS word, id"));
        });
        sql.push(&format!(
            "), scoped AS MATERIALIZED (SELECT word, id FROM words JOIN {t} USING (id)"
        ))
        .scope_where(shapes.table, shapes.scope, query.filters)
        .push(
            ") SELECT CAST(-1 AS bigint) AS word, count(DISTINCT id) AS n FROM scoped \
             UNION ALL SELECT CAST(word AS bigint), count(*) FROM scoped GROUP BY word",
        );
        sql
    }

    /// The records holding any word, ranked by the sum of the weights of the words each holds:
    /// one GIN lookup per word (the tenant's lexeme and the word) carrying its weight, `UNION
    /// ALL` and summed by a `GROUP BY` (a hash aggregate, which spills to disk rather than grow
    /// past `work_mem`), joined to the table by id for the exact scope and filters, never
    /// computing a text's words (a lookup of the words ORed would be planned as a table scan
    /// that does, once they are common). Whole rows are read for the `limit` ranked only.
    /// Integer weights: the sum is exact in any order.
    fn text_ranked(shapes: &Shapes<'_, Self>, query: &RankedText<'_>) -> Sql {
        let t = shapes.table.table_name();
        let mut sql =
            Sql::new("WITH words AS MATERIALIZED (SELECT id, sum(weight) AS matched FROM (");
        debug_assert_eq!(query.words.len(), query.weights.len(), "a weight per word");
        // Words and weights in pairs (a word without a weight is left out, as on SQLite).
        let weighed = &query.words[..query.words.len().min(query.weights.len())];
        lookups(&mut sql, shapes, weighed, |sql, i| {
            let weight = query.weights[i];
            sql.push("SELECT id, CAST(")
                .param(Param::Int(Some(weight)))
                .push(" AS bigint) AS weight");
        });
        sql.push(&format!(
            ") AS w GROUP BY id), ranked AS (SELECT id, matched FROM words JOIN {t} USING (id)"
        ))
        .scope_where(shapes.table, shapes.scope, query.filters)
        .push(" ORDER BY matched DESC, id")
        .limit_offset(Some(query.limit), 0)
        .push(&format!(
            ") SELECT {} FROM ranked JOIN {t} USING (id)",
            shapes.select
        ))
        // The tenant again on the join, as in `nearest`.
        .scope_where(shapes.table, shapes.scope, &[])
        .push(" ORDER BY ranked.matched DESC, id");
        sql
    }
}

/// One GIN lookup per word (the tenant's lexeme and the word), `UNION ALL`: the `i`th
/// selects what `select(sql, i)` writes (a `SELECT` list without `FROM`). The statement's
/// text varies with the number of words.
fn lookups(
    sql: &mut Sql,
    shapes: &Shapes<'_, PgStore>,
    words: &[&str],
    mut select: impl FnMut(&mut Sql, usize),
) {
    let t = shapes.table.table_name();
    let indexed = text_index_expression(shapes.table);
    let tenant = tenant(shapes);
    sql.varies();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        select(sql, i);
        sql.push(&format!(" FROM {t} WHERE {indexed} @@ "))
            .param(Param::Text(Some(text_tsquery(&tenant, &[w]))))
            .push("::tsquery");
    }
}

/// The tenant's word (`a…` / `u…`) as the index spells it: `a:…` / `u:…`.
fn tenant(shapes: &Shapes<'_, PgStore>) -> String {
    let tenant = shapes.text_tenant();
    let (kind, id) = tenant.split_at(1);
    format!("{kind}:{id}")
}

/// The expression of a table's full-text GIN index (migration 000007): the words of the
/// text's first [`FULL_TEXT_INDEXED_CHARS`](memgpt_core::FULL_TEXT_INDEXED_CHARS)
/// characters under the full-text rule (`memgpt_text_words`, [`memgpt_core::fulltext`]) and
/// the tenant's lexemes, `u:` + the user id's hex digits and, where the table has an agent,
/// `a:` + the agent id's (a `:` separates words: no word of a text equals them); no
/// positions.
fn text_index_expression(table: TableType) -> String {
    let tenant = if table == TableType::Documents {
        "'u:' || replace(user_id::text, '-', '')"
    } else {
        "'u:' || replace(user_id::text, '-', ''), 'a:' || replace(coalesce(agent_id::text, ''), '-', '')"
    };
    format!(
        "array_to_tsvector(memgpt_text_words(left(coalesce(text, ''), {})) || ARRAY[{tenant}])",
        memgpt_core::FULL_TEXT_INDEXED_CHARS
    )
}

/// The `tsquery` text of a search: the tenant's lexeme and every word, ANDed, each quoted
/// (a quote or backslash doubled, although folded words hold neither: both separate words).
fn text_tsquery(tenant: &str, words: &[&str]) -> String {
    std::iter::once(tenant)
        .chain(words.iter().copied())
        .map(quote)
        .collect::<Vec<_>>()
        .join(" & ")
}

/// A quoted lexeme.
fn quote(w: &str) -> String {
    format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tsquery_quotes_every_lexeme() {
        assert_eq!(
            super::text_tsquery("a00ff", &["to", "be"]),
            "'a00ff' & 'to' & 'be'"
        );
        assert_eq!(
            super::text_tsquery("u1", &["it's", "a\\b"]),
            "'u1' & 'it''s' & 'a\\\\b'"
        );
    }
}
