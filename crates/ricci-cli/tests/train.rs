//! `ricci train` and `ricci sample` end to end, on models small enough to
//! train in seconds: the files a run writes, bit-exact resumption, and one
//! clear error line (and no lost checkpoint) for each kind of bad input.

use std::path::Path;

mod common;

use common::ricci;

/// A fresh directory under the system temp dir, removed when dropped.
fn scratch(name: &str) -> common::Scratch {
    common::scratch("train", name)
}

/// A small addition model: trains 30 steps in a few seconds.
const SMALL: [&str; 10] = [
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--n-embd",
    "16",
    "--batch-size",
    "16",
    "--eval-every",
    "10",
];

fn train(args: &[&str]) -> std::process::Output {
    ricci()
        .arg("train")
        .args(SMALL)
        .args(args)
        .arg("--quiet")
        .output()
        .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn one_line_error(out: &std::process::Output, needle: &str) {
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        stderr(out)
    );
    let err = stderr(out);
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "stderr was: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "stderr was: {err}");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn a_run_writes_its_checkpoint_log_and_plot_and_reports_json() {
    let dir = scratch("files");
    let out = train(&["--steps", "30", "--out", dir.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["steps"], 30);
    for key in [
        "train_loss",
        "val_loss",
        "accuracy",
        "tokens_per_s",
        "wall_s",
        "peak_rss_mb",
    ] {
        assert!(
            summary[key].as_f64().is_some_and(f64::is_finite),
            "{key} in {summary}"
        );
    }
    // 30 steps from ln(12) = 2.48 must have learned something about the digits.
    assert!(summary["train_loss"].as_f64().unwrap() < 2.4, "{summary}");
    let csv = read(&dir.join("loss.csv"));
    assert_eq!(csv.lines().count(), 31);
    assert!(csv.starts_with("step,lr,train_loss,val_loss,accuracy\n"));
    assert_eq!(
        csv.lines().filter(|l| !l.ends_with(",,")).count(),
        4,
        "header + 3 evaluations:\n{csv}"
    );
    let png = std::fs::read(dir.join("loss.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    for f in [
        "config.json",
        "checkpoint.safetensors",
        "optimizer.safetensors",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let config: serde_json::Value = serde_json::from_str(&read(&dir.join("config.json"))).unwrap();
    assert_eq!(config["model"]["n_embd"], 16);

    // The checkpoint answers addition prompts in the task's format.
    let out = ricci()
        .args([
            "sample",
            "--checkpoint",
            dir.to_str().unwrap(),
            "--prompt",
            "12+34=",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with("12+34=") && line.trim_end().len() > 6,
        "{line}"
    );
}

#[test]
fn a_resumed_run_gives_bit_for_bit_the_losses_of_an_uninterrupted_one() {
    let whole = scratch("whole");
    let parts = scratch("parts");
    let out = train(&["--steps", "30", "--out", whole.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = train(&[
        "--steps",
        "30",
        "--stop-at",
        "17",
        "--out",
        parts.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&parts.join("loss.csv")).lines().count(), 18);
    let out = ricci()
        .args(["train", "--quiet", "--resume", parts.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Evaluation rows differ in where they happened (step 17 is one only
    // in the interrupted run), so compare step, lr and training loss.
    let columns = |p: &Path| -> Vec<String> {
        read(&p.join("loss.csv"))
            .lines()
            .map(|l| l.split(',').take(3).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(columns(&whole), columns(&parts));
    // The weights are identical too (the files differ only in the timing
    // their metadata records).
    let weights = |p: &Path| -> Vec<(String, Vec<f32>)> {
        ricci::io::read_safetensors(p.join("checkpoint.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(n, t)| (n, t.to_vec::<f32>().unwrap()))
            .collect()
    };
    let (a, b) = (weights(&whole), weights(&parts));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "final weights of {name} differ");
    }
}

#[test]
fn text_training_and_sampling() {
    let dir = scratch("text");
    let corpus = dir.join("corpus.txt");
    std::fs::write(
        &corpus,
        "the quick brown fox jumps over the lazy dog. ".repeat(40),
    )
    .unwrap();
    let run = dir.join("run");
    let out = ricci()
        .args([
            "train",
            "--quiet",
            "--data",
            corpus.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
        .args([
            "--n-layer",
            "1",
            "--n-head",
            "2",
            "--n-embd",
            "16",
            "--block-size",
            "16",
            "--batch-size",
            "8",
        ])
        .args(["--steps", "20", "--eval-every", "10"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ricci()
        .args([
            "sample",
            "--checkpoint",
            run.to_str().unwrap(),
            "--prompt",
            "the ",
            "--tokens",
            "25",
            "--seed",
            "3",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("the ") && text.trim_end_matches('\n').chars().count() == 29,
        "{text:?}"
    );
    let out = ricci()
        .args([
            "sample",
            "--checkpoint",
            run.to_str().unwrap(),
            "--prompt",
            "Zebra",
        ])
        .output()
        .unwrap();
    one_line_error(&out, "'Z' is not in the model's vocabulary");
}

#[test]
fn bad_data_files_fail_with_one_line_naming_the_file() {
    let dir = scratch("bad-data");
    let run = dir.join("run");
    let go = |data: &Path| {
        ricci()
            .args([
                "train",
                "--quiet",
                "--data",
                data.to_str().unwrap(),
                "--out",
                run.to_str().unwrap(),
            ])
            .output()
            .unwrap()
    };
    one_line_error(&go(&dir.join("nope.txt")), "nope.txt");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    one_line_error(&go(&empty), "empty");
    let binary = dir.join("weights.bin");
    std::fs::write(&binary, [1u8, 0, 0, 0, 7, 0]).unwrap();
    one_line_error(&go(&binary), "binary");
    let short = dir.join("short.txt");
    std::fs::write(&short, "far too short for a block of 64").unwrap();
    one_line_error(&go(&short), "too short");
    assert!(
        !run.exists(),
        "a failed start must not create the run directory"
    );
}

#[test]
fn bad_model_shapes_are_refused() {
    let out = ricci()
        .args(["train", "--quiet", "--n-embd", "30", "--n-head", "4"])
        .output()
        .unwrap();
    one_line_error(&out, "n_embd (30) must be divisible by n_head (4)");
}

#[test]
fn foreign_or_torn_checkpoints_are_refused_and_left_intact() {
    let dir = scratch("torn");
    let out = train(&["--steps", "10", "--out", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let weights = dir.join("checkpoint.safetensors");
    let original = std::fs::read(&weights).unwrap();
    let resume = || {
        ricci()
            .args(["train", "--quiet", "--resume", dir.to_str().unwrap()])
            .output()
            .unwrap()
    };

    // Another model's config next to these weights.
    let config_path = dir.join("config.json");
    let config = read(&config_path);
    std::fs::write(
        &config_path,
        config.replace("\"n_embd\": 16", "\"n_embd\": 32"),
    )
    .unwrap();
    one_line_error(&resume(), "checkpoint.safetensors");
    std::fs::write(&config_path, &config).unwrap();

    // Half-written weights.
    std::fs::write(&weights, &original[..original.len() / 2]).unwrap();
    one_line_error(&resume(), "checkpoint.safetensors");
    std::fs::write(&weights, &original).unwrap();

    // Weights and optimizer state from different steps.
    let other = scratch("torn-other");
    let out = train(&["--steps", "20", "--out", other.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::copy(
        other.join("optimizer.safetensors"),
        dir.join("optimizer.safetensors"),
    )
    .unwrap();
    one_line_error(&resume(), "torn");
    assert_eq!(
        std::fs::read(&weights).unwrap(),
        original,
        "a refused resume must not touch the checkpoint"
    );

    let out = ricci()
        .args(["train", "--resume", "/no/such/run"])
        .output()
        .unwrap();
    one_line_error(&out, "/no/such/run");
}

#[cfg(unix)]
#[test]
fn ctrl_c_saves_a_checkpoint_that_resumes() {
    let dir = scratch("sigint");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ricci"))
        .arg("train")
        .args(SMALL)
        .args([
            "--quiet",
            "--steps",
            "1000000",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first evaluation's checkpoint, then interrupt.
    let csv = dir.join("loss.csv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !csv.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint after 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The shell's built-in kill: no dependency on a kill binary being installed.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("interrupted: checkpoint saved"), "{err}");
    let config: serde_json::Value = serde_json::from_str(&read(&dir.join("config.json"))).unwrap();
    assert_eq!(config["train"]["steps"], 1_000_000);
    let rows = read(&csv).lines().count() - 1;
    assert!(rows >= 10, "{rows}");
    // The interrupted run continues from where it stopped.
    let out = ricci()
        .args([
            "train",
            "--quiet",
            "--json",
            "--resume",
            dir.to_str().unwrap(),
        ])
        .args(["--steps", &(rows + 5).to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["steps"], rows + 5);
    assert_eq!(read(&csv).lines().count() - 1, rows + 5);
}
