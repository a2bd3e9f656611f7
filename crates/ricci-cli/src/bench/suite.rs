//! The rows of `ricci bench`, as data. A row names an op, its dtype and shape,
//! the inputs to build (random normal, optionally viewed transposed), the op
//! itself, and the work it does, from which the harness's median time gives
//! GFLOP/s (matmul: 2·m·k·n per product) or GB/s (memory-bound ops: bytes the
//! op must read plus bytes it writes, counted once, however many passes the
//! kernel makes). A new kernel adds its rows in [`suite`] and nothing else.
//!
//! Shape strings: `MxKxN` for `[M,K]·[K,N]`, `BxMxKxN` for a batched product,
//! `RxC` for an elementwise or row-wise op on an `[R,C]` tensor, and
//! `RxC+C` for a broadcast add of a `[C]` row. Names ending in `_t` (and
//! `matmul_bt`, whose right operand is transposed) take a transposed view as
//! input, so they measure the strided path, not a copy.

use ricci::{DType, Rng, Tensor};

/// What one call of a row's op computes.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    /// Floating-point operations (reported as GFLOP/s).
    Flops(f64),
    /// Bytes read plus bytes written (reported as GB/s).
    Bytes(f64),
    /// Only the time matters (per-op overhead rows).
    Time,
}

/// One input tensor: random normal of `shape`, then `.t()` if
/// `transposed`; a leaf that requires grad if `grad`.
#[derive(Clone, Debug)]
pub struct Input {
    pub shape: Vec<usize>,
    pub transposed: bool,
    pub grad: bool,
}

/// One benchmark row (run once per thread count).
pub struct RowSpec {
    pub name: &'static str,
    pub dtype: DType,
    pub shape: String,
    pub work: Work,
    pub inputs: Vec<Input>,
    pub op: fn(&[Tensor]) -> ricci::Result<Tensor>,
}

impl RowSpec {
    /// `--filter WORD`: the row's name or shape contains `word`.
    pub fn matches(&self, word: &str) -> bool {
        self.name.contains(word) || self.shape.contains(word)
    }

    /// Builds the inputs (outside the timed region).
    pub fn make_inputs(&self, rng: &mut Rng) -> ricci::Result<Vec<Tensor>> {
        self.inputs
            .iter()
            .map(|input| {
                let x = Tensor::randn(&input.shape, self.dtype, rng);
                let x = if input.transposed { x.t()? } else { x };
                Ok(if input.grad {
                    x.set_requires_grad(true)
                } else {
                    x
                })
            })
            .collect()
    }
}

/// The full suite, in the order rows are run and printed.
pub fn suite() -> Vec<RowSpec> {
    let mut rows = Vec::new();
    for dtype in [DType::F32, DType::F64] {
        for n in [256, 512, 1024, 2048] {
            rows.push(matmul(dtype, n, n, n));
        }
    }
    // GPT-2-small-sized layers on 4096 tokens (batch x seq): attention
    // projection, FFN up, FFN down.
    rows.push(matmul(DType::F32, 4096, 768, 768));
    rows.push(matmul(DType::F32, 4096, 768, 3072));
    rows.push(matmul(DType::F32, 4096, 3072, 768));
    // `x · wᵀ` as `linear` computes it, with w stored [out, in].
    rows.push(matmul_bt(DType::F32, 4096, 768, 768));
    // Attention scores: 64 (batch x heads) of [128 x 64]·[64 x 128].
    rows.push(matmul_batched(DType::F32, 64, 128, 64, 128));
    // Memory-bound ops on 16M elements, contiguous then through a transposed view.
    for transposed in [false, true] {
        rows.extend(memory_bound(DType::F32, 4096, transposed));
    }
    rows.extend(autograd_rows());
    rows.extend(super::einsum_rows::rows());
    rows.extend(super::linalg_rows::rows());
    rows.extend(super::hessian_rows::rows());
    rows
}

/// MLP used by the autograd rows: `x [256, 512]`, `w1 [1024, 512]`,
/// `w2 [512, 1024]`; loss `mean((gelu(x w1ᵀ) w2ᵀ)^2)`.
const MLP: (usize, usize, usize) = (256, 512, 1024);

fn mlp_loss(x: &Tensor, w1: &Tensor, w2: &Tensor) -> ricci::Result<Tensor> {
    let h = ricci::linear(x, w1, None)?.gelu();
    Ok(ricci::linear(&h, w2, None)?.square().mean_all())
}

/// Autograd costs: the time of one small recorded op against the same op
/// unrecorded, and the time of a matmul-heavy MLP's forward, forward +
/// backward, gradient and Hessian-vector product. All MLP rows count the
/// forward's FLOPs, so their times compare directly (backward/forward =
/// `autograd_fwd_bwd` / `autograd_fwd` - 1; hvp/grad = `autograd_hvp` /
/// `autograd_grad`).
fn autograd_rows() -> Vec<RowSpec> {
    let (n, d, h) = MLP;
    let flops = Work::Flops(2.0 * 2.0 * (n * d * h) as f64);
    let shape = format!("{n}x{d}x{h}");
    vec![
        RowSpec {
            name: "autograd_op",
            dtype: DType::F32,
            shape: "8+8".into(),
            work: Work::Time,
            inputs: vec![input(&[8]), input(&[8])],
            op: |x| x[0].add(&x[1]),
        },
        RowSpec {
            name: "autograd_op_rec",
            dtype: DType::F32,
            shape: "8+8".into(),
            work: Work::Time,
            inputs: vec![input_grad(&[8]), input(&[8])],
            op: |x| x[0].add(&x[1]),
        },
        RowSpec {
            name: "autograd_fwd",
            dtype: DType::F32,
            shape: shape.clone(),
            work: flops,
            inputs: vec![input(&[n, d]), input(&[h, d]), input(&[d, h])],
            op: |x| {
                let _off = ricci::no_grad();
                mlp_loss(&x[0], &x[1], &x[2])
            },
        },
        RowSpec {
            name: "autograd_fwd_bwd",
            dtype: DType::F32,
            shape: shape.clone(),
            work: flops,
            inputs: vec![input(&[n, d]), input_grad(&[h, d]), input_grad(&[d, h])],
            op: |x| {
                let loss = mlp_loss(&x[0], &x[1], &x[2])?;
                loss.backward()?;
                Ok(loss)
            },
        },
        RowSpec {
            name: "autograd_grad",
            dtype: DType::F32,
            shape: shape.clone(),
            work: flops,
            inputs: vec![input(&[n, d]), input(&[h, d]), input(&[d, h])],
            op: |x| {
                let (x0, w2) = (x[0].clone(), x[2].clone());
                let g = ricci::autograd::grad(|w| mlp_loss(&x0, &w[0], &w2), &[x[1].clone()])?;
                Ok(g[0].clone())
            },
        },
        RowSpec {
            name: "autograd_hvp",
            dtype: DType::F32,
            shape,
            work: flops,
            inputs: vec![
                input(&[n, d]),
                input(&[h, d]),
                input(&[d, h]),
                input(&[h, d]),
            ],
            op: |x| {
                let (x0, w2) = (x[0].clone(), x[2].clone());
                ricci::autograd::hvp(|w| mlp_loss(&x0, w, &w2), &x[1], &x[3])
            },
        },
    ]
}

fn input(shape: &[usize]) -> Input {
    input_t(shape, false)
}

fn input_t(shape: &[usize], transposed: bool) -> Input {
    Input {
        shape: shape.to_vec(),
        transposed,
        grad: false,
    }
}

fn input_grad(shape: &[usize]) -> Input {
    Input {
        grad: true,
        ..input(shape)
    }
}

/// `[m,k]·[k,n]`.
fn matmul(dtype: DType, m: usize, k: usize, n: usize) -> RowSpec {
    RowSpec {
        name: "matmul",
        dtype,
        shape: format!("{m}x{k}x{n}"),
        work: Work::Flops(2.0 * (m * k * n) as f64),
        inputs: vec![input(&[m, k]), input(&[k, n])],
        op: |x| x[0].matmul(&x[1]),
    }
}

/// `[m,k]·wᵀ` with `w: [n,k]`, passed as the view `w.t()`.
fn matmul_bt(dtype: DType, m: usize, k: usize, n: usize) -> RowSpec {
    RowSpec {
        name: "matmul_bt",
        dtype,
        shape: format!("{m}x{k}x{n}"),
        work: Work::Flops(2.0 * (m * k * n) as f64),
        inputs: vec![input(&[m, k]), input_t(&[n, k], true)],
        op: |x| x[0].matmul(&x[1]),
    }
}

/// `[b,m,k]·[b,k,n]`.
fn matmul_batched(dtype: DType, b: usize, m: usize, k: usize, n: usize) -> RowSpec {
    RowSpec {
        name: "matmul_batched",
        dtype,
        shape: format!("{b}x{m}x{k}x{n}"),
        work: Work::Flops(2.0 * (b * m * k * n) as f64),
        inputs: vec![input(&[b, m, k]), input(&[b, k, n])],
        op: |x| x[0].matmul(&x[1]),
    }
}

/// Broadcast add, gelu, exp, row sum and row softmax of an `[n,n]` tensor
/// (its transposed view when `transposed`).
fn memory_bound(dtype: DType, n: usize, transposed: bool) -> Vec<RowSpec> {
    let elem = dtype.size_in_bytes() as f64;
    let full = (n * n) as f64 * elem;
    let row = n as f64 * elem;
    let x = || input_t(&[n, n], transposed);
    let name = |plain: &'static str, t: &'static str| if transposed { t } else { plain };
    let square = format!("{n}x{n}");
    vec![
        RowSpec {
            name: name("add_bcast", "add_bcast_t"),
            dtype,
            shape: format!("{n}x{n}+{n}"),
            work: Work::Bytes(2.0 * full + row),
            inputs: vec![x(), input(&[n])],
            op: |x| x[0].add(&x[1]),
        },
        RowSpec {
            name: name("gelu", "gelu_t"),
            dtype,
            shape: square.clone(),
            work: Work::Bytes(2.0 * full),
            inputs: vec![x()],
            op: |x| Ok(x[0].gelu()),
        },
        RowSpec {
            name: name("exp", "exp_t"),
            dtype,
            shape: square.clone(),
            work: Work::Bytes(2.0 * full),
            inputs: vec![x()],
            op: |x| Ok(x[0].exp()),
        },
        RowSpec {
            name: name("sum", "sum_t"),
            dtype,
            shape: square.clone(),
            work: Work::Bytes(full + row),
            inputs: vec![x()],
            op: |x| x[0].sum(-1, false),
        },
        RowSpec {
            name: name("softmax", "softmax_t"),
            dtype,
            shape: square,
            work: Work::Bytes(2.0 * full),
            inputs: vec![x()],
            op: |x| x[0].softmax(-1),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_runs_on_small_inputs_with_the_declared_shapes() {
        // Shrink each row's inputs so the op itself is checked cheaply: the
        // op must accept the inputs its row declares.
        let mut rng = Rng::new(0);
        for row in suite() {
            let small: Vec<Tensor> = row
                .inputs
                .iter()
                .map(|i| {
                    let shape: Vec<usize> = i.shape.iter().map(|&d| d.min(8)).collect();
                    let x = Tensor::randn(&shape, row.dtype, &mut rng);
                    let x = if i.transposed { x.t().unwrap() } else { x };
                    x.set_requires_grad(i.grad)
                })
                .collect();
            (row.op)(&small).unwrap_or_else(|e| panic!("{} {}: {e}", row.name, row.shape));
        }
    }

    #[test]
    fn rows_are_unique_by_name_dtype_and_shape() {
        let rows = suite();
        let mut keys: Vec<_> = rows
            .iter()
            .map(|r| (r.name, r.dtype.to_string(), r.shape.clone()))
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), rows.len());
    }
}
