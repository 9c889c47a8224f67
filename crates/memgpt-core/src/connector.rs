//! The connector, written once for every backend.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::backend::Scoped;
use crate::backend::{Backend, FullText, RankedText, Sql, TextQuery, VectorQuery, Written};
use crate::error::{Error, Result};
use crate::filter::{validate_all, Filter};
use crate::fulltext::query_words;
use crate::hybrid::{HybridOptions, WordCount};
use crate::record::{Embedding, Record};
use crate::retention::Retention;
use crate::row::{Count, DataSource};
use crate::scope::Scope;
use crate::source::{InTx, Internal, Source, Tx};
use crate::statement::Shapes;
use crate::storage_connector::{CursorPage, CursorRequest, Keyset, StorageConnector};
use crate::table::TableType;

/// A connector of one table, bound to one tenant, whose calls get their connection from
/// `S`: a store handle such as `SqliteStore` or `PgStore` (made by the store's
/// `connector`), or a unit of work ([`InTx`](crate::InTx), made by [`Tx::connector`](crate::Tx::connector)). Implements
/// [`StorageConnector`]; see there for each operation.
pub struct Connector<S: Source, R> {
    pub(crate) source: S,
    target: Scoped<S::Backend, R>,
}

impl<S: Source + Clone, R> Clone for Connector<S, R> {
    fn clone(&self) -> Self {
        Connector {
            source: self.source.clone(),
            target: self.target.clone(),
        }
    }
}

impl<S: Source, R> std::fmt::Debug for Connector<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("table", &self.target.table)
            .field("scope", &self.target.scope)
            .finish_non_exhaustive()
    }
}

impl<S: Source, R: Record> Connector<S, R> {
    /// A connector of `table` bound to `scope` whose calls get their connection from
    /// `source` (a store handle).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it.
    pub fn new(source: S, table: TableType, scope: Scope) -> Result<Self> {
        let target = Scoped::new(source.store().clone(), table, scope)?;
        Ok(Connector { source, target })
    }

    /// The store this connector works on.
    pub fn store(&self) -> &S::Backend {
        self.source.store()
    }

    /// The table, tenant and store of this connector, apart from its connection.
    pub fn target(&self) -> &Scoped<S::Backend, R> {
        &self.target
    }
}

impl<'t, B: Backend> Tx<'t, B> {
    /// A connector of `table` bound to `scope` that works inside this unit of work.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `R` is not the record type of `table`, or the scope
    /// does not fit it.
    pub fn connector<R: Record>(
        &self,
        table: TableType,
        scope: Scope,
    ) -> Result<Connector<InTx<'t, B>, R>> {
        Connector::new(self.source.clone(), table, scope)
    }
}

impl<S: Source, R: Record> Connector<S, R> {
    /// A query vector, checked: [`Error::VectorUnavailable`] where the store cannot search
    /// vectors, [`Error::InvalidInput`] (`query embedding`) when empty, too long, not finite
    /// or not of the store's enforced length.
    fn query_embedding(&self, embedding: &[f32]) -> Result<Embedding> {
        self.store().vector_support()?;
        let query = Embedding::new(embedding.to_vec()).map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid("query embedding", reason),
            other => other,
        })?;
        self.target
            .check_dim("query embedding", Some(query.dim()))?;
        Ok(query)
    }

    /// Runs a read of whole records, the statement `sql` makes (once more when the read
    /// runs again, [`Source::read`]).
    fn load(&self, sql: impl Fn() -> Sql<S::Backend>) -> Result<Vec<R>> {
        let table = self.target.table;
        self.source
            .read(Internal(()), |c| <S::Backend>::fetch(c, sql(), table))
    }

    /// Runs a write statement.
    fn execute(&self, sql: Sql<S::Backend>) -> Result<Written> {
        self.source
            .write(Internal(()), |c| <S::Backend>::execute(c, sql))
    }
}

impl<S: Source, R: Record> StorageConnector for Connector<S, R> {
    type Record = R;

    fn table_type(&self) -> TableType {
        self.target.table
    }

    fn scope(&self) -> &Scope {
        &self.target.scope
    }

    fn get_page(&self, filters: &[Filter], after: Option<&Keyset>, limit: usize) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get_page", || {
            validate_all(filters, t.table)?;
            self.load(|| t.shapes().page(filters, after, limit))
        })
    }

    fn get_all_cursor(&self, request: &CursorRequest) -> Result<CursorPage<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get_all_cursor", || {
            validate_all(&request.filters, t.table)?;
            self.source.read(Internal(()), |conn| {
                let after = request.after.map(|id| t.keyset_of(conn, id)).transpose()?;
                let before = request.before.map(|id| t.keyset_of(conn, id)).transpose()?;
                let sql = t.shapes().cursor(
                    &request.filters,
                    after.as_ref(),
                    before.as_ref(),
                    request.limit,
                    request.reverse,
                );
                let records: Vec<R> = <S::Backend>::fetch(conn, sql, t.table)?;
                Ok(CursorPage {
                    last_id: records.last().map(Record::id),
                    records,
                })
            })
        })
    }

    fn get_all(&self, filters: &[Filter], limit: Option<usize>) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get_all", || {
            validate_all(filters, t.table)?;
            self.load(|| t.shapes().recent(filters, limit))
        })
    }

    fn get(&self, id: Uuid) -> Result<Option<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "get", || {
            Ok(self.load(|| t.shapes().by_id(id))?.into_iter().next())
        })
    }

    fn size(&self, filters: &[Filter]) -> Result<u64> {
        let t = &self.target;
        crate::trace::call(t.table, "size", || {
            validate_all(filters, t.table)?;
            let n = self.source.read(Internal(()), |c| {
                <S::Backend>::fetch::<Count>(c, t.shapes().count(filters), t.table)
            })?;
            Ok(n.first().map_or(0, |n| n.0))
        })
    }

    fn insert(&self, record: &R) -> Result<()> {
        let t = &self.target;
        crate::trace::call(t.table, "insert", || {
            t.check_owner(record)?;
            self.source
                .write(Internal(()), |c| t.insert_chunk(c, &[(0, record)], true))
                .map(|_| ())
        })
    }

    fn insert_many<I>(&self, records: I, exists_ok: bool) -> Result<u64>
    where
        I: IntoIterator<Item = R>,
        I::IntoIter: Send,
    {
        let t = &self.target;
        crate::trace::call(t.table, "insert_many", || {
            let size = self.store().chunk_size().max(1);
            // Read to its first end, never asked again (an iterator may yield more after a
            // `None`; every path below may ask once more).
            let mut iter = records.into_iter().fuse().enumerate();
            // The first records are pulled before a connection is taken (none for an
            // empty call). The iterator cannot reach this unit of work, if any: it is
            // `Send`, and nothing referring to a unit of work is.
            let head: Vec<(usize, R)> = iter.by_ref().take(size + 1).collect();
            if head.is_empty() {
                return self.source.usable(Internal(())).map(|()| 0);
            }
            self.source.write(Internal(()), |conn| {
                let many = head.len() > self.store().bulk_from(t.table).min(size);
                let mut all = head.into_iter().chain(iter.by_ref());
                if many {
                    if let Some(done) = self.store().bulk_insert(t, conn, &mut all, exists_ok) {
                        return done;
                    }
                }
                t.insert_chunks(conn, &mut all, exists_ok)
            })
        })
    }

    fn update(&self, record: &R) -> Result<()> {
        let t = &self.target;
        crate::trace::call(t.table, "update", || {
            t.check_owner(record)?;
            let id = record.id();
            let values = record.values::<S::Backend>(t.table);
            match self.execute(t.shapes().update(R::COLUMNS, values, id))? {
                Written::Rows(0) => Err(Error::NotFound { table: t.table, id }),
                Written::Rows(_) => Ok(()),
                Written::UniqueViolation => Err(Error::AlreadyExists { table: t.table, id }),
            }
        })
    }

    fn query(&self, embedding: &[f32], top_k: usize, filters: &[Filter]) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "query", || {
            let query = self.query_embedding(embedding)?;
            validate_all(filters, t.table)?;
            if top_k == 0 || t.table == TableType::Documents {
                return Ok(Vec::new());
            }
            let query = VectorQuery {
                embedding: &query,
                top_k,
                filters,
            };
            self.load(|| <S::Backend>::nearest(&t.shapes(), &query))
        })
    }

    fn hybrid_with(
        &self,
        text: &str,
        embedding: &[f32],
        top_k: usize,
        filters: &[Filter],
        options: &HybridOptions,
    ) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "hybrid", || {
            options.validate()?;
            // Documents have no embedding, and a side weighted 0 is left out: the query
            // vector is then neither needed nor checked.
            let vector_side = t.table != TableType::Documents && options.vector_weight > 0.0;
            let query = match vector_side {
                true => Some(self.query_embedding(embedding)?),
                false => None,
            };
            validate_all(filters, t.table)?;
            let words = crate::hybrid::text_words(text)?;
            if top_k == 0 {
                return Ok(Vec::new());
            }
            let (shapes, per_side) = (t.shapes(), options.per_side(top_k));
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let text_side = !words.is_empty() && options.text_weight > 0.0;
            let nearest = |embedding| {
                let query = VectorQuery {
                    embedding,
                    top_k: per_side,
                    filters,
                };
                <S::Backend>::nearest(&shapes, &query)
            };
            // Both sides on one connection, one after the other.
            let (by_text, by_vector) = self.source.read(Internal(()), |c| {
                let by_text = match text_side {
                    true => ranked_by_text(c, &shapes, &words, filters, per_side)?,
                    false => Vec::new(),
                };
                let by_vector = match &query {
                    Some(embedding) => <S::Backend>::fetch::<R>(c, nearest(embedding), t.table)?,
                    None => Vec::new(),
                };
                Ok((by_text, by_vector))
            })?;
            Ok(crate::hybrid::fuse(by_text, by_vector, options, top_k))
        })
    }

    fn prune_batch(&self, rule: &Retention, batch: usize) -> Result<u64> {
        crate::trace::call(self.target.table, "prune", || {
            let sql = crate::retention::prune_statement(&self.target, rule, batch)?;
            match self.execute(sql)? {
                Written::Rows(n) => Ok(n as u64),
                Written::UniqueViolation => Err(Error::database("a delete met a unique violation")),
            }
        })
    }

    fn query_date(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "query_date", || {
            self.load(|| t.shapes().dates(start, end, limit, offset))
        })
    }

    fn query_text_with(
        &self,
        query: &str,
        filters: &[Filter],
        limit: Option<usize>,
        offset: usize,
    ) -> Result<Vec<R>> {
        let t = &self.target;
        crate::trace::call(t.table, "query_text", || {
            validate_all(filters, t.table)?;
            let words = query_words(query)?;
            if words.is_empty() {
                return Ok(Vec::new());
            }
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let query = TextQuery {
                words: &words,
                filters,
                limit,
                offset,
            };
            self.load(|| <S::Backend>::text_match(&t.shapes(), &query))
        })
    }

    fn delete(&self, filters: &[Filter]) -> Result<u64> {
        let t = &self.target;
        crate::trace::call(t.table, "delete", || {
            validate_all(filters, t.table)?;
            match self.execute(t.shapes().delete(filters))? {
                Written::Rows(n) => Ok(n as u64),
                Written::UniqueViolation => Err(Error::database("a delete met a unique violation")),
            }
        })
    }

    fn list_data_sources(&self) -> Result<Vec<String>> {
        let t = &self.target;
        crate::trace::call(t.table, "list_data_sources", || {
            if t.table == TableType::RecallMemory {
                return Ok(Vec::new());
            }
            let sources = self.source.read(Internal(()), |c| {
                <S::Backend>::fetch::<DataSource>(c, t.shapes().sources(), t.table)
            })?;
            Ok(sources.into_iter().map(|s| s.0).collect())
        })
    }
}

/// The text side of a hybrid search on `c`: how many records hold each word, then at most
/// `limit` records ranked by the weights of the words they hold
/// ([`word_weights`](crate::hybrid::word_weights)). Words no record holds are left out;
/// none held: nothing to rank.
fn ranked_by_text<B: Backend, R: Record>(
    c: &mut B::Conn,
    shapes: &Shapes<'_, B>,
    words: &[&str],
    filters: &[Filter],
    limit: usize,
) -> Result<Vec<R>> {
    let all = RankedText {
        words,
        weights: &[],
        filters,
        limit,
    };
    let counts: Vec<WordCount> = B::fetch(c, B::text_frequencies(shapes, &all), shapes.table)?;
    let (held, weights): (Vec<&str>, Vec<i64>) = words
        .iter()
        .zip(crate::hybrid::word_weights(&counts, words.len()))
        .filter_map(|(w, weight)| Some((*w, weight?)))
        .unzip();
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let query = RankedText {
        words: &held,
        weights: &weights,
        ..all
    };
    B::fetch(c, B::text_ranked(shapes, &query), shapes.table)
}
