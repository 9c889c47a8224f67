//! `memgpt-store prune`: retention from the command line (`memgpt_core::retention`).
//! Deletes one tenant's records a rule selects, in batches, each its own transaction,
//! printing each batch; stopped (Ctrl-C) between batches, the same command goes on later.

use clap::{ArgGroup, Args};
use memgpt_core::chrono::{DateTime, Utc};
use memgpt_core::retention::{Retention, DEFAULT_PRUNE_BATCH, MAX_PRUNE_BATCH};
use memgpt_core::uuid::Uuid;
use memgpt_core::{Document, Message, Passage, Scope, StorageConnector, TableType};
use memgpt_migrate::Target;
#[cfg(feature = "postgres")]
use memgpt_pg::PgStore;
use memgpt_sqlite::{SqliteConfig, SqliteStore};

use crate::{bail, out, Result, UrlArg};

/// `memgpt-store prune`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("rule")
        .required(true)
        .args(["older_than", "keep_newest", "data_source"])
))]
pub(crate) struct PruneArgs {
    #[command(flatten)]
    url: UrlArg,
    /// The table: recall, archival, passages or documents.
    #[arg(long, value_parser = table)]
    table: TableType,
    /// The user whose records are pruned.
    #[arg(long)]
    user: Uuid,
    /// The agent (recall and archival memory need one).
    #[arg(long)]
    agent: Option<Uuid>,
    /// Remove the records created before this instant (RFC 3339: 2024-06-01T00:00:00Z).
    #[arg(long)]
    older_than: Option<DateTime<Utc>>,
    /// Keep only the newest N records of the scope.
    #[arg(long, value_name = "N")]
    keep_newest: Option<u64>,
    /// Remove the records of a data source (archival memory, passages, documents).
    #[arg(long, value_name = "NAME")]
    data_source: Option<String>,
    /// Rows per batch (one transaction each), 1..=50000.
    #[arg(long, default_value_t = DEFAULT_PRUNE_BATCH as u64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_PRUNE_BATCH as u64))]
    batch: u64,
}

fn table(s: &str) -> std::result::Result<TableType, String> {
    match s {
        "recall" => Ok(TableType::RecallMemory),
        "archival" => Ok(TableType::ArchivalMemory),
        "passages" => Ok(TableType::Passages),
        "documents" => Ok(TableType::Documents),
        other => Err(format!(
            "{other:?} is not one of recall, archival, passages, documents"
        )),
    }
}

/// Runs `prune`.
pub(crate) fn run(args: PruneArgs) -> Result<()> {
    let rule = match (args.older_than, args.keep_newest, args.data_source) {
        (Some(at), None, None) => Retention::OlderThan(at),
        (None, Some(n), None) => Retention::KeepNewest(n),
        (None, None, Some(source)) => Retention::DataSource(source),
        _ => bail!("give one of --older-than, --keep-newest, --data-source"),
    };
    let scope = match args.agent {
        Some(agent) => Scope::agent(args.user, agent),
        None => Scope::user(args.user),
    };
    let Some(named) = args.url.resolve()? else {
        let [first, second] = memgpt_core::config::DATABASE_URL_VARIABLES;
        bail!("give --database-url URL (or set {first} or {second})");
    };
    eprintln!(
        "memgpt-store: prune: {} (from {})",
        named.url.redacted(),
        named.source
    );
    let (table, batch) = (args.table, usize::try_from(args.batch)?);
    macro_rules! on {
        ($store:expr) => {{
            let store = $store;
            match table {
                TableType::RecallMemory => {
                    batches(&store.connector::<Message>(table, scope)?, &rule, batch)
                }
                TableType::Documents => {
                    batches(&store.connector::<Document>(table, scope)?, &rule, batch)
                }
                _ => batches(&store.connector::<Passage>(table, scope)?, &rule, batch),
            }
        }};
    }
    match Target::of(&named.url) {
        #[cfg(feature = "postgres")]
        Target::Postgres => on!(PgStore::connect(crate::doctor::pg_config(named.url)?)?),
        #[cfg(not(feature = "postgres"))]
        target @ Target::Postgres => Err(target.unsupported(&named.url).into()),
        Target::Sqlite(path) => {
            let mut config = SqliteConfig::from_env()?;
            config.path = path;
            on!(SqliteStore::connect(config)?)
        }
    }
}

/// Prunes batch after batch, printing each.
fn batches(c: &impl StorageConnector, rule: &Retention, batch: usize) -> Result<()> {
    let (mut total, mut n) = (0u64, 0u64);
    loop {
        let deleted = c.prune_batch(rule, batch)?;
        if deleted > 0 {
            n += 1;
            total += deleted;
            out!("batch {n}: {deleted} deleted ({total} in all)");
        }
        if deleted < batch as u64 {
            out!("pruned: {total} record(s) in {n} batch(es)");
            return Ok(());
        }
    }
}
