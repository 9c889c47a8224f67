//! Redaction: passwords out of connection strings and of messages that quote them.

/// Hides every password in `text`: a connection URL, a `key=value` connection string, or a
/// message quoting either. Errs on the side of hiding too much.
///
/// * URL userinfo: everything from the first `:` after `scheme://` up to the **last** `@`
///   of the text becomes `***`. libpq ends the userinfo at the first `@` before the first
///   `/`, other parsers elsewhere; an unencoded `?`, `/`, `#` or `@` inside a password
///   would make a narrower rule print part of it.
/// * Parameters: the value of every parameter whose name (percent-decoded, any case)
///   contains `password` (`password`, `sslpassword`, …) becomes `***`:
///   * as a URL query parameter (after `?` or `&`), up to the next `&` or `#` (a space does
///     not end it: libpq keeps it in the value);
///   * as a conninfo pair (`key = value`), a `'quoted'` value (with `\'` escapes) up to
///     its closing quote; a bare value up to the next word that starts a parameter
///     (`name=`, the name in lowercase letters and `_`, as libpq's are): the words of a
///     password with unquoted spaces, which libpq cannot parse, are hidden too.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for span in secret_spans(text) {
        out.push_str(&text[copied..span.start]);
        out.push_str("***");
        copied = span.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The secrets of a connection string (or of a message quoting one), as [`redact`] finds
/// them: each hidden span as written, unquoted (a conninfo `'value'` without its quotes
/// and escapes) and percent-decoded. For [`scrub`]bing messages of code that saw the string
/// (libpq quotes raw tokens of it: `invalid percent-encoded token: "50%off"`).
pub fn secrets(connection: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    };
    for span in secret_spans(connection) {
        let raw = &connection[span];
        add(raw.to_owned());
        if let Some(quoted) = raw.strip_prefix('\'') {
            let inner = quoted.strip_suffix('\'').unwrap_or(quoted);
            let mut unescaped = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => unescaped.extend(chars.next()),
                    c => unescaped.push(c),
                }
            }
            add(unescaped);
        }
        add(percent_decode(raw));
    }
    out
}

/// Hides `secrets` in `message` (a driver's message about a connection): every occurrence
/// of a secret, as given and percent-encoded; every double-quoted token that shares a part
/// with one (libpq quotes the piece of a connection string it could not use: a password
/// that its parser split is quoted in part); then anything [`redact`] finds.
pub fn scrub(message: &str, secrets: &[String]) -> String {
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    // Quoted tokens first, while the message is as the driver wrote it.
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        let Some(len) = rest[open + 1..].find('"') else {
            break;
        };
        let token = &rest[open + 1..open + 1 + len];
        out.push_str(&rest[..=open]);
        if secrets.iter().any(|s| overlaps(token, s)) {
            out.push_str("***");
        } else {
            out.push_str(token);
        }
        out.push('"');
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    for s in &secrets {
        out = out.replace(s, "***");
        let encoded: String = s
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        out = out.replace(&encoded, "***");
    }
    redact(&out)
}

/// What is wrong with a connection string, in words of ours, when `message` is one of
/// libpq's complaints about parsing it (`PQconninfoParse`, or a connect that could not
/// parse its string); `None` for any other message. libpq quotes the raw piece it could not
/// parse (a password with a bare `%`, say), so its message must never be shown as it is;
/// this says what is wrong without any of the string's text.
pub fn connection_string_problem(message: &str) -> Option<&'static str> {
    const PROBLEMS: &[(&str, &str)] = &[
        (
            "invalid percent-encoded token",
            "a `%` that does not start a percent-encoded byte (`%` and two hexadecimal \
             digits): write a `%` in a password or any other part as `%25`",
        ),
        (
            "forbidden value %00",
            "`%00` (a NUL byte) in a percent-encoded value",
        ),
        (
            "missing \"=\" after",
            "a word without `=` in a key=value string (quote a value that holds spaces: \
             password='a b')",
        ),
        (
            "unterminated quoted string",
            "a quoted value without its closing quote in a key=value string",
        ),
        (
            "invalid connection option",
            "an unknown parameter name in a key=value string",
        ),
        (
            "invalid URI query parameter",
            "an unknown parameter in the URL's query",
        ),
        (
            "key/value separator",
            "a URL query parameter that is not one key=value (percent-encode `=` and `&` \
             in values)",
        ),
        (
            "IPv6 host address",
            "a malformed IPv6 host in the URL (it goes in [brackets])",
        ),
        (
            "unexpected character",
            "a malformed host or port in the URL",
        ),
        ("invalid URI propagated", "a malformed URL"),
        ("missing connection info string", "a malformed URL"),
    ];
    PROBLEMS
        .iter()
        .find(|(libpq, _)| message.contains(libpq))
        .map(|(_, ours)| *ours)
}

/// Whether `token` and `secret` share a part: one holds the other, or they have at least
/// three characters in a row in common.
fn overlaps(token: &str, secret: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    if secret.contains(token) || token.contains(secret) {
        return true;
    }
    let (t, s): (Vec<char>, Vec<char>) = (token.chars().collect(), secret.chars().collect());
    t.windows(3).any(|w| s.windows(3).any(|v| v == w))
}

/// The byte ranges of `text` that [`redact`] hides, in order, not overlapping.
fn secret_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    if let Some(scheme_end) = text.find("://") {
        let rest = scheme_end + 3;
        if let Some(at) = text[rest..].rfind('@') {
            let at = rest + at;
            if let Some(colon) = text[rest..at].find(':') {
                spans.push(rest + colon + 1..at);
            }
        }
    }
    spans.extend(parameter_spans(text));
    spans.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// The value spans of password parameters (see [`redact`]).
fn parameter_spans(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let is_key_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'%' || b == b'_';
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_boundary = i == 0
            || matches!(bytes[i - 1], b'?' | b'&' | b';')
            || bytes[i - 1].is_ascii_whitespace();
        if !at_boundary || !is_key_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let in_query = i > 0 && matches!(bytes[i - 1], b'?' | b'&');
        let key_start = i;
        while i < bytes.len() && is_key_byte(bytes[i]) {
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
        if in_query {
            while j < bytes.len() && bytes[j] != b'&' && bytes[j] != b'#' {
                j += 1;
            }
        } else if j < bytes.len() && bytes[j] == b'\'' {
            j += 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            j = (j + 1).min(bytes.len());
        } else {
            // The bare value, and every following word up to one that starts a parameter.
            loop {
                while j < bytes.len() && !bytes[j].is_ascii_whitespace() {
                    j += 1;
                }
                let mut k = j;
                while k < bytes.len() && bytes[k].is_ascii_whitespace() {
                    k += 1;
                }
                if k >= bytes.len() || starts_parameter(&bytes[k..]) {
                    break;
                }
                j = k;
            }
        }
        spans.push(value_start..j);
        i = j;
    }
    spans
}

/// Whether `bytes` starts with `name =`, the name in lowercase ASCII letters and `_`, as
/// every libpq parameter's is.
pub(super) fn starts_parameter(bytes: &[u8]) -> bool {
    let name = bytes
        .iter()
        .take_while(|b| b.is_ascii_lowercase() || **b == b'_')
        .count();
    name > 0
        && bytes[name..]
            .iter()
            .find(|b| **b != b' ')
            .is_some_and(|b| *b == b'=')
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{database_url, DatabaseUrl, Lookup};

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
            // Malformed percent-encodings, as users write them (libpq refuses them).
            "db://u:50%offS3cret@h/db",
            "db://u:S3cret%zz@h/db",
            "db://u:S3cret%4@h/db",
            "db://u@h/db?password=S3cret%4",
            "db://u@h/db?password=S3cret%zz&sslmode=disable",
            // Spaces in a URL's password parameter, and a conninfo password with a space
            // but no quotes: libpq reads the words after it as more parameters.
            "db://u@h/db?password=se S3cret&sslmode=disable",
            "host=h password=se S3cret dbname=db",
            "host=h password=se S3cret=1 dbname=db",
            "host=h password='se S3cret' dbname=db",
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
        for (url, postgres) in [
            ("postgres://u@h/db", true),
            ("postgresql://h", true),
            ("host=h user=u password='a b'", true),
            ("  dbname = db", true),
            ("sqlite:///tmp/x.db", false),
            ("sqlite:x.db", false),
            ("/var/x.db", false),
            ("x.db", false),
            ("My=file.db", false),
            ("mysql://u@h/db", false),
        ] {
            assert_eq!(DatabaseUrl::new(url).is_postgres(), postgres, "{url}");
        }
        assert_eq!(redact("db://u:S3cret@h:5432/db"), "db://u:***@h:5432/db");
        assert_eq!(
            redact("host=h password=se S3cret dbname=db"),
            "host=h password=*** dbname=db"
        );
        assert_eq!(
            redact("db://u@h/db?password=se S3cret&sslmode=disable"),
            "db://u@h/db?password=***&sslmode=disable"
        );
    }

    #[test]
    fn the_database_is_named_by_the_first_variable_set() {
        let pg = ("MEMGPT_PG_URL", "postgres://u:S3cret@h/db");
        let any = ("MEMGPT_DATABASE_URL", "sqlite:///tmp/x.db");
        let named = |env: &dyn Lookup| database_url(env).map(|(v, u)| (v, u.redacted()));
        assert_eq!(
            named(&[any, pg]),
            Some(("MEMGPT_PG_URL", "postgres://u:***@h/db".to_owned()))
        );
        assert_eq!(
            named(&[any]),
            Some(("MEMGPT_DATABASE_URL", "sqlite:///tmp/x.db".to_owned()))
        );
        assert_eq!(named(&[("MEMGPT_SQLITE_PATH", "/tmp/x.db")]), None);
    }

    /// libpq quotes the piece of a connection string it could not parse or use: no part
    /// of a secret survives [`scrub`] with the [`secrets`] of the string.
    #[test]
    fn scrub_hides_every_part_of_a_secret_a_driver_quotes() {
        for (connection, message) in [
            (
                "postgres://u:50%offS3cret@h/db",
                "invalid percent-encoded token: \"50%offS3cret\"",
            ),
            (
                "postgres://u@h/db?password=S3cret%4",
                "invalid percent-encoded token: \"S3cret%4\"",
            ),
            (
                "postgres://u:p@S3cret@h/db",
                "could not translate host name \"S3cret@h\" to address",
            ),
            (
                "host=h password=se S3cret dbname=db",
                "missing \"=\" after \"S3cret\" in connection info string",
            ),
            (
                "host=h password=se S3cret=1 dbname=db",
                "invalid connection option \"S3cret\"",
            ),
            (
                "host=h password='se S3cret' dbname=db",
                "the password \"se S3cret\" and se S3cret",
            ),
            (
                "postgres://u:S3cret@[::1/db",
                "end of string reached when looking for matching \"]\" in IPv6 host address \
                 in URI: \"postgres://u:S3cret@[::1/db\"",
            ),
            ("postgres://u:S%33cret@h/db", "the password S3cret"),
        ] {
            let shown = scrub(message, &secrets(connection));
            assert!(!shown.contains("S3cret"), "{connection}: {shown}");
        }
        let message = "password authentication failed for user \"u\"";
        assert_eq!(
            scrub(message, &secrets("postgres://u:S3cret@h/db")),
            message
        );
        assert_eq!(secrets("host=h password='it\\'s' x"), ["'it\\'s'", "it's"]);
        assert_eq!(secrets("postgres://h/db"), Vec::<String>::new());
        assert_eq!(
            connection_string_problem("invalid percent-encoded token: \"50%off\""),
            Some(
                "a `%` that does not start a percent-encoded byte (`%` and two hexadecimal \
                 digits): write a `%` in a password or any other part as `%25`"
            )
        );
        assert_eq!(connection_string_problem("Connection refused"), None);
    }
}
