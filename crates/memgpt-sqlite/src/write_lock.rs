//! Taking SQLite's write lock (`BEGIN IMMEDIATE`) when other processes write the same file.
//!
//! Inside one process the store's single writer connection queues writers. Across
//! processes SQLite's busy handler decides who writes next, and it is not fair: a waiter
//! sleeps in growing steps (1, 2, 5, 10 … up to 100 ms) and tries again only when it
//! wakes, so while several processes write in turn an unlucky one finds the lock taken at
//! every wake-up and fails with "database is locked" although no writer held the lock for
//! long. Measured (6 processes × 100 writes of 500 messages, ~50 ms each, 5 s busy
//! timeout; `six_processes_writing_one_file_take_turns_and_all_succeed`): 3 runs of 8 had
//! 1 to 4 such failures, single writes waited up to 5.6 s, and in every run some write
//! saw 45 to 153 writes of other processes go first.
//!
//! A store's writes take the lock in two ways instead, both within the configured busy
//! timeout (`MEMGPT_SQLITE_BUSY_TIMEOUT_MS`), which is the deadline of the whole wait:
//!
//! 1. **Short polls** ([`Writers::begin_immediate`]): `BEGIN IMMEDIATE` with SQLite's busy
//!    timeout at 0, tried again after 1 to 5 ms (jittered, so that waiters do not wake
//!    together). A waiter tries again within a few milliseconds of every release, whoever
//!    held the lock: another memgpt-store process, MemGPT's Python, the `sqlite3` shell.
//!    Statements inside the transaction keep the configured busy timeout (a `COMMIT` in
//!    a rollback-journal mode waits for readers through it).
//! 2. **A priority lock for a writer that has waited too long**: polls are fast but still
//!    a lottery. A writer that has waited [`PATIENCE`] takes an exclusive OS lock
//!    (`flock`, through [`File::lock`]) on the sidecar file
//!    `<database>-memgpt-writer.lock`, waiting in the kernel's queue behind other such
//!    writers, and polls on while holding it; every other writer of this library holds
//!    the same lock *shared* around each of its attempts, so while a starving writer holds
//!    it the others stop trying and it gets SQLite's lock as soon as the current
//!    transaction ends. It lets go once its `BEGIN IMMEDIATE` has succeeded. So no
//!    writer of the library waits much longer than [`PATIENCE`] plus the writes of the
//!    writers that starved before it.
//!
//! The sidecar is held only while waiting, never during a transaction, and it is an OS
//! lock rather than the file's existence: the kernel releases it when its holder dies,
//! however it dies, and a stale file means nothing. Each priority wait opens the file
//! anew, so every wait is a lock of its own (two stores of one process queue too). Reads
//! never take it. Where it cannot be used (an in-memory database or a `file:` URI, a
//! folder the process may not write, a filesystem without `flock`) writers poll alone,
//! after one warning. SQLite's own lock stays the guarantee of a single writer; writers
//! that do not know the sidecar (MemGPT's Python, `sqlite3`) still wait through their
//! own busy handler and are not given priority.
//!
//! Measured on the same load (a machine of 2 cores also running other work), 8 runs: no
//! failure, the longest write 350 ms, at most 9 writes of others ahead of any one. Polls
//! alone: no failure in 8 runs, but up to 1.5 s and 33 writes ahead. A queue through the
//! sidecar for every write, held until its commit, was fair (5 to 7 ahead) but slower:
//! each hand-over waits for the next process to be scheduled, which leaves the lock idle
//! while the CPUs are busy (the 600 writes took 20 to 21 s against 16 to 17 s by polls).
//! With three CPU-bound processes beside them, 2 runs of each: SQLite's handler, polls
//! alone and the queue all failed calls, the priority lock none (longest write 4.0 s).

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::SqliteConnection;
use memgpt_core::{Error, Result};

use crate::error::map;

/// Shortest pause between two attempts of `BEGIN IMMEDIATE`.
const MIN_PAUSE: Duration = Duration::from_millis(1);
/// Longest pause between two attempts of `BEGIN IMMEDIATE`.
const MAX_PAUSE: Duration = Duration::from_millis(5);
/// How long a writer polls before it asks for priority.
const PATIENCE: Duration = Duration::from_millis(100);

/// The sidecar file of the database `path`, `<path>-memgpt-writer.lock`; `None` for an
/// in-memory or temporary database (`:memory:`, an empty path) and for a `file:` URI.
pub(crate) fn sidecar_path(path: &Path) -> Option<PathBuf> {
    let text = path.to_str()?;
    if text.is_empty() || text == ":memory:" || text.starts_with("file:") {
        return None;
    }
    let mut name = path.as_os_str().to_owned();
    name.push("-memgpt-writer.lock");
    Some(PathBuf::from(name))
}

/// How one store's writes take SQLite's write lock: polls, and the sidecar's priority
/// lock for a writer that has waited too long.
#[derive(Debug)]
pub(crate) struct Writers {
    /// The sidecar file; `None` when the database has none.
    sidecar: Option<PathBuf>,
    /// Set once the sidecar proved unusable: writers poll alone.
    disabled: AtomicBool,
    /// The handle held shared around each attempt (opened on the first write).
    shared: Mutex<Option<File>>,
    /// The thread that waits in the kernel for the priority lock, started when a writer
    /// first needs it.
    keeper: OnceLock<Option<mpsc::Sender<Request>>>,
    /// The busy timeout the connection keeps outside `BEGIN IMMEDIATE`.
    busy_timeout: Duration,
}

/// A wait for the priority lock handed to the keeper thread.
struct Request {
    /// A handle of the sidecar of its own, to lock.
    file: File,
    /// Where the locked handle goes. A waiter that has given up has dropped the receiver:
    /// the send fails and the handle closes, which releases the lock at once.
    reply: mpsc::SyncSender<io::Result<File>>,
    /// Set by a waiter that has given up before the keeper got to its request.
    gone: Arc<AtomicBool>,
}

impl Writers {
    /// The writers of the database at `path`, whose connection keeps `busy_timeout`.
    /// Creates nothing: the sidecar is created by the first write.
    pub(crate) fn new(path: &Path, busy_timeout: Duration) -> Self {
        Writers {
            sidecar: sidecar_path(path),
            disabled: AtomicBool::new(false),
            shared: Mutex::new(None),
            keeper: OnceLock::new(),
            busy_timeout,
        }
    }

    /// Opens `BEGIN IMMEDIATE` on `conn` (through diesel's transaction manager, which then
    /// knows the transaction is open), waiting at most the busy timeout while other
    /// connections hold the write lock; see the module's documentation.
    ///
    /// # Errors
    /// [`Error::Busy`] when the lock could not be had within the busy timeout; what the
    /// database reports otherwise.
    pub(crate) fn begin_immediate(&self, conn: &mut SqliteConnection) -> Result<()> {
        let start = Instant::now();
        let deadline = start
            .checked_add(self.busy_timeout)
            .unwrap_or_else(|| start + Duration::from_secs(86_400));
        conn.batch_execute("PRAGMA busy_timeout = 0;")
            .map_err(map)?;
        let begun = self.attempts(conn, start, deadline);
        // The value is a number from the typed settings, never caller text.
        let restored = conn
            .batch_execute(&format!(
                "PRAGMA busy_timeout = {};",
                self.busy_timeout.as_millis()
            ))
            .map_err(map);
        match (begun, restored) {
            (Ok(()), Ok(())) => Ok(()),
            (Ok(()), Err(e)) => {
                // Never leave a transaction open on a connection going back to the pool.
                let _ = AnsiTransactionManager::rollback_transaction(conn);
                Err(e)
            }
            (Err(e), _) => Err(e),
        }
    }

    /// The attempts of [`begin_immediate`](Self::begin_immediate).
    fn attempts(
        &self,
        conn: &mut SqliteConnection,
        start: Instant,
        deadline: Instant,
    ) -> Result<()> {
        let jitter = RandomState::new();
        let mut attempt = 0u64;
        // The priority lock, once this writer has waited `PATIENCE`; released on return.
        let mut priority: Option<File> = None;
        let mut asked = false;
        loop {
            let mut begin = || {
                AnsiTransactionManager::begin_transaction_sql(&mut *conn, "BEGIN IMMEDIATE")
                    .map_err(map)
            };
            let tried = match priority {
                Some(_) => Some(begin()),
                None => self.unless_held_back(begin),
            };
            match tried {
                Some(Ok(())) => return Ok(()),
                Some(Err(Error::Busy { .. })) | None => {}
                Some(Err(e)) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Busy {
                    message: format!(
                        "database is locked: waited {} ms for the write lock \
                         (MEMGPT_SQLITE_BUSY_TIMEOUT_MS)",
                        start.elapsed().as_millis()
                    ),
                });
            }
            if !asked && start.elapsed() >= PATIENCE {
                asked = true;
                priority = self.priority(deadline)?;
                if priority.is_some() {
                    continue;
                }
            }
            attempt += 1;
            std::thread::sleep(pause(jitter.hash_one(attempt)).min(left));
        }
    }

    /// Runs `attempt` holding the sidecar shared, unless a writer with priority holds it
    /// exclusively (`None`: held back). Without a usable sidecar, simply runs it.
    fn unless_held_back<T>(&self, attempt: impl FnOnce() -> T) -> Option<T> {
        let Some(sidecar) = self.usable_sidecar() else {
            return Some(attempt());
        };
        // Only the writer holding the store's connection gets here: never contended.
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.is_none() {
            match open(sidecar) {
                Ok(f) => *shared = Some(f),
                Err(e) => {
                    self.disable::<()>(sidecar, &e);
                    return Some(attempt());
                }
            }
        }
        let Some(file) = shared.as_ref() else {
            return Some(attempt());
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let done = attempt();
                if let Err(e) = file.unlock() {
                    // Closing the handle releases the lock whatever went wrong.
                    *shared = None;
                    self.disable::<()>(sidecar, &e);
                }
                Some(done)
            }
            Err(TryLockError::WouldBlock) => None,
            Err(TryLockError::Error(e)) => {
                self.disable::<()>(sidecar, &e);
                Some(attempt())
            }
        }
    }

    /// The priority lock, waited for in the kernel's queue until `deadline`; `None` when
    /// there is no usable sidecar.
    ///
    /// # Errors
    /// [`Error::Busy`] when writers that starved before this one kept it until `deadline`.
    fn priority(&self, deadline: Instant) -> Result<Option<File>> {
        let Some(sidecar) = self.usable_sidecar() else {
            return Ok(None);
        };
        let file = match open(sidecar) {
            Ok(f) => f,
            Err(e) => return Ok(self.disable(sidecar, &e)),
        };
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Ok(self.disable(sidecar, &e)),
        }
        let Some(keeper) = self.keeper.get_or_init(spawn_keeper) else {
            return Ok(self.disable(sidecar, &io::Error::other("cannot start its thread")));
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = Arc::new(AtomicBool::new(false));
        let request = Request {
            file,
            reply,
            gone: Arc::clone(&gone),
        };
        if keeper.send(request).is_err() {
            return Ok(self.disable(sidecar, &io::Error::other("its thread ended")));
        }
        match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(file)) => Ok(Some(file)),
            Ok(Err(e)) => Ok(self.disable(sidecar, &e)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                gone.store(true, Ordering::Relaxed);
                // Dropping `answer` closes a handle the keeper may have sent meanwhile.
                Err(Error::Busy {
                    message: format!(
                        "database is locked: writers waiting longer than this one kept \
                         the priority lock ({}) for the whole busy timeout \
                         (MEMGPT_SQLITE_BUSY_TIMEOUT_MS)",
                        sidecar.display()
                    ),
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Ok(self.disable(sidecar, &io::Error::other("its thread ended")))
            }
        }
    }

    /// The sidecar, unless there is none or it proved unusable.
    fn usable_sidecar(&self) -> Option<&Path> {
        self.sidecar
            .as_deref()
            .filter(|_| !self.disabled.load(Ordering::Relaxed))
    }

    /// Stops using the sidecar after `why`, with one warning.
    fn disable<T>(&self, sidecar: &Path, why: &io::Error) -> Option<T> {
        if !self.disabled.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "memgpt-sqlite: {} cannot be used ({why}); writers still wait for SQLite's \
                 lock, but one that waits long gets no priority",
                sidecar.display()
            );
        }
        None
    }
}

/// Opens a handle of the sidecar of its own, creating the file if needed (read-only when
/// another account created it and this one may not write it: `flock` needs no write
/// access).
fn open(sidecar: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(sidecar)
    {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && sidecar.is_file() => {
            File::open(sidecar)
        }
        other => other,
    }
}

/// Starts the thread that waits in the kernel for the priority lock (`File::lock` has no
/// timeout, so the waiting writer waits on the thread's answer instead); `None` when it
/// cannot start. The thread ends with the store (its requests' sender dropped).
fn spawn_keeper() -> Option<mpsc::Sender<Request>> {
    let (requests, inbox) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("memgpt-sqlite-writer-priority".to_owned())
        .spawn(move || {
            for r in inbox {
                if r.gone.load(Ordering::Relaxed) {
                    continue;
                }
                let locked = match r.file.lock() {
                    Ok(()) => Ok(r.file),
                    Err(e) => Err(e),
                };
                // Fails when the waiter has given up; the handle then closes here.
                let _ = r.reply.send(locked);
            }
        })
        .ok()
        .map(|_| requests)
}

/// A pause between [`MIN_PAUSE`] and [`MAX_PAUSE`] picked by `random`.
fn pause(random: u64) -> Duration {
    let span = (MAX_PAUSE - MIN_PAUSE).as_micros() as u64 + 1;
    MIN_PAUSE + Duration::from_micros(random % span)
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction of its own on `conn` (begun by
/// [`Writers::begin_immediate`]): committed when `f` returns `Ok`, rolled back otherwise
/// (`f`'s error is the one returned).
///
/// # Errors
/// As [`Writers::begin_immediate`]; `f`'s error; the database's on commit.
pub(crate) fn immediate_transaction<T>(
    writers: &Writers,
    conn: &mut SqliteConnection,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T>,
) -> Result<T> {
    writers.begin_immediate(conn)?;
    match f(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn).map_err(map)?;
            Ok(value)
        }
        Err(e) => {
            // A failed rollback leaves the transaction manager in error: the pool then
            // closes the connection when it comes back. The caller hears `f`'s error.
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(conn) {
                tracing::warn!("memgpt-sqlite: rolling back a write failed: {rollback}");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stay_between_one_and_five_milliseconds() {
        for r in [0, 1, 3_999, 4_000, 4_001, u64::MAX, 123_456_789] {
            let p = pause(r);
            assert!(p >= MIN_PAUSE && p <= MAX_PAUSE, "{p:?}");
        }
        assert_eq!(pause(0), MIN_PAUSE);
        assert_eq!(pause(4_000), MAX_PAUSE);
    }

    #[test]
    fn the_sidecar_sits_beside_a_file_and_nowhere_for_memory_or_uris() {
        assert_eq!(
            sidecar_path(Path::new("/data/memgpt.db")),
            Some(PathBuf::from("/data/memgpt.db-memgpt-writer.lock"))
        );
        assert_eq!(
            sidecar_path(Path::new("rel.db")),
            Some(PathBuf::from("rel.db-memgpt-writer.lock"))
        );
        for none in ["", ":memory:", "file:x.db?mode=memory&cache=shared"] {
            assert_eq!(sidecar_path(Path::new(none)), None, "{none:?}");
        }
    }
}
