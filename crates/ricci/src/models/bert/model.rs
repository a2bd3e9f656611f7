//! The BERT encoder: weights (Hugging Face `BertModel` names) and forward.

use std::collections::HashMap;
use std::path::Path;

use super::config::{Activation, BertConfig};
use crate::error::{Error, Result};
use crate::ops::linear;
use crate::tensor::{DType, Tensor};

/// Added to the attention scores of padding keys. Large enough that
/// `exp` of it underflows to exactly 0 after the max is subtracted, small
/// enough that adding it to a score never overflows (HF uses the dtype's
/// minimum, which behaves the same).
const MASKED_SCORE: f64 = -1e9;

/// One transformer layer's parameters.
struct Layer {
    /// Query, key and value projections stacked: `[3 * hidden, hidden]`, so
    /// that one product computes all three.
    qkv_weight: Tensor,
    qkv_bias: Tensor,
    attn_out_weight: Tensor,
    attn_out_bias: Tensor,
    attn_norm_weight: Tensor,
    attn_norm_bias: Tensor,
    inter_weight: Tensor,
    inter_bias: Tensor,
    out_weight: Tensor,
    out_bias: Tensor,
    out_norm_weight: Tensor,
    out_norm_bias: Tensor,
}

/// A BERT encoder with its weights (f32).
///
/// Built from a `config.json` and the tensors of a `model.safetensors`
/// with Hugging Face `BertModel` names (`embeddings.word_embeddings.weight`,
/// `encoder.layer.N.attention.self.query.weight`, ...; a `bert.` prefix, as
/// task-head checkpoints have, is accepted). The pooler is not used.
pub struct BertModel {
    config: BertConfig,
    activation: Activation,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embed_norm_weight: Tensor,
    embed_norm_bias: Tensor,
    layers: Vec<Layer>,
}

/// Takes named tensors out of a map, checking each shape and naming the
/// tensor (and the file) when one is missing or of the wrong shape.
struct Take<'a> {
    tensors: HashMap<String, Tensor>,
    prefix: &'a str,
    file: &'a str,
}

impl Take<'_> {
    fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        let t = self.tensors.remove(&full).ok_or_else(|| {
            Error::format(self.file.to_string(), format!("missing tensor '{full}'"))
        })?;
        if t.shape() != shape {
            return Err(Error::format(
                self.file.to_string(),
                format!(
                    "tensor '{full}' has shape {:?}, but the config needs {shape:?}",
                    t.shape()
                ),
            ));
        }
        Ok(t.to_dtype(DType::F32))
    }
}

impl BertModel {
    /// Builds the model from `config` and named tensors (extra tensors, such
    /// as the pooler's, are ignored). `file` names the source in errors.
    pub fn from_tensors(
        config: BertConfig,
        tensors: HashMap<String, Tensor>,
        file: &str,
    ) -> Result<BertModel> {
        let activation = config.activation()?;
        let prefix = if !tensors.contains_key("embeddings.word_embeddings.weight")
            && tensors.contains_key("bert.embeddings.word_embeddings.weight")
        {
            "bert."
        } else {
            ""
        };
        let mut take = Take {
            tensors,
            prefix,
            file,
        };
        let (h, i) = (config.hidden_size, config.intermediate_size);
        let word_embeddings =
            take.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let position_embeddings = take.get(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type_embeddings = take.get(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let embed_norm_weight = take.get("embeddings.LayerNorm.weight", &[h])?;
        let embed_norm_bias = take.get("embeddings.LayerNorm.bias", &[h])?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}.");
            let mut get = |name: &str, shape: &[usize]| take.get(&format!("{p}{name}"), shape);
            let q = get("attention.self.query.weight", &[h, h])?;
            let k = get("attention.self.key.weight", &[h, h])?;
            let v = get("attention.self.value.weight", &[h, h])?;
            let qb = get("attention.self.query.bias", &[h])?;
            let kb = get("attention.self.key.bias", &[h])?;
            let vb = get("attention.self.value.bias", &[h])?;
            layers.push(Layer {
                qkv_weight: Tensor::cat(&[&q, &k, &v], 0)?,
                qkv_bias: Tensor::cat(&[&qb, &kb, &vb], 0)?,
                attn_out_weight: get("attention.output.dense.weight", &[h, h])?,
                attn_out_bias: get("attention.output.dense.bias", &[h])?,
                attn_norm_weight: get("attention.output.LayerNorm.weight", &[h])?,
                attn_norm_bias: get("attention.output.LayerNorm.bias", &[h])?,
                inter_weight: get("intermediate.dense.weight", &[i, h])?,
                inter_bias: get("intermediate.dense.bias", &[i])?,
                out_weight: get("output.dense.weight", &[h, i])?,
                out_bias: get("output.dense.bias", &[h])?,
                out_norm_weight: get("output.LayerNorm.weight", &[h])?,
                out_norm_bias: get("output.LayerNorm.bias", &[h])?,
            });
        }
        Ok(BertModel {
            config,
            activation,
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embed_norm_weight,
            embed_norm_bias,
            layers,
        })
    }

    /// Loads `config.json` and `model.safetensors` from `dir`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<BertModel> {
        let dir = dir.as_ref();
        let config = BertConfig::from_file(dir.join("config.json"))?;
        let path = dir.join("model.safetensors");
        // Only float tensors are wanted: HF checkpoints also carry an I64
        // `embeddings.position_ids` buffer, which is skipped.
        let tensors =
            crate::io::read_safetensors_where(&path, |name| !name.ends_with("position_ids"))?;
        // A folder written by `ricci compress` stores some weights as
        // low-rank factor pairs; multiply them back.
        let tensors = crate::nn::fold_low_rank(&tensors)?;
        Self::from_tensors(
            config,
            tensors.into_iter().collect(),
            &path.display().to_string(),
        )
    }

    /// The hyper-parameters this model was built from.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Token vectors `[batch, seq, hidden]` (f32) for token ids, token-type
    /// ids and an attention mask (1 for real tokens, 0 for padding), each
    /// `[batch, seq]` as flat row-major slices.
    ///
    /// Ids are checked against the vocabulary and the sequence length
    /// against `max_position_embeddings`. Inference runs faster under
    /// [`crate::no_grad`], which the sentence encoder sets.
    pub fn forward(
        &self,
        ids: &[u32],
        type_ids: &[u32],
        mask: &[u32],
        batch: usize,
        seq: usize,
    ) -> Result<Tensor> {
        const OP: &str = "bert forward";
        let c = &self.config;
        let n = batch * seq;
        if ids.len() != n || type_ids.len() != n || mask.len() != n {
            return Err(Error::invalid(
                OP,
                format!(
                    "ids, type ids and mask must each hold batch * seq = {n} values, got {}, {}, {}",
                    ids.len(),
                    type_ids.len(),
                    mask.len()
                ),
            ));
        }
        if seq > c.max_position_embeddings {
            return Err(Error::invalid(
                OP,
                format!(
                    "sequence of {seq} tokens is longer than max_position_embeddings {}",
                    c.max_position_embeddings
                ),
            ));
        }
        let to_index = |v: &[u32]| -> Vec<usize> { v.iter().map(|&x| x as usize).collect() };
        let ids_t = Tensor::from_indices(&to_index(ids), &[batch, seq], DType::F32)?;
        let types_t = Tensor::from_indices(&to_index(type_ids), &[batch, seq], DType::F32)?;
        let (h, heads, hd) = (c.hidden_size, c.num_attention_heads, c.head_dim());

        // Embeddings: word + position + token type, then LayerNorm.
        let positions = self.position_embeddings.narrow(0, 0, seq)?;
        let x = self
            .word_embeddings
            .embedding(&ids_t)?
            .add(&positions)?
            .add(&self.token_type_embeddings.embedding(&types_t)?)?;
        let mut x = x
            .layer_norm(
                Some(&self.embed_norm_weight),
                Some(&self.embed_norm_bias),
                c.layer_norm_eps,
            )?
            .reshape([n, h])?;

        // Additive mask [batch, 1, 1, seq]: 0 for tokens, MASKED_SCORE for padding.
        let bias: Vec<f32> = mask
            .iter()
            .map(|&m| if m != 0 { 0.0 } else { MASKED_SCORE as f32 })
            .collect();
        let mask_bias = Tensor::from_vec(bias, &[batch, 1, 1, seq])?;
        let scale = 1.0 / (hd as f64).sqrt();

        for layer in &self.layers {
            // [n, 3h] -> [batch, seq, 3, heads, hd] -> [3, batch, heads, seq, hd] (a view).
            let qkv = linear(&x, &layer.qkv_weight, Some(&layer.qkv_bias))?
                .reshape([batch, seq, 3, heads, hd])?
                .permute([2, 0, 3, 1, 4])?;
            // Scaling q (seq x hd) is cheaper than scaling the scores (seq x seq).
            let q = qkv.narrow(0, 0, 1)?.squeeze(0)?.mul_scalar(scale);
            let k = qkv.narrow(0, 1, 1)?.squeeze(0)?;
            let v = qkv.narrow(0, 2, 1)?.squeeze(0)?;
            let probs = q
                .matmul(&k.transpose(-1, -2)?)?
                .add(&mask_bias)?
                .softmax(-1)?;
            // [batch, heads, seq, hd] -> [batch, seq, heads, hd] -> [n, h].
            let ctx = probs.matmul(&v)?.permute([0, 2, 1, 3])?.reshape([n, h])?;
            let attn = linear(&ctx, &layer.attn_out_weight, Some(&layer.attn_out_bias))?;
            x = attn.add(&x)?.layer_norm(
                Some(&layer.attn_norm_weight),
                Some(&layer.attn_norm_bias),
                c.layer_norm_eps,
            )?;
            let inter = linear(&x, &layer.inter_weight, Some(&layer.inter_bias))?;
            let inter = match self.activation {
                Activation::Gelu => inter.gelu(),
                Activation::GeluTanh => inter.gelu_tanh(),
                Activation::Relu => inter.relu(),
            };
            let out = linear(&inter, &layer.out_weight, Some(&layer.out_bias))?;
            x = out.add(&x)?.layer_norm(
                Some(&layer.out_norm_weight),
                Some(&layer.out_norm_bias),
                c.layer_norm_eps,
            )?;
        }
        x.reshape([batch, seq, h])
    }
}
