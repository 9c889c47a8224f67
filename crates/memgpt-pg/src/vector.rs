//! Exact vector search on PostgreSQL: every embedding of the scope compared, by pgvector's
//! `<->`.

use memgpt_core::backend::VectorQuery;
use memgpt_core::statement::Shapes;
use memgpt_core::TableType;

use crate::sql::{Bind, Sql};
use crate::store::PgStore;

/// Exact: every embedding of the scope is compared (found through the scope's btree
/// index), never an approximate HNSW walk, whose result would depend on how many rows
/// other tenants have and where they lie (a walk filtered to one tenant stops after
/// `hnsw.max_scan_tuples` and may return fewer than `top_k`, or none). The `OFFSET 0`
/// fence keeps the planner from ordering by an index. The inner query orders ids only:
/// whole rows are read for the k hits.
///
/// Archival memory and passages compare `embedding_compact` (migration 000006: the
/// embedding cut to its `embedding_dim`, stored with the row) where the row's dimension
/// is the query's, so the scan reads no TOAST; any other row (another dimension, no
/// `embedding_dim`) and the other tables compare MemGPT's padded column with the query
/// zero-padded to 4096. Zero padding adds nothing to an L2 distance: both give the
/// distance of the padded vectors.
pub(crate) fn nearest(shapes: &Shapes<'_, PgStore>, query: &VectorQuery<'_>) -> Sql {
    let t = shapes.table.table_name();
    let padded = Bind::Vector(pgvector::Vector::from(
        query.embedding.padded(memgpt_core::MAX_EMBEDDING_DIM),
    ));
    let mut sql = Sql::new(format!(
        "SELECT {} FROM (SELECT id, distance FROM (SELECT id, ",
        shapes.select
    ));
    if has_compact_embedding(shapes.table) {
        let dim = i64::try_from(query.embedding.dim()).unwrap_or(i64::MAX);
        sql.push("CASE WHEN embedding_dim = ")
            .bind(Bind::Int(Some(dim)))
            .push(" AND embedding_compact IS NOT NULL THEN embedding_compact <-> ")
            .bind(Bind::Vector(pgvector::Vector::from(
                query.embedding.as_slice().to_vec(),
            )))
            .push(" ELSE embedding <-> ")
            .bind(padded)
            .push(" END");
    } else {
        sql.push("embedding <-> ").bind(padded);
    }
    sql.push(&format!(" AS distance FROM {t}"))
        .scope_where(shapes.table, shapes.scope, query.filters)
        .push(" AND embedding IS NOT NULL OFFSET 0) AS scoped ORDER BY distance, id")
        .limit_offset(Some(query.top_k), 0)
        .push(&format!(") AS hits JOIN {t} USING (id)"))
        // The tenant again on the join, so that every table reference is restricted by
        // user_id (a distributed PostgreSQL routes the whole statement to one shard).
        .scope_where(shapes.table, shapes.scope, &[])
        .push(" ORDER BY hits.distance, id");
    sql
}

/// Whether `table` has `embedding_compact` (migration 000006): archival memory and passages,
/// the tables vector search is for.
pub(crate) fn has_compact_embedding(table: TableType) -> bool {
    matches!(table, TableType::ArchivalMemory | TableType::Passages)
}
