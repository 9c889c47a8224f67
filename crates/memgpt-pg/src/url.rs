//! The connection string handed to libpq: the user's URL plus the per-connection settings.

use memgpt_core::PgConfig;

/// Appends a `key=value` parameter (percent-encoding the value) unless the URL sets it.
fn add_param(url: &mut String, key: &str, value: &str) {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    if query.split('&').any(|kv| kv.split('=').next() == Some(key)) {
        return;
    }
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(key);
    url.push('=');
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The URL with `application_name`, `connect_timeout`, TCP keepalives and
/// `tcp_user_timeout` (so a dead network cannot hold a call for minutes), and the server
/// options `jit=off` and `statement_timeout`. Settings the URL gives already are kept.
pub(crate) fn connection_url(config: &PgConfig) -> String {
    let mut url = config.database_url.expose().to_owned();
    add_param(&mut url, "application_name", &config.application_name);
    add_param(
        &mut url,
        "connect_timeout",
        &config.connect_timeout.as_secs().max(1).to_string(),
    );
    add_param(&mut url, "keepalives", "1");
    add_param(&mut url, "keepalives_idle", "30");
    add_param(&mut url, "keepalives_interval", "10");
    add_param(&mut url, "keepalives_count", "3");
    add_param(&mut url, "tcp_user_timeout", "60000");
    add_param(
        &mut url,
        "options",
        &format!(
            "-c jit=off -c statement_timeout={}",
            config.statement_timeout.as_millis()
        ),
    );
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use memgpt_core::DatabaseUrl;

    #[test]
    fn settings_are_appended_once() {
        let c = PgConfig::new(DatabaseUrl::new(
            "postgres://u:p@h/db?application_name=mine",
        ));
        let u = connection_url(&c);
        assert!(
            u.starts_with("postgres://u:p@h/db?application_name=mine&"),
            "{u}"
        );
        assert_eq!(u.matches("application_name").count(), 1);
        assert!(u.contains("connect_timeout=10"));
        assert!(
            u.contains("options=-c%20jit%3Doff%20-c%20statement_timeout%3D60000"),
            "{u}"
        );
        let c = PgConfig::new(DatabaseUrl::new("postgres://h/db"));
        assert!(connection_url(&c).starts_with("postgres://h/db?application_name=memgpt-store&"));
    }
}
