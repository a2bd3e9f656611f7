//! `Storage`: the flat buffer behind one or more tensor views, and the
//! caching pool that recycles buffers.
//!
//! A fresh large buffer costs a page fault per 4 KiB page the first time it
//! is written; in a training step that repeats the same shapes this is pure
//! waste. As PyTorch's caching allocator does on GPUs, dropped buffers of at
//! least [`POOL_MIN_ELEMS`] elements go back to a pool keyed by exact length
//! and are handed out again, so a steady-state loop asks the OS for nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use super::element::{DType, Element};

/// The element buffer of a tensor. The enum is the seam where other dtypes
/// and devices will go.
#[derive(Debug)]
pub enum Storage {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Storage {
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The buffer as `&[T]`, or `None` if `T` is not this storage's dtype.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::from_storage(self)
    }
    /// The elements of a contiguous `layout` over this buffer, for a kernel
    /// of op `op`; an error naming `op` if `T` is not this storage's dtype.
    pub(crate) fn contiguous_span<T: Element>(
        &self,
        layout: &super::Layout,
        op: &'static str,
    ) -> crate::error::Result<&[T]> {
        debug_assert!(layout.is_contiguous());
        let off = layout.offset();
        self.as_slice::<T>()
            .map(|v| &v[off..off + layout.numel()])
            .ok_or_else(|| crate::error::Error::invalid(op, "storage dtype"))
    }
    /// The buffer as `&mut [T]`, or `None` if `T` is not this storage's dtype.
    pub fn as_mut_slice<T: Element>(&mut self) -> Option<&mut [T]> {
        T::from_storage_mut(self)
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        match self {
            Storage::F32(v) => recycle(std::mem::take(v)),
            Storage::F64(v) => recycle(std::mem::take(v)),
        }
    }
}

/// Conversions between a typed `Vec` and `Storage`.
pub trait StorageElement: Sized + 'static {
    fn into_storage(v: Vec<Self>) -> Storage;
    fn from_storage(s: &Storage) -> Option<&[Self]>;
    fn from_storage_mut(s: &mut Storage) -> Option<&mut [Self]>;
    fn pool() -> &'static Mutex<Pool<Self>>;
}

macro_rules! impl_storage_element {
    ($t:ty, $v:ident, $pool:ident) => {
        static $pool: Mutex<Pool<$t>> = Mutex::new(Pool::new());
        impl StorageElement for $t {
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$v(v)
            }
            fn from_storage(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn from_storage_mut(s: &mut Storage) -> Option<&mut [Self]> {
                match s {
                    Storage::$v(v) => Some(v),
                    _ => None,
                }
            }
            fn pool() -> &'static Mutex<Pool<Self>> {
                &$pool
            }
        }
    };
}
impl_storage_element!(f32, F32, POOL_F32);
impl_storage_element!(f64, F64, POOL_F64);

/// Buffers shorter than this are left to the system allocator. Smaller
/// ones are pooled too: a Hessian-vector product of a 784-64-10 MLP frees
/// a few dozen `[128, 64]` buffers at once, glibc then hands the top of
/// its heap back to the OS and faults it in again on the next call. On 1
/// thread that product took 560 µs with a 16 K-element minimum, 500 µs
/// with 4 K and 490 µs with 1 K (the same as raising glibc's trim
/// threshold).
pub const POOL_MIN_ELEMS: usize = 1024;
/// The pool holds at most this many bytes per dtype (override with `RICCI_POOL_MB`).
const DEFAULT_POOL_BYTES: usize = 1 << 30;

/// Free buffers keyed by exact length.
pub struct Pool<T> {
    free: Option<HashMap<usize, Vec<Vec<T>>>>,
    bytes: usize,
}

impl<T> Pool<T> {
    const fn new() -> Self {
        Pool {
            free: None,
            bytes: 0,
        }
    }
}

fn pool_limit_bytes() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("RICCI_POOL_MB")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .map(|mb| mb << 20)
            .unwrap_or(DEFAULT_POOL_BYTES)
    })
}

/// Returns a buffer to the pool for [`alloc_uninit`] to hand out again
/// (dropped instead when too small or when the pool is full).
pub fn recycle<T: StorageElement>(v: Vec<T>) {
    let n = v.len();
    if n < POOL_MIN_ELEMS || v.capacity() != n {
        return;
    }
    let bytes = n * std::mem::size_of::<T>();
    let Ok(mut pool) = T::pool().lock() else {
        return;
    };
    if pool.bytes + bytes > pool_limit_bytes() {
        return;
    }
    pool.bytes += bytes;
    pool.free
        .get_or_insert_with(HashMap::new)
        .entry(n)
        .or_default()
        .push(v);
}

/// A buffer of `n` elements whose contents are unspecified (but initialised):
/// the caller overwrites every element. Recycled from the pool when possible.
pub fn alloc_uninit<T: Element>(n: usize) -> Vec<T> {
    if n >= POOL_MIN_ELEMS {
        if let Ok(mut pool) = T::pool().lock() {
            let hit = pool
                .free
                .as_mut()
                .and_then(|m| m.get_mut(&n))
                .and_then(|list| list.pop());
            if let Some(v) = hit {
                pool.bytes -= n * std::mem::size_of::<T>();
                return v;
            }
        }
    }
    let v = vec![T::ZERO; n];
    advise_huge_pages(&v);
    v
}

/// Fresh buffers of at least this many bytes are backed by transparent huge
/// pages where the kernel offers them on request (`madvise` mode), as numpy
/// does for its arrays of 4 MB and more.
const HUGE_PAGE_MIN_BYTES: usize = 4 << 20;

/// Asks Linux to back the 2 MB-aligned part of a fresh buffer with huge
/// pages: one TLB entry per 2 MB instead of per 4 KB, which matters for
/// strided reads (a diagonal, a matrix column) and for the packing of large
/// matrix products, and one page fault per 2 MB. It takes effect at first
/// touch; a buffer the allocator reused (and zeroed) is left to the
/// kernel's background collapsing. Advisory: a kernel without transparent
/// huge pages ignores it.
fn advise_huge_pages<T>(v: &[T]) {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::{c_int, c_void};
        const HUGE: usize = 2 << 20;
        const MADV_HUGEPAGE: c_int = 14;
        extern "C" {
            fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
        }
        let bytes = std::mem::size_of_val(v);
        if bytes < HUGE_PAGE_MIN_BYTES {
            return;
        }
        let start = v.as_ptr() as usize;
        let (first, end) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
        if end > first {
            // SAFETY: the range lies inside `v`'s allocation and is page
            // aligned; MADV_HUGEPAGE changes no contents, only how pages
            // are backed, and its failure is harmless (hence ignored).
            unsafe {
                madvise(first as *mut c_void, end - first, MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// A buffer of `n` zeros (recycled when possible).
pub fn alloc_zeroed<T: Element>(n: usize) -> Vec<T> {
    if n >= POOL_MIN_ELEMS {
        let mut v = alloc_uninit::<T>(n);
        crate::kernels::par::fill(&mut v, T::ZERO);
        v
    } else {
        vec![T::ZERO; n]
    }
}

/// Bytes currently held by the pool for both dtypes (for tests and `ricci bench`).
pub fn pool_bytes() -> usize {
    let a = f32::pool().lock().map(|p| p.bytes).unwrap_or(0);
    let b = f64::pool().lock().map(|p| p.bytes).unwrap_or(0);
    a + b
}

/// Returns every pooled buffer to the system allocator.
pub fn empty_pool() {
    if let Ok(mut p) = f32::pool().lock() {
        p.free = None;
        p.bytes = 0;
    }
    if let Ok(mut p) = f64::pool().lock() {
        p.free = None;
        p.bytes = 0;
    }
}
