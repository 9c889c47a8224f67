//! Configuration from the environment, as every backend reads it.
//!
//! Each backend crate owns its settings (as sqlx's per-database crates own their options)
//! and reads them with the readers of this module: a malformed value is an
//! [`Error::Config`] naming the variable, never a panic and never a silent fallback to the
//! default. [`DatabaseUrl`] and [`redact`] keep passwords out of `Debug`, `Display`,
//! errors and logs. docs/CONFIGURATION.md lists every variable.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

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

#[cfg(test)]
mod redaction {
    use super::*;

    /// A canary password in every form libpq accepts never survives redaction, nor does
    /// its percent-encoded form.
    #[test]
    fn a_canary_password_never_shows_in_any_form() {
        let canary = "S3cret";
        for url in [
            "db://u:S3cret@h/db",
            "db2://u:S3cret@h1:5432,h2:5433/db?sslmode=disable",
            "db://u@h/db?password=S3cret",
            "db://u@h/db?sslpassword=x&password=S3cret",
            "db://u@h/db?PassWord=S3cret&sslmode=disable",
            "db://u@h/db?pass%77ord=S3cret",
            "db://u:S%33cret@h/db",
            "db://u:pa?S3cret@h/db",
            "db://u:pa/S3cret@h/db",
            "db://u:p@S3cret@h/db",
            "db://u:pa#S3cret@h/db",
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
        assert_eq!(redact("db://h:5432/db"), "db://h:5432/db");
        assert_eq!(DatabaseUrl::new("db://u@h/x").scheme(), Some("db"));
        assert_eq!(DatabaseUrl::new("/var/x.db").scheme(), None);
        assert_eq!(redact("db://u:S3cret@h:5432/db"), "db://u:***@h:5432/db");
    }
}
