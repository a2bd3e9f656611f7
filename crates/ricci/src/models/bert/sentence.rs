//! Sentence embeddings: tokenizer, batching, pooling, normalisation, as
//! sentence-transformers' `SentenceTransformer.encode` computes them.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::config::{BertConfig, Pooling, SentenceConfig};
use super::model::BertModel;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// sentence-transformers' default batch size.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// A sentence-transformers BERT model folder, loaded: tokenizer, encoder,
/// pooling and normalisation.
///
/// ```no_run
/// use ricci::models::bert::SentenceEncoder;
/// let model = SentenceEncoder::from_dir("models/all-MiniLM-L6-v2")?;
/// let e = model.embed(&["A man is eating food.", "A man is eating pasta."])?;
/// assert_eq!(e.shape(), &[2, 384]);
/// let s = model.similarity("A man is eating food.", "A man is eating pasta.")?;
/// assert!(s > 0.5);
/// # Ok::<(), ricci::Error>(())
/// ```
pub struct SentenceEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    config: SentenceConfig,
    pad_id: u32,
    pad_type_id: u32,
}

/// A batch of tokenised texts padded to its longest, row-major `[batch, seq]`.
struct Batch {
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    mask: Vec<u32>,
    batch: usize,
    seq: usize,
}

impl SentenceEncoder {
    /// Loads a model folder: `config.json`, `model.safetensors`,
    /// `tokenizer.json`, and the sentence-transformers files
    /// (`modules.json`, the pooling config, `sentence_bert_config.json`).
    ///
    /// The tokenizer's own padding (all-MiniLM-L6-v2's pads every text to
    /// 128 tokens) is switched off: each batch is padded to its longest
    /// text. Its truncation is replaced by `max_seq_length` tokens, as
    /// sentence-transformers does.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<SentenceEncoder> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "model folder not found (all-MiniLM-L6-v2: run scripts/fetch-minilm.sh)",
                ),
            ));
        }
        let bert = BertConfig::from_file(dir.join("config.json"))?;
        let config = SentenceConfig::from_dir(dir, &bert)?;
        let tokenizer = load_tokenizer(&dir.join("tokenizer.json"), config.max_seq_length)?;
        let (pad_id, pad_type_id) = tokenizer
            .get_padding()
            .map_or((0, 0), |p| (p.pad_id, p.pad_type_id));
        let mut tokenizer = tokenizer;
        tokenizer.with_padding(None);
        let model = BertModel::from_dir(dir)?;
        Ok(SentenceEncoder {
            model,
            tokenizer,
            config,
            pad_id,
            pad_type_id,
        })
    }

    /// The BERT encoder.
    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// Pooling, normalisation and `max_seq_length`.
    pub fn config(&self) -> &SentenceConfig {
        &self.config
    }

    /// The length of an embedding: hidden size times the number of pooling modes.
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size * self.config.pooling.len()
    }

    /// The token ids the model sees for `text`: special tokens added,
    /// truncated to `max_seq_length`, no padding. Leading and trailing
    /// whitespace is stripped first, as sentence-transformers does.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode_fast(text.trim(), true)
            .map_err(|e| Error::invalid("tokenize", e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Embeddings `[texts.len(), dim]` (f32) in batches of
    /// [`DEFAULT_BATCH_SIZE`]. An empty string is a valid text.
    pub fn embed(&self, texts: &[&str]) -> Result<Tensor> {
        self.embed_batched(texts, DEFAULT_BATCH_SIZE)
    }

    /// Embeddings `[texts.len(), dim]` (f32), `batch_size` texts at a time.
    /// Texts are sorted by token count first so that each batch pads little
    /// (sentence-transformers sorts by characters for the same reason); the
    /// rows come back in the input order.
    pub fn embed_batched(&self, texts: &[&str], batch_size: usize) -> Result<Tensor> {
        if batch_size == 0 {
            return Err(Error::invalid("embed", "batch_size must be at least 1"));
        }
        let _guard = crate::autograd::no_grad();
        let trimmed: Vec<&str> = texts.iter().map(|t| t.trim()).collect();
        let encodings = self
            .tokenizer
            .encode_batch_fast(trimmed, true)
            .map_err(|e| Error::invalid("embed", format!("tokenizer failed: {e}")))?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
        let dim = self.dim();
        let mut out = vec![0.0f32; texts.len() * dim];
        for chunk in order.chunks(batch_size) {
            let batch = self.pad(chunk.iter().map(|&i| &encodings[i]));
            let pooled = self.embed_padded(&batch)?.to_vec::<f32>()?;
            for (row, &i) in pooled.chunks_exact(dim).zip(chunk) {
                out[i * dim..(i + 1) * dim].copy_from_slice(row);
            }
        }
        Tensor::from_vec(out, &[texts.len(), dim])
    }

    /// Cosine similarity of the embeddings of `a` and `b`.
    pub fn similarity(&self, a: &str, b: &str) -> Result<f64> {
        let e = self.embed(&[a, b])?;
        let (ea, eb) = (e.narrow(0, 0, 1)?, e.narrow(0, 1, 1)?);
        let dot = ea.mul(&eb)?.sum_all().to_f64()?;
        let norms = ea.norm_all().to_f64()? * eb.norm_all().to_f64()?;
        // Both norms are 0 only for a model whose embedding is all zeros.
        Ok(if norms > 0.0 { dot / norms } else { 0.0 })
    }

    /// Pads encodings to the longest one.
    fn pad<'a>(&self, encodings: impl Iterator<Item = &'a tokenizers::Encoding> + Clone) -> Batch {
        let seq = encodings
            .clone()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0);
        let mut b = Batch {
            ids: Vec::new(),
            type_ids: Vec::new(),
            mask: Vec::new(),
            batch: 0,
            seq,
        };
        for e in encodings {
            let pad = seq - e.get_ids().len();
            b.ids.extend(
                e.get_ids()
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(self.pad_id, pad)),
            );
            b.type_ids.extend(
                e.get_type_ids()
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(self.pad_type_id, pad)),
            );
            b.mask
                .extend(std::iter::repeat_n(1, seq - pad).chain(std::iter::repeat_n(0, pad)));
            b.batch += 1;
        }
        b
    }

    /// Encoder, pooling and normalisation for one padded batch: `[batch, dim]`.
    fn embed_padded(&self, b: &Batch) -> Result<Tensor> {
        let tokens = self
            .model
            .forward(&b.ids, &b.type_ids, &b.mask, b.batch, b.seq)?;
        let mask: Vec<f32> = b.mask.iter().map(|&m| m as f32).collect();
        let mask = Tensor::from_vec(mask, &[b.batch, b.seq, 1])?;
        let pooled = pool(&tokens, &mask, &self.config.pooling)?;
        if !self.config.normalize {
            return Ok(pooled);
        }
        // F.normalize: x / max(|x|, 1e-12).
        let norm = pooled.norm(2.0, -1, true)?.maximum_scalar(1e-12);
        pooled.div(&norm)
    }
}

/// Pools token vectors `[batch, seq, hidden]` over the tokens where `mask`
/// (`[batch, seq, 1]`, 1 or 0) is 1, for each mode, concatenated.
pub fn pool(tokens: &Tensor, mask: &Tensor, modes: &[Pooling]) -> Result<Tensor> {
    let count = || -> Result<Tensor> { Ok(mask.sum(1, false)?.maximum_scalar(1e-9)) };
    let sum = || tokens.mul(mask)?.sum(1, false);
    let mut parts = Vec::with_capacity(modes.len());
    for mode in modes {
        parts.push(match mode {
            Pooling::Cls => tokens.narrow(1, 0, 1)?.squeeze(1)?,
            // sentence-transformers sets padding to -1e9 before the max.
            Pooling::Max => tokens
                .masked_fill(&mask.eq_scalar(0.0), -1e9)?
                .max(1, false)?,
            Pooling::Mean => sum()?.div(&count()?)?,
            Pooling::MeanSqrtLen => sum()?.div(&count()?.sqrt())?,
        });
    }
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    Tensor::cat(&refs, 1)
}

/// Reads `tokenizer.json` and sets sentence-transformers' truncation.
fn load_tokenizer(path: &Path, max_len: usize) -> Result<Tokenizer> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let what = || path.display().to_string();
    let mut tokenizer =
        Tokenizer::from_bytes(bytes).map_err(|e| Error::format(what(), e.to_string()))?;
    let truncation = TruncationParams {
        direction: TruncationDirection::Right,
        max_length: max_len,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
    };
    tokenizer
        .with_truncation(Some(truncation))
        .map_err(|e| Error::format(what(), e.to_string()))?;
    Ok(tokenizer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_ignores_padding() {
        // Two sequences of 3 tokens, 2-dim vectors; the second has one pad.
        let tokens = Tensor::from_vec(
            vec![
                1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, -1.0, 3.0, 1.0, 100.0, 100.0,
            ],
            &[2, 3, 2],
        )
        .unwrap();
        let mask = Tensor::from_vec(vec![1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0], &[2, 3, 1]).unwrap();
        let got = |m: Pooling| pool(&tokens, &mask, &[m]).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(got(Pooling::Cls), vec![1.0, 2.0, 1.0, -1.0]);
        assert_eq!(got(Pooling::Max), vec![5.0, 6.0, 3.0, 1.0]);
        assert_eq!(got(Pooling::Mean), vec![3.0, 4.0, 2.0, 0.0]);
        let s = got(Pooling::MeanSqrtLen);
        let want = [
            9.0 / 3f32.sqrt(),
            12.0 / 3f32.sqrt(),
            4.0 / 2f32.sqrt(),
            0.0,
        ];
        assert!(
            s.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{s:?}"
        );
        let both = pool(&tokens, &mask, &[Pooling::Cls, Pooling::Mean]).unwrap();
        assert_eq!(both.shape(), &[2, 4]);
        assert_eq!(
            both.to_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 1.0, -1.0, 2.0, 0.0]
        );
    }

    #[test]
    fn a_missing_folder_says_how_to_get_the_model() {
        let err = SentenceEncoder::from_dir("/nonexistent/ricci-model")
            .err()
            .unwrap();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/ricci-model") && msg.contains("fetch-minilm"),
            "{msg}"
        );
    }
}
