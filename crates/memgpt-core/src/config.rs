//! Configuration from the environment.
//!
//! Every setting has a default and an environment variable; docs/CONFIGURATION.md lists
//! them all. A malformed value is an [`Error::Config`] naming the variable, never a panic
//! and never a silent fallback to the default.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// A database URL whose password never shows in `Debug`, `Display` or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// The backend a [`DatabaseUrl`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://…` or `postgresql://…`.
    Postgres,
    /// `sqlite://PATH`, `sqlite:PATH` or a plain file path.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The URL itself, password included: for handing to the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }

    /// Which backend the URL's scheme names.
    pub fn backend(&self) -> Backend {
        let u = self.0.as_str();
        if u.starts_with("postgres://") || u.starts_with("postgresql://") {
            Backend::Postgres
        } else if let Some(rest) = u.strip_prefix("sqlite://") {
            Backend::Sqlite(PathBuf::from(rest))
        } else if let Some(rest) = u.strip_prefix("sqlite:") {
            Backend::Sqlite(PathBuf::from(rest))
        } else {
            Backend::Sqlite(PathBuf::from(u))
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Hides every password in `text`: a connection URL, a `key=value` connection string, or a
/// message quoting either. Errs on the side of hiding too much.
///
/// * URL userinfo: everything from the first `:` after `scheme://` up to the **last** `@`
///   of the text becomes `***`. libpq ends the userinfo at the first `@` before the first
///   `/`, other parsers elsewhere; an unencoded `?`, `/`, `#` or `@` inside a password
///   would make a narrower rule print part of it.
/// * Parameters: the value of every parameter whose name (percent-decoded, any case)
///   contains `password` (`password`, `sslpassword`, …), as a URL query parameter
///   (`?`/`&`-separated) or a conninfo pair (`key = value`, the value bare or `'quoted'`
///   with `\'` escapes), becomes `***`.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        if let Some(at) = out[rest..].rfind('@') {
            let at = rest + at;
            if let Some(colon) = out[rest..at].find(':') {
                out.replace_range(rest + colon + 1..at, "***");
            }
        }
    }
    redact_parameters(&out)
}

/// The value spans of password parameters, replaced by `***`.
fn redact_parameters(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0
            || matches!(bytes[i - 1], b'?' | b'&' | b';')
            || bytes[i - 1].is_ascii_whitespace();
        if !at_boundary
            || !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'%' || bytes[i] == b'_')
        {
            i += 1;
            continue;
        }
        let key_start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'%' || bytes[i] == b'_')
        {
            i += 1;
        }
        let key = percent_decode(&text[key_start..i]).to_ascii_lowercase();
        let mut j = i;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' || !key.contains("password") {
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let value_start = j;
        if j < bytes.len() && bytes[j] == b'\'' {
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            while j < bytes.len() && bytes[j] != b'&' && !bytes[j].is_ascii_whitespace() {
                j += 1;
            }
        }
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        copied = j;
        i = j;
    }
    out.push_str(&text[copied..]);
    out
}

/// `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where configuration values come from: the process environment, or (in tests) a map.
pub trait Lookup {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Lookup for Env {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

fn config_err(variable: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        variable: variable.to_owned(),
        value: redact(value),
        reason: reason.into(),
    }
}

/// Reads `name` as an integer in `min..=max`, or `default` when unset.
fn int_var<T>(env: &dyn Lookup, name: &str, default: T, min: T, max: T) -> Result<T>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
{
    let Some(raw) = env.get(name) else {
        return Ok(default);
    };
    let v: T = raw.trim().parse().map_err(|_| {
        config_err(
            name,
            &raw,
            format!("expected a whole number in {min}..={max}"),
        )
    })?;
    if v < min || v > max {
        return Err(config_err(name, &raw, format!("must lie in {min}..={max}")));
    }
    Ok(v)
}

fn secs_var(env: &dyn Lookup, name: &str, default: u64, min: u64) -> Result<Duration> {
    int_var(env, name, default, min, 86_400 * 365).map(Duration::from_secs)
}

fn millis_var(env: &dyn Lookup, name: &str, default: u64, min: u64) -> Result<Duration> {
    int_var(env, name, default, min, 86_400_000).map(Duration::from_millis)
}

fn choice_var<T: Copy>(
    env: &dyn Lookup,
    name: &str,
    default: T,
    choices: &[(&str, T)],
) -> Result<T> {
    let Some(raw) = env.get(name) else {
        return Ok(default);
    };
    let wanted = raw.trim().to_ascii_uppercase();
    choices
        .iter()
        .find(|(k, _)| *k == wanted)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
            config_err(name, &raw, format!("expected one of {}", names.join(", ")))
        })
}

/// Settings of the PostgreSQL backend. Defaults are the seed's: 20 connections kept, 30
/// more under load, 30 s checkout timeout, connections recycled after an hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// The server (`MEMGPT_PG_URL`, else `MEMGPT_DATABASE_URL`).
    pub database_url: DatabaseUrl,
    /// Connections kept open (`MEMGPT_PG_POOL_SIZE`, default 20, at least 1).
    pub pool_size: u32,
    /// Connections opened beyond `pool_size` under load, closed again once idle
    /// (`MEMGPT_PG_MAX_OVERFLOW`, default 30).
    pub max_overflow: u32,
    /// Longest wait for a connection (`MEMGPT_PG_POOL_TIMEOUT`, seconds, default 30).
    pub pool_timeout: Duration,
    /// Maximum lifetime of a connection (`MEMGPT_PG_POOL_RECYCLE`, seconds, default 3600).
    pub pool_recycle: Duration,
    /// How long a connection may sit idle before the pool may close it, which is how
    /// overflow connections go away once load drops (`MEMGPT_PG_IDLE_TIMEOUT`, seconds,
    /// default 60; the pool then reopens connections up to `pool_size`).
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
    /// 1..=2000: pgvector's HNSW limit).
    pub embedding_dim: u32,
    /// Warn (through the `log` crate) when a connection is held longer than this, naming
    /// where it was taken (`MEMGPT_PG_LEAK_THRESHOLD_MS`, default off; 0 turns it off).
    pub leak_threshold: Option<Duration>,
}

impl PgConfig {
    /// The default settings for `database_url`.
    pub fn new(database_url: DatabaseUrl) -> Self {
        PgConfig {
            database_url,
            pool_size: 20,
            max_overflow: 30,
            pool_timeout: Duration::from_secs(30),
            pool_recycle: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(60),
            application_name: "memgpt-store".to_owned(),
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            idle_in_transaction_timeout: Duration::from_secs(60),
            embedding_dim: 1536,
            leak_threshold: None,
        }
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(&Env)
    }

    /// Reads the settings from `env` (the process environment, or a map in tests).
    pub fn from_lookup(env: &dyn Lookup) -> Result<Self> {
        let url = env
            .get("MEMGPT_PG_URL")
            .or_else(|| env.get("MEMGPT_DATABASE_URL"))
            .ok_or_else(|| Error::Config {
                variable: "MEMGPT_PG_URL".to_owned(),
                value: String::new(),
                reason: "not set (nor MEMGPT_DATABASE_URL)".to_owned(),
            })?;
        let database_url = DatabaseUrl::new(url);
        if database_url.backend() != Backend::Postgres {
            return Err(config_err(
                "MEMGPT_PG_URL",
                database_url.expose(),
                "expected a postgres:// or postgresql:// URL",
            ));
        }
        let d = PgConfig::new(database_url);
        let application_name = match env.get("MEMGPT_PG_APPLICATION_NAME") {
            Some(v) if v.is_empty() || v.len() > 63 || !v.is_ascii() => {
                return Err(config_err(
                    "MEMGPT_PG_APPLICATION_NAME",
                    &v,
                    "expected 1 to 63 ASCII characters",
                ))
            }
            Some(v) => v,
            None => d.application_name.clone(),
        };
        Ok(PgConfig {
            pool_size: int_var(env, "MEMGPT_PG_POOL_SIZE", d.pool_size, 1, 10_000)?,
            max_overflow: int_var(env, "MEMGPT_PG_MAX_OVERFLOW", d.max_overflow, 0, 10_000)?,
            pool_timeout: secs_var(env, "MEMGPT_PG_POOL_TIMEOUT", 30, 1)?,
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
            embedding_dim: int_var(env, "MEMGPT_EMBEDDING_DIM", d.embedding_dim, 1, 2000)?,
            leak_threshold: Some(millis_var(env, "MEMGPT_PG_LEAK_THRESHOLD_MS", 0, 0)?)
                .filter(|d| !d.is_zero()),
            database_url: d.database_url,
        })
    }
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
pub struct SqliteConfig {
    /// The database file (`MEMGPT_SQLITE_PATH`; default `$HOME/.memgpt/memgpt-store.db`).
    pub path: PathBuf,
    /// How long a statement waits for a lock (`MEMGPT_SQLITE_BUSY_TIMEOUT_MS`, default
    /// 5000).
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
            Some(p) => match DatabaseUrl::new(p).backend() {
                Backend::Sqlite(path) => path,
                Backend::Postgres => {
                    return Err(config_err(
                        "MEMGPT_SQLITE_PATH",
                        "postgres://…",
                        "expected a file path, got a PostgreSQL URL",
                    ))
                }
            },
            None => Self::default_path(),
        };
        let d = SqliteConfig::new(path);
        Ok(SqliteConfig {
            busy_timeout: millis_var(env, "MEMGPT_SQLITE_BUSY_TIMEOUT_MS", 5000, 0)?,
            journal_mode: choice_var(
                env,
                "MEMGPT_SQLITE_JOURNAL_MODE",
                d.journal_mode,
                &[
                    ("WAL", JournalMode::Wal),
                    ("DELETE", JournalMode::Delete),
                    ("TRUNCATE", JournalMode::Truncate),
                ],
            )?,
            synchronous: choice_var(
                env,
                "MEMGPT_SQLITE_SYNCHRONOUS",
                d.synchronous,
                &[
                    ("OFF", Synchronous::Off),
                    ("NORMAL", Synchronous::Normal),
                    ("FULL", Synchronous::Full),
                    ("EXTRA", Synchronous::Extra),
                ],
            )?,
            mmap_size: int_var(env, "MEMGPT_SQLITE_MMAP_SIZE", d.mmap_size, 0, 1 << 40)?,
            cache_size_kib: int_var(
                env,
                "MEMGPT_SQLITE_CACHE_SIZE_KIB",
                d.cache_size_kib,
                0,
                1 << 30,
            )?,
            temp_store: choice_var(
                env,
                "MEMGPT_SQLITE_TEMP_STORE",
                d.temp_store,
                &[("FILE", TempStore::File), ("MEMORY", TempStore::Memory)],
            )?,
            batch_size: int_var(env, "MEMGPT_SQLITE_BATCH_SIZE", d.batch_size, 1, 2000)?,
            pool_timeout: secs_var(env, "MEMGPT_SQLITE_POOL_TIMEOUT", 30, 1)?,
            read_connections: int_var(
                env,
                "MEMGPT_SQLITE_READ_CONNECTIONS",
                d.read_connections,
                1,
                64,
            )?,
            max_page_count: match env.get("MEMGPT_SQLITE_MAX_PAGE_COUNT") {
                None => None,
                Some(_) => Some(int_var(
                    env,
                    "MEMGPT_SQLITE_MAX_PAGE_COUNT",
                    0,
                    1,
                    u64::from(u32::MAX) * 2,
                )?),
            },
            path: d.path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    const URL: (&str, &str) = ("MEMGPT_PG_URL", "postgres://u:s3cret@localhost/db");

    #[test]
    fn pg_defaults_are_the_seeds() {
        let c = PgConfig::from_lookup(&env(&[URL])).unwrap();
        assert_eq!(c.pool_size, 20);
        assert_eq!(c.max_overflow, 30);
        assert_eq!(c.pool_timeout, Duration::from_secs(30));
        assert_eq!(c.pool_recycle, Duration::from_secs(3600));
        assert_eq!(c.application_name, "memgpt-store");
        assert_eq!(c.embedding_dim, 1536);
    }

    #[test]
    fn malformed_pool_size_names_the_variable() {
        for bad in ["abc", "0", "-1", "", "1.5"] {
            let err =
                PgConfig::from_lookup(&env(&[URL, ("MEMGPT_PG_POOL_SIZE", bad)])).unwrap_err();
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
        let c = PgConfig::from_lookup(&env(&[
            URL,
            ("MEMGPT_PG_POOL_SIZE", "5"),
            ("MEMGPT_PG_MAX_OVERFLOW", "0"),
            ("MEMGPT_PG_POOL_TIMEOUT", "7"),
            ("MEMGPT_PG_POOL_RECYCLE", "60"),
        ]))
        .unwrap();
        assert_eq!(
            (c.pool_size, c.max_overflow, c.pool_timeout, c.pool_recycle),
            (5, 0, Duration::from_secs(7), Duration::from_secs(60))
        );
        for var in [
            "MEMGPT_PG_MAX_OVERFLOW",
            "MEMGPT_PG_POOL_TIMEOUT",
            "MEMGPT_PG_POOL_RECYCLE",
        ] {
            let err = PgConfig::from_lookup(&env(&[URL, (var, "-1")])).unwrap_err();
            assert!(
                matches!(&err, Error::Config { variable, .. } if variable == var),
                "{err}"
            );
        }
    }

    #[test]
    fn passwords_never_show() {
        let c = PgConfig::from_lookup(&env(&[URL])).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("u:***@localhost"), "{dbg}");
        let err =
            PgConfig::from_lookup(&env(&[("MEMGPT_PG_URL", "mysql://u:s3cret@h/db")])).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(
            redact("host=h password=s3cret user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("postgres://u@h/db?sslpassword=x&password=s3cret&sslmode=require"),
            "postgres://u@h/db?sslpassword=***&password=***&sslmode=require"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn sqlite_defaults_and_overrides() {
        let c = SqliteConfig::from_lookup(&env(&[("MEMGPT_SQLITE_PATH", "/tmp/x.db")])).unwrap();
        assert_eq!(c.path, PathBuf::from("/tmp/x.db"));
        assert_eq!(c.journal_mode, JournalMode::Wal);
        assert_eq!(c.synchronous, Synchronous::Normal);
        assert_eq!(c.mmap_size, 268_435_456);
        assert_eq!(c.cache_size_kib, 10_240);
        assert_eq!(c.temp_store, TempStore::Memory);
        assert_eq!(c.batch_size, 500);
        let c = SqliteConfig::from_lookup(&env(&[
            ("MEMGPT_SQLITE_PATH", "sqlite:///tmp/y.db"),
            ("MEMGPT_SQLITE_SYNCHRONOUS", "full"),
            ("MEMGPT_SQLITE_JOURNAL_MODE", "delete"),
        ]))
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/tmp/y.db"));
        assert_eq!(c.synchronous, Synchronous::Full);
        assert_eq!(c.journal_mode, JournalMode::Delete);
        let err = SqliteConfig::from_lookup(&env(&[("MEMGPT_SQLITE_SYNCHRONOUS", "sometimes")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("MEMGPT_SQLITE_SYNCHRONOUS"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod redaction {
    use super::*;

    /// A canary password in every form libpq accepts never survives redaction, nor does
    /// its percent-encoded form.
    #[test]
    fn a_canary_password_never_shows_in_any_form() {
        let canary = "S3cret";
        for url in [
            "postgres://u:S3cret@h/db",
            "postgresql://u:S3cret@h1:5432,h2:5433/db?sslmode=disable",
            "postgres://u@h/db?password=S3cret",
            "postgres://u@h/db?sslpassword=x&password=S3cret",
            "postgres://u@h/db?PassWord=S3cret&sslmode=disable",
            "postgres://u@h/db?pass%77ord=S3cret",
            "postgres://u:S%33cret@h/db",
            "postgres://u:pa?S3cret@h/db",
            "postgres://u:pa/S3cret@h/db",
            "postgres://u:p@S3cret@h/db",
            "postgres://u:pa#S3cret@h/db",
            "host=h user=u password=S3cret dbname=db",
            "host=h password = S3cret",
            "host=h password='S3cret with spaces\\' and quotes' dbname=db",
            "cannot connect to postgres://u:S3cret@h/db: timeout",
        ] {
            let shown = [
                redact(url),
                format!("{:?}", DatabaseUrl::new(url)),
                DatabaseUrl::new(url).to_string(),
            ];
            for s in shown {
                assert!(
                    !s.contains(canary) && !s.contains("S%33cret") && !s.contains("spaces"),
                    "{url} shown as {s}"
                );
            }
        }
        assert_eq!(redact("postgres://h:5432/db"), "postgres://h:5432/db");
        assert_eq!(
            redact("postgres://u:S3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
    }
}
