//! WAL positions: the primary's, read on a monitoring connection of its own ([`Monitor`]),
//! and a read-your-writes session's ([`SessionPosition`]), which a replica must have
//! replayed before it serves the session's reads.

use std::sync::{Mutex, PoisonError, TryLockError};

use diesel::sql_types::Text;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

/// A connection to the primary of its own, outside the pool, for the primary's WAL
/// positions: the lag samples and the positions of read-your-writes sessions are read
/// even when every connection of the pool is busy. Opened on first use, reopened after
/// an error; one per store with replicas.
pub(crate) struct Monitor {
    conninfo: String,
    conn: Mutex<Option<PgConnection>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string holds the password.
        f.debug_struct("Monitor").finish_non_exhaustive()
    }
}

/// Which WAL position of the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wal {
    /// `pg_current_wal_lsn()`: written out of the WAL buffers. What the lag is measured
    /// against; under `synchronous_commit = off` it may lie before a commit that returned.
    Written,
    /// `pg_current_wal_insert_lsn()`: where the next record goes. Read after a commit has
    /// returned, it is past that commit's record whatever `synchronous_commit` says — the
    /// position a read-your-writes session waits for.
    Inserted,
}

impl Wal {
    fn sql(self) -> &'static str {
        match self {
            Wal::Written => "SELECT pg_current_wal_lsn()::text AS lsn",
            Wal::Inserted => "SELECT pg_current_wal_insert_lsn()::text AS lsn",
        }
    }
}

#[derive(QueryableByName)]
struct WalPosition {
    #[diesel(sql_type = Text)]
    lsn: String,
}

/// The primary's WAL position `which`, read on `conn` (a connection of the primary);
/// `None` when it cannot be read.
pub(crate) fn position(conn: &mut PgConnection, which: Wal) -> Option<u64> {
    diesel::sql_query(which.sql())
        .load::<WalPosition>(conn)
        .ok()?
        .into_iter()
        .next()
        .and_then(|p| parse_lsn(&p.lsn))
}

impl Monitor {
    /// The monitor of the primary whose connection string is `conninfo`; connects on
    /// first use.
    pub(crate) fn new(conninfo: String) -> Self {
        Monitor {
            conninfo,
            conn: Mutex::new(None),
        }
    }

    /// Reads the primary's position `which`. With `wait`, waits while another thread uses
    /// the connection (one round trip); without, gives up at once. `None` when the
    /// primary cannot be reached or answer.
    pub(crate) fn read(&self, which: Wal, wait: bool) -> Option<u64> {
        let mut guard = if wait {
            self.conn.lock().unwrap_or_else(PoisonError::into_inner)
        } else {
            match self.conn.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return None,
            }
        };
        if guard.is_none() {
            *guard = PgConnection::establish(&self.conninfo).ok();
        }
        let read = position(guard.as_mut()?, which);
        if read.is_none() {
            // A broken connection is replaced on the next read.
            *guard = None;
        }
        read
    }
}

/// A read-your-writes session's position on the primary: the highest of its start and of
/// its writes' ([`Wal::Inserted`] after each commit). Threads sharing a session note
/// their writes in any order; the position only moves forward. A write whose position
/// could not be read leaves the session *unknown* until a position read after it (any
/// later read of the primary's) covers it: until then the primary serves its reads.
#[derive(Debug, Default)]
pub(crate) struct SessionPosition {
    state: Mutex<SessionState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct SessionState {
    /// The highest position noted.
    at: u64,
    /// Writes noted without a position, counted.
    unknown: u64,
    /// How many of those a later position covers.
    covered: u64,
}

/// What a replica must have replayed to serve a session's read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Required {
    /// This position.
    At(u64),
    /// Unknown: a position of the primary read from now on covers the writes counted up
    /// to this ticket ([`SessionPosition::resolve`]).
    Unknown(u64),
}

impl SessionPosition {
    fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        // Plain numbers, consistent at every step: a panic elsewhere cannot break them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A write (or the start) at `lsn`: the position becomes the higher of the two.
    pub(crate) fn note(&self, lsn: u64) {
        let mut s = self.state();
        s.at = s.at.max(lsn);
    }

    /// A committed write whose position could not be read.
    pub(crate) fn note_unknown(&self) {
        self.state().unknown += 1;
    }

    /// What a replica must have replayed to serve a read now.
    pub(crate) fn required(&self) -> Required {
        let s = self.state();
        if s.unknown > s.covered {
            Required::Unknown(s.unknown)
        } else {
            Required::At(s.at)
        }
    }

    /// `lsn`, read on the primary after [`required`](Self::required) gave `ticket`: it is
    /// past every write counted up to the ticket. Returns what is required now.
    pub(crate) fn resolve(&self, ticket: u64, lsn: u64) -> Required {
        {
            let mut s = self.state();
            s.at = s.at.max(lsn);
            s.covered = s.covered.max(ticket);
        }
        self.required()
    }
}

/// A WAL position (`16/B374D848`) as a number.
pub(crate) fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::{parse_lsn, Required, SessionPosition};

    /// Threads sharing a session note their writes in any order: a write noted late with
    /// an older position never takes the session back (it had stored the last position,
    /// not the highest).
    #[test]
    fn a_session_position_only_moves_forward() {
        let s = SessionPosition::default();
        assert_eq!(s.required(), Required::At(0));
        s.note(0x300);
        s.note(0x100);
        assert_eq!(s.required(), Required::At(0x300));
        s.note(0x400);
        assert_eq!(s.required(), Required::At(0x400));
    }

    /// A write whose position could not be read leaves the session unknown until a
    /// position read after it covers it; a write noted unknown meanwhile is not covered by
    /// a position read for an earlier ticket.
    #[test]
    fn an_unknown_write_is_covered_only_by_a_later_position() {
        let s = SessionPosition::default();
        s.note(0x100);
        s.note_unknown();
        let Required::Unknown(first) = s.required() else {
            panic!("{:?}", s.required());
        };
        // Another write of unknown position after the ticket was taken.
        s.note_unknown();
        assert!(matches!(s.resolve(first, 0x200), Required::Unknown(t) if t > first));
        let Required::Unknown(second) = s.required() else {
            panic!("{:?}", s.required());
        };
        assert_eq!(s.resolve(second, 0x180), Required::At(0x200));
        s.note(0x150);
        assert_eq!(s.required(), Required::At(0x200));
    }

    #[test]
    fn wal_positions_parse_and_order() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some((0x16 << 32) | 0xB374_D848));
        assert!(parse_lsn("1/0") > parse_lsn("0/FFFFFFFF"));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        assert_eq!(parse_lsn("nonsense"), None);
    }
}
