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
use diesel::sql_types::{Integer, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Record, Result, Scoped, TableType};
use uuid::Uuid;

use crate::error::map;
use crate::pool::Pooled;
use crate::prepared::{Pending, PREFIX};
use crate::store::PgStore;
use crate::{PgConfig, Pooler};

/// How long a part waits for a row another session holds before the load falls back to
/// the caller's connection (two loads of the same ids could otherwise wait on each other
/// through their callers, where the server sees no deadlock).
const LOCK_WAIT: &str = "1s";

/// How long a load waits for the session of a part whose connection was lost to end
/// before it ends it (and as long again after).
const LOST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    let mut parts: Vec<Vec<&(usize, R)>> = vec![Vec::new(); spares.len()];
    for one in all {
        parts[(one.1.id().as_u128() % spares.len() as u128) as usize].push(one);
    }
    // The caller's transaction waits, idle, for the parts; its id names them.
    conn.batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        .map_err(map)?;
    let xid = one_text(conn, "SELECT pg_current_xact_id()::text AS t")?;
    let prefix = format!("{PREFIX}{xid}:{}:", Uuid::new_v4().simple());
    let gids: Vec<String> = (0..parts.len()).map(|k| format!("{prefix}{k}")).collect();
    let pids = spares
        .iter_mut()
        .map(|c| one_text(c, "SELECT pg_backend_pid()::text AS t"))
        .collect::<Result<Vec<String>>>()?;
    let outcomes: Vec<std::thread::Result<Result<u64>>> = std::thread::scope(|s| {
        let running: Vec<_> = spares
            .iter_mut()
            .zip(&parts)
            .zip(&gids)
            .map(|((c, part), gid)| s.spawn(move || prepare(target, c, part, exists_ok, gid)))
            .collect();
        running.into_iter().map(|h| h.join()).collect()
    });
    if outcomes.iter().all(|o| matches!(o, Ok(Ok(_)))) {
        let rows = outcomes.into_iter().filter_map(|o| o.ok()?.ok()).sum();
        crate::prepared::pend(Pending { spares, xid, gids });
        return Ok(Some(rows));
    }
    // A part that panicked left its connection in its transaction: closed, not reused.
    for (c, o) in spares.iter_mut().zip(&outcomes) {
        if o.is_err() {
            c.forget();
        }
    }
    let withdrawn = withdraw(spares, &pids, &prefix);
    for outcome in outcomes {
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
    withdrawn.map(|()| None)
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

/// After a part failed: every part of the call that is prepared on the server is rolled
/// back, by its name in `pg_prepared_xacts` (a part whose `PREPARE` completed while its
/// connection was lost is prepared too, though its caller saw an error). The lost parts'
/// sessions (`pids`) are closed and awaited first; then the parts of loads whose processes
/// ended are finished ([`resolve`](crate::prepared::resolve)), so that the call written
/// again on the caller's connection does not wait on their rows.
///
/// # Errors
/// [`Error::ConnectionLost`] when no connection was left to do it on.
fn withdraw(mut spares: Vec<Pooled>, pids: &[String], prefix: &str) -> Result<()> {
    let (lost, mut live): (Vec<usize>, Vec<Pooled>) = (
        (0..spares.len()).filter(|&k| spares[k].gone).collect(),
        Vec::new(),
    );
    for c in spares.drain(..) {
        if !c.gone {
            live.push(c);
        }
    }
    let Some(c) = live.first_mut() else {
        return Err(Error::ConnectionLost {
            message: "a load spread over several connections lost them all; its parts are \
                      rolled back by the next store opened on this database"
                .to_owned(),
        });
    };
    for &k in &lost {
        ended(c, &pids[k])?;
    }
    let names: Vec<Text1> =
        diesel::sql_query("SELECT gid AS t FROM pg_prepared_xacts WHERE starts_with(gid, $1)")
            .bind::<Text, _>(prefix)
            .load(&mut ***c)
            .map_err(map)?;
    for gid in names.iter().map(|n| &n.t) {
        if crate::prepared::is_name(gid) {
            c.batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
                .map_err(map)?;
        }
    }
    let _ = crate::prepared::resolve(c);
    Ok(())
}

/// Waits until the session `pid` has ended ([`LOST_WAIT`]), ending it if it has not.
fn ended(c: &mut PgConnection, pid: &str) -> Result<()> {
    let sql = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1::int";
    let mut terminated = false;
    let start = std::time::Instant::now();
    loop {
        let n: Vec<Allowed> = diesel::sql_query(sql)
            .bind::<Text, _>(pid)
            .load(c)
            .map_err(map)?;
        if n.first().is_none_or(|n| n.n == 0) {
            return Ok(());
        }
        if !terminated && start.elapsed() > LOST_WAIT {
            diesel::sql_query("SELECT pg_terminate_backend($1::int)::int AS n")
                .bind::<Text, _>(pid)
                .load::<Allowed>(c)
                .map_err(map)?;
            terminated = true;
        } else if start.elapsed() > LOST_WAIT * 2 {
            return Err(Error::Timeout {
                message: format!("the session {pid} of a lost part did not end"),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The first row's text of `sql` (one column named `t`).
fn one_text(c: &mut PgConnection, sql: &str) -> Result<String> {
    let found: Vec<Text1> = diesel::sql_query(sql).load(c).map_err(map)?;
    found
        .into_iter()
        .next()
        .map(|t| t.t)
        .ok_or_else(|| Error::Database {
            message: format!("no row from {sql}"),
        })
}
