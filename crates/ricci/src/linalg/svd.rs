//! Singular value decomposition `A = U diag(S) Vᵀ`, singular values descending.
//!
//! VJP of the thin SVD (Townsend 2016, in the form torch uses), with
//! `k = min(m, n)`, `F_ij = 1/(σⱼ² − σᵢ²)` off the diagonal and
//! `skew(X) = X − Xᵀ`:
//!
//! ```text
//! C  = F ∘ (skew(Uᵀ dU) S + S skew(Vᵀ dV)) + diag(dS)
//! dA = U C Vᵀ + (I − U Uᵀ) dU S⁻¹ Vᵀ + U S⁻¹ dVᵀ (I − V Vᵀ)
//! ```
//!
//! (the last two terms only for tall, respectively wide, matrices). `F`
//! and `S⁻¹` use [`super::safe_recip`]: at repeated or zero singular values
//! the gradient is finite; the module doc of [`super`] says when it is exact.

use faer::diag::Diag;
use faer::linalg::svd::{self as fsvd, ComputeSvdVectors};
use faer::Mat;

use super::{
    diag_embed, from_mats, from_mats_transposed, from_vecs, matrix_dims, mt, par_map, record_multi,
    recording, safe_recip, svd_params, with_stack, Batch, Scalar,
};
use crate::error::{Error, Result};
use crate::tensor::{with_type, Tensor};

/// The result of [`svd`] / [`svd_thin`]: `A = U diag(S) Vᵀ`.
#[derive(Clone, Debug)]
pub struct Svd {
    /// Left singular vectors, `[..., m, m]` (full) or `[..., m, k]` (thin).
    pub u: Tensor,
    /// Singular values, descending, `[..., k]` with `k = min(m, n)`.
    pub s: Tensor,
    /// Right singular vectors transposed (numpy's `vh`), `[..., n, n]` or `[..., k, n]`.
    pub vt: Tensor,
}

impl Svd {
    /// `U[..., :k] diag(S) Vᵀ[..., :k, :]`, the matrix this SVD factors.
    ///
    /// ```
    /// # use ricci::{Tensor, DType, Rng, linalg};
    /// let a = Tensor::randn(&[4, 3], DType::F64, &mut Rng::new(0));
    /// let back = linalg::svd(&a)?.reconstruct()?;
    /// assert!(back.sub(&a)?.abs().max_all()?.to_f64()? < 1e-12);
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn reconstruct(&self) -> Result<Tensor> {
        let k = self.s.shape()[self.s.rank() - 1];
        let u = self.u.narrow(-1, 0, k)?;
        let vt = self.vt.narrow(-2, 0, k)?;
        u.mul(&self.s.unsqueeze(-2)?)?.matmul(&vt)
    }
}

/// Raw SVD of every matrix (no graph). `vectors`: None for values only.
fn svd_raw<T: Scalar>(
    a: &Tensor,
    vectors: Option<ComputeSvdVectors>,
) -> Result<(Option<Tensor>, Tensor, Option<Tensor>)> {
    let op = "svd";
    let (batch, m, n) = matrix_dims(op, a)?;
    let k = m.min(n);
    let b = Batch::<T>::new(a, m, n)?;
    // No vectors (svdvals): empty matrices, nothing allocated for them.
    let (urows, vrows, ucols, vcols) = match vectors {
        Some(ComputeSvdVectors::Full) => (m, n, m, n),
        Some(_) => (m, n, k, k),
        None => (0, 0, 0, 0),
    };
    let compute = vectors.unwrap_or(ComputeSvdVectors::No);
    let flops = 4.0 * (m * n * k) as f64 + 8.0 * (k * k * k) as f64;
    let parts = par_map(b.count, flops, |i, par| {
        b.require_finite(op, i, false)?;
        let mut s = Diag::<T>::zeros(k);
        let mut u = Mat::<T>::zeros(urows, ucols);
        let mut v = Mat::<T>::zeros(vrows, vcols);
        let want = vectors.is_some();
        let params = svd_params::<T>().into();
        let req = fsvd::svd_scratch::<T>(m, n, compute, compute, par, params);
        with_stack(req, |stack| {
            fsvd::svd(
                b.mat(i),
                s.as_mut(),
                want.then(|| u.as_mut()),
                want.then(|| v.as_mut()),
                par,
                stack,
                params,
            )
        })
        .map_err(|_| Error::NotConverged {
            op,
            iterations: None,
        })?;
        let sv: Vec<T> = (0..k).map(|j| s[j]).collect();
        Ok((u, sv, v))
    })?;
    let mut us = Vec::with_capacity(parts.len());
    let mut svs = Vec::with_capacity(parts.len());
    let mut vs = Vec::with_capacity(parts.len());
    for (u, sv, v) in parts {
        us.push(u);
        svs.push(sv);
        vs.push(v);
    }
    let s = from_vecs(&batch, svs, k);
    if vectors.is_none() {
        return Ok((None, s, None));
    }
    Ok((
        Some(from_mats(&batch, &us, m, ucols)),
        s,
        Some(from_mats_transposed(&batch, &vs, n, vcols)),
    ))
}

/// The full SVD of each matrix of `a: [..., m, n]` (numpy's `svd`,
/// `full_matrices=True`): `U: [..., m, m]`, `S: [..., k]`, `Vᵀ: [..., n, n]`.
///
/// Differentiable; for non-square matrices the gradient flows through the
/// first `k` columns of `U` and rows of `Vᵀ` (the rest is not unique).
///
/// ```
/// # use ricci::{Tensor, DType, Rng, linalg};
/// let a = Tensor::randn(&[5, 3], DType::F64, &mut Rng::new(1));
/// let svd = linalg::svd(&a)?;
/// assert_eq!((svd.u.shape(), svd.s.shape(), svd.vt.shape()), (&[5, 5][..], &[3][..], &[3, 3][..]));
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn svd(a: &Tensor) -> Result<Svd> {
    let (_, m, n) = matrix_dims("svd", a)?;
    if m == n {
        return svd_thin(a);
    }
    let (u, s, vt) = with_type!(a.dtype(), T => svd_raw::<T>(a, Some(ComputeSvdVectors::Full))?);
    let (u, vt) = (
        u.unwrap_or_else(|| a.clone()),
        vt.unwrap_or_else(|| a.clone()),
    );
    if !(recording() && a.requires_grad()) {
        return Ok(Svd { u, s, vt });
    }
    // Differentiable leading part from the thin SVD, the completion as constants.
    let thin = svd_thin(a)?;
    let k = m.min(n);
    let u = Tensor::cat(&[&thin.u, &u.narrow(-1, k, m - k)?], -1)?;
    let vt = Tensor::cat(&[&thin.vt, &vt.narrow(-2, k, n - k)?], -2)?;
    Ok(Svd { u, s: thin.s, vt })
}

/// The thin (reduced) SVD: `U: [..., m, k]`, `S: [..., k]`, `Vᵀ: [..., k, n]`.
///
/// ```
/// # use ricci::{Tensor, DType, Rng, linalg};
/// let a = Tensor::randn(&[2, 6, 4], DType::F32, &mut Rng::new(2));
/// let svd = linalg::svd_thin(&a)?;
/// assert_eq!(svd.u.shape(), &[2, 6, 4]);
/// let s = svd.s.to_vec::<f32>()?;
/// assert!(s[0] >= s[1] && s[1] >= s[2] && s[2] >= s[3]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn svd_thin(a: &Tensor) -> Result<Svd> {
    let (u, s, vt) = with_type!(a.dtype(), T => svd_raw::<T>(a, Some(ComputeSvdVectors::Thin))?);
    let (u, vt) = (
        u.unwrap_or_else(|| a.clone()),
        vt.unwrap_or_else(|| a.clone()),
    );
    let eps = super::eps(a.dtype());
    let smax = s.abs().to_vec_f64().into_iter().fold(0.0f64, f64::max);
    let cached = (u.clone(), s.clone(), vt.clone());
    let outs = record_multi("svd", vec![u, s, vt], &[a], move |inp, g, _| {
        let (u, s, vt) = if recording() {
            let d = svd_thin(&inp[0])?;
            (d.u, d.s, d.vt)
        } else {
            cached.clone()
        };
        let da = svd_backward(&u, &s, &vt, &g[0], &g[1], &g[2], eps, smax)?;
        Ok(vec![Some(da)])
    })?;
    let mut it = outs.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(u), Some(s), Some(vt)) => Ok(Svd { u, s, vt }),
        _ => Err(Error::invalid("svd", "internal: missing outputs")),
    }
}

/// The singular values only, descending, `[..., k]` (cheaper: no vectors
/// computed). Differentiable: `dA = U diag(dS) Vᵀ`, computed in the backward pass.
///
/// ```
/// # use ricci::{Tensor, linalg};
/// let a = Tensor::from_vec(vec![3.0f64, 0.0, 0.0, -4.0], &[2, 2])?;
/// assert_eq!(linalg::svdvals(&a)?.to_vec::<f64>()?, vec![4.0, 3.0]);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn svdvals(a: &Tensor) -> Result<Tensor> {
    if crate::autograd::will_record(&[a]) {
        return Ok(svd_thin(a)?.s);
    }
    let (_, s, _) = with_type!(a.dtype(), T => svd_raw::<T>(a, None)?);
    Ok(s)
}

/// The thin-SVD VJP of the module doc, in differentiable ops.
#[allow(clippy::too_many_arguments)]
fn svd_backward(
    u: &Tensor,
    s: &Tensor,
    vt: &Tensor,
    du: &Tensor,
    ds: &Tensor,
    dvt: &Tensor,
    eps: f64,
    smax: f64,
) -> Result<Tensor> {
    let (m, n) = (u.shape()[u.rank() - 2], vt.shape()[vt.rank() - 1]);
    let k = s.shape()[s.rank() - 1];
    let v = mt(vt)?;
    let dv = mt(dvt)?;
    let skew = |x: Tensor| -> Result<Tensor> { x.sub(&mt(&x)?) };
    let uhgu = skew(mt(u)?.matmul(du)?)?;
    let vhgv = skew(vt.matmul(&dv)?)?;
    let s2 = s.square();
    let e = s2.unsqueeze(-2)?.sub(&s2.unsqueeze(-1)?)?;
    let f = safe_recip(&e, (k.max(1) as f64) * eps * smax * smax)?;
    let s_row = s.unsqueeze(-2)?;
    let s_col = s.unsqueeze(-1)?;
    let core = uhgu
        .mul(&s_row)?
        .add(&s_col.mul(&vhgv)?)?
        .mul(&f)?
        .add(&diag_embed(ds)?)?;
    let s_inv = safe_recip(s, (m.max(n) as f64) * eps * smax)?.unsqueeze(-2)?;
    if m > k {
        // Tall: dU's component outside span(U) also moves A.
        let gus = du.mul(&s_inv)?;
        let outside = gus.sub(&u.matmul(&mt(u)?.matmul(&gus)?)?)?;
        u.matmul(&core)?.add(&outside)?.matmul(vt)
    } else if n > k {
        let gvs = dv.mul(&s_inv)?;
        let outside = gvs.sub(&v.matmul(&vt.matmul(&gvs)?)?)?;
        u.matmul(&core.matmul(vt)?.add(&mt(&outside)?)?)
    } else {
        u.matmul(&core)?.matmul(vt)
    }
}
