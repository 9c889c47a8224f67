//! Where the async facade's calls run: a store's own worker threads, at most one per
//! connection the store can open ([`Capacity`]), and the asynchronous wait for one.
//!
//! A call first takes a permit of the store's semaphore, waiting for it asynchronously at
//! most the pool timeout; holding it, it hands its closure to an idle worker, or starts a
//! new one. A worker gives its permit back only after it has made itself idle again, so a
//! call holding a permit always finds an idle worker or room for a new one: the workers
//! never outnumber the permits. (tokio's `spawn_blocking` cannot promise that: a blocking
//! thread that has just finished a call is not yet idle when the call's waiter hands its
//! place on, so tokio starts another thread, and under load the threads grow past the
//! places.) A worker idle for [`KEEP_ALIVE`] ends.

use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::backend::Capacity;
use crate::{Error, PoolState, Result};

/// How long a worker waits for another call before it ends (as tokio's blocking threads).
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The name of the workers' threads (as `top -H` and `/proc/…/task/*/comm` show it).
pub(crate) const THREAD_NAME: &str = "memgpt-async";

/// A call for a worker, with the permit it gives back once the worker is idle again.
type Job = (Box<dyn FnOnce() + Send>, OwnedSemaphorePermit);

/// The admission of a store's calls and the workers that make them (one per store, in its
/// [`AsyncSlot`](crate::backend::AsyncSlot)).
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Arc<Semaphore>,
    capacity: Capacity,
    workers: Arc<Workers>,
}

/// The idle workers, each waiting on its own channel.
#[derive(Debug, Default)]
struct Workers {
    idle: Mutex<VecDeque<(u64, Sender<Job>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl Gate {
    pub(crate) fn new(capacity: Capacity) -> Self {
        let permits = usize::try_from(capacity.connections)
            .unwrap_or(usize::MAX)
            .clamp(1, Semaphore::MAX_PERMITS);
        Gate {
            permits: Arc::new(Semaphore::new(permits)),
            capacity,
            workers: Arc::default(),
        }
    }

    /// Runs `f` on a worker once a place is free (waiting without a thread, at most the
    /// pool timeout); a panic in `f` resumes here.
    ///
    /// # Errors
    /// `f`'s; [`Error::PoolTimeout`] when no place came free in time;
    /// [`Error::Database`] when no worker thread could be started.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                crate::telemetry::async_wait(0.0, false);
                permit
            }
            Err(_) => {
                let start = Instant::now();
                let wait = self.permits.clone().acquire_owned();
                let got = tokio::time::timeout(self.capacity.timeout, wait).await;
                let waited = start.elapsed().as_secs_f64();
                match got {
                    Ok(Ok(permit)) => {
                        crate::telemetry::async_wait(waited, false);
                        permit
                    }
                    // The semaphore is never closed; a closed one would admit nobody.
                    Ok(Err(_)) | Err(_) => {
                        crate::telemetry::async_wait(waited, true);
                        let e = self.timed_out(start);
                        tracing::warn!(
                            pool = "async",
                            wait_us = start.elapsed().as_micros() as u64,
                            "memgpt-store: no place for the call: {e}"
                        );
                        return Err(e);
                    }
                }
            }
        };
        let (tx, rx) = oneshot::channel();
        // The call runs in the caller's runtime context, as on tokio's blocking pool.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let work = Box::new(move || {
            let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
            // The caller may be gone (its future dropped): the call ran to its end anyway.
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        });
        self.workers.hand((work, permit))?;
        match rx.await {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => resume_unwind(panic),
            Err(_) => Err(Error::database("the worker thread of the call ended early")),
        }
    }

    /// The timeout of a wait for a place: the places taken (as connections in use) of all.
    fn timed_out(&self, start: Instant) -> Error {
        let max = self.capacity.connections;
        let free = u32::try_from(self.permits.available_permits()).unwrap_or(u32::MAX);
        Error::PoolTimeout {
            waited: start.elapsed(),
            state: PoolState::new(max.saturating_sub(free), 0, max),
        }
    }
}

impl Workers {
    fn idle(&self) -> MutexGuard<'_, VecDeque<(u64, Sender<Job>)>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `job` to the idle worker that has waited least (a worker that waits long
    /// ends), or to a new one.
    fn hand(self: &Arc<Self>, job: Job) -> Result<()> {
        let taken = self.idle().pop_back();
        let job = match taken {
            Some((_, worker)) => match worker.send(job) {
                Ok(()) => return Ok(()),
                // It ended meanwhile (it cannot: it leaves the list before it ends).
                Err(returned) => returned.0,
            },
            None => job,
        };
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let workers = self.clone();
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || workers.work(id, job))
            .map(drop)
            .map_err(|e| Error::database(format!("cannot start a worker thread: {e}")))
    }

    /// A worker's life: its first job, then each job handed to it while idle, until none
    /// comes for [`KEEP_ALIVE`].
    fn work(&self, id: u64, first: Job) {
        let (tx, rx) = channel::<Job>();
        let mut job = first;
        loop {
            let (call, permit) = job;
            call();
            self.idle().push_back((id, tx.clone()));
            drop(permit);
            job = match rx.recv_timeout(KEEP_ALIVE) {
                Ok(next) => next,
                Err(RecvTimeoutError::Timeout) => {
                    let mut idle = self.idle();
                    match idle.iter().position(|(w, _)| *w == id) {
                        Some(at) => {
                            idle.remove(at);
                            return;
                        }
                        // Taken just now: the job is on its way.
                        None => {
                            drop(idle);
                            match rx.recv() {
                                Ok(next) => next,
                                Err(_) => return,
                            }
                        }
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
        }
    }
}
