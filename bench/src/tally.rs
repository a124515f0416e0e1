//! What the workers measured, and the one line printed from it.

use std::{collections::BTreeMap, time::Duration};

use crate::args::Args;

/// Successful calls' latencies, failures by status or error, and etag-conflict retries.
#[derive(Default)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub failures: BTreeMap<String, u64>,
    pub aborted_retries: u64,
}

impl Tally {
    /// Adds a worker's own tally (kept locally so workers do not contend on every call).
    pub fn absorb(&mut self, mut worker: Tally) {
        self.latencies.append(&mut worker.latencies);
        self.aborted_retries += worker.aborted_retries;
        for (failure, count) in worker.failures {
            *self.failures.entry(failure).or_default() += count;
        }
    }
}

/// A small xorshift: picking the next ticket costs nothing and is reproducible per worker.
pub struct Xorshift(u64);

impl Xorshift {
    /// The generator of worker number `worker`: a fixed seed, so runs repeat.
    pub fn for_worker(worker: usize) -> Self {
        Self(0x9e37_79b9_7f4a_7c15_u64 ^ (worker as u64 + 1))
    }

    /// The next number of the sequence.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Prints throughput and latency percentiles of a finished run on one line.
pub fn report(args: &Args, elapsed: Duration, tally: &mut Tally) {
    tally.latencies.sort_unstable();
    let percentile = |p: f64| -> Duration {
        if tally.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((tally.latencies.len() as f64 - 1.0) * p).round() as usize;
        tally.latencies[rank]
    };
    let ok = tally.latencies.len();
    println!(
        "scenario={:?} concurrency={} duration={:.1}s ok={} throughput={:.0}/s p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms aborted_retries={} failures={:?}",
        args.scenario,
        args.concurrency,
        elapsed.as_secs_f64(),
        ok,
        ok as f64 / elapsed.as_secs_f64(),
        percentile(0.50).as_secs_f64() * 1e3,
        percentile(0.90).as_secs_f64() * 1e3,
        percentile(0.99).as_secs_f64() * 1e3,
        percentile(1.0).as_secs_f64() * 1e3,
        tally.aborted_retries,
        tally.failures,
    );
}
