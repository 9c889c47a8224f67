//! Project automation, run as `cargo xtask <command>` (plain Rust instead of shell scripts).
//!
//! * `test` — the README's test command: format check, clippy, every test of the workspace
//!   on SQLite and on PostgreSQL (a throwaway server it starts and stops itself unless
//!   `MEMGPT_TEST_DATABASE_URL` is set).
//! * `migrate [--database-url URL] [--embedding-dim N] [--drop-data] up|down|status|redo|revert [N]` —
//!   schema migrations and the HNSW indexes; `down`/`redo` refuse to drop tables holding rows
//!   without `--drop-data`.
//! * `pg start|stop|status` — the throwaway PostgreSQL 18 + pgvector for local work.
//! * `pg stats --database-url URL` — pool, `pg_stat_activity` and index usage.
//! * `doctor [--database-url URL]` — `EXPLAIN` of every query pattern, flagging table scans.
//! * `bench [--pg] [criterion args…]` — the benchmark suite of `benches/`.

mod bench;
mod doctor;
mod migrate;
mod pg;
mod test;

use anyhow::{bail, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test                         fmt check, clippy, all tests on SQLite and PostgreSQL
  migrate [--database-url URL] [--embedding-dim N] [--drop-data]
                               up|down|status|redo|revert [N]
                               run migrations (default: the embedded SQLite file)
  pg start|stop|status         the throwaway PostgreSQL 18 + pgvector server
  pg stats --database-url URL  pool, pg_stat_activity and index usage of a deployment
  doctor [--database-url URL]  EXPLAIN every query pattern; flags any without an index
  bench [--pg] [FILTER]        the criterion suite (SQLite; --pg adds PostgreSQL)";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match cmd.as_str() {
        "test" => test::run(rest),
        "migrate" => migrate::run(rest),
        "pg" if rest.first().map(String::as_str) == Some("stats") => doctor::stats(&rest[1..]),
        "pg" => pg::run(rest),
        "doctor" => doctor::doctor(rest),
        "bench" => bench::run(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// The workspace root (the parent of this crate's folder).
fn root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Runs a command in the workspace root, failing on a non-zero exit.
fn cargo(args: &[&str], envs: &[(&str, String)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    eprintln!("$ cargo {}", args.join(" "));
    let status = std::process::Command::new(cargo)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(root())
        .status()?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
