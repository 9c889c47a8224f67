//! `cargo xtask tidy` and `cargo xtask test [sqlite|pg|all]`: the README's test command.

use anyhow::{bail, Result};

use crate::{cargo, pg, pgbouncer};

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
    "-p",
    "memgpt-rig",
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
    "-p",
    "memgpt-rig",
    "-E",
    "package(memgpt-pg) | test(/postgres/)",
];

/// Format check, the library crates' shape, the published crates' file lists, the
/// declared `rust-version` against the lockfile, and clippy.
pub fn tidy() -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    crate::structure::check()?;
    crate::package::check()?;
    crate::package::rust_version()?;
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
    )?;
    // The SQLite-only builds a user without libpq makes (no feature `postgres`).
    for krate in ["memgpt-examples", "memgpt-cli"] {
        let args = [
            "clippy",
            "-p",
            krate,
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ];
        crate::cargo_as_is(&args.map(str::to_owned), &[])?;
    }
    // memgpt-migrate with one backend's feature only (its library; the tests need both).
    for feature in ["sqlite", "postgres"] {
        let args = [
            "clippy",
            "-p",
            "memgpt-migrate",
            "--no-default-features",
            "--features",
            feature,
            "--",
            "-D",
            "warnings",
        ];
        crate::cargo_as_is(&args.map(str::to_owned), &[])?;
    }
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let which = match args {
        [] => "all",
        [w] if matches!(w.as_str(), "sqlite" | "pg" | "all") => w.as_str(),
        other => bail!("usage: cargo xtask test [sqlite|pg|all] (got {other:?})"),
    };
    tidy()?;
    if which == "sqlite" {
        nextest(SQLITE, &[])?;
        // The doc tests that need no server (the examples of core's and SQLite's API).
        cargo(
            &["test", "--doc", "-p", "memgpt-core", "-p", "memgpt-sqlite"],
            &[],
        )?;
        return examples();
    }
    let (_guard, url) = match std::env::var("MEMGPT_TEST_DATABASE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let (g, url) = pg::Guard::start()?;
            (Some(g), url)
        }
    };
    // Everything but vector search must work without pgvector: on the server named by
    // MEMGPT_TEST_PG_NO_VECTOR_URL (CI names the machine's PostgreSQL 15), else on the
    // throwaway server through a role that cannot create the extension.
    let no_vector = match std::env::var("MEMGPT_TEST_PG_NO_VECTOR_URL") {
        Ok(url) => url,
        Err(_) => {
            let server = pg::Server::from_env()?;
            if !server.running()? {
                bail!(
                    "MEMGPT_TEST_DATABASE_URL names a server of yours: name one without \
                     pgvector in MEMGPT_TEST_PG_NO_VECTOR_URL too (or unset both)"
                );
            }
            server.no_vector_url()?
        }
    };
    // PgBouncer in transaction mode in front of the throwaway server: the conformance
    // suite runs through it too (tests named `pgbouncer…`).
    let (_bouncer, pgbouncer) = match std::env::var("MEMGPT_TEST_PGBOUNCER_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let server = pg::Server::from_env()?;
            if !server.running()? {
                bail!(
                    "MEMGPT_TEST_DATABASE_URL names a server of yours: name PgBouncer in \
                     transaction mode in front of it in MEMGPT_TEST_PGBOUNCER_URL too (or unset \
                     both)"
                );
            }
            let (g, url) = pgbouncer::Guard::start(&server)?;
            (Some(g), url)
        }
    };
    // A streaming replica of the throwaway server: the conformance suite runs with it
    // serving reads too (tests named `replica…`).
    let replica = match std::env::var("MEMGPT_TEST_PG_REPLICA_URL") {
        Ok(url) => url,
        Err(_) => {
            let server = pg::Server::from_env()?;
            if !server.running()? {
                bail!(
                    "MEMGPT_TEST_DATABASE_URL names a server of yours: name a streaming \
                     replica of it in MEMGPT_TEST_PG_REPLICA_URL too (or unset both)"
                );
            }
            server.start_replica()?;
            server.replica_url()
        }
    };
    // The tests of a server speaking German start the machine's PostgreSQL in this locale.
    crate::locale::ensure()?;
    // Tests that stop, restart or reconfigure a server start one of their own from these
    // binaries.
    let bin = pg::Server::from_env()?.bin_dir()?;
    // The embedded build has no TLS: the TLS test starts the machine's PostgreSQL.
    let tls_bin = std::env::var("MEMGPT_TEST_PG_TLS_BIN").unwrap_or_else(|_| machine_pg_bin());
    let envs = [
        ("MEMGPT_TEST_DATABASE_URL", url),
        ("MEMGPT_TEST_PG_NO_VECTOR_URL", no_vector),
        ("MEMGPT_TEST_PGBOUNCER_URL", pgbouncer),
        ("MEMGPT_TEST_PG_REPLICA_URL", replica),
        ("MEMGPT_TEST_PG_BIN", bin.display().to_string()),
        ("MEMGPT_TEST_PG_TLS_BIN", tls_bin),
    ];
    if which == "pg" {
        return nextest(PG, &envs);
    }
    if have_nextest() {
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], &envs)?;
        cargo(&["test", "--workspace", "--doc"], &envs)?;
    } else {
        eprintln!("xtask: cargo-nextest is not installed; running `cargo test` instead");
        cargo(&["test", "--workspace", "--no-fail-fast"], &envs)?;
    }
    examples()?;
    docs()
}

/// The programs of `examples/`, each run once as a user runs it (`cargo run --example`),
/// on the embedded default: no `MEMGPT_DATABASE_URL` or `MEMGPT_SQLITE_PATH` of the caller.
const EXAMPLES: &[&str] = &["chat_history", "passages_search", "by_url", "axum_memory"];

fn examples() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    for name in EXAMPLES {
        eprintln!("$ cargo run -q -p memgpt-examples --example {name}");
        let status = std::process::Command::new(&cargo)
            .args(crate::with_features(&[
                "run",
                "-q",
                "-p",
                "memgpt-examples",
                "--example",
                name,
            ]))
            .env_remove("MEMGPT_DATABASE_URL")
            .env_remove("MEMGPT_SQLITE_PATH")
            .current_dir(crate::root())
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("example {name} failed ({status})");
        }
    }
    Ok(())
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

/// Whether `cargo nextest` runs here.
fn have_nextest() -> bool {
    std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The API docs build without a warning (`RUSTDOCFLAGS=-D warnings cargo doc --no-deps`).
fn docs() -> Result<()> {
    cargo(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings".to_owned())],
    )
}

fn nextest(selection: &[&str], envs: &[(&str, String)]) -> Result<()> {
    if !have_nextest() {
        bail!(
            "cargo xtask test sqlite|pg select tests with cargo-nextest: \
             `cargo install --locked cargo-nextest`, or run `cargo xtask test` (which falls \
             back to `cargo test`)"
        );
    }
    let mut args = vec!["nextest", "run", "--no-fail-fast"];
    args.extend_from_slice(selection);
    cargo(&args, envs)
}
