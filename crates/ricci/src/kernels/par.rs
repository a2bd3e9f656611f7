//! Thread-pool helpers. All parallel work runs on rayon's current pool, so
//! `pool.install(..)` (as `ricci bench --threads` does) or
//! `RICCI_NUM_THREADS` decides the thread count.

use rayon::prelude::*;

/// Below this many elements a loop runs on one thread: the fork/join costs
/// more than it saves (measured: a rayon join is ~2-5 µs, a memory-bound loop
/// streams ~5 GB/s per core, so 32k f32 elements take about 25 µs).
pub const PAR_MIN_ELEMS: usize = 32 * 1024;

/// Elements per parallel task for memory-bound loops.
pub const PAR_CHUNK: usize = 16 * 1024;

/// Number of threads the current pool has.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Stack size of the pool's threads: the main thread's usual 8 MB, since
/// [`on_pool`] runs whole programs on a pool thread (rayon's default is 2 MB).
const POOL_STACK_BYTES: usize = 8 << 20;

/// Builds the global pool (once; later calls do nothing), with
/// `RICCI_NUM_THREADS` threads if set, else one per core.
pub fn init_from_env() {
    let n = std::env::var("RICCI_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .map(|n| n.max(1));
    let mut builder = rayon::ThreadPoolBuilder::new().stack_size(POOL_STACK_BYTES);
    if let Some(n) = n {
        builder = builder.num_threads(n);
    }
    let _ = builder.build_global();
}

/// Runs `f` on a thread of the current pool (the global one when called
/// from outside any pool) and returns its result.
///
/// A parallel op called from a thread outside the pool hands its work to
/// the pool and sleeps until it is done, so every op costs two cross-thread
/// wake-ups; called from a pool thread, the caller works on it and the other
/// threads steal. A training step makes hundreds of such calls: a tiny GPT
/// step on a 2-core VM measured about 470 context switches from `main`
/// against 58 from inside the pool, and a median step of 56.5 against
/// 54.2 ms. `ricci`'s commands run this way; programs that loop over many
/// ops should too.
///
/// ```
/// let inside = ricci::kernels::par::on_pool(|| rayon::current_thread_index().is_some());
/// assert!(inside);
/// ```
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

/// Single-thread pools for [`side_by_side`], created on first use and kept.
fn single_thread_pools(n: usize) -> Vec<std::sync::Arc<rayon::ThreadPool>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static POOLS: OnceLock<Mutex<Vec<Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    while pools.len() < n {
        let i = pools.len();
        let built = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .stack_size(POOL_STACK_BYTES)
            .thread_name(move |_| format!("ricci-shard-{i}"))
            .build();
        match built {
            Ok(pool) => pools.push(Arc::new(pool)),
            // No thread to be had: the caller runs the remaining pieces
            // itself (see `side_by_side`).
            Err(_) => break,
        }
    }
    pools.iter().take(n).cloned().collect()
}

/// Runs `f(0), .., f(n - 1)` at the same time, each on a thread of its own
/// whose pool has that one thread, so every kernel inside `f` runs
/// sequentially ([`threads`] is 1 there) and no op waits on another thread.
/// Returns the results in order.
///
/// This is data parallelism for work made of many small ops, such as the
/// forward and backward of a small model on a slice of the batch: two such
/// slices side by side on two cores run faster than the whole batch with
/// every op split over both cores, where each of hundreds of ops per step
/// pays a fork, a join and operands cold in the other core's cache. With
/// `n` at most 1, `f(0)` runs right here. If a thread cannot be created,
/// the pieces without one run on the caller's thread, one after another.
///
/// ```
/// let r = ricci::kernels::par::side_by_side(2, |i| (i, ricci::kernels::par::threads()));
/// assert_eq!(r, vec![(0, 1), (1, 1)]);
/// ```
pub fn side_by_side<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    if n <= 1 {
        return (0..n).map(&f).collect();
    }
    let pools = single_thread_pools(n);
    let f = &f;
    std::thread::scope(|scope| {
        // Each piece is handed to its pool from a short-lived helper
        // thread that sleeps until the piece is done; the pieces without
        // a pool (none, normally) run here meanwhile.
        let handles: Vec<_> = pools
            .iter()
            .enumerate()
            .map(|(i, pool)| scope.spawn(move || pool.install(|| f(i))))
            .collect();
        let rest: Vec<R> = (handles.len()..n).map(f).collect();
        handles
            .into_iter()
            // A panic inside `f` is re-raised here, as `rayon::join` does.
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .chain(rest)
            .collect()
    })
}

/// Fills `out` with `value`, in parallel when large.
pub fn fill<T: Copy + Send + Sync>(out: &mut [T], value: T) {
    if out.len() >= PAR_MIN_ELEMS && threads() > 1 {
        out.par_chunks_mut(PAR_CHUNK).for_each(|c| c.fill(value));
    } else {
        out.fill(value);
    }
}

/// Writes `row` into every row of `out` (`out.len()` a multiple of
/// `row.len()`), in parallel when large. An empty row writes nothing.
pub fn fill_rows<T: Copy + Send + Sync>(out: &mut [T], row: &[T]) {
    let n = row.len();
    if n == 0 {
        return;
    }
    let fill = |c: &mut [T]| c.chunks_exact_mut(n).for_each(|r| r.copy_from_slice(row));
    if out.len() >= PAR_MIN_ELEMS && threads() > 1 {
        let rows = rows_per_task(out.len() / n, n);
        out.par_chunks_mut(rows * n).for_each(fill);
    } else {
        fill(out);
    }
}

/// Splits `n` rows into chunks of about `target_elems / row_len` rows each.
pub fn rows_per_task(n_rows: usize, row_len: usize) -> usize {
    let target = PAR_CHUNK.max(row_len);
    (target / row_len.max(1)).clamp(1, n_rows.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_pool_runs_on_a_pool_thread_and_returns_the_result() {
        // From a plain thread: the work moves onto the global pool.
        let outside = std::thread::spawn(|| on_pool(|| (rayon::current_thread_index(), 7)))
            .join()
            .unwrap();
        assert!(outside.0.is_some(), "ran off the pool");
        assert_eq!(outside.1, 7);
        // Inside a pool: runs right there, on that pool.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let inside = pool.install(|| on_pool(|| (threads(), rayon::current_thread_index())));
        assert_eq!(inside.0, 3);
        assert!(inside.1.is_some());
    }

    #[test]
    fn side_by_side_runs_the_pieces_at_once_each_with_one_thread() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::{Duration, Instant};
        // Each piece checks in, then waits (at most 10 s) for all to have
        // checked in: run one after another, the first would wait it out.
        let arrived = AtomicUsize::new(0);
        let out = side_by_side(3, |i| {
            arrived.fetch_add(1, Ordering::SeqCst);
            let start = Instant::now();
            while arrived.load(Ordering::SeqCst) < 3 && start.elapsed() < Duration::from_secs(10) {
                std::thread::yield_now();
            }
            (i, threads(), arrived.load(Ordering::SeqCst))
        });
        assert_eq!(out, vec![(0, 1, 3), (1, 1, 3), (2, 1, 3)]);
        assert!(side_by_side(0, |i| i).is_empty());
        assert_eq!(side_by_side(1, |i| i + 5), vec![5]);
    }
}
