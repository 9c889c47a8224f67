//! The `raw` variant: what a user would write by hand on the drivers they would pick
//! instead of this library — `rusqlite` and the `postgres` crate — as prepared statements:
//! W4's reads (the same SQL as the library's, every column decoded into owned values) and
//! W1's best bulk load (one transaction of a prepared 500-row INSERT on rusqlite; binary
//! `COPY` with the postgres crate). rusqlite runs on the library's connection settings (its
//! memory map, cache size and in-memory temporary storage). The ratio optimized/raw is the
//! library's own overhead.

use std::collections::HashMap;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDateTime, Utc};
use memgpt_core::{Message, Record};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::ToSql;
use uuid::Uuid;

use crate::target::Database;

/// The columns of recall memory, in the library's order.
const COLUMNS: &str = "id, user_id, agent_id, role, text, model, name, tool_calls, \
                       tool_call_id, embedding, embedding_dim, embedding_model, created_at";

/// MemGPT's SQLite timestamp format.
const SQLITE_TIME: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// A row's `(created_at, id)`: where the next keyset page starts.
type Keyset = (DateTime<Utc>, Uuid);

/// A message as a hand-written reader keeps it: every column owned and decoded.
#[derive(Debug)]
#[allow(dead_code)] // read to be fair, not used
struct Row {
    id: Uuid,
    user_id: Uuid,
    agent_id: Uuid,
    role: String,
    text: Option<String>,
    model: Option<String>,
    name: Option<String>,
    tool_calls: Option<serde_json::Value>,
    tool_call_id: Option<String>,
    embedding: Option<Vec<u8>>,
    embedding_f32: Option<Vec<f32>>,
    embedding_dim: Option<i64>,
    embedding_model: Option<String>,
    created_at: DateTime<Utc>,
}

/// A connection of the driver a user would use, on the store's database.
pub enum Raw {
    /// rusqlite on the SQLite file.
    Sqlite(rusqlite::Connection),
    /// The postgres crate on the database, with the statements it prepared.
    Pg(Box<postgres::Client>, HashMap<String, postgres::Statement>),
}

impl Raw {
    /// Connects to `location` (a file path, or a PostgreSQL URL).
    pub fn open(backend: Database, location: &str) -> Result<Self> {
        Ok(match backend {
            Database::Sqlite => {
                let c = rusqlite::Connection::open(location)?;
                // The library's connection settings (its defaults), so that the comparison
                // is of the work on them: its memory map, cache and in-memory temporary
                // storage cost or gain the same on both sides (docs/BENCHMARKS.md, "W4 on
                // SQLite at 1,000,000 rows: the settings, not the library").
                let d = memgpt_sqlite::SqliteConfig::new(location);
                c.execute_batch(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA mmap_size = {}; \
                     PRAGMA cache_size = -{}; PRAGMA temp_store = {};",
                    d.mmap_size,
                    d.cache_size_kib,
                    d.temp_store.as_str()
                ))?;
                Raw::Sqlite(c)
            }
            Database::Postgres => Raw::Pg(
                Box::new(postgres::Client::connect(location, postgres::NoTls)?),
                HashMap::new(),
            ),
        })
    }

    /// Every column of a rusqlite row, decoded into owned values.
    fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let uuid = |i: usize| -> rusqlite::Result<Uuid> {
            let s: String = r.get(i)?;
            Uuid::parse_str(&s).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    i,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })
        };
        let created: String = r.get(12)?;
        let tool_calls: Option<String> = r.get(7)?;
        Ok(Row {
            id: uuid(0)?,
            user_id: uuid(1)?,
            agent_id: uuid(2)?,
            role: r.get(3)?,
            text: r.get(4)?,
            model: r.get(5)?,
            name: r.get(6)?,
            tool_calls: tool_calls.and_then(|t| serde_json::from_str(&t).ok()),
            tool_call_id: r.get(8)?,
            embedding: r.get(9)?,
            embedding_f32: None,
            embedding_dim: r.get(10)?,
            embedding_model: r.get(11)?,
            created_at: NaiveDateTime::parse_from_str(&created, SQLITE_TIME)
                .map(|t| t.and_utc())
                .unwrap_or_default(),
        })
    }

    fn sqlite_rows(
        c: &rusqlite::Connection,
        sql: &str,
        binds: &[&dyn rusqlite::ToSql],
    ) -> Result<usize> {
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt.query_map(binds, Self::sqlite_row)?;
        let mut n = 0;
        for r in rows {
            std::hint::black_box(r?);
            n += 1;
        }
        Ok(n)
    }

    /// The statement of `sql`, prepared once per connection.
    fn prepared(
        c: &mut postgres::Client,
        cache: &mut HashMap<String, postgres::Statement>,
        sql: &str,
    ) -> Result<postgres::Statement> {
        if let Some(s) = cache.get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql)?;
        cache.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    fn pg_rows(
        c: &mut postgres::Client,
        cache: &mut HashMap<String, postgres::Statement>,
        sql: &str,
        binds: &[&(dyn ToSql + Sync)],
    ) -> Result<(usize, Option<Keyset>)> {
        let stmt = Self::prepared(c, cache, sql)?;
        let mut n = 0;
        let mut last = None;
        for r in c.query(&stmt, binds)? {
            let row = Row {
                id: r.try_get(0)?,
                user_id: r.try_get(1)?,
                agent_id: r.try_get(2)?,
                role: r.try_get(3)?,
                text: r.try_get(4)?,
                model: r.try_get(5)?,
                name: r.try_get(6)?,
                tool_calls: r.try_get(7)?,
                tool_call_id: r.try_get(8)?,
                embedding: None,
                embedding_f32: r.try_get(9)?,
                embedding_dim: r.try_get(10)?,
                embedding_model: r.try_get(11)?,
                created_at: r.try_get(12)?,
            };
            last = Some((row.created_at, row.id));
            std::hint::black_box(row);
            n += 1;
        }
        Ok((n, last))
    }

    /// The newest `limit` messages of an agent.
    pub fn get_all(&mut self, u: Uuid, a: Uuid, limit: i64) -> Result<usize> {
        match self {
            Raw::Sqlite(c) => Self::sqlite_rows(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM memgpt_recall_memory_agent WHERE user_id = ?1 AND \
                     agent_id = ?2 ORDER BY created_at DESC, id DESC LIMIT ?3"
                ),
                &[&u.to_string(), &a.to_string(), &limit],
            ),
            Raw::Pg(c, cache) => Ok(Self::pg_rows(
                c,
                cache,
                &pg_select("WHERE user_id = $1 AND agent_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3"),
                &[&u, &a, &limit],
            )?
            .0),
        }
    }

    /// An agent's whole history in keyset pages of `page`.
    pub fn pages(&mut self, u: Uuid, a: Uuid, page: i64) -> Result<usize> {
        let mut total = 0;
        match self {
            Raw::Sqlite(c) => {
                let first = format!(
                    "SELECT {COLUMNS} FROM memgpt_recall_memory_agent WHERE user_id = ?1 AND \
                     agent_id = ?2 ORDER BY created_at, id LIMIT ?3"
                );
                let next = format!(
                    "SELECT {COLUMNS} FROM memgpt_recall_memory_agent WHERE user_id = ?1 AND \
                     agent_id = ?2 AND (created_at, id) > (?3, ?4) ORDER BY created_at, id LIMIT ?5"
                );
                let (us, as_) = (u.to_string(), a.to_string());
                let mut after: Option<(String, String)> = None;
                loop {
                    // The keyset of the page's last row, read as a user would: by a second
                    // column pair of the same query.
                    let mut stmt = match &after {
                        None => c.prepare_cached(&first)?,
                        Some(_) => c.prepare_cached(&next)?,
                    };
                    let mut rows = match &after {
                        None => stmt.query(rusqlite::params![us, as_, page])?,
                        Some((t, id)) => stmt.query(rusqlite::params![us, as_, t, id, page])?,
                    };
                    let mut n = 0;
                    let mut last = None;
                    while let Some(r) = rows.next()? {
                        // Every column decoded, as the other reads; the keyset of the
                        // page's last row read as the statement returns it.
                        std::hint::black_box(Self::sqlite_row(r)?);
                        last = Some((r.get::<_, String>(12)?, r.get::<_, String>(0)?));
                        n += 1;
                    }
                    total += n;
                    if n < page as usize {
                        break;
                    }
                    after = last;
                }
            }
            Raw::Pg(c, cache) => {
                let first = pg_select(
                    "WHERE user_id = $1 AND agent_id = $2 ORDER BY created_at, id LIMIT $3",
                );
                let next = pg_select(
                    "WHERE user_id = $1 AND agent_id = $2 AND (created_at, id) > ($3, $4) \
                     ORDER BY created_at, id LIMIT $5",
                );
                let mut after: Option<Keyset> = None;
                loop {
                    let (n, last) = match &after {
                        None => Self::pg_rows(c, cache, &first, &[&u, &a, &page])?,
                        Some((t, id)) => Self::pg_rows(c, cache, &next, &[&u, &a, t, id, &page])?,
                    };
                    total += n;
                    if n < page as usize {
                        break;
                    }
                    after = last;
                }
            }
        }
        Ok(total)
    }

    /// The number of an agent's messages.
    pub fn size(&mut self, u: Uuid, a: Uuid) -> Result<i64> {
        Ok(match self {
            Raw::Sqlite(c) => c
                .prepare_cached(
                    "SELECT count(*) FROM memgpt_recall_memory_agent WHERE user_id = ?1 AND \
                     agent_id = ?2",
                )?
                .query_row(rusqlite::params![u.to_string(), a.to_string()], |r| {
                    r.get(0)
                })?,
            Raw::Pg(c, cache) => {
                let stmt = Self::prepared(
                    c,
                    cache,
                    "SELECT count(*) FROM memgpt_recall_memory_agent WHERE user_id = $1 AND \
                     agent_id = $2",
                )?;
                c.query_one(&stmt, &[&u, &a])?.try_get(0)?
            }
        })
    }

    /// An agent's messages created in `start..=end`.
    pub fn query_date(
        &mut self,
        u: Uuid,
        a: Uuid,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<usize> {
        match self {
            Raw::Sqlite(c) => Self::sqlite_rows(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM memgpt_recall_memory_agent WHERE user_id = ?1 AND \
                     agent_id = ?2 AND created_at >= ?3 AND created_at <= ?4 ORDER BY created_at, id"
                ),
                &[
                    &u.to_string(),
                    &a.to_string(),
                    &start.naive_utc().format(SQLITE_TIME).to_string(),
                    &end.naive_utc().format(SQLITE_TIME).to_string(),
                ],
            ),
            Raw::Pg(c, cache) => Ok(Self::pg_rows(
                c,
                cache,
                &pg_select(
                    "WHERE user_id = $1 AND agent_id = $2 AND created_at >= $3 AND \
                     created_at <= $4 ORDER BY created_at, id",
                ),
                &[&u, &a, &start, &end],
            )?
            .0),
        }
    }

    /// An agent's messages holding `word` (one word, already folded: lower-case ASCII),
    /// through the same full-text index and tenant match as the library's (migrations
    /// 000005 and 000007).
    pub fn query_text(&mut self, u: Uuid, a: Uuid, word: &str) -> Result<usize> {
        let tenant = format!("a{}", a.simple());
        match self {
            Raw::Sqlite(c) => Self::sqlite_rows(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM memgpt_recall_memory_agent WHERE user_id = ?1 AND \
                     agent_id = ?2 AND rowid IN (SELECT rowid FROM memgpt_recall_memory_agent_fts \
                     WHERE memgpt_recall_memory_agent_fts MATCH ?3) ORDER BY created_at, id"
                ),
                &[
                    &u.to_string(),
                    &a.to_string(),
                    &format!("scope:\"{tenant}\" AND text:(\"{word}\")"),
                ],
            ),
            Raw::Pg(c, cache) => {
                let e = "array_to_tsvector(memgpt_text_words(left(coalesce(text, ''), 200000)) || \
                         ARRAY['u:' || replace(user_id::text, '-', ''), \
                         'a:' || replace(coalesce(agent_id::text, ''), '-', '')])";
                let sql = format!(
                    "WITH hits AS MATERIALIZED (SELECT id, user_id, agent_id, role, text, model, \
                     name, tool_calls, tool_call_id, embedding::real[] AS embedding, \
                     embedding_dim, embedding_model, created_at FROM memgpt_recall_memory_agent \
                     WHERE {e} @@ $1::text::tsquery) \
                     SELECT * FROM hits WHERE user_id = $2 AND agent_id = $3 ORDER BY created_at, id"
                );
                let query = format!("'a:{}' & '{word}'", a.simple());
                Ok(Self::pg_rows(c, cache, &sql, &[&query, &u, &a])?.0)
            }
        }
    }

    /// A message of the agent by id.
    pub fn get(&mut self, u: Uuid, a: Uuid, id: Uuid) -> Result<usize> {
        match self {
            Raw::Sqlite(c) => Self::sqlite_rows(
                c,
                &format!(
                    "SELECT {COLUMNS} FROM memgpt_recall_memory_agent WHERE user_id = ?1 AND \
                     agent_id = ?2 AND id = ?3"
                ),
                &[&u.to_string(), &a.to_string(), &id.to_string()],
            ),
            Raw::Pg(c, cache) => Ok(Self::pg_rows(
                c,
                cache,
                &pg_select("WHERE user_id = $1 AND agent_id = $2 AND id = $3"),
                &[&u, &a, &id],
            )?
            .0),
        }
    }

    /// W1's best hand-written load of `msgs` into the migrated recall table: one
    /// transaction of prepared 500-row INSERTs (SQLite), one binary COPY (PostgreSQL).
    pub fn load(&mut self, msgs: &[Message]) -> Result<()> {
        match self {
            Raw::Sqlite(c) => {
                let tx = c.transaction()?;
                for chunk in msgs.chunks(500) {
                    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
                    let sql = format!(
                        "INSERT INTO memgpt_recall_memory_agent ({COLUMNS}) VALUES {}",
                        vec![row; chunk.len()].join(", ")
                    );
                    let mut stmt = tx.prepare_cached(&sql)?;
                    let mut binds: Vec<Box<dyn rusqlite::ToSql>> =
                        Vec::with_capacity(chunk.len() * 13);
                    for m in chunk {
                        binds.push(Box::new(m.id().to_string()));
                        binds.push(Box::new(m.user_id().to_string()));
                        binds.push(Box::new(m.agent_id().unwrap_or_default().to_string()));
                        binds.push(Box::new(m.role().as_str()));
                        binds.push(Box::new(m.text().map(str::to_owned)));
                        binds.push(Box::new(m.model().map(str::to_owned)));
                        binds.push(Box::new(m.name().map(str::to_owned)));
                        binds.push(Box::new(
                            m.tool_calls().map(serde_json::to_string).transpose()?,
                        ));
                        binds.push(Box::new(m.tool_call_id().map(str::to_owned)));
                        binds.push(Box::new(Option::<Vec<u8>>::None));
                        binds.push(Box::new(m.embedding_dim().map(|d| d as i64)));
                        binds.push(Box::new(m.embedding_model().map(str::to_owned)));
                        binds.push(Box::new(
                            m.created_at().naive_utc().format(SQLITE_TIME).to_string(),
                        ));
                    }
                    stmt.execute(rusqlite::params_from_iter(binds.iter()))?;
                }
                tx.commit()?;
            }
            Raw::Pg(c, _) => {
                let types: Vec<postgres::types::Type> = c
                    .prepare(&format!("SELECT {COLUMNS} FROM memgpt_recall_memory_agent"))?
                    .columns()
                    .iter()
                    .map(|col| col.type_().clone())
                    .collect();
                let mut tx = c.transaction()?;
                let sink = tx.copy_in(&format!(
                    "COPY memgpt_recall_memory_agent ({COLUMNS}) FROM STDIN (FORMAT binary)"
                ))?;
                let mut w = BinaryCopyInWriter::new(sink, &types);
                for m in msgs {
                    let tool_calls = m.tool_calls().map(serde_json::to_value).transpose()?;
                    let role = m.role().as_str();
                    let dim = m.embedding_dim().map(|d| d as i64);
                    // NULL, of the column's type: pgvector's, or real[] without it.
                    let vector: Option<pgvector::Vector> = None;
                    let array: Option<Vec<f32>> = None;
                    let embedding: &(dyn ToSql + Sync) = if types[9].name() == "vector" {
                        &vector
                    } else {
                        &array
                    };
                    let created = m.created_at();
                    let row: [&(dyn ToSql + Sync); 13] = [
                        &m.id(),
                        &m.user_id(),
                        &m.agent_id(),
                        &role,
                        &m.text(),
                        &m.model(),
                        &m.name(),
                        &tool_calls,
                        &m.tool_call_id(),
                        embedding,
                        &dim,
                        &m.embedding_model(),
                        &created,
                    ];
                    w.write(&row).context("binary COPY row")?;
                }
                w.finish()?;
                tx.commit()?;
            }
        }
        Ok(())
    }
}

/// A PostgreSQL select of recall memory's columns (the embedding as `real[]`) with `rest`.
fn pg_select(rest: &str) -> String {
    format!(
        "SELECT id, user_id, agent_id, role, text, model, name, tool_calls, tool_call_id, \
         embedding::real[] AS embedding, embedding_dim, embedding_model, created_at \
         FROM memgpt_recall_memory_agent {rest}"
    )
}
