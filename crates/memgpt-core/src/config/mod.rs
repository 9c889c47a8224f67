//! Configuration from the environment, as every backend reads it.
//!
//! Each backend crate owns its settings (as sqlx's per-database crates own their options)
//! and reads them with the readers of this module: a malformed value is an
//! [`Error::Config`] naming the variable, never a panic and never a silent fallback to the
//! default. [`DatabaseUrl`] and [`redact()`] keep passwords out of `Debug`, `Display`,
//! errors and logs. docs/CONFIGURATION.md lists every variable.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

mod redact;
use redact::starts_parameter;
pub use redact::{connection_string_problem, redact, scrub, secrets};

/// A database URL whose password never shows in `Debug`, `Display` or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

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

    /// Whether this names a PostgreSQL server: a `postgres://` or `postgresql://` URL, or
    /// a libpq `key=value` connection string (`host=db user=me password='a b'`: no scheme,
    /// and its first word is `name=`, the name in lowercase letters and `_` as libpq's
    /// are). Anything else is an SQLite file (`sqlite://PATH`, `sqlite:PATH` or a path).
    pub fn is_postgres(&self) -> bool {
        match self.scheme() {
            Some(scheme) => matches!(scheme, "postgres" | "postgresql"),
            None => starts_parameter(self.0.trim_start().as_bytes()),
        }
    }

    /// The URL's scheme (`postgres` in `postgres://…`), if it has one.
    pub fn scheme(&self) -> Option<&str> {
        self.0.split_once("://").map(|(s, _)| s).filter(|s| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
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

/// The environment variables that name the database, in the order every reader tries
/// them: `MEMGPT_PG_URL` (the PostgreSQL backend's own), then `MEMGPT_DATABASE_URL`.
/// [`database_url`] reads them; `memgpt_pg::PgConfig::from_env` and the `memgpt-store`
/// command both go through it.
pub const DATABASE_URL_VARIABLES: [&str; 2] = ["MEMGPT_PG_URL", "MEMGPT_DATABASE_URL"];

/// The database the environment names: the value of the first of
/// [`DATABASE_URL_VARIABLES`] that is set, with that variable's name; `None` when none is.
pub fn database_url(env: &dyn Lookup) -> Option<(&'static str, DatabaseUrl)> {
    DATABASE_URL_VARIABLES
        .iter()
        .find_map(|name| env.get(name).map(|v| (*name, DatabaseUrl::new(v))))
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

/// Fixed `(name, value)` pairs, as tests give them; the last pair of a name wins.
impl<const N: usize> Lookup for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// The [`Error::Config`] of `variable` set to `value` (redacted), rejected for `reason`.
pub fn config_err(variable: &str, value: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        variable: variable.to_owned(),
        value: redact(value),
        reason: reason.into(),
    }
}

/// Reads `name` as an integer in `min..=max`, or `default` when unset.
pub fn int_var<T>(env: &dyn Lookup, name: &str, default: T, min: T, max: T) -> Result<T>
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

/// Reads `name` as whole seconds (at least `min`), or `default` seconds when unset.
pub fn secs_var(env: &dyn Lookup, name: &str, default: u64, min: u64) -> Result<Duration> {
    int_var(env, name, default, min, 86_400 * 365).map(Duration::from_secs)
}

/// Reads `name` as whole milliseconds (at least `min`), or `default` when unset.
pub fn millis_var(env: &dyn Lookup, name: &str, default: u64, min: u64) -> Result<Duration> {
    int_var(env, name, default, min, 86_400_000).map(Duration::from_millis)
}

/// Reads `name` as one of `choices` (case-insensitive), or `default` when unset.
pub fn choice_var<T: Copy>(
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
