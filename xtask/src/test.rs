//! `cargo xtask tidy` and `cargo xtask test [sqlite|pg|all]`: the README's test command.

use anyhow::{bail, Result};

use crate::{cargo, pg};

/// The machine's PostgreSQL without pgvector, used to prove everything but vector search
/// works there.
const DEFAULT_NO_VECTOR_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The SQLite side: everything that needs no server (the migration tests that do are
/// named `postgres_…`).
const SQLITE: &[&str] = &[
    "-p",
    "memgpt-core",
    "-p",
    "memgpt-conformance",
    "-p",
    "memgpt-sqlite",
    "-p",
    "memgpt-migrate",
    "-p",
    "memgpt-cli",
    "-E",
    "not test(/postgres/)",
];

/// The PostgreSQL side.
const PG: &[&str] = &[
    "-p",
    "memgpt-pg",
    "-p",
    "memgpt-migrate",
    "-p",
    "memgpt-cli",
    "-E",
    "package(memgpt-pg) | test(/postgres/)",
];

/// Format check and clippy.
pub fn tidy() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )
}

pub fn run(args: &[String]) -> Result<()> {
    let which = match args {
        [] => "all",
        [w] if matches!(w.as_str(), "sqlite" | "pg" | "all") => w.as_str(),
        other => bail!("usage: cargo xtask test [sqlite|pg|all] (got {other:?})"),
    };
    tidy()?;
    if which == "sqlite" {
        return nextest(SQLITE, &[]);
    }
    let (_guard, url) = match std::env::var("MEMGPT_TEST_DATABASE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let (g, url) = pg::Guard::start()?;
            (Some(g), url)
        }
    };
    let no_vector = std::env::var("MEMGPT_TEST_PG_NO_VECTOR_URL")
        .unwrap_or_else(|_| DEFAULT_NO_VECTOR_URL.to_owned());
    // Tests that stop, restart or reconfigure a server start one of their own from these
    // binaries.
    let bin = pg::Server::from_env()?.bin_dir()?;
    // The embedded build has no TLS: the TLS test starts the machine's PostgreSQL.
    let tls_bin = std::env::var("MEMGPT_TEST_PG_TLS_BIN").unwrap_or_else(|_| machine_pg_bin());
    let envs = [
        ("MEMGPT_TEST_DATABASE_URL", url),
        ("MEMGPT_TEST_PG_NO_VECTOR_URL", no_vector),
        ("MEMGPT_TEST_PG_BIN", bin.display().to_string()),
        ("MEMGPT_TEST_PG_TLS_BIN", tls_bin),
    ];
    if which == "pg" {
        return nextest(PG, &envs);
    }
    cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], &envs)?;
    cargo(&["test", "--workspace", "--doc"], &envs)
}

/// The newest `/usr/lib/postgresql/VERSION/bin` (Debian's PostgreSQL, which `.ci/run`
/// installs), or empty.
fn machine_pg_bin() -> String {
    let mut dirs: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    dirs.retain(|d| d.join("pg_ctl").exists());
    dirs.sort();
    dirs.last()
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

fn nextest(selection: &[&str], envs: &[(&str, String)]) -> Result<()> {
    let mut args = vec!["nextest", "run", "--no-fail-fast"];
    args.extend_from_slice(selection);
    cargo(&args, envs)
}
