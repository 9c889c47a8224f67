//! The naive baseline of docs/BENCHMARKS.md on PostgreSQL: MemGPT's tables with no index beyond
//! the primary key, one statement per record in autocommit, OFFSET pagination,
//! `lower(text) LIKE '%q%'`, a new connection per call where a workload says so.

use std::borrow::Borrow;

use anyhow::Result;
use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Message, Passage, Record};
use uuid::Uuid;

use crate::naive::columns;

/// MemGPT's recall table, primary key only, named apart from the library's.
pub const RECALL: &str = "naive_recall_memory";
/// MemGPT's archival table (`vector(4096)`, as MemGPT pads), primary key only.
pub const ARCHIVAL: &str = "naive_archival_memory";

const INSERT: &str = "INSERT INTO naive_recall_memory (id, user_id, agent_id, role, text, \
    model, name, tool_calls, tool_call_id, created_at) VALUES ($1::uuid, $2::uuid, $3::uuid, \
    $4, $5, $6, NULL, $7::json, $8, $9::timestamptz)";

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One connection to the database holding the naive tables.
pub struct NaivePg {
    conn: PgConnection,
}

/// `v` padded with zeros to 4,096 values, in pgvector's text form.
pub fn padded_vector(v: &[f32]) -> String {
    let mut s = String::with_capacity(4096 * 4);
    s.push('[');
    for i in 0..4096 {
        if i > 0 {
            s.push(',');
        }
        match v.get(i) {
            Some(x) => s.push_str(&x.to_string()),
            None => s.push('0'),
        }
    }
    s.push(']');
    s
}

impl NaivePg {
    /// Connects to `url` and creates the naive tables there if missing.
    pub fn open(url: &str) -> Result<Self> {
        let mut conn = PgConnection::establish(url)?;
        conn.batch_execute(
            "CREATE TABLE IF NOT EXISTS naive_recall_memory (
                id uuid PRIMARY KEY, user_id uuid NOT NULL, agent_id uuid NOT NULL,
                role varchar NOT NULL, text varchar, model varchar, name varchar,
                tool_calls json, tool_call_id varchar, embedding bytea, embedding_dim bigint,
                embedding_model varchar, created_at timestamptz);
             CREATE EXTENSION IF NOT EXISTS vector;
             CREATE TABLE IF NOT EXISTS naive_archival_memory (
                id uuid PRIMARY KEY, user_id uuid NOT NULL, text varchar, doc_id uuid,
                agent_id uuid, data_source varchar, embedding vector(4096),
                embedding_dim bigint, embedding_model varchar, metadata_ json,
                created_at timestamptz);",
        )?;
        Ok(NaivePg { conn })
    }

    /// Empties the naive tables.
    pub fn truncate(&mut self) -> Result<()> {
        self.conn
            .batch_execute("TRUNCATE naive_recall_memory, naive_archival_memory")?;
        Ok(())
    }

    /// One INSERT per message, each its own transaction.
    pub fn insert_each(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
    ) -> Result<u64> {
        insert_each(&mut self.conn, messages, "")
    }

    /// Loads rows in one transaction — for preparing a workload only.
    pub fn load_fast(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
    ) -> Result<()> {
        self.conn
            .transaction(|c| insert_each(c, messages, ""))
            .map(|_| ())
    }

    /// One `INSERT … ON CONFLICT (id) DO UPDATE` per message, each its own transaction.
    pub fn upsert_each(
        &mut self,
        messages: impl IntoIterator<Item = impl Borrow<Message>>,
    ) -> Result<u64> {
        insert_each(
            &mut self.conn,
            messages,
            " ON CONFLICT (id) DO UPDATE SET text = excluded.text, role = excluded.role, \
             model = excluded.model, tool_calls = excluded.tool_calls, \
             tool_call_id = excluded.tool_call_id, created_at = excluded.created_at",
        )
    }

    /// One INSERT per passage (embedding padded to 4,096), each its own transaction.
    pub fn insert_passages_each<'a>(
        &mut self,
        passages: impl IntoIterator<Item = &'a Passage>,
    ) -> Result<u64> {
        let mut n = 0;
        for p in passages {
            diesel::sql_query(
                "INSERT INTO naive_archival_memory (id, user_id, text, doc_id, agent_id, \
                 data_source, embedding, embedding_dim, embedding_model, metadata_, created_at) \
                 VALUES ($1::uuid, $2::uuid, $3, $4::uuid, $5::uuid, $6, $7::vector, \
                 $8::bigint, $9, $10::json, $11::timestamptz)",
            )
            .bind::<Text, _>(p.id().to_string())
            .bind::<Text, _>(p.user_id().to_string())
            .bind::<Nullable<Text>, _>(Record::text(p).map(str::to_owned))
            .bind::<Nullable<Text>, _>(p.doc_id().map(|d| d.to_string()))
            .bind::<Nullable<Text>, _>(p.agent_id().map(|a| a.to_string()))
            .bind::<Nullable<Text>, _>(p.data_source().map(str::to_owned))
            .bind::<Nullable<Text>, _>(p.embedding().map(|e| padded_vector(e.as_slice())))
            .bind::<Nullable<Text>, _>(p.embedding_dim().map(|d| d.to_string()))
            .bind::<Nullable<Text>, _>(p.embedding_model().map(str::to_owned))
            .bind::<Text, _>(serde_json::Value::Object(p.metadata().clone()).to_string())
            .bind::<Text, _>(p.created_at().to_rfc3339())
            .execute(&mut self.conn)?;
            n += 1;
        }
        Ok(n)
    }

    /// Copies the library's recall table (same database) into the naive one: preparing
    /// the read workloads only.
    pub fn load_from_library(&mut self) -> Result<()> {
        self.conn.batch_execute(
            "INSERT INTO naive_recall_memory (id, user_id, agent_id, role, text, model, name, \
             tool_calls, tool_call_id, created_at) SELECT id, user_id, agent_id, role, text, \
             model, name, tool_calls, tool_call_id, created_at FROM memgpt_recall_memory_agent; \
             ANALYZE naive_recall_memory;",
        )?;
        Ok(())
    }

    fn count_rows(&mut self, sql: &str, binds: &[String]) -> Result<usize> {
        let mut q = diesel::sql_query(sql).into_boxed();
        for b in binds {
            q = q.bind::<Text, _>(b.clone());
        }
        let rows: Vec<Row> = q.load(&mut self.conn)?;
        Ok(rows.iter().filter(|r| !r.id.is_empty()).count())
    }

    /// The newest `limit` messages of an agent.
    pub fn get_all(&mut self, user: Uuid, agent: Uuid, limit: usize) -> Result<usize> {
        get_all(&mut self.conn, user, agent, limit)
    }

    /// An agent's whole history in pages of `page` by OFFSET.
    pub fn paginate(&mut self, user: Uuid, agent: Uuid, page: usize) -> Result<usize> {
        crate::naive::offset_pages(page, |offset| {
            self.count_rows(
                &format!("SELECT id::text AS id, * FROM naive_recall_memory WHERE user_id = $1::uuid AND agent_id = $2::uuid LIMIT {page} OFFSET {offset}"),
                &[user.to_string(), agent.to_string()],
            )
        })
    }

    /// MemGPT's size(): a count over a subquery of every column.
    pub fn size(&mut self, user: Uuid, agent: Uuid) -> Result<u64> {
        size(&mut self.conn, user, agent)
    }

    /// Messages of an agent in a time window.
    pub fn query_date(&mut self, user: Uuid, agent: Uuid, start: &str, end: &str) -> Result<usize> {
        self.count_rows(
            "SELECT id::text AS id, * FROM naive_recall_memory WHERE user_id = $1::uuid AND agent_id = $2::uuid AND created_at >= $3::timestamptz AND created_at <= $4::timestamptz",
            &[user.to_string(), agent.to_string(), start.to_owned(), end.to_owned()],
        )
    }

    /// MemGPT's query_text: `lower(text) LIKE '%q%'`.
    pub fn query_text(&mut self, user: Uuid, agent: Uuid, word: &str) -> Result<usize> {
        self.count_rows(
            "SELECT id::text AS id, * FROM naive_recall_memory WHERE user_id = $1::uuid AND agent_id = $2::uuid AND lower(text) LIKE $3",
            &[user.to_string(), agent.to_string(), format!("%{}%", word.to_lowercase())],
        )
    }

    /// MemGPT's get(id): by id, no tenant scope.
    pub fn get(&mut self, id: Uuid) -> Result<usize> {
        self.count_rows(
            "SELECT id::text AS id, * FROM naive_recall_memory WHERE id = $1::uuid",
            &[id.to_string()],
        )
    }
}

fn insert_each(
    conn: &mut PgConnection,
    messages: impl IntoIterator<Item = impl Borrow<Message>>,
    conflict: &str,
) -> Result<u64> {
    let sql = format!("{INSERT}{conflict}");
    let mut n = 0;
    for m in messages {
        let mut q = diesel::sql_query(&sql).into_boxed();
        for c in columns(m.borrow()) {
            q = q.bind::<Nullable<Text>, _>(c);
        }
        q.execute(conn)?;
        n += 1;
    }
    Ok(n)
}

/// The newest `limit` messages of an agent, on `conn`.
pub fn get_all(conn: &mut PgConnection, user: Uuid, agent: Uuid, limit: usize) -> Result<usize> {
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT id::text AS id, * FROM naive_recall_memory WHERE user_id = $1::uuid AND agent_id = $2::uuid ORDER BY created_at DESC LIMIT {limit}"
    ))
    .bind::<Text, _>(user.to_string())
    .bind::<Text, _>(agent.to_string())
    .load(conn)?;
    Ok(rows.len())
}

/// MemGPT's size() on `conn`.
pub fn size(conn: &mut PgConnection, user: Uuid, agent: Uuid) -> Result<u64> {
    let rows: Vec<Count> = diesel::sql_query(
        "SELECT count(*) AS n FROM (SELECT * FROM naive_recall_memory WHERE user_id = $1::uuid AND agent_id = $2::uuid) AS s",
    )
    .bind::<Text, _>(user.to_string())
    .bind::<Text, _>(agent.to_string())
    .load(conn)?;
    Ok(rows.first().map_or(0, |r| r.n as u64))
}

/// One message inserted on `conn` in autocommit.
pub fn insert_one(conn: &mut PgConnection, m: &Message) -> Result<()> {
    insert_each(conn, [m], "").map(|_| ())
}
