//! Connections out of the pool: how long a caller waits, and a connection pinged before a
//! unit of work uses it.

use std::time::{Duration, Instant};

use memgpt_core::{Error, PoolState, Result};

use super::PgStore;
use crate::error::map;
use crate::pool::{Lease, Pooled};
use crate::refusal::unreachable;

impl PgStore {
    /// A connection pinged even within the pre-ping bypass (for a unit of work, which cannot
    /// run again); one found gone is closed and another taken, the waits for them within
    /// one pool timeout. The lease remembers its caller.
    #[track_caller]
    pub(crate) fn checkout(&self) -> Result<Lease> {
        self.checkout_from(Instant::now(), None)
    }

    /// [`checkout`](Self::checkout) for a caller that began to wait at `start`, having
    /// found a connection gone already when `lost` is set: a call run again waits within
    /// what is left of its first checkout's pool timeout. When the wait ends with room in
    /// the pool after a connection was found gone, the loss is the error: the connections
    /// were not all busy, they were gone (or none could be opened in time). At most the
    /// pool's size and one more connections are tried: the loss of the last is the error.
    #[track_caller]
    pub(crate) fn checkout_from(&self, start: Instant, mut lost: Option<Error>) -> Result<Lease> {
        let site = std::panic::Location::caller();
        let mut tries = self.inner.pool.max_size();
        loop {
            let mut lease = match (self.checkout_since(start, false, site), lost) {
                (Ok(lease), _) => lease,
                (Err(Error::PoolTimeout { state, .. }), Some(loss))
                    if state.connections < state.max =>
                {
                    return Err(loss)
                }
                (Err(e), _) => return Err(e),
            };
            match lease.conn.check_unchecked() {
                Ok(()) => return Ok(lease),
                Err(e) if tries == 0 => return Err(map(e)),
                Err(e) => (lost, tries) = (Some(map(e)), tries - 1),
            }
        }
    }

    /// A connection within the pool timeout; with `at_open`, in short waits that return the
    /// first connection error r2d2 reports (it appends the last one to each timeout)
    /// rather than waiting the whole pool timeout for a server that refuses every
    /// connection.
    pub(crate) fn checkout_with(
        &self,
        at_open: bool,
        site: &'static std::panic::Location<'static>,
    ) -> Result<Lease> {
        self.checkout_since(Instant::now(), at_open, site)
    }

    /// [`checkout_with`](Self::checkout_with) for a caller that began to wait at `start`:
    /// the pool timeout counts from there.
    pub(crate) fn checkout_since(
        &self,
        start: Instant,
        at_open: bool,
        site: &'static std::panic::Location<'static>,
    ) -> Result<Lease> {
        let timeout = self.inner.config.pool_timeout;
        let conn = memgpt_core::trace::checkout("postgres", || loop {
            let left = timeout.saturating_sub(start.elapsed());
            let wait = if at_open {
                FIRST_CHECKOUT_WAIT.min(left)
            } else {
                left
            };
            let e = match self.inner.pool.get_timeout(wait) {
                Ok(conn) => return Ok(conn),
                Err(e) => e,
            };
            let waited = start.elapsed().max(Duration::from_millis(1));
            let message = e.to_string();
            // r2d2 appends the last connection error, if any, to its timeout message: then
            // the server could not be reached, rather than every connection being busy.
            if let Some((_, cause)) = message.split_once(": ") {
                return Err(unreachable(
                    &format!("no connection within {waited:?}"),
                    cause,
                    &self.inner.secrets,
                ));
            }
            if waited >= timeout {
                let state = self.inner.pool.state();
                return Err(Error::PoolTimeout {
                    waited,
                    state: PoolState::new(
                        state.connections,
                        state.idle_connections,
                        self.inner.pool.max_size(),
                    ),
                });
            }
        })?;
        Ok(self.lease(conn, site, start))
    }

    pub(super) fn lease(
        &self,
        conn: Pooled,
        site: &'static std::panic::Location<'static>,
        start: Instant,
    ) -> Lease {
        Lease {
            conn,
            taken: Instant::now(),
            waited: start.elapsed(),
            site,
            threshold: self.inner.config.leak_threshold,
            counters: self.inner.counters.clone(),
        }
    }
}

impl PgStore {
    /// A connection for one part of a load spread over several ([`crate::parallel`]):
    /// one idle or opened within [`SPARE_WAIT`], pinged when handed out unchecked; `None`
    /// otherwise (the load then uses fewer, or the caller's alone).
    pub(crate) fn spare(&self) -> Option<Pooled> {
        let mut conn = self.inner.pool.get_timeout(SPARE_WAIT).ok()?;
        conn.check_unchecked().ok()?;
        Some(conn)
    }
}

/// How long a load waits for each connection beyond the caller's.
const SPARE_WAIT: Duration = Duration::from_millis(200);

/// How long the open's first checkout waits at a time for r2d2 to report a connection.
const FIRST_CHECKOUT_WAIT: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests;
