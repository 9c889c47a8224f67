//! `cargo xtask test`: the README's test command.

use anyhow::{bail, Result};

use crate::{cargo, pg};

/// The machine's PostgreSQL without pgvector, used to prove everything but vector search
/// works there.
const DEFAULT_NO_VECTOR_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn run(args: &[String]) -> Result<()> {
    if let Some(a) = args.first() {
        bail!("cargo xtask test takes no arguments (got {a:?})");
    }
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
    )?;
    let (_guard, url) = match std::env::var("MEMGPT_TEST_DATABASE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let (g, url) = pg::Guard::start()?;
            (Some(g), url)
        }
    };
    let no_vector = std::env::var("MEMGPT_TEST_PG_NO_VECTOR_URL")
        .unwrap_or_else(|_| DEFAULT_NO_VECTOR_URL.to_owned());
    let envs = [
        ("MEMGPT_TEST_DATABASE_URL", url),
        ("MEMGPT_TEST_PG_NO_VECTOR_URL", no_vector),
    ];
    cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], &envs)?;
    cargo(&["test", "--workspace", "--doc"], &envs)?;
    Ok(())
}
