//! Where a workload runs: a fresh SQLite file or a fresh PostgreSQL database, migrated as a
//! user would (`migrate up --embedding-dim 1536`), with the library's default settings.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use memgpt_core::DatabaseUrl;
use memgpt_pg::{PgConfig, PgStore};
use memgpt_sqlite::{SqliteConfig, SqliteStore};

/// The two backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// The embedded default.
    Sqlite,
    /// PostgreSQL (with pgvector).
    Postgres,
}

impl Database {
    /// `sqlite` or `postgres`, as the JSON names it.
    pub fn name(self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres => "postgres",
        }
    }
}

/// A store of either backend.
pub enum Store {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Pg(PgStore),
}

/// Runs `$body` with `$c` bound to a connector of `$store` (either backend).
#[macro_export]
macro_rules! with_connector {
    ($store:expr, $rec:ty, $table:expr, $scope:expr, |$c:ident| $body:expr) => {
        match $store {
            $crate::target::Store::Sqlite(s) => {
                let $c = s.connector::<$rec>($table, $scope)?;
                $body
            }
            $crate::target::Store::Pg(s) => {
                let $c = s.connector::<$rec>($table, $scope)?;
                $body
            }
        }
    };
}

/// A fresh database and the store on it.
pub struct Fresh {
    /// The store, default settings.
    pub store: Store,
    /// The SQLite file, or the PostgreSQL database's URL.
    pub location: String,
    _dir: Option<tempfile::TempDir>,
}

impl Fresh {
    /// What autovacuum (or the store's `optimize`) does before anyone reads: on PostgreSQL
    /// `VACUUM ANALYZE table` (statistics for the planner, the visibility map), on SQLite
    /// `optimize`.
    pub fn settle(&self, table: &str) -> Result<()> {
        match &self.store {
            Store::Pg(_) => PgConnection::establish(&self.location)?
                .batch_execute(&format!("VACUUM ANALYZE {table}"))?,
            Store::Sqlite(s) => s.optimize()?,
        }
        Ok(())
    }
}

/// What the run was given.
#[derive(Debug, Clone)]
pub struct Env {
    /// A PostgreSQL URL whose user may create databases; `None`: SQLite only.
    pub pg_admin: Option<String>,
    /// Reduced sizes.
    pub quick: bool,
    /// PgBouncer in transaction mode in front of `pg_admin`'s server (S1).
    pub pgbouncer: Option<String>,
    /// A streaming replica of `pg_admin`'s server (S1).
    pub replica: Option<String>,
}

/// `url` with its database replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, rest) = url.rsplit_once('/').unwrap_or((url, ""));
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{db}{query}")
}

/// Drops and creates database `name`; returns its URL.
pub fn fresh_database(admin: &str, name: &str) -> Result<String> {
    let mut conn = PgConnection::establish(admin).context("connecting to the bench server")?;
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
    conn.batch_execute(&format!("CREATE DATABASE {name}"))?;
    Ok(with_db(admin, name))
}

/// Migrates the PostgreSQL database at `url` as `migrate up --embedding-dim 1536` does
/// (every index, HNSW included).
pub fn migrate_pg(url: &str) -> Result<()> {
    migrate_pg_dim(url, 1536)
}

/// Migrates as `migrate up --embedding-dim dim`.
pub fn migrate_pg_dim(url: &str, dim: u32) -> Result<()> {
    let options = memgpt_migrate::Options::default().with_embedding_dim(Some(dim));
    memgpt_migrate::postgres::run_url_with(
        &DatabaseUrl::new(url),
        memgpt_migrate::Command::Up,
        &options,
        &|_| {},
    )?;
    Ok(())
}

/// The PostgreSQL store on `url` (already migrated), default settings.
pub fn pg_store(url: &str) -> Result<PgStore> {
    pg_store_dim(url, 1536)
}

/// The PostgreSQL store on `url` for embeddings of `dim`, default settings.
pub fn pg_store_dim(url: &str, dim: u32) -> Result<PgStore> {
    let mut config = PgConfig::new(DatabaseUrl::new(url));
    config.embedding_dim = dim;
    Ok(PgStore::open(config)?)
}

/// The SQLite store on the file at `path`, default settings.
pub fn sqlite_store(path: &Path) -> Result<SqliteStore> {
    Ok(SqliteStore::open(SqliteConfig::new(path))?)
}

impl Env {
    /// A fresh, migrated database of `backend` named after `name`.
    pub fn fresh(&self, backend: Database, name: &str) -> Result<Fresh> {
        self.fresh_dim(backend, name, 1536)
    }

    /// A fresh database of `backend` migrated for embeddings of `dim` (PostgreSQL's HNSW
    /// index and compact column; SQLite stores any length).
    pub fn fresh_dim(&self, backend: Database, name: &str, dim: u32) -> Result<Fresh> {
        match backend {
            Database::Sqlite => {
                let dir = tempfile::tempdir()?;
                let path: PathBuf = dir.path().join(format!("{name}.db"));
                Ok(Fresh {
                    store: Store::Sqlite(sqlite_store(&path)?),
                    location: path.display().to_string(),
                    _dir: Some(dir),
                })
            }
            Database::Postgres => {
                let admin = self
                    .pg_admin
                    .as_deref()
                    .context("no PostgreSQL server for this run")?;
                let url = fresh_database(admin, &format!("memgpt_bench_{name}"))?;
                migrate_pg_dim(&url, dim)?;
                Ok(Fresh {
                    store: Store::Pg(pg_store_dim(&url, dim)?),
                    location: url,
                    _dir: None,
                })
            }
        }
    }

    /// The backends of this run.
    pub fn backends(&self) -> Vec<Database> {
        let mut b = vec![Database::Sqlite];
        if self.pg_admin.is_some() {
            b.push(Database::Postgres);
        }
        b
    }

    /// `full` in a full run, `quick` with `--quick`.
    pub fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}
