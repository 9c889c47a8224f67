//! The PostgreSQL backend's settings, read from the environment.

use std::time::Duration;

use memgpt_core::config::{config_err, int_var, millis_var, secs_var, Env, Lookup};
use memgpt_core::{DatabaseUrl, Error, Result};

/// Settings of the PostgreSQL backend. Defaults are the seed's: 20 idle connections kept at
/// most, 30 more under load, 30 s checkout timeout, connections recycled after an hour.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgConfig {
    /// The server (`MEMGPT_PG_URL`, else `MEMGPT_DATABASE_URL`: see
    /// [`memgpt_core::config::database_url`]): a `postgres://` or `postgresql://` URL, or a
    /// libpq `key=value` string.
    pub database_url: DatabaseUrl,
    /// Idle connections kept at most (`MEMGPT_PG_POOL_SIZE`, default 20, at least 1), as
    /// SQLAlchemy's QueuePool: one that comes back while `pool_size` others are idle (and
    /// no caller waits) is closed. [`PgStore::open`](crate::PgStore::open) opens this many.
    pub pool_size: u32,
    /// Connections opened beyond `pool_size` under load (`MEMGPT_PG_MAX_OVERFLOW`, default
    /// 30): at most `pool_size + max_overflow` are open, busy and idle together.
    pub max_overflow: u32,
    /// Longest wait for a connection (`MEMGPT_PG_POOL_TIMEOUT`, seconds, default 30): the
    /// waits of one call count together — for a replica and then the primary (a replica
    /// waits at most half of what is left), for a connection replacing one found gone, for
    /// a call run again (the time the call ran before does not count). The async
    /// facade's wait for a place comes before it
    /// ([`AsyncStore`](memgpt_core::asynchronous::AsyncStore)).
    pub pool_timeout: Duration,
    /// A call outside a unit of work takes a connection used within this long without
    /// pinging it first (`MEMGPT_PG_PRE_PING_BYPASS_MS`, milliseconds, default 500, as
    /// HikariCP's bypass window; 0: every checkout pings): should the connection be gone,
    /// a read runs again on a checked one, and so does a write whose `BEGIN` found it gone
    /// (a write that began never runs again). Units of work and replicas always ping.
    pub pre_ping_bypass: Duration,
    /// Maximum lifetime of a connection (`MEMGPT_PG_POOL_RECYCLE`, seconds, default 3600).
    pub pool_recycle: Duration,
    /// How long a connection may sit idle before the pool may close it
    /// (`MEMGPT_PG_IDLE_TIMEOUT`, seconds, default 60); the next calls open new ones.
    pub idle_timeout: Duration,
    /// `application_name` of every connection (`MEMGPT_PG_APPLICATION_NAME`, default
    /// `memgpt-store`).
    pub application_name: String,
    /// libpq `connect_timeout` (`MEMGPT_PG_CONNECT_TIMEOUT`, seconds, default 10).
    pub connect_timeout: Duration,
    /// `statement_timeout` of every connection (`MEMGPT_PG_STATEMENT_TIMEOUT_MS`,
    /// milliseconds, default 60000; 0 turns it off).
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of every connection
    /// (`MEMGPT_PG_IDLE_IN_TRANSACTION_TIMEOUT_MS`, milliseconds, default 60000; 0 turns it
    /// off): the server ends a session whose transaction sits idle that long (a unit of
    /// work whose closure stalls), releasing its locks.
    pub idle_in_transaction_timeout: Duration,
    /// The true dimension of indexed embeddings (`MEMGPT_EMBEDDING_DIM`, default 1536,
    /// 1..=4000: pgvector's HNSW limit, as `halfvec` above 2,000).
    pub embedding_dim: u32,
    /// Refuse embeddings (and query vectors) of any other length than `embedding_dim`
    /// (`MEMGPT_EMBEDDING_DIM_STRICT=1`; default off: any length up to 4096 is stored,
    /// zero-padded, as MemGPT stores them).
    pub strict_embedding_dim: bool,
    /// Warn (a `tracing` warning event, which reaches `log` when no `tracing` subscriber
    /// is installed) when a connection is held longer than this, naming where it was taken
    /// (`MEMGPT_PG_LEAK_THRESHOLD_MS`, default off; 0 turns it off).
    pub leak_threshold: Option<Duration>,
    /// What stands between this process and the server (`MEMGPT_PG_PGBOUNCER`: unset,
    /// `off` or `session` for a server or a session-mode pooler; `transaction` for PgBouncer
    /// in transaction pooling mode). See [`Pooler`].
    pub pooler: Pooler,
    /// Streaming replicas that serve reads (`MEMGPT_PG_REPLICA_URLS`, comma-separated;
    /// default none). Each gets a pool of its own, sized by the same settings; reads outside
    /// a unit of work go to them in turn, writes and units of work to the primary.
    pub replica_urls: Vec<DatabaseUrl>,
    /// A replica further behind than this is skipped until it catches up
    /// (`MEMGPT_PG_REPLICA_MAX_LAG`, seconds, default 5): the primary serves its reads.
    pub replica_max_lag: Duration,
    /// How long [`PgStore::open`](crate::PgStore::open) waits for the migration lock
    /// (another process migrating) and, while it applies migrations, for each lock on a
    /// table (`MEMGPT_PG_MIGRATION_LOCK_TIMEOUT`, seconds, default 30). Past it, open fails
    /// with [`Error::Migration`] naming the session that holds the lock.
    pub migration_lock_timeout: Duration,
    /// Connections a bulk load of passages (archival memory, documents' passages) may
    /// spread over (`MEMGPT_PG_LOAD_CONNECTIONS`, default 1: the caller's alone). Above 1,
    /// on a server that allows prepared transactions (`max_prepared_transactions` at
    /// least this and one more), a call of more than 64 passages is split by id over
    /// this many pooled connections and stays all or nothing by two-phase commit (though
    /// another session may see some parts' rows a moment before the others' as they
    /// commit); pgvector maintains its HNSW index on each at once. See
    /// docs/CONFIGURATION.md.
    pub load_connections: u32,
}

/// What the pool's connections reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// The server itself, or a pooler in session mode (one server connection per client
    /// connection): session settings are sent at connect, statements are prepared once per
    /// connection and cached, migrations run at [`PgStore::open`](crate::PgStore::open).
    #[default]
    Direct,
    /// PgBouncer (or a pooler like it) in transaction mode: each transaction may run on
    /// another server connection, so nothing that outlives a transaction is used. No
    /// startup `options` (PgBouncer refuses them); `jit`, `statement_timeout` and
    /// `idle_in_transaction_session_timeout` are applied with `SET LOCAL` in every call's
    /// transaction unless the server's defaults (for the role or database) already match;
    /// no prepared statement is kept (each runs as an unnamed one, in one round trip);
    /// [`PgStore::open`](crate::PgStore::open) applies no migration (they need a session
    /// advisory lock: run them against the server directly) and fails on pending ones.
    Transaction,
}

impl PgConfig {
    /// The default settings for `database_url`.
    pub fn new(database_url: DatabaseUrl) -> Self {
        PgConfig {
            database_url,
            pool_size: 20,
            max_overflow: 30,
            pool_timeout: Duration::from_secs(30),
            pre_ping_bypass: Duration::from_millis(500),
            pool_recycle: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(60),
            application_name: "memgpt-store".to_owned(),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            idle_in_transaction_timeout: Duration::from_secs(60),
            embedding_dim: memgpt_migrate::postgres::DEFAULT_EMBEDDING_DIM,
            strict_embedding_dim: false,
            leak_threshold: None,
            pooler: Pooler::Direct,
            replica_urls: Vec::new(),
            replica_max_lag: Duration::from_secs(5),
            migration_lock_timeout: Duration::from_secs(30),
            load_connections: 1,
        }
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&Env)
    }

    /// Reads the settings from `env` (the process environment, or a map in tests).
    pub fn from_lookup(env: &dyn Lookup) -> Result<Self> {
        let [first, second] = memgpt_core::config::DATABASE_URL_VARIABLES;
        let (variable, database_url) =
            memgpt_core::config::database_url(env).ok_or_else(|| Error::Config {
                variable: first.to_owned(),
                value: String::new(),
                reason: format!("not set (nor {second})"),
            })?;
        if !database_url.is_postgres() {
            return Err(config_err(
                variable,
                database_url.expose(),
                "expected a postgres:// or postgresql:// URL, or a libpq key=value string",
            ));
        }
        let d = PgConfig::new(database_url);
        let application_name = application_name(env, &d.application_name)?;
        let pooler = pooler(env)?;
        let replica_urls = replica_urls(env)?;
        Ok(PgConfig {
            pooler,
            replica_urls,
            replica_max_lag: secs_var(env, "MEMGPT_PG_REPLICA_MAX_LAG", 5, 0)?,
            migration_lock_timeout: secs_var(env, "MEMGPT_PG_MIGRATION_LOCK_TIMEOUT", 30, 1)?,
            load_connections: int_var(env, "MEMGPT_PG_LOAD_CONNECTIONS", 1, 1, 64)?,
            pool_size: int_var(env, "MEMGPT_PG_POOL_SIZE", d.pool_size, 1, 10_000)?,
            max_overflow: int_var(env, "MEMGPT_PG_MAX_OVERFLOW", d.max_overflow, 0, 10_000)?,
            pool_timeout: secs_var(env, "MEMGPT_PG_POOL_TIMEOUT", 30, 1)?,
            pre_ping_bypass: millis_var(env, "MEMGPT_PG_PRE_PING_BYPASS_MS", 500, 0)?,
            pool_recycle: secs_var(env, "MEMGPT_PG_POOL_RECYCLE", 3600, 1)?,
            idle_timeout: secs_var(env, "MEMGPT_PG_IDLE_TIMEOUT", 60, 1)?,
            application_name,
            connect_timeout: secs_var(env, "MEMGPT_PG_CONNECT_TIMEOUT", 10, 1)?,
            statement_timeout: millis_var(env, "MEMGPT_PG_STATEMENT_TIMEOUT_MS", 60_000, 0)?,
            idle_in_transaction_timeout: millis_var(
                env,
                "MEMGPT_PG_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                60_000,
                0,
            )?,
            embedding_dim: memgpt_migrate::postgres::embedding_dim(env)?,
            strict_embedding_dim: int_var(env, "MEMGPT_EMBEDDING_DIM_STRICT", 0u8, 0, 1)? == 1,
            leak_threshold: Some(millis_var(env, "MEMGPT_PG_LEAK_THRESHOLD_MS", 0, 0)?)
                .filter(|d| !d.is_zero()),
            database_url: d.database_url,
        })
    }
}

/// `MEMGPT_PG_APPLICATION_NAME`: 1 to 63 ASCII characters, else `default`.
fn application_name(env: &dyn Lookup, default: &str) -> Result<String> {
    match env.get("MEMGPT_PG_APPLICATION_NAME") {
        Some(v) if v.is_empty() || v.len() > 63 || !v.is_ascii() => Err(config_err(
            "MEMGPT_PG_APPLICATION_NAME",
            &v,
            "expected 1 to 63 ASCII characters",
        )),
        Some(v) => Ok(v),
        None => Ok(default.to_owned()),
    }
}

/// `MEMGPT_PG_PGBOUNCER`: `transaction`, or `session` / `off` / unset (direct).
fn pooler(env: &dyn Lookup) -> Result<Pooler> {
    match env.get("MEMGPT_PG_PGBOUNCER").as_deref() {
        None | Some("" | "off" | "session") => Ok(Pooler::Direct),
        Some("transaction") => Ok(Pooler::Transaction),
        Some(other) => Err(config_err(
            "MEMGPT_PG_PGBOUNCER",
            other,
            "expected `transaction`, `session` or `off`",
        )),
    }
}

/// `MEMGPT_PG_REPLICA_URLS`: comma-separated URLs. A key=value string (whose values may
/// hold commas: libpq's multi-host `host=a,b`, a quoted password) is not accepted here.
fn replica_urls(env: &dyn Lookup) -> Result<Vec<DatabaseUrl>> {
    let Some(list) = env.get("MEMGPT_PG_REPLICA_URLS") else {
        return Ok(Vec::new());
    };
    list.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| {
            let url = DatabaseUrl::new(part);
            if matches!(url.scheme(), Some("postgres" | "postgresql")) {
                Ok(url)
            } else {
                Err(config_err(
                    "MEMGPT_PG_REPLICA_URLS",
                    &list,
                    "expected comma-separated postgres:// or postgresql:// URLs (key=value \
                     strings cannot be listed here: commas separate the replicas)",
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: (&str, &str) = ("MEMGPT_PG_URL", "postgres://u:s3cret@localhost/db");

    #[test]
    fn pg_defaults_are_the_seeds() {
        let c = PgConfig::from_lookup(&([URL])).unwrap();
        assert_eq!(c.pool_size, 20);
        assert_eq!(c.max_overflow, 30);
        assert_eq!(c.pool_timeout, Duration::from_secs(30));
        assert_eq!(c.pool_recycle, Duration::from_secs(3600));
        assert_eq!(c.application_name, "memgpt-store");
        assert_eq!(c.embedding_dim, 1536);
        assert!(!c.strict_embedding_dim);
        let c = PgConfig::from_lookup(&[URL, ("MEMGPT_EMBEDDING_DIM_STRICT", "1")]).unwrap();
        assert!(c.strict_embedding_dim);
        assert!(PgConfig::from_lookup(&[URL, ("MEMGPT_EMBEDDING_DIM_STRICT", "yes")]).is_err());
    }

    #[test]
    fn malformed_pool_size_names_the_variable() {
        for bad in ["abc", "0", "-1", "", "1.5"] {
            let err = PgConfig::from_lookup(&([URL, ("MEMGPT_PG_POOL_SIZE", bad)])).unwrap_err();
            match err {
                Error::Config {
                    variable, value, ..
                } => {
                    assert_eq!(variable, "MEMGPT_PG_POOL_SIZE");
                    assert_eq!(value, bad);
                }
                other => panic!("expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn each_pool_variable_is_read() {
        let c = PgConfig::from_lookup(
            &([
                URL,
                ("MEMGPT_PG_POOL_SIZE", "5"),
                ("MEMGPT_PG_MAX_OVERFLOW", "0"),
                ("MEMGPT_PG_POOL_TIMEOUT", "7"),
                ("MEMGPT_PG_POOL_RECYCLE", "60"),
                ("MEMGPT_PG_PRE_PING_BYPASS_MS", "0"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.pool_size, c.max_overflow, c.pool_timeout, c.pool_recycle),
            (5, 0, Duration::from_secs(7), Duration::from_secs(60))
        );
        assert_eq!(c.pre_ping_bypass, Duration::ZERO);
        let default = PgConfig::from_lookup(&[URL]).unwrap().pre_ping_bypass;
        assert_eq!(default, Duration::from_millis(500));
        for var in [
            "MEMGPT_PG_MAX_OVERFLOW",
            "MEMGPT_PG_POOL_TIMEOUT",
            "MEMGPT_PG_POOL_RECYCLE",
            "MEMGPT_PG_PRE_PING_BYPASS_MS",
        ] {
            let err = PgConfig::from_lookup(&([URL, (var, "-1")])).unwrap_err();
            assert!(
                matches!(&err, Error::Config { variable, .. } if variable == var),
                "{err}"
            );
        }
    }

    #[test]
    fn pgbouncer_mode_is_read() {
        assert_eq!(
            PgConfig::from_lookup(&[URL]).unwrap().pooler,
            Pooler::Direct
        );
        for (v, mode) in [
            ("transaction", Pooler::Transaction),
            ("session", Pooler::Direct),
            ("off", Pooler::Direct),
        ] {
            let c = PgConfig::from_lookup(&[URL, ("MEMGPT_PG_PGBOUNCER", v)]).unwrap();
            assert_eq!(c.pooler, mode, "{v}");
        }
        let err = PgConfig::from_lookup(&[URL, ("MEMGPT_PG_PGBOUNCER", "statement")]).unwrap_err();
        assert!(
            matches!(&err, Error::Config { variable, value, .. }
                if variable == "MEMGPT_PG_PGBOUNCER" && value == "statement"),
            "{err}"
        );
    }

    #[test]
    fn replica_urls_are_read_and_their_passwords_never_show() {
        let c = PgConfig::from_lookup(&[URL]).unwrap();
        assert!(c.replica_urls.is_empty());
        assert_eq!(c.replica_max_lag, Duration::from_secs(5));
        let c = PgConfig::from_lookup(&[
            URL,
            (
                "MEMGPT_PG_REPLICA_URLS",
                "postgres://u:r3plica@r1/db, postgresql://r2:5433/db,",
            ),
            ("MEMGPT_PG_REPLICA_MAX_LAG", "30"),
        ])
        .unwrap();
        assert_eq!(
            c.replica_urls
                .iter()
                .map(|u| u.redacted())
                .collect::<Vec<_>>(),
            ["postgres://u:***@r1/db", "postgresql://r2:5433/db"]
        );
        assert_eq!(c.replica_max_lag, Duration::from_secs(30));
        assert!(!format!("{c:?}").contains("r3plica"));
        let err =
            PgConfig::from_lookup(&[URL, ("MEMGPT_PG_REPLICA_URLS", "mysql://u:r3plica@h/db")])
                .unwrap_err();
        assert!(
            matches!(&err, Error::Config { variable, .. } if variable == "MEMGPT_PG_REPLICA_URLS"),
            "{err}"
        );
        assert!(!err.to_string().contains("r3plica"), "{err}");
        // A key=value string cannot be split on commas (libpq's multi-host list, a quoted
        // password with a comma): refused, naming the reason, its password hidden.
        let err = PgConfig::from_lookup(&[
            URL,
            (
                "MEMGPT_PG_REPLICA_URLS",
                "host=r1,r2 password='r3,plica' dbname=d",
            ),
        ])
        .unwrap_err();
        assert!(
            matches!(&err, Error::Config { variable, reason, .. }
                if variable == "MEMGPT_PG_REPLICA_URLS" && reason.contains("commas separate")),
            "{err}"
        );
        assert!(!err.to_string().contains("r3,plica"), "{err}");
    }

    /// `MEMGPT_PG_URL` wins over `MEMGPT_DATABASE_URL`; a libpq key=value string is a
    /// server as a URL is; anything else is refused naming the variable that held it.
    #[test]
    fn the_url_is_read_in_order_and_may_be_a_key_value_string() {
        let c =
            PgConfig::from_lookup(&[("MEMGPT_DATABASE_URL", "postgres://other/db"), URL]).unwrap();
        assert_eq!(c.database_url.redacted(), "postgres://u:***@localhost/db");
        let kv = "host=h user=u password='se cret' dbname=db";
        let c = PgConfig::from_lookup(&[("MEMGPT_DATABASE_URL", kv)]).unwrap();
        assert_eq!(c.database_url.expose(), kv);
        let err =
            PgConfig::from_lookup(&[("MEMGPT_DATABASE_URL", "sqlite:///tmp/x.db")]).unwrap_err();
        assert!(
            matches!(&err, Error::Config { variable, .. } if variable == "MEMGPT_DATABASE_URL"),
            "{err}"
        );
        let err = PgConfig::from_lookup(&[("MEMGPT_SQLITE_PATH", "/tmp/x.db")]).unwrap_err();
        assert!(
            matches!(&err, Error::Config { variable, .. } if variable == "MEMGPT_PG_URL"),
            "{err}"
        );
    }

    #[test]
    fn passwords_never_show() {
        let c = PgConfig::from_lookup(&([URL])).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("u:***@localhost"), "{dbg}");
        let err =
            PgConfig::from_lookup(&([("MEMGPT_PG_URL", "mysql://u:s3cret@h/db")])).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
