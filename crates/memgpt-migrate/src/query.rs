//! A [`Statement`] of memgpt-core as a diesel query, for either backend: the one shim both
//! backends run their statements through. Each backend's bind type says how it binds
//! ([`BindValue`]).

use diesel::backend::Backend;
use diesel::deserialize::FromSql;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::row::Row;
use diesel::{QueryResult, RunQueryDsl};
use memgpt_core::row::{Col, Undecodable};
use memgpt_core::statement::{Dialect, Statement};

/// How a bound value of a backend's dialect goes into diesel's query.
pub trait BindValue<DB: Backend> {
    /// Pushes the value as the next bind parameter of `out`.
    ///
    /// # Errors
    /// diesel's, when the value does not serialize.
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

/// The diesel query of `sql`, with every value bound. A
/// [cacheable](memgpt_core::statement::Statement::is_cacheable) statement (a read of a
/// fixed shape) is a prepared statement kept in the connection's statement cache, keyed by
/// its text: the database parses it once per connection, not once per call (diesel's
/// `sql_query` is never cached). Any other — a write, or a read whose text varies with a
/// number of values (`IN (…)`) — is prepared for each call, so that varying batch sizes
/// never grow the cache.
pub fn query<D: Dialect>(sql: Statement<D>) -> Prepared<D> {
    let cache = sql.is_cacheable();
    Prepared { sql, cache }
}

/// A [`Statement`] as diesel runs it; see [`query`].
pub struct Prepared<D: Dialect> {
    sql: Statement<D>,
    cache: bool,
}

impl<D: Dialect> QueryId for Prepared<D> {
    type QueryId = ();
    // Keyed by its SQL text and bind types in the statement cache.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<D: Dialect> Query for Prepared<D> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<D: Dialect, Conn> RunQueryDsl<Conn> for Prepared<D> {}

impl<D: Dialect, DB: Backend> QueryFragment<DB> for Prepared<D>
where
    D::Bind: BindValue<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        let Some(pieces) = self.sql.pieces() else {
            return Err(diesel::result::Error::QueryBuilderError(
                "a statement's text was changed behind its placeholders".into(),
            ));
        };
        for (text, bind) in pieces {
            out.push_sql(text);
            if let Some(b) = bind {
                b.bind(&mut out)?;
            }
        }
        Ok(())
    }
}

/// Column `c` of a diesel row, read by its place in the select list (debug builds check
/// its name too): the one column reader of both backends' `Row`s.
///
/// # Errors
/// [`Undecodable`] naming the column: missing, of another type, or (debug builds) named
/// otherwise.
pub fn column<'a, DB, R, ST, T>(row: &R, c: Col) -> Result<T, Undecodable>
where
    DB: Backend,
    R: Row<'a, DB>,
    T: FromSql<ST, DB>,
{
    use diesel::row::Field;
    let field = field(row, c)?;
    T::from_nullable_sql(field.value()).map_err(|e| Undecodable::new(c.name, e))
}

/// Column `c`'s field of a diesel row, by its place in the select list (debug builds check
/// its name too), for a backend that reads its value in place.
///
/// # Errors
/// [`Undecodable`] naming the column: missing, or (debug builds) named otherwise.
pub fn field<'r, 'a: 'r, DB, R>(row: &'r R, c: Col) -> Result<R::Field<'r>, Undecodable>
where
    DB: Backend,
    R: Row<'a, DB>,
{
    let field = Row::get(row, c.at).ok_or_else(|| {
        Undecodable::new(c.name, format!("the select list has no column {}", c.at))
    })?;
    #[cfg(debug_assertions)]
    {
        use diesel::row::Field;
        match field.field_name() {
            Some(name) if name == c.name => {}
            other => {
                return Err(Undecodable::new(
                    c.name,
                    format!("the select list has {other:?} at {}", c.at),
                ))
            }
        }
    }
    Ok(field)
}
