//! Curvature and spectra of trained models.
//!
//! - [`hessian`]: the Hessian of a loss over a model's parameters as an
//!   operator (Hessian-vector products by reverse over forward mode), its extreme
//!   eigenvalues (Lanczos, power iteration), trace (Hutchinson) and
//!   eigenvalue density (stochastic Lanczos quadrature).
//! - [`spectra`]: singular values of weight matrices with stable and
//!   effective rank, and the QK / OV circuits of attention heads.
//!
//! ```
//! use ricci::{Tensor, DType, Rng, analysis::{Hessian, TraceParams}};
//! // A least-squares loss ‖X w − y‖² / 2m has the Hessian XᵀX / m.
//! let mut rng = Rng::new(0);
//! let x = Tensor::randn(&[50, 5], DType::F64, &mut rng);
//! let y = Tensor::randn(&[50], DType::F64, &mut rng);
//! let w = Tensor::zeros(&[5], DType::F64).set_requires_grad(true);
//! let h = Hessian::new(|| Ok(x.matmul(&w)?.sub(&y)?.square().mean_all().div_scalar(2.0)), &[w.clone()])?;
//! let exact = x.t()?.matmul(&x)?.div_scalar(50.0);
//! let trace = h.trace(&TraceParams { probes: 200, seed: 1 })?;
//! let want = exact.diagonal(0, 0, 1)?.sum_all().to_f64()?;
//! assert!((trace.estimate - want).abs() < 4.0 * trace.std_error);
//! # Ok::<(), ricci::Error>(())
//! ```

pub mod hessian;
pub mod spectra;

pub use hessian::{flatten, DensityParams, Hessian, SpectralDensity, Trace, TraceParams};
pub use spectra::{
    attention_head_spectra, head_spectra, weight_spectra, HeadSpectrum, MatrixSpectrum,
};
