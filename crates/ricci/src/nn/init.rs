//! Parameter initialisers (normal, uniform, Xavier, Kaiming, orthogonal), with PyTorch's conventions for fan-in and
//! fan-out: for a weight of shape `[out, in, k...]`, `fan_in = in * k...`
//! and `fan_out = out * k...`. Each draws from a seeded [`Rng`], so a model
//! built twice from the same seed is the same model.
//!
//! ```
//! use ricci::nn::init;
//! use ricci::{DType, Rng};
//! let w = init::xavier_uniform(&[64, 32], 1.0, DType::F32, &mut Rng::new(0))?;
//! let bound = (6.0f32 / 96.0).sqrt();
//! assert!(w.to_vec::<f32>()?.iter().all(|x| x.abs() <= bound));
//! # Ok::<(), ricci::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::tensor::{DType, Rng, Tensor};

/// `(fan_in, fan_out)` of a weight shaped `[out, in, receptive...]`.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::invalid(
            "init",
            format!("fan-in and fan-out need a weight of rank >= 2, got shape {shape:?}"),
        ));
    }
    let receptive: usize = shape[2..].iter().product();
    Ok((shape[1] * receptive, shape[0] * receptive))
}

/// Samples from N(mean, std²).
pub fn normal(shape: &[usize], mean: f64, std: f64, dtype: DType, rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, DType::F64, rng)
        .affine(std, mean)
        .to_dtype(dtype)
}

/// Samples from U[low, high).
pub fn uniform(shape: &[usize], low: f64, high: f64, dtype: DType, rng: &mut Rng) -> Tensor {
    Tensor::uniform(shape, low, high, dtype, rng)
}

/// Glorot & Bengio (2010): U[-a, a] with `a = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    let (fan_in, fan_out) = fans(shape)?;
    let a = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
    Ok(uniform(shape, -a, a, dtype, rng))
}

/// Glorot & Bengio (2010): N(0, σ²) with `σ = gain * sqrt(2 / (fan_in + fan_out))`.
pub fn xavier_normal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    let (fan_in, fan_out) = fans(shape)?;
    let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
    Ok(normal(shape, 0.0, std, dtype, rng))
}

/// He et al. (2015), fan-in mode: U[-b, b] with `b = gain * sqrt(3 / fan_in)`
/// (`gain = sqrt(2)` for ReLU).
pub fn kaiming_uniform(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    let (fan_in, _) = fans(shape)?;
    let b = gain * (3.0 / fan_in as f64).sqrt();
    Ok(uniform(shape, -b, b, dtype, rng))
}

/// He et al. (2015), fan-in mode: N(0, σ²) with `σ = gain / sqrt(fan_in)`.
pub fn kaiming_normal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    let (fan_in, _) = fans(shape)?;
    Ok(normal(
        shape,
        0.0,
        gain / (fan_in as f64).sqrt(),
        dtype,
        rng,
    ))
}

/// Saxe et al. (2014): a (semi-)orthogonal matrix from the QR
/// decomposition of a Gaussian one, times `gain`; for rank > 2 the
/// `[out, in * receptive]` matricisation is orthogonal (PyTorch's
/// `nn.init.orthogonal_`). See [`crate::linalg::orthogonal`].
///
/// ```
/// use ricci::nn::init;
/// use ricci::{DType, Rng, Tensor};
/// let w = init::orthogonal(&[16, 16], 1.0, DType::F64, &mut Rng::new(0))?;
/// let err = w.matmul(&w.t()?)?.sub(&Tensor::eye(16, DType::F64))?.abs().max_all()?.to_f64()?;
/// assert!(err < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn orthogonal(shape: &[usize], gain: f64, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
    crate::linalg::orthogonal(shape, gain, rng, dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(t: &Tensor) -> (f64, f64) {
        let v = t.to_vec_f64();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn initialisers_have_their_documented_spread() {
        let mut rng = Rng::new(1);
        let shape = [256, 512];
        let (m, s) = moments(&normal(&shape, 0.5, 0.02, DType::F64, &mut rng));
        assert!((m - 0.5).abs() < 1e-3 && (s - 0.02).abs() < 1e-3, "{m} {s}");
        let (_, s) = moments(&xavier_normal(&shape, 1.0, DType::F64, &mut rng).unwrap());
        assert!((s - (2.0f64 / 768.0).sqrt()).abs() < 2e-3, "{s}");
        // U[-b, b] has std b / sqrt(3).
        let (_, s) = moments(&kaiming_uniform(&shape, 2f64.sqrt(), DType::F64, &mut rng).unwrap());
        assert!((s - (2.0f64 / 512.0).sqrt()).abs() < 2e-3, "{s}");
        let (_, s) = moments(&kaiming_normal(&shape, 1.0, DType::F64, &mut rng).unwrap());
        assert!((s - (1.0f64 / 512.0).sqrt()).abs() < 2e-3, "{s}");
    }

    #[test]
    fn fans_follow_pytorch_for_conv_shaped_weights() {
        assert_eq!(fans(&[8, 3, 5, 5]).unwrap(), (75, 200));
        assert!(fans(&[8]).is_err());
    }
}
