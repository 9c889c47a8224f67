//! Progress of long phases on stderr: done, rate and time left, every two seconds.

use std::time::{Duration, Instant};

/// A long phase of `total` units.
#[derive(Debug)]
pub struct Progress {
    what: String,
    total: u64,
    done: u64,
    start: Instant,
    last: Instant,
}

impl Progress {
    /// Starts a phase and says so.
    pub fn new(what: impl Into<String>, total: u64) -> Self {
        let what = what.into();
        eprintln!("{what}: {total} …");
        let now = Instant::now();
        Progress {
            what,
            total,
            done: 0,
            start: now,
            last: now,
        }
    }

    /// `n` more units done; prints a line when two seconds passed since the last.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.last.elapsed() >= Duration::from_secs(2) {
            self.last = Instant::now();
            let secs = self.start.elapsed().as_secs_f64();
            let rate = self.done as f64 / secs.max(1e-9);
            let left = self.total.saturating_sub(self.done) as f64 / rate.max(1e-9);
            eprintln!(
                "{}: {}/{} ({:.0}%), {:.0}/s, about {:.0} s left",
                self.what,
                self.done,
                self.total,
                100.0 * self.done as f64 / self.total.max(1) as f64,
                rate,
                left
            );
        }
    }

    /// Ends the phase; returns its duration.
    pub fn finish(self) -> Duration {
        let took = self.start.elapsed();
        eprintln!("{}: done in {took:.1?}", self.what);
        took
    }
}
