//! SQLite's rows as core reads them ([`memgpt_core::row::Row`]): MemGPT's text forms
//! (uuids, times, JSON) and its two embedding encodings, decoded by [`codec`](crate::codec).

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, QueryableByName};
use diesel::row::NamedRow;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::{Sqlite, SqliteValue};
use diesel::{RunQueryDsl, SqliteConnection};
use memgpt_core::row::{Col, Decode, Row, Undecodable};
use memgpt_core::{Embedding, Result, TableType};
use uuid::Uuid;

use crate::codec::{base64_to_f32, f32_from_bytes, time_of};
use crate::error::map;
use crate::sql::{query, Sql};

/// Runs `sql` and decodes each row as a `T`, in `table`'s encodings.
pub(crate) fn fetch<T: Decode>(
    conn: &mut SqliteConnection,
    sql: Sql,
    table: TableType,
) -> Result<Vec<T>> {
    if table == TableType::RecallMemory {
        rows::<T, true>(conn, sql, table)
    } else {
        rows::<T, false>(conn, sql, table)
    }
}

fn rows<T: Decode, const BASE64: bool>(
    conn: &mut SqliteConnection,
    sql: Sql,
    table: TableType,
) -> Result<Vec<T>> {
    let rows: Vec<Decoded<T, BASE64>> = query(sql).load(conn).map_err(map)?;
    rows.into_iter()
        .map(|r| r.0.map_err(|e| e.in_table(table)))
        .collect()
}

/// A row decoded by `T`'s one decoder; embeddings as MemGPT's base64 of the padded
/// vector (recall memory) when `BASE64`, else as raw float32 bytes.
struct Decoded<T, const BASE64: bool>(std::result::Result<T, Undecodable>);

impl<T: Decode, const BASE64: bool> QueryableByName<Sqlite> for Decoded<T, BASE64> {
    fn build<'a>(row: &impl NamedRow<'a, Sqlite>) -> deserialize::Result<Self> {
        Ok(Decoded(T::decode(&Columns::<_, BASE64>(row))))
    }
}

/// One diesel row read by core's getters.
struct Columns<'r, R, const BASE64: bool>(&'r R);

impl<R, const BASE64: bool> Columns<'_, R, BASE64> {
    /// Column `c`'s value ([`memgpt_migrate::query::column`]).
    fn get<'a, ST, T>(&self, c: Col) -> std::result::Result<T, Undecodable>
    where
        R: NamedRow<'a, Sqlite>,
        T: FromSql<ST, Sqlite>,
    {
        memgpt_migrate::query::column::<Sqlite, R, ST, T>(self.0, c)
    }

    /// Column `c`'s value, read in place (no copy) by `f` (`read_text` or `read_blob`
    /// of diesel's `SqliteValue`); `None` for NULL.
    fn in_place<'a, T>(
        &self,
        c: Col,
        f: impl FnOnce(&mut SqliteValue<'_, '_, '_>) -> std::result::Result<T, Undecodable>,
    ) -> Got<T>
    where
        R: NamedRow<'a, Sqlite>,
    {
        use diesel::row::Field;
        let field = memgpt_migrate::query::field(self.0, c)?;
        field.value().map(|mut v| f(&mut v)).transpose()
    }
}

type Got<T> = std::result::Result<Option<T>, Undecodable>;

impl<'a, R: NamedRow<'a, Sqlite>, const BASE64: bool> Row for Columns<'_, R, BASE64> {
    /// MemGPT's `CommonUUID`: 36-character text.
    fn uuid(&self, c: Col) -> Got<Uuid> {
        self.in_place(c, |v| {
            let s = v.read_text();
            Uuid::parse_str(s.trim()).map_err(|e| Undecodable::new(c.name, format!("{s:?}: {e}")))
        })
    }

    fn text(&self, c: Col) -> Got<String> {
        self.get::<Nullable<Text>, Option<String>>(c)
    }

    fn int(&self, c: Col) -> Got<i64> {
        self.get::<Nullable<BigInt>, Option<i64>>(c)
    }

    /// SQLAlchemy's `DATETIME` text, or another form migration 000006 rewrites.
    fn time(&self, c: Col) -> Got<DateTime<Utc>> {
        self.in_place(c, |v| time_of(c.name, v.read_text()))
    }

    /// JSON is stored as text.
    fn json(&self, c: Col) -> Got<String> {
        self.get::<Nullable<Text>, Option<String>>(c)
    }

    /// Recall memory: base64 of the float32 bytes padded to 4096 (MemGPT's
    /// `CommonVector`), cut to `dim`; archival memory and passages: raw float32 bytes.
    fn embedding(&self, c: Col, dim: Option<i64>) -> Got<Embedding> {
        let bad = |why: &dyn std::fmt::Display| Undecodable::new(c.name, why);
        self.in_place(c, |v| {
            let b = v.read_blob();
            let e = if BASE64 {
                let v = base64_to_f32(b).ok_or_else(|| bad(&"not base64 float32"))?;
                let dim = dim.map(|d| usize::try_from(d).unwrap_or(usize::MAX));
                Embedding::from_padded(v, dim)
            } else {
                Embedding::new(f32_from_bytes(b).ok_or_else(|| bad(&"not float32 bytes"))?)
            };
            e.map_err(|e| bad(&e))
        })
    }
}

#[cfg(test)]
mod tests {
    use diesel::{Connection, SqliteConnection};
    use memgpt_core::row::{Count, Id};
    use memgpt_core::statement::Statement;
    use memgpt_core::{Error, TableType};
    use uuid::Uuid;

    fn conn() -> SqliteConnection {
        SqliteConnection::establish(":memory:").unwrap()
    }

    /// A column a decoder needs that holds NULL or a value of another form is an error
    /// naming the table and column, never a default.
    #[test]
    fn a_null_or_malformed_column_is_an_error_naming_it() {
        let t = TableType::RecallMemory;
        match super::fetch::<Count>(&mut conn(), Statement::new("SELECT NULL AS n"), t) {
            Err(Error::Database { message }) => assert!(
                message.starts_with("memgpt_recall_memory_agent.n holds"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        match super::fetch::<Id>(&mut conn(), Statement::new("SELECT 'x' AS id"), t) {
            Err(Error::Database { message }) => assert!(
                message.starts_with("memgpt_recall_memory_agent.id holds"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        // Bytes that are no UTF-8 (another tool's blob), read in place: an error, never a
        // uuid made of replacement characters.
        let blob = Statement::new("SELECT X'FF00FE' AS id");
        match super::fetch::<Id>(&mut conn(), blob, t) {
            Err(Error::Database { message }) => assert!(
                message.starts_with("memgpt_recall_memory_agent.id holds"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
        // A uuid's 36 characters stored as a blob, as some tools write text: read as text.
        let uuid = Uuid::from_u128(0xab);
        let blob = Statement::new(format!("SELECT CAST('{uuid}' AS BLOB) AS id"));
        let ids = super::fetch::<Id>(&mut conn(), blob, t).unwrap();
        assert_eq!(ids, vec![Id(uuid)]);
        let n = super::fetch::<Count>(&mut conn(), Statement::new("SELECT 7 AS n"), t).unwrap();
        assert_eq!(n, vec![Count(7)]);
    }
}
