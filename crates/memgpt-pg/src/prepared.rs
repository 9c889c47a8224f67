//! Parts of loads spread over several connections ([`crate::parallel`]) while they are
//! prepared: finished with their caller's transaction, or later by its outcome.

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Integer, Nullable, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Result};

use crate::error::map;
use crate::pool::{Lease, Pooled};

/// The prefix of every prepared part's name: `memgpt_load:<xid>:<call>:<part>`, `<xid>`
/// the caller's transaction.
pub(crate) const PREFIX: &str = "memgpt_load:";

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = Text)]
    gid: String,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
}

#[derive(QueryableByName)]
struct Status {
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<String>,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Integer)]
    n: i32,
}

/// A load whose parts are prepared, until its caller's transaction ends.
pub(crate) struct Pending {
    /// The parts' connections.
    pub(crate) spares: Vec<Pooled>,
    /// The caller's transaction.
    pub(crate) xid: String,
    /// The parts' names.
    pub(crate) gids: Vec<String>,
}

thread_local! {
    /// This thread's load whose parts are prepared, until the caller's transaction ends
    /// ([`finish`]).
    static PENDING: std::cell::RefCell<Option<Pending>> = const { std::cell::RefCell::new(None) };
}

/// Keeps `pending` until the caller's transaction ends.
pub(crate) fn pend(pending: Pending) {
    PENDING.with(|p| *p.borrow_mut() = Some(pending));
}

/// How the caller's transaction ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome {
    /// Its `COMMIT` was acknowledged.
    Committed,
    /// It was rolled back (or its `COMMIT` refused).
    RolledBack,
    /// Not known here (the connection was lost at `COMMIT`): the server says
    /// (`pg_xact_status`).
    Unknown,
    /// A panic unwinds past it: committed if the server says so, else it never will be
    /// (its `COMMIT` was not sent; the connection is rolled back or closed).
    Unwinding,
}

/// After the caller's transaction ended: the parts of this thread's load, if any,
/// committed or rolled back with it, on their connections, else on `another` (a
/// connection of the pool).
///
/// # Errors
/// [`Error::ConnectionLost`] when they could not all be finished now (after a commit, the
/// load's rows are not all visible until they are): the next [`resolve`] — a store opened
/// on the database, or another spread load — finishes them.
pub(crate) fn finish(outcome: Outcome, another: impl FnOnce() -> Result<Lease>) -> Result<()> {
    let Some(mut p) = PENDING.with(|p| p.borrow_mut().take()) else {
        return Ok(());
    };
    let mut on = On {
        spares: &mut p.spares,
        another: Some(Box::new(another)),
        lease: None,
    };
    let verb = match outcome {
        Outcome::Committed => "COMMIT",
        Outcome::RolledBack => "ROLLBACK",
        Outcome::Unknown | Outcome::Unwinding => {
            match (on.run(&mut |c| xact_status(c, &p.xid))?.as_deref(), outcome) {
                (Some("committed"), _) => "COMMIT",
                (Some("aborted"), _) | (_, Outcome::Unwinding) => "ROLLBACK",
                _ => return Err(unfinished()),
            }
        }
    };
    for gid in &p.gids {
        on.run(&mut |c| end(c, verb, gid))?;
    }
    Ok(())
}

/// Finishes this thread's load, if any, by the server's word on its caller's transaction
/// when a panic unwinds past that transaction (dropped then).
pub(crate) struct OnUnwind;

impl Drop for OnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = finish(Outcome::Unwinding, || Err(unfinished()));
        }
    }
}

/// The connections a load's parts are finished on: its spares, then one of the pool.
struct On<'a> {
    spares: &'a mut [Pooled],
    another: Option<Box<dyn FnOnce() -> Result<Lease> + 'a>>,
    lease: Option<Lease>,
}

impl On<'_> {
    /// `f` on the first connection that answers (one lost is closed when it goes back).
    fn run<T>(&mut self, f: &mut dyn FnMut(&mut PgConnection) -> Result<T>) -> Result<T> {
        for c in self.spares.iter_mut().filter(|c| !c.gone) {
            match f(c) {
                Err(Error::ConnectionLost { .. }) => c.forget(),
                done => return done,
            }
        }
        if self.lease.is_none() {
            let another = self.another.take().ok_or_else(unfinished)?;
            self.lease = Some(another().map_err(|_| unfinished())?);
        }
        match self.lease.as_mut() {
            Some(lease) => f(lease).map_err(|_| unfinished()),
            None => Err(unfinished()),
        }
    }
}

fn unfinished() -> Error {
    Error::ConnectionLost {
        message: "a load spread over several connections could not finish its prepared \
                  parts (its connections were lost, or its transaction's outcome is not \
                  known yet); the next store opened on this database finishes them"
            .to_owned(),
    }
}

/// `pg_xact_status` of transaction `xid`.
fn xact_status(c: &mut PgConnection, xid: &str) -> Result<Option<String>> {
    let found: Vec<Status> = diesel::sql_query("SELECT pg_xact_status($1::xid8)::text AS status")
        .bind::<Text, _>(xid)
        .load(c)
        .map_err(map)?;
    Ok(found.into_iter().next().and_then(|s| s.status))
}

/// `COMMIT PREPARED` or `ROLLBACK PREPARED` of `gid`; done too when another session
/// finished it first.
fn end(c: &mut PgConnection, verb: &str, gid: &str) -> Result<()> {
    if !is_name(gid) {
        return Ok(());
    }
    match c
        .batch_execute(&format!("{verb} PREPARED '{gid}'"))
        .map_err(map)
    {
        Err(e @ Error::ConnectionLost { .. }) => Err(e),
        Err(e) => {
            let left: Vec<Found> = diesel::sql_query(
                "SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid = $1",
            )
            .bind::<Text, _>(gid)
            .load(c)
            .map_err(map)?;
            match left.first() {
                Some(f) if f.n == 0 => Ok(()),
                _ => Err(e),
            }
        }
        done => done,
    }
}

/// Finishes the loads whose callers' transactions have ended: each prepared part (of
/// this role) is committed when the transaction named in it committed, rolled back when it
/// aborted; parts of a transaction still in progress (or one the server no longer
/// knows) are left. Returns how many parts were finished; nothing before PostgreSQL 13.
///
/// # Errors
/// What the database reports when it cannot list them, or when the connection is lost; a
/// part another session finished meanwhile is passed over.
pub(crate) fn resolve(conn: &mut PgConnection) -> Result<usize> {
    let version: Vec<Found> =
        diesel::sql_query("SELECT current_setting('server_version_num')::int AS n")
            .load(conn)
            .map_err(map)?;
    if version.first().is_none_or(|v| v.n < 130_000) {
        return Ok(0);
    }
    let found: Vec<Prepared> = diesel::sql_query(
        "SELECT gid, CASE WHEN split_part(gid, ':', 2)::numeric \
         < pg_snapshot_xmax(pg_current_snapshot())::text::numeric \
         THEN pg_xact_status(split_part(gid, ':', 2)::xid8)::text END AS status \
         FROM pg_prepared_xacts WHERE database = current_database() AND owner = current_user \
         AND gid ~ '^memgpt_load:[0-9]{1,19}:[0-9a-f]{32}:[0-9]+$'",
    )
    .load(conn)
    .map_err(map)?;
    let mut finished = 0;
    for p in found {
        let verb = match p.status.as_deref() {
            Some("committed") => "COMMIT",
            Some("aborted") => "ROLLBACK",
            _ => continue,
        };
        match end(conn, verb, &p.gid) {
            Ok(()) => finished += 1,
            Err(e @ Error::ConnectionLost { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(finished)
}

/// Whether `gid` is a name this module gives (checked again before it is written into a
/// statement): the prefix, then digits, hex digits and colons only.
pub(crate) fn is_name(gid: &str) -> bool {
    gid.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'a'..='f' | ':'))
    })
}
