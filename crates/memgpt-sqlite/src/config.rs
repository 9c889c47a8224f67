//! The SQLite backend's settings, read from the environment.

use std::path::PathBuf;
use std::time::Duration;

use memgpt_core::config::{choice_var, config_err, int_var, millis_var, secs_var, Env, Lookup};
use memgpt_core::Result;

/// The file a `MEMGPT_SQLITE_PATH` value names: `sqlite://PATH`, `sqlite:PATH` or a plain
/// path; a URL of another scheme is refused.
fn path_of(value: &str) -> Result<PathBuf> {
    if let Some(rest) = value.strip_prefix("sqlite://") {
        return Ok(PathBuf::from(rest));
    }
    if let Some(rest) = value.strip_prefix("sqlite:") {
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = value.split_once("://") {
        return Err(config_err(
            "MEMGPT_SQLITE_PATH",
            value,
            format!("expected a file path, got a {scheme}:// URL"),
        ));
    }
    Ok(PathBuf::from(value))
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `OFF`: no fsync at all.
    Off,
    /// `NORMAL`: with WAL, a crash of the application loses nothing committed.
    Normal,
    /// `FULL`: fsync at every commit.
    Full,
    /// `EXTRA`: FULL plus a sync of the directory.
    Extra,
}

impl Synchronous {
    /// The PRAGMA value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

/// SQLite's `journal_mode` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode {
    /// Write-ahead log: readers do not block the writer.
    Wal,
    /// Rollback journal, deleted after each transaction (SQLite's default).
    Delete,
    /// Rollback journal, truncated after each transaction.
    Truncate,
}

impl JournalMode {
    /// The PRAGMA value.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalMode::Wal => "WAL",
            JournalMode::Delete => "DELETE",
            JournalMode::Truncate => "TRUNCATE",
        }
    }
}

/// SQLite's `temp_store` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempStore {
    /// Temporary tables and indexes in a file.
    File,
    /// Temporary tables and indexes in memory.
    Memory,
}

impl TempStore {
    /// The PRAGMA value.
    pub fn as_str(self) -> &'static str {
        match self {
            TempStore::File => "FILE",
            TempStore::Memory => "MEMORY",
        }
    }
}

/// Settings of the embedded SQLite backend. Defaults are the seed's: WAL,
/// `synchronous=NORMAL`, 256 MB mmap, 10 MB cache, `temp_store=MEMORY`, 500-record chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// The database file (`MEMGPT_SQLITE_PATH`; default `$HOME/.memgpt/memgpt-store.db`).
    pub path: PathBuf,
    /// How long a write waits for SQLite's write lock while other processes hold it (in
    /// turn with their writers: see docs/TROUBLESHOOTING.md), and a statement for a lock
    /// (`MEMGPT_SQLITE_BUSY_TIMEOUT_MS`, default 5000).
    pub busy_timeout: Duration,
    /// `journal_mode` (`MEMGPT_SQLITE_JOURNAL_MODE`: WAL, DELETE or TRUNCATE; default WAL).
    pub journal_mode: JournalMode,
    /// `synchronous` (`MEMGPT_SQLITE_SYNCHRONOUS`: OFF, NORMAL, FULL or EXTRA; default
    /// NORMAL).
    pub synchronous: Synchronous,
    /// `mmap_size` in bytes (`MEMGPT_SQLITE_MMAP_SIZE`, default 268435456; 0 turns it off).
    pub mmap_size: u64,
    /// Page cache in KiB (`MEMGPT_SQLITE_CACHE_SIZE_KIB`, default 10240).
    pub cache_size_kib: u64,
    /// `temp_store` (`MEMGPT_SQLITE_TEMP_STORE`: FILE or MEMORY; default MEMORY).
    pub temp_store: TempStore,
    /// Records per chunk of `insert_many` (`MEMGPT_SQLITE_BATCH_SIZE`, default 500,
    /// 1..=2000).
    pub batch_size: usize,
    /// Longest wait for the writer connection (`MEMGPT_SQLITE_POOL_TIMEOUT`, seconds,
    /// default 30).
    pub pool_timeout: Duration,
    /// Read-only connections beside the one writer (`MEMGPT_SQLITE_READ_CONNECTIONS`,
    /// default 4, 1..=64): reads outside a unit of work use them, so they never wait for
    /// a write in progress (WAL lets readers and the writer work at once).
    pub read_connections: u32,
    /// A cap on the database file, in pages (`MEMGPT_SQLITE_MAX_PAGE_COUNT`; default none):
    /// a write that would grow the file past it fails with "database or disk is full".
    pub max_page_count: Option<u64>,
    /// The one embedding length accepted, for embeddings and query vectors
    /// (`MEMGPT_EMBEDDING_DIM` with `MEMGPT_EMBEDDING_DIM_STRICT=1`; default none: any
    /// length up to 4096).
    pub embedding_dim: Option<u32>,
}

impl SqliteConfig {
    /// The default settings for the database file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SqliteConfig {
            path: path.into(),
            busy_timeout: Duration::from_millis(5000),
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            mmap_size: 256 * 1024 * 1024,
            cache_size_kib: 10 * 1024,
            temp_store: TempStore::Memory,
            batch_size: 500,
            pool_timeout: Duration::from_secs(30),
            read_connections: 4,
            max_page_count: None,
            embedding_dim: None,
        }
    }

    /// The default database file: `$HOME/.memgpt/memgpt-store.db` (beside MemGPT's own
    /// `sqlite.db`), or `memgpt-store.db` in the working directory without a home.
    pub fn default_path() -> PathBuf {
        match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".memgpt").join("memgpt-store.db"),
            None => PathBuf::from("memgpt-store.db"),
        }
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&Env)
    }

    /// Reads the settings from `env` (the process environment, or a map in tests).
    pub fn from_lookup(env: &dyn Lookup) -> Result<Self> {
        let path = match env.get("MEMGPT_SQLITE_PATH") {
            Some(p) if p.trim().is_empty() => {
                return Err(config_err("MEMGPT_SQLITE_PATH", &p, "is empty"))
            }
            Some(p) => path_of(&p)?,
            None => Self::default_path(),
        };
        let d = SqliteConfig::new(path);
        Ok(SqliteConfig {
            busy_timeout: millis_var(env, "MEMGPT_SQLITE_BUSY_TIMEOUT_MS", 5000, 0)?,
            journal_mode: choice_var(
                env,
                "MEMGPT_SQLITE_JOURNAL_MODE",
                d.journal_mode,
                JOURNAL_MODES,
            )?,
            synchronous: choice_var(env, "MEMGPT_SQLITE_SYNCHRONOUS", d.synchronous, SYNCHRONOUS)?,
            mmap_size: int_var(env, "MEMGPT_SQLITE_MMAP_SIZE", d.mmap_size, 0, 1 << 40)?,
            cache_size_kib: int_var(
                env,
                "MEMGPT_SQLITE_CACHE_SIZE_KIB",
                d.cache_size_kib,
                0,
                1 << 30,
            )?,
            temp_store: choice_var(env, "MEMGPT_SQLITE_TEMP_STORE", d.temp_store, TEMP_STORES)?,
            batch_size: int_var(env, "MEMGPT_SQLITE_BATCH_SIZE", d.batch_size, 1, 2000)?,
            pool_timeout: secs_var(env, "MEMGPT_SQLITE_POOL_TIMEOUT", 30, 1)?,
            read_connections: int_var(
                env,
                "MEMGPT_SQLITE_READ_CONNECTIONS",
                d.read_connections,
                1,
                64,
            )?,
            max_page_count: env
                .get("MEMGPT_SQLITE_MAX_PAGE_COUNT")
                .map(|_| int_var(env, "MEMGPT_SQLITE_MAX_PAGE_COUNT", 0, 1, MAX_PAGES))
                .transpose()?,
            embedding_dim: match int_var(env, "MEMGPT_EMBEDDING_DIM_STRICT", 0u8, 0, 1)? {
                1 => Some(int_var(env, "MEMGPT_EMBEDDING_DIM", 1536, 1, 4096)?),
                _ => None,
            },
            path: d.path,
        })
    }
}

/// `MEMGPT_SQLITE_JOURNAL_MODE`'s values.
const JOURNAL_MODES: &[(&str, JournalMode)] = &[
    ("WAL", JournalMode::Wal),
    ("DELETE", JournalMode::Delete),
    ("TRUNCATE", JournalMode::Truncate),
];

/// `MEMGPT_SQLITE_SYNCHRONOUS`'s values.
const SYNCHRONOUS: &[(&str, Synchronous)] = &[
    ("OFF", Synchronous::Off),
    ("NORMAL", Synchronous::Normal),
    ("FULL", Synchronous::Full),
    ("EXTRA", Synchronous::Extra),
];

/// `MEMGPT_SQLITE_TEMP_STORE`'s values.
const TEMP_STORES: &[(&str, TempStore)] =
    &[("FILE", TempStore::File), ("MEMORY", TempStore::Memory)];

/// The largest `MEMGPT_SQLITE_MAX_PAGE_COUNT` (SQLite's own limit).
const MAX_PAGES: u64 = u32::MAX as u64 * 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_defaults_and_overrides() {
        let c = SqliteConfig::from_lookup(&([("MEMGPT_SQLITE_PATH", "/tmp/x.db")])).unwrap();
        assert_eq!(c.path, PathBuf::from("/tmp/x.db"));
        assert_eq!(c.journal_mode, JournalMode::Wal);
        assert_eq!(c.synchronous, Synchronous::Normal);
        assert_eq!(c.mmap_size, 268_435_456);
        assert_eq!(c.cache_size_kib, 10_240);
        assert_eq!(c.temp_store, TempStore::Memory);
        assert_eq!(c.batch_size, 500);
        assert_eq!(c.embedding_dim, None);
        let c = SqliteConfig::from_lookup(&[
            ("MEMGPT_SQLITE_PATH", "/tmp/z.db"),
            ("MEMGPT_EMBEDDING_DIM_STRICT", "1"),
            ("MEMGPT_EMBEDDING_DIM", "768"),
        ])
        .unwrap();
        assert_eq!(c.embedding_dim, Some(768));
        let c = SqliteConfig::from_lookup(
            &([
                ("MEMGPT_SQLITE_PATH", "sqlite:///tmp/y.db"),
                ("MEMGPT_SQLITE_SYNCHRONOUS", "full"),
                ("MEMGPT_SQLITE_JOURNAL_MODE", "delete"),
            ]),
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/tmp/y.db"));
        assert_eq!(c.synchronous, Synchronous::Full);
        assert_eq!(c.journal_mode, JournalMode::Delete);
        let err =
            SqliteConfig::from_lookup(&([("MEMGPT_SQLITE_SYNCHRONOUS", "sometimes")])).unwrap_err();
        assert!(
            err.to_string().contains("MEMGPT_SQLITE_SYNCHRONOUS"),
            "{err}"
        );
        let err =
            SqliteConfig::from_lookup(&([("MEMGPT_SQLITE_PATH", "postgres://u:s3cret@h/db")]))
                .unwrap_err();
        assert!(err.to_string().contains("postgres:// URL"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
}
