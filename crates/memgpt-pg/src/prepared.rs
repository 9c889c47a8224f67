//! Parts of loads spread over several connections ([`crate::parallel`]) while they are
//! prepared: finished with their caller's transaction, or later by its outcome.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Integer, Nullable, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Result};

use crate::error::map;
use crate::pool::{Lease, Pooled};

/// The prefix of every prepared part's name: `memgpt_load:<xid>:<call>:<part>`, `<xid>`
/// the caller's transaction.
pub(crate) const PREFIX: &str = "memgpt_load:";

/// How long a transaction still open in a lost session is waited for before its session
/// is ended (and as long again after).
const LOST_WAIT: Duration = Duration::from_secs(5);

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

/// One integer column `n`.
#[derive(QueryableByName)]
pub(crate) struct Found {
    #[diesel(sql_type = Integer)]
    pub(crate) n: i32,
}

/// One text column `t`.
#[derive(QueryableByName)]
pub(crate) struct OneText {
    #[diesel(sql_type = Text)]
    pub(crate) t: String,
}

/// A prepared part: its name, and its own transaction's id when known.
pub(crate) struct Part {
    gid: String,
    xid: Option<String>,
}

impl Part {
    pub(crate) fn new(gid: String, xid: Option<String>) -> Self {
        Part { gid, xid }
    }
}

/// A load whose parts are prepared, until its caller's transaction ends.
pub(crate) struct Pending {
    spares: Vec<Pooled>,
    /// The caller's transaction.
    xid: String,
    parts: Vec<Part>,
}

impl Pending {
    pub(crate) fn new(spares: Vec<Pooled>, xid: String, parts: Vec<Part>) -> Self {
        Pending { spares, xid, parts }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Its `COMMIT` was acknowledged.
    Committed,
    /// It was rolled back (or its `COMMIT` refused).
    RolledBack,
    /// Not known here (the connection was lost at `COMMIT`): the server says
    /// (`pg_xact_status`), once no session is in it.
    Unknown,
    /// A panic unwinds past it: committed if the server says so, else it never will be
    /// (its `COMMIT` was not sent; the connection is closed).
    Unwinding,
}

/// After the caller's transaction ended: the parts of this thread's load, if any,
/// committed or rolled back with it, by name, on their connections, else on `another` (a
/// connection of the pool). A panic meanwhile leaves the parts not yet finished pending.
///
/// # Errors
/// [`Error::ConnectionLost`] when they could not all be finished now (after a commit, the
/// load's rows are not all visible until they are): the next [`resolve`] — a store opened
/// on the database, or a load that falls back — finishes them; what the database reports
/// when another session finished a part the other way.
pub(crate) fn finish(outcome: Outcome, another: impl FnOnce() -> Result<Lease>) -> Result<()> {
    let Some(mut p) = PENDING.with(|p| p.borrow_mut().take()) else {
        return Ok(());
    };
    let mut done = 0;
    let mut on = On {
        spares: &mut p.spares,
        another: Some(Box::new(another)),
        lease: None,
    };
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<()> {
        let verb = verb(&mut on, outcome, &p.xid)?;
        let mut first = None;
        for part in &p.parts {
            if let Err(e) = on.run(&mut |c| end(c, verb, part)) {
                first.get_or_insert(e);
            }
            done += 1;
        }
        first.map_or(Ok(()), Err)
    }));
    drop(on);
    match result {
        Ok(finished) => finished,
        Err(panic) => {
            p.parts.drain(..done);
            pend(p);
            resume_unwind(panic)
        }
    }
}

/// `COMMIT` or `ROLLBACK`: the parts' end by the caller's outcome, asked of the server
/// when it is not known here.
fn verb(on: &mut On<'_>, outcome: Outcome, xid: &str) -> Result<&'static str> {
    match outcome {
        Outcome::Committed => return Ok("COMMIT"),
        Outcome::RolledBack => return Ok("ROLLBACK"),
        Outcome::Unknown | Outcome::Unwinding => {}
    }
    let mut status = on.run(&mut |c| xact_status(c, xid))?;
    if status.as_deref() == Some("in progress") && outcome == Outcome::Unknown {
        // The caller's session may live on past its lost connection: ended, then asked.
        on.run(&mut |c| ended(c, xid))?;
        status = on.run(&mut |c| xact_status(c, xid))?;
    }
    match (status.as_deref(), outcome) {
        (Some("committed"), _) => Ok("COMMIT"),
        (Some("aborted"), _) | (_, Outcome::Unwinding) => Ok("ROLLBACK"),
        _ => Err(unfinished()),
    }
}

/// Finishes this thread's load, if any, by the server's word on its caller's transaction
/// when a panic unwinds past that transaction (dropped then); a panic within is caught.
pub(crate) struct OnUnwind;

impl Drop for OnUnwind {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = catch_unwind(|| finish(Outcome::Unwinding, || Err(unfinished())));
        }
    }
}

/// The connections a load's parts are finished on: its spares, then one of the pool.
struct On<'a> {
    spares: &'a mut Vec<Pooled>,
    another: Option<Box<dyn FnOnce() -> Result<Lease> + 'a>>,
    lease: Option<Lease>,
}

impl On<'_> {
    /// `f` on the first connection that answers.
    fn run<T>(&mut self, f: &mut dyn FnMut(&mut PgConnection) -> Result<T>) -> Result<T> {
        if !self.spares.is_empty() {
            match on_any(self.spares, f) {
                Err(Error::ConnectionLost { .. }) => {}
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

/// `f` on the first of `conns` that answers; those lost (or given up before) are closed
/// and removed.
///
/// # Errors
/// `f`'s error other than a lost connection; [`Error::ConnectionLost`] when none answers.
pub(crate) fn on_any<T>(
    conns: &mut Vec<Pooled>,
    f: &mut dyn FnMut(&mut PgConnection) -> Result<T>,
) -> Result<T> {
    conns.retain(|c| !c.gone);
    while let Some(c) = conns.first_mut() {
        match f(c) {
            Err(Error::ConnectionLost { .. }) => {
                c.forget();
                conns.remove(0);
            }
            done => return done,
        }
    }
    Err(unfinished())
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

/// `COMMIT PREPARED` or `ROLLBACK PREPARED` of `part`. When it fails, another session may
/// be finishing the part (PostgreSQL: "is busy") or have finished it: once it is no longer
/// listed, the part's own transaction says whether it ended as `verb` would have.
fn end(c: &mut PgConnection, verb: &str, part: &Part) -> Result<()> {
    if !is_name(&part.gid) {
        return Ok(());
    }
    let e = match c
        .batch_execute(&format!("{verb} PREPARED '{}'", part.gid))
        .map_err(map)
    {
        Err(e @ Error::ConnectionLost { .. }) => return Err(e),
        Err(e) => e,
        done => return done,
    };
    let start = Instant::now();
    loop {
        let left: Vec<Found> =
            diesel::sql_query("SELECT count(*)::int AS n FROM pg_prepared_xacts WHERE gid = $1")
                .bind::<Text, _>(&part.gid)
                .load(c)
                .map_err(map)?;
        if left.first().is_some_and(|f| f.n == 0) {
            break;
        }
        if start.elapsed() > LOST_WAIT {
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(xid) = &part.xid else { return Ok(()) };
    let want = if verb == "COMMIT" {
        "committed"
    } else {
        "aborted"
    };
    match xact_status(c, xid)? {
        Some(s) if s == want => Ok(()),
        found => Err(Error::Database {
            message: format!(
                "a part of a load spread over several connections ({}) was to be {want} \
                 but another session left it {}",
                part.gid,
                found.as_deref().unwrap_or("unknown")
            ),
        }),
    }
}

/// Waits until no session is in transaction `xid` ([`LOST_WAIT`]), ending those that
/// still are (only that transaction's: a session a pooler gave another client since is
/// in another), and as long again.
///
/// # Errors
/// [`Error::Timeout`] when one still is; what the database reports.
pub(crate) fn ended(c: &mut PgConnection, xid: &str) -> Result<()> {
    let start = Instant::now();
    let mut terminated = false;
    loop {
        let n: Vec<Found> = diesel::sql_query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_xid = $1::xid8::xid",
        )
        .bind::<Text, _>(xid)
        .load(c)
        .map_err(map)?;
        if n.first().is_none_or(|n| n.n == 0) {
            return Ok(());
        }
        if !terminated && start.elapsed() > LOST_WAIT {
            diesel::sql_query(
                "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity \
                 WHERE backend_xid = $1::xid8::xid",
            )
            .bind::<Text, _>(xid)
            .load::<Found>(c)
            .map_err(map)?;
            terminated = true;
        } else if start.elapsed() > LOST_WAIT * 2 {
            return Err(Error::Timeout {
                message: format!("the session in transaction {xid} did not end"),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first row's text of `sql` (one column named `t`).
///
/// # Errors
/// What the database reports; [`Error::Database`] when there is no row.
pub(crate) fn one_text(c: &mut PgConnection, sql: &str) -> Result<String> {
    let found: Vec<OneText> = diesel::sql_query(sql).load(c).map_err(map)?;
    found
        .into_iter()
        .next()
        .map(|t| t.t)
        .ok_or_else(|| Error::Database {
            message: format!("no row from {sql}"),
        })
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
        match end(conn, verb, &Part::new(p.gid, None)) {
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
