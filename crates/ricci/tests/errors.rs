//! Bad calls return `Err`, never panic, and the message says what to fix.
//!
//! One test per op family, each run for f32 and f64. Every case asserts that
//! `err.to_string()` names the op the user called and the facts at fault:
//! both shapes for a shape mismatch, the dim and rank for a dim out of
//! range, the index and the size for a bad index, both dtypes for a dtype
//! mismatch, the offending value for a bad scalar argument. A test collects
//! all of its failing cases before it fails, so one run lists them all.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ricci::{linear, DType, Result, Tensor};

/// Collects the cases of one test that do not fail as they should.
struct Expect {
    dtype: DType,
    failures: Vec<String>,
}

impl Expect {
    fn new(dtype: DType) -> Self {
        Expect {
            dtype,
            failures: Vec::new(),
        }
    }

    /// `call` must return `Err` (not panic, not `Ok`) whose message contains every one of `needles`.
    fn err<T>(&mut self, what: &str, needles: &[&str], call: impl FnOnce() -> Result<T>) {
        let problem = match catch_unwind(AssertUnwindSafe(call)) {
            Err(_) => "panicked instead of returning Err".to_string(),
            Ok(Ok(_)) => "returned Ok".to_string(),
            Ok(Err(e)) => {
                let msg = e.to_string();
                let missing: Vec<&&str> = needles.iter().filter(|n| !msg.contains(**n)).collect();
                if missing.is_empty() {
                    return;
                }
                format!("message {msg:?} does not mention {missing:?}")
            }
        };
        self.failures
            .push(format!("[{}] {what}: {problem}", self.dtype));
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} error case(s) misbehave:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// `0, 1, 2, ...` in `shape`.
fn iota(shape: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::arange(0.0, n as f64, 1.0, dtype)
        .and_then(|t| t.reshape(shape.iter().map(|&d| d as i64).collect::<Vec<_>>()))
        .expect("a valid iota")
}

/// Runs `body` for f32 and f64 as `name::f32` and `name::f64`.
macro_rules! dtype_tests {
    ($($(#[$meta:meta])* fn $name:ident($e:ident) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            use super::*;
            fn run($e: &mut Expect) $body
            #[test]
            fn f32() {
                let mut e = Expect::new(DType::F32);
                run(&mut e);
                e.finish();
            }
            #[test]
            fn f64() {
                let mut e = Expect::new(DType::F64);
                run(&mut e);
                e.finish();
            }
        }
    )*};
}

dtype_tests! {
    fn creation_errors_name_the_op_and_shape(e) {
        let dt = e.dtype;
        e.err("from_vec with too few elements", &["from_vec", "5 elements", "[2, 3]"], || {
            Tensor::from_vec(vec![1.0f64; 5], &[2, 3])
        });
        e.err("from_slice with too many elements", &["from_slice", "7 elements", "[2, 3]"], || {
            Tensor::from_slice(&[1.0f32; 7], &[2, 3])
        });
        e.err(
            "from_vec whose shape overflows usize",
            &["from_vec", "4 elements", "[18446744073709551615, 2]"],
            || Tensor::from_vec(vec![1.0f64; 4], &[usize::MAX, 2]),
        );
        e.err("from_indices with the wrong count", &["from_indices", "3 elements", "[2, 2]"], || {
            Tensor::from_indices(&[0, 1, 2], &[2, 2], dt)
        });
        e.err("arange with step 0", &["arange", "step", "0"], || {
            Tensor::arange(0.0, 1.0, 0.0, dt)
        });
        e.err("arange to infinity", &["arange", "inf"], || {
            Tensor::arange(0.0, f64::INFINITY, 1.0, dt)
        });
        e.err("arange with more elements than memory", &["arange"], || {
            Tensor::arange(0.0, 1e300, 1e-300, dt)
        });
        e.err("linspace from NaN", &["linspace", "NaN"], || {
            Tensor::linspace(f64::NAN, 1.0, 3, dt)
        });
        e.err("to_scalar of 6 elements", &["to_scalar", "[2, 3]"], || {
            iota(&[2, 3], dt).to_scalar::<f32>()
        });
        e.err("to_f64 of 6 elements", &["to_f64", "[2, 3]"], || iota(&[2, 3], dt).to_f64());
    }

    fn view_errors_name_the_op_and_shape(e) {
        let x = iota(&[2, 3], e.dtype);
        e.err("reshape to a wrong size", &["reshape", "[2, 3]", "[4, 2]"], || x.reshape([4, 2]));
        e.err("reshape with two -1", &["reshape", "[-1, -1]"], || x.reshape([-1, -1]));
        e.err("reshape with -1 next to 0", &["reshape", "[2, 3]", "[-1, 0]"], || {
            x.reshape([-1, 0])
        });
        e.err("reshape to a negative size", &["reshape", "-2"], || x.reshape([-2, -3]));
        e.err("permute with too few dims", &["permute", "[0]", "[2, 3]"], || x.permute([0]));
        e.err("permute repeating a dim", &["permute", "[0, 0]", "[2, 3]"], || x.permute([0, 0]));
        e.err("permute out of range", &["permute", "dimension 2", "rank 2"], || {
            x.permute([0, 2])
        });
        e.err("transpose out of range", &["transpose", "dimension 2", "rank 2"], || {
            x.transpose(0, 2)
        });
        e.err("transpose with a negative dim out of range", &["transpose", "-3", "rank 2"], || {
            x.transpose(-3, 0)
        });
        e.err("movedim out of range", &["movedim", "dimension 5", "rank 2"], || x.movedim(5, 0));
        e.err("narrow past the end", &["narrow", "2..4", "size 3", "[2, 3]"], || {
            x.narrow(1, 2, 2)
        });
        e.err("narrow with an overflowing range", &["narrow", "size 3", "[2, 3]"], || {
            x.narrow(1, usize::MAX, 2)
        });
        e.err("slice with step 0", &["slice", "step"], || x.slice(1, 0, 3, 0));
        e.err("slice out of range", &["slice", "dimension 2", "rank 2"], || {
            x.slice(2, 0, 3, 1)
        });
        e.err("squeeze a dim of size 3", &["squeeze", "size 3", "[2, 3]"], || x.squeeze(1));
        e.err("squeeze a rank-0 tensor", &["squeeze", "rank 0"], || {
            Tensor::scalar_of(1.0, x.dtype()).squeeze(0)
        });
        e.err("unsqueeze out of range", &["unsqueeze", "dimension 4"], || x.unsqueeze(4));
        e.err("broadcast_to a wrong size", &["broadcast_to", "[2, 3]", "[3, 3]"], || {
            x.broadcast_to(&[3, 3])
        });
        e.err("broadcast_to fewer dims", &["broadcast_to", "[2, 3]", "[3]"], || {
            x.broadcast_to(&[3])
        });
        e.err("expand a dim of size 2 to 4", &["expand", "[2, 3]", "[4, 3]"], || {
            x.expand([4, 3])
        });
        e.err("expand to fewer dims", &["expand", "[2, 3]", "[3]"], || x.expand([3]));
        e.err("expand with a bad size", &["expand", "-2"], || x.expand([-2, 3]));
        e.err("expand with -1 for a new dim", &["expand", "[-1, 2, 3]"], || {
            x.expand([-1, 2, 3])
        });
        e.err("diagonal of one dim twice", &["diagonal", "1 twice"], || x.diagonal(0, 1, 1));
        e.err("diagonal out of range", &["diagonal", "dimension 2", "rank 2"], || {
            x.diagonal(0, 0, 2)
        });
        e.err("flatten with start after end", &["flatten", "start dim 1", "end dim 0"], || {
            x.flatten(1, 0)
        });
        e.err("size of a missing dim", &["size", "dimension 2", "rank 2"], || x.size(2));
    }

    fn movement_errors_name_the_op_and_shapes(e) {
        let dt = e.dtype;
        let (a, b) = (iota(&[2, 3], dt), iota(&[2, 4], dt));
        e.err("cat along a mismatched dim", &["cat", "[2, 3]", "[2, 4]"], || {
            Tensor::cat(&[&a, &b], 0)
        });
        e.err("cat of different ranks", &["cat", "[2, 3]", "[3]"], || {
            Tensor::cat(&[&a, &iota(&[3], dt)], 0)
        });
        e.err("cat of nothing", &["cat", "no tensors"], || Tensor::cat(&[], 0));
        e.err("cat of rank-0 tensors", &["cat", "rank-0"], || {
            let s = Tensor::scalar_of(1.0, dt);
            Tensor::cat(&[&s, &s], 0)
        });
        e.err("cat along a missing dim", &["cat", "dimension 2", "rank 2"], || {
            Tensor::cat(&[&a, &a], 2)
        });
        e.err("stack of different shapes", &["stack", "[2, 3]", "[2, 4]"], || {
            Tensor::stack(&[&a, &b], 0)
        });
        e.err("stack of nothing", &["stack", "no tensors"], || Tensor::stack(&[], 0));
        e.err("stack along a missing dim", &["stack", "dimension 3", "rank 3"], || {
            Tensor::stack(&[&a, &a], 3)
        });
        e.err("split into pieces of 0", &["split", "size"], || a.split(0, 1));
        e.err("split along a missing dim", &["split", "dimension 2", "rank 2"], || {
            a.split(1, 2)
        });
        e.err("split_sizes not summing to the dim", &["split_sizes", "[1, 1]", "[2, 3]"], || {
            a.split_sizes(&[1, 1], 1)
        });
        e.err("chunk into 0", &["chunk", "chunks"], || a.chunk(0, 0));
        e.err("pad to a size that overflows usize", &["pad", "[2, 3]"], || {
            a.pad(&[(usize::MAX, 1), (0, 0)], 0.0)
        });
        e.err("pad with one pair for two dims", &["pad", "1 (before, after) pairs", "[2, 3]"], || {
            a.pad(&[(1, 1)], 0.0)
        });
    }

    fn elementwise_errors_name_the_op_and_both_shapes(e) {
        let dt = e.dtype;
        let (a, b) = (iota(&[2, 3], dt), iota(&[4], dt));
        type Binary = fn(&Tensor, &Tensor) -> Result<Tensor>;
        let ops: [(&str, Binary); 13] = [
            ("add", Tensor::add),
            ("sub", Tensor::sub),
            ("mul", Tensor::mul),
            ("div", Tensor::div),
            ("pow", Tensor::pow),
            ("maximum", Tensor::maximum),
            ("minimum", Tensor::minimum),
            ("eq", Tensor::eq),
            ("ne", Tensor::ne),
            ("lt", Tensor::lt),
            ("le", Tensor::le),
            ("gt", Tensor::gt),
            ("ge", Tensor::ge),
        ];
        for (name, op) in ops {
            e.err(&format!("{name} of [2, 3] and [4]"), &[name, "[2, 3]", "[4]"], || op(&a, &b));
        }
        e.err("the + operator", &["add", "[2, 3]", "[4]"], || &a + &b);
        e.err("broadcasting two stretched dims", &["mul", "[2, 1, 3]", "[4, 2]"], || {
            iota(&[2, 1, 3], dt).mul(&iota(&[4, 2], dt))
        });
        e.err("where with a mismatched condition", &["where", "[2]", "[2, 3]"], || {
            Tensor::where_(&iota(&[2], dt), &a, &a)
        });
        e.err("where with a mismatched on_false", &["where", "[2, 3]", "[4]"], || {
            Tensor::where_(&a, &a, &b)
        });
        e.err("clamp with min above max", &["clamp", "min 1", "max 0"], || a.clamp(1.0, 0.0));
    }

    fn reduction_errors_name_the_op_and_dim(e) {
        let dt = e.dtype;
        let x = iota(&[2, 3], dt);
        let empty = Tensor::zeros(&[0, 3], dt);
        e.err("sum over a missing dim", &["sum", "dimension 2", "rank 2"], || x.sum(2, false));
        e.err("sum over a dim given twice", &["sum", "twice"], || x.sum([1, -1], false));
        e.err("mean over a missing dim", &["mean", "dimension -3", "rank 2"], || {
            x.mean(-3, false)
        });
        e.err("max over a missing dim", &["max", "dimension 2", "rank 2"], || x.max(2, true));
        e.err("min over a missing dim", &["min", "dimension 2", "rank 2"], || x.min(2, true));
        e.err("logsumexp over a missing dim", &["logsumexp", "dimension 2", "rank 2"], || {
            x.logsumexp(2, false)
        });
        e.err("var over a missing dim", &["var", "dimension 2", "rank 2"], || x.var(2, false));
        e.err("std over a missing dim", &["std", "dimension 2", "rank 2"], || x.std(2, false));
        e.err("std_correction over a missing dim", &["std", "dimension 2", "rank 2"], || {
            x.std_correction(2, 0, false)
        });
        for p in [1.0, 2.0, 3.0, f64::INFINITY] {
            e.err(&format!("norm p={p} over a missing dim"), &["norm", "dimension 2", "rank 2"], || {
                x.norm(p, 2, false)
            });
        }
        e.err("norm with p = 0", &["norm", "p", "0"], || x.norm(0.0, 1, false));
        e.err("norm with p = NaN", &["norm", "NaN"], || x.norm(f64::NAN, 1, false));
        e.err("max over an empty dim", &["max", "empty", "[0, 3]"], || empty.max(0, false));
        e.err("min_all of an empty tensor", &["min", "empty", "[0, 3]"], || empty.min_all());
        e.err("argmax along a missing dim", &["argmax", "dimension 2", "rank 2"], || {
            x.argmax(2, false)
        });
        e.err("argmin along an empty dim", &["argmin", "empty", "[0, 3]"], || {
            empty.argmin(0, false)
        });
        e.err("softmax along a missing dim", &["softmax", "dimension 2", "rank 2"], || {
            x.softmax(2)
        });
        e.err("log_softmax along a missing dim", &["log_softmax", "dimension -3", "rank 2"], || {
            x.log_softmax(-3)
        });
        e.err("softmax of a rank-0 tensor", &["softmax", "dimension"], || {
            Tensor::scalar_of(1.0, dt).softmax(0)
        });
    }

    fn indexing_errors_name_the_op_the_index_and_the_size(e) {
        let dt = e.dtype;
        let x = iota(&[2, 3], dt);
        let ids = |v: &[usize], shape: &[usize]| Tensor::from_indices(v, shape, dt).expect("ids");
        let raw = |v: f64| Tensor::full(&[1], v, dt);
        e.err("index_select past the end", &["index_select", "index 3", "size 3"], || {
            x.index_select(1, &ids(&[0, 3], &[2]))
        });
        e.err("index_select with a negative index", &["index_select", "index -1", "size 2"], || {
            x.index_select(0, &raw(-1.0))
        });
        e.err("index_select with a fractional index", &["index_select", "0.5"], || {
            x.index_select(0, &raw(0.5))
        });
        e.err("index_select with a NaN index", &["index_select", "NaN"], || {
            x.index_select(0, &raw(f64::NAN))
        });
        e.err("index_select with 2-D indices", &["index_select", "1-D", "[2, 1]"], || {
            x.index_select(0, &ids(&[0, 1], &[2, 1]))
        });
        e.err("index_select along a missing dim", &["index_select", "dimension 2", "rank 2"], || {
            x.index_select(2, &ids(&[0], &[1]))
        });
        e.err("gather with an index of lower rank", &["gather", "[2, 3]", "[2]"], || {
            x.gather(1, &ids(&[0, 1], &[2]))
        });
        e.err("gather with an index larger off-dim", &["gather", "[2, 3]", "[3, 1]"], || {
            x.gather(1, &ids(&[0, 1, 2], &[3, 1]))
        });
        e.err("gather past the end", &["gather", "index 3", "size 3"], || {
            x.gather(1, &ids(&[3, 0], &[2, 1]))
        });
        e.err("scatter_add with src smaller than index", &["scatter_add", "[2, 2]", "[2, 1]"], || {
            x.scatter_add(1, &ids(&[0, 1, 1, 2], &[2, 2]), &iota(&[2, 1], dt))
        });
        e.err("scatter_add past the end", &["scatter_add", "index 2", "size 2"], || {
            x.scatter_add(0, &ids(&[2, 0, 0], &[1, 3]), &iota(&[1, 3], dt))
        });
        e.err("masked_fill with an unbroadcastable mask", &["masked_fill", "[2, 3]", "[4]"], || {
            x.masked_fill(&Tensor::ones(&[4], dt), 0.0)
        });
        e.err("masked_fill with a larger mask", &["masked_fill", "[2, 3]", "[2, 2, 3]"], || {
            x.masked_fill(&Tensor::ones(&[2, 2, 3], dt), 0.0)
        });
        e.err("tril of a vector", &["tril", "[3]"], || iota(&[3], dt).tril(0));
        e.err("triu of a scalar", &["triu", "[]"], || Tensor::scalar_of(1.0, dt).triu(0));
        e.err("one_hot of a class past the end", &["one_hot", "index 5", "size 5"], || {
            ids(&[1, 5], &[2]).one_hot(5)
        });
        e.err("one_hot of a negative class", &["one_hot", "index -2"], || raw(-2.0).one_hot(3));
        e.err("embedding with a 1-D weight", &["embedding", "[6]"], || {
            iota(&[6], dt).embedding(&ids(&[0], &[1]))
        });
        e.err("embedding of an id past the vocabulary", &["embedding", "index 6", "size 6"], || {
            iota(&[6, 4], dt).embedding(&ids(&[1, 6], &[2]))
        });
    }

    fn matmul_and_linear_errors_name_both_shapes(e) {
        let dt = e.dtype;
        e.err("matmul with mismatched inner dims", &["matmul", "[2, 3]", "[4, 5]"], || {
            iota(&[2, 3], dt).matmul(&iota(&[4, 5], dt))
        });
        e.err("dot of different lengths", &["matmul", "[3]", "[4]"], || {
            iota(&[3], dt).matmul(&iota(&[4], dt))
        });
        e.err("vector times a mismatched matrix", &["matmul", "[3]", "[4, 2]"], || {
            iota(&[3], dt).matmul(&iota(&[4, 2], dt))
        });
        e.err("matmul with unbroadcastable batches", &["matmul", "[2, 3, 4]", "[3, 4, 5]"], || {
            iota(&[2, 3, 4], dt).matmul(&iota(&[3, 4, 5], dt))
        });
        e.err("matmul of a scalar", &["matmul", "[]", "[2, 2]"], || {
            Tensor::scalar_of(2.0, dt).matmul(&iota(&[2, 2], dt))
        });
        e.err("linear with mismatched features", &["linear", "[4, 3]", "[2, 4]"], || {
            linear(&iota(&[4, 3], dt), &iota(&[2, 4], dt), None)
        });
        e.err("linear with a 1-D weight", &["linear", "[4, 3]", "[3]"], || {
            linear(&iota(&[4, 3], dt), &iota(&[3], dt), None)
        });
        e.err("linear of a scalar", &["linear", "[]", "[2, 3]"], || {
            linear(&Tensor::scalar_of(1.0, dt), &iota(&[2, 3], dt), None)
        });
        e.err("linear with a wrong bias", &["linear", "[2, 3]", "[3]"], || {
            linear(&iota(&[4, 3], dt), &iota(&[2, 3], dt), Some(&iota(&[3], dt)))
        });
    }
}

/// Mixing f32 and f64 is an error naming the op and both dtypes (this
/// family needs both dtypes at once, so it runs once).
#[test]
fn dtype_mixing_errors_name_the_op_and_both_dtypes() {
    let mut e = Expect::new(DType::F32);
    let a = iota(&[2, 3], DType::F32);
    let b = iota(&[2, 3], DType::F64);
    let both = ["f32", "f64"];
    type Binary = fn(&Tensor, &Tensor) -> Result<Tensor>;
    let ops: [(&str, Binary); 14] = [
        ("add", Tensor::add),
        ("sub", Tensor::sub),
        ("mul", Tensor::mul),
        ("div", Tensor::div),
        ("pow", Tensor::pow),
        ("maximum", Tensor::maximum),
        ("minimum", Tensor::minimum),
        ("eq", Tensor::eq),
        ("ne", Tensor::ne),
        ("lt", Tensor::lt),
        ("le", Tensor::le),
        ("gt", Tensor::gt),
        ("ge", Tensor::ge),
        ("matmul", |x, y| x.matmul(&y.t()?)),
    ];
    for (name, op) in ops {
        e.err(
            &format!("{name} of f32 and f64"),
            &[name, both[0], both[1]],
            || op(&a, &b),
        );
        e.err(
            &format!("{name} of f64 and f32"),
            &[name, both[1], both[0]],
            || op(&b, &a),
        );
    }
    e.err("where with an f64 branch", &["where", "f32", "f64"], || {
        Tensor::where_(&a, &a, &b)
    });
    e.err(
        "where with an f64 condition",
        &["where", "f64", "f32"],
        || Tensor::where_(&b, &a, &a),
    );
    e.err("cat of f32 and f64", &["cat", "f32", "f64"], || {
        Tensor::cat(&[&a, &b], 0)
    });
    e.err("stack of f32 and f64", &["stack", "f32", "f64"], || {
        Tensor::stack(&[&a, &b], 0)
    });
    e.err(
        "linear with an f64 weight",
        &["linear", "f32", "f64"],
        || linear(&a, &b, None),
    );
    e.err("linear with an f64 bias", &["linear", "f32", "f64"], || {
        linear(&a, &a, Some(&iota(&[2], DType::F64)))
    });
    e.err(
        "scatter_add of an f64 src",
        &["scatter_add", "f32", "f64"],
        || {
            let index = Tensor::from_indices(&[0, 1, 0, 1, 0, 1], &[2, 3], DType::F32)?;
            a.scatter_add(0, &index, &b)
        },
    );
    e.err(
        "masked_fill with an f64 mask",
        &["masked_fill", "f32", "f64"],
        || a.masked_fill(&b, 0.0),
    );
    e.err(
        "to_vec::<f64> of an f32 tensor",
        &["to_vec", "f32", "f64"],
        || a.to_vec::<f64>(),
    );
    e.err(
        "to_scalar::<f32> of an f64 tensor",
        &["to_scalar", "f64", "f32"],
        || Tensor::scalar_of(1.0, DType::F64).to_scalar::<f32>(),
    );
    e.finish();
}
