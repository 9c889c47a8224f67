//! Read replicas: a pool per streaming replica (`MEMGPT_PG_REPLICA_URLS`), taken in turn
//! for reads outside a unit of work. A replica that cannot be reached is skipped for
//! [`DOWN_FOR`]; one further behind than `MEMGPT_PG_REPLICA_MAX_LAG` (measured on the
//! replica at most every [`LAG_EVERY`]) is skipped until a later measure finds it caught
//! up. A read-your-writes session's read takes a replica only once the replica has
//! replayed the session's last write (`pg_last_wal_replay_lsn()`), else the primary.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::r2d2::Pool;
use diesel::sql_types::{Bool, Double, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::Result;

use crate::metrics::Counters;
use crate::pool::{self, Manager, Pooled};
use crate::PgConfig;

/// How long a replica that could not be reached is skipped before it is tried again.
pub(crate) const DOWN_FOR: Duration = Duration::from_secs(5);
/// How often a replica's lag is measured (on a connection about to serve a read).
pub(crate) const LAG_EVERY: Duration = Duration::from_secs(1);
/// How long a read waits for a replica's connection before telling a replica that cannot be
/// reached (the primary then serves) from one whose connections are all busy.
const REPLICA_WAIT: Duration = Duration::from_millis(250);

/// The replicas of a store.
#[derive(Debug)]
pub(crate) struct Replicas {
    list: Vec<Replica>,
    next: AtomicUsize,
    max_lag: Duration,
    pool_timeout: Duration,
}

#[derive(Debug)]
struct Replica {
    /// The URL without its password, for warnings.
    name: String,
    /// Its passwords, scrubbed from the warnings.
    secrets: Vec<String>,
    pool: Pool<Manager>,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    /// Skipped until then (down, or lagging).
    skip_until: Option<Instant>,
    /// When the lag was last measured.
    lag_checked: Option<Instant>,
    /// Why it is skipped, to warn once per change.
    unfit: Option<String>,
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Nullable<Double>)]
    lag: Option<f64>,
    #[diesel(sql_type = Bool)]
    caught_up: bool,
}

impl Replicas {
    /// One pool per replica URL of `config`; opens no connection on the caller's thread.
    /// Each replica's passwords are added to `secrets`.
    ///
    /// # Errors
    /// [`memgpt_core::Error::Config`] when libpq cannot parse a URL.
    pub(crate) fn build(config: &PgConfig, secrets: &mut Vec<String>) -> Result<Option<Self>> {
        if config.replica_urls.is_empty() {
            return Ok(None);
        }
        let list = config
            .replica_urls
            .iter()
            .map(|url| {
                let info = crate::url::connection_info_for(config, url)?;
                secrets.extend(info.secrets());
                Ok(Replica {
                    name: url.redacted(),
                    secrets: info.secrets(),
                    pool: pool::build(config, info.to_conninfo(), Arc::new(Counters::default()))?,
                    health: Mutex::new(Health::default()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Replicas {
            list,
            next: AtomicUsize::new(0),
            max_lag: config.replica_max_lag,
            pool_timeout: config.pool_timeout,
        }))
    }

    /// A connection of the next fit replica — up, within the maximum lag and, with
    /// `after` (a read-your-writes session's last write LSN), past it — or `None`.
    pub(crate) fn lease(&self, after: Option<&str>) -> Option<Pooled> {
        let n = self.list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .find_map(|i| self.list[(start + i) % n].lease(after, self.max_lag, self.pool_timeout))
    }
}

impl Replica {
    fn lease(
        &self,
        after: Option<&str>,
        max_lag: Duration,
        pool_timeout: Duration,
    ) -> Option<Pooled> {
        let now = Instant::now();
        let measure = {
            let h = self.health.lock().ok()?;
            if h.skip_until.is_some_and(|t| t > now) {
                return None;
            }
            after.is_some()
                || h.lag_checked
                    .is_none_or(|t| now.duration_since(t) >= LAG_EVERY)
        };
        // A short wait first: r2d2 reports a connection error (appended to its timeout
        // message) when the replica cannot be reached, and the primary serves at once. A
        // plain timeout means every connection is busy: the read queues as it would on the
        // primary, up to the pool timeout.
        let mut conn = match self.pool.get_timeout(REPLICA_WAIT.min(pool_timeout)) {
            Ok(c) => c,
            Err(e) if !self.unreachable(&e) && pool_timeout > REPLICA_WAIT => {
                match self.pool.get_timeout(pool_timeout - REPLICA_WAIT) {
                    Ok(c) => c,
                    Err(e) => {
                        if self.unreachable(&e) {
                            self.unfit(now + DOWN_FOR, format!("unreachable ({e})"));
                        }
                        return None;
                    }
                }
            }
            Err(e) => {
                if self.unreachable(&e) {
                    self.unfit(now + DOWN_FOR, format!("unreachable ({e})"));
                }
                return None;
            }
        };
        if !measure {
            return Some(conn);
        }
        let position: Vec<Position> = match diesel::sql_query(
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 \
             WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 \
             ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag, \
             CASE WHEN NOT pg_is_in_recovery() THEN true \
             ELSE coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) END AS caught_up",
        )
        .bind::<Text, _>(after.unwrap_or("0/0"))
        .load(&mut *conn)
        {
            Ok(p) => p,
            Err(e) => {
                self.unfit(now + DOWN_FOR, format!("unreachable ({e})"));
                return None;
            }
        };
        let p = position.into_iter().next()?;
        // No transaction replayed yet while behind: as far behind as can be.
        let lag = p.lag.map_or(Duration::MAX, |s| {
            Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
        });
        if lag > max_lag {
            let behind = if lag == Duration::MAX {
                "behind, no transaction replayed yet".to_owned()
            } else {
                format!("behind by {lag:?}")
            };
            self.unfit(
                now + LAG_EVERY,
                format!("{behind} (MEMGPT_PG_REPLICA_MAX_LAG {max_lag:?})"),
            );
            return None;
        }
        if let Ok(mut h) = self.health.lock() {
            h.lag_checked = Some(now);
            h.skip_until = None;
            if h.unfit.take().is_some() {
                tracing::warn!("memgpt-pg: replica {} serves reads again", self.name);
            }
        }
        // Fit, but not yet past this session's last write: the primary serves this read.
        p.caught_up.then_some(conn)
    }

    /// Whether a checkout that timed out met a replica that cannot be reached, rather than
    /// one whose connections are all busy: r2d2 reported a connection error (appended to
    /// its timeout message, to one waiter), or the pool holds no connection at all (broken
    /// ones are dropped as they come back).
    fn unreachable(&self, e: &r2d2::Error) -> bool {
        e.to_string().contains(": ") || self.pool.state().connections == 0
    }

    /// Skips the replica until `until`, warning when the reason changes.
    fn unfit(&self, until: Instant, reason: String) {
        let Ok(mut h) = self.health.lock() else {
            return;
        };
        h.skip_until = Some(until);
        h.lag_checked = None;
        let kind = reason.split(' ').next().unwrap_or_default().to_owned();
        if h.unfit.as_deref() != Some(kind.as_str()) {
            tracing::warn!(
                "memgpt-pg: replica {} skipped, the primary serves its reads: {}",
                self.name,
                crate::url::scrub(&reason, &self.secrets)
            );
            h.unfit = Some(kind);
        }
    }
}
