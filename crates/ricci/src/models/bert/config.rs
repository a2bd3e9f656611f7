//! The JSON files of a BERT / sentence-transformers model folder.
//!
//! - `config.json`: the Hugging Face `BertConfig` (sizes, activation, eps);
//! - `modules.json`: the sentence-transformers pipeline (Transformer,
//!   Pooling, optionally Normalize);
//! - `<pooling dir>/config.json`: which pooling modes are on;
//! - `sentence_bert_config.json`: `max_seq_length`.
//!
//! Only `config.json` is required. Without `modules.json` the folder is read
//! as sentence-transformers reads a plain Hugging Face checkpoint: mean
//! pooling, no normalisation.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The hyper-parameters of a BERT encoder (Hugging Face's `config.json`).
///
/// ```
/// let json = r#"{"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 1,
///   "num_attention_heads": 2, "intermediate_size": 16}"#;
/// let c = ricci::models::bert::BertConfig::from_json(json)?;
/// assert_eq!(c.head_dim(), 4);
/// assert_eq!(c.layer_norm_eps, 1e-12);
/// # Ok::<(), ricci::Error>(())
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct BertConfig {
    /// Rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of every token vector (384 for MiniLM-L6).
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// `"gelu"` (erf form), `"gelu_new"` / `"gelu_pytorch_tanh"` (tanh form) or `"relu"`.
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// Longest sequence the position table covers (default 512).
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (default 2).
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// The layer norms' eps (default 1e-12, BERT's).
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Only `"absolute"` is supported.
    #[serde(default = "default_position_type")]
    pub position_embedding_type: String,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_max_positions() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_position_type() -> String {
    "absolute".into()
}

/// The feed-forward activation named by `hidden_act`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x Φ(x)` with the exact normal CDF (BERT's `"gelu"`).
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

impl BertConfig {
    /// Parses and checks the text of a `config.json`.
    pub fn from_json(text: &str) -> Result<BertConfig> {
        let c: BertConfig = serde_json::from_str(text)
            .map_err(|e| Error::format("BERT config.json", e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads and checks `path` (a `config.json`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<BertConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text).map_err(|e| retitle(e, path))
    }

    /// Hidden size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// The activation `hidden_act` names (checked by `validate`).
    pub fn activation(&self) -> Result<Activation> {
        match self.hidden_act.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(unsupported(format!(
                "hidden_act {other:?} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu are)"
            ))),
        }
    }

    fn validate(&self) -> Result<()> {
        self.activation()?;
        if self.position_embedding_type != "absolute" {
            return Err(unsupported(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            )));
        }
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(unsupported(format!("{name} must be positive")));
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(unsupported(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if !(self.layer_norm_eps >= 0.0 && self.layer_norm_eps.is_finite()) {
            return Err(unsupported(format!(
                "layer_norm_eps must be finite and >= 0, got {}",
                self.layer_norm_eps
            )));
        }
        Ok(())
    }
}

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The first token's vector (`[CLS]`).
    Cls,
    /// The elementwise max over non-padding tokens.
    Max,
    /// The mean over non-padding tokens.
    Mean,
    /// The sum over non-padding tokens divided by `sqrt(count)`.
    MeanSqrtLen,
}

/// The sentence-transformers part of a model folder.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceConfig {
    /// Pooling modes, concatenated in this order (sentence-transformers'
    /// order: CLS, max, mean, mean-sqrt-len).
    pub pooling: Vec<Pooling>,
    /// Whether a Normalize module follows (unit L2 norm).
    pub normalize: bool,
    /// Longer inputs are truncated to this many tokens, specials included.
    pub max_seq_length: usize,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

impl SentenceConfig {
    /// Reads the sentence-transformers files of `dir` (see the module doc).
    pub fn from_dir(dir: impl AsRef<Path>, bert: &BertConfig) -> Result<SentenceConfig> {
        let dir = dir.as_ref();
        let modules_path = dir.join("modules.json");
        let mut config = SentenceConfig {
            pooling: vec![Pooling::Mean],
            normalize: false,
            max_seq_length: bert.max_position_embeddings,
        };
        if modules_path.exists() {
            let modules: Vec<ModuleEntry> = read_json(&modules_path)?;
            config.pooling.clear();
            for m in &modules {
                let kind = m.kind.rsplit('.').next().unwrap_or(&m.kind);
                match kind {
                    "Transformer" if m.path.is_empty() => {}
                    "Transformer" => {
                        return Err(Error::format(
                            modules_path.display().to_string(),
                            format!("the Transformer module must be the folder itself, not {:?}", m.path),
                        ))
                    }
                    "Pooling" => config.pooling = read_pooling(&dir.join(&m.path).join("config.json"))?,
                    "Normalize" => config.normalize = true,
                    other => {
                        return Err(Error::format(
                            modules_path.display().to_string(),
                            format!("module type {other:?} is not supported (Transformer, Pooling, Normalize are)"),
                        ))
                    }
                }
            }
            if config.pooling.is_empty() {
                return Err(Error::format(
                    modules_path.display().to_string(),
                    "no Pooling module",
                ));
            }
        }
        let sbert_path = dir.join("sentence_bert_config.json");
        if sbert_path.exists() {
            let sbert: SentenceBertFile = read_json(&sbert_path)?;
            if let Some(n) = sbert.max_seq_length {
                if n < 2 || n > bert.max_position_embeddings {
                    return Err(Error::format(
                        sbert_path.display().to_string(),
                        format!(
                            "max_seq_length {n} must be in 2..={} (max_position_embeddings)",
                            bert.max_position_embeddings
                        ),
                    ));
                }
                config.max_seq_length = n;
            }
        }
        Ok(config)
    }
}

fn read_pooling(path: &Path) -> Result<Vec<Pooling>> {
    let p: PoolingFile = read_json(path)?;
    let bad = |msg: &str| Error::format(path.display().to_string(), msg.to_string());
    if p.pooling_mode_weightedmean_tokens || p.pooling_mode_lasttoken {
        return Err(bad(
            "weighted-mean and last-token pooling are not supported (cls, max, mean, mean_sqrt_len are)",
        ));
    }
    let modes: Vec<Pooling> = [
        (p.pooling_mode_cls_token, Pooling::Cls),
        (p.pooling_mode_max_tokens, Pooling::Max),
        (p.pooling_mode_mean_tokens, Pooling::Mean),
        (p.pooling_mode_mean_sqrt_len_tokens, Pooling::MeanSqrtLen),
    ]
    .into_iter()
    .filter_map(|(on, mode)| on.then_some(mode))
    .collect();
    if modes.is_empty() {
        return Err(bad("no pooling mode is switched on"));
    }
    Ok(modes)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::format(path.display().to_string(), e.to_string()))
}

fn unsupported(msg: String) -> Error {
    Error::format("BERT config.json", format!("unsupported config: {msg}"))
}

/// Names the file in a config error.
fn retitle(e: Error, path: &Path) -> Error {
    match e {
        Error::Format { msg, .. } => Error::format(PathBuf::from(path).display().to_string(), msg),
        other => other,
    }
}
