//! Project automation, run as `cargo xtask <command>` (plain Rust instead of shell scripts).
//! It links no database crate: the database commands are the `memgpt-store` binary of
//! `crates/memgpt-cli`, which it runs.
//!
//! * `tidy` — format check, the library crates' shape (file and function lengths, no
//!   module cycles), the published crates' file lists (`cargo package --list`), the
//!   workspace's `rust-version` against the lockfile's, and clippy.
//! * `test [sqlite|pg|all]` — the README's test command (default `all`): tidy, every test
//!   of the workspace on SQLite and on PostgreSQL (a throwaway server it starts and stops
//!   itself unless `MEMGPT_TEST_DATABASE_URL` is set), the doc tests. `sqlite` runs the
//!   SQLite side only (no server), `pg` the PostgreSQL side only.
//! * `migrate [--database-url URL] [--embedding-dim N] [--drop-data] up|down|status|redo|revert [N]`
//!   — schema migrations and the HNSW indexes (`memgpt-store migrate`).
//! * `pg start|stop|status` — the throwaway PostgreSQL 18 + pgvector for local work.
//! * `pg stats --database-url URL` — pool, `pg_stat_activity` and index usage.
//! * `doctor [--database-url URL]` — `EXPLAIN` of every query pattern, flagging table scans.
//! * `bench [--pg | --pg-url URL] [--quick] [--json PATH] [W1 … W8 W6R S1]` — the benchmark suite.
//! * `profile [--pg | --pg-url URL] [--agents N] [--calls N] [CASE …]` — instructions per W4
//!   call on the client, library beside raw, counted by callgrind.

mod bench;
mod locale;
mod package;
mod pg;
mod pgbouncer;
mod structure;
mod test;

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  tidy                         fmt check, crate shape, package file lists, rust-version,
                               clippy
  test [sqlite|pg|all]         tidy, then the tests (default all: SQLite and PostgreSQL)
  migrate [--database-url URL] [--embedding-dim N] [--drop-data]
                               up|down|status|redo|revert [N]
                               run migrations (default: the embedded SQLite file)
  pg start|stop|status         the throwaway PostgreSQL 18 + pgvector server
  pg stats --database-url URL  pool, pg_stat_activity and index usage of a deployment
  doctor [--database-url URL]  EXPLAIN every query pattern; flags any without an index
  bench [--pg|--pg-url URL] [--quick] [--json PATH] [W1..W7]
                               the benchmark suite (SQLite; --pg adds PostgreSQL)
  profile [--pg|--pg-url URL] [--agents N] [--calls N] [CASE..]
                               instructions per W4 call, library beside raw (callgrind)";

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
        "tidy" => test::tidy(),
        "test" => test::run(rest),
        "migrate" | "doctor" => cli(cmd, rest),
        "pg" if rest.first().map(String::as_str) == Some("stats") => cli("stats", &rest[1..]),
        "pg" => pg::run(rest),
        "bench" => bench::run(rest),
        "profile" => bench::profile(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

/// Runs a command of the `memgpt-store` binary.
fn cli(command: &str, args: &[String]) -> Result<()> {
    let mut all = vec![
        "run",
        "-q",
        "-p",
        "memgpt-cli",
        "--bin",
        "memgpt-store",
        "--",
        command,
    ];
    all.extend(args.iter().map(String::as_str));
    cargo(&all, &[])
}

/// The workspace root (the parent of this crate's folder).
fn root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// Runs a command in the workspace root, failing on a non-zero exit. Commands that build
/// get the workspace's features ([`with_features`]).
fn cargo(args: &[&str], envs: &[(&str, String)]) -> Result<()> {
    cargo_as_is(&with_features(args), envs)
}

/// Runs a command in the workspace root as given, failing on a non-zero exit.
pub(crate) fn cargo_as_is(args: &[String], envs: &[(&str, String)]) -> Result<()> {
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

/// `args` with the features a build of the workspace needs, after the subcommand of a
/// command that builds: PostgreSQL in the CLI (and, for the whole workspace, in the
/// examples), which users enable with the feature `postgres`; `memgpt-pg/bundled` where
/// libpq is to be built from source. A build of the examples alone stays on SQLite, as a
/// user without libpq runs them.
pub(crate) fn with_features(args: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let at = match args {
        ["nextest", "run", ..] => 2,
        [cmd, ..]
            if matches!(
                *cmd,
                "build" | "check" | "clippy" | "test" | "doc" | "run" | "bench"
            ) =>
        {
            1
        }
        _ => return out,
    };
    let workspace = args.contains(&"--workspace");
    let selects = |krate: &str| args.windows(2).any(|w| w[0] == "-p" && w[1] == krate);
    let mut features = Vec::new();
    if workspace {
        features.push("memgpt-examples/postgres");
    }
    if workspace || selects("memgpt-cli") {
        features.push("memgpt-cli/postgres");
    }
    let links_libpq = workspace
        || ["memgpt-cli", "memgpt-pg", "memgpt-benches", "memgpt-rig"]
            .iter()
            .any(|k| selects(k));
    if links_libpq && libpq() == Libpq::Bundled {
        features.push("memgpt-pg/bundled");
    }
    if !features.is_empty() {
        out.splice(at..at, ["--features".to_owned(), features.join(",")]);
    }
    out
}

/// Where libpq comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Libpq {
    /// The system's, found as pq-sys finds it (`PQ_LIB_DIR`, pkg-config, `pg_config`).
    System,
    /// Built from source by pq-sys (`memgpt-pg`'s feature `bundled`).
    Bundled,
}

/// The system's libpq when pq-sys can find it, else the bundled build; `MEMGPT_LIBPQ=
/// system|bundled` decides instead.
fn libpq() -> Libpq {
    static CHOICE: std::sync::OnceLock<Libpq> = std::sync::OnceLock::new();
    *CHOICE.get_or_init(|| {
        let ok = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let choice = match std::env::var("MEMGPT_LIBPQ").as_deref() {
            Ok("bundled") => Libpq::Bundled,
            Ok("system") => Libpq::System,
            _ if std::env::var_os("PQ_LIB_DIR").is_some()
                || ok("pkg-config", &["--exists", "libpq"])
                || ok("pg_config", &["--libdir"]) =>
            {
                Libpq::System
            }
            _ => Libpq::Bundled,
        };
        if choice == Libpq::Bundled {
            eprintln!(
                "xtask: building libpq from source (memgpt-pg's feature `bundled`): no system \
                 libpq found, or MEMGPT_LIBPQ=bundled"
            );
        }
        choice
    })
}

/// Installs Debian packages (`apt-get update`, then `install`), as root.
fn apt_install(packages: &[&str]) -> Result<()> {
    let apt = |args: &[&str]| -> Result<()> {
        let ok = std::process::Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?
            .success();
        if !ok {
            bail!("apt-get {} failed", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    apt(&[&["install", "-y", "-qq"], packages].concat())
}
