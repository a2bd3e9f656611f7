//! `Layout`: how a tensor's logical elements map onto its storage.
//!
//! A layout is a shape, a stride per dimension (counted in elements) and an
//! offset. Views (reshape, permute, narrow, broadcast, ...) only build a new
//! layout over the same storage; nothing is copied.

use smallvec::{smallvec, SmallVec};

use crate::error::{Error, Result};

/// Up to this many dimensions a shape or stride list lives inline, with no
/// heap allocation. Every op builds several layouts (its output's, and for
/// elementwise ops the broadcast and permuted views of each operand); with
/// `Vec`s they were about half of the 1,200 allocations of one
/// Hessian-vector product of a small MLP.
pub const INLINE_DIMS: usize = 6;
/// A list of sizes or dimension indices, inline up to [`INLINE_DIMS`].
pub type DimVec = SmallVec<[usize; INLINE_DIMS]>;
/// A list of strides, inline up to [`INLINE_DIMS`].
pub type StrideVec = SmallVec<[isize; INLINE_DIMS]>;

/// Shape, strides (in elements) and offset of a tensor view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: DimVec,
    strides: StrideVec,
    offset: usize,
}

/// Row-major (C-order) strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> StrideVec {
    let mut strides: StrideVec = smallvec![0; shape.len()];
    let mut acc = 1isize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d.max(1) as isize;
    }
    strides
}

/// The permutation that undoes `perm`.
pub fn inverse_permutation(perm: &[usize]) -> DimVec {
    let mut inv: DimVec = smallvec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// The order in which an elementwise op should walk its operands: the
/// memory order of the first operand that is not a broadcast view (as
/// PyTorch's TensorIterator does). Walking in this order keeps the inner
/// loop on unit stride, so a transposed input runs as fast as a contiguous
/// one, and the output takes the same memory layout as that operand.
pub fn iteration_order(layouts: &[&Layout]) -> DimVec {
    let rank = layouts.first().map_or(0, |l| l.rank());
    match layouts.iter().find(|l| !l.has_broadcast()) {
        Some(l) => l.memory_order(),
        None => (0..rank).collect(),
    }
}

/// Resolves a possibly negative dimension index against `rank`.
pub fn resolve_dim(op: &'static str, dim: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(Error::DimOutOfRange { op, dim, rank });
    }
    Ok(d as usize)
}

/// The numpy broadcast of two shapes.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<DimVec> {
    let n = a.len().max(b.len());
    let mut out: DimVec = smallvec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::shape(op, a, b));
        };
    }
    Ok(out)
}

impl Layout {
    /// A row-major layout of `shape` at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: DimVec::from_slice(shape),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout from raw parts; the caller guarantees it fits its storage.
    pub(crate) fn from_parts(shape: &[usize], strides: &[isize], offset: usize) -> Self {
        debug_assert_eq!(shape.len(), strides.len());
        Layout {
            shape: DimVec::from_slice(shape),
            strides: StrideVec::from_slice(strides),
            offset,
        }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn strides(&self) -> &[isize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the elements are laid out row-major with no gaps
    /// (size-1 dimensions may have any stride).
    pub fn is_contiguous(&self) -> bool {
        if self.numel() == 0 {
            return true;
        }
        let mut acc = 1isize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            acc *= d as isize;
        }
        true
    }

    /// The storage range `[start, end)` this view can touch (empty views give an empty range).
    pub fn storage_span(&self) -> (usize, usize) {
        if self.numel() == 0 {
            return (self.offset, self.offset);
        }
        let mut lo = self.offset as isize;
        let mut hi = self.offset as isize;
        for (&d, &s) in self.shape.iter().zip(&self.strides) {
            let ext = (d as isize - 1) * s;
            if ext < 0 {
                lo += ext;
            } else {
                hi += ext;
            }
        }
        (lo as usize, hi as usize + 1)
    }

    /// Logical row-major index -> storage offset (slow path for tests and Display).
    pub fn offset_of(&self, index: &[usize]) -> usize {
        let mut o = self.offset as isize;
        for (&i, &s) in index.iter().zip(&self.strides) {
            o += i as isize * s;
        }
        o as usize
    }

    /// The dims ordered as they lie in memory, outermost first (largest
    /// stride first; ties and size-1 dims keep their logical order). For a
    /// row-major layout this is `0..rank`; for a transposed matrix `[1, 0]`.
    pub fn memory_order(&self) -> DimVec {
        let mut order: DimVec = (0..self.rank()).collect();
        let key = |d: usize| {
            if self.shape[d] == 1 {
                None
            } else {
                Some(self.strides[d].unsigned_abs())
            }
        };
        // Insertion sort: stable, and ranks are small.
        for i in 1..order.len() {
            let mut j = i;
            while j > 0 {
                let (a, b) = (key(order[j - 1]), key(order[j]));
                match (a, b) {
                    (Some(x), Some(y)) if x < y => order.swap(j - 1, j),
                    _ => break,
                }
                j -= 1;
            }
        }
        order
    }

    /// True if some dimension longer than 1 has stride 0 (a broadcast view).
    pub fn has_broadcast(&self) -> bool {
        self.shape
            .iter()
            .zip(&self.strides)
            .any(|(&d, &s)| d > 1 && s == 0)
    }

    /// A view with new shape, or `None` when the strides cannot express it
    /// without a copy. `new_shape` must have the same element count.
    pub fn reshape_view(&self, new_shape: &[usize]) -> Option<Layout> {
        if self.is_contiguous() {
            return Some(Layout {
                shape: DimVec::from_slice(new_shape),
                strides: contiguous_strides(new_shape),
                offset: self.offset,
            });
        }
        // Drop size-1 dims, then split the old dims into runs that are
        // contiguous among themselves; each run must map to whole new dims.
        let old: Vec<(usize, isize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&d, _)| d != 1)
            .map(|(&d, &s)| (d, s))
            .collect();
        let mut new_strides: StrideVec = smallvec![0; new_shape.len()];
        let mut oi = 0; // index into old
        let mut ni = 0; // index into new_shape
        while ni < new_shape.len() && new_shape[ni] == 1 {
            new_strides[ni] = 1;
            ni += 1;
        }
        while oi < old.len() {
            // Grow a run of old dims [oi, oj) that are mutually contiguous.
            let mut run_size = old[oi].0;
            let mut oj = oi + 1;
            while oj < old.len() && old[oj - 1].1 == old[oj].1 * old[oj].0 as isize {
                run_size *= old[oj].0;
                oj += 1;
            }
            // Consume new dims whose product equals run_size.
            let mut prod = 1usize;
            let base_stride = old[oj - 1].1;
            let first_new = ni;
            while ni < new_shape.len() && prod < run_size {
                prod *= new_shape[ni];
                ni += 1;
            }
            if prod != run_size {
                return None;
            }
            // Trailing size-1 dims belong to this run too.
            while ni < new_shape.len() && new_shape[ni] == 1 {
                ni += 1;
            }
            let mut acc = base_stride;
            for k in (first_new..ni).rev() {
                new_strides[k] = acc;
                acc *= new_shape[k] as isize;
            }
            oi = oj;
        }
        if ni != new_shape.len() {
            return None;
        }
        Some(Layout {
            shape: DimVec::from_slice(new_shape),
            strides: new_strides,
            offset: self.offset,
        })
    }

    /// Reorders dimensions: `dims` must be a permutation of `0..rank`.
    pub fn permute(&self, dims: &[usize]) -> Result<Layout> {
        let rank = self.rank();
        let mut seen: SmallVec<[bool; INLINE_DIMS]> = smallvec![false; rank];
        if dims.len() != rank
            || dims
                .iter()
                .any(|&d| d >= rank || std::mem::replace(&mut seen[d], true))
        {
            return Err(Error::invalid(
                "permute",
                format!(
                    "{dims:?} is not a permutation of the {rank} dims of shape {:?}",
                    self.shape
                ),
            ));
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }

    /// Elements `start..start + len` along `dim`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        let size = self.shape[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::invalid(
                "narrow",
                format!(
                    "range {start}..{} is outside dim {dim} of size {size} (shape {:?})",
                    start.saturating_add(len),
                    self.shape
                ),
            ));
        }
        let mut l = self.clone();
        l.shape[dim] = len;
        if len > 0 {
            l.offset = (self.offset as isize + start as isize * self.strides[dim]) as usize;
        }
        Ok(l)
    }

    /// Elements `start, start + step, ...` below `end` along `dim` (`step > 0`).
    pub fn slice(&self, dim: usize, start: usize, end: usize, step: usize) -> Result<Layout> {
        let size = self.shape[dim];
        if step == 0 {
            return Err(Error::invalid("slice", "step must be positive"));
        }
        let end = end.min(size);
        let start = start.min(end);
        let len = (end - start).div_ceil(step);
        let mut l = self.clone();
        l.shape[dim] = len;
        if len > 0 {
            l.offset = (self.offset as isize + start as isize * self.strides[dim]) as usize;
        }
        l.strides[dim] = self.strides[dim] * step as isize;
        Ok(l)
    }

    /// Broadcasts to `shape` with numpy rules (new leading dims, size-1 dims stretched with stride 0).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let op = "broadcast_to";
        if shape.len() < self.rank() {
            return Err(Error::shape(op, &self.shape, shape));
        }
        let lead = shape.len() - self.rank();
        let mut strides: StrideVec = smallvec![0; shape.len()];
        for i in 0..self.rank() {
            let (d, t) = (self.shape[i], shape[lead + i]);
            if d == t {
                strides[lead + i] = self.strides[i];
            } else if d != 1 {
                return Err(Error::shape(op, &self.shape, shape));
            }
        }
        Ok(Layout {
            shape: DimVec::from_slice(shape),
            strides,
            offset: self.offset,
        })
    }

    /// Removes `dim` (which must have size 1).
    pub fn squeeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        if l.shape[dim] == 1 {
            l.shape.remove(dim);
            l.strides.remove(dim);
        }
        l
    }

    /// Inserts a size-1 dim at `dim` (`0..=rank`).
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        let stride = if dim < l.rank() {
            l.strides[dim] * l.shape[dim] as isize
        } else {
            1
        };
        l.shape.insert(dim, 1);
        l.strides.insert(dim, stride);
        l
    }

    /// The diagonal of dims `d0`, `d1` (with `offset` as numpy), appended as the last dim.
    pub fn diagonal(&self, offset: isize, d0: usize, d1: usize) -> Result<Layout> {
        if d0 == d1 {
            return Err(Error::invalid(
                "diagonal",
                format!("dims must differ, got {d0} twice"),
            ));
        }
        let (n0, n1) = (self.shape[d0] as isize, self.shape[d1] as isize);
        let (start0, start1) = if offset >= 0 {
            (0, offset)
        } else {
            (-offset, 0)
        };
        let len = (n0 - start0).min(n1 - start1).max(0) as usize;
        let mut shape = DimVec::with_capacity(self.rank() - 1);
        let mut strides = StrideVec::with_capacity(self.rank() - 1);
        for i in 0..self.rank() {
            if i != d0 && i != d1 {
                shape.push(self.shape[i]);
                strides.push(self.strides[i]);
            }
        }
        shape.push(len);
        strides.push(self.strides[d0] + self.strides[d1]);
        let off = if len > 0 {
            (self.offset as isize + start0 * self.strides[d0] + start1 * self.strides[d1]) as usize
        } else {
            self.offset
        };
        Ok(Layout {
            shape,
            strides,
            offset: off,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_view_of_a_transposed_matrix_needs_a_copy() {
        let l = Layout::contiguous(&[2, 3]).permute(&[1, 0]).unwrap();
        assert!(l.reshape_view(&[6]).is_none());
        assert!(l.reshape_view(&[3, 2]).is_some());
        let l = l.unsqueeze(0);
        let v = l.reshape_view(&[3, 1, 2]).unwrap();
        assert_eq!(v.strides()[2], 3);
    }

    #[test]
    fn reshape_view_splits_and_merges_contiguous_runs() {
        // [4, 6] narrowed to [4, 3]: rows are separate runs of 3.
        let l = Layout::contiguous(&[4, 6]).narrow(1, 0, 3).unwrap();
        let v = l.reshape_view(&[2, 2, 3]).unwrap();
        assert_eq!(v.strides(), &[12, 6, 1]);
        assert!(l.reshape_view(&[12]).is_none());
        let v = l.reshape_view(&[4, 3, 1]).unwrap();
        assert_eq!(&v.strides()[..2], &[6, 1]);
    }

    #[test]
    fn memory_order_sorts_dims_by_stride() {
        let l = Layout::contiguous(&[2, 3, 4]).permute(&[2, 0, 1]).unwrap();
        assert_eq!(l.memory_order()[..], [1, 2, 0]);
        assert_eq!(inverse_permutation(&[2, 0, 1])[..], [1, 2, 0]);
        assert_eq!(Layout::contiguous(&[2, 1, 4]).memory_order()[..], [0, 1, 2]);
    }

    #[test]
    fn broadcast_shapes_follows_numpy() {
        assert_eq!(broadcast_shapes("t", &[3, 1], &[4]).unwrap()[..], [3, 4]);
        assert_eq!(broadcast_shapes("t", &[], &[2, 2]).unwrap()[..], [2, 2]);
        assert!(broadcast_shapes("t", &[3], &[4]).is_err());
    }
}
