//! Helpers shared by the CLI integration tests: the binary, scratch
//! directories, a trained run to work on, and the checks for a JSON answer
//! and for a one-line error.
// Each test crate uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

pub fn ricci() -> Command {
    Command::cargo_bin("ricci").expect("the ricci binary is built for integration tests")
}

/// A scratch directory that is removed when dropped, so a test leaves
/// nothing behind in the temp dir, whether it passes or panics.
pub struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

/// A fresh, empty directory `ricci-<suite>-test-<pid>-<name>` under the
/// system temp dir, removed when the returned guard is dropped.
pub fn scratch(suite: &str, name: &str) -> Scratch {
    let dir =
        std::env::temp_dir().join(format!("ricci-{suite}-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

/// Runs `cmd` and asserts it succeeded (showing its stderr when not).
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `ricci ARGS`, asserts success and parses stdout as JSON.
pub fn ok_json(args: &[&str]) -> Value {
    serde_json::from_slice(&run_ok(ricci().args(args)).stdout).unwrap()
}

/// Runs `ricci ARGS` and asserts it fails with one `error: ...` line containing `needle`.
pub fn one_line_error(args: &[&str], needle: &str) {
    let out = ricci().args(args).output().unwrap();
    assert!(!out.status.success(), "ricci {args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "stderr was: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "stderr was: {err}");
}

/// A 1-layer, 2-head addition model `n_embd` wide, trained for `steps`
/// steps (batch 16) into `dir/run`: a few seconds.
pub fn trained_run(dir: &Path, n_embd: usize, steps: usize) -> PathBuf {
    let run = dir.join("run");
    let (width, steps) = (n_embd.to_string(), steps.to_string());
    run_ok(
        ricci()
            .args([
                "train",
                "--n-layer",
                "1",
                "--n-head",
                "2",
                "--n-embd",
                &width,
                "--batch-size",
                "16",
                "--steps",
                &steps,
                "--eval-every",
                "0",
                "--quiet",
                "--out",
            ])
            .arg(&run),
    );
    run
}
