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
    /// run again); one found gone is closed and another taken, all within one pool
    /// timeout. The lease remembers its caller.
    #[track_caller]
    pub(crate) fn checkout(&self) -> Result<Lease> {
        let site = std::panic::Location::caller();
        let start = Instant::now();
        let mut lost = diesel::result::Error::NotFound;
        for _ in 0..=self.inner.pool.max_size() {
            let mut lease = self.checkout_since(start, false, site)?;
            match lease.conn.check_unchecked() {
                Ok(()) => return Ok(lease),
                Err(e) => lost = e,
            }
        }
        Err(map(lost))
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
    fn checkout_since(
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
        Ok(self.lease(conn, site))
    }

    pub(super) fn lease(
        &self,
        conn: Pooled,
        site: &'static std::panic::Location<'static>,
    ) -> Lease {
        Lease {
            conn,
            taken: Instant::now(),
            site,
            threshold: self.inner.config.leak_threshold,
            counters: self.inner.counters.clone(),
        }
    }
}

/// How long the open's first checkout waits at a time for r2d2 to report a connection.
const FIRST_CHECKOUT_WAIT: Duration = Duration::from_millis(250);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use diesel::{Connection, PgConnection, RunQueryDsl};
    use memgpt_testing::{TempDatabase, VECTOR_SERVER};

    use crate::{PgConfig, PgStore};
    use memgpt_core::DatabaseUrl;

    /// The one statement's answer of the tests below.
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }

    /// A caller's wait for a connection is bounded by the pool timeout, however many of
    /// the connections it is handed are found gone. On a pool of one (timeout 2 s), the
    /// caller waits 1.5 s for the held connection (the time it spends is the scenario, not
    /// a synchronisation); that connection comes back ended by the server, and no new one
    /// can be opened (the database closed to connections): the caller gets its error
    /// within the 2 s (plus a margin), not 1.5 s + a fresh 2 s.
    #[test]
    fn connections_found_gone_do_not_restart_the_pool_timeout() {
        let db = TempDatabase::create(VECTOR_SERVER).unwrap();
        let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
        (config.pool_size, config.max_overflow) = (1, 0);
        config.pool_timeout = Duration::from_secs(2);
        // Every connection in the bypass: r2d2 hands it over unpinged, the checkout pings.
        config.pre_ping_bypass = Duration::from_secs(600);
        let store = PgStore::open(config).unwrap();
        let mut held = store.checkout().unwrap();
        let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(&mut *held)
            .unwrap()
            .pid;
        let server = std::env::var(VECTOR_SERVER).unwrap();
        let mut admin = PgConnection::establish(&server).unwrap();
        let allow = |on: bool| format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {on}", db.name());
        let waited = std::thread::scope(|s| {
            let caller = s.spawn(|| {
                let start = Instant::now();
                let got = store.checkout().map(drop);
                (start.elapsed(), got)
            });
            while store.metrics().waiting == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(1500));
            diesel::sql_query(allow(false)).execute(&mut admin).unwrap();
            diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
                .execute(&mut admin)
                .unwrap();
            let gone = format!("SELECT pid FROM pg_stat_activity WHERE pid = {pid}");
            while !diesel::sql_query(&gone)
                .load::<Pid>(&mut admin)
                .unwrap()
                .is_empty()
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(held);
            caller.join().unwrap()
        });
        diesel::sql_query(allow(true)).execute(&mut admin).unwrap();
        let (elapsed, got) = waited;
        assert!(
            matches!(got, Err(memgpt_core::Error::ConnectionLost { .. })),
            "{got:?}"
        );
        assert!(elapsed < Duration::from_millis(2_750), "waited {elapsed:?}");
    }
}
