//! End-to-end tests of the `ricci` binary: help and version, usage
//! errors, and `ricci bench --json`'s contract with `bench/compare.py`.

use assert_cmd::Command;
use predicates::prelude::*;

fn ricci() -> Command {
    Command::cargo_bin("ricci").expect("the ricci binary is built for integration tests")
}

/// Every subcommand of DESIGN 7.
const SUBCOMMANDS: [&str; 9] = [
    "train",
    "sample",
    "einsum",
    "embed",
    "similarity",
    "decompose",
    "compress",
    "analyze",
    "bench",
];

#[test]
fn help_lists_every_subcommand() {
    let mut assert = ricci().arg("--help").assert().success();
    for name in SUBCOMMANDS {
        assert = assert.stdout(predicate::str::contains(name));
    }
}

#[test]
fn version_prints_the_crate_version() {
    ricci()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bench_help_documents_its_flags() {
    ricci()
        .args(["bench", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--filter"))
        .stdout(predicate::str::contains("--json"))
        .stdout(predicate::str::contains("--threads"))
        .stdout(predicate::str::contains("--quick"));
}

#[test]
fn every_subcommand_has_help() {
    for name in SUBCOMMANDS {
        ricci().args([name, "--help"]).assert().success();
    }
}

#[test]
fn unknown_flag_is_a_one_line_usage_error() {
    let out = ricci().args(["bench", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn missing_argument_error_names_the_argument() {
    let out = ricci().args(["decompose"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("<IN.npy>"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn missing_subcommand_is_an_error() {
    ricci().assert().failure();
}

#[test]
fn zero_threads_is_rejected() {
    ricci()
        .args(["bench", "--threads", "0", "--quick"])
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: "));
}

#[test]
fn filter_matching_nothing_is_an_error() {
    ricci()
        .args(["bench", "--quick", "--filter", "no-such-op"])
        .assert()
        .failure()
        .stderr(predicate::str::starts_with("error: bench: no rows match"));
}

#[test]
fn bench_json_rows_carry_the_contract_keys() {
    // 256x256x256 selects the two smallest matmul rows (f32 and f64), so
    // the test stays quick even on a loaded machine.
    let out = ricci()
        .args([
            "bench",
            "--quick",
            "--filter",
            "256x256x256",
            "--json",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let rows = rows.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 2);
    for (row, dtype) in rows.iter().zip(["f32", "f64"]) {
        let mut keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            ["dtype", "gflops", "median_s", "name", "shape", "threads"]
        );
        assert_eq!(row["name"], "matmul");
        assert_eq!(row["dtype"], dtype);
        assert_eq!(row["shape"], "256x256x256");
        assert_eq!(row["threads"], 1);
        let median = row["median_s"].as_f64().unwrap();
        let gflops = row["gflops"].as_f64().unwrap();
        assert!(median > 0.0 && gflops > 0.0, "{row}");
        // GFLOP/s is 2 m k n / median.
        let expected = 2.0 * 256f64.powi(3) / median / 1e9;
        assert!((gflops - expected).abs() < 1e-6 * expected, "{row}");
    }
}

#[test]
fn bench_table_prints_a_header_and_one_line_per_row_and_thread_count() {
    ricci()
        .args([
            "bench",
            "--quick",
            "--filter",
            "256x256x256",
            "--threads",
            "1,2",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("GFLOP/s"))
        .stdout(predicate::function(|s: &str| {
            s.lines().filter(|l| l.starts_with("matmul ")).count() == 4
        }));
}

/// A negative number given to a numeric option reaches the option's own
/// check (which names it) instead of clap's "unexpected argument '-1'".
#[test]
fn negative_numbers_reach_the_options_own_check() {
    let cube = std::env::temp_dir().join(format!("ricci_cli_negative_{}.npy", std::process::id()));
    let t = ricci::Tensor::from_vec(vec![1.0f32; 8], &[2, 2, 2]).unwrap();
    ricci::io::write_npy(&cube, &t).unwrap();
    let cube_arg = cube.to_str().unwrap();
    for (args, want) in [
        (
            &["train", "--lr", "-1", "--steps", "1", "--quiet"][..],
            "--lr must be a positive number, got -1",
        ),
        (
            &["decompose", cube_arg, "--tt", "-0.5"][..],
            "tensor_train: eps must be a finite number >= 0, got -0.5",
        ),
    ] {
        let out = ricci().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    std::fs::remove_file(&cube).unwrap();
}
