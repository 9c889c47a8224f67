//! `cargo xtask bench [--pg | --pg-url URL] [--quick] [--json PATH] [W1 … W8 W6R S1]`: the
//! benchmark suite of `benches/` (the `suite` bench). SQLite alone needs no server; `--pg`
//! starts the throwaway PostgreSQL 18 + pgvector and adds PostgreSQL; `--pg-url` uses a
//! given server (its user must be allowed to create databases). With `--pg`, PgBouncer is
//! started in front of the throwaway server and a streaming replica of it for S1
//! (docs/SCALING.md); with `--pg-url`, `--pgbouncer-url` and `--replica-url` name them.

use anyhow::{bail, Result};

use crate::{cargo, pg, pgbouncer};

pub fn run(args: &[String]) -> Result<()> {
    let mut pass: Vec<String> = Vec::new();
    let mut start_pg = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pg" => start_pg = true,
            "--pg-url" | "--json" | "--pgbouncer-url" | "--replica-url" => {
                let Some(v) = it.next() else {
                    bail!("{a} takes a value");
                };
                let v = if a == "--json" {
                    // cargo bench runs in the package's folder: make the path absolute.
                    std::env::current_dir()?.join(v).display().to_string()
                } else {
                    v.clone()
                };
                pass.extend([a.clone(), v]);
            }
            "--quick" => pass.push(a.clone()),
            w if w.starts_with('W') || w.starts_with('S') => pass.push(a.clone()),
            other => bail!(
                "usage: cargo xtask bench [--pg | --pg-url URL [--pgbouncer-url URL] [--replica-url URL]] [--quick] [--json PATH] [W1 … W8 W6R S1] (got {other:?})"
            ),
        }
    }
    let guard = if start_pg && !pass.iter().any(|a| a == "--pg-url") {
        let (g, url) = pg::Guard::start()?;
        pass.extend(["--pg-url".to_owned(), url]);
        Some(g)
    } else {
        None
    };
    // S1 runs through PgBouncer in front of the throwaway server, and with a replica of it.
    let _bouncer = if guard.is_some() || (start_pg && pg::Server::from_env()?.running()?) {
        let server = pg::Server::from_env()?;
        let (g, url) = pgbouncer::Guard::start(&server)?;
        pass.extend(["--pgbouncer-url".to_owned(), url]);
        server.start_replica()?;
        pass.extend(["--replica-url".to_owned(), server.replica_url()]);
        Some(g)
    } else {
        None
    };
    let mut cmd = vec!["bench", "-p", "memgpt-benches", "--bench", "suite", "--"];
    cmd.extend(pass.iter().map(String::as_str));
    cargo(&cmd, &[])
}

/// `cargo xtask profile [--pg | --pg-url URL] [--agents N] [--calls N] [CASE …]`: the
/// instructions of each W4 call, through the library and by hand on the drivers, counted
/// by callgrind (the `w4_calls` bench; valgrind must be installed).
pub fn profile(args: &[String]) -> Result<()> {
    let mut pass: Vec<String> = Vec::new();
    let mut start_pg = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pg" => start_pg = true,
            "--pg-url" | "--agents" | "--calls" | "--out" => {
                let Some(v) = it.next() else {
                    bail!("{a} takes a value");
                };
                pass.extend([a.clone(), v.clone()]);
            }
            case if !case.starts_with('-') => pass.push(a.clone()),
            other => bail!(
                "usage: cargo xtask profile [--pg | --pg-url URL] [--agents N] [--calls N] [--out DIR] [CASE …] (got {other:?})"
            ),
        }
    }
    let _guard = if start_pg && !pass.iter().any(|a| a == "--pg-url") {
        let (g, url) = pg::Guard::start()?;
        pass.extend(["--pg-url".to_owned(), url]);
        Some(g)
    } else {
        None
    };
    let mut cmd = vec!["bench", "-p", "memgpt-benches", "--bench", "w4_calls", "--"];
    cmd.extend(pass.iter().map(String::as_str));
    cargo(&cmd, &[])
}
