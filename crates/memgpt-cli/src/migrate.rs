//! `memgpt-store migrate [--database-url URL] [--embedding-dim N] [--drop-data]
//! up|down|status|redo|revert [N]`.

use crate::{out, Result};
use clap::{Args, Subcommand};
use memgpt_core::DatabaseUrl;
use memgpt_migrate::{Command, Options};
use memgpt_sqlite::SqliteConfig;

/// The arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    url: crate::UrlArg,
    /// PostgreSQL: the dimension of the HNSW indexes `up` builds. Default:
    /// $MEMGPT_EMBEDDING_DIM, else 1536.
    #[arg(long, global = true)]
    embedding_dim: Option<u32>,
    /// Let `down`, `redo` and `revert` drop tables that hold rows, and the rows with them.
    #[arg(long, global = true)]
    drop_data: bool,
    #[command(subcommand)]
    action: Action,
}

/// What to do.
#[derive(Debug, Clone, Copy, Subcommand)]
enum Action {
    /// Apply every pending migration (on PostgreSQL also build the HNSW indexes,
    /// concurrently, with progress).
    Up,
    /// Revert every applied migration (refused while a table holds rows, unless
    /// --drop-data).
    Down,
    /// Print which migrations are applied.
    Status,
    /// Revert the last applied migration and apply it again.
    Redo,
    /// Revert the last N applied migrations.
    Revert {
        /// How many migrations to revert.
        #[arg(default_value_t = 1)]
        n: usize,
    },
}

impl Action {
    /// The action's name on the command line.
    fn name(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::Status => "status",
            Action::Redo => "redo",
            Action::Revert { .. } => "revert",
        }
    }
}

impl From<Action> for Command {
    fn from(a: Action) -> Self {
        match a {
            Action::Up => Command::Up,
            Action::Down => Command::Down,
            Action::Status => Command::Status,
            Action::Redo => Command::Redo,
            Action::Revert { n } => Command::Revert(n),
        }
    }
}

/// Runs `migrate`.
pub fn run(args: MigrateArgs) -> Result<()> {
    let options = Options::default()
        .with_drop_data(args.drop_data)
        .with_embedding_dim(args.embedding_dim);
    let action = args.action;
    let (url, source) = match args.url.resolve()? {
        Some(named) => (named.url, named.source),
        None => {
            let cfg = SqliteConfig::from_env()?;
            let source = if std::env::var_os("MEMGPT_SQLITE_PATH").is_some() {
                "MEMGPT_SQLITE_PATH"
            } else {
                "the default SQLite file: neither --database-url, MEMGPT_PG_URL, \
                 MEMGPT_DATABASE_URL nor MEMGPT_SQLITE_PATH is set"
            };
            (
                DatabaseUrl::new(cfg.path.to_string_lossy().into_owned()),
                source,
            )
        }
    };
    // Before anything changes: which database, and what named it.
    eprintln!(
        "memgpt-store: migrate {}: {} (from {source})",
        action.name(),
        url.redacted()
    );
    out!("migrating {}", url.redacted());
    let report = memgpt_migrate::run_url_with(&url, action.into(), &options, &|line| {
        out!("{line}");
    })?;
    for m in &report.reverted {
        out!("reverted {m}");
    }
    for m in &report.applied {
        out!("applied  {m}");
    }
    for s in &report.status {
        out!("[{}] {}", if s.applied { "x" } else { " " }, s.name);
    }
    Ok(())
}
