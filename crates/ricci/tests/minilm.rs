//! all-MiniLM-L6-v2 against sentence-transformers (PyTorch).
//!
//! `tests/fixtures/minilm/minilm.json` is written by
//! `scripts/fixtures/minilm.py`: the token ids and the embeddings that
//! sentence-transformers computes for 14 texts (empty, whitespace only,
//! punctuation, accents, Chinese, emoji, mixed case, one longer than 256
//! tokens, ...). The model itself is not committed: `scripts/test.sh` runs
//! `scripts/fetch-minilm.sh` first, and these tests fail, saying so, when
//! the folder is missing.
//!
//! Also here: loading a folder with a missing tensor, a wrong shape or an
//! unsupported config fails with an error naming the tensor or setting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ricci::models::bert::{BertConfig, BertModel, SentenceEncoder};
use ricci::{io, DType, Rng, Tensor};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
    max_seq_length: usize,
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/minilm/minilm.json"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run scripts/fixtures/minilm.py)"));
        serde_json::from_str(&text).expect("minilm.json")
    })
}

fn encoder() -> &'static SentenceEncoder {
    static M: OnceLock<SentenceEncoder> = OnceLock::new();
    M.get_or_init(|| {
        let dir = model_dir();
        assert!(
            dir.join("model.safetensors").exists(),
            "\n\n*** all-MiniLM-L6-v2 is not in {}: run scripts/fetch-minilm.sh \
             (scripts/test.sh does) ***\n",
            dir.display()
        );
        SentenceEncoder::from_dir(&dir).unwrap_or_else(|e| panic!("loading the model: {e}"))
    })
}

fn texts() -> Vec<&'static str> {
    fixture().texts.iter().map(String::as_str).collect()
}

/// Checks every embedding against PyTorch's: cosine >= 0.99999 and max
/// absolute difference <= 1e-4.
fn check_embeddings(got: &Tensor, what: &str) {
    let f = fixture();
    assert_eq!(got.shape(), &[f.texts.len(), 384], "{what}");
    let data = got.to_vec::<f32>().unwrap();
    for (i, (row, want)) in data.chunks_exact(384).zip(&f.embeddings).enumerate() {
        let dot: f64 = row
            .iter()
            .zip(want)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let na: f64 = row.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (na * nb);
        let max_diff = row
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            cos >= 0.99999 && max_diff <= 1e-4,
            "{what}: text {i} {:?}: cosine {cos:.8}, max |diff| {max_diff:e}",
            f.texts[i].chars().take(40).collect::<String>()
        );
    }
}

#[test]
fn token_ids_equal_the_hugging_face_tokenizer() {
    let f = fixture();
    let model = encoder();
    assert_eq!(model.config().max_seq_length, f.max_seq_length);
    for (text, want) in f.texts.iter().zip(&f.ids) {
        let got = model.tokenize(text).unwrap();
        assert_eq!(&got, want, "text {text:?}");
    }
    // The fixture does exercise truncation: one text fills max_seq_length.
    assert!(f.ids.iter().any(|ids| ids.len() == f.max_seq_length));
}

#[test]
fn embeddings_match_sentence_transformers_in_one_padded_batch() {
    let got = encoder().embed(&texts()).unwrap();
    check_embeddings(&got, "one batch");
    // Normalize is on for this model: unit vectors.
    for n in got.norm(2.0, -1, false).unwrap().to_vec::<f32>().unwrap() {
        assert!((n - 1.0).abs() < 1e-5, "norm {n}");
    }
}

#[test]
fn embeddings_do_not_depend_on_the_batching() {
    // Batches of 3 pad differently than one batch of 14; results must not move.
    let got = encoder().embed_batched(&texts(), 3).unwrap();
    check_embeddings(&got, "batches of 3");
    let one = encoder().embed(&[texts()[3]]).unwrap();
    check_embeddings(
        &Tensor::cat(
            &[
                &got.narrow(0, 0, 3).unwrap(),
                &one,
                &got.narrow(0, 4, 10).unwrap(),
            ],
            0,
        )
        .unwrap(),
        "text 3 alone",
    );
}

#[test]
fn similarity_is_the_cosine_of_pytorchs_embeddings() {
    let f = fixture();
    let (a, b) = (&f.embeddings[3], &f.embeddings[4]);
    let want: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let got = encoder().similarity(&f.texts[3], &f.texts[4]).unwrap();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    assert!(got > 0.3 && got < 0.99, "two related sentences: {got}");
}

// ---------------------------------------------------------------- bad folders

/// A 1-layer BERT with hidden size 8, for load errors.
const TINY: &str = r#"{"vocab_size": 30522, "hidden_size": 8, "num_hidden_layers": 1,
  "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}"#;

fn tiny_tensors() -> Vec<(String, Tensor)> {
    let mut rng = Rng::new(1);
    let mut t = |shape: &[usize]| Tensor::randn(shape, DType::F32, &mut rng);
    let mut v = vec![
        (
            "embeddings.word_embeddings.weight".to_string(),
            t(&[30522, 8]),
        ),
        ("embeddings.position_embeddings.weight".into(), t(&[16, 8])),
        ("embeddings.token_type_embeddings.weight".into(), t(&[2, 8])),
        ("embeddings.LayerNorm.weight".into(), t(&[8])),
        ("embeddings.LayerNorm.bias".into(), t(&[8])),
    ];
    let p = "encoder.layer.0.";
    for (name, shape) in [
        ("attention.self.query.weight", &[8, 8][..]),
        ("attention.self.query.bias", &[8]),
        ("attention.self.key.weight", &[8, 8]),
        ("attention.self.key.bias", &[8]),
        ("attention.self.value.weight", &[8, 8]),
        ("attention.self.value.bias", &[8]),
        ("attention.output.dense.weight", &[8, 8]),
        ("attention.output.dense.bias", &[8]),
        ("attention.output.LayerNorm.weight", &[8]),
        ("attention.output.LayerNorm.bias", &[8]),
        ("intermediate.dense.weight", &[16, 8]),
        ("intermediate.dense.bias", &[16]),
        ("output.dense.weight", &[8, 16]),
        ("output.dense.bias", &[8]),
        ("output.LayerNorm.weight", &[8]),
        ("output.LayerNorm.bias", &[8]),
    ] {
        v.push((format!("{p}{name}"), t(shape)));
    }
    v
}

/// A model folder in a fresh temporary directory: the tiny config, the
/// real tokenizer, and `tensors` as model.safetensors.
fn tiny_folder(name: &str, config: &str, tensors: &[(String, Tensor)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ricci-minilm-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config).unwrap();
    std::fs::copy(
        model_dir().join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .expect("tokenizer.json of all-MiniLM-L6-v2 (run scripts/fetch-minilm.sh)");
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    io::write_safetensors(dir.join("model.safetensors"), &refs, None).unwrap();
    dir
}

#[test]
fn a_tiny_complete_folder_loads_and_embeds_with_default_pooling() {
    // No modules.json: mean pooling, no normalisation (sentence-transformers' default).
    let dir = tiny_folder("ok", TINY, &tiny_tensors());
    let model = SentenceEncoder::from_dir(&dir).unwrap();
    let e = model.embed(&["hello world", ""]).unwrap();
    assert_eq!(e.shape(), &[2, 8]);
    // A long text is cut to max_position_embeddings = 16 tokens.
    assert_eq!(model.tokenize(&"word ".repeat(50)).unwrap().len(), 16);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_tensor_is_named() {
    let tensors: Vec<_> = tiny_tensors()
        .into_iter()
        .filter(|(n, _)| n != "encoder.layer.0.attention.self.key.weight")
        .collect();
    let dir = tiny_folder("missing", TINY, &tensors);
    let err = SentenceEncoder::from_dir(&dir)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("missing tensor 'encoder.layer.0.attention.self.key.weight'")
            && err.contains("model.safetensors"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let tensors: Vec<_> = tiny_tensors()
        .into_iter()
        .map(|(n, t)| {
            if n == "encoder.layer.0.intermediate.dense.weight" {
                (n, Tensor::zeros(&[8, 16], DType::F32))
            } else {
                (n, t)
            }
        })
        .collect();
    let dir = tiny_folder("shape", TINY, &tensors);
    let err = SentenceEncoder::from_dir(&dir)
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("'encoder.layer.0.intermediate.dense.weight' has shape [8, 16]")
            && err.contains("[16, 8]"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unsupported_configs_are_refused_with_the_setting() {
    let cases = [
        (r#""hidden_act": "swish""#, "hidden_act \"swish\""),
        (
            r#""position_embedding_type": "relative_key""#,
            "relative_key",
        ),
        (r#""num_attention_heads": 3"#, "not a multiple"),
    ];
    for (setting, expect) in cases {
        // Settings absent from TINY are added; present ones are replaced.
        let json = if setting.starts_with(r#""num_attention_heads""#) {
            TINY.replace(r#""num_attention_heads": 2"#, setting)
        } else {
            TINY.replacen('{', &format!("{{{setting}, "), 1)
        };
        let err = BertConfig::from_json(&json)
            .expect_err("must fail")
            .to_string();
        assert!(
            err.contains("unsupported config") && err.contains(expect),
            "{err}"
        );
    }
}

#[test]
fn from_tensors_accepts_the_bert_prefix_of_task_checkpoints() {
    let config = BertConfig::from_json(TINY).unwrap();
    let tensors: HashMap<String, Tensor> = tiny_tensors()
        .into_iter()
        .map(|(n, t)| (format!("bert.{n}"), t))
        .collect();
    let model = BertModel::from_tensors(config, tensors, "test").unwrap();
    let _g = ricci::no_grad();
    let out = model
        .forward(&[101, 7592, 102, 0], &[0; 4], &[1, 1, 1, 0], 1, 4)
        .unwrap();
    assert_eq!(out.shape(), &[1, 4, 8]);
}
