//! Loads of passages on several connections at once, all or nothing by two-phase commit.
//!
//! Inserting a passage into pgvector's HNSW index costs the server milliseconds of one
//! core; a load on one connection uses one core. With
//! [`PgConfig::load_connections`](crate::PgConfig::load_connections) above 1, on a server
//! that allows prepared transactions, a bulk call into a table of passages is split by id
//! over that many pooled connections (every record of an id in one part, so each part
//! applies the call's duplicate rule to its ids). Each part is written in a transaction of
//! its own by the chunked `INSERT` (the bulk path's staging table is a temporary table,
//! which a prepared transaction may not touch) and prepared (`PREPARE TRANSACTION`), named
//! after the caller's transaction. The caller's transaction decides: once it has
//! committed, [`finish`] commits the parts; once it has rolled back (or its session
//! ended), the parts are rolled back.
//!
//! A part that fails for any reason (a record that cannot be written, a row locked by
//! another session past [`LOCK_WAIT`], a lost connection) rolls every part back, and the
//! call is written again on the caller's connection by the bulk path, in the caller's
//! transaction: it decides the call's error by the one duplicate rule, or waits for the
//! lock as any write does.
//!
//! A process that ends between its parts' prepares and their commits leaves them
//! prepared: [`resolve`](crate::prepared::resolve) finishes them by the outcome of the transaction named in each
//! (`pg_xact_status`), leaving those of a transaction still in progress. `PgStore::open`
//! resolves, and so does a load before it writes again on the caller's connection.

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::sql_types::{Integer, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Record, Result, Scoped, TableType};
use uuid::Uuid;

use crate::error::map;
use crate::pool::Pooled;
use crate::store::PgStore;
use crate::{PgConfig, Pooler};

/// How long a part waits for a row another session holds before the load falls back to
/// the caller's connection (two loads of the same ids could otherwise wait on each other
/// through their callers, where the server sees no deadlock).
const LOCK_WAIT: &str = "1s";

#[derive(QueryableByName)]
struct Allowed {
    #[diesel(sql_type = Integer)]
    n: i32,
}

#[derive(QueryableByName)]
struct Text1 {
    #[diesel(sql_type = Text)]
    t: String,
}

/// Calls of more passages than this are spread when they can be ([`connections`]).
pub(crate) const FROM: usize = 64;

/// Whether loads into `table` are to be spread: passages, `load_connections` above 1, no
/// transaction pooler between.
pub(crate) fn wanted(config: &PgConfig, table: TableType) -> bool {
    config.load_connections > 1
        && matches!(table, TableType::ArchivalMemory | TableType::Passages)
        && config.pooler == Pooler::Direct
}

/// How many connections a bulk call of `target` on `conn` may spread over: `None` for the
/// caller's alone — a table without embeddings, one connection configured, a transaction
/// pooler, a unit of work (its transaction decides, and it may yet roll back), or a server
/// that allows too few prepared transactions (or has no `pg_current_xact_id`, before 13).
pub(crate) fn connections<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
) -> Result<Option<usize>> {
    let config = target.store().config();
    if !wanted(config, target.table()) {
        return Ok(None);
    }
    let n = config.load_connections as usize;
    let depth = AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map_err(map)?;
    if depth.map(u32::from) != Some(1) {
        return Ok(None);
    }
    let allowed: Vec<Allowed> = diesel::sql_query(
        "SELECT CASE WHEN current_setting('server_version_num')::int >= 130000 \
         THEN current_setting('max_prepared_transactions')::int ELSE 0 END AS n",
    )
    .load(conn)
    .map_err(map)?;
    let allowed = allowed
        .first()
        .map_or(0, |a| usize::try_from(a.n).unwrap_or(0));
    Ok((allowed > n).then_some(n))
}

/// Writes `records` over up to `n` connections (see the module); with fewer than two to
/// be had, or when a part fails, on `conn` by the bulk path.
///
/// # Errors
/// As `insert_many`; [`Error::ConnectionLost`] when the parts were decided but could not
/// all be committed (the next [`resolve`] commits them).
pub(crate) fn load<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    exists_ok: bool,
    n: usize,
) -> Result<u64> {
    let all: Vec<(usize, R)> = records.collect();
    let mut spares: Vec<Pooled> = (0..n).map_while(|_| target.store().spare()).collect();
    if spares.len() >= 2 {
        let mut parts: Vec<Vec<&(usize, R)>> = vec![Vec::new(); spares.len()];
        for one in &all {
            parts[(one.1.id().as_u128() % spares.len() as u128) as usize].push(one);
        }
        if let Some(done) = in_parts(target, conn, &mut spares, &parts, exists_ok)? {
            // Prepared: committed or rolled back with the caller's transaction (`finish`).
            crate::prepared::pend(&mut spares);
            return Ok(done);
        }
        // A row a part waited for may be held by the part of a load whose process ended:
        // finished first (best effort; `ROLLBACK PREPARED` runs outside a transaction).
        for c in &mut spares {
            if crate::prepared::resolve(c).is_ok() {
                break;
            }
        }
    }
    crate::copy::copy_many(target, conn, &mut all.into_iter(), exists_ok)
}

/// The parts written, prepared and committed: `Some` rows written, `None` when a part
/// failed and every part was rolled back.
fn in_parts<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    spares: &mut [Pooled],
    parts: &[Vec<&(usize, R)>],
    exists_ok: bool,
) -> Result<Option<u64>> {
    // The caller's transaction waits, idle, for the parts; its id names them.
    conn.batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        .map_err(map)?;
    let xid: Vec<Text1> = diesel::sql_query("SELECT pg_current_xact_id()::text AS t")
        .load(conn)
        .map_err(map)?;
    let xid = xid.first().map(|x| x.t.clone()).unwrap_or_default();
    let call = Uuid::new_v4().simple().to_string();
    let name = |k: &dyn std::fmt::Display| format!("{}{xid}:{call}:{k}", crate::prepared::PREFIX);
    let outcomes: Vec<std::thread::Result<Result<u64>>> = std::thread::scope(|s| {
        let running: Vec<_> = spares
            .iter_mut()
            .zip(parts)
            .enumerate()
            .map(|(k, (c, part))| {
                let gid = name(&k);
                s.spawn(move || prepare(target, c, part, exists_ok, &gid))
            })
            .collect();
        running.into_iter().map(|h| h.join()).collect()
    });
    let prepared: Vec<String> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Ok(Ok(_))))
        .map(|(k, _)| name(&k))
        .collect();
    if prepared.len() == parts.len() {
        let rows = outcomes.into_iter().filter_map(|o| o.ok()?.ok()).sum();
        return Ok(Some(rows));
    }
    settle(spares, &prepared, "ROLLBACK")?;
    for outcome in outcomes {
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
    Ok(None)
}

/// One part, in a transaction of its own, prepared as `gid`; rolled back on failure.
fn prepare<R: Record>(
    target: &Scoped<PgStore, R>,
    c: &mut Pooled,
    part: &[&(usize, R)],
    exists_ok: bool,
    gid: &str,
) -> Result<u64> {
    let pg: &mut PgConnection = c;
    let written = pg
        .batch_execute(&format!("BEGIN; SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        .map_err(map)
        .and_then(|()| {
            let mut records = part.iter().map(|&one| one.clone());
            target.insert_chunks(pg, &mut records, exists_ok)
        })
        .and_then(|rows| {
            pg.batch_execute(&format!("PREPARE TRANSACTION '{gid}'"))
                .map_err(map)
                .map(|()| rows)
        });
    if written.is_err() && pg.batch_execute("ROLLBACK").is_err() {
        c.forget();
    }
    written
}

/// `COMMIT PREPARED` or `ROLLBACK PREPARED` of each of `gids`, each on the first of
/// `spares` that answers.
fn settle(spares: &mut [Pooled], gids: &[String], verb: &str) -> Result<()> {
    // One statement each: several in one query string would be one transaction block.
    gids.iter()
        .try_for_each(|gid| run_on_any(spares, &format!("{verb} PREPARED '{gid}'")))
}

/// Runs `sql` on the first of `spares` that answers (a connection lost is closed when it
/// goes back to the pool).
fn run_on_any(spares: &mut [Pooled], sql: &str) -> Result<()> {
    for c in spares.iter_mut() {
        match c.batch_execute(sql) {
            Ok(()) => return Ok(()),
            Err(e) => {
                let e = map(e);
                if !matches!(e, Error::ConnectionLost { .. }) {
                    return Err(e);
                }
                c.forget();
            }
        }
    }
    Err(Error::ConnectionLost {
        message: "a load spread over several connections lost every one of them while it \
                  committed or rolled back its parts; the next store opened on this \
                  database finishes them"
            .to_owned(),
    })
}
