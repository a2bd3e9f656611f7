//! End-to-end tests of `ricci decompose`: each method on a planted tensor
//! writes its factors and reports a tiny error in `--json`; the factors read
//! back reconstruct the tensor; bad inputs give one error line and a
//! non-zero exit.

use std::path::PathBuf;

use ricci::decomp::{Cp, TensorTrain, Tucker};
use ricci::{io, DType, Rng, Tensor};

mod common;

use common::{ricci, run_ok};

/// A fresh directory for one test's files.
fn scratch(name: &str) -> common::Scratch {
    common::scratch("decompose", name)
}

/// A rank-2 CP tensor [5, 6, 7] (also Tucker (2, 2, 2) and TT ranks (2, 2)).
fn planted(dir: &std::path::Path) -> (PathBuf, Tensor) {
    let mut rng = Rng::new(0);
    let factors = [5, 6, 7]
        .iter()
        .map(|&n| Tensor::randn(&[n, 2], DType::F64, &mut rng))
        .collect();
    let x = Cp {
        weights: Tensor::ones(&[2], DType::F64),
        factors,
        iterations: 0,
        converged: true,
        error: 0.0,
    }
    .reconstruct()
    .unwrap();
    let path = dir.join("x.npy");
    io::write_npy(&path, &x).unwrap();
    (path, x)
}

fn run_json(args: &[&str], input: &PathBuf, out: &PathBuf) -> serde_json::Value {
    let output = run_ok(
        ricci()
            .arg("decompose")
            .arg(input)
            .args(args)
            .arg("--out")
            .arg(out)
            .arg("--json"),
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

fn read(dir: &std::path::Path, name: &str) -> Tensor {
    io::read_npy(dir.join(name)).unwrap()
}

/// `STEM_0.npy`, `STEM_1.npy`, `STEM_2.npy` of `dir`: one per mode.
fn read_modes(dir: &std::path::Path, stem: &str) -> Vec<Tensor> {
    (0..3)
        .map(|n| read(dir, &format!("{stem}_{n}.npy")))
        .collect()
}

fn rel_err(a: &Tensor, x: &Tensor) -> f64 {
    a.sub(x).unwrap().norm_all().to_f64().unwrap() / x.norm_all().to_f64().unwrap()
}

#[test]
fn cp_writes_weights_and_factors_that_rebuild_the_tensor() {
    let dir = scratch("cp");
    let (input, x) = planted(&dir);
    let out = dir.join("cp");
    let j = run_json(
        &["--cp", "2", "--tol", "1e-14", "--max-iter", "2000"],
        &input,
        &out,
    );
    assert_eq!(j["method"], "cp");
    assert!(j["relative_error"].as_f64().unwrap() < 1e-10, "{j}");
    assert!(j["iterations"].as_u64().unwrap() >= 1);
    assert_eq!(j["parameters"], 2 + 2 * 18);
    assert_eq!(j["numel"], 210);
    let ratio = j["compression_ratio"].as_f64().unwrap();
    assert!((ratio - 210.0 / 38.0).abs() < 1e-12);
    assert!(j["time_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        j["files"],
        serde_json::json!([
            "weights.npy",
            "factor_0.npy",
            "factor_1.npy",
            "factor_2.npy"
        ])
    );
    let cp = Cp {
        weights: read(&out, "weights.npy"),
        factors: read_modes(&out, "factor"),
        iterations: 0,
        converged: true,
        error: 0.0,
    };
    assert!(rel_err(&cp.reconstruct().unwrap(), &x) < 1e-10);
}

#[test]
fn tucker_writes_core_and_factors_that_rebuild_the_tensor() {
    let dir = scratch("tucker");
    let (input, x) = planted(&dir);
    let out = dir.join("tucker");
    let j = run_json(&["--tucker", "2,2,2"], &input, &out);
    assert_eq!(j["method"], "tucker");
    assert_eq!(j["ranks"], serde_json::json!([2, 2, 2]));
    assert!(j["relative_error"].as_f64().unwrap() < 1e-10, "{j}");
    let t = Tucker {
        core: read(&out, "core.npy"),
        factors: read_modes(&out, "factor"),
        iterations: 0,
        converged: true,
    };
    assert!(rel_err(&t.reconstruct().unwrap(), &x) < 1e-10);
}

#[test]
fn tt_writes_cores_that_rebuild_the_tensor() {
    let dir = scratch("tt");
    let (input, x) = planted(&dir);
    let out = dir.join("tt");
    let j = run_json(&["--tt", "1e-10"], &input, &out);
    assert_eq!(j["method"], "tt");
    assert_eq!(j["ranks"], serde_json::json!([1, 2, 2, 1]));
    assert!(j["iterations"].is_null());
    assert!(j["relative_error"].as_f64().unwrap() < 1e-10, "{j}");
    let tt = TensorTrain {
        cores: read_modes(&out, "core"),
    };
    assert!(rel_err(&tt.reconstruct().unwrap(), &x) < 1e-10);
}

#[test]
fn text_output_reports_error_iterations_time_and_compression() {
    let dir = scratch("text");
    let (input, _) = planted(&dir);
    let out = ricci()
        .arg("decompose")
        .arg(&input)
        .args(["--tucker", "2,2,2", "--hosvd"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("relative error"), "{text}");
    assert!(text.contains("compression"), "{text}");
    assert!(text.contains(" ms"), "{text}");
}

/// Runs `ricci decompose ARGS` expecting failure with one `error:` line.
fn assert_one_error_line(args: &[&str], input: &PathBuf, needle: &str) {
    let out = ricci()
        .arg("decompose")
        .arg(input)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "ricci decompose {args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_inputs_give_one_error_line_and_a_non_zero_exit() {
    let dir = scratch("bad");
    let (input, _) = planted(&dir);
    assert_one_error_line(&["--cp", "500"], &input, "cp_als: rank must be in 1..=");
    assert_one_error_line(&["--tucker", "2,2"], &input, "has 2 entries");
    assert_one_error_line(&["--tucker", "2,9,2"], &input, "rank 9 of mode 1");
    assert_one_error_line(&["--tt=-1"], &input, "eps");
    assert_one_error_line(&[], &input, "exactly one of");
    assert_one_error_line(&["--cp", "2", "--tt", "0.1"], &input, "exactly one of");
    let matrix = dir.join("m.npy");
    io::write_npy(&matrix, &Tensor::ones(&[3, 4], DType::F64)).unwrap();
    assert_one_error_line(&["--cp", "1"], &matrix, "order 3");
    let missing = dir.join("missing.npy");
    assert_one_error_line(&["--cp", "1"], &missing, "missing.npy");
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"not a npy file").unwrap();
    assert_one_error_line(&["--cp", "1"], &garbage, "garbage.npy");
}
