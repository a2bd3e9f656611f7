//! The timing harness: run an op a few times to warm caches, the buffer pool
//! and the thread pool, then time repetitions until a time budget or a
//! repetition cap is reached, and report the median. The median, not the
//! mean, because a busy machine adds rare long outliers (another process,
//! a page-fault storm) that would drag a mean upwards.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How many times to run an op.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Untimed runs first: at least this many...
    pub warmup: usize,
    /// ...and for at least this long. A fresh process's new pool threads
    /// start on the core that made them and the scheduler spreads them
    /// only after some milliseconds: `bii->b` (about 60 µs a call) timed
    /// after two warm-up runs measured 57 µs on 2 threads, the 1-thread
    /// time, in every fresh process, and 30-37 µs once warm.
    pub warmup_time: Duration,
    /// Timed runs at least, even past the budget.
    pub min_reps: usize,
    /// Timed runs at most, even under the budget.
    pub max_reps: usize,
    /// Stop starting new timed runs once this much time was spent timing.
    pub budget: Duration,
}

impl Plan {
    /// The default: 2 warm-up runs and 0.1 s, then 3 to 100 runs within
    /// about 0.5 s.
    pub fn full() -> Plan {
        Plan {
            warmup: 2,
            warmup_time: Duration::from_millis(100),
            min_reps: 3,
            max_reps: 100,
            budget: Duration::from_millis(500),
        }
    }

    /// `--quick`: 1 warm-up run, then 1 to 3 runs within about 50 ms.
    pub fn quick() -> Plan {
        Plan {
            warmup: 1,
            warmup_time: Duration::ZERO,
            min_reps: 1,
            max_reps: 3,
            budget: Duration::from_millis(50),
        }
    }
}

/// A finished measurement.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub median_s: f64,
    pub reps: usize,
}

/// Times `op` according to `plan`. The op's result is passed through
/// `black_box` and dropped inside the timed region: freeing the output is part
/// of what a caller pays for every op.
pub fn measure<T, E>(plan: &Plan, mut op: impl FnMut() -> Result<T, E>) -> Result<Timing, E> {
    let warm = Instant::now();
    let mut runs = 0;
    while runs < plan.warmup || warm.elapsed() < plan.warmup_time {
        black_box(op()?);
        runs += 1;
    }
    let mut times = Vec::with_capacity(plan.max_reps.min(1024));
    let mut spent = Duration::ZERO;
    while times.len() < plan.min_reps || (times.len() < plan.max_reps && spent < plan.budget) {
        let start = Instant::now();
        black_box(op()?);
        let elapsed = start.elapsed();
        spent += elapsed;
        times.push(elapsed.as_secs_f64());
    }
    Ok(Timing {
        median_s: median(&mut times),
        reps: times.len(),
    })
}

/// The median of a non-empty list (mean of the middle two for an even length).
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        0.5 * (xs[n / 2 - 1] + xs[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_lengths() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn measure_runs_warmup_plus_at_least_min_reps() {
        let plan = Plan {
            warmup: 2,
            warmup_time: Duration::ZERO,
            min_reps: 3,
            max_reps: 3,
            budget: Duration::ZERO,
        };
        let mut calls = 0;
        let t = measure(&plan, || {
            calls += 1;
            Ok::<_, ()>(calls)
        })
        .unwrap();
        assert_eq!(calls, 5);
        assert_eq!(t.reps, 3);
    }

    /// Warm-up runs go on until the warm-up time has passed too.
    #[test]
    fn warmup_lasts_its_time() {
        let plan = Plan {
            warmup: 1,
            warmup_time: Duration::from_millis(30),
            min_reps: 1,
            max_reps: 1,
            budget: Duration::ZERO,
        };
        let mut calls = 0;
        measure(&plan, || {
            calls += 1;
            std::thread::sleep(Duration::from_millis(5));
            Ok::<_, ()>(())
        })
        .unwrap();
        // At least 30 ms of 5 ms runs, then one timed run.
        assert!(calls >= 7, "{calls} calls");
    }

    #[test]
    fn measure_stops_at_the_first_error() {
        let mut calls = 0;
        let r = measure(&Plan::quick(), || {
            calls += 1;
            Err::<(), _>("boom")
        });
        assert_eq!(r.unwrap_err(), "boom");
        assert_eq!(calls, 1);
    }
}
