//! What opening a store does on its first connection: pending migrations (or, behind a
//! transaction pooler, refusing to open with them pending), the settings a transaction
//! pooler needs, and pgvector's version and indexes.

use diesel::sql_types::Text;
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Result};

use crate::error::map;
use crate::{PgConfig, Pooler};

/// A version of the pgvector extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
#[non_exhaustive]
pub struct PgVector {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
    /// Patch version.
    pub patch: u32,
}

impl PgVector {
    /// Parses `extversion` (`0.8.0`); missing or malformed parts read as 0.
    pub fn parse(version: &str) -> PgVector {
        let mut parts = version
            .split('.')
            .map(|p| p.trim().parse::<u32>().unwrap_or(0));
        PgVector {
            major: parts.next().unwrap_or(0),
            minor: parts.next().unwrap_or(0),
            patch: parts.next().unwrap_or(0),
        }
    }

    /// Whether HNSW index scans can iterate (`hnsw.iterative_scan`, pgvector 0.8).
    pub fn iterative_scan(self) -> bool {
        (self.major, self.minor) >= (0, 8)
    }
}

impl std::fmt::Display for PgVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(QueryableByName)]
struct TypeName {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Prepares a store on its first connection: migrates when `migrate`, and returns
/// pgvector's version (none without pgvector) and, behind a transaction pooler whose
/// defaults differ from the settings, the `BEGIN; SET LOCAL …` of every call.
///
/// # Errors
/// [`Error::Migration`] when a migration fails or, behind a transaction pooler, is
/// pending; what the database reports.
pub(crate) fn prepare(
    conn: &mut PgConnection,
    config: &PgConfig,
    migrate: bool,
) -> Result<(Option<PgVector>, Option<String>)> {
    let transaction_pooler = config.pooler == Pooler::Transaction;
    if !transaction_pooler {
        // Loads spread over several connections that a process left half done: their
        // prepared parts hold locks a migration of their table would wait for.
        match crate::prepared::resolve(conn) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(parts = n, "finished the parts of loads left prepared"),
            Err(e) => tracing::warn!(error = %e, "could not finish loads left prepared"),
        }
    }
    if migrate && transaction_pooler {
        refuse_pending(conn)?;
    } else if migrate {
        memgpt_migrate::postgres::run_pending_within(conn, config.migration_lock_timeout)?;
    }
    let begin = if transaction_pooler {
        crate::session::begin_sql(conn, config)?
    } else {
        None
    };
    Ok((vector(conn, config.embedding_dim)?, begin))
}

/// Behind a transaction pooler: [`Error::Migration`] when migrations are pending. The
/// migrations hold a session advisory lock, which a transaction pooler would leave on
/// whichever server connection took it.
fn refuse_pending(conn: &mut PgConnection) -> Result<()> {
    let pending = memgpt_migrate::postgres::pending(conn)?;
    if pending.is_empty() {
        return Ok(());
    }
    Err(Error::Migration {
        message: format!(
            "{} migration(s) pending ({}); behind PgBouncer in transaction mode \
             (MEMGPT_PG_PGBOUNCER=transaction) they are not applied at open: \
             run `memgpt-store migrate up` against the server directly",
            pending.len(),
            pending.join(", ")
        ),
    })
}

/// pgvector's version where the tables have vector columns, warning about missing HNSW
/// indexes for `dim`.
fn vector(conn: &mut PgConnection, dim: u32) -> Result<Option<PgVector>> {
    if !memgpt_migrate::postgres::has_vector_column(conn)? {
        return Ok(None);
    }
    let versions: Vec<TypeName> =
        diesel::sql_query("SELECT extversion AS name FROM pg_extension WHERE extname = 'vector'")
            .load(conn)
            .map_err(map)?;
    let version = versions
        .first()
        .map(|v| PgVector::parse(&v.name))
        .unwrap_or_default();
    let missing = memgpt_migrate::postgres::missing_hnsw(conn, dim)?;
    if !missing.is_empty() {
        tracing::warn!(
            "memgpt-pg: vector indexes missing: {}; vector search still answers \
             exactly within a scope, but build them with `memgpt-store migrate \
             --database-url URL up --embedding-dim {dim}`",
            missing.join(", ")
        );
    }
    Ok(Some(version))
}

#[cfg(test)]
mod tests {
    use super::PgVector;

    #[test]
    fn pgvector_versions_parse_and_compare() {
        assert_eq!(
            PgVector::parse("0.8.0"),
            PgVector {
                major: 0,
                minor: 8,
                patch: 0
            }
        );
        assert!(PgVector::parse("0.8.1").iterative_scan());
        assert!(!PgVector::parse("0.7.4").iterative_scan());
        assert!(!PgVector::parse("0.5").iterative_scan());
        assert!(PgVector::parse("1.0.0").iterative_scan());
        assert_eq!(PgVector::parse("garbage"), PgVector::default());
        assert_eq!(PgVector::parse("0.7.4").to_string(), "0.7.4");
    }
}
