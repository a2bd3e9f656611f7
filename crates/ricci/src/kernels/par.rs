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
}
