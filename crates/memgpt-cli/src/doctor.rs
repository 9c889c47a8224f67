//! `memgpt-store doctor`: the plan of every query pattern. Changes nothing: PostgreSQL and
//! SQLite are opened without migrating, SQLite through read-only connections. `--json`
//! prints one JSON object instead of lines.

use crate::{anyhow, bail, out, Result, UrlArg};
use clap::Args;
use memgpt_core::uuid::Uuid;
use memgpt_core::{DatabaseUrl, Document, Message, Passage, QueryPlan, Scope, TableType};
use memgpt_migrate::Target;
#[cfg(feature = "postgres")]
use memgpt_pg::{PgConfig, PgStore};
use memgpt_sqlite::SqliteConfig;
use memgpt_sqlite::SqliteStore;
use serde_json::{json, Value};

/// The arguments of `doctor` and `stats`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    #[command(flatten)]
    pub(crate) url: UrlArg,
    /// Print one JSON object (for scripts and monitoring) instead of lines.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The `--database-url` argument, else the environment's ([`UrlArg::resolve`]).
pub(crate) fn url_arg(arg: UrlArg) -> Result<DatabaseUrl> {
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

/// pgvector on a PostgreSQL database: its version, the indexes' dimension and type, and
/// the vector indexes that are missing.
struct Vectors {
    version: String,
    dim: u32,
    halfvec: bool,
    missing: Vec<String>,
}

/// What `doctor` found.
struct Findings {
    vectors: Option<Vectors>,
    plans: Vec<QueryPlan>,
}

impl Findings {
    /// Query patterns that read a whole table, and missing vector indexes.
    fn problems(&self) -> usize {
        self.plans.iter().filter(|p| !p.is_indexed()).count()
            + self.vectors.as_ref().map_or(0, |v| v.missing.len())
    }
}

/// The plans of every query pattern of the four tables of `store`.
macro_rules! plans {
    ($store:expr) => {{
        let store = $store;
        let (agent, user) = (
            Scope::agent(Uuid::nil(), Uuid::nil()),
            Scope::user(Uuid::nil()),
        );
        let mut plans = store
            .connector::<Message>(TableType::RecallMemory, agent)?
            .explain()?;
        plans.extend(
            store
                .connector::<Passage>(TableType::ArchivalMemory, agent)?
                .explain()?,
        );
        plans.extend(
            store
                .connector::<Passage>(TableType::Passages, user)?
                .explain()?,
        );
        plans.extend(
            store
                .connector::<Document>(TableType::Documents, user)?
                .explain()?,
        );
        plans
    }};
}

fn findings(url: &DatabaseUrl) -> Result<Findings> {
    match Target::of(url) {
        #[cfg(feature = "postgres")]
        Target::Postgres => {
            let store = PgStore::connect(pg_config(url.clone())?)?;
            let vectors = match store.pgvector() {
                Some(v) => {
                    let dim = store.config().embedding_dim;
                    Some(Vectors {
                        version: v.to_string(),
                        dim,
                        halfvec: dim > memgpt_migrate::postgres::MAX_VECTOR_HNSW_DIM,
                        missing: store.missing_indexes()?,
                    })
                }
                None => None,
            };
            Ok(Findings {
                vectors,
                plans: plans!(store),
            })
        }
        #[cfg(not(feature = "postgres"))]
        target @ Target::Postgres => Err(target.unsupported(url).into()),
        Target::Sqlite(path) => {
            if !path.exists() {
                bail!("{} does not exist", path.display());
            }
            let mut config = SqliteConfig::from_env()?;
            config.path = path;
            Ok(Findings {
                vectors: None,
                plans: plans!(SqliteStore::connect(config)?),
            })
        }
    }
}

/// `memgpt-store doctor [--json]`: EXPLAIN of every query pattern. `Ok(false)` when it
/// found a problem (printed).
pub fn doctor(args: ReportArgs) -> Result<bool> {
    let url = url_arg(args.url)?;
    let found = findings(&url)?;
    if args.json {
        out!("{}", as_json(&url, &found));
    } else {
        as_text(&url, &found);
    }
    Ok(found.problems() == 0)
}

fn as_json(url: &DatabaseUrl, found: &Findings) -> Value {
    json!({
        "database": url.redacted(),
        "clean": found.problems() == 0,
        "problems": found.problems(),
        "vector": found.vectors.as_ref().map(|v| json!({
            "pgvector": v.version,
            "dimension": v.dim,
            "type": if v.halfvec { "halfvec" } else { "vector" },
            "missing": v.missing,
        })),
        "plans": found.plans.iter().map(|p| json!({
            "table": p.table.table_name(),
            "operation": p.operation,
            "indexed": p.is_indexed(),
            "plan": p.plan,
        })).collect::<Vec<_>>(),
    })
}

fn as_text(url: &DatabaseUrl, found: &Findings) {
    out!("query plans on {}:", url.redacted());
    if let Some(v) = &found.vectors {
        let (dim, kind) = (
            v.dim,
            if v.halfvec {
                "halfvec: half precision, as pgvector indexes more than 2,000 dimensions"
            } else {
                "vector"
            },
        );
        out!(
            "pgvector {}; HNSW indexes of dimension {dim} as {kind}",
            v.version
        );
        if !v.missing.is_empty() {
            out!(
                "  MISSING vector indexes {} (dimension {dim}): build them with \
                 `memgpt-store migrate --database-url URL up --embedding-dim {dim}`",
                v.missing.join(", "),
            );
        }
    }
    for p in &found.plans {
        let verdict = if p.is_indexed() { "ok  " } else { "SCAN" };
        // The line naming the access path says the most; else the plan's first line.
        let first = p
            .plan
            .lines()
            .find(|l| l.contains("Scan") || l.contains("SEARCH") || l.contains("SCAN"))
            .or_else(|| p.plan.lines().next())
            .unwrap_or_default()
            .trim();
        out!(
            "  {verdict} {:<30} {:<18} {first}",
            p.table.table_name(),
            p.operation
        );
        if !p.is_indexed() {
            for l in p.plan.lines() {
                out!("         {l}");
            }
        }
    }
    let bad = found.problems();
    if bad > 0 {
        out!(
            "{bad} problem(s): a missing index, or a query pattern that reads a whole table: run \
             `memgpt-store migrate up` (missing indexes) and ANALYZE; see docs/TROUBLESHOOTING.md"
        );
    } else {
        out!("every query pattern uses an index");
    }
}
