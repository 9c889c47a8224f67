//! `memgpt-store stats`: what a running PostgreSQL deployment looks like — this
//! application's connections (`pg_stat_activity`), index usage and this process's pool.
//! Changes nothing. `--json` prints one JSON object instead of lines.

use crate::doctor::{url_arg, ReportArgs};
use crate::{bail, Result};
use memgpt_migrate::Target;

/// `memgpt-store stats --database-url URL [--json]`.
pub fn stats(args: ReportArgs) -> Result<()> {
    let url = url_arg(args.url)?;
    let target = Target::of(&url);
    if target != Target::Postgres {
        bail!("stats needs a PostgreSQL server: a postgres:// URL or a key=value string");
    }
    #[cfg(not(feature = "postgres"))]
    return Err(target.unsupported(&url).into());
    #[cfg(feature = "postgres")]
    postgres::stats(&url, args.json)
}

#[cfg(feature = "postgres")]
mod postgres {
    use crate::{out, Result};
    use memgpt_core::DatabaseUrl;
    use memgpt_pg::{Activity, IndexUsage, PgStore, PoolMetrics};
    use serde_json::{json, Value};

    /// What `stats` reads.
    struct Stats {
        pgvector: bool,
        application_name: String,
        activity: Vec<Activity>,
        indexes: Vec<IndexUsage>,
        pool: PoolMetrics,
    }

    pub(super) fn stats(url: &DatabaseUrl, json: bool) -> Result<()> {
        let config = crate::doctor::pg_config(url.clone())?;
        let application_name = config.application_name.clone();
        let store = PgStore::connect(config)?;
        let s = Stats {
            pgvector: store.vector_search(),
            application_name,
            activity: store.activity()?,
            indexes: store.index_usage()?,
            pool: store.metrics(),
        };
        if json {
            out!("{}", as_json(url, &s));
        } else {
            as_text(url, s);
        }
        Ok(())
    }

    fn micros(d: std::time::Duration) -> u64 {
        u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
    }

    fn as_json(url: &DatabaseUrl, s: &Stats) -> Value {
        let m = &s.pool;
        json!({
            "server": url.redacted(),
            "pgvector": s.pgvector,
            "application_name": s.application_name,
            "activity": s.activity.iter().map(|a| json!({
                "pid": a.pid,
                "state": a.state,
                "wait_event": a.wait_event,
                "query_seconds": a.query_seconds,
                "query": a.query,
            })).collect::<Vec<_>>(),
            "index_usage": s.indexes.iter().map(|i| json!({
                "table": i.table,
                "index": i.index,
                "scans": i.scans,
                "bytes": i.bytes,
            })).collect::<Vec<_>>(),
            "pool": {
                "pool_size": m.pool_size,
                "max": m.max,
                "connections": m.connections,
                "idle": m.idle,
                "in_use": m.in_use,
                "waiting": m.waiting,
                "overflow": m.overflow,
                "checkouts": m.checkouts,
                "wait_total_us": micros(m.wait_total),
                "wait_max_us": micros(m.wait_max),
                "wait_p99_us": micros(m.wait_p99),
                "timeouts": m.timeouts,
                "opened": m.opened,
                "closed": m.closed,
                "leaks": m.leaks,
                "replica_reads": m.replica_reads,
                "replica_fallbacks": m.replica_fallbacks,
                "reruns": m.reruns,
            },
        })
    }

    fn as_text(url: &DatabaseUrl, s: Stats) {
        out!("server {}  pgvector: {}", url.redacted(), s.pgvector);
        out!(
            "\nconnections of application_name={:?} (pg_stat_activity):",
            s.application_name
        );
        if s.activity.is_empty() {
            out!("  none");
        }
        for a in s.activity {
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
        for i in s.indexes {
            out!(
                "  {:<30} {:<62} {:>10} scans {:>12} bytes",
                i.table,
                i.index,
                i.scans,
                i.bytes
            );
        }
        let m = s.pool;
        out!(
            "\nthis process's pool: {} open, {} idle, {} in use, {} overflow, max {}; {} \
             checkouts, wait max {:?} p99 {:?}, {} timeouts",
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
    }
}
