//! The connection string handed to libpq: the user's connection string, as libpq itself
//! parses it, with the library's per-connection settings merged in.
//!
//! The user's string is read by libpq's own parser (`PQconninfoParse`), whatever its form
//! (a `postgres://` URL with percent-encoding, several hosts, query parameters; or a
//! `key=value` string with quoted values), so it is understood exactly as libpq will
//! understand it; the result is written back as a `key=value` string. Settings the user
//! gives win; the server options (`options=`) are merged, never replaced.

#![allow(unsafe_code)]

use std::ffi::{CStr, CString};

use crate::PgConfig;
use memgpt_core::Error;

/// The parameters of a connection string, in libpq's order, with their values.
#[derive(Clone)]
pub(crate) struct ConnInfo {
    params: Vec<(String, String)>,
    /// The secrets of the string as the user wrote it
    /// ([`memgpt_core::config::secrets`]): what libpq's messages may quote of it, where
    /// libpq read it otherwise than it was meant (`postgres://u:p@ss@h/db`).
    written_secrets: Vec<String>,
}

/// Two connection strings are the same when libpq reads the same parameters from them.
impl PartialEq for ConnInfo {
    fn eq(&self, other: &Self) -> bool {
        self.params == other.params
    }
}

impl Eq for ConnInfo {}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.params.iter().map(|(k, v)| {
                if is_secret(k) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            }))
            .finish()
    }
}

/// Whether a libpq parameter holds a secret.
fn is_secret(key: &str) -> bool {
    key.contains("password")
}

impl ConnInfo {
    /// Parses `conninfo` with libpq.
    ///
    /// # Errors
    /// [`Error::Config`] with the string redacted and what is wrong with it in words of
    /// ours ([`memgpt_core::config::connection_string_problem`]): never libpq's message,
    /// which quotes the raw piece it could not parse (a password with a bare `%`).
    pub(crate) fn parse(conninfo: &str) -> Result<Self, Error> {
        let bad = |reason: String| Error::Config {
            variable: "MEMGPT_PG_URL".to_owned(),
            value: memgpt_core::config::redact(conninfo),
            reason,
        };
        let c = CString::new(conninfo).map_err(|_| bad("contains a NUL byte".to_owned()))?;
        let mut errmsg: *mut std::os::raw::c_char = std::ptr::null_mut();
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call; `errmsg` is a
        // valid out-pointer. libpq returns either NULL (then `errmsg` may point at a message
        // we must free with PQfreemem) or an array terminated by an entry whose `keyword`
        // is NULL, which we must free with PQconninfoFree.
        let options = unsafe { pq_sys::PQconninfoParse(c.as_ptr(), &mut errmsg) };
        if options.is_null() {
            let problem = if errmsg.is_null() {
                "libpq ran out of memory".to_owned()
            } else {
                // SAFETY: libpq set `errmsg` to a NUL-terminated string it allocated.
                let m = unsafe { CStr::from_ptr(errmsg) }
                    .to_string_lossy()
                    .into_owned();
                // SAFETY: freeing libpq's allocation once, with libpq's allocator.
                unsafe { pq_sys::PQfreemem(errmsg.cast()) };
                memgpt_core::config::connection_string_problem(&m)
                    .unwrap_or("a malformed URL or key=value string")
                    .to_owned()
            };
            return Err(bad(format!(
                "libpq cannot parse the connection string: {problem}"
            )));
        }
        let mut params = Vec::new();
        let mut i = 0usize;
        loop {
            // SAFETY: the array is terminated by an entry with a NULL keyword, and we stop
            // there; every entry before it is initialised by libpq.
            let opt = unsafe { &*options.add(i) };
            if opt.keyword.is_null() {
                break;
            }
            if !opt.val.is_null() {
                // SAFETY: non-NULL keyword and val are NUL-terminated strings owned by
                // the array, alive until PQconninfoFree below.
                let (k, v) = unsafe { (CStr::from_ptr(opt.keyword), CStr::from_ptr(opt.val)) };
                params.push((
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                ));
            }
            i += 1;
        }
        // SAFETY: `options` came from PQconninfoParse and is freed exactly once.
        unsafe { pq_sys::PQconninfoFree(options) };
        Ok(ConnInfo {
            params,
            written_secrets: memgpt_core::config::secrets(conninfo),
        })
    }

    /// The value of `key`, when the string sets it.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` unless the string sets it already.
    fn default(&mut self, key: &str, value: String) {
        if self.get(key).is_none() {
            self.params.push((key.to_owned(), value));
        }
    }

    /// The values of the secret parameters (`password`, `sslpassword`) as libpq read
    /// them, and the secrets of the string as it was written, for scrubbing messages.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .params
            .iter()
            .filter(|(k, v)| is_secret(k) && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect();
        for s in &self.written_secrets {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }

    /// The `key=value` form, values quoted as libpq reads them.
    pub(crate) fn to_conninfo(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.params {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(k);
            out.push_str("='");
            for ch in v.chars() {
                if ch == '\'' || ch == '\\' {
                    out.push('\\');
                }
                out.push(ch);
            }
            out.push('\'');
        }
        out
    }
}

/// The connection string of the pool: the user's parameters, plus `application_name`,
/// `connect_timeout`, TCP keepalives and `tcp_user_timeout` (so a dead network cannot
/// hold a call for minutes) where the user gives none, and the server options `jit=off`,
/// `statement_timeout` and `idle_in_transaction_session_timeout` placed before the user's
/// own `options`, so that a setting the user gives there wins and the others still apply.
/// Behind PgBouncer in transaction mode ([`Pooler::Transaction`](crate::Pooler)) none of
/// ours: PgBouncer refuses a startup `options`, and a server connection's settings would
/// not follow the client anyway (the store applies them per transaction instead).
///
/// # Errors
/// [`Error::Config`] when libpq cannot parse the user's string.
pub(crate) fn connection_info(config: &PgConfig) -> Result<ConnInfo, Error> {
    connection_info_for(config, &config.database_url)
}

/// [`connection_info`] of another server of the same settings (a replica).
///
/// # Errors
/// [`Error::Config`] when libpq cannot parse `url`.
pub(crate) fn connection_info_for(
    config: &PgConfig,
    url: &memgpt_core::DatabaseUrl,
) -> Result<ConnInfo, Error> {
    let mut info = ConnInfo::parse(url.expose())?;
    info.default("application_name", config.application_name.clone());
    info.default(
        "connect_timeout",
        config.connect_timeout.as_secs().max(1).to_string(),
    );
    info.default("keepalives", "1".to_owned());
    info.default("keepalives_idle", "30".to_owned());
    info.default("keepalives_interval", "10".to_owned());
    info.default("keepalives_count", "3".to_owned());
    info.default("tcp_user_timeout", "60000".to_owned());
    if config.pooler == crate::Pooler::Transaction {
        return Ok(info);
    }
    let ours = format!(
        "-c jit=off -c statement_timeout={} -c idle_in_transaction_session_timeout={}",
        config.statement_timeout.as_millis(),
        config.idle_in_transaction_timeout.as_millis()
    );
    let options = match info.get("options") {
        Some(theirs) if !theirs.trim().is_empty() => format!("{ours} {theirs}"),
        _ => ours,
    };
    info.params.retain(|(k, _)| k != "options");
    info.params.push(("options".to_owned(), options));
    Ok(info)
}

/// Hides the connection's secrets in `message`: every occurrence (as given, and
/// percent-encoded), every quoted token that shares a part with one, then anything URL- or
/// conninfo-shaped ([`memgpt_core::config::scrub`]).
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    memgpt_core::config::scrub(message, secrets)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use memgpt_core::DatabaseUrl;

    fn info(url: &str) -> ConnInfo {
        connection_info(&PgConfig::new(DatabaseUrl::new(url))).unwrap()
    }

    #[test]
    fn the_users_settings_win_and_options_are_merged() {
        let i = info("postgres://u:p@h/db?application_name=mine&options=-c%20search_path%3Dx");
        assert_eq!(i.get("application_name"), Some("mine"));
        assert_eq!(i.get("connect_timeout"), Some("10"));
        assert_eq!(
            i.get("options"),
            Some(
                "-c jit=off -c statement_timeout=60000 \
                 -c idle_in_transaction_session_timeout=60000 -c search_path=x"
            )
        );
        assert_eq!(i.get("password"), Some("p"));
        let c = info("postgres://h/db");
        assert_eq!(c.get("application_name"), Some("memgpt-store"));
    }

    #[test]
    fn pgbouncer_transaction_mode_sends_no_options_of_ours() {
        let mut config = PgConfig::new(DatabaseUrl::new("postgres://u@h:6432/db"));
        config.pooler = crate::Pooler::Transaction;
        let i = connection_info(&config).unwrap();
        assert_eq!(i.get("options"), None);
        assert_eq!(i.get("application_name"), Some("memgpt-store"));
        assert_eq!(i.get("connect_timeout"), Some("10"));
    }

    #[test]
    fn libpq_reads_the_password_as_it_will_use_it() {
        for (url, pw) in [
            ("postgres://u:pa%3Fss@h/db", "pa?ss"),
            ("postgres://u:pa?ss@h/db", "pa?ss"),
            ("host=h user=u password='it\\'s secret'", "it's secret"),
            ("postgresql://u@h1:1,h2:2/db?password=S3cret", "S3cret"),
        ] {
            let i = ConnInfo::parse(url).unwrap();
            assert_eq!(i.get("password"), Some(pw), "{url}");
            // The written form parses back to the same parameters.
            assert_eq!(ConnInfo::parse(&i.to_conninfo()).unwrap(), i, "{url}");
            assert!(!format!("{i:?}").contains(pw), "{i:?}");
        }
    }

    /// libpq quotes the raw token it cannot parse: a password with a bare `%`, say. No part
    /// of the string reaches the error but its redacted form and a fixed reason.
    #[test]
    fn an_unparseable_string_is_a_config_error_without_the_password() {
        for (conninfo, reason) in [
            (
                "postgres://u:S3cret@h/db?nosuchparam=1",
                "an unknown parameter",
            ),
            ("postgres://u:50%offS3cret@h/db", "percent-encoded"),
            ("postgres://u:S3cret%zz@h/db", "percent-encoded"),
            ("postgres://u:S3cret%4@h/db", "percent-encoded"),
            ("postgres://u@h/db?password=S3cret%4", "percent-encoded"),
            (
                "postgres://u@h/db?password=S3cret%zz&sslmode=disable",
                "percent-encoded",
            ),
            ("postgres://u:S3cret@h/db?password=%00", "%00"),
            ("postgres://u:S3cret@[::1/db", "IPv6"),
            ("postgres://u:S3cret@h/db?password", "query parameter"),
            ("host=h password=se S3cret dbname=db", "without `=`"),
            (
                "host=h password=se S3cret=1 dbname=db",
                "an unknown parameter",
            ),
            ("host=h password='se S3cret", "closing quote"),
        ] {
            let e = ConnInfo::parse(conninfo).unwrap_err();
            let memgpt_core::Error::Config {
                variable,
                value,
                reason: why,
            } = &e
            else {
                panic!("{conninfo}: {e:?}");
            };
            assert_eq!(variable, "MEMGPT_PG_URL");
            assert_eq!(value, &memgpt_core::config::redact(conninfo));
            assert!(why.contains(reason), "{conninfo}: {why}");
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("S3cret"), "{conninfo}: {shown}");
            }
        }
    }
}
