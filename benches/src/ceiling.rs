//! The databases' own bulk loaders, run on the same rows into the same indexed tables:
//! `psql \copy` from CSV on PostgreSQL, the `sqlite3` shell on SQLite. Either tool may be
//! missing: the variant is then skipped, and the run says so.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use memgpt_core::{Passage, Record};

use crate::naive_pg::padded_vector;

/// Whether `tool --version` runs.
pub fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Says once per tool that a ceiling is skipped.
pub fn skipped(tool: &str) {
    eprintln!("  (ceiling skipped: `{tool}` is not installed)");
}

fn run(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{:?}: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

/// `psql URL -c "\copy TABLE (COLUMNS) FROM 'CSV' WITH (FORMAT csv)"`.
pub fn psql_copy(url: &str, table: &str, columns: &str, csv: &Path) -> Result<Duration> {
    run(Command::new("psql")
        .arg(url)
        .arg("-q")
        .arg("-c")
        .arg(format!(
            "\\copy {table} ({columns}) FROM '{}' WITH (FORMAT csv)",
            csv.display()
        )))
}

/// `sqlite3 DB ".mode csv" ".import CSV TABLE"`.
pub fn sqlite_import(db: &str, table: &str, csv: &Path) -> Result<Duration> {
    run(Command::new("sqlite3")
        .arg(db)
        .arg(".mode csv")
        .arg(format!(".import {} {table}", csv.display())))
}

/// `sqlite3 DB ".read SQL"`.
pub fn sqlite_read(db: &str, sql: &Path) -> Result<Duration> {
    run(Command::new("sqlite3")
        .arg(db)
        .arg(format!(".read {}", sql.display())))
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The archival table's columns, in the order of [`passages_csv`].
pub const PASSAGE_COLUMNS: &str = "id, user_id, text, doc_id, agent_id, data_source, embedding, \
    embedding_dim, embedding_model, metadata_, created_at";

/// Passages as CSV for PostgreSQL's archival table (embeddings padded to 4,096).
pub fn passages_csv(path: &Path, passages: &[Passage]) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for p in passages {
        writeln!(
            f,
            "{},{},{},{},{},{},{},{},{},{},{}",
            p.id(),
            p.user_id(),
            csv_field(Record::text(p).unwrap_or_default()),
            p.doc_id().map(|d| d.to_string()).unwrap_or_default(),
            p.agent_id().map(|a| a.to_string()).unwrap_or_default(),
            csv_field(p.data_source().unwrap_or_default()),
            csv_field(
                &p.embedding()
                    .map(|e| padded_vector(e.as_slice()))
                    .unwrap_or_default()
            ),
            p.embedding_dim().unwrap_or_default(),
            csv_field(p.embedding_model().unwrap_or_default()),
            csv_field(&serde_json::Value::Object(p.metadata().clone()).to_string()),
            p.created_at().to_rfc3339(),
        )?;
    }
    f.flush()?;
    Ok(())
}

/// Passages as one SQLite transaction of INSERTs with blob literals (the shell's `.import`
/// reads text only), in the library's SQLite encoding.
pub fn passages_sql(path: &Path, passages: &[Passage]) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    writeln!(f, "BEGIN;")?;
    for p in passages {
        let blob: String = p
            .embedding()
            .map(|e| {
                e.as_slice()
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            f,
            "INSERT INTO memgpt_archival_memory_agent ({PASSAGE_COLUMNS}) VALUES ({}, {}, {}, {}, {}, {}, X'{blob}', {}, {}, {}, {});",
            q(&p.id().to_string()),
            q(&p.user_id().to_string()),
            q(Record::text(p).unwrap_or_default()),
            p.doc_id().map_or("NULL".to_owned(), |d| q(&d.to_string())),
            p.agent_id().map_or("NULL".to_owned(), |a| q(&a.to_string())),
            p.data_source().map_or("NULL".to_owned(), q),
            p.embedding_dim().unwrap_or_default(),
            p.embedding_model().map_or("NULL".to_owned(), q),
            q(&serde_json::Value::Object(p.metadata().clone()).to_string()),
            q(&p.created_at().naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()),
        )?;
    }
    writeln!(f, "COMMIT;")?;
    f.flush()?;
    Ok(())
}

/// The recall table's columns, in the order of [`crate::naive::write_csv`].
pub const MESSAGE_COLUMNS: &str = "id, user_id, agent_id, role, text, model, name, tool_calls, \
    tool_call_id, embedding, embedding_dim, embedding_model, created_at";
