//! `ricci embed` and `ricci similarity` end to end, with all-MiniLM-L6-v2
//! (fetched by `scripts/fetch-minilm.sh`, which `scripts/test.sh` runs), and
//! their bad input: a missing folder, a folder missing a tensor, an
//! unreadable input file, no texts.

use std::path::{Path, PathBuf};

mod common;

use common::{ricci, scratch};

fn model_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").exists(),
        "\n\n*** all-MiniLM-L6-v2 is not in {}: run scripts/fetch-minilm.sh ***\n",
        dir.display()
    );
    dir
}

/// Runs `ricci` and returns stdout, asserting success.
fn ok(args: &[&str]) -> String {
    let out = ricci().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ricci {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `ricci`, expects failure with exactly one `error: ...` line, returns it.
fn fails(args: &[&str]) -> String {
    let out = ricci().args(args).output().unwrap();
    assert!(!out.status.success(), "ricci {args:?} should fail");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

#[test]
fn embed_json_gives_unit_vectors_one_per_text_in_order() {
    let dir = model_dir();
    let tmp = scratch("embed", "input");
    let input = tmp.join("input.txt");
    std::fs::write(&input, "from the file\n\nlast line\n").unwrap();
    let stdout = ok(&[
        "embed",
        "--model",
        dir.to_str().unwrap(),
        "--json",
        "--batch-size",
        "2",
        "A man is eating food.",
        "",
        "--input",
        input.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["texts"], 5, "2 arguments and 3 lines (one empty)");
    assert_eq!(v["dim"], 384);
    // [CLS] + 6 word pieces + [SEP]; the empty text and the empty line are [CLS] [SEP].
    assert_eq!(v["tokens"], serde_json::json!([8, 2, 5, 2, 4]));
    let rows = v["embeddings"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    for row in rows {
        let norm: f64 = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap().powi(2))
            .sum();
        assert!((norm.sqrt() - 1.0).abs() < 1e-5);
    }
    // Both empty texts embed identically.
    assert_eq!(rows[1], rows[3]);
}

#[test]
fn embed_writes_an_npy_that_matches_the_printed_vectors() {
    let dir = model_dir();
    let tmp = scratch("embed", "npy");
    let out = tmp.join("out.npy");
    let printed = ok(&[
        "embed",
        "--model",
        dir.to_str().unwrap(),
        "Short.",
        "Another one.",
    ]);
    let lines: Vec<Vec<f32>> = printed
        .lines()
        .map(|l| l.split(' ').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(lines.len(), 2);
    let msg = ok(&[
        "embed",
        "--model",
        dir.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "Short.",
        "Another one.",
    ]);
    assert!(msg.contains("wrote 2 embeddings of dimension 384"), "{msg}");
    let t = ricci::io::read_npy(&out).unwrap();
    assert_eq!(t.shape(), &[2, 384]);
    let data = t.to_vec::<f32>().unwrap();
    for (a, b) in data.iter().zip(lines.iter().flatten()) {
        assert!((a - b).abs() <= 1e-6, "{a} vs printed {b}");
    }
}

#[test]
fn similarity_ranks_a_paraphrase_above_an_unrelated_sentence() {
    let dir = model_dir();
    let sim = |a: &str, b: &str| -> f64 {
        ok(&["similarity", "--model", dir.to_str().unwrap(), a, b])
            .trim()
            .parse()
            .unwrap()
    };
    let same = sim("A man is eating food.", "A man is eating food.");
    assert!((same - 1.0).abs() < 1e-5, "{same}");
    let close = sim("A man is eating food.", "A man is eating a piece of bread.");
    let far = sim(
        "A man is eating food.",
        "The stock market fell sharply today.",
    );
    assert!(close > far + 0.3, "paraphrase {close}, unrelated {far}");
    let json = ok(&[
        "similarity",
        "--model",
        dir.to_str().unwrap(),
        "--json",
        "a",
        "b",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["similarity"].as_f64().is_some(), "{json}");
}

#[test]
fn a_missing_model_folder_is_one_error_line() {
    let err = fails(&["embed", "--model", "/nonexistent/minilm", "hello"]);
    assert!(
        err.contains("/nonexistent/minilm") && err.contains("fetch-minilm"),
        "{err}"
    );
    let err = fails(&["similarity", "--model", "/nonexistent/minilm", "a", "b"]);
    assert!(err.contains("/nonexistent/minilm"), "{err}");
}

#[test]
fn a_folder_missing_its_weights_or_a_tensor_is_one_error_line() {
    let dir = model_dir();
    let broken = scratch("embed", "broken-model");
    for f in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
    ] {
        std::fs::copy(dir.join(f), broken.join(f)).unwrap();
    }
    std::fs::create_dir_all(broken.join("1_Pooling")).unwrap();
    std::fs::copy(
        dir.join("1_Pooling/config.json"),
        broken.join("1_Pooling/config.json"),
    )
    .unwrap();
    // No model.safetensors at all.
    let err = fails(&["embed", "--model", broken.to_str().unwrap(), "hello"]);
    assert!(err.contains("model.safetensors"), "{err}");
    // A model.safetensors without the encoder's tensors.
    let w = ricci::Tensor::zeros(&[30522, 384], ricci::DType::F32);
    ricci::io::write_safetensors(
        broken.join("model.safetensors"),
        &[("embeddings.word_embeddings.weight", &w)],
        None,
    )
    .unwrap();
    let err = fails(&["embed", "--model", broken.to_str().unwrap(), "hello"]);
    assert!(
        err.contains("missing tensor 'embeddings.position_embeddings.weight'"),
        "{err}"
    );
}

#[test]
fn bad_input_files_and_empty_requests_are_one_error_line() {
    let dir = model_dir();
    let d = dir.to_str().unwrap();
    let err = fails(&["embed", "--model", d, "--input", "/nonexistent/texts.txt"]);
    assert!(err.contains("--input /nonexistent/texts.txt"), "{err}");
    // A directory cannot be read as a text file.
    let err = fails(&["embed", "--model", d, "--input", d]);
    assert!(err.contains("--input"), "{err}");
    // Invalid UTF-8.
    let tmp = scratch("embed", "binary");
    let bin = tmp.join("binary.txt");
    std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    let err = fails(&["embed", "--model", d, "--input", bin.to_str().unwrap()]);
    assert!(err.contains("UTF-8"), "{err}");
    let err = fails(&["embed", "--model", d]);
    assert!(err.contains("no texts given"), "{err}");
    let err = fails(&["embed", "--model", d, "--batch-size", "0", "x"]);
    assert!(err.contains("batch-size"), "{err}");
    // An output path in a missing directory.
    let err = fails(&[
        "embed",
        "--model",
        d,
        "--output",
        "/nonexistent/dir/out.npy",
        "x",
    ]);
    assert!(err.contains("/nonexistent/dir"), "{err}");
}
