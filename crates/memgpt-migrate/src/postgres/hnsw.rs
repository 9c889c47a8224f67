//! pgvector's HNSW indexes: which are missing, and building them concurrently with
//! progress.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{DatabaseUrl, Error, TableType};

use super::{connect, Flag, INDEX_MIGRATION};
use crate::migration_err;
use crate::rows::Name;

/// The largest dimension pgvector's HNSW indexes as `vector` (full precision).
pub const MAX_VECTOR_HNSW_DIM: u32 = 2000;
/// The largest dimension pgvector's HNSW indexes at all: as `halfvec` (half precision),
/// above [`MAX_VECTOR_HNSW_DIM`].
pub const MAX_HNSW_DIM: u32 = 4000;

/// The largest magnitude `halfvec` holds; a larger component fails the cast.
const MAX_HALF: u32 = 65_504;

/// The expression and operator class of the HNSW index for dimension `dim`: the
/// embedding's first `dim` values as `vector(dim)` up to [`MAX_VECTOR_HNSW_DIM`], else as
/// `halfvec(dim)` (OpenAI's text-embedding-3-large: 3,072) where its L2 norm is at most
/// 65,504 (so that no component is past what `halfvec` holds, and the cast never refuses a
/// write; a wider embedding is left out of the index). The index only serves global
/// nearest-neighbour searches that order by the same expression; the library's own
/// in-scope search is exact, at full precision, either way.
pub fn hnsw_expression(dim: u32) -> (String, &'static str) {
    if dim <= MAX_VECTOR_HNSW_DIM {
        (
            format!("subvector(embedding, 1, {dim})::vector({dim})"),
            "vector_l2_ops",
        )
    } else {
        (
            format!(
                "(CASE WHEN vector_norm(subvector(embedding, 1, {dim})) <= {MAX_HALF} \
                 THEN subvector(embedding, 1, {dim})::halfvec END)::halfvec({dim})"
            ),
            "halfvec_l2_ops",
        )
    }
}

/// Refuses a `halfvec` index where pgvector is older than 0.7 (which has none).
fn check_halfvec(conn: &mut PgConnection, dim: u32) -> Result<(), Error> {
    if dim <= MAX_VECTOR_HNSW_DIM {
        return Ok(());
    }
    let versions: Vec<Name> = diesel::sql_query(
        "SELECT extversion::text AS name FROM pg_extension WHERE extname = 'vector'",
    )
    .load(conn)
    .map_err(migration_err)?;
    let version = versions.first().map(|v| v.name.clone()).unwrap_or_default();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (0, 7) {
        return Err(Error::invalid(
            "embedding_dim",
            format!(
                "{dim} dimensions are indexed as halfvec, which needs pgvector 0.7 or newer; \
                 the server has {version}"
            ),
        ));
    }
    Ok(())
}

/// The name of the HNSW index of `table` for dimension `dim`.
pub fn hnsw_index_name(table: TableType, dim: u32) -> String {
    format!("{}_embedding_hnsw_{dim}", table.table_name())
}

/// Whether the embedding columns are pgvector's `vector` (else `real[]`: no vector index).
///
/// # Errors
/// What the database reports.
pub fn has_vector_column(conn: &mut PgConnection) -> Result<bool, Error> {
    let types: Vec<Name> = diesel::sql_query(
        "SELECT format_type(atttypid, atttypmod) AS name FROM pg_attribute \
         WHERE attrelid = to_regclass('memgpt_passages') AND attname = 'embedding'",
    )
    .load(conn)
    .map_err(migration_err)?;
    Ok(types.first().is_some_and(|t| t.name.starts_with("vector")))
}

/// The HNSW indexes of dimension `dim` that are missing or invalid (a failed concurrent
/// build leaves an invalid one), by name. Empty without pgvector.
///
/// # Errors
/// What the database reports.
pub fn missing_hnsw(conn: &mut PgConnection, dim: u32) -> Result<Vec<String>, Error> {
    if !has_vector_column(conn)? {
        return Ok(Vec::new());
    }
    let mut missing = Vec::new();
    for t in [TableType::ArchivalMemory, TableType::Passages] {
        let name = hnsw_index_name(t, dim);
        let valid: Vec<Flag> = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) \
             AND indisvalid) AS v",
        )
        .bind::<Text, _>(&name)
        .load(conn)
        .map_err(migration_err)?;
        if !valid.first().is_some_and(|f| f.v) {
            missing.push(name);
        }
    }
    Ok(missing)
}

/// Builds the HNSW indexes of archival memory and passages on [`hnsw_expression`] where
/// they are missing (or left invalid by
/// a failed build): `CONCURRENTLY` when the table holds rows, so that writers go on, and
/// with no statement timeout for this session. Reports progress (from
/// `pg_stat_progress_create_index`, read on a second connection to `url`) about every
/// second. The caller holds the migration lock. Does nothing without pgvector.
///
/// # Errors
/// [`Error::Migration`] when a build fails (an invalid index it leaves is dropped and
/// rebuilt by the next run); [`Error::InvalidInput`] for a dimension outside
/// 1..=[`MAX_HNSW_DIM`] (pgvector's HNSW limit, as `halfvec`).
pub fn ensure_hnsw(
    conn: &mut PgConnection,
    url: &DatabaseUrl,
    dim: u32,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), Error> {
    if !(1..=MAX_HNSW_DIM).contains(&dim) {
        return Err(Error::invalid(
            "embedding_dim",
            format!(
                "{dim} is outside 1..={MAX_HNSW_DIM}, the dimensions pgvector's HNSW indexes \
                 (as halfvec above {MAX_VECTOR_HNSW_DIM})"
            ),
        ));
    }
    let missing = missing_hnsw(conn, dim)?;
    if missing.is_empty() {
        return Ok(());
    }
    check_halfvec(conn, dim)?;
    conn.batch_execute("SET statement_timeout = 0")
        .map_err(migration_err)?;
    let result = missing
        .iter()
        .try_for_each(|name| build_one(conn, url, name, dim, progress));
    let reset = conn
        .batch_execute("RESET statement_timeout")
        .map_err(migration_err);
    result?;
    reset
}

fn build_one(
    conn: &mut PgConnection,
    url: &DatabaseUrl,
    name: &str,
    dim: u32,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), Error> {
    let table = [TableType::ArchivalMemory, TableType::Passages]
        .into_iter()
        .find(|t| hnsw_index_name(*t, dim) == name)
        .map(TableType::table_name)
        .ok_or_else(|| migration_err(format!("unknown vector index {name}")))?;
    // An invalid index of a failed concurrent build: drop it first.
    conn.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
        .map_err(migration_err)?;
    let rows: Vec<Flag> = diesel::sql_query(format!("SELECT EXISTS (SELECT 1 FROM {table}) AS v"))
        .load(conn)
        .map_err(migration_err)?;
    let has_rows = rows.first().is_some_and(|f| f.v);
    // Identifiers and the dimension are ours (a validated integer), never caller text.
    let (expression, opclass) = hnsw_expression(dim);
    let ddl = format!(
        "CREATE INDEX {concurrently} IF NOT EXISTS {name} ON {table} USING hnsw \
         (({expression}) {opclass}) WITH (m = 16, ef_construction = 64)",
        concurrently = if has_rows { "CONCURRENTLY" } else { "" },
    );
    progress(&format!("building {name} on {table}"));
    let done = std::sync::atomic::AtomicBool::new(false);
    let built = std::thread::scope(|s| {
        if has_rows {
            s.spawn(|| watch(url, table, &done, progress));
        }
        let r = conn.batch_execute(&ddl).map_err(migration_err);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    });
    built?;
    diesel::sql_query(
        "INSERT INTO __memgpt_store_owned_indexes (name, migration) VALUES ($1, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind::<Text, _>(name)
    .bind::<Text, _>(INDEX_MIGRATION)
    .execute(conn)
    .map_err(migration_err)?;
    progress(&format!("built {name}"));
    Ok(())
}

#[derive(QueryableByName)]
struct Progress {
    #[diesel(sql_type = Text)]
    phase: String,
    #[diesel(sql_type = BigInt)]
    done: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// Reports the build's phase and blocks about every second until `done`.
fn watch(
    url: &DatabaseUrl,
    table: &str,
    done: &std::sync::atomic::AtomicBool,
    progress: &(dyn Fn(&str) + Sync),
) {
    let Ok(mut c) = connect(url) else {
        return;
    };
    let mut waited = Duration::ZERO;
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
        if waited < Duration::from_secs(1) {
            continue;
        }
        waited = Duration::ZERO;
        let p: Vec<Progress> = diesel::sql_query(
            "SELECT phase, coalesce(blocks_done, 0) AS done, coalesce(blocks_total, 0) AS total \
             FROM pg_stat_progress_create_index WHERE relid = to_regclass($1)",
        )
        .bind::<Text, _>(table)
        .load(&mut c)
        .unwrap_or_default();
        if let Some(p) = p.first() {
            progress(&format!(
                "  {table}: {} ({} of {} blocks)",
                p.phase, p.done, p.total
            ));
        }
    }
}
