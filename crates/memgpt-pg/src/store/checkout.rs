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
        self.checkout_from(Instant::now())
    }

    /// [`checkout`](Self::checkout) for a caller that began to wait at `start`: a call run
    /// again after its connection was found gone waits within the same pool timeout. Past
    /// it, after a connection was found gone, the loss is the error (not a pool timeout:
    /// the connections were not all busy, they were gone).
    #[track_caller]
    pub(crate) fn checkout_from(&self, start: Instant) -> Result<Lease> {
        let site = std::panic::Location::caller();
        let mut lost = None;
        for _ in 0..=self.inner.pool.max_size() {
            let mut lease = match self.checkout_since(start, false, site) {
                Ok(lease) => lease,
                Err(e @ Error::PoolTimeout { .. }) => return Err(lost.map_or(e, map)),
                Err(e) => return Err(e),
            };
            match lease.conn.check_unchecked() {
                Ok(()) => return Ok(lease),
                Err(e) => lost = Some(e),
            }
        }
        Err(lost.map_or_else(|| map(diesel::result::Error::NotFound), map))
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
        waited_from: Instant,
    ) -> Lease {
        Lease {
            conn,
            taken: Instant::now(),
            waited_from,
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

    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection, RunQueryDsl};
    use memgpt_core::{
        DatabaseUrl, Error, Message, Result, Role, Scope, StorageConnector, TableType,
    };
    use memgpt_testing::{TempDatabase, VECTOR_SERVER};
    use uuid::Uuid;

    use crate::{PgConfig, PgStore};

    /// The one column of the statements below.
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }

    /// Polls `done` every 5 ms for at most 30 s.
    fn until(mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "not within 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// On a pool of one (timeout 2 s; every connection within the pre-ping bypass, so the
    /// pool hands it over unpinged), the only connection is held while the server ends its
    /// session and the database is closed to new connections — or, with `slow_logins`,
    /// each new session takes a second to log in. `call` waits 1.5 s for it (the time it
    /// spends is the scenario, not a synchronisation), gets it back gone, and cannot open
    /// another in time: it fails with the loss within the 2 s (plus a margin), not after
    /// 1.5 s and a fresh 2 s, and not as a pool timeout.
    fn waits_within_one_pool_timeout(
        slow_logins: bool,
        call: impl Fn(&PgStore, Scope) -> Result<()> + Sync,
    ) {
        let db = TempDatabase::create(VECTOR_SERVER).unwrap();
        let mut config = PgConfig::new(DatabaseUrl::new(db.url().expose()));
        (config.pool_size, config.max_overflow) = (1, 0);
        config.pool_timeout = Duration::from_secs(2);
        config.pre_ping_bypass = Duration::from_secs(600);
        let store = PgStore::open(config).unwrap();
        let scope = Scope::agent(Uuid::new_v4(), Uuid::new_v4());
        let mut held = store.checkout().unwrap();
        let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(&mut *held)
            .unwrap()
            .pid;
        let server = std::env::var(VECTOR_SERVER).unwrap();
        let mut admin = PgConnection::establish(&server).unwrap();
        let allow = |on: bool| format!("ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {on}", db.name());
        if slow_logins {
            let mut own = PgConnection::establish(db.url().expose()).unwrap();
            own.batch_execute(
                "CREATE FUNCTION slow_login() RETURNS event_trigger LANGUAGE plpgsql AS \
                 $$ BEGIN PERFORM pg_sleep(1); END $$; \
                 CREATE EVENT TRIGGER slow_login ON login EXECUTE FUNCTION slow_login();",
            )
            .unwrap();
        } else {
            diesel::sql_query(allow(false)).execute(&mut admin).unwrap();
        }
        diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
            .execute(&mut admin)
            .unwrap();
        let gone = format!("SELECT pid FROM pg_stat_activity WHERE pid = {pid}");
        until(|| {
            diesel::sql_query(&gone)
                .load::<Pid>(&mut admin)
                .unwrap()
                .is_empty()
        });
        let (elapsed, got) = std::thread::scope(|s| {
            let caller = s.spawn(|| {
                let start = Instant::now();
                let got = call(&store, scope);
                (start.elapsed(), got)
            });
            until(|| store.metrics().waiting > 0);
            std::thread::sleep(Duration::from_millis(1500));
            drop(held);
            caller.join().unwrap()
        });
        diesel::sql_query(allow(true)).execute(&mut admin).unwrap();
        assert!(matches!(got, Err(Error::ConnectionLost { .. })), "{got:?}");
        let within = Duration::from_secs(2)..Duration::from_millis(2_750);
        assert!(within.contains(&elapsed), "waited {elapsed:?}");
    }

    #[test]
    fn a_unit_of_work_replacing_a_connection_found_gone_waits_one_pool_timeout() {
        waits_within_one_pool_timeout(false, |store, _| store.checkout().map(drop));
    }

    /// The connection found gone is the error, not a pool timeout, when no other could
    /// be opened in what was left of the wait (before: `PoolTimeout` naming a pool with no
    /// connection open, which says every connection was busy).
    #[test]
    fn a_connection_found_gone_with_none_opened_in_time_is_the_error() {
        waits_within_one_pool_timeout(true, |store, _| store.checkout().map(drop));
    }

    #[test]
    fn a_read_run_again_waits_within_its_first_checkouts_pool_timeout() {
        waits_within_one_pool_timeout(false, |store, scope| {
            let recall = store.connector::<Message>(TableType::RecallMemory, scope)?;
            recall.size(&[]).map(drop)
        });
    }

    #[test]
    fn a_write_run_again_waits_within_its_first_checkouts_pool_timeout() {
        waits_within_one_pool_timeout(false, |store, scope| {
            let recall = store.connector::<Message>(TableType::RecallMemory, scope)?;
            let agent = scope.agent_id().unwrap_or_default();
            let m = Message::builder(scope.user_id(), agent, Role::User)
                .text("never written")
                .build()?;
            recall.insert(&m)
        });
    }

    /// A read's wait for a busy replica and then for the primary fits in one pool
    /// timeout: pools of one (timeout 2 s), the replica's connection and the primary's
    /// held, a third read is a pool timeout within 2 s (plus a margin), not after 2 s on
    /// the replica and 2 s more on the primary.
    #[test]
    fn a_read_waiting_for_a_replica_then_the_primary_waits_one_pool_timeout() {
        let primary = memgpt_testing::OwnServer::start("trust", "").unwrap();
        let replica = primary.replica().unwrap();
        let mut config = PgConfig::new(primary.url(""));
        config.replica_urls = vec![replica.url("")];
        (config.pool_size, config.max_overflow) = (1, 0);
        config.pool_timeout = Duration::from_secs(2);
        let store = PgStore::open(config).unwrap();
        // The replica serves once it has replayed the migrations.
        let on_replica = || {
            let reads = store.metrics().replica_reads;
            let lease = store.read_checkout().unwrap();
            (store.metrics().replica_reads > reads).then_some(lease)
        };
        let mut from_replica = None;
        until(|| {
            from_replica = on_replica();
            from_replica.is_some()
        });
        let on_primary = store.checkout().unwrap();
        let start = Instant::now();
        let got = store.read_checkout().map(drop);
        let elapsed = start.elapsed();
        drop((from_replica, on_primary));
        assert!(matches!(got, Err(Error::PoolTimeout { .. })), "{got:?}");
        let within = Duration::from_secs(2)..Duration::from_millis(2_750);
        assert!(within.contains(&elapsed), "waited {elapsed:?}");
    }
}
