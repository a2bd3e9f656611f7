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

/// Sets the global pool size from `RICCI_NUM_THREADS` (once; later calls do nothing).
pub fn init_from_env() {
    if let Some(n) = std::env::var("RICCI_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global();
    }
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
/// `row.len()`, which is not empty), in parallel when large.
pub fn fill_rows<T: Copy + Send + Sync>(out: &mut [T], row: &[T]) {
    let n = row.len();
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
