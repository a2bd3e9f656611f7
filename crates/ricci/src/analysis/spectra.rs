//! What a trained model's matrices look like: singular values of each
//! weight matrix with the usual summaries, and per attention head the
//! spectra of its two circuits (Elhage et al. 2021):
//!
//! - **QK**, `W_Qʰᵀ W_Kʰ` (`C x C`): the bilinear form `x_i W_Qʰᵀ W_Kʰ x_jᵀ`
//!   that scores query token `i` against key token `j` (before the
//!   `1/√d` scale) — what the head matches;
//! - **OV**, `W_Vʰᵀ W_Oʰᵀ` (`C x C`): the map from a attended token's
//!   residual vector to what the head adds to the residual stream — what
//!   the head writes.
//!
//! Weights are in PyTorch's `nn.Linear` layout `[out, in]` (`y = x Wᵀ`);
//! head `h` owns rows `h d .. (h+1) d` of `W_Q`, `W_K`, `W_V` and columns
//! `h d .. (h+1) d` of `W_O`, with `d = out / n_head`. Biases are left out.
//! Both circuits have rank at most `d`; their `d` leading singular values
//! are computed from `d x d` factors (a QR of each side), never from the
//! `C x C` product.
//!
//! Summaries of singular values `σ₁ ≥ … ≥ σ_r`:
//! - stable rank `‖W‖_F² / ‖W‖₂² = Σ σᵢ² / σ₁²` (Rudelson & Vershynin 2007);
//! - effective rank `exp(H(p))`, `pᵢ = σᵢ / Σ σⱼ`, `H` the Shannon entropy
//!   (Roy & Vetterli 2007): `r` for equal singular values, 1 for rank one.
//!
//! A zero matrix has stable and effective rank 0.

use crate::error::{Error, Result};
use crate::linalg;
use crate::tensor::{DType, Tensor};

/// Singular values of one matrix and their summaries.
///
/// ```
/// use ricci::{Tensor, DType, analysis::MatrixSpectrum};
/// let w = Tensor::eye(4, DType::F64).mul_scalar(3.0);
/// let s = MatrixSpectrum::of(&w)?;
/// assert_eq!(s.singular_values, vec![3.0; 4]);
/// assert!((s.stable_rank - 4.0).abs() < 1e-12 && (s.effective_rank - 4.0).abs() < 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSpectrum {
    /// Descending.
    pub singular_values: Vec<f64>,
    /// `σ₁`.
    pub spectral_norm: f64,
    /// `(Σ σᵢ²)^½`.
    pub frobenius_norm: f64,
    /// `Σ σᵢ² / σ₁²`.
    pub stable_rank: f64,
    /// `exp(entropy of σ / Σσ)`.
    pub effective_rank: f64,
}

impl MatrixSpectrum {
    /// The spectrum of a 2-D tensor (computed in f64).
    pub fn of(w: &Tensor) -> Result<MatrixSpectrum> {
        if w.rank() != 2 || w.numel() == 0 {
            return Err(Error::invalid(
                "MatrixSpectrum",
                format!("expected a non-empty matrix, got shape {:?}", w.shape()),
            ));
        }
        let s = linalg::svdvals(&w.to_dtype(DType::F64))?.to_vec::<f64>()?;
        MatrixSpectrum::from_singular_values(s)
    }

    /// Summaries of given singular values (any order; stored descending).
    pub fn from_singular_values(mut s: Vec<f64>) -> Result<MatrixSpectrum> {
        if s.is_empty() || s.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(Error::invalid(
                "MatrixSpectrum",
                "singular values must be a non-empty list of finite, non-negative numbers",
            ));
        }
        s.sort_by(|a, b| b.total_cmp(a));
        let top = s[0];
        let sq: f64 = s.iter().map(|x| x * x).sum();
        let total: f64 = s.iter().sum();
        let (stable_rank, effective_rank) = if top > 0.0 {
            let entropy: f64 = s
                .iter()
                .map(|x| x / total)
                .filter(|p| *p > 0.0)
                .map(|p| -p * p.ln())
                .sum();
            (sq / (top * top), entropy.exp())
        } else {
            (0.0, 0.0)
        };
        Ok(MatrixSpectrum {
            spectral_norm: top,
            frobenius_norm: sq.sqrt(),
            stable_rank,
            effective_rank,
            singular_values: s,
        })
    }
}

/// The spectrum of every 2-D tensor among `named` (others are skipped),
/// in the order given.
pub fn weight_spectra(named: &[(String, Tensor)]) -> Result<Vec<(String, MatrixSpectrum)>> {
    named
        .iter()
        .filter(|(_, t)| t.rank() == 2 && t.numel() > 0)
        .map(|(n, t)| Ok((n.clone(), MatrixSpectrum::of(t)?)))
        .collect()
}

/// The two circuits of one attention head.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadSpectrum {
    pub head: usize,
    /// `W_Qʰᵀ W_Kʰ`: what the head matches.
    pub qk: MatrixSpectrum,
    /// `W_Vʰᵀ W_Oʰᵀ`: what the head writes.
    pub ov: MatrixSpectrum,
}

/// The singular values of `A Bᵀ` for `A, B: [C, d]`, from the `d x d`
/// product `R_A R_Bᵀ` of their QR factors (`A Bᵀ = Q_A R_A R_Bᵀ Q_Bᵀ` and
/// the `Q`s have orthonormal columns).
fn product_singular_values(a: &Tensor, b: &Tensor) -> Result<Vec<f64>> {
    let ra = linalg::qr(a)?.r;
    let rb = linalg::qr(b)?.r;
    linalg::svdvals(&ra.matmul(&rb.t()?)?)?.to_vec::<f64>()
}

/// Per-head QK and OV spectra of one attention layer from its projection
/// weights in `nn.Linear` layout: `w_q`, `w_k`, `w_v` are `[n_head·d, C]`,
/// `w_o` is `[C, n_head·d]` (see the module doc).
///
/// ```
/// use ricci::{Tensor, DType, Rng, analysis::head_spectra};
/// let mut rng = Rng::new(0);
/// let w = |s: &[usize], rng: &mut Rng| Tensor::randn(s, DType::F64, rng);
/// let (wq, wk, wv, wo) = (w(&[8, 16], &mut rng), w(&[8, 16], &mut rng), w(&[8, 16], &mut rng), w(&[16, 8], &mut rng));
/// let heads = head_spectra(&wq, &wk, &wv, &wo, 2)?;
/// assert_eq!(heads.len(), 2);
/// assert_eq!(heads[0].qk.singular_values.len(), 4); // rank at most d = 4
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn head_spectra(
    w_q: &Tensor,
    w_k: &Tensor,
    w_v: &Tensor,
    w_o: &Tensor,
    n_head: usize,
) -> Result<Vec<HeadSpectrum>> {
    let name = "head_spectra";
    if w_q.rank() != 2 {
        return Err(Error::invalid(
            name,
            format!("W_Q must be a matrix, got shape {:?}", w_q.shape()),
        ));
    }
    let (inner, c) = (w_q.shape()[0], w_q.shape()[1]);
    for (label, w) in [("W_K", w_k), ("W_V", w_v)] {
        if w.shape() != w_q.shape() {
            return Err(Error::invalid(
                name,
                format!(
                    "{label} has shape {:?} but W_Q has {:?}",
                    w.shape(),
                    w_q.shape()
                ),
            ));
        }
    }
    if w_o.shape() != [c, inner] {
        return Err(Error::invalid(
            name,
            format!(
                "W_O must have shape [{c}, {inner}] to match W_Q {:?}, got {:?}",
                w_q.shape(),
                w_o.shape()
            ),
        ));
    }
    if n_head == 0 || inner == 0 || !inner.is_multiple_of(n_head) {
        return Err(Error::invalid(
            name,
            format!("{inner} projection rows cannot be split into {n_head} heads"),
        ));
    }
    let d = inner / n_head;
    let f64s = |t: &Tensor| t.to_dtype(DType::F64);
    let (wq, wk, wv, wo) = (f64s(w_q), f64s(w_k), f64s(w_v), f64s(w_o));
    (0..n_head)
        .map(|h| {
            let rows = |w: &Tensor| w.narrow(0, h * d, d)?.t();
            let qk = product_singular_values(&rows(&wq)?, &rows(&wk)?)?;
            let ov = product_singular_values(&rows(&wv)?, &wo.narrow(1, h * d, d)?)?;
            Ok(HeadSpectrum {
                head: h,
                qk: MatrixSpectrum::from_singular_values(qk)?,
                ov: MatrixSpectrum::from_singular_values(ov)?,
            })
        })
        .collect()
}

/// The attention layers found in a state dict by their parameter names,
/// with per-head spectra: ricci's GPT (`<p>.attn.qkv.weight` holding
/// `W_Q; W_K; W_V` stacked, and `<p>.attn.proj.weight`) and Hugging Face
/// BERT (`<p>.attention.self.{query,key,value}.weight` and
/// `<p>.attention.output.dense.weight`). Returns `(prefix, heads)` per
/// layer, in the order of the state dict.
pub fn attention_head_spectra(
    named: &[(String, Tensor)],
    n_head: usize,
) -> Result<Vec<(String, Vec<HeadSpectrum>)>> {
    let get = |key: &str| named.iter().find(|(n, _)| n == key).map(|(_, t)| t);
    let mut layers = Vec::new();
    for (n, t) in named {
        if let Some(prefix) = n.strip_suffix(".attn.qkv.weight") {
            let Some(proj) = get(&format!("{prefix}.attn.proj.weight")) else {
                continue;
            };
            if t.rank() != 2 || t.shape()[0] % 3 != 0 {
                return Err(Error::invalid(
                    "attention_head_spectra",
                    format!(
                        "{n}: expected a stacked [3C, C] matrix, got {:?}",
                        t.shape()
                    ),
                ));
            }
            let c = t.shape()[0] / 3;
            let part = |i: usize| t.narrow(0, i * c, c);
            let heads = head_spectra(&part(0)?, &part(1)?, &part(2)?, proj, n_head)?;
            layers.push((format!("{prefix}.attn"), heads));
        } else if let Some(prefix) = n.strip_suffix(".attention.self.query.weight") {
            let k = get(&format!("{prefix}.attention.self.key.weight"));
            let v = get(&format!("{prefix}.attention.self.value.weight"));
            let o = get(&format!("{prefix}.attention.output.dense.weight"));
            if let (Some(k), Some(v), Some(o)) = (k, v, o) {
                let heads = head_spectra(t, k, v, o, n_head)?;
                layers.push((format!("{prefix}.attention"), heads));
            }
        }
    }
    Ok(layers)
}
