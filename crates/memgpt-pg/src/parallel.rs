//! Loads of passages on several connections at once, all or nothing by two-phase commit.
//!
//! Inserting a passage into pgvector's HNSW index costs the server milliseconds of one
//! core; a load on one connection uses one core. With
//! [`PgConfig::load_connections`](crate::PgConfig::load_connections) above 1, on a server
//! that allows prepared transactions, a call of more than [`FROM`] passages is split by id
//! over that many pooled connections (every record of an id in one part, so each part
//! applies the call's duplicate rule to its ids). Each part is written in a transaction of
//! its own by the chunked `INSERT` (the bulk path's staging table is a temporary table,
//! which a prepared transaction may not touch) and prepared (`PREPARE TRANSACTION`), named
//! after the caller's transaction, which decides: once it has ended,
//! [`finish`](crate::prepared::finish) commits the parts, or rolls them back, one after
//! another — another session may see some parts' rows a moment before the others'.
//!
//! A call with a record it would fail on (another tenant's, an id repeated without
//! `exists_ok`) is written on the caller's connection by the bulk path, which reports it.
//! A part that fails for any other reason (a row of another tenant's id, a row locked by
//! another session past [`LOCK_WAIT`], a lost connection, a panic) rolls back every part
//! of the call the server holds prepared — by their names, for a `PREPARE` may complete
//! while its reply is lost — and the call is written again on the caller's connection by
//! the bulk path, in the caller's transaction.
//!
//! A process that ends between its parts' prepares and their commits leaves them
//! prepared: [`resolve`](crate::prepared::resolve) finishes them by the outcome of the
//! transaction named in each (`pg_xact_status`), leaving those of a transaction still in
//! progress. `PgStore::open` resolves before it migrates, and so does a load that writes
//! again on the caller's connection.

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::sql_types::Text;
use diesel::{PgConnection, RunQueryDsl};
use memgpt_core::{Record, Result, Scoped, TableType};
use uuid::Uuid;

use crate::error::map;
use crate::pool::Pooled;
use crate::prepared::{ended, on_any, one_text, Found, OneText, Part, Pending, PREFIX};
use crate::store::PgStore;
use crate::{PgConfig, Pooler};

/// How long a part waits for a row another session holds before the load falls back to
/// the caller's connection (two loads of the same ids could otherwise wait on each other
/// through their callers, where the server sees no deadlock).
const LOCK_WAIT: &str = "1s";

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
    // Slots free now (each concurrent load takes as many as its parts).
    let allowed: Vec<Found> = diesel::sql_query(
        "SELECT CASE WHEN current_setting('server_version_num')::int >= 130000 \
         THEN current_setting('max_prepared_transactions')::int \
         - (SELECT count(*) FROM pg_prepared_xacts)::int ELSE 0 END AS n",
    )
    .load(conn)
    .map_err(map)?;
    let allowed = allowed
        .first()
        .map_or(0, |a| usize::try_from(a.n).unwrap_or(0));
    Ok((allowed > n).then_some(n))
}

/// Writes `records` over up to `n` connections (see the module); with fewer than two to
/// be had, when a record would fail the call, or when a part fails, on `conn` by the bulk
/// path.
///
/// # Errors
/// As `insert_many`.
pub(crate) fn load<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    records: &mut dyn Iterator<Item = (usize, R)>,
    exists_ok: bool,
    n: usize,
) -> Result<u64> {
    // Pulled before any spare is taken: the iterator may read this store (on another
    // pooled connection).
    let all: Vec<(usize, R)> = records.collect();
    // A record the call fails on (another tenant's, an id repeated without `exists_ok`)
    // is the bulk path's to report, by its rule, without the parts' work first.
    let fails = target.check_owners(all.iter()).is_err() || (!exists_ok && repeats(&all));
    if !fails {
        let spares: Vec<Pooled> = (0..n).map_while(|_| target.store().spare()).collect();
        if spares.len() >= 2 {
            if let Some(rows) = spread(target, conn, spares, &all, exists_ok)? {
                return Ok(rows);
            }
        }
    }
    crate::copy::copy_many(target, conn, &mut all.into_iter(), exists_ok)
}

/// Whether an id comes twice.
fn repeats<R: Record>(all: &[(usize, R)]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(all.len());
    !all.iter().all(|(_, r)| seen.insert(r.id()))
}

/// `all` in `n` parts by id: every record of an id in one part.
fn split<R: Record>(all: &[(usize, R)], n: usize) -> Vec<Vec<&(usize, R)>> {
    let mut parts: Vec<Vec<&(usize, R)>> = vec![Vec::new(); n];
    for one in all {
        parts[(one.1.id().as_u128() % n as u128) as usize].push(one);
    }
    parts
}

/// A part's outcome: its transaction's id (once it had one) and the rows it wrote.
type Outcome = (Option<String>, Result<u64>);

/// The parts written and prepared on `spares`, kept until the caller's transaction ends
/// (`Some` rows written); `None` when a part failed and every part of the call was
/// rolled back.
fn spread<R: Record>(
    target: &Scoped<PgStore, R>,
    conn: &mut PgConnection,
    mut spares: Vec<Pooled>,
    all: &[(usize, R)],
    exists_ok: bool,
) -> Result<Option<u64>> {
    let parts = split(all, spares.len());
    // The caller's transaction waits, idle, for the parts; its id names them.
    conn.batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        .map_err(map)?;
    let xid = one_text(conn, "SELECT pg_current_xact_id()::text AS t")?;
    let prefix = format!("{PREFIX}{xid}:{}:", Uuid::new_v4().simple());
    let gids: Vec<String> = (0..parts.len()).map(|k| format!("{prefix}{k}")).collect();
    let outcomes: Vec<std::thread::Result<Outcome>> = std::thread::scope(|s| {
        let running: Vec<_> = spares
            .iter_mut()
            .zip(&parts)
            .zip(&gids)
            .map(|((c, part), gid)| s.spawn(move || prepare(target, c, part, exists_ok, gid)))
            .collect();
        running.into_iter().map(|h| h.join()).collect()
    });
    // Idle no longer: the configured timeout again (once the parts are pending or
    // withdrawn, for the caller's session may be gone).
    let idle = target.store().config().idle_in_transaction_timeout;
    let restore = format!(
        "SET LOCAL idle_in_transaction_session_timeout = {}",
        idle.as_millis()
    );
    let written: Option<Vec<(String, u64)>> = outcomes
        .iter()
        .map(|o| match o {
            Ok((Some(x), Ok(rows))) => Some((x.clone(), *rows)),
            _ => None,
        })
        .collect();
    // Each part listed as prepared (a `PREPARE` in a failed transaction answers as a
    // rollback would, without an error).
    if let Some(written) = written.filter(|_| listed(&mut spares, &prefix) == Some(gids.len())) {
        let rows = written.iter().map(|w| w.1).sum();
        let parts = gids
            .into_iter()
            .zip(written)
            .map(|(gid, (x, _))| Part::new(gid, Some(x)));
        crate::prepared::pend(Pending::new(spares, xid, parts.collect()));
        conn.batch_execute(&restore).map_err(map)?;
        return Ok(Some(rows));
    }
    // A part that panicked left its connection in its transaction: closed, not reused.
    for (c, o) in spares.iter_mut().zip(&outcomes) {
        if o.is_err() {
            c.forget();
        }
    }
    let begun: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok()?.0.clone())
        .collect();
    let withdrawn = withdraw(spares, &begun, &prefix);
    for outcome in outcomes {
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
    withdrawn?;
    conn.batch_execute(&restore).map_err(map)?;
    Ok(None)
}

/// How many prepared transactions are named with `prefix` (`None`: not known).
fn listed(spares: &mut Vec<Pooled>, prefix: &str) -> Option<usize> {
    let names = on_any(spares, &mut |c| named(c, prefix)).ok()?;
    Some(names.len())
}

/// The prepared transactions named with `prefix`.
fn named(c: &mut PgConnection, prefix: &str) -> Result<Vec<String>> {
    let names: Vec<OneText> =
        diesel::sql_query("SELECT gid AS t FROM pg_prepared_xacts WHERE starts_with(gid, $1)")
            .bind::<Text, _>(prefix)
            .load(c)
            .map_err(map)?;
    Ok(names.into_iter().map(|n| n.t).collect())
}

/// One part, in a transaction of its own, prepared as `gid`; rolled back on failure.
fn prepare<R: Record>(
    target: &Scoped<PgStore, R>,
    c: &mut Pooled,
    part: &[&(usize, R)],
    exists_ok: bool,
    gid: &str,
) -> Outcome {
    let pg: &mut PgConnection = c;
    let mut xid = None;
    let written = pg
        .batch_execute(&format!("BEGIN; SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        .map_err(map)
        .and_then(|()| {
            xid = Some(one_text(pg, "SELECT pg_current_xact_id()::text AS t")?);
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
    (xid, written)
}

/// After a part failed: every part of the call that is prepared on the server is rolled
/// back, by its name in `pg_prepared_xacts` (a part whose `PREPARE` completed while its
/// connection was lost is prepared too, though its caller saw an error). The parts'
/// transactions still open in a session (`begun`: their ids) are awaited first, ended if
/// they linger; then the parts of loads whose processes ended are finished
/// ([`resolve`](crate::prepared::resolve)), so that the call written again on the caller's
/// connection does not wait on their rows. Goes on past a failed step.
///
/// # Errors
/// The first step's error; [`Error::ConnectionLost`] when no connection was left.
fn withdraw(spares: Vec<Pooled>, begun: &[String], prefix: &str) -> Result<()> {
    let mut live: Vec<Pooled> = spares.into_iter().filter(|c| !c.gone).collect();
    let mut first = None;
    for xid in begun {
        if let Err(e) = on_any(&mut live, &mut |c| ended(c, xid)) {
            first.get_or_insert(e);
        }
    }
    match on_any(&mut live, &mut |c| named(c, prefix)) {
        Ok(names) => {
            for gid in names.iter().filter(|g| crate::prepared::is_name(g)) {
                let sql = format!("ROLLBACK PREPARED '{gid}'");
                if let Err(e) = on_any(&mut live, &mut |c| c.batch_execute(&sql).map_err(map)) {
                    first.get_or_insert(e);
                }
            }
        }
        Err(e) => {
            first.get_or_insert(e);
        }
    }
    if let Some(c) = live.first_mut() {
        let _ = crate::prepared::resolve(c);
    }
    first.map_or(Ok(()), Err)
}
