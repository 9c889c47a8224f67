//! `memgpt-store`: the database commands of memgpt-store — migrations, `EXPLAIN` of every
//! query pattern, a deployment's pool and index statistics. (In the repository,
//! `cargo xtask migrate`, `cargo xtask doctor` and `cargo xtask pg stats` run it.)
//!
//! * `migrate [--database-url URL] [--embedding-dim N] [--drop-data] up|down|status|redo|revert [N]`
//! * `doctor [--database-url URL] [--json]` — `EXPLAIN` of every query pattern; flags table
//!   scans and missing vector indexes. Changes nothing.
//! * `stats [--database-url URL] [--json]` — pool, `pg_stat_activity` and index usage
//!   (PostgreSQL).
//! * `prune [--database-url URL] --table T --user U [--agent A] (--older-than INSTANT |
//!   --keep-newest N | --data-source NAME) [--batch N]` — retention: deletes one tenant's
//!   records in batches, each its own transaction, printing each.
//!
//! PostgreSQL needs the feature `postgres` (libpq; `bundled` builds libpq from source):
//! `cargo install memgpt-cli --features postgres`. Without it, the binary works on SQLite
//! files and says so for a PostgreSQL URL (exit code 1).
//!
//! Without `--database-url`, the environment names the database as it does for the library
//! (`MEMGPT_PG_URL`, else `MEMGPT_DATABASE_URL`: [`memgpt_core::config::database_url`]);
//! without either, `migrate` falls back to the embedded SQLite file of
//! `MEMGPT_SQLITE_PATH` (default `$HOME/.memgpt/memgpt-store.db`). `migrate` says on stderr
//! which database (its password hidden) it works on, and where that came from, first.
//!
//! Exit codes: 0 success; 1 the command failed (database unreachable, a migration refused
//! or failed); 2 a usage error; 3 `doctor` found a problem (a missing index, a query
//! pattern that reads a whole table).

mod doctor;
mod migrate;
mod prune;
mod stats;

use clap::{Args, Parser, Subcommand};

/// The error of a command: a message for the user.
pub(crate) type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// An error of a formatted message.
macro_rules! anyhow {
    ($($t:tt)*) => {
        Box::<dyn std::error::Error>::from(format!($($t)*))
    };
}

/// Returns an error of a formatted message.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err(crate::anyhow!($($t)*))
    };
}

/// Prints a line on stdout. A reader that went away (`memgpt-store doctor | head`) ends
/// the program quietly; another write error ends it with exit code 1.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            crate::stdout_failed(e)
        }
    }};
}

pub(crate) use {anyhow, bail, out};

/// Ends the program after a failed write to stdout.
pub(crate) fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0)
    }
    eprintln!("memgpt-store: cannot write output: {e}");
    std::process::exit(EXIT_FAILED)
}

/// Exit code of a command that failed.
const EXIT_FAILED: i32 = 1;
/// Exit code of `doctor` when it found a problem.
const EXIT_FINDINGS: i32 = 3;

/// memgpt-store's database commands: schema and index migrations, query plans, a
/// deployment's statistics.
#[derive(Debug, Parser)]
#[command(
    name = "memgpt-store",
    version,
    after_help = "Exit codes: 0 success; 1 the command failed; 2 a usage error; \
                  3 doctor found a problem."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// One command.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run schema and index migrations (default database: the embedded SQLite file).
    Migrate(migrate::MigrateArgs),
    /// EXPLAIN every query pattern; flag any that reads a whole table, and missing vector
    /// indexes. Changes nothing (SQLite is opened read-only).
    Doctor(doctor::ReportArgs),
    /// Pool, pg_stat_activity and index usage of a PostgreSQL deployment.
    Stats(doctor::ReportArgs),
    /// Delete one tenant's old records in batches (each its own transaction): older than
    /// an instant, all but the newest N, or a data source.
    Prune(prune::PruneArgs),
}

/// The database a command works on.
#[derive(Debug, Args)]
pub(crate) struct UrlArg {
    /// The database: `postgres://…` (or a libpq `key=value` string), `sqlite://PATH` or a
    /// file path. Default: $MEMGPT_PG_URL, else $MEMGPT_DATABASE_URL.
    #[arg(long, global = true)]
    pub(crate) database_url: Option<String>,
}

/// A database and what named it.
pub(crate) struct Named {
    /// The database.
    pub(crate) url: memgpt_core::DatabaseUrl,
    /// `--database-url`, or the environment variable that held it.
    pub(crate) source: &'static str,
}

impl UrlArg {
    /// The database `--database-url` names, else the environment (the variables and their
    /// order are the library's: [`memgpt_core::config::database_url`]); `None` when
    /// nothing does.
    pub(crate) fn resolve(self) -> Result<Option<Named>> {
        let named = match self.database_url {
            Some(url) => Named {
                url: memgpt_core::DatabaseUrl::new(url),
                source: "--database-url",
            },
            None => match memgpt_core::config::database_url(&memgpt_core::config::Env) {
                Some((source, url)) => Named { url, source },
                None => return Ok(None),
            },
        };
        if named.url.expose().trim().is_empty() {
            bail!("{} is empty", named.source);
        }
        Ok(Some(named))
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Migrate(args) => migrate::run(args).map(|()| 0),
        Cmd::Doctor(args) => {
            doctor::doctor(args).map(|clean| if clean { 0 } else { EXIT_FINDINGS })
        }
        Cmd::Stats(args) => stats::stats(args).map(|()| 0),
        Cmd::Prune(args) => prune::run(args).map(|()| 0),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("memgpt-store: {e}");
            std::process::exit(EXIT_FAILED);
        }
    }
}
