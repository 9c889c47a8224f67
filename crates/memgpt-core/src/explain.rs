//! What a connector's statements cost: the database's plan of every query pattern.

use crate::backend::{Backend, FullText, RankedText, Sql, TextQuery, VectorQuery};
use crate::connector::Connector;
use crate::embedding::Embedding;
use crate::error::Result;
use crate::plan::QueryPlan;
use crate::record::Record;
use crate::source::{Internal, Source};
use crate::table::TableType;

impl<S: Source, R: Record> Connector<S, R> {
    /// Runs the backend's `EXPLAIN` (never executing anything) on every query pattern
    /// this connector issues, with sample arguments in its scope. `cargo xtask doctor`
    /// prints these and flags any plan that reads a whole table.
    ///
    /// # Errors
    /// What the database reports.
    pub fn explain(&self) -> Result<Vec<QueryPlan>> {
        let t = self.target();
        let vectors = t.table != TableType::Documents && self.store().vector_support().is_ok();
        let probe = vectors.then(|| Embedding::new(vec![0.0; 8])).transpose()?;
        self.source.read(Internal(()), |conn| {
            self.patterns(probe.as_ref())
                .into_iter()
                .map(|(operation, sql)| <S::Backend>::explain(conn, sql, t.table, operation))
                .collect()
        })
    }

    /// Every query pattern of this connector with sample arguments, named; vector search
    /// with `probe`, where there is one.
    fn patterns(&self, probe: Option<&Embedding>) -> Vec<(&'static str, Sql<S::Backend>)> {
        let t = self.target();
        let shapes = t.shapes();
        let mut patterns: Vec<(&'static str, Sql<S::Backend>)> = shapes.explain_patterns();
        let text = TextQuery {
            words: &["memory"],
            filters: &[],
            limit: None,
            offset: 0,
        };
        patterns.push(("query_text", <S::Backend>::text_match(&shapes, &text)));
        let ranked = RankedText {
            words: &["memory", "agent"],
            weights: &[1, 1],
            filters: &[],
            limit: crate::hybrid::DEFAULT_CANDIDATES,
        };
        let frequencies = <S::Backend>::text_frequencies(&shapes, &ranked);
        patterns.push(("hybrid_text_frequencies", frequencies));
        patterns.push(("hybrid_text", <S::Backend>::text_ranked(&shapes, &ranked)));
        let week_ago = chrono::Utc::now() - chrono::Duration::days(7);
        let older = [crate::Filter::created_at(crate::filter::Cmp::Lt, week_ago)];
        patterns.push(("prune", shapes.prune_batch(&older, None, 1_000)));
        patterns.push((
            "prune_keep_newest",
            shapes.prune_batch(&[], Some(1_000), 1_000),
        ));
        if t.table != TableType::RecallMemory {
            let on_metadata = [crate::Filter::metadata("topic").eq("memory")];
            patterns.push(("metadata_filter", shapes.recent(&on_metadata, Some(10))));
        }
        if let Some(embedding) = probe {
            let query = VectorQuery {
                embedding,
                top_k: 10,
                filters: &[],
            };
            patterns.push(("query", <S::Backend>::nearest(&shapes, &query)));
        }
        patterns
    }
}
