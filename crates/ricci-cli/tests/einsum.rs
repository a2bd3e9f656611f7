//! End-to-end tests of `ricci einsum`: results written to .npy and checked
//! against loops here, dtype promotion, `--json` and `--explain` planning
//! without data, and one clear error line for bad equations, files and shapes.

mod common;

use common::ricci;
use predicates::prelude::*;
use ricci::{io, Tensor};

/// A fresh directory for one test's files, removed when dropped.
fn scratch(name: &str) -> common::Scratch {
    common::scratch("einsum", name)
}

fn values(n: usize, seed: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + seed) * 0.37).sin()).collect()
}

#[test]
fn matrix_product_is_written_to_npy() {
    let dir = scratch("matmul");
    let (a, b) = (values(6, 1.0), values(12, 2.0));
    let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
    io::write_npy(
        dir.join("a.npy"),
        &Tensor::from_vec(a32.clone(), &[2, 3]).unwrap(),
    )
    .unwrap();
    io::write_npy(
        dir.join("b.npy"),
        &Tensor::from_vec(b32.clone(), &[3, 4]).unwrap(),
    )
    .unwrap();
    let out = dir.join("c.npy");
    ricci()
        .arg("einsum")
        .arg("ij,jk->ik")
        .arg(dir.join("a.npy"))
        .arg(dir.join("b.npy"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let c = io::read_npy(&out).unwrap();
    assert_eq!(c.shape(), &[2, 4]);
    assert_eq!(c.dtype(), ricci::DType::F32);
    let got = c.to_vec::<f32>().unwrap();
    for i in 0..2 {
        for k in 0..4 {
            let want: f32 = (0..3).map(|j| a32[i * 3 + j] * b32[j * 4 + k]).sum();
            assert!((got[i * 4 + k] - want).abs() < 1e-6);
        }
    }
}

#[test]
fn any_f64_input_makes_the_result_f64() {
    let dir = scratch("dtype");
    let a: Vec<f32> = values(3, 0.5).iter().map(|&x| x as f32).collect();
    let b = values(3, 1.5);
    io::write_npy(
        dir.join("a.npy"),
        &Tensor::from_vec(a.clone(), &[3]).unwrap(),
    )
    .unwrap();
    io::write_npy(
        dir.join("b.npy"),
        &Tensor::from_vec(b.clone(), &[3]).unwrap(),
    )
    .unwrap();
    let out = dir.join("dot.npy");
    ricci()
        .args(["einsum", "i,i"])
        .arg(dir.join("a.npy"))
        .arg(dir.join("b.npy"))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let dot = io::read_npy(&out).unwrap();
    assert_eq!(dot.dtype(), ricci::DType::F64);
    let want: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y).sum();
    assert!((dot.to_f64().unwrap() - want).abs() < 1e-12);
}

#[test]
fn json_plans_from_shapes_alone() {
    // (ab)c: 64*8*64 (+ inner) ... a(bc) costs jkl 8*64*2*2 + ijl 64*8*2*2 = 4096.
    let out = ricci()
        .args([
            "einsum",
            "ij,jk,kl->il",
            "--json",
            "--shapes",
            "64,8",
            "8,64",
            "64,2",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["path"], serde_json::json!([[1, 2], [0, 1]]));
    assert_eq!(v["flops"], 4096);
    assert_eq!(v["naive_flops"], 64 * 8 * 64 * 2 * 3);
    assert_eq!(v["largest_intermediate"], 128);
}

#[test]
fn explain_lists_each_step() {
    ricci()
        .args([
            "einsum",
            "bhqd,bhkd->bhqk",
            "--explain",
            "--shapes",
            "2,4,8,16",
            "2,4,8,16",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("step 0: operands [0, 1]"))
        .stdout(predicate::str::contains("bhqd,bhkd->bhqk"))
        .stdout(predicate::str::contains("[2, 4, 8, 8]"));
}

fn one_error_line(args: &[&str], contains: &str) {
    let out = ricci().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(contains), "{args:?}: {stderr}");
}

#[test]
fn bad_input_gives_one_clear_error_line() {
    one_error_line(
        &["einsum", "ij,j#->i", "--shapes", "2,3", "3,1"],
        "einsum 'ij,j#->i' at position 4: bad character '#'",
    );
    one_error_line(
        &["einsum", "ij,jk->ik", "--shapes", "2,3", "4,5"],
        "index 'j' has size 3 in operand 0 and size 4 in operand 1",
    );
    one_error_line(
        &["einsum", "ij,jk->ik", "--shapes", "2,x"],
        "bad shape '2,x'",
    );
    one_error_line(&["einsum", "ij->ji"], "no inputs");
    one_error_line(&["einsum"], "no EQUATION given");
    one_error_line(&["einsum", "--shapes", "2,3", "3,4"], "no EQUATION given");
    one_error_line(
        &["einsum", "ij->ji", "/nonexistent/ricci/a.npy"],
        "/nonexistent/ricci/a.npy",
    );
    let dir = scratch("bad");
    let junk = dir.join("junk.npy");
    std::fs::write(&junk, b"not an npy file").unwrap();
    one_error_line(&["einsum", "ij->ji", junk.to_str().unwrap()], "npy");
}

/// `--shapes` takes every value up to the next option, so an equation
/// written after the shapes is read from the end of that list.
#[test]
fn equation_may_follow_the_shapes() {
    ricci()
        .args([
            "einsum",
            "--shapes",
            "5,3,5",
            "3,7,5",
            "ijk,jlk->il",
            "--json",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"flops\": 1050"));
}

/// Equations that start with '-' (numpy's '->' on a scalar) are
/// equations, not options; flags still parse anywhere.
#[test]
fn an_equation_may_start_with_an_arrow() {
    let dir = scratch("arrow");
    let s = dir.join("s.npy");
    io::write_npy(&s, &Tensor::scalar(3.0f32)).unwrap();
    let s = s.to_str().unwrap();
    ricci()
        .args(["einsum", "->", s])
        .assert()
        .success()
        .stdout(predicate::str::diff("3.0\n"));
    ricci()
        .args(["einsum", ",->", s, s])
        .assert()
        .success()
        .stdout(predicate::str::diff("9.0\n"));
    ricci()
        .args(["einsum", "--json", "->", s])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"path\": [[0]]"));
    one_error_line(&["einsum", "-x", s], "einsum '-x' at position 0");
}

/// An output that cannot be written is reported on the path given, not on
/// the temporary file the atomic write starts with.
#[test]
fn unwritable_output_names_the_output_path() {
    let dir = scratch("unwritable");
    let a = dir.join("a.npy");
    io::write_npy(&a, &Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap()).unwrap();
    let out = dir.join("no_such_dir").join("out.npy");
    let run = ricci()
        .args(["einsum", "i->i", a.to_str().unwrap(), "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8(run.stderr).unwrap();
    assert_eq!(
        stderr.lines().next(),
        Some(
            format!(
                "error: {}: No such file or directory (os error 2)",
                out.display()
            )
            .as_str()
        ),
        "{stderr}"
    );
}
