//! `ricci compress` end to end: a trained run compressed at a rank and
//! losslessly (energy 1), the compressed directory used by `sample` and
//! `analyze`, all-MiniLM-L6-v2 compressed with the cosine similarity of its
//! embeddings, and one clear error line for bad input.

use std::path::{Path, PathBuf};

mod common;

use common::{ok_json, ricci, run_ok, scratch};

/// A 1-layer, 2-head addition model 32 wide, trained for 60 steps.
fn trained_run(dir: &Path) -> PathBuf {
    common::trained_run(dir, 32, 60)
}

#[test]
fn compresses_a_trained_run_and_the_result_loads() {
    let dir = scratch("compress", "run");
    let run = trained_run(&dir);
    let (run_s, small_s) = (run.to_str().unwrap(), dir.join("small"));
    let small = small_s.to_str().unwrap();
    let s = ok_json(&[
        "compress",
        "--checkpoint",
        run_s,
        "--rank",
        "4",
        "--out",
        small,
        "--json",
    ]);
    let layers = s["layers"].as_array().unwrap();
    // qkv, proj, fc, proj, lm_head; the embeddings are left alone.
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "blocks.0.attn.qkv.weight",
            "blocks.0.attn.proj.weight",
            "blocks.0.mlp.fc.weight",
            "blocks.0.mlp.proj.weight",
            "lm_head.weight"
        ]
    );
    let mut saved = 0;
    for l in layers {
        let shape: Vec<u64> = l["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(l["rank"], 4);
        let factored = 4 * (shape[0] + shape[1]);
        let dense = shape[0] * shape[1];
        let after = l["params_after"].as_u64().unwrap();
        assert_eq!(
            after,
            if factored < dense { factored } else { dense },
            "{l}"
        );
        assert_eq!(l["kept_dense"].as_bool().unwrap(), factored >= dense);
        saved += dense - after;
    }
    let (before, after) = (
        s["total_params_before"].as_u64().unwrap(),
        s["total_params_after"].as_u64().unwrap(),
    );
    assert_eq!(before - after, saved);
    let (lb, la) = (
        s["val_loss_before"].as_f64().unwrap(),
        s["val_loss_after"].as_f64().unwrap(),
    );
    assert!(lb.is_finite() && la.is_finite() && la != lb);

    // The compressed run samples and analyzes (factors multiplied back).
    run_ok(ricci().args(["sample", "--checkpoint", small, "--prompt", "12+34="]));
    let report = ok_json(&[
        "analyze",
        "--checkpoint",
        small,
        "--top-k",
        "1",
        "--trace-probes",
        "0",
        "--json",
    ]);
    let qkv = report["weights"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "blocks.0.attn.qkv.weight")
        .unwrap();
    // Rank 4: only four non-zero singular values are left.
    let sv: Vec<f64> = qkv["singular_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(sv[4..].iter().all(|x| *x < 1e-4 * sv[0]), "{sv:?}");

    // Keeping all the energy changes nothing but the storage.
    let exact = dir.join("exact");
    let s = ok_json(&[
        "compress",
        "--checkpoint",
        run_s,
        "--energy",
        "1.0",
        "--out",
        exact.to_str().unwrap(),
        "--json",
    ]);
    let (lb, la) = (
        s["val_loss_before"].as_f64().unwrap(),
        s["val_loss_after"].as_f64().unwrap(),
    );
    assert!((lb - la).abs() < 1e-4 * lb.max(1e-3), "{lb} vs {la}");
}

#[test]
fn compresses_minilm_and_reports_embedding_similarity() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(
        model.join("model.safetensors").exists(),
        "run scripts/fetch-minilm.sh"
    );
    let dir = scratch("compress", "minilm");
    let m = model.to_str().unwrap();
    let out = dir.join("half");
    let s = ok_json(&[
        "compress",
        "--checkpoint",
        m,
        "--energy",
        "0.9",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]);
    // 6 layers x (q, k, v, attention output, intermediate, output).
    assert_eq!(s["layers"].as_array().unwrap().len(), 36);
    let mean = s["mean_cosine"].as_f64().unwrap();
    let min = s["min_cosine"].as_f64().unwrap();
    assert!(
        mean > 0.5 && mean < 0.9999 && min <= mean,
        "mean {mean}, min {min}"
    );
    // The folder embeds with `ricci embed`.
    let e = ricci()
        .args([
            "embed",
            "--model",
            out.to_str().unwrap(),
            "--json",
            "hello world",
        ])
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));

    // A small rank loses more than keeping 90% of the energy.
    let tiny = dir.join("tiny");
    let t = ok_json(&[
        "compress",
        "--checkpoint",
        m,
        "--rank",
        "2",
        "--out",
        tiny.to_str().unwrap(),
        "--json",
    ]);
    assert!(t["mean_cosine"].as_f64().unwrap() < mean);
    assert!(t["total_params_after"].as_u64().unwrap() < s["total_params_after"].as_u64().unwrap());
}

fn one_line_error(args: &[&str], needle: &str) {
    common::one_line_error(&[&["compress"], args].concat(), needle);
}

#[test]
fn bad_input_gives_one_clear_line() {
    let dir = scratch("compress", "bad");
    one_line_error(
        &["--checkpoint", "/nonexistent/run", "--rank", "2"],
        "neither a ricci training directory",
    );
    one_line_error(
        &["--checkpoint", "/nonexistent/run"],
        "give --rank R or --energy F",
    );
    let run = trained_run(&dir);
    let r = run.to_str().unwrap();
    one_line_error(
        &["--checkpoint", r, "--rank", "0"],
        "rank 0 is out of range",
    );
    one_line_error(
        &["--checkpoint", r, "--rank", "1000"],
        "rank 1000 is out of range",
    );
    one_line_error(&["--checkpoint", r, "--energy", "1.5"], "energy fraction");
    one_line_error(
        &["--checkpoint", r, "--rank", "2", "--out", r],
        "--out must differ",
    );
}
