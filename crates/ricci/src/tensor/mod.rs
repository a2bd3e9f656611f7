//! The `Tensor` handle: a cheap-to-clone, immutable view of n-d data.
//!
//! A tensor is `Arc<Node>`; a node holds its storage (shared between views),
//! a [`Layout`] (shape, strides, offset), its dtype, and the autograd slot
//! (`requires_grad` and the `grad_fn` of the op that made it).

mod create;
mod display;
mod element;
mod layout;
mod rng;
mod storage;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use element::{DType, Element};
pub use layout::{
    broadcast_shapes, contiguous_strides, inverse_permutation, iteration_order, resolve_dim,
    DimVec, Layout, StrideVec, INLINE_DIMS,
};
pub use rng::Rng;
pub use storage::{
    alloc_uninit, alloc_zeroed, empty_pool, pool_bytes, recycle, Storage, StorageElement,
};

use crate::autograd::GradFn;
use crate::error::{Error, Result};

/// A unique identity of a tensor node (views of one storage have different ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct Node {
    id: TensorId,
    storage: Arc<RwLock<Storage>>,
    layout: Layout,
    dtype: DType,
    requires_grad: bool,
    grad_fn: Option<Arc<dyn GradFn>>,
}

impl Drop for Node {
    /// Drops the graph behind this node iteratively: a chain of 100,000
    /// recorded ops would otherwise drop recursively and overflow the stack.
    fn drop(&mut self) {
        let Some(mut f) = self.grad_fn.take() else {
            return;
        };
        let mut stack: Vec<Tensor> = match Arc::get_mut(&mut f) {
            Some(f) => f.take_inputs(),
            None => return,
        };
        drop(f);
        while let Some(mut t) = stack.pop() {
            if let Some(node) = Arc::get_mut(&mut t.0) {
                if let Some(mut g) = node.grad_fn.take() {
                    if let Some(g) = Arc::get_mut(&mut g) {
                        stack.extend(g.take_inputs());
                    }
                }
            }
        }
    }
}

/// An n-dimensional array of `f32` or `f64`.
///
/// Cloning is cheap (a reference count). Views (`reshape`, `permute`,
/// `narrow`, `broadcast_to`, ...) share storage; arithmetic makes new tensors.
///
/// ```
/// use ricci::{Tensor, DType};
/// let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32)?.reshape([2, 3])?;
/// assert_eq!(x.shape(), &[2, 3]);
/// assert_eq!(x.t()?.to_vec::<f32>()?, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone)]
pub struct Tensor(Arc<Node>);

/// Dispatches on a storage's dtype, binding `$s` to the typed slice and the
/// type alias `$T` to its element type, then evaluates `$body` for it.
macro_rules! with_dtype {
    ($storage:expr, $T:ident, $s:ident => $body:expr) => {
        match $storage {
            $crate::tensor::Storage::F32($s) => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::tensor::Storage::F64($s) => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_dtype;

/// Dispatches on a `DType` value, binding the type alias `$T`.
macro_rules! with_type {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            $crate::tensor::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::tensor::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_type;

impl Tensor {
    /// Wraps a typed buffer laid out row-major in `shape`.
    pub(crate) fn from_typed<T: Element>(data: Vec<T>, shape: &[usize]) -> Tensor {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        Tensor::from_storage(T::into_storage(data), Layout::contiguous(shape))
    }

    /// Wraps a buffer written row-major in the permuted shape
    /// `shape[order[0]], shape[order[1]], ...` as a tensor of logical `shape`
    /// (a permuted view of it; no copy). `order` is an iteration order from
    /// [`iteration_order`].
    pub(crate) fn from_typed_in_order<T: Element>(
        data: Vec<T>,
        shape: &[usize],
        order: &[usize],
    ) -> Tensor {
        if order.iter().enumerate().all(|(i, &d)| i == d) {
            return Tensor::from_typed(data, shape);
        }
        let permuted: DimVec = order.iter().map(|&d| shape[d]).collect();
        let mem = Layout::contiguous(&permuted);
        let inv = inverse_permutation(order);
        let layout = mem
            .permute(&inv)
            .unwrap_or_else(|_| Layout::contiguous(shape));
        Tensor::from_storage(T::into_storage(data), layout)
    }

    pub(crate) fn from_storage(storage: Storage, layout: Layout) -> Tensor {
        let dtype = storage.dtype();
        Tensor(Arc::new(Node {
            id: TensorId::next(),
            storage: Arc::new(RwLock::new(storage)),
            layout,
            dtype,
            requires_grad: false,
            grad_fn: None,
        }))
    }

    /// A new view of this tensor's storage with another layout (no copy).
    pub(crate) fn view_with(&self, layout: Layout) -> Tensor {
        Tensor(Arc::new(Node {
            id: TensorId::next(),
            storage: Arc::clone(&self.0.storage),
            layout,
            dtype: self.0.dtype,
            requires_grad: false,
            grad_fn: None,
        }))
    }

    /// This tensor with the autograd fields set (used by recorded ops).
    pub(crate) fn with_grad_fn(mut self, grad_fn: Arc<dyn GradFn>) -> Tensor {
        // An op's fresh output is its only handle: set the fields in place.
        if let Some(node) = Arc::get_mut(&mut self.0) {
            node.requires_grad = true;
            node.grad_fn = Some(grad_fn);
            return self;
        }
        let node = Node {
            id: self.0.id,
            storage: Arc::clone(&self.0.storage),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            requires_grad: true,
            grad_fn: Some(grad_fn),
        };
        Tensor(Arc::new(node))
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }
    /// Alias of [`Tensor::shape`], as candle names it.
    pub fn dims(&self) -> &[usize] {
        self.shape()
    }
    /// The size of dimension `dim` (negative counts from the end).
    pub fn size(&self, dim: i64) -> Result<usize> {
        let d = resolve_dim("size", dim, self.rank())?;
        Ok(self.shape()[d])
    }
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }
    pub fn rank(&self) -> usize {
        self.0.layout.rank()
    }
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }
    /// The strides (in elements) of this view.
    pub fn stride(&self) -> &[isize] {
        self.0.layout.strides()
    }
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }
    pub fn id(&self) -> TensorId {
        self.0.id
    }
    /// True when this tensor's elements are row-major with no gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }
    /// True when `self` and `other` share storage (one is a view of the other).
    pub fn shares_storage_with(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }
    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }
    /// The recorded op that made this tensor, if any.
    pub fn grad_fn(&self) -> Option<&Arc<dyn GradFn>> {
        self.0.grad_fn.as_ref()
    }

    /// A leaf that shares this tensor's data and asks for gradients.
    pub fn set_requires_grad(&self, requires_grad: bool) -> Tensor {
        Tensor(Arc::new(Node {
            id: TensorId::next(),
            storage: Arc::clone(&self.0.storage),
            layout: self.0.layout.clone(),
            dtype: self.0.dtype,
            requires_grad,
            grad_fn: None,
        }))
    }

    /// The same data cut out of the graph (shares storage).
    pub fn detach(&self) -> Tensor {
        self.set_requires_grad(false)
    }

    /// Read access to the storage. Poisoned locks are recovered: storage
    /// holds plain numbers, so a panic elsewhere cannot leave it inconsistent.
    pub(crate) fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        self.0.storage.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access for in-place updates (optimizers). Callers must hold no read guard.
    pub(crate) fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The elements in logical row-major order. Errors if `T` is not the dtype.
    ///
    /// ```
    /// # use ricci::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(x.t()?.to_vec::<f64>()?, vec![1.0, 3.0, 2.0, 4.0]);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::invalid(
                "to_vec",
                format!(
                    "tensor is {} but {} was asked for (use to_dtype or to_vec_f64)",
                    self.dtype(),
                    T::DTYPE
                ),
            ));
        }
        let storage = self.storage();
        let src = &storage
            .as_slice::<T>()
            .ok_or_else(|| Error::invalid("to_vec", "storage dtype"))?;
        // Every element is written: a pooled buffer needs no clearing (and
        // a large fresh one would cost a page fault per 4 KB).
        let mut out = crate::tensor::alloc_uninit::<T>(self.numel());
        crate::kernels::strided::copy_to_contiguous(src, self.layout(), &mut out);
        Ok(out)
    }

    /// The elements converted to `f64`, in logical row-major order.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        let storage = self.storage();
        with_dtype!(&*storage, T, s => {
            let mut out = vec![T::ZERO; self.numel()];
            crate::kernels::strided::copy_to_contiguous(s, self.layout(), &mut out);
            out.into_iter().map(|x| x.to_f64()).collect()
        })
    }

    /// The single element of a tensor with one element (any rank).
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "to_scalar",
                format!(
                    "tensor of shape {:?} has {} elements, not 1",
                    self.shape(),
                    self.numel()
                ),
            ));
        }
        if T::DTYPE != self.dtype() {
            return Err(Error::invalid(
                "to_scalar",
                format!(
                    "tensor is {} but {} was asked for (use to_f64)",
                    self.dtype(),
                    T::DTYPE
                ),
            ));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// The single element as `f64`, whatever the dtype.
    pub fn to_f64(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::invalid(
                "to_f64",
                format!(
                    "tensor of shape {:?} has {} elements, not 1",
                    self.shape(),
                    self.numel()
                ),
            ));
        }
        Ok(self.to_vec_f64()[0])
    }

    /// Checks that `self` and `other` have the same dtype.
    pub(crate) fn same_dtype(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: other.dtype(),
            });
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor[{:?}, {}]", self.shape(), self.dtype())
    }
}
