//! PostgreSQL's rows as core reads them ([`memgpt_core::row::Row`]): its native types,
//! and MemGPT's embeddings zero-padded to 4096 (read as `real[]`).

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, QueryableByName};
use diesel::pg::data_types::PgTimestamp;
use diesel::pg::Pg;
use diesel::row::NamedRow;
use diesel::sql_types::{Array, BigInt, Float4, Json, Nullable, Text, Timestamptz};
use diesel::{PgConnection, RunQueryDsl};
use memgpt_core::row::{Col, Decode, Row, Undecodable};
use memgpt_core::{Embedding, Result, TableType};
use uuid::Uuid;

use crate::error::map;
use crate::sql::{query, JsonText, Sql};

/// Runs `sql` and decodes each row as a `T`.
pub(crate) fn fetch<T: Decode>(
    conn: &mut PgConnection,
    sql: Sql,
    table: TableType,
) -> Result<Vec<T>> {
    let rows: Vec<Decoded<T>> = query(sql).load(conn).map_err(map)?;
    rows.into_iter()
        .map(|r| r.0.map_err(|e| e.in_table(table)))
        .collect()
}

/// A row decoded by `T`'s one decoder.
struct Decoded<T>(std::result::Result<T, Undecodable>);

impl<T: Decode> QueryableByName<Pg> for Decoded<T> {
    fn build<'a>(row: &impl NamedRow<'a, Pg>) -> deserialize::Result<Self> {
        Ok(Decoded(T::decode(&Columns(row))))
    }
}

/// One diesel row read by core's getters.
struct Columns<'r, R>(&'r R);

impl<R> Columns<'_, R> {
    /// Column `c`'s value ([`memgpt_migrate::query::column`]).
    fn get<'a, ST, T>(&self, c: Col) -> std::result::Result<T, Undecodable>
    where
        R: NamedRow<'a, Pg>,
        T: FromSql<ST, Pg>,
    {
        memgpt_migrate::query::column::<Pg, R, ST, T>(self.0, c)
    }
}

type Got<T> = std::result::Result<Option<T>, Undecodable>;

impl<'a, R: NamedRow<'a, Pg>> Row for Columns<'_, R> {
    fn uuid(&self, c: Col) -> Got<Uuid> {
        self.get::<Nullable<diesel::sql_types::Uuid>, Option<Uuid>>(c)
    }

    fn text(&self, c: Col) -> Got<String> {
        self.get::<Nullable<Text>, Option<String>>(c)
    }

    fn int(&self, c: Col) -> Got<i64> {
        self.get::<Nullable<BigInt>, Option<i64>>(c)
    }

    /// `timestamptz`'s binary form, microseconds since 2000-01-01 UTC, shifted to the Unix
    /// epoch once (diesel's `DateTime` decoding walks calendar dates). `infinity` and
    /// other values outside chrono's range are undecodable.
    fn time(&self, c: Col) -> Got<DateTime<Utc>> {
        /// 2000-01-01T00:00:00Z in microseconds since the Unix epoch.
        const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
        let Some(PgTimestamp(micros)) =
            self.get::<Nullable<Timestamptz>, Option<PgTimestamp>>(c)?
        else {
            return Ok(None);
        };
        micros
            .checked_add(PG_EPOCH_MICROS)
            .and_then(DateTime::from_timestamp_micros)
            .map(Some)
            .ok_or_else(|| {
                Undecodable::new(
                    c.name,
                    format!("{micros} µs from 2000-01-01 is out of range"),
                )
            })
    }

    /// `json`'s binary form is its text.
    fn json(&self, c: Col) -> Got<String> {
        Ok(self
            .get::<Nullable<Json>, Option<JsonText>>(c)?
            .map(|j| j.0))
    }

    /// MemGPT's storage: the vector zero-padded to 4096, cut to `dim`.
    fn embedding(&self, c: Col, dim: Option<i64>) -> Got<Embedding> {
        let Some(v) = self.get::<Nullable<Array<Float4>>, Option<Vec<f32>>>(c)? else {
            return Ok(None);
        };
        let dim = dim.map(|d| usize::try_from(d).unwrap_or(usize::MAX));
        Embedding::from_padded(v, dim)
            .map(Some)
            .map_err(|e| Undecodable::new(c.name, e))
    }
}
