//! The naive baseline of docs/BENCHMARKS.md on SQLite: MemGPT's own settings (rollback journal,
//! `synchronous=FULL`), MemGPT's table with no index beyond the primary key, one INSERT per
//! record in autocommit, OFFSET pagination, `lower(text) LIKE '%q%'`.

use std::borrow::Borrow;

use anyhow::Result;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use memgpt_core::{Message, Record};
use uuid::Uuid;

/// MemGPT 0.3.x's recall table on SQLite, as SQLAlchemy created it.
pub const RECALL_DDL: &str = "CREATE TABLE memgpt_recall_memory_agent (
    id CHAR(36) NOT NULL, user_id CHAR(36) NOT NULL, agent_id CHAR(36) NOT NULL,
    role VARCHAR NOT NULL, text VARCHAR, model VARCHAR, name VARCHAR, tool_calls JSON,
    tool_call_id VARCHAR, embedding BLOB, embedding_dim BIGINT, embedding_model VARCHAR,
    created_at DATETIME, PRIMARY KEY (id));";

const INSERT: &str = "INSERT INTO memgpt_recall_memory_agent (id, user_id, agent_id, role, \
    text, model, name, tool_calls, tool_call_id, embedding, embedding_dim, embedding_model, \
    created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL, NULL, ?)";

/// An archival table as MemGPT's SQLAlchemy model would create it on SQLite (embedding as
/// a blob of float32 bytes), primary key only.
pub const ARCHIVAL_DDL: &str = "CREATE TABLE IF NOT EXISTS memgpt_archival_memory_agent (
    id CHAR(36) NOT NULL, user_id CHAR(36) NOT NULL, text VARCHAR, doc_id CHAR(36),
    agent_id CHAR(36), data_source VARCHAR, embedding BLOB, embedding_dim BIGINT,
    embedding_model VARCHAR, metadata_ JSON, created_at DATETIME, PRIMARY KEY (id));";

const UPSERT: &str = " ON CONFLICT (id) DO UPDATE SET text = excluded.text, \
    role = excluded.role, model = excluded.model, tool_calls = excluded.tool_calls, \
    tool_call_id = excluded.tool_call_id, created_at = excluded.created_at";

/// A naive store: one connection with MemGPT's settings.
pub struct Naive {
    conn: SqliteConnection,
}

/// A message's columns as MemGPT's SQLite encoding writes them.
pub fn columns(m: &Message) -> [Option<String>; 9] {
    [
        Some(m.id().to_string()),
        Some(m.user_id().to_string()),
        m.agent_id().map(|a| a.to_string()),
        Some(m.role().as_str().to_owned()),
        m.text().map(str::to_owned),
        m.model().map(str::to_owned),
        m.tool_calls().map(|c| {
            let v: Vec<String> = c
                .iter()
                .map(|c| {
                    format!(
                        r#"{{"id": "{}", "tool_call_type": "function", "function": {{"name": "{}", "arguments": "{}"}}}}"#,
                        c.id, c.function.name, c.function.arguments
                    )
                })
                .collect();
            format!("[{}]", v.join(", "))
        }),
        m.tool_call_id().map(str::to_owned),
        Some(m.created_at().naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
    ]
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    text: Option<String>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Naive {
    /// Opens `path` with MemGPT's settings; creates the table without indexes.
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
        conn.batch_execute("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;")?;
        conn.batch_execute(&RECALL_DDL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))?;
        Ok(Naive { conn })
    }

    /// One `INSERT … ON CONFLICT (id) DO UPDATE` per record, each its own transaction.
    pub fn upsert_each(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
    ) -> Result<u64> {
        self.write_each(messages, &format!("{INSERT}{UPSERT}"))
    }

    /// One INSERT per passage, each its own transaction.
    pub fn insert_passages_each<'a>(
        &mut self,
        passages: impl IntoIterator<Item = &'a memgpt_core::Passage>,
    ) -> Result<u64> {
        use diesel::sql_types::Binary;
        self.conn.batch_execute(ARCHIVAL_DDL)?;
        let mut n = 0;
        for p in passages {
            let blob: Option<Vec<u8>> = p
                .embedding()
                .map(|e| e.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect());
            diesel::sql_query(
                "INSERT INTO memgpt_archival_memory_agent (id, user_id, text, doc_id, agent_id, \
                 data_source, embedding, embedding_dim, embedding_model, metadata_, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind::<Text, _>(p.id().to_string())
            .bind::<Text, _>(p.user_id().to_string())
            .bind::<Nullable<Text>, _>(Record::text(p).map(str::to_owned))
            .bind::<Nullable<Text>, _>(p.doc_id().map(|d| d.to_string()))
            .bind::<Nullable<Text>, _>(p.agent_id().map(|a| a.to_string()))
            .bind::<Nullable<Text>, _>(p.data_source().map(str::to_owned))
            .bind::<Nullable<Binary>, _>(blob)
            .bind::<Nullable<BigInt>, _>(p.embedding_dim().map(|d| d as i64))
            .bind::<Nullable<Text>, _>(p.embedding_model().map(str::to_owned))
            .bind::<Text, _>(serde_json::Value::Object(p.metadata().clone()).to_string())
            .bind::<Text, _>(
                p.created_at()
                    .naive_utc()
                    .format("%Y-%m-%d %H:%M:%S%.6f")
                    .to_string(),
            )
            .execute(&mut self.conn)?;
            n += 1;
        }
        Ok(n)
    }

    /// One INSERT per record, each its own transaction.
    pub fn insert_each(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
    ) -> Result<u64> {
        self.write_each(messages, INSERT)
    }

    fn write_each(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
        sql: &str,
    ) -> Result<u64> {
        let mut n = 0;
        for m in messages {
            let mut q = diesel::sql_query(sql).into_boxed();
            for c in columns(m.borrow()) {
                q = q.bind::<Nullable<Text>, _>(c);
            }
            q.execute(&mut self.conn)?;
            n += 1;
        }
        Ok(n)
    }

    /// Opens `path` as one connection with the library's settings (WAL,
    /// `synchronous=NORMAL`) and the `(user_id, agent_id, created_at)` index: the store
    /// with a single connection for everything, for W6 `reads_during_load`.
    pub fn open_single(path: &std::path::Path) -> Result<Self> {
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
        conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
        conn.batch_execute(&RECALL_DDL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))?;
        conn.batch_execute(
            "CREATE INDEX IF NOT EXISTS single_agent_created_at ON \
             memgpt_recall_memory_agent (user_id, agent_id, created_at);",
        )?;
        Ok(Naive { conn })
    }

    /// Writes `messages` in one transaction (the library's chunk, on one connection).
    pub fn insert_chunk(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
    ) -> Result<()> {
        self.conn.batch_execute("BEGIN;")?;
        let r = self.insert_each(messages);
        self.conn
            .batch_execute(if r.is_ok() { "COMMIT;" } else { "ROLLBACK;" })?;
        r.map(|_| ())
    }

    /// Loads rows quickly (one transaction) — for preparing read benchmarks only.
    pub fn load_fast(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
    ) -> Result<()> {
        self.conn
            .batch_execute("PRAGMA synchronous = OFF; BEGIN;")?;
        let r = self.insert_each(messages);
        self.conn
            .batch_execute("COMMIT; PRAGMA synchronous = FULL;")?;
        r.map(|_| ())
    }

    fn ids(&mut self, sql: &str, binds: &[String]) -> Result<usize> {
        let mut q = diesel::sql_query(sql).into_boxed();
        for b in binds {
            q = q.bind::<Text, _>(b.clone());
        }
        let rows: Vec<Row> = q.load(&mut self.conn)?;
        Ok(rows
            .iter()
            .filter(|r| !r.id.is_empty() || r.text.is_some())
            .count())
    }

    /// The newest `limit` messages of an agent.
    pub fn get_all(&mut self, user: Uuid, agent: Uuid, limit: usize) -> Result<usize> {
        self.ids(
            &format!("SELECT * FROM memgpt_recall_memory_agent WHERE user_id = ? AND agent_id = ? ORDER BY created_at DESC LIMIT {limit}"),
            &[user.to_string(), agent.to_string()],
        )
    }

    /// An agent's whole history in pages of `page` by OFFSET.
    pub fn paginate(&mut self, user: Uuid, agent: Uuid, page: usize) -> Result<usize> {
        offset_pages(page, |offset| {
            self.ids(
                &format!("SELECT * FROM memgpt_recall_memory_agent WHERE user_id = ? AND agent_id = ? LIMIT {page} OFFSET {offset}"),
                &[user.to_string(), agent.to_string()],
            )
        })
    }

    /// MemGPT's size(): a count over a subquery of every column.
    pub fn size(&mut self, user: Uuid, agent: Uuid) -> Result<u64> {
        let rows: Vec<Count> = diesel::sql_query(
            "SELECT count(*) AS n FROM (SELECT * FROM memgpt_recall_memory_agent WHERE user_id = ? AND agent_id = ?)",
        )
        .bind::<Text, _>(user.to_string())
        .bind::<Text, _>(agent.to_string())
        .load(&mut self.conn)?;
        Ok(rows.first().map_or(0, |r| r.n as u64))
    }

    /// Messages of an agent in a time window.
    pub fn query_date(&mut self, user: Uuid, agent: Uuid, start: &str, end: &str) -> Result<usize> {
        self.ids(
            "SELECT * FROM memgpt_recall_memory_agent WHERE user_id = ? AND agent_id = ? AND created_at >= ? AND created_at <= ?",
            &[user.to_string(), agent.to_string(), start.to_owned(), end.to_owned()],
        )
    }

    /// MemGPT's query_text: `lower(text) LIKE '%q%'`.
    pub fn query_text(&mut self, user: Uuid, agent: Uuid, word: &str) -> Result<usize> {
        self.ids(
            "SELECT * FROM memgpt_recall_memory_agent WHERE user_id = ? AND agent_id = ? AND lower(text) LIKE ?",
            &[user.to_string(), agent.to_string(), format!("%{}%", word.to_lowercase())],
        )
    }

    /// MemGPT's get(id): by id, no tenant scope.
    pub fn get(&mut self, id: Uuid) -> Result<usize> {
        self.ids(
            "SELECT * FROM memgpt_recall_memory_agent WHERE id = ?",
            &[id.to_string()],
        )
    }
}

/// Reads pages of `page` rows by OFFSET (`fetch(offset)` returns a page's row count) until
/// a short page; the rows read.
pub fn offset_pages(page: usize, mut fetch: impl FnMut(usize) -> Result<usize>) -> Result<usize> {
    let mut total = 0;
    let mut offset = 0;
    loop {
        let n = fetch(offset)?;
        total += n;
        offset += page;
        if n < page {
            return Ok(total);
        }
    }
}

/// Writes `msgs` as CSV in the column order of the recall table (13 columns; absent values
/// are empty and unquoted, which PostgreSQL's `\copy … (FORMAT csv)` reads as NULL), for the
/// bulk-loader ceilings.
pub fn write_csv(path: &std::path::Path, msgs: &[Message]) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let field = |v: &Option<String>| match v {
        Some(s) => format!("\"{}\"", s.replace('"', "\"\"")),
        None => String::new(),
    };
    for m in msgs {
        let c = columns(m);
        writeln!(
            f,
            "{},{},{},{},{},{},,{},{},,,,{}",
            field(&c[0]),
            field(&c[1]),
            field(&c[2]),
            field(&c[3]),
            field(&c[4]),
            field(&c[5]),
            field(&c[6]),
            field(&c[7]),
            field(&c[8])
        )?;
    }
    f.flush()?;
    Ok(())
}
