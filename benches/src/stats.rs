//! Latency summaries.

use std::time::Duration;

/// The 50th and 99th percentile of `samples` (nearest rank). Empty input gives zeros.
pub fn p50_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.99))
}
