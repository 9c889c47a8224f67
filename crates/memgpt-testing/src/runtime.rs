//! A tokio runtime that counts its threads, for the tests of the async facade.
//!
//! tokio's own count of blocking threads (`RuntimeMetrics::num_blocking_threads`) needs
//! `--cfg tokio_unstable`; the runtime's thread start and stop hooks are stable and see
//! every thread it runs: its workers and its blocking threads. tokio starts a blocking
//! thread only when no idle one can take the work, so the most threads alive at once,
//! less the workers, is the most blocking threads the runtime ever needed at once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A multi-thread runtime whose threads are counted.
#[derive(Debug)]
pub struct CountedRuntime {
    runtime: tokio::runtime::Runtime,
    workers: usize,
    live: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl CountedRuntime {
    /// A runtime of `workers` worker threads, its timer and I/O enabled.
    ///
    /// # Errors
    /// The runtime's, when it cannot start its threads.
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (started, seen) = (live.clone(), peak.clone());
        let stopped = live.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .on_thread_start(move || {
                let now = started.fetch_add(1, Ordering::SeqCst) + 1;
                seen.fetch_max(now, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                stopped.fetch_sub(1, Ordering::SeqCst);
            })
            .build()?;
        Ok(CountedRuntime {
            runtime,
            workers,
            live,
            peak,
        })
    }

    /// Runs `future` to its end on the runtime.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The most blocking threads alive at once since the start or the last
    /// [`reset`](Self::reset).
    pub fn peak_blocking_threads(&self) -> usize {
        self.peak
            .load(Ordering::SeqCst)
            .saturating_sub(self.workers)
    }

    /// Starts a new peak from the threads alive now.
    pub fn reset(&self) {
        self.peak
            .store(self.live.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// The threads of this process named `name` now (Linux: `/proc/self/task/*/comm`).
///
/// # Errors
/// When `/proc/self/task` cannot be read.
pub fn threads_named(name: &str) -> std::io::Result<usize> {
    let mut n = 0;
    for task in std::fs::read_dir("/proc/self/task")? {
        // A thread that ended since the listing has no `comm` any more.
        if let Ok(comm) = std::fs::read_to_string(task?.path().join("comm")) {
            n += usize::from(comm.trim_end() == name);
        }
    }
    Ok(n)
}

/// Runs `f` while a thread counts this process's threads named `name` (continuously);
/// returns `f`'s value and the most seen at once, the count after `f` included.
///
/// # Errors
/// When `/proc/self/task` cannot be read.
pub fn peak_threads_named<T: Send>(
    name: &str,
    f: impl FnOnce() -> T + Send,
) -> std::io::Result<(T, usize)> {
    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = AtomicUsize::new(threads_named(name)?);
    let value = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                if let Ok(n) = threads_named(name) {
                    peak.fetch_max(n, Ordering::SeqCst);
                }
                // Sampling, not synchronization: the workers counted live for 10 s once
                // started, so a sample a millisecond late still sees them.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        let value = f();
        done.store(true, Ordering::SeqCst);
        value
    });
    peak.fetch_max(threads_named(name)?, Ordering::SeqCst);
    Ok((value, peak.load(Ordering::SeqCst)))
}
