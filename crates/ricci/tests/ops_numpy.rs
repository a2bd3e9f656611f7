//! Every tensor op against numpy, for f32 and f64.
//!
//! `tests/fixtures/ops.json` is written by `scripts/fixtures/ops.py`: each
//! case holds its inputs, the views to take of them first, and numpy's
//! output computed in float64 (or, where numpy lacks the op, PyTorch's
//! definition written out in the script). The inputs are already rounded
//! to f32, so both runs start from the same numbers and only ricci's
//! arithmetic differs from the reference.
//!
//! Ops that only move or select values (views, cat, gather, comparisons,
//! max, relu, ...) must match exactly. The others must match to a
//! tolerance relative to the largest expected magnitude of the case:
//! about 100 ulp in f32 and 1e-12 in f64, looser where rounding is
//! amplified (exp, pow).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use ricci::{linear, DType, Result, Tensor};
use serde::Deserialize;
use serde_json::Value;

/// A tensor as the fixture stores it.
#[derive(Deserialize)]
struct Fixture {
    shape: Vec<usize>,
    data: Vec<f64>,
    /// Integer ids, built with `Tensor::from_indices`.
    #[serde(default)]
    index: bool,
    /// Views applied before the op, e.g. `[["t"], ["slice", 0, 1, 7, 2]]`.
    #[serde(default)]
    view: Vec<Vec<Value>>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    op: String,
    #[serde(default)]
    args: serde_json::Map<String, Value>,
    inputs: Vec<Fixture>,
    expected: Vec<Fixture>,
}

fn cases(section: &str) -> &'static [Case] {
    static FILE: OnceLock<HashMap<String, Vec<Case>>> = OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ops.json");
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (run scripts/fixtures/ops.py)"));
        let doc: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("ops.json");
        doc.into_iter()
            .filter(|(_, v)| v.is_array())
            .map(|(k, v)| (k, serde_json::from_value(v).expect("a list of cases")))
            .collect()
    });
    let cases = file
        .get(section)
        .unwrap_or_else(|| panic!("no section {section:?} in ops.json"));
    assert!(!cases.is_empty(), "section {section:?} is empty");
    cases
}

impl Case {
    fn arg(&self, key: &str) -> &Value {
        self.args
            .get(key)
            .unwrap_or_else(|| panic!("{}: no argument {key:?}", self.name))
    }
    /// A float argument; the script writes infinity as the string "inf".
    fn float(&self, key: &str) -> f64 {
        match self.arg(key) {
            Value::String(s) if s == "inf" => f64::INFINITY,
            v => v.as_f64().expect("a number"),
        }
    }
    fn int(&self, key: &str) -> i64 {
        self.arg(key).as_i64().expect("an integer")
    }
    fn usize(&self, key: &str) -> usize {
        self.arg(key).as_u64().expect("a non-negative integer") as usize
    }
    fn flag(&self, key: &str) -> bool {
        self.arg(key).as_bool().expect("a bool")
    }
    fn dims(&self) -> Vec<i64> {
        ints(self.arg("dims"))
    }
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_i64().expect("an integer"))
        .collect()
}

fn uints(v: &Value) -> Vec<usize> {
    ints(v).into_iter().map(|x| x as usize).collect()
}

/// Builds a fixture tensor in `dtype` and takes its views.
fn build(fx: &Fixture, dtype: DType) -> Result<Tensor> {
    let t = if fx.index {
        let ids: Vec<usize> = fx.data.iter().map(|&v| v as usize).collect();
        Tensor::from_indices(&ids, &fx.shape, dtype)?
    } else {
        // The script rounds every input to f32; rounding again undoes the
        // last-bit error of serde_json's default (not correctly rounded)
        // float parser, so both dtypes see exactly the script's numbers.
        let data: Vec<f64> = fx.data.iter().map(|&v| v as f32 as f64).collect();
        Tensor::from_vec(data, &fx.shape)?.to_dtype(dtype)
    };
    fx.view.iter().try_fold(t, |t, step| apply_view(&t, step))
}

fn apply_view(t: &Tensor, step: &[Value]) -> Result<Tensor> {
    let int = |i: usize| step[i].as_i64().expect("an integer");
    let uint = |i: usize| int(i) as usize;
    match step[0].as_str().expect("a view name") {
        "permute" => t.permute(ints(&step[1])),
        "transpose" => t.transpose(int(1), int(2)),
        "narrow" => t.narrow(int(1), uint(2), uint(3)),
        "slice" => t.slice(int(1), uint(2), uint(3), uint(4)),
        "diagonal" => t.diagonal(int(1) as isize, int(2), int(3)),
        "broadcast_to" => t.broadcast_to(&uints(&step[1])),
        "expand" => t.expand(ints(&step[1])),
        "reshape" => t.reshape(ints(&step[1])),
        "movedim" => t.movedim(int(1), int(2)),
        "squeeze" => t.squeeze(int(1)),
        "unsqueeze" => t.unsqueeze(int(1)),
        "flatten" => t.flatten(int(1), int(2)),
        "t" => t.t(),
        other => panic!("unknown view {other:?}"),
    }
}

/// Runs the case's op on its inputs.
fn eval(case: &Case, dtype: DType) -> Result<Vec<Tensor>> {
    let xs: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|fx| build(fx, dtype))
        .collect::<Result<_>>()?;
    let refs: Vec<&Tensor> = xs.iter().collect();
    let x = || &xs[0];
    let y = || &xs[1];
    let one = |t: Tensor| Ok(vec![t]);
    let (dims, keepdim) = (|| case.dims(), || case.flag("keepdim"));
    match case.op.as_str() {
        // creation
        "arange" => one(Tensor::arange(
            case.float("start"),
            case.float("end"),
            case.float("step"),
            dtype,
        )?),
        "linspace" => one(Tensor::linspace(
            case.float("start"),
            case.float("end"),
            case.usize("steps"),
            dtype,
        )?),
        "eye" => one(Tensor::eye(case.usize("n"), dtype)),
        // unary
        "neg" => one(x().neg()),
        "exp" => one(x().exp()),
        "log" => one(x().log()),
        "sqrt" => one(x().sqrt()),
        "rsqrt" => one(x().rsqrt()),
        "sin" => one(x().sin()),
        "cos" => one(x().cos()),
        "tanh" => one(x().tanh()),
        "abs" => one(x().abs()),
        "sigmoid" => one(x().sigmoid()),
        "relu" => one(x().relu()),
        "gelu" => one(x().gelu()),
        "gelu_tanh" => one(x().gelu_tanh()),
        "recip" => one(x().recip()),
        "square" => one(x().square()),
        "sign" => one(x().sign()),
        "powf" => one(x().powf(case.float("e"))),
        "clamp" => one(x().clamp(case.float("min"), case.float("max"))?),
        // binary
        "add" => one(x().add(y())?),
        "sub" => one(x().sub(y())?),
        "mul" => one(x().mul(y())?),
        "div" => one(x().div(y())?),
        "pow" => one(x().pow(y())?),
        "maximum" => one(x().maximum(y())?),
        "minimum" => one(x().minimum(y())?),
        "eq" => one(x().eq(y())?),
        "ne" => one(x().ne(y())?),
        "lt" => one(x().lt(y())?),
        "le" => one(x().le(y())?),
        "gt" => one(x().gt(y())?),
        "ge" => one(x().ge(y())?),
        "where" => one(Tensor::where_(&xs[0], &xs[1], &xs[2])?),
        // reductions
        "sum" => one(x().sum(dims(), keepdim())?),
        "mean" => one(x().mean(dims(), keepdim())?),
        "max" => one(x().max(dims(), keepdim())?),
        "min" => one(x().min(dims(), keepdim())?),
        "logsumexp" => one(x().logsumexp(dims(), keepdim())?),
        "var" if case.int("correction") == 1 => one(x().var(dims(), keepdim())?),
        "var" => one(x().var_correction(dims(), case.usize("correction"), keepdim())?),
        "std" if case.int("correction") == 1 => one(x().std(dims(), keepdim())?),
        "std" => one(x().std_correction(dims(), case.usize("correction"), keepdim())?),
        "norm" => one(x().norm(case.float("p"), dims(), keepdim())?),
        "argmax" => one(x().argmax(case.int("dim"), keepdim())?),
        "argmin" => one(x().argmin(case.int("dim"), keepdim())?),
        "softmax" => one(x().softmax(case.int("dim"))?),
        "log_softmax" => one(x().log_softmax(case.int("dim"))?),
        // matrix products
        "matmul" => one(x().matmul(y())?),
        "linear" => one(linear(x(), y(), xs.get(2))?),
        // views and movement
        "contiguous" => {
            let c = x().contiguous();
            assert!(c.is_contiguous(), "{}: contiguous() is not", case.name);
            one(c)
        }
        "cat" => one(Tensor::cat(&refs, case.int("dim"))?),
        "stack" => one(Tensor::stack(&refs, case.int("dim"))?),
        "split" => x().split(case.usize("size"), case.int("dim")),
        "chunk" => x().chunk(case.usize("chunks"), case.int("dim")),
        "split_sizes" => x().split_sizes(&uints(case.arg("sizes")), case.int("dim")),
        "pad" => {
            let pads: Vec<(usize, usize)> = case
                .arg("pads")
                .as_array()
                .expect("a list of pairs")
                .iter()
                .map(|p| {
                    let p = uints(p);
                    (p[0], p[1])
                })
                .collect();
            one(x().pad(&pads, case.float("value"))?)
        }
        // indexing
        "index_select" => one(x().index_select(case.int("dim"), y())?),
        "gather" => one(x().gather(case.int("dim"), y())?),
        "scatter_add" => one(x().scatter_add(case.int("dim"), y(), &xs[2])?),
        "tril" => one(x().tril(case.int("k") as isize)?),
        "triu" => one(x().triu(case.int("k") as isize)?),
        "masked_fill" => one(x().masked_fill(y(), case.float("value"))?),
        "one_hot" => one(x().one_hot(case.usize("classes"))?),
        "embedding" => one(x().embedding(y())?),
        // normalisation: inputs are x, then weight and bias when the flags say so
        "layer_norm" => {
            let mut params = xs[1..].iter();
            let w = if case.flag("weight") {
                params.next()
            } else {
                None
            };
            let b = if case.flag("bias") {
                params.next()
            } else {
                None
            };
            one(x().layer_norm(w, b, case.float("eps"))?)
        }
        other => panic!("{}: unknown op {other:?}", case.name),
    }
}

/// Ops whose result is a selection or a copy of input values (or a 0/1
/// mask or an index): they must agree with numpy exactly.
const EXACT: &[&str] = &[
    "eye",
    "neg",
    "abs",
    "relu",
    "sign",
    "clamp",
    "maximum",
    "minimum",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "where",
    "max",
    "min",
    "argmax",
    "argmin",
    "contiguous",
    "cat",
    "stack",
    "split",
    "chunk",
    "split_sizes",
    "pad",
    "index_select",
    "gather",
    "tril",
    "triu",
    "masked_fill",
    "one_hot",
    "embedding",
];

/// The allowed error, relative to the largest expected magnitude of a case.
fn tolerance(op: &str, dtype: DType) -> f64 {
    if EXACT.contains(&op) {
        return 0.0;
    }
    let amplifying = matches!(op, "exp" | "pow" | "powf");
    match (dtype, amplifying) {
        (DType::F32, false) => 1e-5,
        (DType::F32, true) => 3e-5,
        (DType::F64, false) => 1e-12,
        (DType::F64, true) => 1e-11,
    }
}

/// `None` when `got` matches the case, else what went wrong.
fn compare(case: &Case, dtype: DType, got: &[Tensor]) -> Option<String> {
    if got.len() != case.expected.len() {
        return Some(format!(
            "{} results, expected {}",
            got.len(),
            case.expected.len()
        ));
    }
    let tol = tolerance(&case.op, dtype);
    for (k, (g, want)) in got.iter().zip(&case.expected).enumerate() {
        if g.dtype() != dtype {
            return Some(format!("result {k} is {}, not {dtype}", g.dtype()));
        }
        if g.shape() != want.shape.as_slice() {
            return Some(format!(
                "result {k} has shape {:?}, expected {:?}",
                g.shape(),
                want.shape
            ));
        }
        let data = g.to_vec_f64();
        if tol == 0.0 {
            if let Some(i) = (0..data.len()).find(|&i| !same_in(dtype, data[i], want.data[i])) {
                return Some(format!(
                    "result {k} of shape {:?}: at flat index {i} got {:e}, expected exactly {:e}\n    \
                     got      {}\n    expected {}",
                    want.shape,
                    data[i],
                    want.data[i],
                    preview(&data),
                    preview(&want.data),
                ));
            }
            continue;
        }
        let scale = want.data.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        let worst = data
            .iter()
            .zip(&want.data)
            .enumerate()
            .map(|(i, (g, w))| (i, (g - w).abs() / scale))
            .fold(None, |acc: Option<(usize, f64)>, (i, e)| match acc {
                // NaN counts as the worst possible error.
                Some((_, best)) if !(e.is_nan() || e > best) => acc,
                _ => Some((i, e)),
            });
        if let Some((i, err)) = worst {
            if err.is_nan() || err > tol {
                return Some(format!(
                    "result {k} of shape {:?}: at flat index {i} got {:e}, expected {:e} \
                     (error {err:.2e} of max |expected| {scale:e}, tolerance {tol:e})\n    \
                     got      {}\n    expected {}",
                    want.shape,
                    data[i],
                    want.data[i],
                    preview(&data),
                    preview(&want.data),
                ));
            }
        }
    }
    None
}

/// Equality in `dtype`: f32 results equal the expected value rounded to
/// f32; f64 results equal it up to the last bit, which serde_json's parser
/// may get wrong.
fn same_in(dtype: DType, got: f64, want: f64) -> bool {
    match dtype {
        DType::F32 => got == want as f32 as f64,
        DType::F64 => (got - want).abs() <= want.abs() * f64::EPSILON,
    }
}

fn preview(v: &[f64]) -> String {
    let head: Vec<String> = v.iter().take(8).map(|x| format!("{x:.9}")).collect();
    let more = if v.len() > 8 { ", ..." } else { "" };
    format!("[{}{more}]", head.join(", "))
}

/// Runs every case of `section` (optionally only `ops`) in `dtype` and
/// fails with the list of disagreements.
fn check_section(section: &str, ops: &[&str], dtype: DType) {
    let mut failures = Vec::new();
    let mut run = 0;
    for case in cases(section) {
        if !ops.is_empty() && !ops.contains(&case.op.as_str()) {
            continue;
        }
        run += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| eval(case, dtype)));
        let problem = match outcome {
            Err(_) => Some("panicked".to_string()),
            Ok(Err(e)) => Some(format!("returned Err: {e}")),
            Ok(Ok(got)) => compare(case, dtype, &got),
        };
        if let Some(p) = problem {
            let inputs: Vec<String> = case
                .inputs
                .iter()
                .map(|fx| format!("{:?} {} view {:?}", fx.shape, preview(&fx.data), fx.view))
                .collect();
            failures.push(format!(
                "[{dtype}] {} ({}, args {:?})\n  inputs: {}\n  {p}",
                case.name,
                case.op,
                case.args,
                inputs.join("; ")
            ));
        }
    }
    assert!(run > 0, "no cases ran for {section} {ops:?}");
    assert!(
        failures.is_empty(),
        "{} of {run} cases disagree with numpy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Defines a test module with one `#[test]` per dtype (`name::f32`,
/// `name::f64`), running `body` with `dtype` bound.
macro_rules! dtype_tests {
    ($($(#[$meta:meta])* fn $name:ident($dtype:ident) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            use super::*;
            fn run($dtype: DType) $body
            #[test]
            fn f32() {
                run(DType::F32)
            }
            #[test]
            fn f64() {
                run(DType::F64)
            }
        }
    )*};
}

dtype_tests! {
    /// arange (including a negative step and an empty range), linspace, eye.
    fn creation_matches_numpy(dtype) {
        check_section("creation", &[], dtype);
    }

    /// Every unary op on its valid domain, on contiguous and strided inputs.
    fn unary_ops_match_numpy(dtype) {
        check_section("unary", &[], dtype);
    }

    /// Arithmetic and min/max broadcast like numpy, rank-0 operands included.
    fn arithmetic_broadcasts_like_numpy(dtype) {
        check_section("binary", &["add", "sub", "mul", "div", "pow", "maximum", "minimum"], dtype);
    }

    /// Comparisons give numpy's masks (ties included); where picks like np.where.
    fn comparisons_and_where_match_numpy(dtype) {
        check_section("binary", &["eq", "ne", "lt", "le", "gt", "ge", "where"], dtype);
    }

    /// sum, mean, max, min, logsumexp over single, split and all dims, with keepdim.
    fn reductions_match_numpy(dtype) {
        check_section("reduce", &["sum", "mean", "max", "min", "logsumexp"], dtype);
    }

    /// var and std with ddof 1 (ricci's default, as torch) and 0 (numpy's).
    fn var_and_std_match_numpy_for_both_corrections(dtype) {
        check_section("reduce", &["var", "std"], dtype);
    }

    /// p-norms for p = 0.5, 1, 2, 3 and inf.
    fn norms_match_numpy(dtype) {
        check_section("reduce", &["norm"], dtype);
    }

    /// argmax / argmin pick numpy's index, the first one on ties.
    fn argmax_argmin_match_numpy(dtype) {
        check_section("reduce", &["argmax", "argmin"], dtype);
    }

    /// softmax and log_softmax along any dim, finite for logits of 1e4.
    fn softmax_matches_numpy_even_for_logits_of_1e4(dtype) {
        check_section("softmax", &[], dtype);
    }

    /// matmul for every rank combination, broadcast batches and transposed operands.
    fn matmul_matches_numpy(dtype) {
        check_section("matmul", &["matmul"], dtype);
    }

    /// linear is x wᵀ + b for 1-D, 2-D and batched x.
    fn linear_matches_numpy(dtype) {
        check_section("matmul", &["linear"], dtype);
    }

    /// Views (permute, transpose, narrow, slice, diagonal, broadcast, expand,
    /// reshape, ...) read the same elements as numpy's, once made contiguous.
    fn views_then_contiguous_match_numpy(dtype) {
        check_section("views", &[], dtype);
    }

    /// cat, stack, split, chunk (torch's piece sizes) and pad.
    fn cat_stack_split_chunk_pad_match_numpy(dtype) {
        check_section("movement", &[], dtype);
    }

    /// index_select, gather, scatter_add, tril/triu, masked_fill, one_hot,
    /// embedding, with PyTorch's semantics.
    fn indexing_matches_pytorch_semantics(dtype) {
        check_section("index", &[], dtype);
    }

    /// The fused layer_norm: with and without weight/bias, any leading
    /// shape, a transposed input, an offset mean with BERT's eps of 1e-12.
    fn layer_norm_matches_numpy(dtype) {
        check_section("norm", &[], dtype);
    }
}

/// Every case in the fixture is run by one of the tests above.
#[test]
fn every_fixture_case_is_checked() {
    let sections = [
        "creation", "unary", "binary", "reduce", "softmax", "matmul", "views", "movement", "index",
        "norm",
    ];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ops.json");
    let doc: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("ops.json")).expect("json");
    for (key, value) in &doc {
        if value.is_array() {
            assert!(
                sections.contains(&key.as_str()),
                "section {key:?} is never checked"
            );
        }
    }
    let binary_ops = [
        "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt",
        "ge", "where",
    ];
    for case in cases("binary") {
        assert!(binary_ops.contains(&case.op.as_str()), "{}", case.name);
    }
    let reduce_ops = [
        "sum",
        "mean",
        "max",
        "min",
        "logsumexp",
        "var",
        "std",
        "norm",
        "argmax",
        "argmin",
    ];
    for case in cases("reduce") {
        assert!(reduce_ops.contains(&case.op.as_str()), "{}", case.name);
    }
    for case in cases("matmul") {
        assert!(
            ["matmul", "linear"].contains(&case.op.as_str()),
            "{}",
            case.name
        );
    }
}
