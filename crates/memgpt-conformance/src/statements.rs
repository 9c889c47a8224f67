//! Every statement shape a connector issues, as text, for the backends' golden files.

use memgpt_core::backend::{Backend, RankedText, Sql, TextQuery, VectorQuery};
use memgpt_core::record::columns;
use memgpt_core::statement::{Param, Shapes};
use memgpt_core::{Column, Embedding, Filter, Keyset, Scope, TableType};
use uuid::Uuid;

/// Every statement shape a connector of backend `B` issues, with sample arguments, as
/// text: `name: SQL` lines, one table after another. Backends compare it with a golden
/// file of theirs (`tests/golden/statements.txt`), so that a change of any statement in
/// either dialect shows in review.
pub fn statement_shapes<B: Backend>() -> String {
    let agent = Scope::agent(Uuid::from_u128(1), Uuid::from_u128(2));
    let user = Scope::user(Uuid::from_u128(1));
    let mut out = String::new();
    let mut shapes_of = |table: TableType,
                         scope: &Scope,
                         select: &str,
                         columns: &[&str],
                         nearest: Option<Sql<B>>| {
        let s = Shapes::<B>::new(table, scope, select);
        let t0 =
            chrono::DateTime::<chrono::Utc>::from_timestamp(1_704_067_200, 0).unwrap_or_default();
        let k = Keyset {
            created_at: t0,
            id: Uuid::nil(),
        };
        let filters = [
            Filter::eq(Column::DataSource, "s"),
            Filter::is_null(Column::DocId),
        ];
        let filters: &[Filter] =
            if table == TableType::Passages || table == TableType::ArchivalMemory {
                &filters
            } else {
                &[]
            };
        let ranked = RankedText {
            words: &["banana", "bread"],
            weights: &[1_386_294, 693_147],
            filters,
            limit: 100,
        };
        let mut stmts: Vec<(&str, Sql<B>)> = vec![
            ("page", s.page(filters, Some(&k), 100)),
            ("cursor", s.cursor(filters, Some(&k), Some(&k), 10, true)),
            ("recent", s.recent(filters, None)),
            ("get", s.by_id(Uuid::nil())),
            ("keyset_of", s.keyset_of(Uuid::nil())),
            ("size", s.count(filters)),
            ("query_date", s.dates(t0, t0, Some(5), 2)),
            ("delete", s.delete(filters)),
            (
                "prune_older",
                s.prune_batch(
                    &[Filter::created_at(memgpt_core::filter::Cmp::Lt, t0)],
                    None,
                    1_000,
                ),
            ),
            ("prune_keep_newest", s.prune_batch(&[], Some(500), 1_000)),
            (
                "text_match",
                B::text_match(
                    &s,
                    &TextQuery {
                        words: &["banana", "bread"],
                        filters,
                        limit: Some(3),
                        offset: 1,
                    },
                ),
            ),
            ("hybrid_text_frequencies", B::text_frequencies(&s, &ranked)),
            ("hybrid_text", B::text_ranked(&s, &ranked)),
        ];
        if table != TableType::RecallMemory {
            let tests = [Filter::or([
                Filter::metadata("topic").eq("rust"),
                Filter::metadata_path(["scores", "relevance"]).gt(0.5),
                Filter::metadata("title").lt("m"),
                Filter::metadata("tags").contains("draft"),
                Filter::metadata("tags").is_in(["a", "b"]),
                Filter::not(Filter::metadata("archived").exists()),
                Filter::and([
                    Filter::created_at(memgpt_core::filter::Cmp::Ge, t0),
                    Filter::eq(Column::DataSource, "s"),
                ]),
            ])];
            stmts.push(("size+metadata", s.count(&tests)));
            stmts.push(("list_data_sources", s.sources()));
        }
        if let Some(n) = nearest {
            stmts.push(("nearest", n));
        }
        out.push_str(&format!("# {table}\n"));
        for (name, sql) in stmts {
            out.push_str(&format!(
                "{name}: {} [{} binds]\n",
                sql.text,
                sql.binds.len()
            ));
        }
        let row = || -> Vec<B::Bind> {
            columns
                .iter()
                .map(|_| B::Bind::from(Param::Int(None)))
                .collect()
        };
        for (name, exists_ok) in [("insert", false), ("insert+upsert", true)] {
            // As the connector sends a chunk: the ids written come back.
            let mut insert = s.insert(columns, [row(), row()], exists_ok);
            insert.push(" RETURNING id");
            out.push_str(&format!(
                "{name}: {} [{} binds]\n",
                insert.text,
                insert.binds.len()
            ));
        }
        let update = s.update(columns, row(), Uuid::nil());
        out.push_str(&format!(
            "update: {} [{} binds]\n",
            update.text,
            update.binds.len()
        ));
        // The select list names the stored columns, in order.
        let named: Vec<&str> = select
            .split(", ")
            .map(|c| c.rsplit(" AS ").next().unwrap_or(c).trim())
            .collect();
        out.push_str(&format!(
            "select list names the columns: {}\n",
            named == columns
        ));
    };
    let probe = Embedding::new(vec![0.5; 4]).ok();
    let top10 = |embedding| VectorQuery {
        embedding,
        top_k: 10,
        filters: &[],
    };
    for (table, scope) in [
        (TableType::RecallMemory, &agent),
        (TableType::ArchivalMemory, &agent),
        (TableType::Passages, &user),
        (TableType::Documents, &user),
    ] {
        let select = B::select(table);
        let nearest = probe
            .as_ref()
            .filter(|_| table != TableType::Documents)
            .map(|q| B::nearest(&Shapes::new(table, scope, select), &top10(q)));
        shapes_of(table, scope, select, columns(table), nearest);
    }
    out
}
