//! Unfolding and folding, the mode-n product, Khatri-Rao and Kronecker
//! products (conventions in the [module doc](super)). All are built from
//! views, broadcast multiplies and matmul, so they are differentiable and
//! copy only where the strides cannot express the result.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

fn check_mode(op: &'static str, x: &Tensor, mode: usize) -> Result<()> {
    if mode >= x.rank() {
        return Err(Error::DimOutOfRange {
            op,
            dim: mode as i64,
            rank: x.rank(),
        });
    }
    Ok(())
}

/// `(∏ of dims before mode, Iₙ, ∏ of dims after mode)`.
pub(crate) fn split_at_mode(shape: &[usize], mode: usize) -> (usize, usize, usize) {
    (
        shape[..mode].iter().product(),
        shape[mode],
        shape[mode + 1..].iter().product(),
    )
}

/// The mode-`mode` unfolding `X₍ₙ₎: [Iₙ, ∏_{m≠n} Iₘ]` (TensorLy's C-order
/// convention: `moveaxis(x, mode, 0).reshape(Iₙ, -1)`). A view for mode 0
/// of a contiguous tensor, a copy otherwise.
///
/// ```
/// # use ricci::{decomp, DType, Tensor};
/// let x = Tensor::arange(0.0, 24.0, 1.0, DType::F64)?.reshape([2, 3, 4])?;
/// let x1 = decomp::unfold(&x, 1)?;
/// assert_eq!(x1.shape(), &[3, 8]);
/// // Row j holds x[:, j, :] in C order.
/// assert_eq!(x1.narrow(0, 1, 1)?.to_vec::<f64>()?, vec![4.0, 5.0, 6.0, 7.0, 16.0, 17.0, 18.0, 19.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn unfold(x: &Tensor, mode: usize) -> Result<Tensor> {
    check_mode("unfold", x, mode)?;
    let rows = x.shape()[mode];
    let cols = x.numel().checked_div(rows).unwrap_or(0);
    x.movedim(mode, 0)?.reshape([rows, cols])
}

/// The inverse of [`unfold`]: the tensor of `shape` whose mode-`mode`
/// unfolding is `m: [shape[mode], ∏ other dims]`.
///
/// ```
/// # use ricci::{decomp, DType, Rng, Tensor};
/// let x = Tensor::randn(&[2, 3, 4], DType::F32, &mut Rng::new(0));
/// let back = decomp::fold(&decomp::unfold(&x, 2)?, 2, &[2, 3, 4])?;
/// assert_eq!(back.to_vec::<f32>()?, x.to_vec::<f32>()?);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn fold(m: &Tensor, mode: usize, shape: &[usize]) -> Result<Tensor> {
    let op = "fold";
    if mode >= shape.len() {
        return Err(Error::DimOutOfRange {
            op,
            dim: mode as i64,
            rank: shape.len(),
        });
    }
    let rows = shape[mode];
    let numel: usize = shape.iter().product();
    if m.rank() != 2 || m.shape()[0] != rows || m.numel() != numel {
        return Err(Error::invalid(
            op,
            format!(
                "a matrix of shape {:?} is not a mode-{mode} unfolding of shape {shape:?} (expected [{rows}, {}])",
                m.shape(),
                numel.checked_div(rows).unwrap_or(0)
            ),
        ));
    }
    let mut moved = vec![rows];
    moved.extend(
        shape
            .iter()
            .enumerate()
            .filter(|&(d, _)| d != mode)
            .map(|(_, &n)| n),
    );
    m.reshape(moved)?.movedim(0, mode)
}

/// The mode-`mode` product `X ×ₙ M` for `m: [J, Iₙ]`: every mode-`n` fibre
/// of `x` multiplied by `m`, giving shape `I` with `Iₙ` replaced by `J`.
/// One (batched) matmul on a view of `x`; no unfolding is copied.
///
/// ```
/// # use ricci::{decomp, DType, Rng, Tensor};
/// let mut rng = Rng::new(0);
/// let x = Tensor::randn(&[2, 3, 4], DType::F64, &mut rng);
/// let m = Tensor::randn(&[5, 3], DType::F64, &mut rng);
/// let y = decomp::mode_product(&x, &m, 1)?;
/// assert_eq!(y.shape(), &[2, 5, 4]);
/// // (X ×₁ M)₍₁₎ = M X₍₁₎
/// let want = m.matmul(&decomp::unfold(&x, 1)?)?;
/// let diff = decomp::unfold(&y, 1)?.sub(&want)?.abs().max_all()?.to_f64()?;
/// assert!(diff < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn mode_product(x: &Tensor, m: &Tensor, mode: usize) -> Result<Tensor> {
    let op = "mode_product";
    check_mode(op, x, mode)?;
    if m.rank() != 2 || m.shape()[1] != x.shape()[mode] {
        return Err(Error::invalid(
            op,
            format!(
                "mode {mode} of x {:?} has size {}, so the matrix must be [J, {}], got {:?}",
                x.shape(),
                x.shape()[mode],
                x.shape()[mode],
                m.shape()
            ),
        ));
    }
    let (p, i, s) = split_at_mode(x.shape(), mode);
    let j = m.shape()[0];
    let out = if s == 1 {
        // The last mode: one [P, I] x [I, J] product.
        x.reshape([p, i])?.matmul(&m.t()?)?
    } else if p == 1 {
        m.matmul(&x.reshape([i, s])?)?
    } else {
        // M broadcast over the P leading items: [J, I] x [P, I, S].
        m.matmul(&x.reshape([p, i, s])?)?
    };
    let mut shape = x.shape().to_vec();
    shape[mode] = j;
    out.reshape(shape)
}

fn check_matrices(op: &'static str, mats: &[&Tensor]) -> Result<()> {
    if mats.is_empty() {
        return Err(Error::invalid(op, "needs at least one matrix"));
    }
    if let Some(bad) = mats.iter().find(|m| m.rank() != 2) {
        return Err(Error::invalid(
            op,
            format!(
                "every operand must be a matrix, got shape {:?}",
                bad.shape()
            ),
        ));
    }
    Ok(())
}

/// The Khatri-Rao (column-wise Kronecker) product of matrices with a common
/// column count `R`: `[∏ Iₖ, R]`, rows of the first matrix varying slowest
/// (TensorLy's order), column `r` being `a₀ᵣ ⊗ a₁ᵣ ⊗ …`.
///
/// ```
/// # use ricci::{decomp, Tensor};
/// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = Tensor::from_vec(vec![1.0f64, 10.0, 100.0, 1000.0, 0.0, 1.0], &[3, 2])?;
/// let kr = decomp::khatri_rao(&[&a, &b])?;
/// assert_eq!(kr.shape(), &[6, 2]);
/// // Row i*3 + j is a[i] * b[j].
/// assert_eq!(kr.narrow(0, 4, 1)?.to_vec::<f64>()?, vec![300.0, 4000.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn khatri_rao(mats: &[&Tensor]) -> Result<Tensor> {
    let op = "khatri_rao";
    check_matrices(op, mats)?;
    let r = mats[0].shape()[1];
    if let Some(bad) = mats.iter().find(|m| m.shape()[1] != r) {
        return Err(Error::shape(op, mats[0].shape(), bad.shape()));
    }
    let mut acc = mats[0].clone();
    for b in &mats[1..] {
        let rows = acc.shape()[0] * b.shape()[0];
        acc = acc
            .unsqueeze(1)?
            .mul(&b.unsqueeze(0)?)?
            .reshape([rows, r])?;
    }
    Ok(acc)
}

/// The Kronecker product `A₀ ⊗ A₁ ⊗ …` of matrices: `[∏ mₖ, ∏ nₖ]`, with
/// `(A ⊗ B)[i·p + k, j·q + l] = A[i, j] B[k, l]` for `B: [p, q]`.
///
/// ```
/// # use ricci::{decomp, Tensor};
/// let a = Tensor::from_vec(vec![1.0f64, 2.0], &[1, 2])?;
/// let b = Tensor::from_vec(vec![1.0f64, 10.0], &[2, 1])?;
/// let k = decomp::kronecker(&[&a, &b])?;
/// assert_eq!(k.shape(), &[2, 2]);
/// assert_eq!(k.to_vec::<f64>()?, vec![1.0, 2.0, 10.0, 20.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn kronecker(mats: &[&Tensor]) -> Result<Tensor> {
    check_matrices("kronecker", mats)?;
    let mut acc = mats[0].clone();
    for b in &mats[1..] {
        let (m, n) = (acc.shape()[0], acc.shape()[1]);
        let (p, q) = (b.shape()[0], b.shape()[1]);
        acc = acc
            .reshape([m, 1, n, 1])?
            .mul(&b.reshape([1, p, 1, q])?)?
            .reshape([m * p, n * q])?;
    }
    Ok(acc)
}
