//! `ricci bench --filter linalg`: decompositions at n = 100, 500, 1000 in
//! f32 and f64, randomized SVD against the full SVD at 2000, and Lanczos
//! top-5 of a 2000 x 2000 symmetric matrix. `bench/linalg_compare.py`
//! (called by `bench/compare.py`) times numpy on the same rows.
//!
//! GFLOP/s use nominal LAPACK operation counts, so ricci and numpy are
//! compared on the same scale: svd (values + thin vectors) 22n³, qr
//! (R + thin Q) 8n³/3, eigh (values + vectors) 9n³, cholesky n³/3,
//! solve (one right-hand side) 2n³/3 + 2n².
//!
//! Cholesky and Lanczos need special matrices (SPD; a known decaying
//! spectrum); they are built from the random input once, on the first
//! (warm-up) call, and cached by the input's id, so the timed calls measure
//! the factorisation / iteration alone.

use std::collections::HashMap;
use std::sync::Mutex;

use ricci::linalg::{self, LanczosParams, RandomizedSvdParams};
use ricci::tensor::TensorId;
use ricci::{DType, Tensor};

use super::suite::{Input, RowSpec, Work};

fn input(shape: &[usize]) -> Input {
    Input {
        shape: shape.to_vec(),
        transposed: false,
        grad: false,
    }
}

/// Memoises `make(x)` by `x`'s id (outside the timed region after warm-up).
fn cached(x: &Tensor, make: fn(&Tensor) -> ricci::Result<Tensor>) -> ricci::Result<Tensor> {
    static CACHE: Mutex<Option<HashMap<TensorId, Tensor>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(t) = map.get(&x.id()) {
        return Ok(t.clone());
    }
    let t = make(x)?;
    map.insert(x.id(), t.clone());
    Ok(t)
}

/// `x xᵀ / n + I`: symmetric positive definite, well conditioned.
fn spd(x: &Tensor) -> ricci::Result<Tensor> {
    let n = x.shape()[0];
    x.matmul(&x.t()?)?
        .div_scalar(n as f64)
        .add(&Tensor::eye(n, x.dtype()))
}

/// `Q diag(1/i) Qᵀ` with `Q` from the QR of `x`: a power-law spectrum, as
/// Hessians and weight Gram matrices have.
fn power_law(x: &Tensor) -> ricci::Result<Tensor> {
    let n = x.shape()[0];
    let q = linalg::qr(x)?.q;
    let l = Tensor::arange(1.0, n as f64 + 1.0, 1.0, x.dtype())?.recip();
    q.mul(&l.unsqueeze(0)?)?.matmul(&q.t()?)
}

/// Rank of the randomized SVD rows, and size of the iterative rows.
pub const RSVD_RANK: usize = 10;
pub const BIG: usize = 2000;

pub fn rows() -> Vec<RowSpec> {
    let mut rows = Vec::new();
    for dtype in [DType::F64, DType::F32] {
        for n in [100, 500, 1000] {
            let nf = n as f64;
            let sq = || vec![input(&[n, n])];
            let shape = format!("{n}x{n}");
            rows.push(RowSpec {
                name: "linalg_svd",
                dtype,
                shape: shape.clone(),
                work: Work::Flops(22.0 * nf * nf * nf),
                inputs: sq(),
                op: |x| Ok(linalg::svd_thin(&x[0])?.s),
            });
            rows.push(RowSpec {
                name: "linalg_qr",
                dtype,
                shape: shape.clone(),
                work: Work::Flops(8.0 / 3.0 * nf * nf * nf),
                inputs: sq(),
                op: |x| Ok(linalg::qr(&x[0])?.r),
            });
            rows.push(RowSpec {
                name: "linalg_eigh",
                dtype,
                shape: shape.clone(),
                work: Work::Flops(9.0 * nf * nf * nf),
                inputs: sq(),
                op: |x| Ok(linalg::eigh(&x[0])?.values),
            });
            rows.push(RowSpec {
                name: "linalg_cholesky",
                dtype,
                shape: shape.clone(),
                work: Work::Flops(nf * nf * nf / 3.0),
                inputs: sq(),
                op: |x| linalg::cholesky(&cached(&x[0], spd)?),
            });
            rows.push(RowSpec {
                name: "linalg_solve",
                dtype,
                shape: format!("{n}x{n}+{n}"),
                work: Work::Flops(2.0 / 3.0 * nf * nf * nf + 2.0 * nf * nf),
                inputs: vec![input(&[n, n]), input(&[n])],
                op: |x| linalg::solve(&x[0], &x[1]),
            });
        }
    }
    let big = format!("{BIG}x{BIG}");
    rows.push(RowSpec {
        name: "linalg_svd_full",
        dtype: DType::F64,
        shape: big.clone(),
        work: Work::Time,
        inputs: vec![input(&[BIG, BIG])],
        op: |x| Ok(linalg::svd_thin(&x[0])?.s),
    });
    rows.push(RowSpec {
        name: "linalg_rsvd_rank10",
        dtype: DType::F64,
        shape: big.clone(),
        work: Work::Time,
        inputs: vec![input(&[BIG, BIG])],
        op: |x| {
            // (The suite's self-test runs rows on 8x8 inputs.)
            let rank = RSVD_RANK.min(x[0].shape()[0]);
            Ok(linalg::randomized_svd(&x[0], rank, &RandomizedSvdParams::default())?.s)
        },
    });
    rows.push(RowSpec {
        name: "linalg_lanczos_top5",
        dtype: DType::F64,
        shape: big,
        work: Work::Time,
        inputs: vec![input(&[BIG, BIG])],
        op: |x| {
            let a = cached(&x[0], power_law)?;
            let n = a.shape()[0];
            let params = LanczosParams {
                k: 5,
                ..Default::default()
            };
            Ok(linalg::lanczos(|v| a.matmul(v), n, &params)?.values)
        },
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanczos_row_needs_under_100_matvecs_and_finds_the_power_law_top() {
        // The bench row's matrix at a smaller size (the spectrum 1/i is the
        // same shape); the count is what the README reports.
        let n = 600;
        let x = Tensor::randn(&[n, n], DType::F64, &mut ricci::Rng::new(0));
        let a = power_law(&x).unwrap();
        let params = LanczosParams {
            k: 5,
            ..Default::default()
        };
        let r = linalg::lanczos(|v| a.matmul(v), n, &params).unwrap();
        assert!(r.matvecs < 100, "{} products", r.matvecs);
        let got = r.values.to_vec::<f64>().unwrap();
        for (i, g) in got.iter().enumerate() {
            assert!((g - 1.0 / (i + 1) as f64).abs() < 1e-8, "{g}");
        }
    }
}
