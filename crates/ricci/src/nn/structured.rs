//! Linear layers with structure, for compression and fine-tuning:
//!
//! - [`LowRankLinear`]: `y = x (U V)ᵀ + b` with `U: [out, r]`, `V: [r, in]`,
//!   `r (in + out)` weights instead of `in · out`; built from a trained
//!   [`Linear`] by the truncated SVD `W ≈ U_r S_r V_rᵀ`, which is the best
//!   rank-`r` approximation in the Frobenius and spectral norms
//!   (Eckart-Young). The singular values are split evenly,
//!   `U = U_r S_r^½`, `V = S_r^½ V_rᵀ`, so both factors have the same scale.
//! - [`BlockDiagonalLinear`]: `k` independent blocks `[out/k, in/k]`, a
//!   `k`-fold saving (grouped projections, Monarch-style layers).
//! - LoRA adapters (Hu et al. 2021) live on [`Linear`] itself
//!   ([`Linear::add_lora`]): `y = x Wᵀ + b + (α/r) x Aᵀ Bᵀ` with the base
//!   `W`, `b` frozen, `A: [r, in]` random and `B: [out, r]` zero, so the
//!   adapted layer starts equal to the base one.

use super::{init, Linear, Module, Var};
use crate::error::{Error, Result};
use crate::linalg;
use crate::ops::linear;
use crate::tensor::{DType, Rng, Tensor};

/// How many singular values a truncation keeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RankChoice {
    /// Exactly this rank.
    Rank(usize),
    /// The smallest rank whose singular values hold at least this fraction
    /// (in `(0, 1]`) of `‖W‖_F² = Σ σᵢ²`.
    Energy(f64),
}

impl RankChoice {
    /// The rank for singular values `s` (descending) of an `out x in` matrix.
    pub fn resolve(self, s: &[f64], shape: &[usize]) -> Result<usize> {
        let full = s.len();
        match self {
            RankChoice::Rank(r) if r == 0 || r > full => Err(Error::invalid(
                "low_rank",
                format!("rank {r} is out of range for a matrix of shape {shape:?} (1..={full})"),
            )),
            RankChoice::Rank(r) => Ok(r),
            RankChoice::Energy(f) if !(f > 0.0 && f <= 1.0) => Err(Error::invalid(
                "low_rank",
                format!("the energy fraction must be in (0, 1], got {f}"),
            )),
            RankChoice::Energy(f) => {
                let total: f64 = s.iter().map(|x| x * x).sum();
                let mut kept = 0.0;
                for (i, x) in s.iter().enumerate() {
                    kept += x * x;
                    // A relative slack so that f = 1 stops at the last non-zero value.
                    if kept >= f * total * (1.0 - 1e-12) {
                        return Ok(i + 1);
                    }
                }
                Ok(full.max(1))
            }
        }
    }
}

/// `y = x (U V)ᵀ + b`, the factors stored as `down = V: [r, in]` and
/// `up = U: [out, r]` (parameter names `down`, `up`, `bias`).
///
/// ```
/// use ricci::{nn::{Linear, LowRankLinear, Module, RankChoice}, DType, Rng, Tensor};
/// let mut rng = Rng::new(0);
/// let dense = Linear::new(32, 16, true, DType::F64, &mut rng);
/// let (low, _) = LowRankLinear::from_linear(&dense, RankChoice::Rank(16))?; // full rank: exact
/// let x = Tensor::randn(&[4, 32], DType::F64, &mut rng);
/// let diff = low.forward(&x)?.sub(&dense.forward(&x)?)?.abs().max_all()?.to_f64()?;
/// assert!(diff < 1e-12);
/// assert_eq!(low.num_parameters(), 16 * 32 + 16 * 16 + 16);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LowRankLinear {
    pub down: Var,
    pub up: Var,
    pub bias: Option<Var>,
}

/// What a truncation kept ([`LowRankLinear::from_linear`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Truncation {
    pub rank: usize,
    /// `Σ_{i≤r} σᵢ² / Σ σᵢ²`.
    pub energy: f64,
    /// `‖W − U V‖_F / ‖W‖_F`.
    pub relative_error: f64,
}

impl LowRankLinear {
    /// A fresh layer: both factors uniform with PyTorch's `Linear` bound
    /// for their fan-in, bias like `Linear`'s.
    pub fn new(
        in_features: usize,
        out_features: usize,
        rank: usize,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<LowRankLinear> {
        if rank == 0 || rank > in_features.min(out_features) {
            return Err(Error::invalid(
                "LowRankLinear",
                format!(
                    "rank {rank} is out of range for {in_features} inputs and {out_features} outputs"
                ),
            ));
        }
        let down = Linear::new(in_features, rank, false, dtype, rng);
        let up = Linear::new(rank, out_features, bias, dtype, rng);
        Ok(LowRankLinear {
            down: down.weight,
            up: up.weight,
            bias: up.bias,
        })
    }

    /// The truncated SVD of a trained layer's weight (the bias is kept).
    pub fn from_linear(layer: &Linear, choice: RankChoice) -> Result<(LowRankLinear, Truncation)> {
        let w = layer.weight.tensor();
        let svd = linalg::svd_thin(w)?;
        let s = svd.s.to_vec_f64();
        let rank = choice.resolve(&s, w.shape())?;
        let total: f64 = s.iter().map(|x| x * x).sum();
        let kept: f64 = s[..rank].iter().map(|x| x * x).sum();
        let root = svd.s.narrow(0, 0, rank)?.sqrt();
        let up = svd.u.narrow(1, 0, rank)?.mul(&root.unsqueeze(0)?)?;
        let down = svd.vt.narrow(0, 0, rank)?.mul(&root.unsqueeze(1)?)?;
        let layer = LowRankLinear {
            down: Var::new(&down),
            up: Var::new(&up),
            bias: layer.bias.as_ref().map(|b| Var::new(b.tensor())),
        };
        let (energy, relative_error) = if total > 0.0 {
            (kept / total, ((total - kept).max(0.0) / total).sqrt())
        } else {
            (1.0, 0.0)
        };
        Ok((
            layer,
            Truncation {
                rank,
                energy,
                relative_error,
            },
        ))
    }

    pub fn rank(&self) -> usize {
        self.down.shape()[0]
    }

    /// The dense weight `U V: [out, in]`.
    pub fn weight(&self) -> Result<Tensor> {
        self.up.tensor().matmul(self.down.tensor())
    }

    /// The equivalent dense layer.
    pub fn to_linear(&self) -> Result<Linear> {
        Linear::from_weights(&self.weight()?, self.bias.as_ref().map(Var::tensor))
    }
}

impl Module for LowRankLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = linear(x, self.down.tensor(), None)?;
        linear(&h, self.up.tensor(), self.bias.as_ref().map(Var::tensor))
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = vec![
            ("down".to_string(), self.down.clone()),
            ("up".to_string(), self.up.clone()),
        ];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// `k` independent linear maps on `k` equal slices of the input:
/// `x: [..., k·in_b]`, `weight: [k, out_b, in_b]`, `y: [..., k·out_b]`.
///
/// ```
/// use ricci::{nn::{BlockDiagonalLinear, Module}, DType, Rng, Tensor};
/// let layer = BlockDiagonalLinear::new(8, 6, 2, true, DType::F32, &mut Rng::new(0))?;
/// let y = layer.forward(&Tensor::ones(&[3, 5, 8], DType::F32))?;
/// assert_eq!(y.shape(), &[3, 5, 6]);
/// assert_eq!(layer.num_parameters(), 2 * 3 * 4 + 6);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct BlockDiagonalLinear {
    pub weight: Var,
    pub bias: Option<Var>,
}

impl BlockDiagonalLinear {
    /// Blocks initialised as PyTorch's `Linear` of the block's size.
    pub fn new(
        in_features: usize,
        out_features: usize,
        blocks: usize,
        bias: bool,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<BlockDiagonalLinear> {
        if blocks == 0
            || !in_features.is_multiple_of(blocks)
            || !out_features.is_multiple_of(blocks)
            || in_features == 0
            || out_features == 0
        {
            return Err(Error::invalid(
                "BlockDiagonalLinear",
                format!(
                    "{in_features} inputs and {out_features} outputs cannot be split into {blocks} equal blocks"
                ),
            ));
        }
        let (ib, ob) = (in_features / blocks, out_features / blocks);
        let k = 1.0 / (ib as f64).sqrt();
        Ok(BlockDiagonalLinear {
            weight: Var::new(&init::uniform(&[blocks, ob, ib], -k, k, dtype, rng)),
            bias: bias.then(|| Var::new(&init::uniform(&[out_features], -k, k, dtype, rng))),
        })
    }

    /// The equivalent dense weight `[out, in]` (zeros off the blocks).
    pub fn to_dense(&self) -> Result<Tensor> {
        let w = self.weight.tensor();
        let (k, ob, ib) = (w.shape()[0], w.shape()[1], w.shape()[2]);
        let rows = (0..k)
            .map(|i| {
                let block = w.narrow(0, i, 1)?.squeeze(0)?;
                block.pad(&[(0, 0), (i * ib, (k - 1 - i) * ib)], 0.0)
            })
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = rows.iter().collect();
        Tensor::cat(&refs, 0)?.reshape([k * ob, k * ib])
    }
}

impl Module for BlockDiagonalLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.tensor();
        let (k, ob, ib) = (w.shape()[0], w.shape()[1], w.shape()[2]);
        let last = x.shape().last().copied().unwrap_or(0);
        if x.rank() == 0 || last != k * ib {
            return Err(Error::invalid(
                "BlockDiagonalLinear",
                format!(
                    "expected input [..., {}] ({k} blocks of {ib}), got {:?}",
                    k * ib,
                    x.shape()
                ),
            ));
        }
        let lead = &x.shape()[..x.rank() - 1];
        let rows: usize = lead.iter().product();
        // [rows, k, ib] -> [k, rows, ib] · [k, ib, ob] -> [k, rows, ob]
        let y = x
            .reshape([rows, k, ib])?
            .permute([1, 0, 2])?
            .matmul(&w.transpose(1, 2)?)?
            .permute([1, 0, 2])?;
        let mut shape = lead.to_vec();
        shape.push(k * ob);
        let y = y.reshape(shape)?;
        match &self.bias {
            Some(b) => y.add(b.tensor()),
            None => Ok(y),
        }
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = vec![("weight".to_string(), self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias".to_string(), b.clone()));
        }
        p
    }
}

/// A LoRA adapter on a [`Linear`] (see [`Linear::add_lora`]).
#[derive(Clone, Debug)]
pub struct Lora {
    /// `A: [r, in]`.
    pub a: Var,
    /// `B: [out, r]`, zero at creation.
    pub b: Var,
    /// `α / r`.
    pub scale: f64,
}

impl Lora {
    /// `(α/r) x Aᵀ Bᵀ`.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = linear(x, self.a.tensor(), None)?;
        Ok(linear(&h, self.b.tensor(), None)?.mul_scalar(self.scale))
    }

    pub(crate) fn named_parameters(&self) -> Vec<(String, Var)> {
        vec![
            ("lora_a".to_string(), self.a.clone()),
            ("lora_b".to_string(), self.b.clone()),
        ]
    }
}

/// Whether a parameter name is a LoRA adapter's (`…lora_a`, `…lora_b`).
pub fn is_lora_parameter(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    last == "lora_a" || last == "lora_b"
}

/// The adapter parameters of a model (what a LoRA fine-tune trains and saves).
pub fn lora_parameters(model: &dyn Module) -> Vec<(String, Var)> {
    model
        .named_parameters()
        .into_iter()
        .filter(|(n, _)| is_lora_parameter(n))
        .collect()
}

/// Named tensors, as `Module::state_dict` returns them.
pub type StateDict = Vec<(String, Tensor)>;

/// What [`compress_state_dict`] did to one matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerCompression {
    /// The weight's name (`blocks.0.mlp.fc.weight`).
    pub name: String,
    /// `[out, in]`.
    pub shape: Vec<usize>,
    pub rank: usize,
    /// `out · in`, and what is stored now: `rank · (out + in)`, or
    /// `out · in` again when factoring would not save anything.
    pub params_before: usize,
    pub params_after: usize,
    /// Kept dense: the rank asked for stores at least as many numbers as the matrix.
    pub kept_dense: bool,
    pub energy: f64,
    pub relative_error: f64,
}

/// Replaces each weight matrix that `select` accepts by its truncated SVD
/// factors, named as [`LowRankLinear`]'s parameters: `<p>.weight` becomes
/// `<p>.down` (`[r, in]`) and `<p>.up` (`[out, r]`); other tensors are kept.
/// A matrix whose factors would not be smaller than itself is kept dense
/// (and reported so). [`fold_low_rank`] undoes the renaming.
///
/// ```
/// use ricci::nn::{compress_state_dict, fold_low_rank, RankChoice};
/// use ricci::{DType, Rng, Tensor};
/// let w = Tensor::randn(&[64, 2], DType::F64, &mut Rng::new(0)).matmul(&Tensor::randn(&[2, 48], DType::F64, &mut Rng::new(1)))?;
/// let state = vec![("fc.weight".to_string(), w.clone())];
/// let (small, report) = compress_state_dict(&state, RankChoice::Energy(1.0), |_| true)?;
/// assert_eq!((report[0].rank, report[0].params_after), (2, 2 * (64 + 48)));
/// let back = fold_low_rank(&small)?;
/// assert!(back[0].1.sub(&w)?.abs().max_all()?.to_f64()? < 1e-9);
/// # Ok::<(), ricci::Error>(())
/// ```
pub fn compress_state_dict(
    state: &[(String, Tensor)],
    choice: RankChoice,
    select: impl Fn(&str) -> bool,
) -> Result<(StateDict, Vec<LayerCompression>)> {
    let mut out = Vec::with_capacity(state.len() + 8);
    let mut report = Vec::new();
    for (name, t) in state {
        let prefix = match name.strip_suffix(".weight") {
            Some(p) if t.rank() == 2 && select(name) => p,
            _ => {
                out.push((name.clone(), t.clone()));
                continue;
            }
        };
        let layer = Linear::from_weights(t, None)?;
        let (low, trunc) = LowRankLinear::from_linear(&layer, choice)
            .map_err(|e| Error::invalid("compress", format!("{name}: {e}")))?;
        let (o, i) = (t.shape()[0], t.shape()[1]);
        let factored = trunc.rank * (o + i);
        let kept_dense = factored >= o * i;
        if kept_dense {
            out.push((name.clone(), t.clone()));
        } else {
            out.push((
                format!("{prefix}.down"),
                low.down.tensor().to_dtype(t.dtype()),
            ));
            out.push((format!("{prefix}.up"), low.up.tensor().to_dtype(t.dtype())));
        }
        report.push(LayerCompression {
            name: name.clone(),
            shape: vec![o, i],
            rank: trunc.rank,
            params_before: o * i,
            params_after: if kept_dense { o * i } else { factored },
            kept_dense,
            energy: trunc.energy,
            relative_error: trunc.relative_error,
        });
    }
    Ok((out, report))
}

/// Multiplies every `<p>.up` · `<p>.down` pair back into `<p>.weight` (in
/// the place of `<p>.down`), so a compressed state dict loads into a model
/// built with dense layers. A lone factor is an error naming it.
pub fn fold_low_rank(state: &[(String, Tensor)]) -> Result<Vec<(String, Tensor)>> {
    let find = |key: &str| state.iter().find(|(n, _)| n == key).map(|(_, t)| t);
    let mut out = Vec::with_capacity(state.len());
    for (name, t) in state {
        if let Some(prefix) = name.strip_suffix(".down") {
            let up = find(&format!("{prefix}.up")).ok_or_else(|| {
                Error::invalid(
                    "fold_low_rank",
                    format!("{name} has no matching {prefix}.up"),
                )
            })?;
            out.push((format!("{prefix}.weight"), up.matmul(t)?));
        } else if let Some(prefix) = name.strip_suffix(".up") {
            if find(&format!("{prefix}.down")).is_none() {
                return Err(Error::invalid(
                    "fold_low_rank",
                    format!("{name} has no matching {prefix}.down"),
                ));
            }
        } else {
            out.push((name.clone(), t.clone()));
        }
    }
    Ok(out)
}
