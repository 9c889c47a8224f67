//! Session settings behind PgBouncer in transaction mode: a server connection serves any
//! client between transactions, so the settings a direct connection sends at connect
//! (`jit`, `statement_timeout`, `idle_in_transaction_session_timeout`) are applied with
//! `SET LOCAL` at the start of every transaction instead — unless the server's defaults
//! for the role and database already match, when nothing is needed.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::Error as DieselError;
use diesel::sql_types::Text;
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::Result;

use crate::error::map;
use crate::PgConfig;

/// A server setting by name (a row of `pg_settings`).
#[derive(QueryableByName)]
pub(crate) struct Setting {
    #[diesel(sql_type = Text)]
    pub(crate) name: String,
    #[diesel(sql_type = Text)]
    pub(crate) setting: String,
}

/// The settings every statement of the store should run under, as `pg_settings.setting`
/// shows them (timeouts in milliseconds).
pub(crate) fn wanted(config: &PgConfig) -> [(&'static str, String); 3] {
    [
        (
            "idle_in_transaction_session_timeout",
            config.idle_in_transaction_timeout.as_millis().to_string(),
        ),
        ("jit", "off".to_owned()),
        (
            "statement_timeout",
            config.statement_timeout.as_millis().to_string(),
        ),
    ]
}

/// The `BEGIN` of every transaction on `conn`'s server: `None` when its defaults already
/// are [`wanted`], else `BEGIN` followed by one `SET LOCAL` per setting (one round trip).
///
/// # Errors
/// What the database reports.
pub(crate) fn begin_sql(conn: &mut PgConnection, config: &PgConfig) -> Result<Option<String>> {
    let found: Vec<Setting> = diesel::sql_query(
        "SELECT name::text AS name, setting::text AS setting FROM pg_settings \
         WHERE name IN ('idle_in_transaction_session_timeout', 'jit', 'statement_timeout') \
         ORDER BY name",
    )
    .load(conn)
    .map_err(map)?;
    let wanted = wanted(config);
    let differ: Vec<&(&str, String)> = wanted
        .iter()
        .filter(|(name, value)| !found.iter().any(|s| s.name == *name && s.setting == *value))
        .collect();
    if differ.is_empty() {
        return Ok(None);
    }
    tracing::warn!(
        "memgpt-pg: behind a transaction pooler the server's defaults differ from the \
         store's settings ({}); every call sets them in a transaction of its own (two \
         round trips more). `ALTER ROLE … SET …` (or the database's) makes calls one round \
         trip again",
        differ
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Every setting, not only those that differ: a server connection of another database
    // default stays correct too. Values are numbers and `off`, never user data.
    let mut sql = "BEGIN".to_owned();
    for (name, value) in &wanted {
        sql.push_str(&format!("; SET LOCAL {name} = {value}"));
    }
    Ok(Some(sql))
}

/// Runs `run` in a transaction opened by `begin` (`BEGIN; SET LOCAL …`), as diesel's own
/// `transaction` does: committed on `Ok`, rolled back on `Err` (a failed rollback after a
/// broken connection keeps `run`'s error).
///
/// # Errors
/// `run`'s error, or the database's on begin, commit or rollback.
pub(crate) fn transaction<T>(
    conn: &mut PgConnection,
    begin: &str,
    run: &mut dyn FnMut(&mut PgConnection) -> Result<T, DieselError>,
) -> Result<T, DieselError> {
    AnsiTransactionManager::begin_transaction_sql(conn, begin)?;
    match run(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match AnsiTransactionManager::rollback_transaction(conn) {
            Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback),
        },
    }
}
