//! Parts of loads spread over several connections ([`crate::parallel`]) while they are
//! prepared: finished with their caller's transaction, or later by its outcome.

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Nullable, Text};
use diesel::{PgConnection, QueryableByName, RunQueryDsl};
use memgpt_core::{Error, Result};

use crate::error::map;
use crate::pool::Pooled;

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

thread_local! {
    /// The connections of this thread's load whose parts are prepared, until the caller's
    /// transaction ends ([`finish`]).
    static PENDING: std::cell::RefCell<Vec<Pooled>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps the connections of this thread's load, its parts prepared, until the caller's
/// transaction ends.
pub(crate) fn pend(spares: &mut Vec<Pooled>) {
    PENDING.with(|p| p.borrow_mut().append(spares));
}

/// After the caller's transaction ended (committed or not): the parts of this thread's
/// load, if any, committed or rolled back by its outcome ([`resolve`], on the first of
/// their connections that answers; the next `resolve` when none does).
pub(crate) fn finish() {
    let mut spares = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    for c in &mut spares {
        match resolve(c) {
            Ok(_) => return,
            Err(_) => c.forget(),
        }
    }
    if !spares.is_empty() {
        tracing::warn!(
            "a load's parts could not be finished now (their connections were lost); the \
             next store opened on this database finishes them"
        );
    }
}

/// Finishes the loads whose callers' transactions have ended: each prepared part is
/// committed when the transaction named in it committed, else rolled back; parts of a
/// transaction still in progress are left to it. Returns how many parts were finished.
///
/// # Errors
/// What the database reports when it cannot list them, or when the connection is lost; a
/// part another session finished meanwhile, or of another role's load, is passed over.
pub(crate) fn resolve(conn: &mut PgConnection) -> Result<usize> {
    let found: Vec<Prepared> = diesel::sql_query(
        "SELECT gid, pg_xact_status(split_part(gid, ':', 2)::xid8)::text AS status \
         FROM pg_prepared_xacts WHERE database = current_database() \
         AND gid ~ '^memgpt_load:[0-9]+:[0-9a-f]{32}:[0-9]+$'",
    )
    .load(conn)
    .map_err(map)?;
    let mut finished = 0;
    for p in found {
        let verb = match p.status.as_deref() {
            Some("in progress") => continue,
            Some("committed") => "COMMIT",
            _ => "ROLLBACK",
        };
        if !is_name(&p.gid) {
            continue;
        }
        match conn
            .batch_execute(&format!("{verb} PREPARED '{}'", p.gid))
            .map_err(map)
        {
            Ok(()) => finished += 1,
            Err(e @ Error::ConnectionLost { .. }) => return Err(e),
            Err(_) => {}
        }
    }
    Ok(finished)
}

/// Whether `gid` is a name this module gives (checked again before it is written into a
/// statement): the prefix, then digits, hex digits and colons only.
fn is_name(gid: &str) -> bool {
    gid.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'a'..='f' | ':'))
    })
}
