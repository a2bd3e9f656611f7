//! A decoder-only transformer (GPT-2 shape, Radford et al. 2019): token and
//! position embeddings, `n_layer` pre-norm blocks
//! (`x + attn(ln1(x))`, then `x + mlp(ln2(x))`), a final layer norm and a
//! language-model head, optionally tied to the token embedding.
//!
//! ```
//! use ricci::models::gpt::{Gpt, GptConfig};
//! use ricci::nn::Module;
//! use ricci::{DType, Rng, Tensor};
//! let config = GptConfig { vocab_size: 12, n_layer: 1, n_head: 2, n_embd: 8, block_size: 6, ..GptConfig::default() };
//! let model = Gpt::new(&config, DType::F32, &mut Rng::new(0))?;
//! let ids = Tensor::from_indices(&[1, 2, 3, 4], &[1, 4], DType::F32)?;
//! assert_eq!(model.forward(&ids)?.shape(), &[1, 4, 12]);
//! # Ok::<(), ricci::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::autograd::Grads;
use crate::error::{Error, Result};
use crate::kernels::par::side_by_side;
use crate::nn::{
    cross_entropy, init, prefixed, Activation, CausalSelfAttention, Dropout, Embedding, LayerNorm,
    Linear, Mlp, Module, Var,
};
use crate::tensor::{DType, Rng, Tensor};

/// The shape of a [`Gpt`]; stored as `config.json` next to a checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GptConfig {
    pub vocab_size: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_embd: usize,
    /// The longest context the position embedding covers.
    pub block_size: usize,
    /// Dropout on attention output, MLP output and embeddings (0 = none).
    #[serde(default)]
    pub dropout: f64,
    /// Share the token embedding with the LM head (GPT-2 does).
    #[serde(default)]
    pub tie_weights: bool,
    #[serde(default = "default_activation")]
    pub activation: Activation,
}

fn default_activation() -> Activation {
    Activation::Gelu
}

impl Default for GptConfig {
    /// The `tiny` configuration: 4 layers, 4 heads, 128 wide, context 64.
    fn default() -> Self {
        GptConfig {
            vocab_size: 65,
            n_layer: 4,
            n_head: 4,
            n_embd: 128,
            block_size: 64,
            dropout: 0.0,
            tie_weights: false,
            activation: Activation::Gelu,
        }
    }
}

impl GptConfig {
    /// Checks that the sizes make a model.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::invalid("GptConfig", msg));
        if self.vocab_size == 0 || self.n_layer == 0 || self.n_embd == 0 || self.block_size == 0 {
            return bad(format!("sizes must be positive: {self:?}"));
        }
        if self.n_head == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!(
                "n_embd ({}) must be divisible by n_head ({})",
                self.n_embd, self.n_head
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must lie in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }
}

/// A pre-norm transformer block.
#[derive(Clone, Debug)]
pub struct Block {
    pub ln1: LayerNorm,
    pub attn: CausalSelfAttention,
    pub ln2: LayerNorm,
    pub mlp: Mlp,
    pub dropout: Dropout,
}

impl Block {
    pub fn new(config: &GptConfig, dtype: DType, rng: &mut Rng) -> Result<Block> {
        let c = config.n_embd;
        let mut attn = CausalSelfAttention::new(c, config.n_head, dtype, rng)?;
        let mut mlp = Mlp::new(c, 4 * c, config.activation, dtype, rng);
        // GPT-2 initialisation: N(0, 0.02) weights, zero biases; the two
        // projections into the residual stream scaled by 1/sqrt(2 n_layer) so
        // the stream's variance does not grow with depth.
        let resid_std = 0.02 / (2.0 * config.n_layer as f64).sqrt();
        for (lin, std) in [
            (&mut attn.qkv, 0.02),
            (&mut attn.proj, resid_std),
            (&mut mlp.fc, 0.02),
            (&mut mlp.proj, resid_std),
        ] {
            gpt2_init(lin, std, dtype, rng);
        }
        Ok(Block {
            ln1: LayerNorm::new(c, 1e-5, true, dtype),
            attn,
            ln2: LayerNorm::new(c, 1e-5, true, dtype),
            mlp,
            dropout: Dropout::new(config.dropout, rng.next_u64())?,
        })
    }
}

fn gpt2_init(lin: &mut Linear, std: f64, dtype: DType, rng: &mut Rng) {
    lin.weight = Var::new(&init::normal(lin.weight.shape(), 0.0, std, dtype, rng));
    if let Some(b) = &mut lin.bias {
        *b = Var::new(&Tensor::zeros(b.shape(), dtype));
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = self
            .dropout
            .forward(&self.attn.forward(&self.ln1.forward(x)?)?)?;
        let x = x.add(&a)?;
        let m = self
            .dropout
            .forward(&self.mlp.forward(&self.ln2.forward(&x)?)?)?;
        x.add(&m)
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = prefixed("ln1", &self.ln1);
        p.extend(prefixed("attn", &self.attn));
        p.extend(prefixed("ln2", &self.ln2));
        p.extend(prefixed("mlp", &self.mlp));
        p
    }

    fn set_training(&mut self, training: bool) {
        self.dropout.set_training(training);
    }
}

/// The target id of positions [`Gpt::loss`] leaves out (prompt tokens,
/// padding).
const IGNORE_TARGET: i64 = -1;

/// The decoder-only transformer. `forward` maps token ids `[batch, seq]`
/// (floats holding integers) to logits `[batch, seq, vocab]`.
#[derive(Clone, Debug)]
pub struct Gpt {
    pub config: GptConfig,
    pub wte: Embedding,
    pub wpe: Embedding,
    pub blocks: Vec<Block>,
    pub ln_f: LayerNorm,
    /// `None` when tied to `wte`.
    pub lm_head: Option<Linear>,
    pub dropout: Dropout,
}

impl Gpt {
    /// A freshly initialised model (GPT-2's initialisation).
    pub fn new(config: &GptConfig, dtype: DType, rng: &mut Rng) -> Result<Gpt> {
        config.validate()?;
        let (v, c) = (config.vocab_size, config.n_embd);
        let wte = Embedding {
            weight: Var::new(&init::normal(&[v, c], 0.0, 0.02, dtype, rng)),
        };
        let wpe = Embedding {
            weight: Var::new(&init::normal(
                &[config.block_size, c],
                0.0,
                0.02,
                dtype,
                rng,
            )),
        };
        let blocks = (0..config.n_layer)
            .map(|_| Block::new(config, dtype, rng))
            .collect::<Result<Vec<_>>>()?;
        let lm_head = (!config.tie_weights).then(|| {
            let mut head = Linear::new(c, v, false, dtype, rng);
            gpt2_init(&mut head, 0.02, dtype, rng);
            head
        });
        Ok(Gpt {
            config: config.clone(),
            wte,
            wpe,
            blocks,
            ln_f: LayerNorm::new(c, 1e-5, true, dtype),
            lm_head,
            dropout: Dropout::new(config.dropout, rng.next_u64())?,
        })
    }

    /// The linear maps of the blocks: attention `qkv` and `proj`, MLP `fc`
    /// and `proj`, in block order (where LoRA adapters go).
    pub fn block_linears_mut(&mut self) -> Vec<&mut Linear> {
        self.blocks
            .iter_mut()
            .flat_map(|b| {
                [
                    &mut b.attn.qkv,
                    &mut b.attn.proj,
                    &mut b.mlp.fc,
                    &mut b.mlp.proj,
                ]
            })
            .collect()
    }

    /// Attaches a LoRA adapter of rank `rank` and scale `alpha / rank` to
    /// every linear map of the blocks ([`Linear::add_lora`]); train only
    /// [`crate::nn::lora_parameters`] of the model to fine-tune it.
    pub fn add_lora(&mut self, rank: usize, alpha: f64, rng: &mut Rng) -> Result<()> {
        for layer in self.block_linears_mut() {
            layer.add_lora(rank, alpha, rng)?;
        }
        Ok(())
    }

    /// Folds every adapter into its weight ([`Linear::merge_lora`]).
    pub fn merge_lora(&mut self) -> Result<()> {
        for layer in self.block_linears_mut() {
            layer.merge_lora()?;
        }
        Ok(())
    }

    pub fn dtype(&self) -> DType {
        self.wte.weight.tensor().dtype()
    }

    /// Mean cross-entropy of the next-token predictions for `ids` against
    /// `targets` (same shape; `-1` marks positions to ignore).
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        cross_entropy(&self.forward(ids)?, targets, Some(IGNORE_TARGET))
    }

    /// [`Gpt::loss`] and the gradient of every parameter (one training
    /// step's worth of work), with the batch cut into `pieces` slices of
    /// rows run side by side, each on a thread of its own with sequential
    /// kernels ([`side_by_side`]). Each slice's mean loss is weighted by its
    /// share of the counted (not ignored) targets, so the loss and the
    /// gradients are those of the whole batch, up to rounding.
    ///
    /// With `pieces` equal to the thread count this is how `ricci train`
    /// uses the cores: a small model's step is hundreds of small ops, and
    /// splitting each of them over the cores costs more in forks, joins and
    /// cold caches than running whole slices apart. `pieces` is cut to the
    /// batch size; 1 (or a model with dropout, whose random draws would
    /// depend on how the slices interleave) runs the plain
    /// `loss(..).backward()`.
    ///
    /// ```
    /// use ricci::models::gpt::{Gpt, GptConfig};
    /// use ricci::{DType, Rng, Tensor};
    /// let config = GptConfig { vocab_size: 5, n_layer: 1, n_head: 1, n_embd: 4, block_size: 3, ..GptConfig::default() };
    /// let model = Gpt::new(&config, DType::F64, &mut Rng::new(0))?;
    /// let ids = Tensor::from_indices(&[1, 2, 3, 0, 4, 1], &[2, 3], DType::F64)?;
    /// let y = Tensor::from_vec(vec![2.0f64, 3.0, -1.0, 4.0, 1.0, 2.0], &[2, 3])?;
    /// let (loss, grads) = model.loss_and_grads(&ids, &y, 2)?;
    /// let plain = model.loss(&ids, &y)?.to_f64()?;
    /// assert!((loss - plain).abs() < 1e-12);
    /// let w = model.wte.weight.tensor();
    /// assert_eq!(grads.get(w).unwrap().shape(), w.shape());
    /// # Ok::<(), ricci::Error>(())
    /// ```
    pub fn loss_and_grads(
        &self,
        ids: &Tensor,
        targets: &Tensor,
        pieces: usize,
    ) -> Result<(f64, Grads)> {
        if ids.rank() != 2 || targets.shape() != ids.shape() {
            return Err(Error::shape(
                "Gpt::loss_and_grads",
                ids.shape(),
                targets.shape(),
            ));
        }
        let whole = || -> Result<(f64, Grads)> {
            let loss = self.loss(ids, targets)?;
            Ok((loss.to_f64()?, loss.backward()?))
        };
        let (b, t) = (ids.shape()[0], ids.shape()[1]);
        let pieces = pieces.min(b);
        if pieces <= 1 || self.config.dropout > 0.0 {
            return whole();
        }
        // Counted (not ignored) targets per slice of rows.
        let bounds: Vec<usize> = (0..=pieces).map(|i| i * b / pieces).collect();
        let ys = targets.to_vec_f64();
        let counts: Vec<usize> = bounds
            .windows(2)
            .map(|w| {
                ys[w[0] * t..w[1] * t]
                    .iter()
                    .filter(|&&y| y != IGNORE_TARGET as f64)
                    .count()
            })
            .collect();
        let total: usize = counts.iter().sum();
        if total == 0 {
            // Every target ignored: the whole batch's 0/0, as `loss` gives.
            return whole();
        }
        let parts = side_by_side(pieces, |i| -> Result<Option<(f64, Grads)>> {
            if counts[i] == 0 {
                return Ok(None);
            }
            let rows = bounds[i + 1] - bounds[i];
            let x = ids.narrow(0, bounds[i], rows)?;
            let y = targets.narrow(0, bounds[i], rows)?;
            let loss = self
                .loss(&x, &y)?
                .mul_scalar(counts[i] as f64 / total as f64);
            let value = loss.to_f64()?;
            Ok(Some((value, loss.backward()?)))
        });
        let mut sum = 0.0;
        let mut grads: Option<Grads> = None;
        for part in parts {
            if let Some((value, g)) = part? {
                sum += value;
                match grads.as_mut() {
                    Some(acc) => acc.add(g)?,
                    None => grads = Some(g),
                }
            }
        }
        let grads = grads.ok_or_else(|| {
            Error::invalid("Gpt::loss_and_grads", "internal: no slice had a target")
        })?;
        Ok((sum, grads))
    }

    /// Extends each row of `ids` `[batch, seq]` by `new_tokens` sampled
    /// tokens: logits of the last position divided by `temperature`, cut to
    /// the `top_k` most likely (if given), sampled from `rng`. Temperature 0
    /// picks the most likely token. The context is cropped to `block_size`.
    pub fn generate(
        &self,
        ids: &Tensor,
        new_tokens: usize,
        temperature: f64,
        top_k: Option<usize>,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        if ids.rank() != 2 || ids.shape()[1] == 0 {
            return Err(Error::invalid(
                "generate",
                format!("ids must be [batch, seq>0], got {:?}", ids.shape()),
            ));
        }
        if temperature.is_nan() || temperature < 0.0 {
            return Err(Error::invalid(
                "generate",
                format!("temperature must be >= 0, got {temperature}"),
            ));
        }
        let _guard = crate::no_grad();
        let b = ids.shape()[0];
        let mut rows: Vec<Vec<f64>> = ids
            .to_vec_f64()
            .chunks(ids.shape()[1])
            .map(<[f64]>::to_vec)
            .collect();
        for _ in 0..new_tokens {
            let t = rows[0].len().min(self.config.block_size);
            let ctx: Vec<f64> = rows
                .iter()
                .flat_map(|r| r[r.len() - t..].iter().copied())
                .collect();
            let ctx = Tensor::from_vec(ctx, &[b, t])?.to_dtype(self.dtype());
            let logits = self.forward(&ctx)?.narrow(1, t - 1, 1)?.to_vec_f64();
            let v = self.config.vocab_size;
            for (row, l) in rows.iter_mut().zip(logits.chunks(v)) {
                row.push(sample_token(l, temperature, top_k, rng) as f64);
            }
        }
        let len = rows[0].len();
        Tensor::from_vec(rows.concat(), &[b, len]).map(|t| t.to_dtype(self.dtype()))
    }
}

/// Draws a token id from `logits` at `temperature` among the `top_k` best.
fn sample_token(logits: &[f64], temperature: f64, top_k: Option<usize>, rng: &mut Rng) -> usize {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if temperature == 0.0 {
        return order[0];
    }
    let k = top_k.unwrap_or(logits.len()).clamp(1, logits.len());
    let best = logits[order[0]];
    let weights: Vec<f64> = order[..k]
        .iter()
        .map(|&i| ((logits[i] - best) / temperature).exp())
        .collect();
    let mut u = rng.uniform() * weights.iter().sum::<f64>();
    for (&i, w) in order.iter().zip(&weights) {
        if u < *w {
            return i;
        }
        u -= w;
    }
    order[k - 1]
}

impl Module for Gpt {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        if ids.rank() != 2 {
            return Err(Error::invalid(
                "Gpt",
                format!("ids must be [batch, seq], got {:?}", ids.shape()),
            ));
        }
        let t = ids.shape()[1];
        if t > self.config.block_size {
            return Err(Error::invalid(
                "Gpt",
                format!(
                    "sequence length {t} exceeds block_size {}",
                    self.config.block_size
                ),
            ));
        }
        let pos = self.wpe.weight.tensor().narrow(0, 0, t)?;
        let mut x = self.dropout.forward(&self.wte.forward(ids)?.add(&pos)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let x = self.ln_f.forward(&x)?;
        match &self.lm_head {
            Some(head) => head.forward(&x),
            None => crate::linear(&x, self.wte.weight.tensor(), None),
        }
    }

    fn named_parameters(&self) -> Vec<(String, Var)> {
        let mut p = prefixed("wte", &self.wte);
        p.extend(prefixed("wpe", &self.wpe));
        for (i, block) in self.blocks.iter().enumerate() {
            p.extend(prefixed(&format!("blocks.{i}"), block));
        }
        p.extend(prefixed("ln_f", &self.ln_f));
        if let Some(head) = &self.lm_head {
            p.extend(prefixed("lm_head", head));
        }
        p
    }

    fn set_training(&mut self, training: bool) {
        self.dropout.set_training(training);
        for block in &mut self.blocks {
            block.set_training(training);
        }
    }
}
