//! `ricci analyze` end to end: on a freshly trained run (spectra, head
//! spectra, Hessian eigenvalues, trace and density, plots and JSON), on a
//! safetensors file of known matrices, on the MiniLM folder, and one clear
//! error line for each kind of bad input.

use std::path::{Path, PathBuf};

use ricci::{io, DType, Tensor};
use serde_json::Value;

mod common;

use common::{ricci, run_ok, scratch, Scratch};

/// A 1-layer, 2-head addition model 16 wide, trained for 40 steps.
/// Returns the scratch directory's guard with the run inside it.
fn trained_run(name: &str) -> (Scratch, PathBuf) {
    let dir = scratch("analyze", name);
    let run = common::trained_run(&dir, 16, 40);
    (dir, run)
}

fn analyze_json(args: &[&str], path: &Path) -> Value {
    let out = run_ok(
        ricci()
            .arg("analyze")
            .arg("--checkpoint")
            .arg(path)
            .args(args)
            .arg("--json"),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn analyzes_a_trained_run_with_hessian_and_plots() {
    let (_dir, run) = trained_run("run");
    let report = analyze_json(&["--top-k", "3", "--trace-probes", "20", "--density"], &run);
    // Every 2-D weight: wte, wpe, qkv, proj, fc, proj, lm_head.
    let weights = report["weights"].as_array().unwrap();
    let names: Vec<&str> = weights
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"blocks.0.attn.qkv.weight"), "{names:?}");
    assert_eq!(weights.len(), 7, "{names:?}");
    for w in weights {
        let s = floats(&w["singular_values"]);
        assert!(s.windows(2).all(|p| p[0] >= p[1]), "not descending: {s:?}");
        assert_eq!(s[0], w["spectral_norm"].as_f64().unwrap());
        let rank = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .min();
        assert_eq!(s.len() as u64, rank.unwrap());
    }
    // Two heads of width 8 in the one layer.
    let heads = report["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[1]["layer"], "blocks.0.attn");
    assert_eq!(floats(&heads[0]["qk"]["singular_values"]).len(), 8);

    let h = &report["hessian"];
    let top = floats(&h["top_eigenvalues"]);
    assert_eq!(top.len(), 3);
    assert!(
        top.windows(2).all(|p| p[0] >= p[1]) && top[0] > 0.0,
        "{top:?}"
    );
    assert!(h["lanczos_matvecs"].as_u64().unwrap() > 3);
    let (trace, se) = (
        h["trace"].as_f64().unwrap(),
        h["trace_std_error"].as_f64().unwrap(),
    );
    assert!(trace.is_finite() && se > 0.0);
    assert_eq!(h["trace_probes"], 20);
    assert_eq!(h["batch"], serde_json::json!([16, 11]));
    // The density lives where the eigenvalues are and integrates to 1.
    let grid = floats(&h["density"]["grid"]);
    let phi = floats(&h["density"]["density"]);
    let mass: f64 = phi.iter().sum::<f64>() * (grid[1] - grid[0]);
    assert!((mass - 1.0).abs() < 0.01, "density integrates to {mass}");
    assert!(*grid.last().unwrap() >= top[0]);

    let out = run.join("analysis");
    for plot in ["spectra.png", "heads.png", "density.png"] {
        assert!(is_png(&out.join(plot)), "{plot} missing or not a PNG");
    }
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("analysis.json")).unwrap()).unwrap();
    assert_eq!(saved["hessian"]["top_eigenvalues"], h["top_eigenvalues"]);

    // The same batch and seed give the same eigenvalues (tables this time).
    let text = ricci()
        .args([
            "analyze",
            "--top-k",
            "3",
            "--trace-probes",
            "0",
            "--checkpoint",
        ])
        .arg(&run)
        .output()
        .unwrap();
    assert!(text.status.success());
    let stdout = String::from_utf8(text.stdout).unwrap();
    assert!(stdout.contains("blocks.0.attn.qkv.weight") && stdout.contains("top eigenvalues"));
    assert!(stdout.contains(&format!("{:.6}", top[0])), "{stdout}");
}

#[test]
fn spectra_of_a_safetensors_file_are_exact() {
    let dir = scratch("analyze", "file");
    let file = dir.join("weights.safetensors");
    let diag = Tensor::eye(3, DType::F32)
        .mul(&Tensor::from_vec(vec![0.5f32, -4.0, 2.0], &[1, 3]).unwrap())
        .unwrap();
    let bias = Tensor::ones(&[3], DType::F32);
    io::write_safetensors(
        &file,
        &[("layer.weight", &diag), ("layer.bias", &bias)],
        None,
    )
    .unwrap();
    let report = analyze_json(&[], &file);
    let weights = report["weights"].as_array().unwrap();
    assert_eq!(weights.len(), 1, "the 1-D bias is skipped");
    assert_eq!(floats(&weights[0]["singular_values"]), vec![4.0, 2.0, 0.5]);
    let stable = weights[0]["stable_rank"].as_f64().unwrap();
    assert!((stable - 20.25 / 16.0).abs() < 1e-12);
    assert!(report.get("hessian").is_none());
    assert!(is_png(&dir.join("weights_analysis/spectra.png")));
}

#[test]
fn finds_the_attention_heads_of_minilm() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2");
    assert!(
        model.join("model.safetensors").exists(),
        "run scripts/fetch-minilm.sh"
    );
    let out = scratch("analyze", "minilm");
    let report = analyze_json(&["--out", out.to_str().unwrap()], &model);
    // 6 layers of 12 heads of width 32 (heads from the folder's config.json).
    let heads = report["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 72);
    assert_eq!(floats(&heads[0]["ov"]["singular_values"]).len(), 32);
    assert!(is_png(&out.join("heads.png")));
}

fn one_line_error(args: &[&str], needle: &str) {
    common::one_line_error(&[&["analyze"], args].concat(), needle);
}

#[test]
fn bad_input_gives_one_clear_line() {
    one_line_error(&["--checkpoint", "/nonexistent/run"], "no such file");
    let empty = scratch("analyze", "empty");
    one_line_error(
        &["--checkpoint", empty.to_str().unwrap()],
        "neither a ricci training directory",
    );
    let junk = empty.join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    one_line_error(
        &["--checkpoint", junk.to_str().unwrap()],
        "junk.safetensors",
    );
    one_line_error(
        &["--checkpoint", junk.to_str().unwrap(), "--data", "x.txt"],
        "--data needs a ricci training directory",
    );
}
