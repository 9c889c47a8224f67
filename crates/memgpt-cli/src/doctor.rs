//! `memgpt-store stats` and `memgpt-store doctor`: what a running deployment looks like.
//! Neither changes the database: PostgreSQL and SQLite are opened without migrating, SQLite
//! through read-only connections.

use crate::{anyhow, bail, out, Result, UrlArg};
use memgpt_core::uuid::Uuid;
use memgpt_core::{DatabaseUrl, Document, Message, Passage, QueryPlan, Scope, TableType};
use memgpt_migrate::Target;
#[cfg(feature = "postgres")]
use memgpt_pg::{PgConfig, PgStore};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::SqliteStore;

/// The `--database-url` argument, else the environment's ([`UrlArg::resolve`]).
fn url_arg(arg: UrlArg) -> Result<DatabaseUrl> {
    let [first, second] = memgpt_core::config::DATABASE_URL_VARIABLES;
    arg.resolve()?
        .map(|named| named.url)
        .ok_or_else(|| anyhow!("give --database-url URL (or set {first} or {second})"))
}

#[cfg(feature = "postgres")]
pub(crate) fn pg_config(url: DatabaseUrl) -> Result<PgConfig> {
    let mut config = PgConfig::from_lookup(&|name: &str| match name {
        "MEMGPT_PG_URL" => Some(url.expose().to_owned()),
        other => std::env::var(other).ok(),
    })?;
    config.pool_size = 1;
    config.max_overflow = 0;
    Ok(config)
}

/// `memgpt-store stats --database-url URL`.
pub fn stats(args: UrlArg) -> Result<()> {
    let url = url_arg(args)?;
    let target = Target::of(&url);
    if target != Target::Postgres {
        bail!("stats needs a PostgreSQL server: a postgres:// URL or a key=value string");
    }
    #[cfg(not(feature = "postgres"))]
    return Err(target.unsupported(&url).into());
    #[cfg(feature = "postgres")]
    stats_of(url)
}

/// `stats` on a PostgreSQL server.
#[cfg(feature = "postgres")]
fn stats_of(url: DatabaseUrl) -> Result<()> {
    let config = pg_config(url.clone())?;
    let app = config.application_name.clone();
    let store = PgStore::connect(config)?;
    out!(
        "server {}  pgvector: {}",
        url.redacted(),
        store.vector_search()
    );
    out!("\nconnections of application_name={app:?} (pg_stat_activity):");
    let activity = store.activity()?;
    if activity.is_empty() {
        out!("  none");
    }
    for a in activity {
        out!(
            "  pid {:>7}  {:<20} wait {:<14} {:>8.2}s  {}",
            a.pid,
            a.state.unwrap_or_default(),
            a.wait_event.unwrap_or_default(),
            a.query_seconds.unwrap_or_default(),
            a.query.unwrap_or_default().replace('\n', " ")
        );
    }
    out!("\nindex usage (pg_stat_user_indexes):");
    for i in store.index_usage()? {
        out!(
            "  {:<30} {:<62} {:>10} scans {:>12} bytes",
            i.table,
            i.index,
            i.scans,
            i.bytes
        );
    }
    let m = store.metrics();
    out!(
        "\nthis process's pool: {} open, {} idle, {} in use, {} overflow, max {}; {} checkouts, \
         wait max {:?} p99 {:?}, {} timeouts",
        m.connections,
        m.idle,
        m.in_use,
        m.overflow,
        m.max,
        m.checkouts,
        m.wait_max,
        m.wait_p99,
        m.timeouts
    );
    Ok(())
}

fn report(plans: Vec<QueryPlan>, bad: &mut usize) {
    for p in plans {
        let verdict = if p.is_indexed() { "ok  " } else { "SCAN" };
        if !p.is_indexed() {
            *bad += 1;
        }
        // The line naming the access path says the most; else the plan's first line.
        let first = p
            .plan
            .lines()
            .find(|l| l.contains("Scan") || l.contains("SEARCH") || l.contains("SCAN"))
            .or_else(|| p.plan.lines().next())
            .unwrap_or_default()
            .trim()
            .to_owned();
        out!(
            "  {verdict} {:<30} {:<18} {}",
            p.table.table_name(),
            p.operation,
            first
        );
        if !p.is_indexed() {
            for l in p.plan.lines() {
                out!("         {l}");
            }
        }
    }
}

/// Prints pgvector's version and the vector indexes that are missing; returns how many.
#[cfg(feature = "postgres")]
fn vector_indexes(store: &PgStore) -> Result<usize> {
    let Some(v) = store.pgvector() else {
        return Ok(0);
    };
    let dim = store.config().embedding_dim;
    let kind = if dim > memgpt_migrate::postgres::MAX_VECTOR_HNSW_DIM {
        "halfvec: half precision, as pgvector indexes more than 2,000 dimensions"
    } else {
        "vector"
    };
    out!("pgvector {v}; HNSW indexes of dimension {dim} as {kind}");
    let missing = store.missing_indexes()?;
    if !missing.is_empty() {
        out!(
            "  MISSING vector indexes {} (dimension {dim}): build them with \
             `memgpt-store migrate --database-url URL up --embedding-dim {dim}`",
            missing.join(", "),
        );
    }
    Ok(missing.len())
}

/// `memgpt-store doctor --database-url URL`: EXPLAIN of every query pattern. `Ok(false)`
/// when it found a problem (printed).
pub fn doctor(args: UrlArg) -> Result<bool> {
    let url = url_arg(args)?;
    let (agent, user) = (
        Scope::agent(Uuid::nil(), Uuid::nil()),
        Scope::user(Uuid::nil()),
    );
    let mut bad = 0;
    out!("query plans on {}:", url.redacted());
    // The same four connectors on either backend.
    macro_rules! explain_all {
        ($store:expr) => {{
            let store = $store;
            report(
                store
                    .connector::<Message>(TableType::RecallMemory, agent)?
                    .explain()?,
                &mut bad,
            );
            report(
                store
                    .connector::<Passage>(TableType::ArchivalMemory, agent)?
                    .explain()?,
                &mut bad,
            );
            report(
                store
                    .connector::<Passage>(TableType::Passages, user)?
                    .explain()?,
                &mut bad,
            );
            report(
                store
                    .connector::<Document>(TableType::Documents, user)?
                    .explain()?,
                &mut bad,
            );
        }};
    }
    match Target::of(&url) {
        #[cfg(feature = "postgres")]
        Target::Postgres => {
            let store = PgStore::connect(pg_config(url)?)?;
            bad += vector_indexes(&store)?;
            explain_all!(store)
        }
        #[cfg(not(feature = "postgres"))]
        target @ Target::Postgres => return Err(target.unsupported(&url).into()),
        Target::Sqlite(path) => {
            if !path.exists() {
                bail!("{} does not exist", path.display());
            }
            let mut config = SqliteConfig::from_env()?;
            config.path = path;
            explain_all!(SqliteStore::connect(config)?)
        }
    }
    if bad > 0 {
        out!(
            "{bad} problem(s): a missing index, or a query pattern that reads a whole table: run \
             `memgpt-store migrate up` (missing indexes) and ANALYZE; see docs/TROUBLESHOOTING.md"
        );
        return Ok(false);
    }
    out!("every query pattern uses an index");
    Ok(true)
}
