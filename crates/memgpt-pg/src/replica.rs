//! Read replicas: a pool per streaming replica (`MEMGPT_PG_REPLICA_URLS`), taken in turn
//! for reads outside a unit of work. A replica that cannot be reached is skipped for
//! [`DOWN_FOR`], and so is a server that is not in recovery (a promoted replica, or a
//! primary named as a replica: it does not follow the primary's writes). One further
//! behind than `MEMGPT_PG_REPLICA_MAX_LAG` (measured on the replica at most every
//! [`LAG_EVERY`], against the primary's positions sampled as often on a connection of
//! their own, [`Monitor`], so that a saturated primary pool never leaves the bound to an
//! old sample) is skipped until a later measure finds it caught up. A read-your-writes
//! session's read takes a replica only once the replica has replayed the session's
//! [`SessionPosition`](crate::wal::SessionPosition) (`pg_last_wal_replay_lsn()`), else the primary.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::sql_types::{Bool, Double, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};
use memgpt_core::Result;

use crate::metrics::Counters;
use crate::pool::{self, Pool, Pooled};
use crate::wal::{parse_lsn, Monitor, Wal};
use crate::PgConfig;

/// How long a replica that could not be reached is skipped before it is tried again.
pub(crate) const DOWN_FOR: Duration = Duration::from_secs(5);
/// How often a replica's lag is measured (on a connection about to serve a read).
pub(crate) const LAG_EVERY: Duration = Duration::from_secs(1);
/// Samples of the primary's position kept at most.
const HISTORY: usize = 4096;
/// How much older than the maximum lag the sample a replica is measured against may be:
/// samples are taken at most every [`LAG_EVERY`] as reads come; after a pause in reads the
/// last sample that old says nothing of the lag now.
const STALE: Duration = Duration::from_secs(2);
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
    /// The primary's WAL position over time, sampled (at most every [`LAG_EVERY`]) as lags
    /// are measured: a replica is behind by more than the maximum lag when it has not
    /// replayed what the primary had written that long ago.
    history: Mutex<VecDeque<(Instant, u64)>>,
    /// The connection on which the primary's positions are read.
    monitor: Monitor,
}

#[derive(Debug)]
struct Replica {
    /// The URL without its password, for warnings.
    name: String,
    /// Its passwords, scrubbed from the warnings.
    secrets: Vec<String>,
    pool: Pool,
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
    #[diesel(sql_type = Bool)]
    recovering: bool,
    #[diesel(sql_type = Nullable<Text>)]
    replay: Option<String>,
    /// Everything received is replayed.
    #[diesel(sql_type = Bool)]
    idle: bool,
    /// Seconds since the commit last replayed was made on the primary.
    #[diesel(sql_type = Nullable<Double>)]
    since_commit: Option<f64>,
}

impl Replicas {
    /// One pool per replica URL of `config`, and the [`Monitor`] of the primary (whose
    /// connection string is `primary`); opens no connection on the caller's thread. Each
    /// replica's passwords are added to `secrets`.
    ///
    /// # Errors
    /// [`memgpt_core::Error::Config`] when libpq cannot parse a URL.
    pub(crate) fn build(
        config: &PgConfig,
        primary: String,
        secrets: &mut Vec<String>,
    ) -> Result<Option<Self>> {
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
                    pool: pool::build(
                        config,
                        info.to_conninfo(),
                        Arc::new(Counters::new("postgres-replica", config.pool_size)),
                        pool::Warm::One,
                        // Always pinged: a replica's read first asks for its position, and
                        // a failure there takes the replica out of service for a while.
                        std::time::Duration::ZERO,
                    )?,
                    health: Mutex::new(Health::default()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Replicas {
            list,
            next: AtomicUsize::new(0),
            max_lag: config.replica_max_lag,
            pool_timeout: config.pool_timeout,
            history: Mutex::new(VecDeque::new()),
            monitor: Monitor::new(primary),
        }))
    }

    /// The primary's position `which`, read on the [`Monitor`] (waiting for it while
    /// another thread reads); `None` when the primary cannot be reached or answer.
    pub(crate) fn primary_position(&self, which: Wal) -> Option<u64> {
        self.monitor.read(which, true)
    }

    /// A connection of the next fit replica — in recovery, up, within the maximum lag
    /// and, with `after` (a read-your-writes session's [`Required`](crate::wal::Required) position), past it —
    /// or `None`. Its caller began to wait at `start`: every replica's wait, and the
    /// primary's after them, fit in one pool timeout from there; each replica waits at
    /// most half of what is left, so that the primary has time to open a connection.
    pub(crate) fn lease(&self, after: Option<u64>, start: Instant) -> Option<Pooled> {
        let n = self.list.len();
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).find_map(|i| self.list[(first + i) % n].lease(after, self, start))
    }

    /// Samples the primary's position on the [`Monitor`] when the last sample is older
    /// than [`LAG_EVERY`] (unless another thread is sampling: a sample taken now serves
    /// as a reference only a maximum lag later); returns whether a sample exists.
    fn sample(&self, now: Instant) -> bool {
        let due = self.history.lock().ok().is_some_and(|h| {
            h.back()
                .is_none_or(|(t, _)| now.duration_since(*t) >= LAG_EVERY)
        });
        let taken = if due {
            self.monitor.read(Wal::Written, false)
        } else {
            None
        };
        let Ok(mut h) = self.history.lock() else {
            return false;
        };
        if let Some(lsn) = taken {
            h.push_back((now, lsn));
            // The newest sample at least max_lag old is the reference: older ones go.
            while h.len() > 1
                && h.get(1)
                    .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= self.max_lag)
            {
                h.pop_front();
            }
            while h.len() > HISTORY {
                h.pop_front();
            }
        }
        !h.is_empty()
    }

    /// Why a replica at `replay` is further behind than the maximum lag, or `None`: it has
    /// not replayed the primary's position of `max_lag` ago (the newest sample at least
    /// that old, unless it is more than [`STALE`] older). Without such a sample, a replica
    /// past a sample younger than the maximum lag is within it; one that is not is judged
    /// by the age of the commit it last replayed (behind only when it has WAL left to
    /// replay).
    fn behind(
        &self,
        now: Instant,
        replay: Option<u64>,
        p: &Position,
        sampled: bool,
    ) -> Option<String> {
        let Some(replay) = replay else {
            return Some("behind, nothing replayed yet".to_owned());
        };
        if sampled {
            let h = self.history.lock().ok()?;
            let age = |t: &Instant| now.saturating_duration_since(*t);
            let reference = h
                .iter()
                .rev()
                .find(|(t, _)| age(t) >= self.max_lag)
                .filter(|(t, _)| age(t) <= self.max_lag + STALE);
            match reference {
                Some((t, lsn)) if replay < *lsn => {
                    return Some(format!(
                        "behind: not yet at the primary's position of {:?} ago",
                        age(t)
                    ))
                }
                Some(_) => return None,
                None => {}
            }
            let younger = h.iter().find(|(t, _)| age(t) < self.max_lag);
            if younger.is_some_and(|(_, lsn)| replay >= *lsn) {
                return None;
            }
        }
        if p.idle {
            return None;
        }
        match p.since_commit {
            Some(s) if Duration::try_from_secs_f64(s.max(0.0)).is_ok_and(|d| d <= self.max_lag) => {
                None
            }
            Some(s) => Some(format!("behind, its last replayed commit {s:.1} s old")),
            None => Some("behind, no commit replayed yet".to_owned()),
        }
    }
}

impl Replica {
    fn lease(&self, after: Option<u64>, replicas: &Replicas, start: Instant) -> Option<Pooled> {
        let left = replicas.pool_timeout.saturating_sub(start.elapsed()) / 2;
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
        let mut conn = self.checkout(now, left)?;
        if !measure {
            return Some(conn);
        }
        let sample = replicas.sample(now);
        let p = self.position(&mut conn, now)?;
        if !p.recovering {
            // Promoted, or a primary named as a replica: it does not follow the primary's
            // writes, so no position of the primary's says what it holds. Checked again
            // after DOWN_FOR (a server rebuilt as a replica serves again).
            self.unfit(
                now + DOWN_FOR,
                "not a replica: the server is not in recovery (promoted, or a primary \
                 named in MEMGPT_PG_REPLICA_URLS); it does not follow the primary's writes"
                    .to_owned(),
            );
            return None;
        }
        let replay = p.replay.as_deref().and_then(parse_lsn);
        if let Some(behind) = replicas.behind(now, replay, &p, sample) {
            self.unfit(
                now + LAG_EVERY,
                format!(
                    "{behind} (MEMGPT_PG_REPLICA_MAX_LAG {:?})",
                    replicas.max_lag
                ),
            );
            return None;
        }
        self.fit(now);
        // Fit, but not yet past this session's last write: the primary serves this read.
        let caught_up = after.is_none_or(|a| replay.is_some_and(|r| r >= a));
        caught_up.then_some(conn)
    }

    /// A connection of the replica's pool. A short wait first: r2d2 reports a connection
    /// error (appended to its timeout message) when the replica cannot be reached, and the
    /// primary serves at once. A plain timeout means every connection is busy: the read
    /// queues as it would on the primary, up to what is `left` of the pool timeout. An
    /// unreachable replica is skipped for a while.
    fn checkout(&self, now: Instant, left: Duration) -> Option<Pooled> {
        let first = self.pool.get_timeout(REPLICA_WAIT.min(left));
        let got = match first {
            Err(e) if !self.unreachable(&e) && left > REPLICA_WAIT => {
                self.pool.get_timeout(left - REPLICA_WAIT)
            }
            other => other,
        };
        got.map_err(|e| {
            if self.unreachable(&e) {
                self.unfit(now + DOWN_FOR, format!("unreachable ({e})"));
            }
        })
        .ok()
    }

    /// Where the replica stands: in recovery, its replay position, idle, and the age of
    /// its last replayed commit. A failed query makes it unfit for a while.
    fn position(&self, conn: &mut Pooled, now: Instant) -> Option<Position> {
        let position: Vec<Position> = match diesel::sql_query(
            "SELECT pg_is_in_recovery() AS recovering, \
             pg_last_wal_replay_lsn()::text AS replay, \
             pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() AS idle, \
             extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_commit",
        )
        .load(&mut conn.pg)
        {
            Ok(p) => p,
            Err(e) => {
                self.unfit(now + DOWN_FOR, format!("unreachable ({e})"));
                return None;
            }
        };
        position.into_iter().next()
    }

    /// Measured within the maximum lag at `now`.
    fn fit(&self, now: Instant) {
        if let Ok(mut h) = self.health.lock() {
            h.lag_checked = Some(now);
            h.skip_until = None;
            if h.unfit.take().is_some() {
                tracing::warn!("memgpt-pg: replica {} serves reads again", self.name);
            }
        }
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
